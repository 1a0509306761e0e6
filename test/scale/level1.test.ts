/**
 * Most of a wide universe has level-1 quotes and no book: the quote board
 * lists their top changes, the features take their top of book from it,
 * feature health never lets them stop trading, and the simulator runs the
 * quiet synthetic names at their own pace. Pure logic, no network.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { QuoteBoard } from '../../src/ib/quote-board.js';
import { DEFAULT_THRESHOLDS, FeatureHealth } from '../../src/market/feature-health.js';
import { DEFAULT_FEATURE_OPTIONS, DEPTH_FEATURES, FeatureEngine, featureSchema, IMBALANCE_L1, MICROPRICE, MID, OFI, SPREAD_BPS } from '../../src/market/features.js';
import { InstrumentUniverse } from '../../src/sim/instruments.js';
import { Market } from '../../src/sim/market.js';

/** IB tick types. */
const BID_SIZE = 0;
const BID = 1;
const ASK = 2;
const ASK_SIZE = 3;
const VOLUME = 8;

const OPTIONS = { baseMs: 100, volHalfLivesMs: [1_000], returnHorizonsMs: [1_000], flowHalfLifeMs: 1_000 };

function quote(board: QuoteBoard, i: number, bid: number, bidSize: number, ask: number, askSize: number) {
  board.price(i, BID, bid);
  board.size(i, BID_SIZE, bidSize);
  board.price(i, ASK, ask);
  board.size(i, ASK_SIZE, askSize);
}

/** What subscriptions does after a socket read: the features read the changed tops, then the list is emptied. */
function publish(board: QuoteBoard, engine: FeatureEngine, at: number) {
  board.changedAt = at;
  engine.onQuotes(board);
  board.clearChanges();
}

test('level-1 quotes give an instrument without a book its top-of-book features, once per read; its depth features stay NaN', () => {
  const board = new QuoteBoard(['SPY', 'SYN0001', 'SYN0002'], [false, true, true]);
  const engine = new FeatureEngine(3, OPTIONS);
  const row = (i: number, column: number) => engine.values[i * engine.width + column]!;

  quote(board, 0, 580, 100, 580.01, 100);
  quote(board, 1, 10, 300, 10.02, 100);
  quote(board, 1, 10, 300, 10.02, 100);
  assert.deepEqual([...board.changed.subarray(0, board.changedCount)], [1], 'SPY has a book; SYN0001 is listed once for its four ticks');
  publish(board, engine, 0);
  assert.equal(board.changedCount, 0);
  assert.equal(row(1, MID), 10.01);
  assert.equal(row(1, SPREAD_BPS), ((10.02 - 10) / 10.01) * 10_000);
  assert.equal(row(1, MICROPRICE), (10 * 100 + 10.02 * 300) / 400);
  assert.equal(row(1, IMBALANCE_L1), 0.5);
  for (const name of DEPTH_FEATURES) assert.ok(Number.isNaN(row(1, engine.schema.features.indexOf(name))), `${name} needs a book`);
  assert.ok(Number.isNaN(row(0, MID)), "SPY's top comes from its book, not its quotes");
  assert.equal(engine.lastDataAt[1], 0);

  // The bid steps up: order-flow imbalance e = 200 (new bid size) - 100 (ask size) + 100 (previous ask size).
  quote(board, 1, 10.01, 200, 10.02, 100);
  publish(board, engine, 500);
  engine.tick(500);
  assert.equal(row(1, OFI), 200);

  // Warm once the longest return horizon is covered: one base tick after it.
  engine.tick(1_000);
  assert.equal(engine.warm(1, 1_000), false);
  engine.tick(1_100);
  assert.equal(engine.warm(1, 1_100), true);
  assert.equal(engine.warm(2, 1_100), false, 'no data, not warm');

  // A bid price whose size has not come yet: nothing is computed from half a quote.
  board.price(2, BID, 20);
  board.price(2, ASK, 20.01);
  publish(board, engine, 1_200);
  assert.ok(Number.isNaN(row(2, MID)));
  assert.ok(Number.isNaN(engine.warmAt[2]), 'not on its way to warm');
  // IB's -1: no bid at all. The instrument has no top until it is two-sided again.
  quote(board, 1, -1, 0, 10.02, 100);
  publish(board, engine, 1_300);
  assert.ok(Number.isNaN(row(1, MID)));
});

test("a quote line's volume ticks are its prints: the shares traded since the volume last seen", () => {
  const board = new QuoteBoard(['SYN0001'], [true]);
  assert.equal(board.size(0, VOLUME, 1_000), 0, "the first volume is the day's so far, not a print");
  assert.equal(board.size(0, VOLUME, 1_300), 300);
  assert.equal(board.size(0, VOLUME, 1_300), 0);
  assert.equal(board.size(-1, VOLUME, 2_000), 0, 'a request keel no longer routes');
  assert.throws(() => new QuoteBoard(['A'], [true, true]), /quotesOnly has 2 flags for 1 instruments/);
});

test('an instrument without a book never stops trading: depth features unjudged, the rest advisory, its silence ignored; a booked one still halts', () => {
  const schema = featureSchema(DEFAULT_FEATURE_OPTIONS);
  const w = schema.features.length;
  const symbols = ['SPY', 'SYN0001'];
  const health = new FeatureHealth(symbols, schema, { thresholds: DEFAULT_THRESHOLDS, advisory: [], maxDataAgeMs: 5_000, booked: [true, false] });
  const values = new Float64Array(2 * w).fill(1);
  const depthColumns = DEPTH_FEATURES.map((name) => schema.features.indexOf(name));
  for (const c of depthColumns) values[w + c] = NaN;
  values[w + OFI] = NaN;
  health.observe(values, new Uint8Array([1, 1]), 100);
  assert.deepEqual([...health.problems.keys()], [], 'a NaN in a level-1 instrument is reported, not a halt');
  assert.ok(health.status[w + OFI]! >= 0, 'its features are judged');
  for (const c of depthColumns) assert.equal(health.status[w + c], -1, `${schema.features[c]} is not judged without a book`);
  assert.equal(health.isAdvisory(w + OFI), true);
  assert.equal(health.isAdvisory(OFI), false);

  values[OFI] = NaN;
  health.observe(values, new Uint8Array([1, 1]), 200);
  assert.deepEqual([...health.problems.keys()], ['nan SPY ofi']);
  values[OFI] = 1;
  health.observe(values, new Uint8Array([1, 1]), 300);

  health.feedSilent('SYN0001', 400);
  assert.deepEqual([...health.problems.keys()], []);
  health.feedSilent('SPY', 400);
  assert.deepEqual([...health.problems.keys()], ['silent SPY']);
  assert.throws(() => new FeatureHealth(symbols, schema, { thresholds: DEFAULT_THRESHOLDS, advisory: [], maxDataAgeMs: 5_000, booked: [true] }), /booked has 1 flags for 2 instruments/);
});

test('a book still being staged is not stale: its data age counts from when its depth was asked of IB', () => {
  const schema = featureSchema(DEFAULT_FEATURE_OPTIONS);
  const symbols = ['SPY', 'QQQ', 'SYN0001'];
  const health = new FeatureHealth(symbols, schema, { thresholds: DEFAULT_THRESHOLDS, advisory: [], maxDataAgeMs: 5_000, booked: [true, true, false] });
  const lastDataAt = new Float64Array(3).fill(NaN);
  const askedAt = new Float64Array(3).fill(NaN);
  askedAt[0] = 0;
  health.sweep(lastDataAt, 0, 10_000, askedAt);
  assert.deepEqual([...health.problems.keys()], ['stale SPY'], 'QQQ waits for a depth slot; SYN0001 has no book');
  askedAt[1] = 8_000;
  health.sweep(lastDataAt, 0, 12_000, askedAt);
  assert.deepEqual([...health.problems.keys()], ['stale SPY']);
  health.sweep(lastDataAt, 0, 13_001, askedAt);
  assert.deepEqual([...health.problems.keys()].sort(), ['stale QQQ', 'stale SPY']);
  lastDataAt[0] = 13_000;
  lastDataAt[1] = 13_000;
  health.sweep(lastDataAt, 0, 13_100, askedAt);
  assert.deepEqual([...health.problems.keys()], []);
  // Without request times (a replay), age counts from the start, as before.
  const replay = new FeatureHealth(symbols, schema, { thresholds: DEFAULT_THRESHOLDS, advisory: [], maxDataAgeMs: 5_000, booked: [true, true, false] });
  replay.sweep(new Float64Array(3).fill(NaN), 0, 6_000);
  assert.deepEqual([...replay.problems.keys()].sort(), ['stale QQQ', 'stale SPY']);
});

test("the simulator runs synthetic names at their own rate without changing a real name's market", () => {
  const universe = new InstrumentUniverse(2);
  const [spy, , , , syn] = universe.all;
  assert.equal(syn!.symbol, 'SYN0001');
  assert.equal(syn!.synthetic, true);
  const listener = { depth: () => {}, trade: () => {} };
  const wide = new Market({ seed: 3, updatesPerSecond: 50, syntheticUpdatesPerSecond: 5 }, listener);
  const alone = new Market({ seed: 3, updatesPerSecond: 50 }, listener);
  for (const m of [wide, alone]) m.watch(m.book(spy!), 0);
  wide.watch(wide.book(syn!), 0);
  wide.advanceTo(10_000);
  alone.advanceTo(10_000);
  assert.equal(wide.bookAt(spy!.index)!.events, 500);
  assert.equal(wide.bookAt(syn!.index)!.events, 50);
  assert.deepEqual(wide.bookAt(spy!.index)!.price, alone.bookAt(spy!.index)!.price);
  assert.deepEqual(wide.bookAt(spy!.index)!.size, alone.bookAt(spy!.index)!.size);
});
