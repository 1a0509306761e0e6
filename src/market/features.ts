/**
 * Microstructure features for every instrument, updated incrementally: each
 * top-of-book change, book batch or trade costs a constant amount of
 * arithmetic on typed arrays (the depth features read at most 10 levels).
 *
 * Flow features (order-flow imbalance, trade flow, trade intensity) and the
 * realized volatilities are exponentially decayed sums kept with the time of
 * their last event; reading them decays them to the reading's time, so a
 * quiet instrument's flow fades instead of freezing. Returns need history:
 * `tick` (on the fastest sampling clock) keeps a ring of mids per instrument.
 *
 * Instruments without a book (level-1 quotes only) get their top of book
 * from the quotes (`onQuotes`): every feature but the depth ones, which stay
 * NaN for them (DEPTH_FEATURES).
 *
 * The feature schema names every column; models bind to it by name and
 * version (issue 5's registry checks a manifest against it).
 */
import { restoreArrays, type EngineState, type Restorable, type StateArray } from '../engine-state.js';
import type { QuoteBoard } from '../ib/quote-board.js';
import type { TradeBatch } from '../ib/trade-feed.js';
import type { OrderBooks } from './books.js';
import { ASK, BID, type OrderBook } from './order-book.js';

export const FEATURE_SCHEMA_NAME = 'keel.microstructure';
/** Bump when a feature's definition changes, so models trained on the old one are refused. */
export const FEATURE_SCHEMA_VERSION = 1;

export interface FeatureSchema {
  readonly name: string;
  readonly version: number;
  readonly features: readonly string[];
}

export interface FeatureOptions {
  /** Sampling resolution of returns and the fastest sampling clock, ms. */
  readonly baseMs: number;
  /** Half-lives of the EWMA realized volatilities, ms. */
  readonly volHalfLivesMs: readonly number[];
  /** Horizons of the returns, ms (multiples of baseMs). */
  readonly returnHorizonsMs: readonly number[];
  /** Half-life of order-flow imbalance, trade flow and trade intensity, ms. */
  readonly flowHalfLifeMs: number;
}

export const DEFAULT_FEATURE_OPTIONS: FeatureOptions = {
  baseMs: 100,
  volHalfLivesMs: [1_000, 10_000, 60_000],
  returnHorizonsMs: [1_000, 10_000, 60_000],
  flowHalfLifeMs: 1_000,
};

/** Column of each fixed feature; the volatilities and returns follow in option order. */
export const MID = 0;
export const SPREAD_BPS = 1;
export const MICROPRICE = 2;
export const IMBALANCE_L1 = 3;
export const DEPTH_IMBALANCE_5 = 4;
export const DEPTH_IMBALANCE_10 = 5;
export const OFI = 6;
export const TRADE_FLOW_IMBALANCE = 7;
export const TRADE_INTENSITY = 8;
export const DEPTH_SLOPE = 9;
const FIXED = ['mid', 'spread_bps', 'microprice', 'imbalance_l1', 'depth_imbalance_5', 'depth_imbalance_10', 'ofi', 'trade_flow_imbalance', 'trade_intensity', 'depth_slope'];
/** Features only a book can give: an instrument with level-1 quotes alone never has them. */
export const DEPTH_FEATURES: readonly string[] = [FIXED[DEPTH_IMBALANCE_5]!, FIXED[DEPTH_IMBALANCE_10]!, FIXED[DEPTH_SLOPE]!];

const LN2 = Math.LN2;
const BPS = 10_000;

export function durationLabel(ms: number): string {
  return ms % 60_000 === 0 && ms >= 60_000 ? `${ms / 60_000}m` : ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

export function featureSchema(options: FeatureOptions): FeatureSchema {
  for (const h of options.returnHorizonsMs) {
    if (h % options.baseMs !== 0) throw new Error(`return horizon ${h} ms is not a multiple of the ${options.baseMs} ms sampling base`);
  }
  return {
    name: FEATURE_SCHEMA_NAME,
    version: FEATURE_SCHEMA_VERSION,
    features: [...FIXED, ...options.volHalfLivesMs.map((h) => `rv_${durationLabel(h)}`), ...options.returnHorizonsMs.map((h) => `ret_${durationLabel(h)}`)],
  };
}

const decay = (dtMs: number, halfLifeMs: number) => Math.exp((-dtMs * LN2) / halfLifeMs);

export class FeatureEngine implements Restorable {
  readonly schema: FeatureSchema;
  /** Number of features per instrument. */
  readonly width: number;
  /** Latest values, `instrument * width + feature`; NaN until known. */
  readonly values: Float64Array;
  /** Monotonic time of each instrument's last book or trade update (NaN: never). */
  readonly lastDataAt: Float64Array;
  /** When each instrument is warm: two-sided once, plus enough history for its longest return. */
  readonly warmAt: Float64Array;
  readonly warmupMs: number;

  private readonly rvCol: number;
  private readonly retCol: number;
  // Top of book at the last change, for order-flow imbalance.
  private readonly prevBid: Float64Array;
  private readonly prevBidSize: Float64Array;
  private readonly prevAsk: Float64Array;
  private readonly prevAskSize: Float64Array;
  private readonly ofi: Float64Array;
  private readonly ofiAt: Float64Array;
  // Trades: decayed buy and sell volume and count, at `tradeAt`.
  private readonly buyVolume: Float64Array;
  private readonly sellVolume: Float64Array;
  private readonly tradeCount: Float64Array;
  private readonly tradeAt: Float64Array;
  private readonly lastTradePrice: Float64Array;
  /** +1 buy, -1 sell: the tick rule's memory for prints at the mid. */
  private readonly lastTradeSide: Int8Array;
  // Realized volatility: decayed sums of squared log mid changes, per half-life, at `rvAt`.
  private readonly lastMid: Float64Array;
  private readonly rvSum: Float64Array;
  private readonly rvAt: Float64Array;
  // Mids at each base tick, a ring shared by all instruments.
  private readonly ring: Float64Array;
  private readonly ringLength: number;
  private ringPos = 0;

  constructor(
    readonly instruments: number,
    readonly options: FeatureOptions = DEFAULT_FEATURE_OPTIONS,
  ) {
    this.schema = featureSchema(options);
    this.width = this.schema.features.length;
    this.rvCol = FIXED.length;
    this.retCol = FIXED.length + options.volHalfLivesMs.length;
    const column = (fill = NaN) => new Float64Array(instruments).fill(fill);
    this.values = new Float64Array(instruments * this.width).fill(NaN);
    this.lastDataAt = column();
    this.warmAt = column();
    this.warmupMs = Math.max(0, ...options.returnHorizonsMs);
    this.prevBid = column();
    this.prevBidSize = column();
    this.prevAsk = column();
    this.prevAskSize = column();
    this.ofi = column(0);
    this.ofiAt = column();
    this.buyVolume = column(0);
    this.sellVolume = column(0);
    this.tradeCount = column(0);
    this.tradeAt = column();
    this.lastTradePrice = column();
    this.lastTradeSide = new Int8Array(instruments);
    this.lastMid = column();
    this.rvSum = new Float64Array(instruments * options.volHalfLivesMs.length);
    this.rvAt = column();
    this.ringLength = this.warmupMs / options.baseMs + 1;
    this.ring = new Float64Array(instruments * this.ringLength).fill(NaN);
  }

  /** Everything that moves (the options and sizes are the constructor's): for a shard checkpoint. */
  saveState(): EngineState {
    const arrays = this.stateArrays();
    // Every array is one row per instrument; the ring's position is shared.
    return { arrays, numbers: [this.ringPos], rows: arrays.map(() => true) };
  }

  loadState(state: EngineState): void {
    restoreArrays('FeatureEngine', this.stateArrays(), state, 1);
    this.ringPos = state.numbers[0]!;
  }

  private stateArrays(): StateArray[] {
    return [
      this.values,
      this.lastDataAt,
      this.warmAt,
      this.prevBid,
      this.prevBidSize,
      this.prevAsk,
      this.prevAskSize,
      this.ofi,
      this.ofiAt,
      this.buyVolume,
      this.sellVolume,
      this.tradeCount,
      this.tradeAt,
      this.lastTradePrice,
      this.lastTradeSide,
      this.lastMid,
      this.rvSum,
      this.rvAt,
      this.ring,
    ];
  }

  /** After a batch was applied to `books`: top-of-book events first, then each touched book's shape. */
  onBook(books: OrderBooks): void {
    const t = books.tops;
    for (let n = 0; n < t.count; n++) this.onTop(t.instrument[n]!, t.bidPrice[n]!, t.bidSize[n]!, t.askPrice[n]!, t.askSize[n]!, t.at[n]!);
    for (let k = 0; k < books.touchedCount; k++) {
      const i = books.touched[k]!;
      const book = books.books[i]!;
      this.shape(i, book);
      this.lastDataAt[i] = book.updatedAt;
    }
  }

  /** After a read of level-1 quotes: the top of the instruments without a book that changed (`quotes.changed`). */
  onQuotes(quotes: QuoteBoard): void {
    const at = quotes.changedAt;
    for (let n = 0; n < quotes.changedCount; n++) {
      const i = quotes.changed[n]!;
      if (i >= this.instruments) continue;
      const bid = quotes.bid[i]!;
      const ask = quotes.ask[i]!;
      const bidSize = quotes.bidSize[i]!;
      const askSize = quotes.askSize[i]!;
      this.lastDataAt[i] = at;
      // Price and size come in separate ticks: a side whose size is not known yet would poison the flow sums.
      if (!(bidSize === bidSize && askSize === askSize)) continue;
      // IB says -1 (or 0) for a side with no quote: no top, and no flow measured against it.
      if (!(bid > 0 && ask > 0)) {
        this.clearShape(i * this.width);
        continue;
      }
      this.onTop(i, bid, bidSize, ask, askSize, at);
      this.warmFrom(i, at);
      this.topShape(i * this.width, bid, bidSize, ask, askSize);
    }
  }

  onTrades(batch: TradeBatch): void {
    for (let n = 0; n < batch.count; n++) {
      const i = batch.instrument[n]!;
      if (i >= this.instruments) continue;
      this.onTrade(i, batch.price[n]!, batch.size[n]!, batch.receivedAt[n]!);
    }
  }

  /** The book was emptied (317, a new subscription): flow starts over from its next top. */
  reset(instrument: number): void {
    // Decayed flow survives; only the per-event memory and the book's shape are void.
    this.prevBid[instrument] = NaN;
    this.lastMid[instrument] = NaN;
    this.clearShape(instrument * this.width);
  }

  /** On the fastest sampling clock: decays flow to `now` and records the mids for returns. */
  tick(now: number): void {
    const previous = this.ringPos;
    this.ringPos = (previous + 1) % this.ringLength;
    for (let i = 0; i < this.instruments; i++) {
      // A book without a mid right now carries its last one: a return spans the gap, not NaN for a whole horizon.
      const mid = this.values[i * this.width + MID]!;
      const base = i * this.ringLength;
      this.ring[base + this.ringPos] = mid === mid ? mid : this.ring[base + previous]!;
      this.sample(i, now);
    }
  }

  warm(instrument: number, now: number): boolean {
    return this.warmAt[instrument]! <= now;
  }

  /** A sampling into a frame's arrays: every value, and 1 for each instrument warm at `now`. */
  copyTo(values: Float64Array, warm: Uint8Array, now: number): void {
    values.set(this.values);
    const warmAt = this.warmAt;
    for (let i = 0; i < this.instruments; i++) warm[i] = warmAt[i]! <= now ? 1 : 0;
  }

  private onTop(i: number, bid: number, bidSize: number, ask: number, askSize: number, at: number): void {
    const pb = this.prevBid[i]!;
    const pa = this.prevAsk[i]!;
    // Cont, Kukanov & Stoikov (2014): e = bid-side flow minus ask-side flow between two top-of-book states.
    if (pb === pb && pa === pa && bid === bid && ask === ask) {
      const pbs = this.prevBidSize[i]!;
      const pas = this.prevAskSize[i]!;
      const e = (bid >= pb ? bidSize : 0) - (bid <= pb ? pbs : 0) - (ask <= pa ? askSize : 0) + (ask >= pa ? pas : 0);
      const last = this.ofiAt[i]!;
      this.ofi[i] = (last === last ? this.ofi[i]! * decay(at - last, this.options.flowHalfLifeMs) : 0) + e;
      this.ofiAt[i] = at;
    }
    this.prevBid[i] = bid;
    this.prevBidSize[i] = bidSize;
    this.prevAsk[i] = ask;
    this.prevAskSize[i] = askSize;

    const mid = (bid + ask) / 2;
    const lastMid = this.lastMid[i]!;
    if (mid === mid && lastMid === lastMid && mid !== lastMid && mid > 0 && lastMid > 0) {
      const r = Math.log(mid / lastMid);
      const halfLives = this.options.volHalfLivesMs;
      const rvAt = this.rvAt[i]!;
      for (let k = 0; k < halfLives.length; k++) {
        const at0 = i * halfLives.length + k;
        this.rvSum[at0] = (rvAt === rvAt ? this.rvSum[at0]! * decay(at - rvAt, halfLives[k]!) : 0) + r * r;
      }
      this.rvAt[i] = at;
    }
    if (mid === mid) this.lastMid[i] = mid;
  }

  /** The features that are a function of the book as it stands. */
  private shape(i: number, book: OrderBook): void {
    const v = this.values;
    const o = i * this.width;
    const rows = book.maxRows;
    const bids = book.count[BID]!;
    const asks = book.count[ASK]!;
    if (bids === 0 || asks === 0) return this.clearShape(o);
    this.warmFrom(i, book.updatedAt);
    const price = book.price;
    const size = book.size;
    const bid = price[rows]!;
    const ask = price[0]!;
    const mid = this.topShape(o, bid, size[rows]!, ask, size[0]!);
    let bidDepth = 0;
    let askDepth = 0;
    for (let level = 0; level < 10; level++) {
      if (level < bids) bidDepth += size[rows + level]!;
      if (level < asks) askDepth += size[level]!;
      if (level === 4) v[o + DEPTH_IMBALANCE_5] = (bidDepth - askDepth) / (bidDepth + askDepth);
    }
    v[o + DEPTH_IMBALANCE_10] = (bidDepth - askDepth) / (bidDepth + askDepth);
    // Shares per basis point of distance from the mid to the deepest level, averaged over the sides.
    const bidReach = ((mid - price[rows + bids - 1]!) / mid) * BPS;
    const askReach = ((price[asks - 1]! - mid) / mid) * BPS;
    v[o + DEPTH_SLOPE] = (bidDepth / bidReach + askDepth / askReach) / 2;
  }

  /** The features of the best bid and offer alone, into the row at `o`; returns the mid. */
  private topShape(o: number, bid: number, bidSize: number, ask: number, askSize: number): number {
    const v = this.values;
    const mid = (bid + ask) / 2;
    v[o + MID] = mid;
    v[o + SPREAD_BPS] = ((ask - bid) / mid) * BPS;
    // NaN when both sizes are 0: there is no microprice of an empty top.
    v[o + MICROPRICE] = (bid * askSize + ask * bidSize) / (bidSize + askSize);
    v[o + IMBALANCE_L1] = (bidSize - askSize) / (bidSize + askSize);
    return mid;
  }

  /** From the first two-sided top at `at`, warm once the ring covers the longest horizon (one base tick after the first mid). */
  private warmFrom(i: number, at: number): void {
    if (!(this.warmAt[i]! === this.warmAt[i]!)) this.warmAt[i] = at + this.warmupMs + this.options.baseMs;
  }

  private clearShape(o: number): void {
    this.values.fill(NaN, o, o + DEPTH_IMBALANCE_10 + 1);
    this.values[o + DEPTH_SLOPE] = NaN;
  }

  private onTrade(i: number, price: number, size: number, at: number): void {
    const last = this.tradeAt[i]!;
    const d = last === last ? decay(at - last, this.options.flowHalfLifeMs) : 0;
    this.tradeCount[i] = this.tradeCount[i]! * d + 1;
    // Lee & Ready: above the mid a buyer lifted the offer, below it a seller hit the bid; at the mid, the tick rule.
    const mid = this.values[i * this.width + MID]!;
    let side: number;
    if (price > mid) side = 1;
    else if (price < mid) side = -1;
    else {
      const lastPrice = this.lastTradePrice[i]!;
      side = price > lastPrice ? 1 : price < lastPrice ? -1 : this.lastTradeSide[i]!;
    }
    this.buyVolume[i] = this.buyVolume[i]! * d + (side > 0 ? size : 0);
    this.sellVolume[i] = this.sellVolume[i]! * d + (side < 0 ? size : 0);
    this.tradeAt[i] = at;
    this.lastTradePrice[i] = price;
    this.lastTradeSide[i] = side;
    this.lastDataAt[i] = Math.max(at, this.lastDataAt[i]! || 0);
  }

  /** Decayed values at `now`, and the returns from the mid ring. */
  private sample(i: number, now: number): void {
    const v = this.values;
    const o = i * this.width;
    const flowHalfLife = this.options.flowHalfLifeMs;
    const ofiAt = this.ofiAt[i]!;
    v[o + OFI] = ofiAt === ofiAt ? this.ofi[i]! * decay(now - ofiAt, flowHalfLife) : 0;
    const tradeAt = this.tradeAt[i]!;
    if (tradeAt === tradeAt) {
      const d = decay(now - tradeAt, flowHalfLife);
      const buy = this.buyVolume[i]! * d;
      const sell = this.sellVolume[i]! * d;
      v[o + TRADE_FLOW_IMBALANCE] = buy + sell > 0 ? (buy - sell) / (buy + sell) : 0;
      // A decayed count over an effective window of halfLife / ln 2: trades per second.
      v[o + TRADE_INTENSITY] = (this.tradeCount[i]! * d * LN2 * 1000) / flowHalfLife;
    } else {
      v[o + TRADE_FLOW_IMBALANCE] = 0;
      v[o + TRADE_INTENSITY] = 0;
    }
    const halfLives = this.options.volHalfLivesMs;
    const rvAt = this.rvAt[i]!;
    for (let k = 0; k < halfLives.length; k++) {
      const hl = halfLives[k]!;
      const sum = rvAt === rvAt ? this.rvSum[i * halfLives.length + k]! * decay(now - rvAt, hl) : 0;
      // Variance per second over the effective window, as a volatility in bps per square-root second.
      v[o + this.rvCol + k] = Math.sqrt((sum * LN2 * 1000) / hl) * BPS;
    }
    const horizons = this.options.returnHorizonsMs;
    const mid = v[o + MID]!;
    for (let k = 0; k < horizons.length; k++) {
      const back = horizons[k]! / this.options.baseMs;
      const then = this.ring[i * this.ringLength + ((this.ringPos - back + this.ringLength) % this.ringLength)]!;
      v[o + this.retCol + k] = Math.log(mid / then) * BPS;
    }
  }
}

/** One sampling of every instrument's features. Reused: read it synchronously. */
export interface FeatureFrame {
  readonly intervalMs: number;
  /** Monotonic and wall-clock time of the sampling. */
  at: number;
  wallAt: number;
  readonly schema: FeatureSchema;
  readonly symbols: readonly string[];
  /** `instrument * schema.features.length + feature`. */
  readonly values: Float64Array;
  /** 1 when the instrument is warm (two-sided, history for every horizon). */
  readonly warm: Uint8Array;
  /** True on the fastest clock: the frames feature health judges. */
  readonly base: boolean;
}

/** One reusable frame per sampling clock of `samplesMs` (the first is the base), sized for the engine. */
export function featureFrames(engine: FeatureEngine, symbols: readonly string[], samplesMs: readonly number[]): FeatureFrame[] {
  return samplesMs.map((intervalMs, i) => ({
    intervalMs,
    at: NaN,
    wallAt: NaN,
    schema: engine.schema,
    symbols,
    values: new Float64Array(engine.values.length),
    warm: new Uint8Array(symbols.length),
    base: i === 0,
  }));
}
