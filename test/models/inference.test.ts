import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import * as ort from 'onnxruntime-node';
import { InferenceError, InferencePool } from '../../src/models/inference/pool.js';
import { encodeModel, type Node } from '../../src/models/onnx/build.js';

/** y = xW + b for x [N, F]; W is F rows of O weights. */
function linearModel(w: readonly (readonly number[])[], b: readonly number[]): Uint8Array {
  const features = w.length;
  const outputs = b.length;
  return encodeModel({
    graphName: 'linear',
    opsets: { '': 17 },
    inputs: [{ name: 'x', shape: ['N', features] }],
    outputs: [{ name: 'y', shape: ['N', outputs] }],
    nodes: [
      { op: 'MatMul', inputs: ['x', 'w'], outputs: ['xw'] },
      { op: 'Add', inputs: ['xw', 'b'], outputs: ['y'] },
    ],
    initializers: [
      { name: 'w', dims: [features, outputs], values: w.flat() },
      { name: 'b', dims: [outputs], values: b },
    ],
  });
}

const WIDTH = 512;

/** Sixteen chained [N, 512]x[512, 512] MatMuls: slow enough to hold a thread for a large batch. */
function slowModel(): Uint8Array {
  const layers = 16;
  const nodes: Node[] = Array.from({ length: layers }, (_, i) => ({
    op: 'MatMul',
    inputs: [i === 0 ? 'x' : `h${i}`, 'w'],
    outputs: [i === layers - 1 ? 'y' : `h${i + 1}`],
  }));
  return encodeModel({
    graphName: 'slow',
    opsets: { '': 17 },
    inputs: [{ name: 'x', shape: ['N', WIDTH] }],
    outputs: [{ name: 'y', shape: ['N', WIDTH] }],
    nodes,
    // Averaging weights keep every value bounded however many layers run.
    initializers: [{ name: 'w', dims: [WIDTH, WIDTH], values: new Float32Array(WIDTH * WIDTH).fill(1 / WIDTH) }],
  });
}

/** y = log(x): NaN for a negative input, -Infinity for zero. */
function logModel(): Uint8Array {
  return encodeModel({
    graphName: 'log',
    opsets: { '': 17 },
    inputs: [{ name: 'x', shape: ['N', 2] }],
    outputs: [{ name: 'y', shape: ['N', 2] }],
    nodes: [{ op: 'Log', inputs: ['x'], outputs: ['y'] }],
  });
}

const W = [
  [0.5, -1.25],
  [2, 0.75],
  [-0.3, 0.1],
];
const B = [0.05, -2];

function linearInTypeScript(x: Float32Array, rows: number): number[] {
  const y: number[] = [];
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < B.length; o++) {
      let sum = B[o]!;
      for (let f = 0; f < W.length; f++) sum += x[r * W.length + f]! * W[f]![o]!;
      y.push(sum);
    }
  }
  return y;
}

function batch(rows: number, columns: number, seed: number): Float32Array {
  return Float32Array.from({ length: rows * columns }, (_, i) => Math.sin(seed * 97 + i * 1.7) * 3);
}

/** Calls `f` on the event loop's next turn (setImmediate); resolves after it ran. */
function nextTurn(f: () => void): Promise<void> {
  return new Promise((resolve) =>
    setImmediate(() => {
      f();
      resolve();
    }),
  );
}

function isFault(kind: InferenceError['kind'], model: string, message?: RegExp) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof InferenceError, `expected an InferenceError, got ${String(err)}`);
    assert.equal(err.kind, kind, err.message);
    assert.equal(err.model, model);
    if (message) assert.match(err.message, message);
    return true;
  };
}

test('results equal the same linear model computed in TypeScript, for batches spread over two workers', async () => {
  const pool = await InferencePool.start({ workers: 2, timeoutMs: 10_000 });
  try {
    const info = await pool.load('linear', linearModel(W, B));
    assert.deepEqual(info, { inputNames: ['x'], outputNames: ['y'] });
    assert.equal(pool.has('linear'), true);
    assert.equal(pool.size, 2);

    const rows = 5;
    const inputs = [1, 2, 3, 4].map((seed) => batch(rows, W.length, seed));
    const expected = inputs.map((x) => linearInTypeScript(x, rows));
    const results = await Promise.all(inputs.map((x) => pool.run('linear', x, [rows, W.length])));

    results.forEach((result, i) => {
      assert.deepEqual(result.dims.y, [rows, B.length]);
      const y = result.outputs.y!;
      assert.equal(y.length, expected[i]!.length);
      y.forEach((v, j) => assert.ok(Math.abs(v - expected[i]![j]!) < 1e-6, `row value ${j}: ${v} vs ${expected[i]![j]}`));
      assert.ok(result.inferenceMs >= 0 && result.totalMs >= result.inferenceMs);
    });
    assert.deepEqual(new Set(results.map((r) => r.worker)), new Set([0, 1]));
    assert.ok(inputs.every((x) => x.length === 0), 'each input was handed to its worker, not copied');
    assert.equal(pool.pending(), 0);
  } finally {
    await pool.close();
  }
});

test('the event loop keeps turning while a worker runs a long inference; in-thread it does not', async () => {
  const rows = 1024;
  const bytes = slowModel();
  const pool = await InferencePool.start({ workers: 1, timeoutMs: 60_000 });
  try {
    await pool.load('slow', bytes);
    const order: string[] = [];
    const result = pool.run('slow', new Float32Array(rows * WIDTH).fill(0.5), [rows, WIDTH]).then(() => order.push('result'));
    await Promise.all([result, nextTurn(() => order.push('timer'))]);
    assert.deepEqual(order, ['timer', 'result']);
  } finally {
    await pool.close();
  }

  // The contrast: onnxruntime defers session.run with one setImmediate, then blocks the main thread
  // for the whole run, and the result is delivered before any later callback gets a turn.
  const session = await ort.InferenceSession.create(bytes);
  try {
    const order: string[] = [];
    const result = session
      .run({ x: new ort.Tensor('float32', new Float32Array(rows * WIDTH).fill(0.5), [rows, WIDTH]) })
      .then(() => order.push('result'));
    await Promise.all([result, nextTurn(() => order.push('timer'))]);
    assert.deepEqual(order, ['result', 'timer']);
  } finally {
    await session.release();
  }
});

test('a run past its timeout rejects with kind timeout; the stuck worker is replaced and the pool keeps answering', async () => {
  const pool = await InferencePool.start({ workers: 2, timeoutMs: 100 });
  try {
    await pool.load('slow', slowModel());
    await pool.load('linear', linearModel(W, B));

    // About 2 s of work against a 100 ms limit: a main thread starved by a busy CI
    // must not see the answer before its timer (a flake seen with 4096 rows and 250 ms).
    const rows = 8192;
    await assert.rejects(pool.run('slow', new Float32Array(rows * WIDTH).fill(0.5), [rows, WIDTH]), isFault('timeout', 'slow', /worker 0 restarted/));

    // The other worker answers at once; the replacement answers too once it has reloaded the models.
    const answeredBy = new Set<number>();
    for (let attempt = 0; attempt < 500 && answeredBy.size < 2; attempt++) {
      const x = batch(3, W.length, attempt);
      const expected = linearInTypeScript(x, 3);
      const result = await pool.run('linear', x, [3, W.length]);
      result.outputs.y!.forEach((v, j) => assert.ok(Math.abs(v - expected[j]!) < 1e-6));
      answeredBy.add(result.worker);
      if (answeredBy.size < 2) await sleep(10);
    }
    assert.deepEqual(answeredBy, new Set([0, 1]));
  } finally {
    await pool.close();
  }
});

test('NaN or infinity in an output rejects with kind non-finite, naming the model and the output', async () => {
  const pool = await InferencePool.start({ workers: 1, timeoutMs: 10_000 });
  try {
    await pool.load('log', logModel());
    await assert.rejects(pool.run('log', Float32Array.of(1, 2, -1, 4), [2, 2]), isFault('non-finite', 'log', /model "log" output "y" is NaN at index 2/));
    await assert.rejects(pool.run('log', Float32Array.of(1, 0, 3, 4), [2, 2]), isFault('non-finite', 'log', /output "y" is -Infinity/));
    const fine = await pool.run('log', Float32Array.of(1, 1, 1, 1), [2, 2]);
    assert.deepEqual([...fine.outputs.y!], [0, 0, 0, 0]);
  } finally {
    await pool.close();
  }
});

test('corrupt or truncated model bytes reject with kind load, and the models already loaded still answer', async () => {
  const pool = await InferencePool.start({ workers: 2, timeoutMs: 10_000 });
  try {
    await pool.load('linear', linearModel(W, B));
    const random = Uint8Array.from({ length: 256 }, (_, i) => (i * 73 + 11) % 256);
    await assert.rejects(pool.load('random', random), isFault('load', 'random', /protobuf parsing failed/));
    const whole = linearModel(W, B);
    await assert.rejects(pool.load('truncated', whole.subarray(0, whole.length - 20)), isFault('load', 'truncated'));
    assert.equal(pool.has('random'), false);
    assert.equal(pool.has('truncated'), false);

    const x = batch(2, W.length, 9);
    const expected = linearInTypeScript(x, 2);
    const result = await pool.run('linear', x, [2, W.length]);
    result.outputs.y!.forEach((v, j) => assert.ok(Math.abs(v - expected[j]!) < 1e-6));
  } finally {
    await pool.close();
  }
});

test('a run on an unknown model, a wrongly shaped input or one a worker took rejects clearly; close() rejects pending runs with kind closed', async () => {
  const pool = await InferencePool.start({ workers: 2, timeoutMs: 10_000 });
  let closed = false;
  try {
    await assert.rejects(pool.run('nope', new Float32Array(3), [1, 3]), /no model is loaded as "nope"/);
    await pool.load('linear', linearModel(W, B));
    const x = batch(1, 3, 0);
    await assert.rejects(pool.run('linear', x, [2, 3]), /input has 3 values for dims \[2, 3\]/);
    await pool.run('linear', x, [1, 3]);
    // A worker run took it over: it is spent, and says so.
    await assert.rejects(pool.run('linear', x, [1, 3]), /input has 0 values for dims \[1, 3\]/);

    const runs = [pool.run('linear', batch(1, 3, 1), [1, 3]), pool.run('linear', batch(1, 3, 2), [1, 3])];
    assert.equal(pool.pending(), 2);
    const closing = pool.close();
    closed = true;
    for (const run of runs) await assert.rejects(run, isFault('closed', 'linear'));
    assert.equal(pool.pending(), 0);
    await closing;
    await assert.rejects(pool.run('linear', batch(1, 3, 3), [1, 3]), isFault('closed', 'linear'));
  } finally {
    if (!closed) await pool.close();
  }
});
