/**
 * Drift's arithmetic (src/models/drift.ts): quantile references, PSI, the
 * sliding window of bins per instrument, and the live error scored once a
 * prediction's horizon has passed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { binOf, LiveError, psi, referenceOf, StabilityWindow } from '../../src/models/drift.js';
import { dieboldMariano, normalQuantile } from '../../src/models/metrics.js';

const uniform = (n: number, from = 0, to = 1) => Array.from({ length: n }, (_, i) => from + ((to - from) * (i + 0.5)) / n);

test('a reference cuts deciles, its shares are what binOf finds, and repeated values merge bins', () => {
  const r = referenceOf(uniform(1000));
  assert.equal(r.edges.length, 9);
  assert.ok(r.edges.every((e, i) => i === 0 || e > r.edges[i - 1]!));
  assert.deepEqual(r.shares.map((s) => s.toFixed(3)), new Array(10).fill('0.100'));
  assert.equal(binOf(r.edges, -5), 0);
  assert.equal(binOf(r.edges, 5), 9);
  assert.equal(binOf(r.edges, r.edges[3]!), 4, 'an edge belongs to the bin above it');
  // A tick-grid spread: three values, so three bins.
  const spread = referenceOf([...new Array(700).fill(1), ...new Array(200).fill(2), ...new Array(100).fill(3), NaN]);
  assert.deepEqual(spread, { edges: [2, 3], shares: [0.7, 0.2, 0.1] });
  assert.throws(() => referenceOf([NaN]), /at least one finite value/);
});

test('PSI is 0 for the reference itself and grows as the distribution moves', () => {
  const r = referenceOf(uniform(1000));
  const counts = (values: number[]) => {
    const c = new Array<number>(r.shares.length).fill(0);
    for (const v of values) c[binOf(r.edges, v)]!++;
    return c;
  };
  assert.ok(Math.abs(psi(r, counts(uniform(500)), 500)) < 1e-3);
  const small = psi(r, counts(uniform(500, 0.05, 1.05)), 500);
  const large = psi(r, counts(uniform(500, 0.5, 1.5)), 500);
  assert.ok(small > 0.01 && small < 0.1, `a small shift: ${small}`);
  assert.ok(large > 1, `half the mass out of range: ${large}`);
  assert.ok(Number.isNaN(psi(r, counts([]), 0)));
});

test('the stability window forgets what slid out of it, per instrument and variable', () => {
  const r = referenceOf(uniform(1000));
  const w = new StabilityWindow([[r, r], [r, r]], 100);
  for (const v of uniform(100)) w.observe(0, [v, NaN]);
  assert.ok(w.psi(0, 0) < 0.01);
  for (const v of uniform(100, 2, 3)) w.observe(0, [v, NaN]);
  assert.equal(w.count(0, 0), 100);
  assert.ok(w.psi(0, 0) > 5, 'the window holds only the shifted values now');
  assert.ok(Number.isNaN(w.psi(1, 0)), 'another instrument saw nothing');
  assert.ok(Number.isNaN(w.psi(0, 1)), 'another variable saw nothing');
  w.observe(1, [NaN, NaN]);
  assert.equal(w.count(1, 1), 0, 'a NaN is not an observation');
  // A NaN takes its row's slot: 60 finite rows then 60 NaN rows leave 40 in a window of 100.
  for (const v of uniform(60)) w.observe(1, [v, v]);
  for (let k = 0; k < 60; k++) w.observe(1, [NaN, 0.5]);
  assert.equal(w.count(1, 0), 40);
  assert.equal(w.count(1, 1), 100);
});

test('a prediction is scored against the return realised over its horizon, once', () => {
  const e = new LiveError(2, 10_000, 1_000, 100, 1, 20);
  const mids = (a: number, b: number) => Float64Array.of(a, b);
  // t=0: instrument 0 predicts +10 bps, instrument 1 -5 bps.
  e.observe(0, mids(100, 50), Float64Array.of(10, -5));
  for (let t = 1_000; t < 10_000; t += 1_000) e.observe(t, mids(100, 50), Float64Array.of(NaN, NaN));
  assert.equal(e.stats().n, 0, 'nothing due before the horizon');
  // t=10 s: instrument 0's mid rose 0.2 % (about +20 bps), instrument 1's is unchanged.
  e.observe(10_000, mids(100.2, 50), Float64Array.of(NaN, NaN));
  const s = e.stats();
  assert.equal(s.n, 2);
  const up = Math.log(100.2 / 100) * 10_000;
  assert.ok(Math.abs(s.rmse - Math.sqrt(((10 - up) ** 2 + 25) / 2)) < 1e-9);
  assert.ok(Math.abs(s.zeroRmse - Math.sqrt((up * up) / 2)) < 1e-9);
  assert.equal(s.hitRate, 1, 'instrument 0 called the rise; a flat outcome is no call');
  e.observe(20_000, mids(100, 50), Float64Array.of(NaN, NaN));
  assert.equal(e.stats().n, 2, 'scored once');
});

test('a prediction whose instrument has no mid when it falls due is dropped; long horizons keep every k-th frame', () => {
  const e = new LiveError(1, 2_000, 1_000, 100, 1, 10);
  e.observe(0, [100], [1]);
  e.observe(1_000, [100], [NaN]);
  e.observe(2_000, [NaN], [NaN]);
  e.observe(3_000, [101], [NaN]);
  assert.equal(e.stats().n, 0);

  const sparse = new LiveError(1, 5_000, 1_000, 100, 3, 2);
  for (let t = 0; t <= 20_000; t += 1_000) sparse.observe(t, [100 + t / 1_000], [1]);
  // Kept at 0, 3, 6, 9, ... s (every third frame), at most 2 waiting: 0 and 3 s resolve at 5 and 8 s, then 6, 9, 12 and 15 s.
  assert.equal(sparse.stats().n, 6);
});

test('Diebold-Mariano: a forecast that calls the move beats zero, one that calls it backwards loses, with overlap allowed for', () => {
  assert.ok(Math.abs(normalQuantile(0.99) - 2.3263478740408408) < 1e-8);
  assert.ok(Math.abs(normalQuantile(0.5)) < 1e-12);
  assert.ok(Math.abs(normalQuantile(0.01) + 2.3263478740408408) < 1e-8);
  // A seeded walk of returns over a 5-frame horizon: the good forecast has half of each move, the bad one the opposite.
  let seed = 7;
  const noise = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32 - 0.5) * 2;
  const good = new LiveError(1, 5_000, 1_000, 2_000, 1, 10);
  const bad = new LiveError(1, 5_000, 1_000, 2_000, 1, 10);
  const mids: number[] = [100];
  for (let t = 1; t < 1_200; t++) mids.push(mids[t - 1]! * Math.exp(noise() / 1_000));
  for (let t = 0; t < 1_200; t++) {
    const ahead = t + 5 < mids.length ? Math.log(mids[t + 5]! / mids[t]!) * 10_000 : 0;
    good.observe(t * 1_000, [mids[t]!], [ahead / 2]);
    bad.observe(t * 1_000, [mids[t]!], [-ahead]);
  }
  const g = good.stats();
  const b = bad.stats();
  assert.ok(g.rmse < g.zeroRmse && g.dmVsZero < -2.33, `good: ${JSON.stringify(g)}`);
  assert.ok(b.rmse > b.zeroRmse && b.dmVsZero > 2.33, `bad: ${JSON.stringify(b)}`);
  assert.ok(Number.isNaN(dieboldMariano([1], 1, 0)) && Number.isNaN(dieboldMariano([1, 1, 1], 3, 1)), 'too few periods or no variance: no verdict');
});
