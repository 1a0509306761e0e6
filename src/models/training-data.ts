/**
 * Where training rows come from, made honestly: market events go through
 * keel's own feature pipeline exactly as they would live (depth and trade
 * batches, OrderBooks, FeatureEngine with its default options). Every
 * `sampleMs` each warm instrument gives one row: the live feature vector,
 * the true regime when the source knows it, and the forward return.
 *
 *   simulateDataset   the simulator's market, in process on a simulated clock
 *   recordingDataset  a keel recording or a LOBSTER pair, on its own times
 *
 * The same source and options give the same arrays bit for bit: nothing
 * depends on the machine or the wall clock.
 */
import { basename } from 'node:path';
import { DepthBatch } from '../ib/depth-feed.js';
import { TradeBatch } from '../ib/trade-feed.js';
import { OrderBooks } from '../market/books.js';
import { DEFAULT_FEATURE_OPTIONS, FeatureEngine } from '../market/features.js';
import { DEPTH_ROW, RESET_ROW, TRADE_ROW, type Recording } from '../replay/recording.js';
import { defaultSimConfig } from '../sim/config.js';
import { InstrumentUniverse } from '../sim/instruments.js';
import { ASK, BID, INSERT, Market, ROWS, VOLATILE, type Dynamics, type MarketListener, type Operation, type Side } from '../sim/market.js';
import { withHorizon, type Dataset, type DataSource, type LabelledDataset } from './dataset.js';

export const CALM_LABEL = 0;
export const VOLATILE_LABEL = 1;

/** The batch sizes of keel's DepthFeed and TradeFeed. */
const DEPTH_BATCH_ROWS = 4096;
const TRADE_BATCH_ROWS = 1024;
/** How often the simulator reports progress, in simulated ms. */
const PROGRESS_EVERY_MS = 60_000;

export interface SamplingOptions {
  /** One row per warm instrument every `sampleMs` (a multiple of the features' 100 ms base clock). */
  readonly sampleMs: number;
  /** Horizon of the forward return (a multiple of `sampleMs`). */
  readonly horizonMs: number;
}

export interface DatasetOptions extends SamplingOptions {
  readonly seed: number;
  /** The first instruments of the simulator's universe: SPY, QQQ, AAPL, MSFT, then SYN0001... */
  readonly instruments: number;
  /** Simulated seconds to run. */
  readonly seconds: number;
  /** Market events per second per instrument; the simulator's default when unset. */
  readonly updatesPerSecond?: number;
  /** A planted drift: from `atSeconds` every instrument's market moves by `dynamics`. */
  readonly drift?: { readonly atSeconds: number; readonly dynamics: Dynamics };
  /** Called with simulated seconds done and the total, every simulated minute and at the end. */
  readonly onProgress?: (done: number, total: number) => void;
}

/** A growable column of rows. */
class Column<T extends Float64Array | Int32Array | Uint8Array> {
  length = 0;
  constructor(
    private data: T,
    private readonly width = 1,
  ) {}
  push(values: ArrayLike<number>): void {
    if ((this.length + 1) * this.width > this.data.length) {
      const bigger = new (this.data.constructor as new (n: number) => T)(Math.max(1024, this.data.length * 2));
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data.set(values, this.length * this.width);
    this.length++;
  }
  done(): T {
    return this.data.slice(0, this.length * this.width) as T;
  }
}

/**
 * Market rows in, dataset rows out: the depth and trade batches a socket
 * read would publish, applied to keel's books and features, the features
 * clock ticked, and each warm instrument sampled every `sampleMs`.
 */
class FeatureSampler {
  readonly books: OrderBooks;
  readonly engine: FeatureEngine;
  private readonly depthBatch = new DepthBatch(DEPTH_BATCH_ROWS);
  private readonly tradeBatch = new TradeBatch(TRADE_BATCH_ROWS);
  private depthSeq = 0;
  private tradeSeq = 0;
  /** A trade was written before any depth row of this read: its batch goes first. */
  private tradesFirst = false;
  private readonly x: Column<Float64Array>;
  private readonly instrument = new Column(new Int32Array(1024));
  private readonly time = new Column(new Float64Array(1024));
  private readonly regime = new Column(new Uint8Array(1024));
  /** Warm instruments' rows with a non-finite feature, left out, and the first of them in words. */
  nonFinite = 0;
  firstNonFinite = '';

  constructor(
    readonly symbols: readonly string[],
    private readonly sampling: SamplingOptions,
    /** The true regime of an instrument now, when the source knows it. */
    private readonly regimeOf?: (instrument: number) => number,
  ) {
    const n = symbols.length;
    this.books = new OrderBooks(n, ROWS);
    this.engine = new FeatureEngine(n, DEFAULT_FEATURE_OPTIONS);
    this.x = new Column(new Float64Array(1024 * this.engine.width), this.engine.width);
    const baseMs = DEFAULT_FEATURE_OPTIONS.baseMs;
    const whole = (name: string, value: number) => {
      if (!Number.isInteger(value) || value <= 0) throw new Error(`training data: ${name} must be a positive whole number of ms, got ${value}`);
    };
    whole('sampleMs', sampling.sampleMs);
    whole('horizonMs', sampling.horizonMs);
    if (sampling.sampleMs % baseMs !== 0) throw new Error(`training data: sampleMs ${sampling.sampleMs} is not a multiple of the features' ${baseMs} ms base clock`);
    if (sampling.horizonMs % sampling.sampleMs !== 0) throw new Error(`training data: horizonMs ${sampling.horizonMs} is not a multiple of sampleMs ${sampling.sampleMs}`);
  }

  get baseMs(): number {
    return DEFAULT_FEATURE_OPTIONS.baseMs;
  }

  /** One depth row, price in dollars, stamped `at`. */
  depth(instrument: number, side: number, position: number, operation: number, price: number, size: number, at: number): void {
    const b = this.depthBatch;
    if (b.count === b.capacity) this.applyDepth();
    const row = b.count++;
    b.instrument[row] = instrument;
    b.position[row] = position;
    b.operation[row] = operation;
    b.side[row] = side;
    b.smart[row] = 0;
    b.price[row] = price;
    b.size[row] = size;
    b.seq[row] = ++this.depthSeq;
    b.receivedAt[row] = at;
  }

  trade(instrument: number, price: number, size: number, at: number): void {
    const b = this.tradeBatch;
    if (b.count === b.capacity) this.applyTrades();
    if (b.count === 0 && this.depthBatch.count === 0) this.tradesFirst = true;
    const row = b.count++;
    b.instrument[row] = instrument;
    b.price[row] = price;
    b.size[row] = size;
    b.seq[row] = ++this.tradeSeq;
    b.receivedAt[row] = at;
  }

  /** The depth feed was reset (a resubscription): the book and the features start over, as live. */
  reset(instrument: number): void {
    this.flush();
    this.books.reset(instrument);
    this.engine.reset(instrument);
  }

  /** The end of a socket read: each feed publishes its batch, in the order their microtasks were queued. */
  flush(): void {
    if (this.tradesFirst) this.applyTrades();
    this.applyDepth();
    this.applyTrades();
    this.tradesFirst = false;
  }

  /** The features clock at `now` (a multiple of the base clock): ticks, and samples on the sampling clock. */
  tick(now: number): void {
    const { engine } = this;
    engine.tick(now);
    if (now % this.sampling.sampleMs !== 0) return;
    const width = engine.width;
    for (let i = 0; i < this.symbols.length; i++) {
      if (!engine.warm(i, now)) continue;
      const from = i * width;
      const values = engine.values.subarray(from, from + width);
      const bad = values.findIndex((v) => !Number.isFinite(v));
      if (bad >= 0) {
        if (this.nonFinite++ === 0) this.firstNonFinite = `${engine.schema.features[bad]} of ${this.symbols[i]} at ${new Date(now).toISOString()} is ${values[bad]}`;
        continue;
      }
      this.x.push(values);
      this.instrument.push([i]);
      this.time.push([now]);
      this.regime.push([this.regimeOf?.(i) ?? 0]);
    }
  }

  /** Depth rows the books refused. */
  rejected(): number {
    return this.books.books.reduce((n, book) => n + book.totalRejected(), 0);
  }

  /** The rows sampled, with their forward returns. */
  dataset(description: string, sources: readonly DataSource[]): Dataset {
    this.flush();
    const { engine } = this;
    const instrument = this.instrument.done();
    const rows = instrument.length;
    const sampled: Dataset = {
      features: engine.schema.features,
      schema: { name: engine.schema.name, version: engine.schema.version },
      symbols: this.symbols,
      sampleMs: this.sampling.sampleMs,
      horizonMs: this.sampling.horizonMs,
      rows,
      x: this.x.done(),
      instrument,
      time: this.time.done(),
      regime: this.regimeOf ? this.regime.done() : undefined,
      forwardReturn: new Float64Array(rows),
      description,
      sources,
    };
    return withHorizon(sampled, this.sampling.horizonMs);
  }

  private applyDepth(): void {
    if (this.depthBatch.count === 0) return;
    this.books.apply(this.depthBatch);
    this.engine.onBook(this.books);
    this.depthBatch.count = 0;
  }

  private applyTrades(): void {
    if (this.tradeBatch.count === 0) return;
    this.engine.onTrades(this.tradeBatch);
    this.tradeBatch.count = 0;
  }
}

/**
 * What keel's subscriptions would receive from the simulator for every
 * instrument: a plain 10-row depth feed and an AllLast tick-by-tick feed,
 * prices in dollars as the simulator sends them.
 */
class SimulatedFeeds implements MarketListener {
  now = 0;
  constructor(private readonly sampler: FeatureSampler) {}

  depth(instrument: number, side: Side, position: number, operation: Operation, priceTicks: number, size: number): void {
    this.sampler.depth(instrument, side, position, operation, priceTicks / 100, size, this.now);
  }

  trade(instrument: number, priceTicks: number, size: number): void {
    this.sampler.trade(instrument, priceTicks / 100, size, this.now);
  }

  /** The first rows of a new depth subscription: every row of both sides, as the simulator sends them. */
  snapshot(market: Market, instrument: number): void {
    const book = market.bookAt(instrument)!;
    for (let row = 0; row < ROWS; row++) {
      for (const side of [ASK, BID] as const) this.depth(instrument, side, row, INSERT, book.price[side][row]!, book.size[side][row]!);
    }
  }
}

/** Runs the simulated market through keel's feature pipeline and samples it into a dataset. */
export function simulateDataset(options: DatasetOptions): LabelledDataset {
  const sim = defaultSimConfig();
  const { seed, instruments: count, seconds, sampleMs, horizonMs } = options;
  for (const [name, value] of [['instruments', count], ['seconds', seconds]] as const) {
    if (!Number.isInteger(value) || value <= 0) throw new Error(`simulateDataset: ${name} must be a positive whole number, got ${value}`);
  }
  const updatesPerSecond = options.updatesPerSecond ?? sim.updatesPerSecond;
  const universe = new InstrumentUniverse(Math.max(0, count - 4)).all.slice(0, count);
  const sampler: FeatureSampler = new FeatureSampler(
    universe.map((u) => u.symbol),
    { sampleMs, horizonMs },
    // Called only once the market below runs.
    (i): number => (market.bookAt(i)!.regime === VOLATILE ? VOLATILE_LABEL : CALM_LABEL),
  );
  // The simulator's pump period; it must divide the base clock so ticks land on pumps.
  const pumpMs = sim.pumpMs;
  if (sampler.baseMs % pumpMs !== 0) throw new Error(`the simulator's ${pumpMs} ms pump does not divide the features' ${sampler.baseMs} ms base clock`);
  const feeds = new SimulatedFeeds(sampler);
  const market: Market = new Market({ seed, updatesPerSecond }, feeds);
  for (const instrument of universe) {
    market.watch(market.book(instrument), 0);
    feeds.snapshot(market, instrument.index);
  }
  sampler.flush();

  const endMs = seconds * 1000;
  const pumps = endMs / pumpMs;
  for (let pump = 1; pump <= pumps; pump++) {
    // One simulator pump arrives as one socket read: its rows are batched together, as the live client decodes them.
    const now = pump * pumpMs;
    if (options.drift && now === options.drift.atSeconds * 1000) for (const instrument of universe) market.bookAt(instrument.index)!.dynamics = options.drift.dynamics;
    feeds.now = now;
    market.advanceTo(now);
    sampler.flush();
    if (now % sampler.baseMs === 0) sampler.tick(now);
    if (now % PROGRESS_EVERY_MS === 0 || pump === pumps) options.onProgress?.(now / 1000, seconds);
  }
  // The simulator only sends rows a book accepts and finite prices: anything else is a bug here or in the features.
  if (sampler.rejected() > 0) throw new Error(`simulateDataset: the order books rejected ${sampler.rejected()} depth rows from the simulator; the depth feed above has a bug`);
  if (sampler.nonFinite > 0) {
    throw new Error(`simulateDataset: ${sampler.nonFinite} warm rows with a non-finite feature (first: ${sampler.firstNonFinite}); the feature pipeline has a bug`);
  }
  const symbols = sampler.symbols;
  const data = sampler.dataset(
    `keel simulator, seed ${seed}, ${count} instruments (${symbols.join(', ')}), ${seconds} simulated s, ` +
      `${updatesPerSecond} updates/s per instrument${options.drift ? `, drifting at ${options.drift.atSeconds} s to ${JSON.stringify(options.drift.dynamics)}` : ''}, sampled every ${sampleMs} ms`,
    [],
  );
  return { ...data, regime: data.regime! };
}

/**
 * A recording (keel's own, or a LOBSTER pair opened as one) through the
 * features, on the recording's own times mapped to the wall clock: rows go
 * out in batches of one kind as the replay publishes them, the features
 * clock ticks on whole multiples of its base in between.
 */
export async function recordingDataset(recording: Recording, file: string, sampling: SamplingOptions, onProgress?: (done: number, total: number) => void): Promise<Dataset> {
  const { header } = recording;
  const sampler: FeatureSampler = new FeatureSampler(header.instruments, sampling);
  const toWall = header.wallAt - header.monotonicAt;
  const baseMs = sampler.baseMs;
  let nextTick = NaN;
  let first = NaN;
  let last = NaN;
  let pendingKind = -1;
  for await (const piece of recording.chunks()) {
    if (!('chunk' in piece)) continue;
    const { chunk } = piece;
    for (let r = 0; r < chunk.count; r++) {
      const kind = chunk.kind[r]!;
      if (kind !== DEPTH_ROW && kind !== TRADE_ROW && kind !== RESET_ROW) continue;
      const at = chunk.at[r]! + toWall;
      if (Number.isNaN(first)) {
        first = at;
        nextTick = Math.floor(at / baseMs) * baseMs + baseMs;
      }
      if (at < last) throw new Error(`${file}: row times go backwards (${new Date(at).toISOString()} after ${new Date(last).toISOString()})`);
      // A later row is another socket read; timers due by then fire first.
      if (at !== last || kind !== pendingKind) sampler.flush();
      for (; nextTick <= at; nextTick += baseMs) sampler.tick(nextTick);
      last = at;
      pendingKind = kind;
      const i = chunk.instrument[r]!;
      if (kind === DEPTH_ROW) sampler.depth(i, chunk.side[r]!, chunk.position[r]!, chunk.operation[r]!, chunk.price[r]!, chunk.size[r]!, at);
      else if (kind === TRADE_ROW) sampler.trade(i, chunk.price[r]!, chunk.size[r]!, at);
      else sampler.reset(i);
    }
    onProgress?.(piece.done, recording.total);
  }
  if (Number.isNaN(first)) throw new Error(`${file}: no depth or trade rows to learn from`);
  sampler.flush();
  const source: DataSource = { file: basename(file), from: new Date(first).toISOString(), to: new Date(last).toISOString() };
  // Live data can be what the features cannot use; it is left out and said, never a reason to stop.
  const notes = [
    recording.truncated > 0 ? `its last ${recording.truncated} bytes cut short, not used` : '',
    sampler.rejected() > 0 ? `${sampler.rejected()} depth rows refused by the books` : '',
    sampler.nonFinite > 0 ? `${sampler.nonFinite} rows with a non-finite feature left out (first: ${sampler.firstNonFinite})` : '',
  ].filter((n) => n !== '');
  return sampler.dataset(
    `${header.source}: ${source.file}, ${source.from} to ${source.to}, ${header.instruments.length} instruments (${header.instruments.join(', ')}), ` +
      `sampled every ${sampling.sampleMs} ms${notes.length > 0 ? ` (${notes.join('; ')})` : ''}`,
    [source],
  );
}
