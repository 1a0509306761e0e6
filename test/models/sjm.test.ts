import assert from 'node:assert/strict';
import { test } from 'node:test';
import { candidateStep, simplexGrid } from '../../src/models/sjm-continuous.js';
import {
  fitJumpModel,
  JumpModelError,
  OnlineJumpModel,
  parseJumpModel,
  predict,
  predictStates,
  stateLosses,
  stateStep,
  type JumpModelFile,
} from '../../src/models/sjm.js';
import { Random } from '../../src/random.js';

const FEATURES = ['abs_return', 'vol_5'];

/**
 * Daily-like returns from two regimes, calm (1 % deviation) and volatile
 * (3 %), in persistent segments of 100 to 299 rows starting calm. Features:
 * |return| and the trailing 5-row realized volatility.
 */
function plantedSeries(seed: number, rows: number): { regime: Int32Array; data: Float64Array } {
  const random = new Random(seed);
  const regime = new Int32Array(rows);
  const returns = new Float64Array(rows);
  let state = 1;
  let left = 0;
  for (let t = 0; t < rows; t++) {
    if (left === 0) {
      state = 1 - state;
      left = 100 + Math.floor(random.next() * 200);
    }
    left--;
    regime[t] = state;
    returns[t] = (state === 0 ? 0.01 : 0.03) * random.normal();
  }
  const data = new Float64Array(rows * 2);
  for (let t = 0; t < rows; t++) {
    const window = returns.subarray(Math.max(0, t - 4), t + 1);
    data[t * 2] = Math.abs(returns[t]!);
    data[t * 2 + 1] = Math.sqrt(window.reduce((sum, r) => sum + r * r, 0) / window.length);
  }
  return { regime, data };
}

function agreement(a: Int32Array, b: Int32Array): number {
  let same = 0;
  for (let t = 0; t < a.length; t++) if (a[t] === b[t]) same++;
  return same / a.length;
}

function argmin(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! < values[best]!) best = i;
  return best;
}

/** Standardised, clipped rows as the model sees them. */
function standardised(model: JumpModelFile, data: Float64Array): Float64Array {
  const F = model.features.length;
  return data.map((x, i) => Math.max(-model.clip, Math.min(model.clip, (x - model.mean[i % F]!) / model.std[i % F]!)));
}

const ROWS = 3000;
const planted = plantedSeries(7, ROWS);

test('a planted calm/volatile series is recovered with calm as state 0', () => {
  const fit = fitJumpModel(planted.data, ROWS, FEATURES, { k: 2, lambda: 20 });
  assert.ok(agreement(fit.states, planted.regime) >= 0.95, `agreement ${agreement(fit.states, planted.regime)}`);
  assert.ok(fit.model.centroids[0]![0]! < fit.model.centroids[1]![0]!, 'state 0 has the lower abs_return centroid');
  assert.match(fit.model.stateOrder, /ascending centroid of 'abs_return'/);
  assert.deepEqual(predictStates(fit.model, planted.data, ROWS), fit.states);
  assert.equal(fit.model.training.rows, ROWS);
  assert.equal(fit.model.training.objective, fit.objective);

  // Sorting by the other feature gives the same numbering here: both rank calm first.
  const byVol = fitJumpModel(planted.data, ROWS, FEATURES, { k: 2, lambda: 20, sortBy: 'vol_5' });
  assert.deepEqual(byVol.states, fit.states);
});

test('the state step equals brute force over all K^T paths', () => {
  const T = 7;
  const K = 3;
  const random = new Random(3);
  for (let trial = 0; trial < 5; trial++) {
    const loss = Float64Array.from({ length: T * K }, () => random.next() * 2);
    for (const lambda of [0, 0.3, 1, 5]) {
      const cost = (path: ArrayLike<number>) => {
        let total = 0;
        for (let t = 0; t < T; t++) total += loss[t * K + path[t]!]! + (t > 0 && path[t] !== path[t - 1] ? lambda : 0);
        return total;
      };
      let best = Infinity;
      let bestPath: number[] = [];
      for (let code = 0; code < K ** T; code++) {
        const path = Array.from({ length: T }, (_, t) => Math.floor(code / K ** t) % K);
        if (cost(path) < best) [best, bestPath] = [cost(path), path];
      }
      const path = stateStep(loss, T, K, lambda);
      assert.ok(Math.abs(cost(path) - best) < 1e-12, `trial ${trial}, lambda ${lambda}: ${cost(path)} vs ${best}`);
      assert.deepEqual(Array.from(path), bestPath, `trial ${trial}, lambda ${lambda}`);
    }
  }
});

test('the continuous state step equals brute force over all candidate paths', () => {
  const T = 5;
  const grid = simplexGrid(3, 2); // 6 candidates: the corners and the midpoints of the edges
  assert.equal(grid.size, 6);
  const random = new Random(4);
  const loss = Float64Array.from({ length: T * 3 }, () => random.next() * 2);
  for (const lambda of [0, 0.5, 2]) {
    const cost = (path: ArrayLike<number>) => {
      let total = 0;
      for (let t = 0; t < T; t++) {
        const p = grid.probabilities.subarray(path[t]! * 3, path[t]! * 3 + 3);
        total += p[0]! * loss[t * 3]! + p[1]! * loss[t * 3 + 1]! + p[2]! * loss[t * 3 + 2]!;
        if (t > 0) {
          const q = grid.probabilities.subarray(path[t - 1]! * 3, path[t - 1]! * 3 + 3);
          const moved = (Math.abs(p[0]! - q[0]!) + Math.abs(p[1]! - q[1]!) + Math.abs(p[2]! - q[2]!)) / 2;
          total += lambda * moved * moved;
        }
      }
      return total;
    };
    let best = Infinity;
    for (let code = 0; code < grid.size ** T; code++) {
      best = Math.min(best, cost(Array.from({ length: T }, (_, t) => Math.floor(code / grid.size ** t) % grid.size)));
    }
    assert.ok(Math.abs(cost(candidateStep(grid, loss, T, lambda)) - best) < 1e-12, `lambda ${lambda}`);
  }
});

test('online states equal the argmin of a plain offline forward pass, row by row, per stream', () => {
  const { model } = fitJumpModel(planted.data, ROWS, FEATURES, { k: 3, lambda: 5 });
  const { k, lambda } = model;
  const loss = stateLosses(model, planted.data, ROWS);
  const other = plantedSeries(8, ROWS).data;
  const online = new OnlineJumpModel(model, 2);
  assert.equal(online.state(0), -1);
  assert.deepEqual(Array.from(online.probabilities(0)), [1 / 3, 1 / 3, 1 / 3]);

  let V = new Float64Array(k);
  for (let t = 0; t < ROWS; t++) {
    // The filtered forward values, not shifted: V[t,j] = L[t,j] + min(V[t-1,j], min V[t-1] + λ).
    const least = t === 0 ? 0 : Math.min(...V);
    V = V.map((v, j) => loss[t * k + j]! + (t === 0 ? 0 : Math.min(v, least + lambda)));
    online.update(1, other, t * 2); // another stream in between must not disturb stream 0
    const state = online.update(0, planted.data, t * 2);
    assert.equal(state, argmin(V), `row ${t}`);
    assert.equal(online.state(0), state);
    const p = online.probabilities(0);
    assert.ok(Math.abs(p.reduce((a, b) => a + b, 0) - 1) < 1e-12, `row ${t}: probabilities sum to 1`);
    assert.equal(argmin(p.map((x) => -x)), state, `row ${t}: the state is the most probable`);
  }

  // A bad frame is skipped: −1, and the regime and its probabilities stay as they were.
  const before = Array.from(online.probabilities(0));
  assert.equal(online.update(0, [NaN, 0.01]), -1);
  assert.equal(online.state(0), argmin(V));
  assert.deepEqual(Array.from(online.probabilities(0)), before);

  online.reset(0);
  assert.equal(online.state(0), -1);
  assert.equal(online.update(0, planted.data, 0), argmin(loss.subarray(0, k)));
});

test('lambda = 0 gives k-means: each row in its nearest centroid, each centroid the mean of its rows', () => {
  const k = 3;
  const fit = fitJumpModel(planted.data, ROWS, FEATURES, { k, lambda: 0 });
  const loss = stateLosses(fit.model, planted.data, ROWS);
  for (let t = 0; t < ROWS; t++) assert.equal(fit.states[t], argmin(loss.subarray(t * k, (t + 1) * k)), `row ${t}`);

  const z = standardised(fit.model, planted.data);
  for (let j = 0; j < k; j++) {
    const rows = [...fit.states.keys()].filter((t) => fit.states[t] === j);
    assert.ok(rows.length > 0, `state ${j} has rows`);
    for (let f = 0; f < 2; f++) {
      const mean = rows.reduce((sum, t) => sum + z[t * 2 + f]!, 0) / rows.length;
      assert.ok(Math.abs(fit.model.centroids[j]![f]! - mean) < 1e-9, `state ${j}, feature ${f}`);
    }
  }
});

test('continuous model: planted series recovered, probabilities sum to 1, online equals the offline forward pass', () => {
  const fit = fitJumpModel(planted.data, ROWS, FEATURES, { k: 2, lambda: 50, continuous: true });
  const { model } = fit;
  assert.equal(model.gridStep, 0.05);
  assert.ok(agreement(fit.states, planted.regime) >= 0.95, `agreement ${agreement(fit.states, planted.regime)}`);
  const { states, probabilities } = predict(model, planted.data, ROWS);
  assert.deepEqual(states, fit.states);
  for (let t = 0; t < ROWS; t++) assert.ok(Math.abs(probabilities[t * 2]! + probabilities[t * 2 + 1]! - 1) < 1e-12, `row ${t}`);
  assert.ok(probabilities.some((p) => p > 0 && p < 1), 'some rows are uncertain');

  // A plain forward pass over the 21 candidates p = (i/20, 1 − i/20).
  const candidates = Array.from({ length: 21 }, (_, i) => [1 - i / 20, i / 20] as const);
  const loss = stateLosses(model, planted.data, ROWS);
  const online = new OnlineJumpModel(model, 1);
  let V = candidates.map(() => 0);
  for (let t = 0; t < ROWS; t++) {
    const previous = V;
    V = candidates.map((p) => {
      const rowLoss = p[0] * loss[t * 2]! + p[1] * loss[t * 2 + 1]!;
      if (t === 0) return rowLoss;
      return rowLoss + Math.min(...candidates.map((q, d) => previous[d]! + model.lambda * ((Math.abs(p[0] - q[0]) + Math.abs(p[1] - q[1])) / 2) ** 2));
    });
    const best = candidates[argmin(V)]!;
    const state = online.update(0, planted.data, t * 2);
    const p = online.probabilities(0);
    assert.ok(Math.abs(p[0]! - best[0]) < 1e-12 && Math.abs(p[1]! - best[1]) < 1e-12, `row ${t}: [${p.join(', ')}] vs [${best.join(', ')}]`);
    assert.equal(state, best[1] > best[0] ? 1 : 0, `row ${t}`);
  }
});

test('fits with the same seed are identical, bit for bit', () => {
  const a = fitJumpModel(planted.data, ROWS, FEATURES, { k: 3, lambda: 10, seed: 42, nInit: 4 });
  const b = fitJumpModel(planted.data, ROWS, FEATURES, { k: 3, lambda: 10, seed: 42, nInit: 4 });
  assert.deepEqual(a.model, b.model);
  assert.deepEqual(a.states, b.states);
  assert.equal(a.model.training.seed, 42);
});

test('a model file round-trips through JSON, and a bad key is named', () => {
  const { model } = fitJumpModel(planted.data, ROWS, FEATURES, { k: 2, lambda: 20 });
  const json = JSON.parse(JSON.stringify(model)) as Record<string, unknown>;
  assert.deepEqual(parseJumpModel(json, 'calm.json'), model);

  const refused = (change: Record<string, unknown>, message: RegExp) =>
    assert.throws(() => parseJumpModel({ ...json, ...change }, 'calm.json'), (err: Error) => err instanceof JumpModelError && message.test(err.message));
  refused({ format: 'keel.hmm' }, /^calm\.json: 'format' must be 'keel\.sjm', got "keel\.hmm"$/);
  refused({ k: 1 }, /^calm\.json: 'k' must be a whole number of at least 2, got 1$/);
  refused({ lambda: undefined }, /^calm\.json: 'lambda' must be a number of at least 0, got nothing$/);
  refused({ std: [1, 0] }, /^calm\.json: 'std\[1\]' must be a number above 0, got 0$/);
  refused({ mean: [1] }, /^calm\.json: 'mean' must be a list of 2 numbers, one per feature/);
  refused({ centroids: [[0, 0], [1]] }, /^calm\.json: 'centroids\[1\]' must be a list of 2 numbers/);
  refused({ centroids: [[0, 0]] }, /^calm\.json: 'centroids' must be a list of 2 centroids/);
  refused({ continuous: true, gridStep: 0.3 }, /^calm\.json: 'gridStep' must be a step that divides 1 into whole steps/);
  refused({ training: { rows: 10, objective: 1, iterations: 2 } }, /^calm\.json: 'training\.seed' must be a whole number/);
  assert.throws(() => parseJumpModel([], 'calm.json'), /^JumpModelError: calm\.json: a jump model file is a JSON object, got \[\]$/);
});

test('bad data and options are refused with clear messages', () => {
  const data = planted.data.slice(0, 20);
  data[7 * 2 + 1] = NaN;
  assert.throws(() => fitJumpModel(data, 10, FEATURES, { k: 2, lambda: 1 }), /^JumpModelError: row 8 of 10, feature 'vol_5': NaN is not a finite number$/);
  assert.throws(() => fitJumpModel(planted.data.slice(0, 10), 5, FEATURES, { k: 3, lambda: 1 }), /fitting k = 3 states needs at least 6 rows \(2 per state\), got 5/);
  assert.throws(() => fitJumpModel(planted.data, ROWS, FEATURES, { k: 1, lambda: 1 }), /k must be a whole number of at least 2, got 1/);
  assert.throws(() => fitJumpModel(planted.data, ROWS, FEATURES, { k: 2, lambda: -1 }), /lambda must be a number of at least 0, got -1/);
  assert.throws(() => fitJumpModel(planted.data, ROWS, FEATURES, { k: 2, lambda: 1, sortBy: 'spread' }), /sortBy 'spread' is not one of the features/);
  const constant = new Float64Array(20).map((_, i) => (i % 2 === 0 ? i : 1));
  assert.throws(() => fitJumpModel(constant, 10, FEATURES, { k: 2, lambda: 1 }), /feature 'vol_5' is constant \(1\) over the 10 training rows/);
  assert.throws(() => fitJumpModel(planted.data, ROWS, FEATURES, { k: 4, lambda: 1, continuous: true, gridStep: 0.01 }), /gridStep must be coarser: k = 4 with step 0\.01 gives 176851 grid points/);
});
