/** The simulated market on its own: deterministic, never crossed, and its depth operations rebuild its book. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InstrumentUniverse } from '../../src/sim/instruments.js';
import { ASK, BID, DELETE, INSERT, Market, ROWS, type MarketListener, type Operation, type Side } from '../../src/sim/market.js';

const universe = new InstrumentUniverse(2);
const spy = universe.all[0]!;

/** A client-side book that applies IB's position-based operations, as a subscriber would. */
class MirrorBook implements MarketListener {
  rows: [number, number][][] = [[], []];
  trades = 0;
  depth(_i: number, side: Side, position: number, operation: Operation, price: number, size: number): void {
    const rows = this.rows[side]!;
    if (operation === INSERT) rows.splice(position, 0, [price, size]);
    else if (operation === DELETE) rows.splice(position, 1);
    else rows[position] = [price, size];
    if (rows.length > ROWS) rows.length = ROWS;
  }
  trade(): void {
    this.trades++;
  }
}

function record(seed: number, events: number) {
  const log: number[] = [];
  const listener: MarketListener = {
    depth: (...args) => log.push(0, ...args),
    trade: (...args) => log.push(1, ...args),
  };
  const market = new Market({ seed, updatesPerSecond: 1000 }, listener);
  market.watch(market.book(spy), 0);
  market.advanceTo(events);
  return log;
}

test('the same seed gives the same market, a different seed a different one', () => {
  assert.deepEqual(record(7, 5_000), record(7, 5_000));
  assert.notDeepEqual(record(7, 5_000), record(8, 5_000));
});

test('how time is sliced does not change the events', () => {
  const run = (steps: number[]) => {
    const log: number[] = [];
    const market = new Market({ seed: 3, updatesPerSecond: 1000 }, { depth: (...a) => log.push(...a), trade: (...a) => log.push(...a) });
    market.watch(market.book(spy), 0);
    for (const t of steps) market.advanceTo(t);
    return log;
  };
  assert.deepEqual(run([2_000]), run([1, 17, 500, 1_999, 2_000]));
});

test('depth operations applied position by position rebuild the book exactly; it is never crossed', () => {
  const mirror = new MirrorBook();
  const market = new Market({ seed: 11, updatesPerSecond: 1000 }, mirror);
  const book = market.book(spy);
  for (let row = 0; row < ROWS; row++) {
    mirror.rows[ASK]!.push([book.price[ASK][row]!, book.size[ASK][row]!]);
    mirror.rows[BID]!.push([book.price[BID][row]!, book.size[BID][row]!]);
  }
  market.watch(book, 0);
  const regimes = new Set<string>();
  for (let t = 1; t <= 60_000; t++) {
    market.advanceTo(t);
    regimes.add(book.regime.name);
    assert.ok(book.bestBid() < book.bestAsk(), `crossed at event ${t}`);
  }
  for (const side of [ASK, BID] as const) {
    const expected = Array.from({ length: ROWS }, (_, row) => [book.price[side][row]!, book.size[side][row]!]);
    assert.deepEqual(mirror.rows[side], expected);
    for (let row = 1; row < ROWS; row++) {
      const better = side === ASK ? book.price[side][row - 1]! < book.price[side][row]! : book.price[side][row - 1]! > book.price[side][row]!;
      assert.ok(better, `side ${side} rows out of order`);
    }
  }
  assert.ok(mirror.trades > 1_000);
  assert.deepEqual([...regimes].sort(), ['calm', 'volatile']);
});

test('a marketable order walks the book and fills no worse than its limit', () => {
  const market = new Market({ seed: 5, updatesPerSecond: 1000 }, { depth() {}, trade() {} });
  const book = market.book(spy);
  const top = book.size[ASK][0]! + book.size[ASK][1]!;
  const limit = book.price[ASK][1]!;
  const fills: [number, number][] = [];
  const filled = book.take(ASK, top + 1_000_000, limit, (px, size) => fills.push([px, size]));
  assert.equal(filled, top);
  assert.ok(fills.every(([px]) => px <= limit));
  assert.ok(book.bestAsk() > limit);
});
