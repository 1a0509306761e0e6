/**
 * The market-data tape of one shard: what the data node writes to the
 * shard's input stream, one entry per shard per tick, and what a shard
 * worker reads back and replays into its features.
 *
 * An entry holds every bus event of the shard's instruments since the last
 * tick, in the order the data node applied them (segments: a book batch's
 * top-of-book changes with the touched books' levels, prints, level-1
 * quotes, book resets), then the tick itself: its sequence number and time.
 * A worker that replays the same entries computes the same features,
 * whichever process and whenever it runs, so a shard moved to another
 * worker goes on exactly where the last commit left it.
 *
 * Times on the tape are epoch milliseconds (the data node's monotonic clock
 * plus a fixed offset), so they keep increasing across a restart of the data
 * node. The sequence number is the tick's index since the epoch
 * (`floor(at / tickMs)`, forced to rise): every shard's tick k is the same
 * instant, so sampling clocks line up across workers.
 *
 * Instruments are numbered within the entry: position in `symbols`, the
 * shard's instruments in the data node's universe order. Typed arrays go as
 * their bytes (msgpack `bin`); only keel reads this format.
 */
import { Packr } from 'msgpackr';
import type { TradeBatch } from '../ib/trade-feed.js';
import type { QuoteBoard } from '../ib/quote-board.js';
import { ASK, BID } from '../market/order-book.js';
import type { OrderBooks } from '../market/books.js';
import { shardOf } from './shards.js';

const packr = new Packr({ useRecords: false });

export const TAPE_FORMAT = 1;

/** A book batch: its top-of-book changes, then the levels of every book it touched. */
export interface BookSegment {
  readonly kind: 'book';
  readonly top: { instrument: Int32Array; bidPrice: Float64Array; bidSize: Float64Array; askPrice: Float64Array; askSize: Float64Array; at: Float64Array };
  /** Levels per side kept by the data node's books. */
  readonly rows: number;
  readonly touched: Int32Array;
  readonly updatedAt: Float64Array;
  /** Per touched book: asks then bids level counts. */
  readonly count: Int32Array;
  /** Per touched book, `2 * rows` prices and sizes: asks best first, then bids best first (OrderBook's layout). */
  readonly price: Float64Array;
  readonly size: Float64Array;
}

export interface TradeSegment {
  readonly kind: 'trades';
  readonly instrument: Int32Array;
  readonly price: Float64Array;
  readonly size: Float64Array;
  readonly at: Float64Array;
}

/** Level-1 quotes of instruments without a book. */
export interface QuoteSegment {
  readonly kind: 'quotes';
  readonly at: number;
  readonly instrument: Int32Array;
  readonly bid: Float64Array;
  readonly bidSize: Float64Array;
  readonly ask: Float64Array;
  readonly askSize: Float64Array;
}

export interface ResetSegment {
  readonly kind: 'reset';
  readonly instrument: number;
}

export type TapeSegment = BookSegment | TradeSegment | QuoteSegment | ResetSegment;

export interface TapeEntry {
  readonly format: number;
  readonly shard: number;
  /** The tick: index since the epoch in `tickMs` steps, and its time on the tape (epoch ms). */
  readonly seq: number;
  readonly at: number;
  readonly tickMs: number;
  readonly symbols: readonly string[];
  /** Per instrument, whether the data node keeps its book. */
  readonly booked: readonly boolean[];
  /** Per instrument, when its depth was last asked of IB (tape time; NaN: not asked). */
  readonly depthAskedAt: Float64Array;
  readonly segments: readonly TapeSegment[];
}

// --- bytes ---------------------------------------------------------------------

type Typed = Float64Array | Int32Array;

const bytesOf = (a: Typed): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** A fresh, aligned array from `bin` bytes (a Buffer slice may sit at any offset). */
function f64(value: unknown, what: string): Float64Array {
  if (!(value instanceof Uint8Array) || value.byteLength % 8 !== 0) throw new Error(`tape entry: ${what} is not a float64 array`);
  const out = new Float64Array(value.byteLength / 8);
  new Uint8Array(out.buffer).set(value);
  return out;
}

function i32(value: unknown, what: string): Int32Array {
  if (!(value instanceof Uint8Array) || value.byteLength % 4 !== 0) throw new Error(`tape entry: ${what} is not an int32 array`);
  const out = new Int32Array(value.byteLength / 4);
  new Uint8Array(out.buffer).set(value);
  return out;
}

function num(value: unknown, what: string): number {
  if (typeof value !== 'number') throw new Error(`tape entry: ${what} is not a number`);
  return value;
}

// --- the data node's side --------------------------------------------------------

/** Growable columns of one segment under construction. */
class Columns {
  readonly f: number[][];
  readonly i: number[] = [];
  constructor(fields: number) {
    this.f = Array.from({ length: fields }, () => []);
  }
}

interface ShardDraft {
  readonly shard: number;
  /** Universe indices of the shard's instruments, ascending. */
  readonly members: number[];
  segments: unknown[];
}

/**
 * Collects the bus events of a whole universe into one draft per shard and
 * writes each shard's entry at every tick. The events are the reused bus
 * payloads: each call copies what it keeps.
 */
export class TapeWriter {
  readonly shards: readonly number[];
  private readonly drafts: ShardDraft[];
  /** Per universe instrument: its draft, and its number within the shard. */
  private readonly draftOf: ShardDraft[];
  private readonly local: Int32Array;
  private lastSeq = -Infinity;

  constructor(
    private readonly symbols: readonly string[],
    private readonly booked: readonly boolean[],
    readonly shardCount: number,
    readonly tickMs: number,
  ) {
    if (!(Number.isInteger(tickMs) && tickMs > 0)) throw new Error(`tape: tickMs must be a positive integer, got ${tickMs}`);
    const byShard = new Map<number, ShardDraft>();
    this.draftOf = [];
    this.local = new Int32Array(symbols.length);
    symbols.forEach((symbol, i) => {
      const shard = shardOf(symbol, shardCount);
      let draft = byShard.get(shard);
      if (!draft) byShard.set(shard, (draft = { shard, members: [], segments: [] }));
      this.local[i] = draft.members.length;
      draft.members.push(i);
      this.draftOf[i] = draft;
    });
    this.drafts = [...byShard.values()].sort((a, b) => a.shard - b.shard);
    this.shards = this.drafts.map((d) => d.shard);
  }

  /** A book batch applied to `books` (universe-indexed), its times shifted by `toTape`. */
  onBook(books: OrderBooks, toTape: number): void {
    const tops = new Map<ShardDraft, Columns>();
    const t = books.tops;
    for (let n = 0; n < t.count; n++) {
      const i = t.instrument[n]!;
      const draft = this.draftOf[i];
      if (!draft) continue;
      let c = tops.get(draft);
      if (!c) tops.set(draft, (c = new Columns(5)));
      c.i.push(this.local[i]!);
      c.f[0]!.push(t.bidPrice[n]!);
      c.f[1]!.push(t.bidSize[n]!);
      c.f[2]!.push(t.askPrice[n]!);
      c.f[3]!.push(t.askSize[n]!);
      c.f[4]!.push(t.at[n]! + toTape);
    }
    const touched = new Map<ShardDraft, number[]>();
    for (let k = 0; k < books.touchedCount; k++) {
      const i = books.touched[k]!;
      const draft = this.draftOf[i];
      if (!draft) continue;
      let list = touched.get(draft);
      if (!list) touched.set(draft, (list = []));
      list.push(i);
    }
    const rows = books.books[0]?.maxRows ?? 0;
    for (const draft of new Set([...tops.keys(), ...touched.keys()])) {
      const c = tops.get(draft) ?? new Columns(5);
      const list = touched.get(draft) ?? [];
      const price = new Float64Array(list.length * 2 * rows);
      const size = new Float64Array(list.length * 2 * rows);
      const count = new Int32Array(list.length * 2);
      const updatedAt = new Float64Array(list.length);
      list.forEach((i, k) => {
        const book = books.books[i]!;
        price.set(book.price.subarray(0, 2 * rows), k * 2 * rows);
        size.set(book.size.subarray(0, 2 * rows), k * 2 * rows);
        count[2 * k] = book.count[ASK]!;
        count[2 * k + 1] = book.count[BID]!;
        updatedAt[k] = book.updatedAt + toTape;
      });
      draft.segments.push({
        k: 'book',
        ti: bytesOf(Int32Array.from(c.i)),
        tf: c.f.map((col) => bytesOf(Float64Array.from(col))),
        rows,
        touched: bytesOf(Int32Array.from(list, (i) => this.local[i]!)),
        updatedAt: bytesOf(updatedAt),
        count: bytesOf(count),
        price: bytesOf(price),
        size: bytesOf(size),
      });
    }
  }

  onTrades(batch: TradeBatch, toTape: number): void {
    const byDraft = new Map<ShardDraft, Columns>();
    for (let n = 0; n < batch.count; n++) {
      const i = batch.instrument[n]!;
      const draft = this.draftOf[i];
      if (!draft) continue;
      let c = byDraft.get(draft);
      if (!c) byDraft.set(draft, (c = new Columns(3)));
      c.i.push(this.local[i]!);
      c.f[0]!.push(batch.price[n]!);
      c.f[1]!.push(batch.size[n]!);
      c.f[2]!.push(batch.receivedAt[n]! + toTape);
    }
    for (const [draft, c] of byDraft) draft.segments.push({ k: 'trades', i: bytesOf(Int32Array.from(c.i)), f: c.f.map((col) => bytesOf(Float64Array.from(col))) });
  }

  /** The changed tops of the instruments without a book. */
  onQuotes(quotes: QuoteBoard, toTape: number): void {
    const byDraft = new Map<ShardDraft, Columns>();
    for (let n = 0; n < quotes.changedCount; n++) {
      const i = quotes.changed[n]!;
      const draft = this.draftOf[i];
      if (!draft) continue;
      let c = byDraft.get(draft);
      if (!c) byDraft.set(draft, (c = new Columns(4)));
      c.i.push(this.local[i]!);
      c.f[0]!.push(quotes.bid[i]!);
      c.f[1]!.push(quotes.bidSize[i]!);
      c.f[2]!.push(quotes.ask[i]!);
      c.f[3]!.push(quotes.askSize[i]!);
    }
    for (const [draft, c] of byDraft) draft.segments.push({ k: 'quotes', at: quotes.changedAt + toTape, i: bytesOf(Int32Array.from(c.i)), f: c.f.map((col) => bytesOf(Float64Array.from(col))) });
  }

  onReset(instrument: number): void {
    const draft = this.draftOf[instrument];
    if (draft) draft.segments.push({ k: 'reset', i: this.local[instrument]! });
  }

  /**
   * Ends the tick at tape time `at`: one entry per shard (every shard with an
   * instrument, quiet or not: the tick is what advances its clocks), in shard
   * order. `depthAskedAt` is universe-indexed, already in tape time.
   */
  tick(at: number, depthAskedAt?: Float64Array): { seq: number; entries: { shard: number; body: Buffer }[] } {
    const seq = Math.max(this.lastSeq + 1, Math.floor(at / this.tickMs));
    this.lastSeq = seq;
    const entries = this.drafts.map((draft) => {
      const asked = Float64Array.from(draft.members, (i) => depthAskedAt?.[i] ?? NaN);
      const body = packr.pack({
        format: TAPE_FORMAT,
        shard: draft.shard,
        seq,
        at,
        tickMs: this.tickMs,
        symbols: draft.members.map((i) => this.symbols[i]!),
        booked: draft.members.map((i) => this.booked[i] ?? false),
        asked: bytesOf(asked),
        segments: draft.segments,
      });
      draft.segments = [];
      return { shard: draft.shard, body };
    });
    return { seq, entries };
  }
}

// --- the worker's side -------------------------------------------------------------

function segmentOf(raw: unknown, n: number): TapeSegment {
  const s = raw as Record<string, unknown>;
  const f = (s.f ?? s.tf) as unknown[] | undefined;
  const col = (k: number) => f64(f?.[k], `segment ${n} column ${k}`);
  switch (s.k) {
    case 'book':
      return {
        kind: 'book',
        top: { instrument: i32(s.ti, `segment ${n} top instruments`), bidPrice: col(0), bidSize: col(1), askPrice: col(2), askSize: col(3), at: col(4) },
        rows: num(s.rows, `segment ${n} rows`),
        touched: i32(s.touched, `segment ${n} touched`),
        updatedAt: f64(s.updatedAt, `segment ${n} updatedAt`),
        count: i32(s.count, `segment ${n} count`),
        price: f64(s.price, `segment ${n} price`),
        size: f64(s.size, `segment ${n} size`),
      };
    case 'trades':
      return { kind: 'trades', instrument: i32(s.i, `segment ${n} instruments`), price: col(0), size: col(1), at: col(2) };
    case 'quotes':
      return { kind: 'quotes', at: num(s.at, `segment ${n} at`), instrument: i32(s.i, `segment ${n} instruments`), bid: col(0), bidSize: col(1), ask: col(2), askSize: col(3) };
    case 'reset':
      return { kind: 'reset', instrument: num(s.i, `segment ${n} instrument`) };
    default:
      throw new Error(`tape entry: segment ${n} has unknown kind ${String(s.k)}`);
  }
}

/** An input stream entry's body; throws an Error naming what is malformed. */
export function decodeTape(body: Buffer | Uint8Array): TapeEntry {
  let raw: Record<string, unknown>;
  try {
    raw = packr.unpack(body) as Record<string, unknown>;
  } catch (error) {
    throw new Error(`tape entry: not msgpack (${(error as Error).message})`);
  }
  if (raw === null || typeof raw !== 'object') throw new Error('tape entry: not a map');
  if (raw.format !== TAPE_FORMAT) throw new Error(`tape entry: format ${String(raw.format)}, this keel reads format ${TAPE_FORMAT}`);
  const symbols = raw.symbols;
  if (!Array.isArray(symbols) || !symbols.every((s) => typeof s === 'string')) throw new Error('tape entry: symbols is not a list of strings');
  const booked = raw.booked;
  if (!Array.isArray(booked) || booked.length !== symbols.length) throw new Error('tape entry: booked does not match symbols');
  const segments = raw.segments;
  if (!Array.isArray(segments)) throw new Error('tape entry: segments is not a list');
  const depthAskedAt = f64(raw.asked, 'asked');
  if (depthAskedAt.length !== symbols.length) throw new Error('tape entry: asked does not match symbols');
  return {
    format: TAPE_FORMAT,
    shard: num(raw.shard, 'shard'),
    seq: num(raw.seq, 'seq'),
    at: num(raw.at, 'at'),
    tickMs: num(raw.tickMs, 'tickMs'),
    symbols: symbols as string[],
    booked: booked.map(Boolean),
    depthAskedAt,
    segments: segments.map(segmentOf),
  };
}
