/**
 * Level-1 quotes for every instrument, latest values only, in typed arrays
 * indexed by instrument: what reqMktData and tick-by-tick say, always
 * readable (the `quotes` service of subscriptions).
 *
 * For instruments without a depth feed the quotes are their only top of
 * book, so the board also lists which of them changed top since the last
 * `clearChanges` (each once, in typed arrays): subscriptions publishes that
 * list on `quotes.tops` after each socket read, and the features take
 * those instruments' top from it. IB sends a new bid as a price tick and
 * then a size tick; listing the instrument rather than each tick gives the
 * features one consistent top per read, not a half-updated one.
 */
import { TickType } from './api.js';

/** IB tick types keel keeps. */
const { BID_SIZE, BID, ASK, ASK_SIZE, LAST, LAST_SIZE, VOLUME } = TickType;

export class QuoteBoard {
  /** Unknown until IB says: NaN, never a price of 0. */
  readonly bid: Float64Array;
  readonly ask: Float64Array;
  readonly bidSize: Float64Array;
  readonly askSize: Float64Array;
  readonly last: Float64Array;
  readonly lastSize: Float64Array;
  readonly volume: Float64Array;
  /** Instruments whose top changed since `clearChanges`, each once; [0, changedCount) are valid. */
  readonly changed: Int32Array;
  changedCount = 0;
  /** Monotonic time the current `changed` list was published at (set by its publisher). */
  changedAt = NaN;
  /** 1 for the instruments whose top comes from these quotes alone (no book): only they are listed. */
  private readonly quotesOnly: Uint8Array;
  private readonly isChanged: Uint8Array;

  /** `quotesOnly[i]`: instrument i has no depth feed, so its top changes are listed. Default: none. */
  constructor(
    readonly symbols: readonly string[],
    quotesOnly: readonly boolean[] = [],
  ) {
    if (quotesOnly.length > symbols.length) throw new RangeError(`quotesOnly has ${quotesOnly.length} flags for ${symbols.length} instruments`);
    const column = () => new Float64Array(symbols.length).fill(NaN);
    this.bid = column();
    this.ask = column();
    this.bidSize = column();
    this.askSize = column();
    this.last = column();
    this.lastSize = column();
    this.volume = column();
    this.changed = new Int32Array(symbols.length);
    this.isChanged = new Uint8Array(symbols.length);
    this.quotesOnly = Uint8Array.from(symbols, (_, i) => (quotesOnly[i] === true ? 1 : 0));
  }

  /** A TICK_PRICE; unknown instruments (-1) and tick types are ignored. */
  price(instrument: number, tickType: number, value: number): void {
    if (instrument < 0) return;
    if (tickType === BID) this.setTop(this.bid, instrument, value);
    else if (tickType === ASK) this.setTop(this.ask, instrument, value);
    else if (tickType === LAST) this.last[instrument] = value;
  }

  /**
   * A TICK_SIZE. Returns the shares traded since the volume last seen when
   * it is a VOLUME tick after the first (the prints of an instrument with
   * no tick-by-tick feed), else 0.
   */
  size(instrument: number, tickType: number, value: number): number {
    if (instrument < 0) return 0;
    if (tickType === BID_SIZE) this.setTop(this.bidSize, instrument, value);
    else if (tickType === ASK_SIZE) this.setTop(this.askSize, instrument, value);
    else if (tickType === LAST_SIZE) this.lastSize[instrument] = value;
    else if (tickType === VOLUME) {
      const before = this.volume[instrument]!;
      this.volume[instrument] = value;
      // NaN before the first: the first volume is the day's so far, not a print.
      return value > before ? value - before : 0;
    }
    return 0;
  }

  trade(instrument: number, price: number, size: number): void {
    if (instrument < 0) return;
    this.last[instrument] = price;
    this.lastSize[instrument] = size;
  }

  top(instrument: number, bid: number, ask: number, bidSize: number, askSize: number): void {
    if (instrument < 0) return;
    this.setTop(this.bid, instrument, bid);
    this.setTop(this.ask, instrument, ask);
    this.setTop(this.bidSize, instrument, bidSize);
    this.setTop(this.askSize, instrument, askSize);
  }

  /** Empties the `changed` list once its readers have read it. */
  clearChanges(): void {
    for (let n = 0; n < this.changedCount; n++) this.isChanged[this.changed[n]!] = 0;
    this.changedCount = 0;
  }

  private setTop(column: Float64Array, instrument: number, value: number): void {
    if (column[instrument] === value) return;
    column[instrument] = value;
    if (this.quotesOnly[instrument] === 1 && this.isChanged[instrument] === 0) {
      this.isChanged[instrument] = 1;
      this.changed[this.changedCount++] = instrument;
    }
  }
}
