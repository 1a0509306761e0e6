/**
 * The simulator's market: one living L2 book per instrument, driven by a
 * seeded random stream so that a seed and a clock give the same market every
 * time.
 *
 * Each instrument has its own random stream (seed + symbol), so how many
 * instruments exist, and which are watched, never changes what one of them
 * does. A hidden fair value wanders with the regime's volatility; aggressive
 * orders lean towards it and walk the book, passive orders refill it, cancels
 * thin it. Two regimes, calm and volatile, switch as a Markov chain and differ
 * in volatility, spread, depth and trade share.
 *
 * The book is position-based like IB's: `ROWS` rows per side, row 0 the best.
 * An insert shifts rows down (the last falls off), a delete shifts rows up and
 * a new row is inserted at the bottom, so every row always holds a level.
 * Prices are integer ticks of one cent.
 */
import type { Instrument } from './instruments.js';
import { Random } from '../random.js';

export const ROWS = 10;
export const ASK = 0;
export const BID = 1;
export type Side = typeof ASK | typeof BID;
export const INSERT = 0;
export const UPDATE = 1;
export const DELETE = 2;
export type Operation = typeof INSERT | typeof UPDATE | typeof DELETE;

export interface Regime {
  readonly name: string;
  /** Standard deviation of the fair value's move per market event, in ticks. */
  readonly volatilityTicks: number;
  /** Spread the passive side works back to, in ticks. */
  readonly spreadTicks: number;
  /** Mean size of a resting level, in shares. */
  readonly levelSize: number;
  /** Share of market events that are trades. */
  readonly tradeShare: number;
  /** Chance per event of switching to the other regime. */
  readonly leaveChance: number;
}

export const CALM: Regime = { name: 'calm', volatilityTicks: 0.08, spreadTicks: 1, levelSize: 400, tradeShare: 0.08, leaveChance: 1 / 20_000 };
export const VOLATILE: Regime = { name: 'volatile', volatilityTicks: 0.6, spreadTicks: 4, levelSize: 120, tradeShare: 0.25, leaveChance: 1 / 5_000 };

/**
 * How the market makes its moves, beyond its regime: what a planted drift
 * changes mid-run so that models fitted before it stop fitting.
 */
export interface Dynamics {
  /** Multiplies the fair value's moves in every regime. */
  readonly volatilityScale: number;
  /**
   * Where passive orders rest: 'toward' the fair value (the book leans the
   * way the price will go, so depth imbalance predicts the next return) or
   * 'away' from it (the imbalance points the other way; aggressors still
   * move the price towards the fair value).
   */
  readonly resting: 'toward' | 'away';
}

export const NORMAL_DYNAMICS: Dynamics = { volatilityScale: 1, resting: 'toward' };

/** Receives what the market does, as plain numbers: no object per event. */
export interface MarketListener {
  depth(instrument: number, side: Side, position: number, operation: Operation, priceTicks: number, size: number): void;
  trade(instrument: number, priceTicks: number, size: number): void;
}

/** FNV-1a of the symbol mixed with the seed: one independent stream per instrument. */
function streamSeed(seed: number, symbol: string): number {
  let h = 0x811c9dc5 ^ seed;
  for (let i = 0; i < symbol.length; i++) h = Math.imul(h ^ symbol.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export class InstrumentBook {
  /** Rows per side, indexed [side][row]: prices in ticks and sizes in shares. */
  readonly price = [new Int32Array(ROWS), new Int32Array(ROWS)] as const;
  readonly size = [new Int32Array(ROWS), new Int32Array(ROWS)] as const;
  regime: Regime = CALM;
  dynamics: Dynamics = NORMAL_DYNAMICS;
  lastPriceTicks = 0;
  lastSize = 0;
  volume = 0;
  events = 0;
  private fair: number;
  private readonly random: Random;

  readonly index: number;

  constructor(
    readonly instrument: Instrument,
    seed: number,
    private readonly listener: MarketListener,
  ) {
    this.index = instrument.index;
    this.random = new Random(streamSeed(seed, instrument.symbol));
    const mid = Math.round(instrument.openPrice * 100);
    this.fair = mid;
    for (let row = 0; row < ROWS; row++) {
      this.price[ASK][row] = mid + 1 + row;
      this.price[BID][row] = mid - row;
      this.size[ASK][row] = this.random.size(CALM.levelSize);
      this.size[BID][row] = this.random.size(CALM.levelSize);
    }
    this.lastPriceTicks = mid;
  }

  bestBid(): number {
    return this.price[BID][0]!;
  }

  bestAsk(): number {
    return this.price[ASK][0]!;
  }

  /**
   * The whole book and its fair value jump by `ticks` (news; a test moves
   * the underlying with it). Every row is sent again at its new price,
   * deepest first on the side the price moves towards, so the book is never
   * crossed or out of order on the way.
   */
  jump(ticks: number): void {
    if (!Number.isInteger(ticks) || ticks === 0) return;
    this.fair += ticks;
    const [ahead, behind] = ticks > 0 ? ([ASK, BID] as const) : ([BID, ASK] as const);
    for (let row = ROWS - 1; row >= 0; row--) this.moveRow(ahead, row, ticks);
    for (let row = 0; row < ROWS; row++) this.moveRow(behind, row, ticks);
    this.lastPriceTicks += ticks;
  }

  private moveRow(side: Side, row: number, ticks: number): void {
    this.price[side][row] = this.price[side][row]! + ticks;
    this.listener.depth(this.index, side, row, UPDATE, this.price[side][row]!, this.size[side][row]!);
  }

  /** One market event: a trade, a new order or a cancel. */
  step(): void {
    const r = this.random;
    this.events++;
    if (r.next() < this.regime.leaveChance) this.regime = this.regime === CALM ? VOLATILE : CALM;
    this.fair += this.regime.volatilityTicks * this.dynamics.volatilityScale * r.normal();
    const mid = (this.bestBid() + this.bestAsk()) / 2;
    const roll = r.next();
    if (roll < this.regime.tradeShare) {
      // Aggressors lean towards the fair value: that is what moves the book.
      const buyChance = 1 / (1 + Math.exp(-(this.fair - mid)));
      const side = r.next() < buyChance ? ASK : BID;
      this.take(side, r.size(this.regime.levelSize / 2), undefined);
    } else if (roll < this.regime.tradeShare + (1 - this.regime.tradeShare) * 0.55) {
      const towardFair = this.fair > mid ? BID : ASK;
      this.arrive(this.dynamics.resting === 'toward' ? towardFair : towardFair === BID ? ASK : BID);
    } else {
      this.cancel(r.next() < 0.5 ? ASK : BID);
    }
  }

  /**
   * Takes up to `quantity` from `side` (ASK: a buyer takes offers), no worse
   * than `limitTicks` when given, walking at most the visible rows. Calls
   * `fill(priceTicks, size)` for each level taken and prints each as a trade.
   * Returns the quantity filled.
   */
  take(side: Side, quantity: number, limitTicks: number | undefined, fill?: (priceTicks: number, size: number) => void): number {
    let filled = 0;
    for (let walked = 0; walked < ROWS && filled < quantity; walked++) {
      const px = this.price[side][0]!;
      if (limitTicks !== undefined && (side === ASK ? px > limitTicks : px < limitTicks)) break;
      const available = this.size[side][0]!;
      const size = Math.min(available, quantity - filled);
      filled += size;
      this.lastPriceTicks = px;
      this.lastSize = size;
      this.volume += size;
      this.listener.trade(this.index, px, size);
      fill?.(px, size);
      if (size < available) this.setSize(side, 0, available - size);
      else this.removeRow(side, 0);
    }
    return filled;
  }

  /** A passive order: inside the spread when it is wide, else joins a level near the top. */
  private arrive(side: Side): void {
    const r = this.random;
    const spread = this.bestAsk() - this.bestBid();
    if (spread > this.regime.spreadTicks || (spread > 1 && r.next() < 0.1)) {
      const px = side === BID ? this.bestBid() + 1 : this.bestAsk() - 1;
      this.insertRow(side, 0, px, r.size(this.regime.levelSize));
      return;
    }
    const row = Math.min(ROWS - 1, Math.floor(-Math.log(1 - r.next()) * 2.5));
    this.setSize(side, row, this.size[side][row]! + r.size(this.regime.levelSize / 2));
  }

  private cancel(side: Side): void {
    const r = this.random;
    const row = Math.floor(r.next() * ROWS);
    const size = this.size[side][row]!;
    const cancelled = Math.ceil(size * r.next());
    if (cancelled >= size) this.removeRow(side, row);
    else this.setSize(side, row, size - cancelled);
  }

  private setSize(side: Side, row: number, size: number): void {
    this.size[side][row] = size;
    this.listener.depth(this.index, side, row, UPDATE, this.price[side][row]!, size);
  }

  private insertRow(side: Side, row: number, priceTicks: number, size: number): void {
    const prices = this.price[side];
    const sizes = this.size[side];
    prices.copyWithin(row + 1, row, ROWS - 1);
    sizes.copyWithin(row + 1, row, ROWS - 1);
    prices[row] = priceTicks;
    sizes[row] = size;
    this.listener.depth(this.index, side, row, INSERT, priceTicks, size);
  }

  /** Deletes a row and refills the bottom one level further out, so the book keeps its depth. */
  private removeRow(side: Side, row: number): void {
    const prices = this.price[side];
    const sizes = this.size[side];
    const px = prices[row]!;
    prices.copyWithin(row, row + 1);
    sizes.copyWithin(row, row + 1);
    this.listener.depth(this.index, side, row, DELETE, px, 0);
    const last = prices[ROWS - 2]!;
    const gap = 1 + Math.floor(this.random.next() * 2);
    const refill = side === ASK ? last + gap : last - gap;
    prices[ROWS - 1] = refill;
    sizes[ROWS - 1] = this.random.size(this.regime.levelSize);
    this.listener.depth(this.index, side, ROWS - 1, INSERT, refill, sizes[ROWS - 1]!);
  }
}

export interface MarketOptions {
  readonly seed: number;
  /** Market events per second for each instrument being watched. */
  readonly updatesPerSecond: number;
  /** Events per second for each synthetic instrument (default: updatesPerSecond): a wide universe is mostly quiet names. */
  readonly syntheticUpdatesPerSecond?: number;
}

/** A watched book: when its market started and how fast it goes. */
interface Watched {
  readonly book: InstrumentBook;
  readonly since: number;
  readonly updatesPerSecond: number;
}

/**
 * All books, advanced in time. An instrument's market starts when it is
 * first watched and from then on makes its events per second (synthetic
 * names at their own rate) of the clock it is advanced with: the same seed
 * and the same clock readings give the same events, however the work is
 * batched.
 */
export class Market {
  private readonly books = new Map<number, InstrumentBook>();
  /** In the order first watched. An array: walking a Map's entries makes an object per book per pump. */
  private readonly watched: Watched[] = [];
  private readonly watchedIndex = new Set<InstrumentBook>();

  constructor(
    private readonly options: MarketOptions,
    private readonly listener: MarketListener,
  ) {}

  /** The book of an instrument (by its index in the universe), created at its opening state. */
  book(instrument: Instrument): InstrumentBook {
    let book = this.books.get(instrument.index);
    if (!book) {
      book = new InstrumentBook(instrument, this.options.seed, this.listener);
      this.books.set(instrument.index, book);
    }
    return book;
  }

  bookAt(index: number): InstrumentBook | undefined {
    return this.books.get(index);
  }

  /** Starts making events for a book from time `nowMs` (a no-op if it is running). */
  watch(book: InstrumentBook, nowMs: number): void {
    if (this.watchedIndex.has(book)) return;
    this.watchedIndex.add(book);
    const rate = book.instrument.synthetic ? (this.options.syntheticUpdatesPerSecond ?? this.options.updatesPerSecond) : this.options.updatesPerSecond;
    this.watched.push({ book, since: nowMs, updatesPerSecond: rate });
  }

  /** Runs every watched book up to `nowMs`. Returns the number of events made. */
  advanceTo(nowMs: number): number {
    let made = 0;
    for (let w = 0; w < this.watched.length; w++) {
      const { book, since, updatesPerSecond } = this.watched[w]!;
      const due = Math.floor(((nowMs - since) * updatesPerSecond) / 1000);
      while (book.events < due) {
        book.step();
        made++;
      }
    }
    return made;
  }
}
