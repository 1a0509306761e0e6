/**
 * The LSTM against onnxruntime's LSTM op, against itself step by step, its
 * gradients against finite differences, and on a toy task that needs memory.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import ort from 'onnxruntime-node';
import { lstmGradient, lstmStep, lstmToOnnx, predictLstm, trainLstm, type LstmModel } from '../../src/models/lstm.js';
import { Random } from '../../src/random.js';

/** Every weight uniform in ±1 (biases too, Rb included), so each gate block differs and matters. */
function randomModel(F: number, H: number, W: number, seed: number): LstmModel {
  const random = new Random(seed);
  const uniform = (n: number) => Array.from({ length: n }, () => Math.fround(2 * random.next() - 1));
  return {
    format: 'keel.lstm',
    version: 1,
    inputSize: F,
    hiddenSize: H,
    window: W,
    W: uniform(4 * H * F),
    R: uniform(4 * H * H),
    Wb: uniform(4 * H),
    Rb: uniform(4 * H),
    headW: uniform(H),
    headB: uniform(1)[0]!,
  };
}

function normals(n: number, seed: number): Float32Array {
  const random = new Random(seed);
  return Float32Array.from({ length: n }, () => random.normal());
}

async function runOnnx(model: LstmModel, X: Float32Array, N: number): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(lstmToOnnx(model));
  const result = await session.run({ input: new ort.Tensor('float32', X, [N, model.window, model.inputSize]) });
  const out = result['prediction']!;
  assert.deepEqual(out.dims, [N, 1]);
  return out.data as Float32Array;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let max = 0;
  for (let k = 0; k < a.length; k++) max = Math.max(max, Math.abs(a[k]! - b[k]!));
  return max;
}

/** Swaps two gate blocks in W, R and both biases: what reading the weights in a wrong gate order amounts to. */
function swapGates(model: LstmModel, a: number, b: number): LstmModel {
  const H = model.hiddenSize;
  const swap = (values: readonly number[], rowLength: number) => {
    const rows = Array.from({ length: 4 }, (_, g) => values.slice(g * H * rowLength, (g + 1) * H * rowLength));
    [rows[a], rows[b]] = [rows[b]!, rows[a]!];
    return rows.flat();
  };
  return { ...model, W: swap(model.W, model.inputSize), R: swap(model.R, H), Wb: swap(model.Wb, 1), Rb: swap(model.Rb, 1) };
}

test('the ONNX export gives what predictLstm gives (gate order i, o, f, c)', async () => {
  const [F, H, W, N] = [3, 6, 7, 9];
  const model = randomModel(F, H, W, 11);
  const X = normals(N * W * F, 12);
  const expected = predictLstm(model, X, N);
  const onnx = await runOnnx(model, X, N);
  assert.ok(maxAbsDiff(onnx, expected) < 1e-5, `max difference ${maxAbsDiff(onnx, expected)}`);

  // A wrong gate order would show: swapping any two blocks moves the predictions far beyond 1e-5.
  for (const [a, b] of [
    [0, 1],
    [1, 2],
    [0, 3],
  ] as const) {
    assert.ok(maxAbsDiff(predictLstm(swapGates(model, a, b), X, N), expected) > 1e-2, `swapping gate blocks ${a} and ${b}`);
  }

  // One row: the [1, N, H] -> [N, H] step must keep N when it is 1.
  const single = await runOnnx(model, X.subarray(0, W * F), 1);
  assert.ok(Math.abs(single[0]! - expected[0]!) < 1e-5);
});

test('the ONNX export of a trained model gives what predictLstm gives', async () => {
  const [F, H, W, N] = [2, 5, 6, 200];
  const X = normals(N * W * F, 21);
  const y = Float64Array.from({ length: N }, (_, s) => X[s * W * F]! - X[s * W * F + (W - 1) * F + 1]!);
  const model = trainLstm(X, y, N, { window: W, inputSize: F, hiddenSize: H, epochs: 3, batchSize: 16, learningRate: 0.01, seed: 5 });
  const expected = predictLstm(model, X, N);
  const onnx = await runOnnx(model, X, N);
  assert.ok(maxAbsDiff(onnx, expected) < 1e-5, `max difference ${maxAbsDiff(onnx, expected)}`);
});

test('lstmStep over the window gives what predictLstm gives', () => {
  const [F, H, W, N] = [4, 5, 8, 6];
  const model = randomModel(F, H, W, 31);
  const X = normals(N * W * F, 32);
  const expected = predictLstm(model, X, N);
  for (let s = 0; s < N; s++) {
    const h = new Float64Array(H);
    const c = new Float64Array(H);
    let out = NaN;
    for (let t = 0; t < W; t++) out = lstmStep(model, X.subarray((s * W + t) * F, (s * W + t + 1) * F), h, c);
    // The same arithmetic in the same order: equal to the last bit.
    assert.equal(out, expected[s]);
  }
});

test('the gradients agree with central finite differences', () => {
  const [F, H, W, N] = [2, 3, 4, 5];
  const model = randomModel(F, H, W, 41);
  const X = normals(N * W * F, 42);
  const y = Float64Array.from(normals(N, 43));
  const analytic = lstmGradient(model, X, y, N);

  const loss = (m: LstmModel) => {
    const pred = predictLstm(m, X, N);
    let sum = 0;
    for (let s = 0; s < N; s++) sum += (pred[s]! - y[s]!) ** 2;
    return sum / N;
  };
  assert.ok(Math.abs(analytic.loss - loss(model)) < 1e-12);

  const eps = 1e-6;
  const check = (name: string, grad: ArrayLike<number>, nudge: (k: number, by: number) => LstmModel) => {
    for (let k = 0; k < grad.length; k++) {
      const numeric = (loss(nudge(k, eps)) - loss(nudge(k, -eps))) / (2 * eps);
      assert.ok(Math.abs(numeric - grad[k]!) < 1e-7 * Math.max(1, Math.abs(numeric)), `${name}[${k}]: analytic ${grad[k]}, numeric ${numeric}`);
    }
  };
  // Each nudge is a new model: models are immutable data.
  check('W', analytic.W, (k, by) => ({ ...model, W: model.W.with(k, model.W[k]! + by) }));
  check('R', analytic.R, (k, by) => ({ ...model, R: model.R.with(k, model.R[k]! + by) }));
  check('Wb', analytic.bias, (k, by) => ({ ...model, Wb: model.Wb.with(k, model.Wb[k]! + by) }));
  check('Rb', analytic.bias, (k, by) => ({ ...model, Rb: model.Rb.with(k, model.Rb[k]! + by) }));
  check('headW', analytic.headW, (k, by) => ({ ...model, headW: model.headW.with(k, model.headW[k]! + by) }));
  check('headB', [analytic.headB], (_, by) => ({ ...model, headB: model.headB + by }));
});

test('learns a target that depends on an earlier step of the window', () => {
  const [F, H, W] = [2, 8, 8];
  const [train, held] = [3000, 1000];
  // y is feature 0 three steps before the last step; feature 1 is noise.
  const target = (X: Float32Array, s: number) => X[(s * W + W - 4) * F]!;
  const Xtrain = normals(train * W * F, 51);
  const ytrain = Float64Array.from({ length: train }, (_, s) => target(Xtrain, s));
  const Xheld = normals(held * W * F, 52);
  const yheld = Float64Array.from({ length: held }, (_, s) => target(Xheld, s));

  const losses: number[] = [];
  const model = trainLstm(Xtrain, ytrain, train, {
    window: W,
    inputSize: F,
    hiddenSize: H,
    epochs: 15,
    batchSize: 32,
    learningRate: 0.01,
    seed: 7,
    clipNorm: 5,
    onProgress: (epoch, loss) => losses.push(epoch, loss),
  });
  assert.equal(losses.length, 2 * 15);

  const pred = predictLstm(model, Xheld, held);
  let mean = 0;
  for (const v of yheld) mean += v / held;
  let mse = 0;
  let baseline = 0;
  for (let s = 0; s < held; s++) {
    mse += (pred[s]! - yheld[s]!) ** 2 / held;
    baseline += (mean - yheld[s]!) ** 2 / held;
  }
  assert.ok(mse < 0.2 * baseline, `held-out MSE ${mse} against the mean's ${baseline}`);
});

test('the same seed gives the same weights; the model is plain JSON', () => {
  const [F, H, W, N] = [3, 4, 5, 300];
  const X = normals(N * W * F, 61);
  const y = Float64Array.from(normals(N, 62));
  const options = { window: W, inputSize: F, hiddenSize: H, epochs: 2, batchSize: 20, learningRate: 0.01, seed: 3 };
  const a = trainLstm(X, y, N, options);
  const b = trainLstm(X, y, N, options);
  assert.deepEqual(a, b);
  assert.notDeepEqual(trainLstm(X, y, N, { ...options, seed: 4 }), a);
  assert.deepEqual(JSON.parse(JSON.stringify(a)), a);
});
