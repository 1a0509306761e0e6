/**
 * The order book against real NASDAQ data (LOBSTER, converted into IB row
 * operations) and against a plain reference model on random operation
 * streams, valid and invalid.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { DepthBatch } from '../../src/ib/depth-feed.js';
import { OrderBooks } from '../../src/market/books.js';
import { readLobsterBooks, replayOperations, sideOf, writeBatch } from '../../src/market/lobster.js';
import { APPLIED, ASK, BID, BOOK_CROSSED, BOOK_LOCKED, BOOK_OK, DELETE, INSERT, OrderBook, rejectionOf, UPDATE } from '../../src/market/order-book.js';

const LOBSTER = fileURLToPath(new URL('../fixtures/lobster/AAPL_2012-06-21_orderbook_10.csv', import.meta.url));

function levels(book: OrderBook, side: number): { price: number; size: number }[] {
  const out = [];
  for (let i = 0; i < book.count[side]!; i++) out.push({ price: book.price[side * book.maxRows + i]!, size: book.size[side * book.maxRows + i]! });
  return out;
}

test('LOBSTER AAPL replayed as IB row operations: the book equals the published book after every row, 10 levels, both sides', () => {
  const published = readLobsterBooks(LOBSTER);
  // One published book per message (the README's "998" counts newlines; the last row has none).
  const messages = readFileSync(LOBSTER.replace('orderbook', 'message'), 'utf8').trim().split('\n').length;
  assert.equal(published.rows, messages);
  assert.ok(published.rows >= 998);
  const { ops, starts } = replayOperations(published);
  const books = new OrderBooks(1, 10);
  const batch = new DepthBatch(256);
  let operations = 0;
  for (let row = 0; row < published.rows; row++) {
    writeBatch(batch, ops, starts[row]!, starts[row + 1]!, 0, row);
    books.apply(batch);
    operations += batch.count;
    const book = books.book(0)!;
    for (const side of [ASK, BID]) {
      assert.deepEqual(levels(book, side), sideOf(published, row, side), `row ${row}, ${side === ASK ? 'asks' : 'bids'}`);
      assert.equal(book.count[side], 10, `row ${row}: all 10 levels`);
    }
    assert.equal(book.totalRejected(), 0);
  }
  // Inserts, updates and deletes all occur, including deletes that pull a level into view.
  const kinds = new Set(ops.map((o) => o.operation));
  assert.deepEqual([...kinds].sort(), [INSERT, UPDATE, DELETE]);
  assert.ok(operations > published.rows, `${operations} operations`);
});

/** The simplest book that follows IB's rules: arrays and splice. */
class ReferenceBook {
  readonly rows: { price: number; size: number }[][] = [[], []];
  constructor(readonly maxRows: number) {}

  apply(position: number, operation: number, side: number, price: number, size: number): string | undefined {
    if (side !== 0 && side !== 1) return 'side';
    if (operation !== 0 && operation !== 1 && operation !== 2) return 'operation';
    const rows = this.rows[side]!;
    if (!Number.isInteger(position) || position < 0 || position >= this.maxRows) return 'position';
    if (operation === INSERT ? position > rows.length : position >= rows.length) return 'position';
    if (operation === DELETE) {
      rows.splice(position, 1);
      return undefined;
    }
    if (!Number.isFinite(price) || price <= 0) return 'price';
    if (!Number.isFinite(size) || size < 0) return 'size';
    if (operation === INSERT) {
      rows.splice(position, 0, { price, size });
      if (rows.length > this.maxRows) rows.pop();
    } else rows[position] = { price, size };
    return undefined;
  }
}

function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('property: random operation streams, valid and invalid, leave the book equal to the reference model', () => {
  for (let seed = 1; seed <= 40; seed++) {
    const next = random(seed);
    const maxRows = 1 + Math.floor(next() * 10);
    const book = new OrderBook(maxRows);
    const reference = new ReferenceBook(maxRows);
    const rejections = new Map<string, number>();
    for (let step = 0; step < 2_000; step++) {
      const r = next();
      // Mostly sensible updates, with every kind of bad one mixed in.
      const position = r < 0.03 ? -1 : r < 0.06 ? maxRows : r < 0.07 ? 0.5 : Math.floor(next() * (maxRows + 1));
      const operation = next() < 0.02 ? 3 : Math.floor(next() * 3);
      const side = next() < 0.01 ? 2 : Math.floor(next() * 2);
      const price = next() < 0.02 ? NaN : next() < 0.01 ? -1 : 100 + Math.floor(next() * 50) / 100;
      const size = next() < 0.02 ? -5 : next() < 0.01 ? Infinity : Math.floor(next() * 500);
      const expected = reference.apply(position, operation, side, price, size);
      const result = book.apply(position, operation, side, price, size, false, step, step);
      assert.equal(rejectionOf(result), expected, `seed ${seed} step ${step}: ${JSON.stringify({ position, operation, side, price, size })}`);
      if (expected) rejections.set(expected, (rejections.get(expected) ?? 0) + 1);
      for (const s of [ASK, BID]) assert.deepEqual(levels(book, s), reference.rows[s], `seed ${seed} step ${step} side ${s}`);
    }
    const counted = Object.fromEntries(['side', 'operation', 'position', 'price', 'size'].map((r, i) => [r, book.rejected[i]]));
    for (const [reason, n] of rejections) assert.equal(counted[reason], n, `seed ${seed}: ${reason} rejections counted`);
  }
});

test('rejected updates are counted by reason and leave the book untouched', () => {
  const book = new OrderBook(5);
  assert.equal(book.apply(0, INSERT, BID, 100, 10, false, 1, 1), APPLIED);
  const cases: [number, number, number, number, number, string][] = [
    [3, INSERT, BID, 99, 5, 'position'], // a gap below the last row
    [1, UPDATE, BID, 99, 5, 'position'], // no such row
    [5, INSERT, ASK, 101, 5, 'position'], // beyond the subscribed rows
    [0, INSERT, ASK, NaN, 5, 'price'],
    [0, INSERT, ASK, 101, -1, 'size'],
    [0, INSERT, ASK, 101, NaN, 'size'],
    [0, 7, ASK, 101, 5, 'operation'],
    [0, INSERT, 4, 101, 5, 'side'],
  ];
  for (const [position, operation, side, price, size, reason] of cases) {
    assert.equal(rejectionOf(book.apply(position, operation, side, price, size, false, 2, 2)), reason);
  }
  assert.deepEqual(levels(book, BID), [{ price: 100, size: 10 }]);
  assert.deepEqual(levels(book, ASK), []);
  assert.equal(book.totalRejected(), cases.length);
  assert.deepEqual([...book.rejected], [1, 1, 3, 1, 2]);
  assert.equal(book.seq, 1, 'the sequence number is the last applied update');
});

test('smart depth: several market makers at one price aggregate into one level', () => {
  const book = new OrderBook(10);
  book.apply(0, INSERT, BID, 100.02, 100, true, 1, 1); // NSDQ
  book.apply(1, INSERT, BID, 100.02, 200, true, 2, 2); // ARCA, same price
  book.apply(2, INSERT, BID, 100.01, 50, true, 3, 3);
  book.apply(0, INSERT, ASK, 100.04, 70, true, 4, 4);
  assert.deepEqual(levels(book, BID), [
    { price: 100.02, size: 300 },
    { price: 100.01, size: 50 },
  ]);
  assert.equal(book.rowCount[BID], 3, 'the rows stay as IB positions them');
  book.apply(0, DELETE, BID, 0, 0, true, 5, 5);
  assert.deepEqual(levels(book, BID), [
    { price: 100.02, size: 200 },
    { price: 100.01, size: 50 },
  ]);
  assert.equal(book.bidSize(), 200);
  assert.equal(book.bestAsk(), 100.04);
});

test('a crossed or locked book is flagged at the end of a batch, and a transient cross inside one is not', () => {
  const books = new OrderBooks(1, 5);
  const batch = new DepthBatch(16);
  const ops = (list: [number, number, number, number, number][]) =>
    writeBatch(batch, list.map(([position, operation, side, price, size]) => ({ position, operation, side, price, size })), 0, list.length, 0, 0);
  ops([
    [0, INSERT, BID, 100, 10],
    [0, INSERT, ASK, 100.05, 10],
  ]);
  books.apply(batch);
  assert.equal(books.book(0)!.quality, BOOK_OK);
  // A new best bid through the ask, then the ask removed and re-inserted higher: crossed only mid-batch.
  ops([
    [0, INSERT, BID, 100.06, 5],
    [0, DELETE, ASK, 0, 0],
    [0, INSERT, ASK, 100.08, 5],
  ]);
  books.apply(batch);
  assert.equal(books.book(0)!.quality, BOOK_OK);
  assert.equal(books.qualityChangedCount, 0);
  ops([[0, UPDATE, ASK, 100.06, 5]]);
  books.apply(batch);
  assert.equal(books.book(0)!.quality, BOOK_LOCKED);
  assert.deepEqual([...books.qualityChanged.subarray(0, books.qualityChangedCount)], [0]);
  ops([[0, UPDATE, ASK, 100.04, 5]]);
  books.apply(batch);
  assert.equal(books.book(0)!.quality, BOOK_CROSSED);
});

test('every change of a top of book is reported in order; changes below the top are not', () => {
  const books = new OrderBooks(2, 5);
  const batch = new DepthBatch(16);
  const list = [
    { position: 0, operation: INSERT, side: BID, price: 100, size: 10 },
    { position: 0, operation: INSERT, side: ASK, price: 101, size: 20 },
    { position: 1, operation: INSERT, side: ASK, price: 102, size: 20 },
    { position: 0, operation: UPDATE, side: BID, price: 100, size: 15 },
  ];
  writeBatch(batch, list, 0, list.length, 1, 7);
  books.apply(batch);
  const t = books.tops;
  assert.equal(t.count, 3);
  assert.deepEqual([...t.instrument.subarray(0, 3)], [1, 1, 1]);
  assert.deepEqual([...t.bidSize.subarray(0, 3)], [10, 10, 15]);
  assert.deepEqual([t.askPrice[1], t.askSize[1]], [101, 20]);
  assert.deepEqual([...books.touched.subarray(0, books.touchedCount)], [1]);
  // After a reset the book is empty and its next top is reported again.
  books.reset(1);
  assert.equal(books.book(1)!.twoSided(), false);
  writeBatch(batch, list, 0, 2, 1, 8);
  books.apply(batch);
  assert.equal(books.tops.count, 2);
});
