/**
 * Every instrument's book, fed a DepthBatch at a time. Besides applying the
 * rows, a batch leaves behind what the features need and nothing more:
 * every change of the top of a book, in order (order-flow imbalance is
 * defined on those events, not on batches), and which books the batch
 * touched. All of it lives in reused typed arrays.
 */
import type { DepthBatch } from '../ib/depth-feed.js';
import { APPLIED, OrderBook } from './order-book.js';

/** A book no longer matches TWS's (it rejected an update): subscriptions requests its depth again, which resets it. */
export interface BookResync {
  readonly instrument: number;
  readonly symbol: string;
}

/** A book turned locked or crossed, or stopped being so. */
export interface BookQualityEvent {
  readonly symbol: string;
  readonly quality: 'ok' | 'locked' | 'crossed';
  readonly bid: number;
  readonly ask: number;
}

/** Top-of-book changes of one batch, in arrival order; rows [0, count) are valid. */
export class TopChanges {
  count = 0;
  instrument: Int32Array;
  bidPrice: Float64Array;
  bidSize: Float64Array;
  askPrice: Float64Array;
  askSize: Float64Array;
  at: Float64Array;

  constructor(public capacity: number) {
    this.instrument = new Int32Array(capacity);
    this.bidPrice = new Float64Array(capacity);
    this.bidSize = new Float64Array(capacity);
    this.askPrice = new Float64Array(capacity);
    this.askSize = new Float64Array(capacity);
    this.at = new Float64Array(capacity);
  }
}

export class OrderBooks {
  readonly books: OrderBook[];
  tops: TopChanges;
  /** Instruments the last batch touched, each once. */
  readonly touched: Int32Array;
  touchedCount = 0;
  /** Instruments with a rejected row in the last batch, each once: their books no longer match TWS's. */
  readonly outOfSync: Int32Array;
  outOfSyncCount = 0;
  /** Instruments whose locked / crossed state changed in the last batch. */
  readonly qualityChanged: Int32Array;
  qualityChangedCount = 0;
  /** Rows naming an instrument keel has no book for. */
  unknownInstrument = 0;
  private readonly touchedMark: Uint8Array;
  private readonly outOfSyncMark: Uint8Array;
  /** The top each book last reported, to see when it changes. */
  private readonly lastTop: Float64Array;

  constructor(instruments: number, maxRows: number) {
    this.books = Array.from({ length: instruments }, () => new OrderBook(maxRows));
    this.tops = new TopChanges(1024);
    this.touched = new Int32Array(instruments);
    this.qualityChanged = new Int32Array(instruments);
    this.touchedMark = new Uint8Array(instruments);
    this.outOfSync = new Int32Array(instruments);
    this.outOfSyncMark = new Uint8Array(instruments);
    this.lastTop = new Float64Array(4 * instruments).fill(NaN);
  }

  book(instrument: number): OrderBook | undefined {
    return this.books[instrument];
  }

  /** Applies a batch of depth rows; bad rows are counted by their book and skipped. */
  apply(batch: DepthBatch): void {
    if (this.tops.capacity < batch.count) this.tops = new TopChanges(batch.capacity);
    this.tops.count = 0;
    for (let i = 0; i < this.touchedCount; i++) this.touchedMark[this.touched[i]!] = 0;
    this.touchedCount = 0;
    for (let i = 0; i < this.outOfSyncCount; i++) this.outOfSyncMark[this.outOfSync[i]!] = 0;
    this.outOfSyncCount = 0;
    this.qualityChangedCount = 0;
    for (let row = 0; row < batch.count; row++) {
      const instrument = batch.instrument[row]!;
      const book = this.books[instrument];
      if (book === undefined) {
        this.unknownInstrument++;
        continue;
      }
      const result = book.apply(
        batch.position[row]!,
        batch.operation[row]!,
        batch.side[row]!,
        batch.price[row]!,
        batch.size[row]!,
        batch.smart[row] === 1,
        batch.seq[row]!,
        batch.receivedAt[row]!,
      );
      if (result !== APPLIED) {
        // IB's rows are positions: one skipped row shifts every later one, so the book is wrong until a fresh snapshot.
        if (this.outOfSyncMark[instrument] === 0) {
          this.outOfSyncMark[instrument] = 1;
          this.outOfSync[this.outOfSyncCount++] = instrument;
        }
        continue;
      }
      if (this.touchedMark[instrument] === 0) {
        this.touchedMark[instrument] = 1;
        this.touched[this.touchedCount++] = instrument;
      }
      // Below the top a plain book's best level cannot change; a smart book's can (rows merge by price).
      if (batch.position[row] === 0 || book.smart) this.noteTop(instrument, book, batch.receivedAt[row]!);
    }
    for (let i = 0; i < this.touchedCount; i++) {
      const instrument = this.touched[i]!;
      if (this.books[instrument]!.checkQuality()) this.qualityChanged[this.qualityChangedCount++] = instrument;
    }
  }

  /** Empties one book (317 or a new request); its next top is reported as a change. */
  reset(instrument: number): void {
    const book = this.books[instrument];
    if (!book) return;
    book.clear();
    this.lastTop.fill(NaN, 4 * instrument, 4 * instrument + 4);
  }

  private noteTop(instrument: number, book: OrderBook, at: number): void {
    const bid = book.bestBid();
    const bidSize = book.bidSize();
    const ask = book.bestAsk();
    const askSize = book.askSize();
    const k = 4 * instrument;
    const last = this.lastTop;
    // `!==` is true for NaN: an empty side reports once per row, which is harmless and rare.
    if (last[k] === bid && last[k + 1] === bidSize && last[k + 2] === ask && last[k + 3] === askSize) return;
    last[k] = bid;
    last[k + 1] = bidSize;
    last[k + 2] = ask;
    last[k + 3] = askSize;
    const t = this.tops;
    const n = t.count++;
    t.instrument[n] = instrument;
    t.bidPrice[n] = bid;
    t.bidSize[n] = bidSize;
    t.askPrice[n] = ask;
    t.askSize[n] = askSize;
    t.at[n] = at;
  }
}
