/**
 * Level-1 quotes for every instrument, latest values only, in typed arrays
 * indexed by instrument: what reqMktData and tick-by-tick say, always
 * readable (retained on the bus as `quotes`).
 */
export const QUOTES_TOPIC = 'quotes';

/** IB tick types keel keeps. */
const BID_SIZE = 0;
const BID = 1;
const ASK = 2;
const ASK_SIZE = 3;
const LAST = 4;
const LAST_SIZE = 5;
const VOLUME = 8;

export class QuoteBoard {
  /** Unknown until IB says: NaN, never a price of 0. */
  readonly bid: Float64Array;
  readonly ask: Float64Array;
  readonly bidSize: Float64Array;
  readonly askSize: Float64Array;
  readonly last: Float64Array;
  readonly lastSize: Float64Array;
  readonly volume: Float64Array;

  constructor(readonly symbols: readonly string[]) {
    const column = () => new Float64Array(symbols.length).fill(NaN);
    this.bid = column();
    this.ask = column();
    this.bidSize = column();
    this.askSize = column();
    this.last = column();
    this.lastSize = column();
    this.volume = column();
  }

  /** A TICK_PRICE; unknown instruments (-1) and tick types are ignored. */
  price(instrument: number, tickType: number, value: number): void {
    if (instrument < 0) return;
    if (tickType === BID) this.bid[instrument] = value;
    else if (tickType === ASK) this.ask[instrument] = value;
    else if (tickType === LAST) this.last[instrument] = value;
  }

  size(instrument: number, tickType: number, value: number): void {
    if (instrument < 0) return;
    if (tickType === BID_SIZE) this.bidSize[instrument] = value;
    else if (tickType === ASK_SIZE) this.askSize[instrument] = value;
    else if (tickType === LAST_SIZE) this.lastSize[instrument] = value;
    else if (tickType === VOLUME) this.volume[instrument] = value;
  }

  trade(instrument: number, price: number, size: number): void {
    if (instrument < 0) return;
    this.last[instrument] = price;
    this.lastSize[instrument] = size;
  }

  top(instrument: number, bid: number, ask: number, bidSize: number, askSize: number): void {
    if (instrument < 0) return;
    this.bid[instrument] = bid;
    this.ask[instrument] = ask;
    this.bidSize[instrument] = bidSize;
    this.askSize[instrument] = askSize;
  }
}
