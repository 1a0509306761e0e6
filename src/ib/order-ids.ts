/**
 * IB order ids must never be reused, not even across sessions or after TWS
 * forgets them: a reused id can amend or collide with an old order. keel
 * keeps a high-water mark on disk and hands out ids above both it and TWS's
 * nextValidId.
 *
 * Ids are reserved in blocks: the mark on disk is always above every id
 * handed out, so one fsync covers a block and a crash only skips ids.
 *
 * Two keels on one mark would hand out the same ids, so the file is locked
 * (FILE.lock, src/journal/file-lock.ts) from construction until `close`: a
 * second one is refused with FileLocked naming the holder.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { makeDirectorySync } from '../files.js';
import { acquireFileLock, type FileLock, type LockHolder } from '../journal/file-lock.js';

export interface OrderIdLedgerOptions {
  /** Ids reserved with one write (default 100). */
  readonly blockSize?: number;
  /** Who in this process holds the file's lock (instance/component): the same owner may take it over. */
  readonly owner?: string;
}

export class OrderIdLedger {
  private next: number;
  private reservedUpTo: number;
  private started = false;
  private readonly blockSize: number;
  private readonly lock: FileLock;
  /** The dead process whose lock on the file was broken to open it. */
  readonly tookOverFrom: LockHolder | undefined;

  constructor(
    readonly file: string,
    options: OrderIdLedgerOptions = {},
  ) {
    this.blockSize = options.blockSize ?? 100;
    const { lock, broke } = acquireFileLock(file, options.owner ?? 'order ids');
    this.lock = lock;
    this.tookOverFrom = broke;
    try {
      // Every id below the mark may have been used by an earlier session.
      this.next = this.reservedUpTo = readMark(file);
    } catch (error) {
      lock.release();
      throw error;
    }
  }

  /** Lets another process have the file. */
  close(): void {
    this.lock.release();
  }

  /** The lowest id keel may use: above TWS's nextValidId and above everything reserved before. */
  start(nextValidId: number): void {
    this.next = Math.max(this.next, nextValidId);
    this.started = true;
  }

  /** The next order id, durably reserved before it is returned. */
  take(): number {
    if (!this.started) throw new Error('no order ids before the connection has given a nextValidId');
    const id = this.next++;
    if (id >= this.reservedUpTo) {
      this.reservedUpTo = id + this.blockSize;
      writeMark(this.file, this.reservedUpTo);
    }
    return id;
  }
}

function readMark(file: string): number {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  const mark = (JSON.parse(text) as { nextOrderId?: unknown }).nextOrderId;
  if (typeof mark !== 'number' || !Number.isSafeInteger(mark) || mark < 0) {
    throw new Error(`${file}: nextOrderId must be a non-negative integer, found ${JSON.stringify(mark)}`);
  }
  return mark;
}

/** Write, fsync, rename: a crash leaves the old mark or the new one, never half of one. */
function writeMark(file: string, mark: number): void {
  makeDirectorySync(dirname(file));
  const temp = `${file}.tmp`;
  const fd = openSync(temp, 'w');
  try {
    writeSync(fd, JSON.stringify({ nextOrderId: mark }) + '\n');
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temp, file);
}
