/**
 * Training data for keel's demo models, made honestly: the simulator's
 * market runs in process on a simulated clock, and its events go through
 * keel's own feature pipeline exactly as they would live (depth and trade
 * batches, OrderBooks, FeatureEngine with its default options). Every
 * `sampleMs` of simulated time each warm instrument gives one row: the live
 * feature vector, the simulator's true regime and the forward return.
 *
 * The same options give the same arrays bit for bit: the market is seeded,
 * the clock is simulated and nothing depends on the machine.
 */
import { DepthBatch } from '../ib/depth-feed.js';
import { TradeBatch } from '../ib/trade-feed.js';
import { OrderBooks } from '../market/books.js';
import { DEFAULT_FEATURE_OPTIONS, FeatureEngine, MID } from '../market/features.js';
import { defaultSimConfig } from '../sim/config.js';
import { InstrumentUniverse } from '../sim/instruments.js';
import { ASK, BID, INSERT, Market, ROWS, VOLATILE, type MarketListener, type Operation, type Side } from '../sim/market.js';

export const CALM_LABEL = 0;
export const VOLATILE_LABEL = 1;

const BPS = 10_000;
/** The batch sizes of keel's DepthFeed and TradeFeed. */
const DEPTH_BATCH_ROWS = 4096;
const TRADE_BATCH_ROWS = 1024;
/** How often progress is reported, in simulated ms. */
const PROGRESS_EVERY_MS = 60_000;

export interface DatasetOptions {
  readonly seed: number;
  /** The first instruments of the simulator's universe: SPY, QQQ, AAPL, MSFT, then SYN0001... */
  readonly instruments: number;
  /** Simulated seconds to run. */
  readonly seconds: number;
  /** One row per warm instrument every `sampleMs` (a multiple of the features' 100 ms base clock). */
  readonly sampleMs: number;
  /** Market events per second per instrument; the simulator's default when unset. */
  readonly updatesPerSecond?: number;
  /** Horizon of the forward return (a multiple of `sampleMs`). */
  readonly horizonMs: number;
  /** Called with simulated seconds done and the total, every simulated minute and at the end. */
  readonly onProgress?: (done: number, total: number) => void;
}

export interface Dataset {
  /** The live schema's names, in schema order. */
  readonly features: readonly string[];
  readonly schema: { name: string; version: number };
  /** Symbol of each instrument index. */
  readonly symbols: readonly string[];
  readonly sampleMs: number;
  readonly horizonMs: number;
  readonly rows: number;
  /** rows x features, row-major: the live feature values. */
  readonly x: Float64Array;
  /** Which instrument each row belongs to. */
  readonly instrument: Int32Array;
  /** Simulated ms; rows are in time order. */
  readonly time: Float64Array;
  /** The simulator's true regime at that moment: 0 calm, 1 volatile. */
  readonly regime: Uint8Array;
  /** log(mid at t + horizon / mid at t) in basis points; NaN when the horizon runs past the end (callers drop those rows). */
  readonly forwardReturn: Float64Array;
  /** One line for model manifests: where the data came from. */
  readonly description: string;
}

/**
 * What keel's subscriptions would receive from the simulator for every
 * instrument: a plain 10-row depth feed and an AllLast tick-by-tick feed.
 * Rows go straight into reused batches, stamped with the simulated clock,
 * prices in dollars as the simulator sends them.
 */
class SimulatedFeeds implements MarketListener {
  private readonly depthBatch = new DepthBatch(DEPTH_BATCH_ROWS);
  private readonly tradeBatch = new TradeBatch(TRADE_BATCH_ROWS);
  private depthSeq = 0;
  private tradeSeq = 0;
  /** A trade was written before any depth row of this read: its batch goes first. */
  private tradesFirst = false;
  now = 0;

  constructor(
    private readonly books: OrderBooks,
    private readonly engine: FeatureEngine,
  ) {}

  depth(instrument: number, side: Side, position: number, operation: Operation, priceTicks: number, size: number): void {
    const b = this.depthBatch;
    if (b.count === b.capacity) this.applyDepth();
    const row = b.count++;
    b.instrument[row] = instrument;
    b.position[row] = position;
    b.operation[row] = operation;
    b.side[row] = side;
    b.smart[row] = 0;
    b.price[row] = priceTicks / 100;
    b.size[row] = size;
    b.seq[row] = ++this.depthSeq;
    b.receivedAt[row] = this.now;
  }

  trade(instrument: number, priceTicks: number, size: number): void {
    const b = this.tradeBatch;
    if (b.count === b.capacity) this.applyTrades();
    if (b.count === 0 && this.depthBatch.count === 0) this.tradesFirst = true;
    const row = b.count++;
    b.instrument[row] = instrument;
    b.price[row] = priceTicks / 100;
    b.size[row] = size;
    b.seq[row] = ++this.tradeSeq;
    b.receivedAt[row] = this.now;
  }

  /** The first rows of a new depth subscription: every row of both sides, as the simulator sends them. */
  snapshot(market: Market, instrument: number): void {
    const book = market.bookAt(instrument)!;
    for (let row = 0; row < ROWS; row++) {
      for (const side of [ASK, BID] as const) this.depth(instrument, side, row, INSERT, book.price[side][row]!, book.size[side][row]!);
    }
  }

  /** The end of a socket read: each feed publishes its batch, in the order their microtasks were queued. */
  flush(): void {
    if (this.tradesFirst) this.applyTrades();
    this.applyDepth();
    this.applyTrades();
    this.tradesFirst = false;
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

function checkOptions(o: DatasetOptions, baseMs: number): void {
  const whole = (name: string, value: number) => {
    if (!Number.isInteger(value) || value <= 0) throw new Error(`simulateDataset: ${name} must be a positive whole number, got ${value}`);
  };
  whole('instruments', o.instruments);
  whole('seconds', o.seconds);
  whole('sampleMs', o.sampleMs);
  whole('horizonMs', o.horizonMs);
  if (o.sampleMs % baseMs !== 0) throw new Error(`simulateDataset: sampleMs ${o.sampleMs} is not a multiple of the features' ${baseMs} ms base clock`);
  if (o.horizonMs % o.sampleMs !== 0) throw new Error(`simulateDataset: horizonMs ${o.horizonMs} is not a multiple of sampleMs ${o.sampleMs}`);
}

/** Runs the simulated market through keel's feature pipeline and samples it into a dataset. */
export function simulateDataset(options: DatasetOptions): Dataset {
  const sim = defaultSimConfig();
  const featureOptions = DEFAULT_FEATURE_OPTIONS;
  const baseMs = featureOptions.baseMs;
  checkOptions(options, baseMs);
  const { seed, instruments: count, seconds, sampleMs, horizonMs } = options;
  const updatesPerSecond = options.updatesPerSecond ?? sim.updatesPerSecond;
  // The simulator's pump period; it must divide the base clock so ticks land on pumps.
  const pumpMs = sim.pumpMs;
  if (baseMs % pumpMs !== 0) throw new Error(`the simulator's ${pumpMs} ms pump does not divide the features' ${baseMs} ms base clock`);

  const universe = new InstrumentUniverse(Math.max(0, count - 4)).all.slice(0, count);
  const books = new OrderBooks(count, ROWS);
  const engine = new FeatureEngine(count, featureOptions);
  const width = engine.width;
  const feeds = new SimulatedFeeds(books, engine);
  const market = new Market({ seed, updatesPerSecond }, feeds);
  for (const instrument of universe) {
    market.watch(market.book(instrument), 0);
    feeds.snapshot(market, instrument.index);
  }
  feeds.flush();

  const endMs = seconds * 1000;
  const samples = Math.floor(endMs / sampleMs);
  const capacity = samples * count;
  const x = new Float64Array(capacity * width);
  const instrument = new Int32Array(capacity);
  const time = new Float64Array(capacity);
  const regime = new Uint8Array(capacity);
  // Row of each (sample, instrument), -1 when the instrument was not warm: where a forward return looks.
  const rowAt = new Int32Array(capacity).fill(-1);
  let rows = 0;
  let nonFinite = 0;
  let firstNonFinite = '';

  const pumps = endMs / pumpMs;
  for (let pump = 1; pump <= pumps; pump++) {
    // One simulator pump arrives as one socket read: its rows are batched together, as the live client decodes them.
    const now = pump * pumpMs;
    feeds.now = now;
    market.advanceTo(now);
    feeds.flush();
    if (now % baseMs === 0) engine.tick(now);
    if (now % sampleMs === 0) {
      const sample = now / sampleMs - 1;
      for (let i = 0; i < count; i++) {
        if (!engine.warm(i, now)) continue;
        const from = i * width;
        for (let f = 0; f < width; f++) {
          const value = engine.values[from + f]!;
          if (Number.isFinite(value)) continue;
          if (nonFinite++ === 0) firstNonFinite = `${engine.schema.features[f]} of ${universe[i]!.symbol} at ${now} ms is ${value}`;
        }
        x.set(engine.values.subarray(from, from + width), rows * width);
        instrument[rows] = i;
        time[rows] = now;
        regime[rows] = market.bookAt(i)!.regime === VOLATILE ? VOLATILE_LABEL : CALM_LABEL;
        rowAt[sample * count + i] = rows;
        rows++;
      }
    }
    if (now % PROGRESS_EVERY_MS === 0 || pump === pumps) options.onProgress?.(now / 1000, seconds);
  }
  // The simulator only sends rows a book accepts: a rejection means the feeds above are wrong.
  const rejected = books.books.reduce((n, book) => n + book.totalRejected(), 0);
  if (rejected > 0) throw new Error(`simulateDataset: the order books rejected ${rejected} depth rows from the simulator; the depth feed above has a bug`);
  if (nonFinite > 0) {
    throw new Error(`simulateDataset: ${nonFinite} non-finite feature values for warm instruments (first: ${firstNonFinite}); the feature pipeline has a bug`);
  }

  const forwardReturn = new Float64Array(rows).fill(NaN);
  const ahead = horizonMs / sampleMs;
  for (let r = 0; r < rows; r++) {
    const later = time[r]! / sampleMs - 1 + ahead;
    if (later >= samples) continue;
    const future = rowAt[later * count + instrument[r]!]!;
    if (future >= 0) forwardReturn[r] = Math.log(x[future * width + MID]! / x[r * width + MID]!) * BPS;
  }

  const symbols = universe.map((u) => u.symbol);
  return {
    features: engine.schema.features,
    schema: { name: engine.schema.name, version: engine.schema.version },
    symbols,
    sampleMs,
    horizonMs,
    rows,
    x: x.slice(0, rows * width),
    instrument: instrument.slice(0, rows),
    time: time.slice(0, rows),
    regime: regime.slice(0, rows),
    forwardReturn,
    description:
      `keel simulator, seed ${seed}, ${count} instruments (${symbols.join(', ')}), ${seconds} simulated s, ` +
      `${updatesPerSecond} updates/s per instrument, sampled every ${sampleMs} ms, forward return over ${horizonMs} ms`,
  };
}

/** Rows [from, to) as a dataset of their own; forward returns that reach `horizonEnd` or later become NaN. */
function slice(d: Dataset, from: number, to: number, horizonEnd: number, note: string): Dataset {
  const width = d.features.length;
  const time = d.time.slice(from, to);
  const forwardReturn = d.forwardReturn.slice(from, to);
  for (let r = 0; r < time.length; r++) if (time[r]! + d.horizonMs >= horizonEnd) forwardReturn[r] = NaN;
  return {
    ...d,
    rows: to - from,
    x: d.x.slice(from * width, to * width),
    instrument: d.instrument.slice(from, to),
    time,
    regime: d.regime.slice(from, to),
    forwardReturn,
    description: `${d.description}; ${note}`,
  };
}

/**
 * Chronological split: the first `trainShare` of the rows (cut where the time
 * changes, so no sampling instant is split) for training, the later rest held
 * out. Training rows whose forward return would look into the held-out time
 * get NaN, so no held-out price leaks into training.
 */
export function splitByTime(d: Dataset, trainShare: number): { train: Dataset; test: Dataset } {
  if (!(trainShare > 0 && trainShare < 1)) throw new Error(`splitByTime: trainShare must be between 0 and 1, got ${trainShare}`);
  let cut = Math.floor(d.rows * trainShare);
  while (cut > 0 && cut < d.rows && d.time[cut] === d.time[cut - 1]) cut++;
  const cutTime = cut < d.rows ? d.time[cut]! : Infinity;
  const share = Math.round(trainShare * 100);
  return {
    train: slice(d, 0, cut, cutTime, `train: the first ${share}% of rows, before ${cutTime} ms`),
    test: slice(d, cut, d.rows, Infinity, `held out: the last ${100 - share}% of rows, from ${cutTime} ms`),
  };
}

/** Column index of each name; a missing name is an error that says which. */
function columns(d: Dataset, names: readonly string[]): number[] {
  return names.map((name) => {
    const column = d.features.indexOf(name);
    if (column < 0) throw new Error(`feature '${name}' is not in the dataset (${d.schema.name} v${d.schema.version}: ${d.features.join(', ')})`);
    return column;
  });
}

/** The named columns, row-major (rows x names), of every row or of the rows where `rowsMask` is non-zero. */
export function select(d: Dataset, names: readonly string[], rowsMask?: Uint8Array): Float64Array {
  if (rowsMask && rowsMask.length !== d.rows) throw new Error(`select: the mask has ${rowsMask.length} entries for ${d.rows} rows`);
  const cols = columns(d, names);
  const width = d.features.length;
  let kept = d.rows;
  if (rowsMask) kept = rowsMask.reduce((n, keep) => n + (keep !== 0 ? 1 : 0), 0);
  const out = new Float64Array(kept * cols.length);
  let o = 0;
  for (let r = 0; r < d.rows; r++) {
    if (rowsMask && rowsMask[r] === 0) continue;
    for (const c of cols) out[o++] = d.x[r * width + c]!;
  }
  return out;
}

export interface Windows {
  readonly samples: number;
  readonly window: number;
  readonly features: readonly string[];
  /** samples x window x features, oldest row first. */
  readonly x: Float32Array;
  /** Instrument, time, regime and forward return of each window's last row: what the window predicts. */
  readonly instrument: Int32Array;
  readonly time: Float64Array;
  readonly regime: Uint8Array;
  readonly forwardReturn: Float64Array;
}

/**
 * Calls `emit(rows)` for every window: `window` rows of one instrument at
 * consecutive sampling instants, oldest first. `rows` is reused between calls.
 */
function eachWindow(d: Dataset, window: number, emit: (rows: Int32Array) => void): void {
  const n = d.symbols.length;
  const run = new Int32Array(n);
  const lastTime = new Float64Array(n);
  // The instrument's last `window` rows, a ring indexed by position in its run.
  const recent = new Int32Array(n * window);
  const rows = new Int32Array(window);
  for (let r = 0; r < d.rows; r++) {
    const i = d.instrument[r]!;
    run[i] = run[i]! > 0 && d.time[r] === lastTime[i]! + d.sampleMs ? run[i]! + 1 : 1;
    lastTime[i] = d.time[r]!;
    recent[i * window + ((run[i]! - 1) % window)] = r;
    if (run[i]! < window) continue;
    for (let k = 0; k < window; k++) rows[k] = recent[i * window + ((run[i]! - window + k) % window)]!;
    emit(rows);
  }
}

/** Sliding windows for a sequence model, in the order their last rows come; only consecutive samples of one instrument. */
export function windows(d: Dataset, names: readonly string[], window: number): Windows {
  if (!Number.isInteger(window) || window < 1) throw new Error(`windows: window must be a positive whole number, got ${window}`);
  const cols = columns(d, names);
  const width = d.features.length;
  let samples = 0;
  eachWindow(d, window, () => samples++);
  const x = new Float32Array(samples * window * cols.length);
  const instrument = new Int32Array(samples);
  const time = new Float64Array(samples);
  const regime = new Uint8Array(samples);
  const forwardReturn = new Float64Array(samples);
  let s = 0;
  let o = 0;
  eachWindow(d, window, (rows) => {
    for (const r of rows) for (const c of cols) x[o++] = d.x[r * width + c]!;
    const last = rows[window - 1]!;
    instrument[s] = d.instrument[last]!;
    time[s] = d.time[last]!;
    regime[s] = d.regime[last]!;
    forwardReturn[s] = d.forwardReturn[last]!;
    s++;
  });
  return { samples, window, features: [...names], x, instrument, time, regime, forwardReturn };
}
