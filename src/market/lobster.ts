/**
 * LOBSTER order-book files (lobsterdata.com) as IB would send them. LOBSTER
 * publishes the top levels after every event; IB sends row operations
 * (insert, update, delete at a position). `depthOperations` turns each
 * published book into the row operations that take the previous one to it,
 * so real NASDAQ data can be replayed through keel's depth path.
 */
import { readFileSync } from 'node:fs';
import type { DepthBatch } from '../ib/depth-feed.js';
import { ASK, BID, DELETE, INSERT, UPDATE } from './order-book.js';

export interface LobsterBooks {
  readonly levels: number;
  readonly rows: number;
  /** Row-major, per row `levels` x (askPrice, askSize, bidPrice, bidSize), prices in dollars. */
  readonly values: Float64Array;
}

/** Empty levels as LOBSTER marks them. */
const EMPTY_ASK = 9999999999;
const EMPTY_BID = -9999999999;

export function readLobsterBooks(file: string): LobsterBooks {
  const lines = readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '');
  const width = lines[0]!.split(',').length;
  if (width % 4 !== 0) throw new Error(`${file}: a LOBSTER book row has 4 columns per level, found ${width}`);
  const values = new Float64Array(lines.length * width);
  lines.forEach((line, row) => {
    const cells = line.split(',');
    if (cells.length !== width) throw new Error(`${file}:${row + 1}: expected ${width} columns, found ${cells.length}`);
    cells.forEach((cell, col) => {
      const n = Number(cell);
      if (!Number.isFinite(n)) throw new Error(`${file}:${row + 1}: column ${col + 1} is not a number: ${JSON.stringify(cell)}`);
      const isPrice = col % 2 === 0;
      values[row * width + col] = isPrice && n !== EMPTY_ASK && n !== EMPTY_BID ? n / 10_000 : isPrice ? NaN : n;
    });
  });
  return { levels: width / 4, rows: lines.length, values };
}

/** One side of one published row, best first, empty levels left out. */
export function sideOf(books: LobsterBooks, row: number, side: number): { price: number; size: number }[] {
  const out: { price: number; size: number }[] = [];
  const base = row * books.levels * 4 + (side === ASK ? 0 : 2);
  for (let level = 0; level < books.levels; level++) {
    const price = books.values[base + level * 4]!;
    const size = books.values[base + level * 4 + 1]!;
    if (!Number.isNaN(price) && size > 0) out.push({ price, size });
  }
  return out;
}

export interface DepthOperation {
  readonly position: number;
  readonly operation: number;
  readonly side: number;
  readonly price: number;
  readonly size: number;
}

/**
 * The row operations that turn `from` into `to` on one side of a book that
 * shows `maxRows` rows (prices distinct and sorted best first on both).
 */
export function depthOperations(
  from: readonly { price: number; size: number }[],
  to: readonly { price: number; size: number }[],
  side: number,
  maxRows: number,
): DepthOperation[] {
  const rows = from.slice();
  const ops: DepthOperation[] = [];
  const better = side === BID ? (a: number, b: number) => a > b : (a: number, b: number) => a < b;
  let i = 0;
  while (i < to.length) {
    const want = to[i]!;
    const have = rows[i];
    if (have !== undefined && have.price === want.price) {
      if (have.size !== want.size) ops.push({ position: i, operation: UPDATE, side, price: want.price, size: want.size });
      rows[i] = want;
      i++;
    } else if (have !== undefined && better(have.price, want.price)) {
      // A level better than the one wanted here is gone.
      ops.push({ position: i, operation: DELETE, side, price: have.price, size: 0 });
      rows.splice(i, 1);
    } else {
      ops.push({ position: i, operation: INSERT, side, price: want.price, size: want.size });
      rows.splice(i, 0, want);
      if (rows.length > maxRows) rows.pop();
      i++;
    }
  }
  while (rows.length > to.length) {
    const last = rows.pop()!;
    ops.push({ position: rows.length, operation: DELETE, side, price: last.price, size: 0 });
  }
  return ops;
}

/** Every row's operations, both sides, from an empty book: row k's start at `starts[k]`. */
export function replayOperations(books: LobsterBooks): { ops: DepthOperation[]; starts: number[] } {
  const ops: DepthOperation[] = [];
  const starts: number[] = [];
  for (let row = 0; row < books.rows; row++) {
    starts.push(ops.length);
    for (const side of [ASK, BID]) {
      const from = row === 0 ? [] : sideOf(books, row - 1, side);
      ops.push(...depthOperations(from, sideOf(books, row, side), side, books.levels));
    }
  }
  starts.push(ops.length);
  return { ops, starts };
}

/** Writes ops [start, end) into `batch` as one instrument's depth rows (plain depth), as the depth feed would. */
export function writeBatch(batch: DepthBatch, ops: readonly DepthOperation[], start: number, end: number, instrument: number, at: number): void {
  batch.count = 0;
  for (let i = start; i < end; i++) {
    const op = ops[i]!;
    const row = batch.count++;
    batch.instrument[row] = instrument;
    batch.position[row] = op.position;
    batch.operation[row] = op.operation;
    batch.side[row] = op.side;
    batch.smart[row] = 0;
    batch.price[row] = op.price;
    batch.size[row] = op.size;
    batch.seq[row] = i + 1;
    batch.receivedAt[row] = at;
  }
}
