/**
 * The health score table case by case, the window that lets a feature
 * recover, and the conditions that stop trading.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CRITICAL, DEFAULT_THRESHOLDS, DISABLED, FeatureHealth, HEALTHY, scoreOf, STATUSES, statusOf, WARNING } from '../../src/market/feature-health.js';

test('the score table, case by case', () => {
  const cases: [number, number, number, number][] = [
    // zero rate, consecutive zeros, NaN/Inf rate -> score
    [0, 0, 0, 100],
    [0.3, 0, 0, 100], // "> 30 %": 30 % exactly is not penalised
    [0.31, 0, 0, 75],
    [0.5, 0, 0, 75],
    [0.51, 0, 0, 50],
    [0, 10, 0, 100], // "more than 10"
    [0, 11, 0, 70],
    [0, 0, 0.01, 100],
    [0, 0, 0.011, 80],
    [0.31, 11, 0, 45],
    [0.51, 11, 0, 20],
    [0.51, 11, 0.5, 0],
    [0.31, 11, 0.02, 25],
  ];
  for (const [zeroRate, zeros, nanRate, score] of cases) assert.equal(scoreOf(zeroRate, zeros, nanRate), score, JSON.stringify({ zeroRate, zeros, nanRate }));
  const status = (score: number) => STATUSES[statusOf(score)];
  assert.deepEqual([100, 80, 79, 50, 49, 1, 0].map(status), ['HEALTHY', 'HEALTHY', 'WARNING', 'WARNING', 'CRITICAL', 'CRITICAL', 'DISABLED']);
});

const SCHEMA = { name: 'test', version: 1, features: ['a', 'b', 'c'] };

function setup(advisory: string[] = [], window = 20) {
  const health = new FeatureHealth(['SPY', 'QQQ'], SCHEMA, { thresholds: { ...DEFAULT_THRESHOLDS, window }, advisory, maxDataAgeMs: 1000 });
  const values = new Float64Array(6).fill(1);
  const warm = new Uint8Array([1, 1]);
  let now = 0;
  const emit = (times: number, set: (v: Float64Array) => void = () => {}) => {
    for (let n = 0; n < times; n++) {
      values.fill(1);
      set(values);
      health.observe(values, warm, (now += 100));
    }
  };
  return { health, values, warm, emit, keys: () => [...health.problems.keys()].sort() };
}

test('a feature that keeps reading zero goes WARNING, CRITICAL, stops trading, and recovers once the zeros leave the window', () => {
  const { health, emit, keys } = setup();
  emit(20);
  assert.equal(health.status[0], HEALTHY);
  emit(7, (v) => (v[0] = 0)); // 7 of 20 zero: 35 %
  assert.equal(health.scores[0], 75);
  assert.equal(health.status[0], WARNING);
  assert.deepEqual(keys(), []);
  emit(4, (v) => (v[0] = 0)); // 11 of 20 zero, 11 in a row
  assert.equal(health.scores[0], 20);
  assert.equal(health.status[0], CRITICAL);
  assert.deepEqual(keys(), ['feature SPY a']);
  assert.match(health.problems.get('feature SPY a')!, /SPY a is CRITICAL \(score 20: zero rate 55 %, 11 consecutive zeros/);
  assert.equal(health.status[3], HEALTHY, "QQQ's a is its own feature");
  emit(1); // the run of zeros ends; the rate stays
  assert.equal(health.scores[0], 50);
  emit(20);
  assert.equal(health.scores[0], 100, 'the zeros left the window');
  assert.deepEqual(keys(), []);
});

test('a NaN in a model input stops trading at once, whatever the score', () => {
  const { health, emit, keys } = setup();
  emit(5);
  emit(1, (v) => (v[4] = NaN));
  assert.deepEqual(keys(), ['nan QQQ b']);
  assert.equal(health.status[4], HEALTHY, 'one NaN in the window is a score of 80');
  assert.equal(health.lastBadAt[4], 600);
  emit(1, (v) => (v[4] = Infinity));
  assert.deepEqual(keys(), ['nan QQQ b']);
  emit(1);
  assert.deepEqual(keys(), [], 'finite again: the value condition clears; the rate remains in the score');
  assert.equal(health.status[4], HEALTHY);
  emit(10, (v) => (v[4] = NaN));
  assert.equal(health.scores[4], 80);
  emit(11, (v) => (v[4] = 0));
  assert.equal(health.status[4], DISABLED, 'zeros at 55 %, a run of 11, NaNs at 45 %: 100 - 50 - 30 - 20');
});

test('advisory features warn and are scored, but never stop trading', () => {
  const { health, emit, keys } = setup(['b']);
  emit(20, (v) => ((v[1] = 0), (v[4] = NaN)));
  assert.equal(health.status[1], CRITICAL);
  assert.deepEqual(keys(), []);
  assert.throws(() => setup(['nope']), /advisory feature 'nope' is not in the feature schema \(a, b, c\)/);
});

test('cold instruments are not judged on their vectors', () => {
  const { health, warm, emit, keys } = setup();
  warm[1] = 0;
  emit(20, (v) => v.fill(NaN, 3));
  assert.deepEqual(keys(), []);
  assert.equal(health.status[3], -1);
  assert.equal(health.qualityPct(), 100);
});

test('the sweep: data older than the limit and a silent feed stop trading until data flows again', () => {
  const { health, keys } = setup();
  const lastDataAt = new Float64Array([NaN, NaN]);
  health.sweep(lastDataAt, 0, 900);
  assert.deepEqual(keys(), []);
  health.sweep(lastDataAt, 0, 1100);
  assert.deepEqual(keys(), ['stale QQQ', 'stale SPY'], 'no data at all since the start counts as old');
  assert.equal(health.problems.get('stale SPY'), 'SPY market data is 1.1 s old (limit 1.0 s)');
  lastDataAt[0] = 1100;
  lastDataAt[1] = 1100;
  health.sweep(lastDataAt, 0, 1150);
  assert.deepEqual(keys(), []);
  health.feedSilent('SPY', 1200);
  assert.deepEqual(keys(), ['silent SPY']);
  health.sweep(lastDataAt, 0, 1300);
  assert.deepEqual(keys(), ['silent SPY'], 'old data does not end the silence');
  lastDataAt[0] = 1350;
  health.sweep(lastDataAt, 0, 1400);
  assert.deepEqual(keys(), []);
});

test('rates are over the whole window: the first zero in a fresh window is 5 %, not 100 %', () => {
  const { health, emit } = setup();
  emit(1, (v) => (v[0] = 0));
  assert.equal(health.scores[0], 100);
  assert.match(health.explain(0), /zero rate 5 %, 1 consecutive zeros/);
});

test('an event-loop stall longer than the limit is a condition: data read from the backlog after it is not fresh', () => {
  const { health, values, warm, keys } = setup();
  const lastDataAt = new Float64Array([NaN, NaN]);
  // A healthy loop: a sweep every 100 ms, fresh data every time.
  for (let now = 100; now <= 1000; now += 100) {
    lastDataAt.fill(now);
    health.sweep(lastDataAt, 0, now);
  }
  assert.deepEqual(keys(), []);
  // The loop stands still 13.2 s; what TWS sent meanwhile is read at once, stamped with the time it was read.
  lastDataAt.fill(14_200);
  health.observe(values, warm, 14_200);
  assert.deepEqual(keys(), ['stall'], 'the first frame after the stall names it, before the sweep comes round');
  assert.equal(health.problems.get('stall'), 'event loop stalled 13.2 s (limit 1.0 s): data read right after it may be that old, so none counts as fresh until 1.0 s after it ended');
  // Held for the limit after the stall, however fresh the data looks.
  for (let now = 14_300; now <= 15_200; now += 100) {
    lastDataAt.fill(now);
    health.sweep(lastDataAt, 0, now);
    assert.deepEqual(keys(), ['stall'], `at ${now}`);
  }
  lastDataAt.fill(15_300);
  health.sweep(lastDataAt, 0, 15_300);
  assert.deepEqual(keys(), [], 'data kept coming after the stall: it is fresh now');
});

test('after a stall, data only from the backlog goes from the stall straight to stale; a stall within the limit is no condition', () => {
  const { health, keys } = setup();
  const lastDataAt = new Float64Array([0, 0]);
  health.sweep(lastDataAt, 0, 0);
  // Found by the sweep this time: the backlog read just before it, then nothing.
  lastDataAt.fill(6_000);
  health.sweep(lastDataAt, 0, 6_000);
  assert.match(health.problems.get('stall')!, /^event loop stalled 6\.0 s \(limit 1\.0 s\)/);
  health.sweep(lastDataAt, 0, 7_000);
  assert.deepEqual(keys(), ['stall']);
  health.sweep(lastDataAt, 0, 7_100);
  assert.deepEqual(keys(), ['stale QQQ', 'stale SPY'], 'no gap between the two conditions');

  lastDataAt.fill(8_000);
  health.sweep(lastDataAt, 0, 8_000);
  assert.deepEqual(keys(), [], 'a 0.9 s pause: data read after it is at most that old, within the limit');
});

test('a silent feed says what happened, in words that stay true: how long it said nothing, and when it was asked for again', () => {
  const { health, keys } = setup();
  const lastDataAt = new Float64Array([1100, 1100]);
  health.sweep(lastDataAt, 0, 1150);
  health.feedSilent('SPY', 1200, { kind: 'depth', silentForMs: 12_000, wallAt: Date.UTC(2026, 0, 5, 14, 31, 2) });
  const reason = 'SPY depth feed sent nothing for 12.0 s while other feeds ticked; requested again at 14:31:02 UTC, no data from it since';
  assert.equal(health.problems.get('silent SPY'), reason);
  lastDataAt[1] = 1250;
  health.sweep(lastDataAt, 0, 1300);
  assert.deepEqual(keys(), ['silent SPY']);
  assert.equal(health.problems.get('silent SPY'), reason, 'not "went silent 0.0 s ago", nor any age counted from whenever the list was last rebuilt');
});
