/**
 * Where the predictor runs each batch: on the main thread when it is cheap,
 * in a worker when it is not, with real ONNX sessions (the shipped GBDT,
 * LSTM and high-volatility GBDT) and real workers. The two places give the
 * same predictions to the bit; a worker that dies is replaced and the
 * frames go on; a frame run that waited until its window was overwritten
 * is refused, not read torn.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Worker } from 'node:worker_threads';
import pino from 'pino';
import { DEFAULT_FEATURE_OPTIONS, type FeatureFrame, featureSchema } from '../../src/market/features.js';
import { BatchCost } from '../../src/models/inference/cost.js';
import { FrameHistory, HISTORY_SLACK } from '../../src/models/inference/history.js';
import { InferenceError, InferencePool } from '../../src/models/inference/pool.js';
import { encodeModel, type Node } from '../../src/models/onnx/build.js';
import { readModelSource } from '../../src/models/manifest.js';
import { TieredPredictor, type PredictorOptions } from '../../src/models/predictor.js';
import { ModelRegistry } from '../../src/models/registry.js';
import { single } from '../support/predictions.js';

const GBDT = 'models/gbdt-base-10s/manifest.json';
const LSTM = 'models/lstm-base-10s/manifest.json';
const HIGH_VOL = 'models/gbdt-highvol-10s/manifest.json';
/** The specialist's threshold in config/default.yaml. */
const ABOVE = 0.5151365995407104;
const HISTORY = 16;
const silent = pino({ level: 'silent' });
const schema = featureSchema(DEFAULT_FEATURE_OPTIONS);
const width = schema.features.length;
const golden = readModelSource(GBDT).manifest;
const RV = schema.features.indexOf('rv_1s');
const OFI = schema.features.indexOf('ofi');

/**
 * Frame `t` of `n` instruments: the GBDT's golden rows, varied per instrument
 * and frame; every fifth instrument volatile enough for the specialist; with
 * `gaps`, now and then an instrument with a NaN input (it sits out alone).
 */
function frameOf(n: number, t: number, gaps = true): FeatureFrame {
  const symbols = Array.from({ length: n }, (_, i) => `SYM${i}`);
  const values = new Float64Array(n * width).fill(1);
  const inputs = golden.input.features;
  const rows = golden.golden!.input.length / inputs.length;
  for (let i = 0; i < n; i++) {
    const row = (i + t) % rows;
    inputs.forEach((name, c) => (values[i * width + schema.features.indexOf(name)] = golden.golden!.input[row * inputs.length + c]! * (1 + 0.05 * Math.sin(i * 7 + t))));
    values[i * width + RV] = (i % 5 === 0 ? 0.8 : 0.1) * (1 + 0.1 * Math.cos(i + t));
    if (gaps && i % 37 === 3 && t % 4 === 0) values[i * width + OFI] = NaN;
  }
  return { intervalMs: 1_000, at: t * 1_000, wallAt: 0, schema, symbols, values, warm: new Uint8Array(n).fill(1), base: false };
}

async function predictorOn(pool: InferencePool, n: number, options: Partial<PredictorOptions> = {}): Promise<TieredPredictor> {
  const registry = new ModelRegistry(pool, schema, silent, { latencyBudgetMs: 10_000, maxWindow: HISTORY });
  const symbols = Array.from({ length: n }, (_, i) => `SYM${i}`);
  const tiers = { base: [GBDT, LSTM], sectors: {}, sectorCacheSize: 1, highVol: { feature: 'rv_1s', above: ABOVE, models: [HIGH_VOL] } };
  const predictor = new TieredPredictor(registry, schema, symbols, { horizons: [{ horizonMs: 10_000, tiers }], historyFrames: HISTORY, ...options }, silent, () => 0);
  await predictor.start();
  return predictor;
}

test('a batch gives the same predictions to the bit on the main thread and in a worker, NaN inputs left out alike', async () => {
  const pool = await InferencePool.start({ workers: 2, timeoutMs: 30_000 });
  try {
    const here = await predictorOn(pool, 200, { inThreadMaxMs: Infinity });
    const there = await predictorOn(pool, 200, { inThreadMaxMs: 0 });
    let lstmServed = false;
    let leftOut = false;
    for (let t = 0; t < 14; t++) {
      const frame = frameOf(200, t);
      const a = await here.predict(frame);
      const b = await there.predict(frame);
      assert.deepEqual(a.faults, []);
      assert.deepEqual(b.faults, []);
      assert.deepEqual([...single(a).value], [...single(b).value], `frame ${t}`);
      assert.deepEqual(single(a).models, single(b).models);
      assert.deepEqual(single(a).tier, single(b).tier);
      lstmServed ||= single(a).models.some((m) => m.includes('lstm-base-10s'));
      leftOut ||= single(a).value.some((v, i) => Number.isNaN(v) && single(a).tier[i] === '');
      assert.ok(single(a).value.filter(Number.isFinite).length > 150, 'most instruments predicted');
      assert.ok(single(a).tier.includes('high_vol') && single(a).tier.includes('base'));
    }
    assert.ok(lstmServed, 'the LSTM served once its window filled');
    assert.ok(leftOut, 'an instrument with a NaN input sat a frame out');
    assert.equal(here.paths.workers.batches, 0);
    assert.ok(here.paths.here.batches > 0);
    assert.equal(there.paths.here.batches, 0);
    assert.ok(there.paths.workers.batches > 0);
    assert.equal(here.paths.here.rows, there.paths.workers.rows, 'the same rows were packed on either side');
  } finally {
    await pool.close();
  }
});

test('a few instruments: every batch runs on the main thread and no worker starts', async () => {
  const pool = await InferencePool.start({ workers: 2, minWorkers: 0, timeoutMs: 30_000 });
  try {
    // A budget no three-instrument batch comes near, however busy the machine.
    const predictor = await predictorOn(pool, 3, { inThreadMaxMs: 50 });
    assert.equal(pool.size, 0);
    for (let t = 0; t < 12; t++) {
      const p = await predictor.predict(frameOf(3, t, false));
      assert.deepEqual(p.faults, []);
      assert.ok(single(p).value.every(Number.isFinite));
    }
    assert.equal(predictor.paths.workers.batches, 0);
    assert.ok(predictor.paths.here.batches >= 24);
    assert.equal(pool.size, 0, 'no worker was ever started');
  } finally {
    await pool.close();
  }
});

test('5,000 instruments: a worker is ready before the first frame, and no large batch runs on the main thread', async () => {
  const n = 5_000;
  const pool = await InferencePool.start({ workers: 2, minWorkers: 0, timeoutMs: 30_000 });
  try {
    const predictor = await predictorOn(pool, n);
    assert.ok(pool.size >= 1, 'the predictor started a worker: a whole frame costs more than the main thread may spend');
    for (let t = 0; t < 12; t++) {
      const p = await predictor.predict(frameOf(n, t, false));
      assert.deepEqual(p.faults, []);
      if (t >= 10) {
        assert.ok(single(p).value.every(Number.isFinite));
        assert.ok(single(p).models.every((m, i) => (i % 5 === 0 ? m.startsWith('gbdt-highvol-10s') : m.includes('lstm-base-10s'))));
      }
    }
    assert.ok(predictor.paths.workers.maxRows >= 3_000, `the base tier's batches ran in the workers (largest ${predictor.paths.workers.maxRows} rows)`);
    // The high-vol tier's 1,000 rows may fit the main thread's budget on a fast moment; the base tier's 4,000 never.
    assert.ok(predictor.paths.here.maxRows <= 1_000, `largest batch on the main thread: ${predictor.paths.here.maxRows} rows`);
  } finally {
    await pool.close();
  }
});

test('a worker that dies is replaced: frames wait for the new one and are answered as before, while in-thread frames go on', async () => {
  const n = 40;
  const pool = await InferencePool.start({ workers: 1, timeoutMs: 30_000 });
  try {
    const inWorker = await predictorOn(pool, n, { inThreadMaxMs: 0 });
    const inThread = await predictorOn(pool, n, { inThreadMaxMs: Infinity });
    for (let t = 0; t < 11; t++) {
      const frame = frameOf(n, t);
      assert.deepEqual([...single(await inWorker.predict(frame)).value], [...single(await inThread.predict(frame)).value]);
    }
    const slots = (pool as unknown as { slots: ({ worker: Worker } | undefined)[] }).slots;
    const dead = slots[0]!;
    // Idle, the worker waits on its event loop, outside onnxruntime: terminating it there is safe.
    await dead.worker.terminate();
    while (slots[0] === dead) await sleep(5);

    const frame = frameOf(n, 11);
    const [a, b] = await Promise.all([inWorker.predict(frame), inThread.predict(frame)]);
    assert.deepEqual(a.faults, [], 'the frame waited for the replacement');
    assert.deepEqual([...single(a).value], [...single(b).value]);
    assert.ok(single(a).models.some((m) => m.includes('lstm-base-10s')), 'the replacement reloaded every model');
    assert.equal(pool.size, 1);
    assert.equal(inThread.paths.workers.batches, 0);
  } finally {
    await pool.close();
  }
});

/** Sixteen chained [N, 512]x[512, 512] MatMuls: a large batch holds a worker for a while. */
function slowModel(): Uint8Array {
  const size = 512;
  const nodes: Node[] = Array.from({ length: 16 }, (_, i) => ({ op: 'MatMul', inputs: [i === 0 ? 'x' : `h${i}`, 'w'], outputs: [i === 15 ? 'y' : `h${i + 1}`] }));
  return encodeModel({
    graphName: 'slow',
    opsets: { '': 17 },
    inputs: [{ name: 'x', shape: ['N', size] }],
    outputs: [{ name: 'y', shape: ['N', size] }],
    nodes,
    initializers: [{ name: 'w', dims: [size, size], values: new Float32Array(size * size).fill(1 / size) }],
  });
}

/** y = x · [1, 2, 3]. */
function dotModel(): Uint8Array {
  return encodeModel({
    graphName: 'dot',
    opsets: { '': 17 },
    inputs: [{ name: 'x', shape: ['N', 3] }],
    outputs: [{ name: 'y', shape: ['N', 1] }],
    nodes: [{ op: 'MatMul', inputs: ['x', 'w'], outputs: ['y'] }],
    initializers: [{ name: 'w', dims: [3, 1], values: [1, 2, 3] }],
  });
}

test('a frame run that waits in a worker until newer frames overwrite its window is refused as stale; a fresh one is answered as in-thread', async () => {
  const pool = await InferencePool.start({ workers: 1, timeoutMs: 60_000 });
  try {
    await pool.load('slow', slowModel());
    const packing = { columns: Int32Array.of(0, 1, 2), mean: new Float64Array(3), scale: new Float64Array(3).fill(1), window: 1 };
    await pool.load('dot', dotModel(), packing);
    const history = new FrameHistory(4, 3, 1);
    const observe = (t: number) => history.observe(Float64Array.from({ length: 12 }, (_, k) => k + t), new Uint8Array(4).fill(1));
    observe(0);
    // A worker run takes its instruments over: a fresh list each time.
    const instruments = () => Int32Array.of(0, 1, 2, 3);
    // The worker is busy with this for a while, and takes the frame run after it.
    const slow = pool.run('slow', new Float32Array(1024 * 512).fill(0.5), [1024, 512]);
    const late = pool.runFrame('dot', history, instruments(), 'worker');
    for (let t = 1; t <= HISTORY_SLACK + 1; t++) observe(t);
    await assert.rejects(late, (err: unknown) => err instanceof InferenceError && err.kind === 'stale' && /overwritten/.test(err.message));
    await slow;

    const [there, here] = await Promise.all([pool.runFrame('dot', history, instruments(), 'worker'), pool.runFrame('dot', history, instruments(), 'here')]);
    assert.deepEqual(there.outputs, here.outputs);
    // A list already given to a worker run is gone with it: it reads as empty, answered at once rather than left to time out.
    const spent = instruments();
    await pool.runFrame('dot', history, spent, 'worker');
    assert.equal((await pool.runFrame('dot', history, spent, 'worker')).rows.length, 0);
    assert.deepEqual([...there.rows], [0, 1, 2, 3]);
    // Frame 9: instrument i reads 3i + 9, 3i + 10, 3i + 11.
    assert.deepEqual([...here.outputs.y!], [0, 1, 2, 3].map((i) => 3 * i + 9 + 2 * (3 * i + 10) + 3 * (3 * i + 11)));
  } finally {
    await pool.close();
  }
});

test('a batch cost estimate: proportional while every batch had the same size, a line through the sizes seen once they differ; a run descheduled midway barely moves it', () => {
  const cost = new BatchCost();
  assert.equal(cost.estimate(10), Infinity);
  for (let k = 0; k < 5; k++) cost.observe(8, 0.04);
  assert.ok(Math.abs(cost.estimate(8) - 0.04) < 1e-12);
  assert.ok(Math.abs(cost.estimate(800) - 4) < 1e-9, 'a bigger batch is estimated in proportion: never less than it costs');
  const line = new BatchCost();
  for (let k = 0; k < 200; k++) for (const rows of [10, 1_000]) line.observe(rows, 0.02 + 0.001 * rows);
  assert.ok(Math.abs(line.estimate(5_000) - 5.02) < 1e-6);
  assert.ok(Math.abs(line.estimate(1) - 0.021) < 1e-6);

  const busy = new BatchCost();
  // The first of the seed runs was descheduled for 5 ms: the fastest of them seeds the estimate.
  for (const ms of [5, 0.04, 0.05]) busy.observe(8, ms);
  assert.ok(Math.abs(busy.estimate(8) - 0.04) < 1e-12);
  busy.observe(8, 100);
  assert.ok(busy.estimate(8) < 0.06, `one slow run counts for at most 4 estimates: ${busy.estimate(8)}`);
  for (let k = 0; k < 40; k++) busy.observe(8, 0.4);
  assert.ok(busy.estimate(8) > 0.3, 'a model that really got slower is followed');
});
