/**
 * One writer per file: a lock a process holds for as long as it writes a
 * file (the journal, the order-id mark), so a second keel pointed at the same
 * file is refused instead of appending beside the first.
 *
 * Kind of lock. Node has no flock or fcntl lock, so this is a lock file,
 * FILE.lock, holding the holder's pid, host, start time, owner and (once the
 * inspector listens) the inspector's URL. It is made whole and then linked
 * into place: link() fails with EEXIST atomically when a lock exists, and no
 * reader ever sees it half written. A lock file outlives a process killed
 * with -9 (a kernel lock would not), so its holder is verified at every
 * conflict: a pid that is gone or a zombie, or one whose start time (Linux
 * /proc/PID/stat, macOS `ps -o lstart=`) is not the one recorded (the pid
 * was reused), is a dead holder and its lock is broken. A holder on another
 * host cannot be checked from here and is refused, with the lock named so an
 * operator can remove it. A clean exit removes the lock files; a kill -9
 * leaves one that the next start breaks.
 *
 * Within one process the lock belongs to an owner (a component): the same
 * owner taking it again (its next incarnation, after one that died without
 * stopping) takes it over, another owner is refused.
 */
import { closeSync, linkSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { dirname, resolve } from 'node:path';
import { makeDirectorySync } from '../files.js';

/** Who holds a lock, as its lock file says. */
export interface LockHolder {
  readonly pid: number;
  readonly host: string;
  /** When the holding process started, ISO 8601: for people. */
  readonly startedAt: string;
  /** The OS's own start mark of the pid, compared to tell a reused pid from the holder. */
  readonly processStart: string;
  /** What in the process holds it: instance/component. */
  readonly owner: string;
  /** The holder's inspector, once it listens. */
  readonly inspector?: string;
}

/** Refused: someone else holds the lock. */
export class FileLocked extends Error {
  constructor(
    readonly file: string,
    readonly lockFile: string,
    readonly holder: LockHolder,
    why: string,
  ) {
    super(why);
    this.name = 'FileLocked';
  }
}

/** `pid 1234, started 2025-06-02T09:30:00.000Z, inspector http://127.0.0.1:7500` */
export function describeHolder(holder: LockHolder): string {
  return [`pid ${holder.pid}`, holder.host !== hostname() ? `on host ${holder.host}` : '', `started ${holder.startedAt}`, holder.inspector ? `inspector ${holder.inspector}` : '']
    .filter(Boolean)
    .join(', ');
}

export class FileLock {
  private released = false;

  /** @internal made by acquireFileLock */
  constructor(
    readonly file: string,
    readonly lockFile: string,
    readonly owner: string,
  ) {}

  /** Whether this handle still holds the lock (not released, not taken over by its owner's next incarnation). */
  get held(): boolean {
    return !this.released && heldLocks.get(this.lockFile) === this;
  }

  /** Removes the lock file. A handle taken over by its owner's next incarnation releases nothing. */
  release(): void {
    if (!this.held) return;
    this.released = true;
    heldLocks.delete(this.lockFile);
    removeQuietly(this.lockFile);
  }

  /** Rewrites the lock file with this process's details as they are now (the inspector's URL). */
  refresh(): void {
    if (!this.held) return;
    const temp = `${this.lockFile}.${process.pid}.tmp`;
    writeWhole(temp, holderRecord(this.owner));
    // A rename replaces the file whole: a reader sees the old details or the new ones.
    renameSync(temp, this.lockFile);
  }
}

/** Every lock this process holds, by lock file. */
const heldLocks = new Map<string, FileLock>();
/** What this process tells those it refuses, beyond pid and start time. */
const details: { inspector?: string } = {};
let cleanupOnExit = false;

/**
 * Records this process's inspector URL in every lock it holds, and in those
 * it takes later; `undefined` when the inspector stops.
 */
export function noteInspector(url: string | undefined): void {
  if (details.inspector === url) return;
  if (url === undefined) delete details.inspector;
  else details.inspector = url;
  for (const lock of heldLocks.values()) lock.refresh();
}

export interface Acquired {
  readonly lock: FileLock;
  /** The dead holder whose lock was broken to take this one. */
  readonly broke?: LockHolder;
}

/**
 * Takes the lock of `file` (the lock file is FILE.lock beside it) for
 * `owner`, or throws FileLocked naming the live holder.
 */
export function acquireFileLock(file: string, owner: string): Acquired {
  const lockFile = `${resolve(file)}.lock`;
  const mine = heldLocks.get(lockFile);
  if (mine) {
    if (mine.owner !== owner) {
      throw new FileLocked(file, lockFile, holderRecord(mine.owner), `${file} is already open in this process by ${mine.owner}: one writer per file`);
    }
    // The owner's earlier incarnation died without releasing: this one takes over.
    const lock = new FileLock(file, lockFile, owner);
    heldLocks.set(lockFile, lock);
    return { lock };
  }
  makeDirectorySync(dirname(lockFile));
  let broke: LockHolder | undefined;
  // A few rounds: a holder may release, or another starter break a dead lock, between our steps.
  for (let round = 0; round < 5; round++) {
    if (link(lockFile, owner)) {
      const lock = new FileLock(file, lockFile, owner);
      heldLocks.set(lockFile, lock);
      if (!cleanupOnExit) {
        cleanupOnExit = true;
        process.on('exit', () => {
          for (const held of [...heldLocks.values()]) {
            try {
              held.release();
            } catch {
              // Exiting anyway: a lock left behind is broken by the next start, its holder being gone.
            }
          }
        });
      }
      return broke ? { lock, broke } : { lock };
    }
    const holder = readHolder(lockFile);
    if (holder === 'gone') continue;
    if (holder !== 'unreadable') {
      if (holder.host !== hostname()) {
        throw new FileLocked(file, lockFile, holder, `${file} is locked by ${describeHolder(holder)}, which cannot be checked from ${hostname()}: if that process is gone, remove ${lockFile}`);
      }
      if (isAlive(holder)) throw new FileLocked(file, lockFile, holder, `${file} is in use by another keel (${describeHolder(holder)}; lock ${lockFile})`);
    }
    if (breakDeadLock(lockFile, holder) && holder !== 'unreadable') broke = holder;
  }
  throw new Error(`cannot take the lock ${lockFile}: it kept changing hands`);
}

/**
 * The live holder of `file`'s lock, if any: for tools that only read the
 * file and want to say that a daemon is writing it.
 */
export function liveHolder(file: string): LockHolder | undefined {
  const lockFile = `${resolve(file)}.lock`;
  const holder = readHolder(lockFile);
  if (holder === 'gone' || holder === 'unreadable') return undefined;
  return holder.host !== hostname() || isAlive(holder) ? holder : undefined;
}

function holderRecord(owner: string): LockHolder {
  return {
    pid: process.pid,
    host: hostname(),
    startedAt: new Date(performance.timeOrigin).toISOString(),
    processStart: ownStart(),
    owner,
    ...(details.inspector ? { inspector: details.inspector } : {}),
  };
}

/** Creates the lock file whole, or answers false when one exists. */
function link(lockFile: string, owner: string): boolean {
  const temp = `${lockFile}.${process.pid}.tmp`;
  writeWhole(temp, holderRecord(owner));
  try {
    linkSync(temp, lockFile);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    removeQuietly(temp);
  }
}

function writeWhole(path: string, holder: LockHolder): void {
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, `${JSON.stringify(holder)}\n`);
  } finally {
    closeSync(fd);
  }
}

function readHolder(lockFile: string): LockHolder | 'gone' | 'unreadable' {
  let text: string;
  try {
    text = readFileSync(lockFile, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'gone';
    throw error;
  }
  try {
    const holder = JSON.parse(text) as Partial<LockHolder>;
    if (typeof holder.pid === 'number' && typeof holder.processStart === 'string' && typeof holder.host === 'string') {
      return { startedAt: '?', owner: '?', ...holder } as LockHolder;
    }
  } catch {
    // Not ours: keel writes its lock files whole, so nothing alive is mid-write here.
  }
  return 'unreadable';
}

/**
 * Moves a dead holder's lock aside and removes it. Moving first matters when
 * two starters break the same dead lock: only one move takes that file, and
 * a starter that moved a fresh live lock instead (taken meanwhile by the
 * other) puts it back. Answers whether the dead lock was removed.
 */
function breakDeadLock(lockFile: string, dead: LockHolder | 'unreadable'): boolean {
  const aside = `${lockFile}.${process.pid}.stale`;
  try {
    renameSync(lockFile, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
  const moved = readHolder(aside);
  const same = dead === 'unreadable' ? moved === 'unreadable' : typeof moved === 'object' && moved.pid === dead.pid && moved.processStart === dead.processStart;
  if (!same) {
    try {
      linkSync(aside, lockFile);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
  removeQuietly(aside);
  return same;
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

/** Whether the holder's process still runs: its pid exists, is not a zombie, and started when the lock says. */
function isAlive(holder: LockHolder): boolean {
  if (holder.pid === process.pid) return holder.processStart === ownStart();
  try {
    process.kill(holder.pid, 0);
  } catch (error) {
    // EPERM: it exists, under another user.
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  const now = processStart(holder.pid);
  if (now === undefined || now.zombie) return false;
  return now.start === holder.processStart;
}

let own: string | undefined;
function ownStart(): string {
  own ??= processStart(process.pid)?.start ?? `pid ${process.pid} at ${performance.timeOrigin}`;
  return own;
}

/**
 * The OS's start mark of `pid` and whether it is a zombie; undefined when no
 * such process exists. Linux: the starttime field of /proc/PID/stat (clock
 * ticks since boot); elsewhere (macOS) `ps -o stat=,lstart=`, in one locale
 * and time zone so that every keel writes the same start the same way.
 * Exported for the tests, which run the ps form on Linux too.
 */
export function processStart(pid: number, source: 'proc' | 'ps' = process.platform === 'linux' ? 'proc' : 'ps'): { start: string; zombie: boolean } | undefined {
  if (source === 'proc') {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      return undefined;
    }
    // The command name, in parentheses, may hold spaces and parentheses: the fields start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Field 3 is the state, field 22 the start time.
    return { start: fields[19] ?? '', zombie: fields[0] === 'Z' };
  }
  const ps = spawnSync('ps', ['-o', 'stat=,lstart=', '-p', String(pid)], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C', TZ: 'UTC' } });
  const line = ps.stdout?.trim() ?? '';
  if (ps.error) throw new Error(`cannot check whether pid ${pid} holds a lock: ps: ${ps.error.message}`);
  if (line === '') return undefined;
  const [stat = '', ...start] = line.split(/\s+/);
  return { start: start.join(' '), zombie: stat.startsWith('Z') };
}
