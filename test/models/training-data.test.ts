/**
 * The simulated training dataset: reproducible bit for bit, finite, in the
 * live schema, labelled with the simulator's true regime, with forward
 * returns that agree with the dataset's own later mids, and split and
 * windowed without mixing time or instruments.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_FEATURE_OPTIONS, featureSchema, MID } from '../../src/market/features.js';
import { InstrumentUniverse } from '../../src/sim/instruments.js';
import { Market } from '../../src/sim/market.js';
import { select, splitByTime, windows, type Dataset } from '../../src/models/dataset.js';
import { simulateDataset } from '../../src/models/training-data.js';

// Seed 1 switches SPY and QQQ into the volatile regime within these 20 simulated minutes.
const OPTIONS = { seed: 1, instruments: 2, seconds: 20 * 60, sampleMs: 1000, horizonMs: 10_000 };
const data = simulateDataset(OPTIONS);
const width = data.features.length;

const value = (d: Dataset, row: number, name: string) => d.x[row * width + d.features.indexOf(name)]!;

/** Mean of a feature over the rows of one regime. */
function regimeMean(name: string, regime: number): number {
  let sum = 0;
  let n = 0;
  for (let r = 0; r < data.rows; r++) {
    if (data.regime[r] !== regime) continue;
    sum += value(data, r, name);
    n++;
  }
  return sum / n;
}

test('the same options give identical arrays; another seed gives another market', () => {
  const again = simulateDataset(OPTIONS);
  assert.deepEqual(again, data);
  const other = simulateDataset({ ...OPTIONS, seed: 2 });
  assert.notDeepEqual(other.x, data.x);
  assert.notEqual(other.description, data.description);
});

test('rows are finite, in the live schema, and cover both instruments once warm', () => {
  assert.deepEqual(data.features, featureSchema(DEFAULT_FEATURE_OPTIONS).features);
  assert.equal(data.x.length, data.rows * width);
  for (const v of data.x) assert.ok(Number.isFinite(v));
  // Warm once the longest return horizon (1 minute) has history: a row per instrument per second after that.
  assert.equal(data.rows, 2 * (OPTIONS.seconds - 60));
  assert.deepEqual(data.symbols, ['SPY', 'QQQ']);
  assert.match(data.description, /seed 1, 2 instruments/);
});

test('the features are the simulator market seen through the live pipeline: the mid is its mid', () => {
  const market = new Market({ seed: OPTIONS.seed, updatesPerSecond: 20 }, { depth: () => {}, trade: () => {} });
  const books = new InstrumentUniverse().all.slice(0, 2).map((instrument) => market.book(instrument));
  for (const book of books) market.watch(book, 0);
  for (let r = 0; r < data.rows; r++) {
    market.advanceTo(data.time[r]!);
    const book = books[data.instrument[r]!]!;
    // Prices reach keel in dollars, as the simulator sends them.
    assert.equal(data.x[r * width + MID], (book.bestBid() / 100 + book.bestAsk() / 100) / 2);
  }
});

test('the true regime takes both values and shows in volatility, spread and trading', () => {
  const volatile = data.regime.reduce((n, v) => n + v, 0);
  assert.ok(volatile > 0 && volatile < data.rows, `volatile rows: ${volatile} of ${data.rows}`);
  for (const name of ['rv_1s', 'spread_bps', 'trade_intensity']) {
    assert.ok(regimeMean(name, 1) > regimeMean(name, 0), `${name}: volatile ${regimeMean(name, 1)} vs calm ${regimeMean(name, 0)}`);
  }
});

test("the forward return is the log ratio of the instrument's own later mid, NaN past the end", () => {
  const ahead = OPTIONS.horizonMs;
  for (const r of [0, 1, 501, 1200, data.rows - 2 * 11]) {
    const later = data.time.findIndex((t, k) => t === data.time[r]! + ahead && data.instrument[k] === data.instrument[r]);
    assert.ok(later > r);
    const expected = Math.log(value(data, later, 'mid') / value(data, r, 'mid')) * 10_000;
    assert.ok(Math.abs(data.forwardReturn[r]! - expected) < 1e-9);
  }
  const end = data.time[data.rows - 1]!;
  for (let r = 0; r < data.rows; r++) {
    assert.equal(Number.isNaN(data.forwardReturn[r]), data.time[r]! + ahead > end, `row ${r} at ${data.time[r]} ms`);
  }
});

test('splitByTime holds out the later part, whole sampling instants, and keeps training labels out of it', () => {
  const { train, test: heldOut } = splitByTime(data, 0.75);
  assert.equal(train.rows + heldOut.rows, data.rows);
  const lastTrain = train.time[train.rows - 1]!;
  assert.ok(lastTrain < heldOut.time[0]!);
  assert.deepEqual(train.x, data.x.subarray(0, train.rows * width));
  assert.deepEqual(heldOut.regime, data.regime.subarray(train.rows));
  for (let r = 0; r < train.rows; r++) {
    assert.equal(Number.isNaN(train.forwardReturn[r]), train.time[r]! + OPTIONS.horizonMs >= heldOut.time[0]!);
  }
  assert.match(train.description, /^keel simulator, seed 1.*train/);
});

test('select takes columns by name, of every row or of a mask, and names a missing feature', () => {
  const picked = select(data, ['ofi', 'mid']);
  assert.equal(picked.length, 2 * data.rows);
  assert.equal(picked[2 * 7 + 1], value(data, 7, 'mid'));
  const mask = data.regime.map((v) => v);
  const volatile = select(data, ['spread_bps'], mask);
  const firstVolatile = data.regime.indexOf(1);
  assert.equal(volatile.length, data.regime.reduce((n, v) => n + v, 0));
  assert.equal(volatile[0], value(data, firstVolatile, 'spread_bps'));
  assert.throws(() => select(data, ['ofi', 'alpha']), /feature 'alpha' is not in the dataset/);
});

test('windows hold consecutive samples of one instrument, ending on the row they predict', () => {
  const names = ['ofi', 'imbalance_l1'];
  const w = windows(data, names, 5);
  // Every instrument's run is unbroken: each gives one window per row after its first four.
  assert.equal(w.samples, data.rows - 2 * 4);
  assert.equal(w.x.length, w.samples * 5 * names.length);
  const rowOf = (instrument: number, time: number) => data.time.findIndex((t, k) => t === time && data.instrument[k] === instrument);
  for (const s of [0, 1, 100, w.samples - 1]) {
    for (let k = 0; k < 5; k++) {
      const row = rowOf(w.instrument[s]!, w.time[s]! - (4 - k) * OPTIONS.sampleMs);
      assert.ok(row >= 0);
      assert.equal(w.x[(s * 5 + k) * 2], Math.fround(value(data, row, 'ofi')));
      assert.equal(w.x[(s * 5 + k) * 2 + 1], Math.fround(value(data, row, 'imbalance_l1')));
    }
    const last = rowOf(w.instrument[s]!, w.time[s]!);
    assert.equal(w.regime[s], data.regime[last]);
    assert.ok(Object.is(w.forwardReturn[s], data.forwardReturn[last]));
  }
  // A missing sample breaks the run: the windows that would hold it are gone, the other instrument's are not.
  const gap = withoutRow(data, 600);
  assert.equal(windows(gap, names, 5).samples, w.samples - 5);
});

/** The dataset with one row taken out, as if that instrument had not been warm then. */
function withoutRow(d: Dataset, row: number): Dataset {
  const drop = <T extends Float64Array | Int32Array | Uint8Array>(a: T, per = 1): T => {
    const out = a.slice(0, a.length - per) as T;
    out.set(a.subarray((row + 1) * per), row * per);
    return out;
  };
  return {
    ...d,
    rows: d.rows - 1,
    x: drop(d.x, width),
    instrument: drop(d.instrument),
    time: drop(d.time),
    regime: d.regime && drop(d.regime),
    forwardReturn: drop(d.forwardReturn),
  };
}
