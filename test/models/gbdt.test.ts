import assert from 'node:assert/strict';
import { test } from 'node:test';
import ort from 'onnxruntime-node';
import { gbdtToOnnx, predictGbdt, trainGbdt, type GbdtModel, type GbdtOptions } from '../../src/models/gbdt.js';
import { regressionMetrics } from '../../src/models/metrics.js';
import { Random } from '../../src/random.js';

const COLS = 4;
const OPTIONS: GbdtOptions = { trees: 30, maxDepth: 4, learningRate: 0.2, bins: 32, minLeafRows: 10, l2: 1, subsample: 0.8, seed: 7 };

/** y = step(x0) + 0.5·x1·x2 + noise; x3 is noise the trees should learn to ignore. */
function synthetic(rows: number, seed: number): { X: Float32Array; y: Float64Array } {
  const random = new Random(seed);
  const X = new Float32Array(rows * COLS);
  const y = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    for (let f = 0; f < COLS; f++) X[r * COLS + f] = random.next() * 2 - 1;
    const x = X.subarray(r * COLS, r * COLS + COLS);
    y[r] = (x[0]! > 0 ? 1 : -1) + 0.5 * x[1]! * x[2]! + 0.1 * random.normal();
  }
  return { X, y };
}

async function runOnnx(model: GbdtModel, X: Float32Array, rows: number): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(gbdtToOnnx(model));
  const outputs = await session.run({ input: new ort.Tensor('float32', X, [rows, model.features]) });
  const prediction = outputs['prediction']!;
  assert.deepEqual(prediction.dims, [rows, 1]);
  return prediction.data as Float32Array;
}

test('the ONNX TreeEnsembleRegressor agrees with predictGbdt, also on inputs equal to thresholds', async () => {
  const train = synthetic(2000, 1);
  // The JSON form is the model: export what survives a round trip.
  const model = JSON.parse(JSON.stringify(trainGbdt(train.X, train.y, 2000, COLS, OPTIONS))) as GbdtModel;
  assert.equal(model.trees.length, 30);
  assert.ok(model.trees.some((tree) => depth(tree.left, tree.right, 0) >= 3));

  // Random rows, then rows whose every value is a threshold the trees split that feature at.
  const thresholds: number[][] = Array.from({ length: COLS }, () => []);
  for (const tree of model.trees) tree.feature.forEach((f, n) => f >= 0 && thresholds[f]!.push(tree.threshold[n]!));
  const random = new Random(99);
  const rows = 600;
  const X = new Float32Array(rows * COLS);
  for (let r = 0; r < rows; r++) {
    for (let f = 0; f < COLS; f++) {
      const atThreshold = thresholds[f]![Math.floor(random.next() * thresholds[f]!.length)];
      X[r * COLS + f] = r >= rows / 2 && atThreshold !== undefined ? atThreshold : random.next() * 2.4 - 1.2;
    }
  }

  const expected = predictGbdt(model, X, rows);
  const actual = await runOnnx(model, X, rows);
  for (let r = 0; r < rows; r++) assert.ok(Math.abs(actual[r]! - expected[r]!) < 1e-5, `row ${r}: onnx ${actual[r]} vs ts ${expected[r]}`);
});

test('x equal to the threshold goes left (<=), and NaN goes right, in ONNX and in TypeScript', async () => {
  const threshold = Math.fround(0.3);
  const model: GbdtModel = {
    format: 'keel.gbdt',
    version: 1,
    features: 1,
    baseValue: 10,
    trees: [{ feature: [0, -1, -1], threshold: [threshold, 0, 0], left: [1, -1, -1], right: [2, -1, -1], value: [0, 1, 2] }],
  };
  const above = new Float32Array([threshold]);
  above[0] = above[0]! + 2 ** -25; // the next float32 above 0.3
  const X = new Float32Array([threshold, above[0]!, NaN]);
  assert.deepEqual([...predictGbdt(model, X, 3)], [11, 12, 12]);
  assert.deepEqual([...(await runOnnx(model, X, 3))], [11, 12, 12]);
});

test('the GBDT learns: held-out RMSE well below the mean baseline', () => {
  const train = synthetic(4000, 2);
  const heldOut = synthetic(1000, 3);
  const losses: number[] = [];
  const model = trainGbdt(train.X, train.y, 4000, COLS, { ...OPTIONS, onProgress: (_tree, loss) => losses.push(loss) });
  assert.equal(losses.length, 30);
  assert.ok(losses[29]! < losses[0]!);

  const mean = train.y.reduce((a, b) => a + b, 0) / train.y.length;
  const baseline = regressionMetrics(new Float64Array(1000).fill(mean), heldOut.y);
  const scores = regressionMetrics(predictGbdt(model, heldOut.X, 1000), heldOut.y);
  assert.ok(scores.rmse < 0.7 * baseline.rmse, `rmse ${scores.rmse} vs baseline ${baseline.rmse}`);
  assert.ok(scores.r2 > 0.5 && scores.directionalAccuracy > 0.9);
});

test('training is deterministic: the same seed gives identical JSON, another seed another model', () => {
  const train = synthetic(2000, 4);
  const first = JSON.stringify(trainGbdt(train.X, train.y, 2000, COLS, OPTIONS));
  assert.equal(JSON.stringify(trainGbdt(train.X, train.y, 2000, COLS, OPTIONS)), first);
  assert.notEqual(JSON.stringify(trainGbdt(train.X, train.y, 2000, COLS, { ...OPTIONS, seed: 8 })), first);
});

test('regressionMetrics: perfect, hand-computed and opposite predictions', () => {
  const y = [1, 2, 3, 4];
  assert.deepEqual(regressionMetrics(y, y), { rmse: 0, mae: 0, r2: 1, directionalAccuracy: 1, correlation: 1 });

  // Errors 0, 0, 0, 1: SSres 1, SStot 5.
  const near = regressionMetrics([1, 2, 3, 5], y);
  assert.equal(near.rmse, 0.5);
  assert.equal(near.mae, 0.25);
  assert.ok(Math.abs(near.r2 - 0.8) < 1e-12);

  const opposite = regressionMetrics([-1, 0, 1], [1, 0, -1]);
  assert.equal(opposite.directionalAccuracy, 0);
  assert.ok(Math.abs(opposite.correlation + 1) < 1e-12);
});

function depth(left: readonly number[], right: readonly number[], node: number): number {
  return left[node] === -1 ? 0 : 1 + Math.max(depth(left, right, left[node]!), depth(left, right, right[node]!));
}
