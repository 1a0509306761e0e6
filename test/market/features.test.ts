/**
 * Each feature against values worked out by hand on small books and trade
 * sequences.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DepthBatch } from '../../src/ib/depth-feed.js';
import { TradeBatch } from '../../src/ib/trade-feed.js';
import { OrderBooks } from '../../src/market/books.js';
import {
  DEPTH_IMBALANCE_10,
  DEPTH_IMBALANCE_5,
  DEPTH_SLOPE,
  FeatureEngine,
  featureSchema,
  IMBALANCE_L1,
  MICROPRICE,
  MID,
  OFI,
  SPREAD_BPS,
  TRADE_FLOW_IMBALANCE,
  TRADE_INTENSITY,
} from '../../src/market/features.js';
import { featuresSettings } from '../../src/actors/features.js';
import { writeBatch } from '../../src/market/lobster.js';
import { ASK, BID, INSERT, UPDATE, DELETE } from '../../src/market/order-book.js';

const OPTIONS = { baseMs: 100, volHalfLivesMs: [1000], returnHorizonsMs: [1000], flowHalfLifeMs: 1000 };
const RV = 10;
const RET = 11;

function setup() {
  const books = new OrderBooks(1, 10);
  const engine = new FeatureEngine(1, OPTIONS);
  const batch = new DepthBatch(64);
  const apply = (at: number, ...ops: [number, number, number, number, number][]) => {
    const list = ops.map(([position, operation, side, price, size]) => ({ position, operation, side, price, size }));
    writeBatch(batch, list, 0, list.length, 0, at);
    books.apply(batch);
    engine.onBook(books);
  };
  const trades = new TradeBatch(16);
  const trade = (at: number, price: number, size: number) => {
    trades.count = 1;
    trades.instrument[0] = 0;
    trades.price[0] = price;
    trades.size[0] = size;
    trades.receivedAt[0] = at;
    engine.onTrades(trades);
  };
  const value = (feature: number) => engine.values[feature]!;
  return { books, engine, apply, trade, value };
}

const close = (actual: number, expected: number, what: string) => assert.ok(Math.abs(actual - expected) < 1e-9 * Math.max(1, Math.abs(expected)), `${what}: ${actual} != ${expected}`);

test('the schema names every column, volatilities and returns by their horizon', () => {
  assert.deepEqual(featureSchema({ baseMs: 100, volHalfLivesMs: [1000, 60_000], returnHorizonsMs: [500, 10_000], flowHalfLifeMs: 1000 }).features, [
    'mid',
    'spread_bps',
    'microprice',
    'imbalance_l1',
    'depth_imbalance_5',
    'depth_imbalance_10',
    'ofi',
    'trade_flow_imbalance',
    'trade_intensity',
    'depth_slope',
    'rv_1s',
    'rv_1m',
    'ret_500ms',
    'ret_10s',
  ]);
  assert.throws(() => featureSchema({ ...OPTIONS, returnHorizonsMs: [150] }), /150 ms is not a multiple of the 100 ms/);
});

test('book shape: mid, spread, microprice, level-1 and depth imbalance, depth slope', () => {
  const { apply, value } = setup();
  apply(
    0,
    [0, INSERT, BID, 100.0, 300],
    [1, INSERT, BID, 99.99, 100],
    [2, INSERT, BID, 99.98, 100],
    [3, INSERT, BID, 99.97, 100],
    [4, INSERT, BID, 99.96, 100],
    [5, INSERT, BID, 99.95, 400],
    [0, INSERT, ASK, 100.02, 100],
    [1, INSERT, ASK, 100.03, 200],
  );
  close(value(MID), 100.01, 'mid');
  close(value(SPREAD_BPS), (0.02 / 100.01) * 10_000, 'spread');
  // Weighted toward the ask because the bid is the heavier side: (100 * 100 + 100.02 * 300) / 400.
  close(value(MICROPRICE), 100.015, 'microprice');
  close(value(IMBALANCE_L1), 0.5, 'imbalance (300 - 100) / 400');
  close(value(DEPTH_IMBALANCE_5), (700 - 300) / 1000, 'depth imbalance over 5 levels');
  close(value(DEPTH_IMBALANCE_10), (1100 - 300) / 1400, 'depth imbalance over 10 levels');
  const bidReach = ((100.01 - 99.95) / 100.01) * 10_000;
  const askReach = ((100.03 - 100.01) / 100.01) * 10_000;
  close(value(DEPTH_SLOPE), (1100 / bidReach + 300 / askReach) / 2, 'depth slope');
});

test('order-flow imbalance follows Cont, Kukanov and Stoikov event by event, and decays by its half-life', () => {
  const { apply, engine, value } = setup();
  apply(0, [0, INSERT, BID, 100, 10], [0, INSERT, ASK, 101, 10]);
  apply(0, [0, UPDATE, BID, 100, 15]); // same bid price, more size: +15 - 10 = +5
  apply(0, [0, INSERT, BID, 100.5, 3]); // a better bid: +3
  apply(0, [0, INSERT, ASK, 100.8, 4]); // a better ask: -4
  engine.tick(0);
  close(value(OFI), 5 + 3 - 4, 'ofi');
  engine.tick(1000);
  close(value(OFI), 2, 'ofi after one half-life');
  // The ask at 100.8 pulled: the old best ask (101, 10) is back, a worse ask: +4 (its size was taken away).
  apply(1000, [0, DELETE, ASK, 0, 0]);
  engine.tick(1000);
  close(value(OFI), 2 + 4, 'ofi after the ask was pulled');
});

test('trade flow: aggressor side from the mid (tick rule at the mid), imbalance and intensity decay together', () => {
  const { apply, engine, trade, value } = setup();
  apply(0, [0, INSERT, BID, 100, 10], [0, INSERT, ASK, 101, 10]);
  engine.tick(0);
  assert.equal(value(TRADE_FLOW_IMBALANCE), 0, 'no trades: no imbalance');
  assert.equal(value(TRADE_INTENSITY), 0);
  trade(0, 101, 100); // at the ask: a buyer
  trade(0, 100, 50); // at the bid: a seller
  trade(0, 100.5, 30); // at the mid, up from 100: a buyer
  engine.tick(0);
  close(value(TRADE_FLOW_IMBALANCE), (130 - 50) / 180, 'trade flow imbalance');
  close(value(TRADE_INTENSITY), 3 * Math.LN2, 'trades per second over the effective window');
  engine.tick(1000);
  close(value(TRADE_FLOW_IMBALANCE), (130 - 50) / 180, 'the imbalance is a ratio: decay leaves it');
  close(value(TRADE_INTENSITY), 1.5 * Math.LN2, 'intensity halves in one half-life');
});

test('realized volatility sums squared log mid changes with exponential decay', () => {
  const { apply, engine, value } = setup();
  apply(0, [0, INSERT, BID, 99, 10], [0, INSERT, ASK, 101, 10]); // mid 100
  apply(0, [0, UPDATE, BID, 101, 10], [0, UPDATE, ASK, 101, 10]); // a locked book at 101 for an instant: mid 101
  apply(0, [0, UPDATE, BID, 99, 10]); // mid 100
  engine.tick(0);
  const sum = Math.log(101 / 100) ** 2 + Math.log(100 / 101) ** 2;
  close(value(RV), Math.sqrt(sum * Math.LN2) * 10_000, 'rv_1s');
  engine.tick(2000);
  close(value(RV), Math.sqrt((sum / 4) * Math.LN2) * 10_000, 'rv_1s two half-lives later');
});

test('returns over a horizon read the mid one horizon back; warm once the longest horizon is covered', () => {
  const { apply, engine, value } = setup();
  apply(0, [0, INSERT, BID, 99.99, 10], [0, INSERT, ASK, 100.01, 10]); // mid 100
  assert.equal(engine.warm(0, 0), false);
  assert.equal(engine.warmAt[0], 0 + 1000 + 100);
  for (let t = 100; t <= 1000; t += 100) engine.tick(t);
  apply(1000, [0, UPDATE, BID, 100.99, 10], [0, UPDATE, ASK, 101.01, 10]); // mid 101
  engine.tick(1100);
  close(value(RET), Math.log(101 / 100) * 10_000, 'ret_1s');
  assert.equal(engine.warm(0, 1100), true);
  engine.tick(1200);
  close(value(RET), Math.log(101 / 100) * 10_000, 'still 1 s back at 100');
  for (let t = 1300; t <= 2100; t += 100) engine.tick(t);
  assert.equal(value(RET), 0, 'a flat second');
});

test('an empty top (sizes 0) gives NaN where a ratio has nothing to divide, and a one-sided book has no mid', () => {
  const { apply, engine, value } = setup();
  apply(0, [0, INSERT, BID, 100, 0], [0, INSERT, ASK, 101, 0]);
  engine.tick(0);
  assert.ok(Number.isNaN(value(MICROPRICE)));
  assert.ok(Number.isNaN(value(IMBALANCE_L1)));
  close(value(MID), 100.5, 'the mid is still known');
  apply(0, [0, DELETE, ASK, 0, 0]);
  assert.ok(Number.isNaN(value(MID)));
  assert.ok(Number.isNaN(value(SPREAD_BPS)));
});

test('features settings: every sampling clock and return horizon must sit on the first clock', () => {
  const result = featuresSettings.safeParse({ samplesMs: [100, 250], returnHorizonsMs: [1000, 1050] });
  assert.equal(result.success, false);
  const issues = result.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  assert.deepEqual(issues, ['samplesMs.1: must be a multiple of the first sampling clock (100 ms)', 'returnHorizonsMs.1: must be a multiple of the first sampling clock (100 ms)']);
});
