/** A fixed book for tests and benchmarks that trade without a market feed. */
import { OrderBooks } from '../../src/market/books.js';
import { ASK, BID, INSERT } from '../../src/market/order-book.js';

/** One instrument, 99.99 / 100.01, ten levels a side 1 cent apart, 10,000 shares each: a two-bps spread. */
export function oneBook(): OrderBooks {
  const books = new OrderBooks(1, 10);
  const book = books.book(0)!;
  for (let level = 0; level < 10; level++) {
    book.apply(level, INSERT, ASK, 100.01 + level / 100, 10_000, false, 2 * level, 0);
    book.apply(level, INSERT, BID, 99.99 - level / 100, 10_000, false, 2 * level + 1, 0);
  }
  return books;
}
