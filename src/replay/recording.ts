/**
 * keel's recording format: what the books and the features received, in the
 * order it arrived, so `keel replay` can feed it through the same actors.
 *
 * A file is a sequence of frames, each a 4-byte big-endian length and a
 * msgpackr body. The first frame is the header (the instruments, which of
 * them have a book, the feature schema of the recording daemon, when it
 * started); every later frame is a chunk of up to `capacity` rows in
 * columns (typed arrays, packed as they are), or an option chain's listing.
 * One row is a depth update, a print, a book reset, or an input of an
 * option chain (src/options/chain-input.ts: a quote, a size, a field of
 * IB's computation, the underlying's quote, a pricing), stamped with its
 * monotonic arrival time: 33 bytes, 37 in a chunk that holds option rows
 * (only those carry the `contract` column).
 *
 * Version 2 added the option chain (listing frames, option rows, the
 * `contract` column); a version 1 file has none of them and reads as it
 * always did. Version 3 added option prints (inputs 16 to 18) and listed
 * contracts' multipliers; a version 2 file has neither and reads as before.
 *
 * A file cut short (the daemon killed mid-write) reads up to its last whole
 * chunk; anything else that is not a recording is an error naming the file,
 * the byte offset and what was wrong.
 */
import { open } from 'node:fs/promises';
import { Packr } from 'msgpackr';
import type { FeatureSchema } from '../market/features.js';
import { CHAIN_INPUT, LAST_CHAIN_INPUT, type ChainListing } from '../options/chain-input.js';

export const RECORDING_FORMAT = 'keel-recording';
/** The version keel writes; it reads every version up to it. */
export const RECORDING_VERSION = 3;

/** Row kinds. */
export const DEPTH_ROW = 0;
export const TRADE_ROW = 1;
export const RESET_ROW = 2;
/** An option chain's input: `instrument` its underlying, `contract` the option's conId (0: the underlying's quote or a pricing), `side` the input code, `price` its value. Version 2 on. */
export const OPTION_ROW = 3;

/** The last row kind and the last option input of each version. */
const LAST_KIND: Readonly<Record<number, number>> = { 1: RESET_ROW, 2: OPTION_ROW, 3: OPTION_ROW };
const LAST_INPUT: Readonly<Record<number, number>> = { 1: -1, 2: CHAIN_INPUT.ASK_SIZE, 3: LAST_CHAIN_INPUT };

export interface RecordingHeader {
  readonly format: typeof RECORDING_FORMAT;
  readonly version: number;
  /** The universe, index = instrument id in the rows. */
  readonly instruments: readonly string[];
  /** Per instrument, whether it had a depth feed (its data age is judged). */
  readonly booked: readonly boolean[];
  /** The feature schema of the daemon that recorded: replay recomputes features, this says what they were. */
  readonly featureSchema: FeatureSchema;
  /** Wall-clock time (epoch ms) at monotonic time `monotonicAt`: maps row times back to the day they happened. */
  readonly wallAt: number;
  readonly monotonicAt: number;
  /** Who wrote it: `keel <instance>` or the source it was converted from. */
  readonly source: string;
}

/** A chunk of rows in columns; rows [0, count) are valid. Only the columns of a row's kind mean anything. */
export class RecordedChunk {
  count = 0;
  readonly kind: Uint8Array;
  readonly instrument: Int32Array;
  readonly position: Uint8Array;
  readonly operation: Uint8Array;
  readonly side: Uint8Array;
  readonly smart: Uint8Array;
  readonly price: Float64Array;
  readonly size: Float64Array;
  /** Monotonic arrival time, ms. */
  readonly at: Float64Array;
  /** An option row's conId (0 in other rows). */
  readonly contract: Int32Array;

  constructor(readonly capacity: number) {
    this.kind = new Uint8Array(capacity);
    this.instrument = new Int32Array(capacity);
    this.position = new Uint8Array(capacity);
    this.operation = new Uint8Array(capacity);
    this.side = new Uint8Array(capacity);
    this.smart = new Uint8Array(capacity);
    this.price = new Float64Array(capacity);
    this.size = new Float64Array(capacity);
    this.at = new Float64Array(capacity);
    this.contract = new Int32Array(capacity);
  }

  /** Rows [start, end) as a chunk of their own (a copy). */
  slice(start: number, end: number): RecordedChunk {
    const out = new RecordedChunk(end - start);
    for (const c of [...COLUMNS, 'contract'] as const) out[c].set(this[c].subarray(start, end) as never);
    out.count = end - start;
    return out;
  }

  /** Appends one row; the caller flushes when `count === capacity`. */
  add(kind: number, instrument: number, position: number, operation: number, side: number, smart: number, price: number, size: number, at: number, contract = 0): void {
    const row = this.count++;
    this.kind[row] = kind;
    this.instrument[row] = instrument;
    this.position[row] = position;
    this.operation[row] = operation;
    this.side[row] = side;
    this.smart[row] = smart;
    this.price[row] = price;
    this.size[row] = size;
    this.at[row] = at;
    this.contract[row] = contract;
  }
}

/** An option chain's listing as the recording holds it, and when it came. */
export interface RecordedListing {
  readonly listing: ChainListing;
  /** Monotonic ms. */
  readonly at: number;
}

const COLUMNS = ['kind', 'instrument', 'position', 'operation', 'side', 'smart', 'price', 'size', 'at'] as const;
type Column = (typeof COLUMNS)[number];

// Typed arrays go in as they are (moreTypes), not as lists of numbers.
const packr = new Packr({ moreTypes: true });

function frame(body: Buffer): Buffer {
  const head = Buffer.allocUnsafe(4);
  head.writeUInt32BE(body.length);
  return Buffer.concat([head, body]);
}

export function encodeHeader(header: RecordingHeader): Buffer {
  return frame(packr.pack(header));
}

/** The chunk's valid rows as one frame (a copy: the chunk can be reused at once). */
export function encodeChunk(chunk: RecordedChunk): Buffer {
  const body: Record<string, unknown> = { rows: chunk.count };
  for (const c of COLUMNS) body[c] = chunk[c].subarray(0, chunk.count);
  // Only a chunk with option rows pays for their conIds.
  if (chunk.kind.subarray(0, chunk.count).includes(OPTION_ROW)) body.contract = chunk.contract.subarray(0, chunk.count);
  return frame(packr.pack(body));
}

export function encodeListing(listed: RecordedListing): Buffer {
  return frame(packr.pack({ listing: listed.listing, at: listed.at }));
}

/** A frame larger than this is not one keel wrote (a chunk of 65,536 rows is about 2 MB). */
const MAX_FRAME_BYTES = 64 * 2 ** 20;

export interface Recording {
  readonly header: RecordingHeader;
  /** How far the chunks go, for progress: bytes for a file. */
  readonly total: number;
  /**
   * Chunks and listings in order, each with how far it reaches (of
   * `total`). A chunk is valid until the next is asked for (the reader
   * reuses it). A truncated last frame ends the stream (see `truncated`).
   */
  chunks(): AsyncGenerator<RecordedPiece>;
  /** Set once `chunks()` met a file cut short: how many bytes at the end were not a whole chunk. */
  truncated: number;
}

/** What a recording holds after its header, in order. */
export type RecordedPiece = { readonly chunk: RecordedChunk; readonly done: number } | (RecordedListing & { readonly done: number });

export class RecordingError extends Error {}

/** Opens a recording and reads its header; the chunks are read as they are asked for. */
export async function openRecording(path: string): Promise<Recording> {
  const file = await open(path, 'r').catch((err: NodeJS.ErrnoException) => {
    throw new RecordingError(`cannot open ${path}: ${err.code ?? err.message}`);
  });
  try {
    const bytes = (await file.stat()).size;
    const first = await readFrame(file, 0, bytes, path);
    if (first === 'end' || first === 'truncated') throw new RecordingError(`${path} is not a keel recording: it has no header`);
    const header = decodeHeader(first.body, path);
    const recording: Recording = {
      header,
      total: bytes,
      truncated: 0,
      async *chunks() {
        const reader = await open(path, 'r');
        // One buffer and one chunk for the whole file: a long replay makes no garbage per chunk here.
        const buffer = { bytes: Buffer.alloc(1 << 20) };
        let chunk = new RecordedChunk(0);
        try {
          let offset = first.next;
          for (;;) {
            const read = await readFrame(reader, offset, bytes, path, buffer);
            if (read === 'end') return;
            if (read === 'truncated') {
              recording.truncated = bytes - offset;
              return;
            }
            const piece = decodeFrame(read.body, header, path, offset, chunk);
            if (piece instanceof RecordedChunk) {
              chunk = piece;
              yield { chunk, done: read.next };
            } else {
              yield { ...piece, done: read.next };
            }
            offset = read.next;
          }
        } finally {
          await reader.close();
        }
      },
    };
    return recording;
  } finally {
    await file.close();
  }
}

type FileHandle = Awaited<ReturnType<typeof open>>;

/** Reads the frame at `offset`; its body is a view of `buffer.bytes` (grown when too small), valid until the next read. */
async function readFrame(file: FileHandle, offset: number, bytes: number, path: string, buffer = { bytes: Buffer.alloc(0) }): Promise<{ body: Buffer; next: number } | 'end' | 'truncated'> {
  if (offset === bytes) return 'end';
  if (offset + 4 > bytes) return 'truncated';
  const head = Buffer.alloc(4);
  await file.read(head, 0, 4, offset);
  const length = head.readUInt32BE(0);
  if (length === 0 || length > MAX_FRAME_BYTES) throw new RecordingError(`${path} at byte ${offset}: a frame of ${length} bytes is not one keel writes (corrupt file?)`);
  if (offset + 4 + length > bytes) return 'truncated';
  if (buffer.bytes.length < length) buffer.bytes = Buffer.alloc(length);
  const body = buffer.bytes.subarray(0, length);
  await file.read(body, 0, length, offset + 4);
  return { body, next: offset + 4 + length };
}

function unpack(body: Buffer, where: string): unknown {
  try {
    return packr.unpack(body);
  } catch (err) {
    throw new RecordingError(`${where}: not msgpack (${(err as Error).message})`);
  }
}

function decodeHeader(body: Buffer, path: string): RecordingHeader {
  const h = unpack(body, `${path} header`) as Partial<RecordingHeader> | null;
  if (h?.format !== RECORDING_FORMAT) throw new RecordingError(`${path} is not a keel recording (its first frame does not say '${RECORDING_FORMAT}')`);
  if (typeof h.version !== 'number' || LAST_KIND[h.version] === undefined) throw new RecordingError(`${path} is a version ${String(h.version)} recording; this keel reads versions 1 to ${RECORDING_VERSION}`);
  const bad = (what: string) => new RecordingError(`${path} header: ${what}`);
  if (!Array.isArray(h.instruments) || h.instruments.length === 0 || !h.instruments.every((s) => typeof s === 'string')) throw bad('instruments must be a non-empty list of symbols');
  if (!Array.isArray(h.booked) || h.booked.length !== h.instruments.length) throw bad('booked must have one flag per instrument');
  if (!h.featureSchema || !Array.isArray(h.featureSchema.features)) throw bad('featureSchema is missing');
  if (!Number.isFinite(h.wallAt) || !Number.isFinite(h.monotonicAt)) throw bad('wallAt and monotonicAt must be numbers');
  return h as RecordingHeader;
}

const COLUMN_TYPES: Record<Column, new (n: number) => ArrayLike<number>> = {
  kind: Uint8Array,
  instrument: Int32Array,
  position: Uint8Array,
  operation: Uint8Array,
  side: Uint8Array,
  smart: Uint8Array,
  price: Float64Array,
  size: Float64Array,
  at: Float64Array,
};

/** Decodes a frame after the header: a listing, or a chunk (into `into` when it has room, else into a new chunk). */
function decodeFrame(body: Buffer, header: RecordingHeader, path: string, offset: number, into: RecordedChunk): RecordedChunk | RecordedListing {
  const where = `${path} at byte ${offset}`;
  const raw = unpack(body, where) as Record<string, unknown> | null;
  if (raw !== null && typeof raw === 'object' && 'listing' in raw) {
    if (header.version < 2) throw new RecordingError(`${where}: an option listing in a version ${header.version} recording`);
    return decodeListing(raw, where);
  }
  const rows = raw?.rows;
  if (typeof rows !== 'number' || !Number.isInteger(rows) || rows < 0) throw new RecordingError(`${where}: a chunk must say how many rows it has`);
  const chunk = into.capacity >= rows ? into : new RecordedChunk(rows);
  for (const c of COLUMNS) {
    const column = raw![c];
    if (!(column instanceof COLUMN_TYPES[c]) || column.length !== rows) throw new RecordingError(`${where}: column '${c}' is missing or not ${rows} values of ${COLUMN_TYPES[c].name}`);
    chunk[c].set(column as never);
  }
  const contract = raw!.contract;
  if (contract === undefined) chunk.contract.fill(0, 0, rows);
  else if (contract instanceof Int32Array && contract.length === rows) chunk.contract.set(contract);
  else throw new RecordingError(`${where}: column 'contract' is not ${rows} values of Int32Array`);
  chunk.count = rows;
  const lastKind = LAST_KIND[header.version]!;
  const lastInput = LAST_INPUT[header.version]!;
  for (let i = 0; i < rows; i++) {
    const kind = chunk.kind[i]!;
    if (kind > lastKind) throw new RecordingError(`${where}: row ${i} has unknown kind ${kind} for a version ${header.version} recording`);
    if (chunk.instrument[i]! < 0 || chunk.instrument[i]! >= header.instruments.length) throw new RecordingError(`${where}: row ${i} names instrument ${chunk.instrument[i]}, the header has ${header.instruments.length}`);
    if (kind === OPTION_ROW && (contract === undefined || chunk.side[i]! > lastInput)) throw new RecordingError(`${where}: option row ${i} has ${contract === undefined ? 'no contract column' : `unknown input ${chunk.side[i]} for a version ${header.version} recording`}`);
  }
  return chunk;
}

function decodeListing(raw: Record<string, unknown>, where: string): RecordedListing {
  const l = raw.listing as Partial<ChainListing> | null;
  const bad = (what: string) => new RecordingError(`${where}: option listing: ${what}`);
  if (typeof raw.at !== 'number') throw bad('at must be a number');
  if (!l || typeof l.underlying !== 'string' || typeof l.day !== 'string' || typeof l.allowance !== 'number') throw bad('underlying, day and allowance are missing');
  if (!Array.isArray(l.expiries) || !l.expiries.every((e) => typeof e === 'string')) throw bad('expiries must be a list of YYYYMMDD');
  if (!Array.isArray(l.strikes) || !l.strikes.every((e) => typeof e?.expiry === 'string' && Array.isArray(e.strikes))) throw bad('strikes must list each expiry and its strikes');
  const contract = (c: unknown) => {
    const x = c as Record<string, unknown> | null;
    return typeof x?.conId === 'number' && typeof x.localSymbol === 'string' && typeof x.expiry === 'string' && typeof x.strike === 'number' && (x.right === 'C' || x.right === 'P') && (x.multiplier === undefined || (typeof x.multiplier === 'number' && x.multiplier > 0));
  };
  if (!Array.isArray(l.contracts) || !l.contracts.every(contract)) throw bad('contracts must each have a conId, localSymbol, expiry, strike and right (and a positive multiplier, if any)');
  return { listing: l as ChainListing, at: raw.at };
}

/**
 * Appends rows to a recording file: rows go into a chunk, a full chunk (or
 * `flush()`) is encoded and written behind the previous writes, in order.
 * A write error is reported once through `onError`; later rows are dropped.
 */
export class RecordingWriter {
  private readonly chunk: RecordedChunk;
  private writes: Promise<void> = Promise.resolve();
  private failed = false;
  rows = 0;
  bytes = 0;

  private constructor(
    private readonly file: FileHandle,
    capacity: number,
    private readonly onError: (error: Error) => void,
  ) {
    this.chunk = new RecordedChunk(capacity);
  }

  /** Creates (or replaces) `path` and writes the header. */
  static async create(path: string, header: RecordingHeader, capacity: number, onError: (error: Error) => void): Promise<RecordingWriter> {
    const file = await open(path, 'w');
    const writer = new RecordingWriter(file, capacity, onError);
    writer.write(encodeHeader(header));
    await writer.writes;
    return writer;
  }

  add(kind: number, instrument: number, position: number, operation: number, side: number, smart: number, price: number, size: number, at: number): void {
    this.chunk.add(kind, instrument, position, operation, side, smart, price, size, at);
    this.added();
  }

  /** An option chain's input (an OPTION_ROW): its underlying, the contract's conId, the input code and value. */
  addOption(underlying: number, conId: number, input: number, value: number, at: number): void {
    this.chunk.add(OPTION_ROW, underlying, 0, 0, input, 0, value, NaN, at, conId);
    this.added();
  }

  /** An option chain's listing, after every row added before it. */
  addListing(listed: RecordedListing): void {
    this.flush();
    this.write(encodeListing(listed));
  }

  private added(): void {
    this.rows++;
    if (this.chunk.count === this.chunk.capacity) this.flush();
  }

  /** Encodes what is buffered and queues its write. */
  flush(): void {
    if (this.chunk.count === 0) return;
    const frame = encodeChunk(this.chunk);
    this.chunk.count = 0;
    this.write(frame);
  }

  /** Resolves once every queued write is done: a fast producer waits here so memory stays flat. */
  drain(): Promise<void> {
    return this.writes;
  }

  /** Flushes, waits for every write, and closes the file. */
  async close(): Promise<void> {
    this.flush();
    await this.writes;
    await this.file.close();
  }

  private write(frame: Buffer): void {
    if (this.failed) return;
    this.bytes += frame.length;
    this.writes = this.writes.then(async () => {
      if (this.failed) return;
      try {
        await this.file.write(frame);
      } catch (err) {
        this.failed = true;
        this.onError(err as Error);
      }
    });
  }
}
