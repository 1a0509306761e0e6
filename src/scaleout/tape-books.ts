/**
 * Order books and prints rebuilt from shard tapes (market-tape.ts): every
 * book segment carries the whole levels of each book it touched, so writing
 * them in gives the data node's books as they stood after that batch,
 * without the rows that built them. Used by a shard's pipeline (features)
 * and by the trading node, whose book-mode fills and price collar read the
 * data node's books this way instead of subscribing to depth a second time.
 *
 * Tape instrument i goes to `index[i]` of these books (-1: not kept), and
 * times move by `shift` ms (tape epoch ms to the reader's monotonic clock).
 */
import { TradeBatch } from '../ib/trade-feed.js';
import { OrderBooks, TopChanges } from '../market/books.js';
import { ASK, BID } from '../market/order-book.js';
import type { BookSegment, TradeSegment } from './market-tape.js';

export class TapeBooks {
  /** Given `rows` levels per side, or built at the first book segment with the data node's. */
  books: OrderBooks | undefined;
  private trades = new TradeBatch(64);

  constructor(
    readonly instruments: number,
    rows?: number,
  ) {
    if (rows !== undefined) this.books = new OrderBooks(instruments, rows);
  }

  /** The books after a book segment, or undefined when it touched none of ours. */
  onBook(segment: BookSegment, index: ArrayLike<number>, shift: number): OrderBooks | undefined {
    const from = segment.rows;
    this.books ??= new OrderBooks(this.instruments, from);
    const books = this.books;
    // The tape's levels per side may differ from ours: each side is copied best first, as deep as both go.
    const rows = books.books[0]?.maxRows ?? from;
    const depth = Math.min(rows, from);
    const top = segment.top;
    let n = 0;
    if (books.tops.capacity < top.instrument.length) books.tops = new TopChanges(top.instrument.length);
    const tops = books.tops;
    top.instrument.forEach((local, k) => {
      const i = index[local]!;
      if (i < 0) return;
      tops.instrument[n] = i;
      tops.bidPrice[n] = top.bidPrice[k]!;
      tops.bidSize[n] = top.bidSize[k]!;
      tops.askPrice[n] = top.askPrice[k]!;
      tops.askSize[n] = top.askSize[k]!;
      tops.at[n] = top.at[k]! + shift;
      n++;
    });
    tops.count = n;
    let touched = 0;
    segment.touched.forEach((local, k) => {
      const i = index[local]!;
      if (i < 0) return;
      books.touched[touched++] = i;
      const book = books.books[i]!;
      const at = k * 2 * from;
      book.price.set(segment.price.subarray(at, at + depth), 0);
      book.size.set(segment.size.subarray(at, at + depth), 0);
      book.price.set(segment.price.subarray(at + from, at + from + depth), rows);
      book.size.set(segment.size.subarray(at + from, at + from + depth), rows);
      book.count[ASK] = Math.min(segment.count[2 * k]!, rows);
      book.count[BID] = Math.min(segment.count[2 * k + 1]!, rows);
      book.updatedAt = segment.updatedAt[k]! + shift;
    });
    books.touchedCount = touched;
    return n > 0 || touched > 0 ? books : undefined;
  }

  /** The prints of a trade segment, or undefined when none is ours. */
  onTrades(segment: TradeSegment, index: ArrayLike<number>, shift: number): TradeBatch | undefined {
    const size = segment.instrument.length;
    if (this.trades.capacity < size) this.trades = new TradeBatch(size);
    const t = this.trades;
    let n = 0;
    segment.instrument.forEach((local, k) => {
      const i = index[local]!;
      if (i < 0) return;
      t.instrument[n] = i;
      t.price[n] = segment.price[k]!;
      t.size[n] = segment.size[k]!;
      t.receivedAt[n] = segment.at[k]! + shift;
      n++;
    });
    t.count = n;
    return n > 0 ? t : undefined;
  }
}
