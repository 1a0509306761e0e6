/**
 * The embedded journal: an append-only file that makes ledger records durable.
 *
 * Format. A 12-byte header, the magic `KEELJNL1` then the format version as a
 * u32 LE, then one frame per record:
 *
 *   [u32 LE payload length][u32 LE crc32 of the payload][payload]
 *
 * where the payload is msgpackr `pack([seq, record])`. A default Packr writes
 * each record's structure inline, so every frame decodes on its own, and NaN
 * (a market order's limitPrice) survives as a float64. Seq runs 1, 2, 3, ...
 * with no gap.
 *
 * Batching (group commit). `append` encodes at once, so a record that cannot
 * be encoded is refused alone, takes the next seq and queues the frame. A
 * flush writes the whole batch with one write and one fdatasync, then
 * resolves the batch's promises in seq order: a record counts only once it
 * is on disk. A batch is flushed when `maxBatch` records are queued or
 * `batchMs` after its first record was queued; one flush is in flight at a
 * time and records that arrive meanwhile form the next batch, so a slow disk
 * makes batches bigger rather than queues longer. If a write or sync fails
 * the batch and every later append are rejected: nothing counts that is not
 * durable.
 *
 * Torn tail. A crash during a write can leave the last frame incomplete or
 * with a bad crc. That frame was never acknowledged, so `open` cuts the file
 * back to the last good frame, logs one warning and reports it in `torn`.
 * Damage with a valid frame after it is something else (corruption of
 * records that may have been acknowledged) and so is a gap in seq: `open`
 * refuses them rather than drop anything silently, with an UnreadableJournal
 * that names `keel journal check` and `keel journal repair` (src/cli/journal.ts).
 *
 * `open` is not a lock: one writer per file is the journal component's to
 * ensure (src/journal/file-lock.ts).
 */
import { open, readFile, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { crc32 } from 'node:zlib';
import { Packr } from 'msgpackr';
import type { Logger } from 'pino';
import { makeDirectory } from '../files.js';
import type { Journal, JournalEntry, LedgerRecord } from './records.js';

export interface FileJournalOptions {
  /**
   * Longest a record waits for its batch to be flushed, ms (default 0: at
   * once when no flush is in flight; under load the records that arrive
   * during a sync still form the next batch). npm run bench -- ledger: a
   * wait only adds latency on this machine, it does not batch better.
   */
  readonly batchMs?: number;
  /** Flush at once when this many records are queued (default 256). */
  readonly maxBatch?: number;
  /** fdatasync each batch (default true; false only for a journal that can be made again, a replay's, and benchmarks' contrast). */
  readonly sync?: boolean;
  readonly log?: Logger;
}

/** What `open` cut off the end of the file: an unacknowledged frame a crash left half written. */
export interface TornTail {
  readonly offset: number;
  readonly bytes: number;
  readonly reason: string;
}

export interface OpenedJournal {
  readonly journal: FileJournal;
  /** Every entry in the file, oldest first. */
  readonly entries: JournalEntry[];
  readonly torn?: TornTail;
}

/** What this journal has written since it was opened. */
export interface JournalStats {
  readonly records: number;
  readonly batches: number;
  readonly bytes: number;
}

/** A file `open` refuses: not a journal, another format version, damage before the last frame, or a gap in seq. */
export class UnreadableJournal extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnreadableJournal';
  }
}

/** `path` as one shell word: quoted only when it has to be. */
export function shellWord(path: string): string {
  return /^[\w@%+=:,./-]+$/.test(path) ? path : `'${path.replaceAll("'", `'\\''`)}'`;
}

/** What to run about a journal keel will not open. */
export function repairAdvice(path: string): string {
  return `see the damage with \`keel journal check ${shellWord(path)}\`, write a repaired copy beside it with \`keel journal repair ${shellWord(path)}\``;
}

const MAGIC = Buffer.from('KEELJNL1', 'latin1');
const VERSION = 1;
const HEADER_BYTES = MAGIC.length + 4;
const FRAME_HEADER_BYTES = 8;

function fileHeader(): Buffer {
  const header = Buffer.alloc(HEADER_BYTES);
  MAGIC.copy(header, 0);
  header.writeUInt32LE(VERSION, MAGIC.length);
  return header;
}

// One encoder and one decoder: msgpackr instances keep state between calls, so they are not mixed.
const encoder = new Packr();
const decoder = new Packr();

type FrameRead = { ok: true; seq: number; record: LedgerRecord; end: number } | { ok: false; reason: string };

/** Reads the frame at `offset` of `data`, checking its length, crc and shape. */
function readFrame(data: Buffer, offset: number): FrameRead {
  const left = data.length - offset;
  if (left < FRAME_HEADER_BYTES) return { ok: false, reason: `incomplete frame header (${left} of ${FRAME_HEADER_BYTES} bytes)` };
  const length = data.readUInt32LE(offset);
  const end = offset + FRAME_HEADER_BYTES + length;
  if (length === 0) return { ok: false, reason: 'empty frame' };
  if (end > data.length) return { ok: false, reason: `incomplete frame (${left} of ${FRAME_HEADER_BYTES + length} bytes)` };
  const payload = data.subarray(offset + FRAME_HEADER_BYTES, end);
  if (crc32(payload) !== data.readUInt32LE(offset + 4)) return { ok: false, reason: 'crc mismatch' };
  let decoded: unknown;
  try {
    decoded = decoder.unpack(payload);
  } catch (error) {
    return { ok: false, reason: `undecodable payload (${(error as Error).message})` };
  }
  if (!Array.isArray(decoded) || decoded.length !== 2) return { ok: false, reason: 'payload is not [seq, record]' };
  const [seq, record] = decoded as [unknown, unknown];
  if (!Number.isSafeInteger(seq) || (seq as number) < 1) return { ok: false, reason: `bad seq ${String(seq)}` };
  if (typeof record !== 'object' || record === null || typeof (record as { type?: unknown }).type !== 'string') {
    return { ok: false, reason: 'record has no type' };
  }
  return { ok: true, seq: seq as number, record: record as LedgerRecord, end };
}

/** The first offset after `from` where a valid frame starts, if any: tells a torn tail from damage in the middle. */
function nextValidFrame(data: Buffer, from: number): number | undefined {
  for (let offset = from; offset + FRAME_HEADER_BYTES < data.length; offset++) {
    if (readFrame(data, offset).ok) return offset;
  }
  return undefined;
}

/** A frame whose length, crc and shape check out, where it lies in the file. */
export interface ScannedFrame {
  readonly offset: number;
  readonly end: number;
  readonly seq: number;
  readonly record: LedgerRecord;
  /** The frame's bytes as stored: tells an identical copy from a different record under the same seq. */
  readonly payload: Buffer;
}

/** Bytes that hold no valid frame. */
export interface DamagedRange {
  readonly offset: number;
  readonly bytes: number;
  readonly reason: string;
  /** The end of the file, with no valid frame after: what a crash mid-write leaves. */
  readonly torn: boolean;
}

/** Everything readable in a journal file, without judging the sequence. */
export interface JournalScan {
  readonly size: number;
  /** Why the file header is not a keel journal's: then nothing else was read. */
  readonly header?: string;
  /** Every valid frame in file order, also those after damage (found by looking for the next valid frame). */
  readonly frames: ScannedFrame[];
  /** Every damaged range, in file order. */
  readonly damage: DamagedRange[];
}

/** Reads every frame of a journal's bytes, carrying on past damage; changes nothing. For `keel journal check|repair|show`. */
export function scanJournal(data: Buffer): JournalScan {
  const size = data.length;
  if (size < HEADER_BYTES) {
    if (!fileHeader().subarray(0, size).equals(data)) return { size, header: `not a keel journal (no ${MAGIC.toString('latin1')} header)`, frames: [], damage: [] };
    // As `open` sees it: a new file, or a header a crash cut short.
    return { size, frames: [], damage: size > 0 ? [{ offset: 0, bytes: size, reason: 'incomplete file header', torn: true }] : [] };
  }
  if (!data.subarray(0, MAGIC.length).equals(MAGIC)) return { size, header: `not a keel journal (no ${MAGIC.toString('latin1')} header)`, frames: [], damage: [] };
  const version = data.readUInt32LE(MAGIC.length);
  if (version !== VERSION) return { size, header: `journal format version ${version}, this keel reads version ${VERSION}`, frames: [], damage: [] };
  const frames: ScannedFrame[] = [];
  const damage: DamagedRange[] = [];
  for (let offset = HEADER_BYTES; offset < size; ) {
    const frame = readFrame(data, offset);
    if (frame.ok) {
      frames.push({ offset, end: frame.end, seq: frame.seq, record: frame.record, payload: data.subarray(offset + FRAME_HEADER_BYTES, frame.end) });
      offset = frame.end;
      continue;
    }
    const next = nextValidFrame(data, offset + 1);
    damage.push({ offset, bytes: (next ?? size) - offset, reason: frame.reason, torn: next === undefined });
    if (next === undefined) break;
    offset = next;
  }
  return { size, frames, damage };
}

interface Pending {
  readonly seq: number;
  readonly frame: Buffer;
  readonly queuedAt: number;
  readonly resolve: (seq: number) => void;
  readonly reject: (error: Error) => void;
}

export class FileJournal implements Journal {
  /**
   * Opens (or creates) the journal at `path` and reads every entry in it.
   * Cuts off a torn tail; rejects a file that is not a keel journal, has
   * damage before its last frame or a gap in seq.
   */
  static async open(path: string, options: FileJournalOptions = {}): Promise<OpenedJournal> {
    await makeDirectory(dirname(path));
    const handle = await open(path, 'a+');
    try {
      const data = await readFile(path);
      const { entries, frameStarts, end, torn } = await FileJournal.scan(path, handle, data);
      if (torn) {
        options.log?.warn(
          { file: path, offset: torn.offset, bytes: torn.bytes, reason: torn.reason },
          `journal ${path}: torn tail at byte ${torn.offset} (${torn.reason}): dropped ${torn.bytes} bytes that were never acknowledged`,
        );
      }
      const journal = new FileJournal(path, handle, options, frameStarts, end);
      return torn ? { journal, entries, torn } : { journal, entries };
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  /** Checks the header and every frame; writes a missing header and cuts a torn tail off. */
  private static async scan(path: string, handle: FileHandle, data: Buffer) {
    const header = fileHeader();
    let torn: TornTail | undefined;
    if (data.length < HEADER_BYTES) {
      if (!header.subarray(0, data.length).equals(data)) throw new UnreadableJournal(`${path} is not a keel journal (no ${MAGIC.toString('latin1')} header)`);
      // A new file, or one a crash left with part of its header: nothing was ever recorded in it.
      if (data.length > 0) torn = { offset: 0, bytes: data.length, reason: 'incomplete file header' };
      await handle.truncate(0);
      await handle.write(header);
      await handle.datasync();
      await syncDirectory(dirname(path));
      return { entries: [], frameStarts: [], end: HEADER_BYTES, torn };
    }
    if (!data.subarray(0, MAGIC.length).equals(MAGIC)) throw new UnreadableJournal(`${path} is not a keel journal (no ${MAGIC.toString('latin1')} header)`);
    const version = data.readUInt32LE(MAGIC.length);
    if (version !== VERSION) throw new UnreadableJournal(`${path}: journal format version ${version}, this keel reads version ${VERSION}`);

    const entries: JournalEntry[] = [];
    const frameStarts: number[] = [];
    let offset = HEADER_BYTES;
    while (offset < data.length) {
      const frame = readFrame(data, offset);
      if (!frame.ok) {
        const next = nextValidFrame(data, offset + 1);
        if (next !== undefined) {
          throw new UnreadableJournal(
            `${path}: damaged frame at byte ${offset} (${frame.reason}) with a valid frame after it at byte ${next}: ` +
              `records that were acknowledged may be damaged, so the journal will not open; ${repairAdvice(path)}`,
          );
        }
        torn = { offset, bytes: data.length - offset, reason: frame.reason };
        await handle.truncate(offset);
        await handle.datasync();
        break;
      }
      const expected = entries.length + 1;
      if (frame.seq !== expected) {
        const what = frame.seq < expected ? 'seq goes back (a duplicated tail?)' : 'the journal has a gap';
        throw new UnreadableJournal(`${path}: frame at byte ${offset} has seq ${frame.seq}, expected ${expected}: ${what}; ${repairAdvice(path)}`);
      }
      entries.push({ seq: frame.seq, record: frame.record });
      frameStarts.push(offset);
      offset = frame.end;
    }
    return { entries, frameStarts, end: offset, torn };
  }

  private readonly batchMs: number;
  private readonly maxBatch: number;
  private readonly sync: boolean;
  private readonly log: Logger | undefined;
  /** Byte offset where each durable frame starts: index seq - 1. */
  private readonly frameStarts: number[];
  /** End of the last durable frame. */
  private end: number;
  private nextSeq: number;
  private durable: number;
  private queue: Pending[] = [];
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private failure: Error | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;
  private readonly counts = { records: 0, batches: 0, bytes: 0 };
  private flushTime = 0;
  private readonly flushListeners = new Set<(ms: number) => void>();

  private constructor(
    readonly path: string,
    private readonly handle: FileHandle,
    options: FileJournalOptions,
    frameStarts: number[],
    end: number,
  ) {
    this.batchMs = options.batchMs ?? 0;
    this.maxBatch = Math.max(1, options.maxBatch ?? 256);
    this.sync = options.sync ?? true;
    this.log = options.log;
    this.frameStarts = frameStarts;
    this.end = end;
    this.durable = frameStarts.length;
    this.nextSeq = this.durable + 1;
  }

  get durableSeq(): number {
    return this.durable;
  }

  /** Records, batches and bytes this journal has made durable since it was opened. */
  get stats(): JournalStats {
    return { ...this.counts };
  }

  /** Time spent writing and syncing the batches of `stats`, ms (over `stats.batches`: the mean flush). */
  get flushMs(): number {
    return this.flushTime;
  }

  /** Calls `listener` with the time each batch took to write and sync, ms (the inspector's latency histogram); returns the unsubscribe. */
  onFlush(listener: (ms: number) => void): () => void {
    this.flushListeners.add(listener);
    return () => this.flushListeners.delete(listener);
  }

  append(record: LedgerRecord): Promise<number> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new Error(`journal ${this.path} is closed: cannot append a ${record.type} record`));
    const seq = this.nextSeq;
    let payload: Buffer;
    try {
      payload = encoder.pack([seq, record]);
    } catch (error) {
      return Promise.reject(new Error(`journal ${this.path}: cannot encode a ${record.type} record: ${(error as Error).message}`, { cause: error }));
    }
    this.nextSeq++;
    const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
    frame.writeUInt32LE(payload.length, 0);
    frame.writeUInt32LE(crc32(payload), 4);
    payload.copy(frame, FRAME_HEADER_BYTES);
    return new Promise<number>((resolve, reject) => {
      this.queue.push({ seq, frame, queuedAt: performance.now(), resolve, reject });
      // The first record of a batch starts its clock; a full batch goes at once.
      if (this.queue.length === 1 || this.queue.length >= this.maxBatch) this.kick();
    });
  }

  async entriesSince(seq: number): Promise<JournalEntry[]> {
    if (!Number.isInteger(seq)) throw new Error(`journal ${this.path}: entriesSince needs a whole seq, got ${seq}`);
    if (this.closed) throw new Error(`journal ${this.path} is closed: cannot read entries`);
    // Only what is durable now: frames being written sit past `end`.
    const last = this.durable;
    if (seq >= last) return [];
    const start = this.frameStarts[Math.max(0, seq)]!;
    const data = Buffer.alloc(this.end - start);
    for (let read = 0; read < data.length; ) {
      const { bytesRead } = await this.handle.read(data, read, data.length - read, start + read);
      if (bytesRead === 0) throw new Error(`journal ${this.path}: file ends at byte ${start + read}, expected durable frames up to byte ${this.end}`);
      read += bytesRead;
    }
    const entries: JournalEntry[] = [];
    for (let offset = 0; offset < data.length; ) {
      const frame = readFrame(data, offset);
      if (!frame.ok) throw new Error(`journal ${this.path}: durable frame at byte ${start + offset} reads back damaged (${frame.reason})`);
      entries.push({ seq: frame.seq, record: frame.record });
      offset = frame.end;
    }
    return entries;
  }

  /** Makes everything queued durable, then closes the file. Rejects if the journal failed. */
  close(): Promise<void> {
    if (!this.closing) {
      this.closed = true;
      this.closing = this.finish();
    }
    return this.closing;
  }

  private async finish(): Promise<void> {
    this.kick();
    // Each flush starts the next one while records are queued.
    while (this.inFlight) await this.inFlight;
    await this.handle.close();
    if (this.failure) throw this.failure;
  }

  /** Flushes now if the batch is due, or sets the timer for when it will be. */
  private kick(): void {
    const first = this.queue[0];
    if (this.inFlight || !first) return;
    const waited = performance.now() - first.queuedAt;
    if (this.queue.length >= this.maxBatch || waited >= this.batchMs || this.closed) {
      this.inFlight = this.flush();
      return;
    }
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      if (!this.inFlight) this.inFlight = this.flush();
    }, this.batchMs - waited);
  }

  private async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.queue.splice(0, this.maxBatch);
    const bytes = batch.length === 1 ? batch[0]!.frame : Buffer.concat(batch.map((p) => p.frame));
    const started = performance.now();
    try {
      await this.writeAll(bytes);
      if (this.sync) await this.handle.datasync();
    } catch (error) {
      await this.fail(error as Error, batch);
      this.inFlight = undefined;
      return;
    }
    for (const pending of batch) {
      this.frameStarts.push(this.end);
      this.end += pending.frame.length;
    }
    this.durable = batch.at(-1)!.seq;
    this.counts.records += batch.length;
    this.counts.batches++;
    this.counts.bytes += bytes.length;
    const ms = performance.now() - started;
    this.flushTime += ms;
    for (const pending of batch) pending.resolve(pending.seq);
    for (const listener of this.flushListeners) {
      try {
        listener(ms);
      } catch (error) {
        // A listener's bug must not stall the journal: the next flush starts below.
        this.log?.error({ file: this.path, err: error }, 'a journal flush listener threw');
      }
    }
    this.inFlight = undefined;
    this.kick();
  }

  private async writeAll(bytes: Buffer): Promise<void> {
    // The file is opened for appending: every write lands at its end.
    for (let written = 0; written < bytes.length; ) {
      const { bytesWritten } = await this.handle.write(bytes, written, bytes.length - written);
      if (bytesWritten === 0) throw new Error('the write made no progress');
      written += bytesWritten;
    }
  }

  /** Refuses the batch, everything queued and every later append. */
  private async fail(cause: Error, batch: Pending[]): Promise<void> {
    const failed = [...batch, ...this.queue];
    this.queue = [];
    this.failure = new Error(
      `journal ${this.path}: writing records from seq ${batch[0]!.seq} failed (${cause.message}); ` +
        `durable up to seq ${this.durable}, no further appends are accepted`,
      { cause },
    );
    this.log?.error({ file: this.path, err: cause, durableSeq: this.durable }, this.failure.message);
    for (const pending of failed) pending.reject(this.failure);
    // Best effort: cut what may have half reached the disk, so refused records do not come back at the next open.
    await this.handle.truncate(this.end).catch(() => undefined);
  }
}

/** Makes a new file's directory entry durable. */
async function syncDirectory(directory: string): Promise<void> {
  const handle = await open(directory, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
