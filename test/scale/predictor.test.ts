/**
 * The predictor over a 5,000-instrument universe with real ONNX sessions in
 * worker threads and the shipped GBDT: instruments with quotes only (no
 * depth features) drop out of the batch, the booked ones are predicted as
 * the model says, frame after frame; a worker run takes its input over,
 * a run on the main thread leaves it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { DEFAULT_FEATURE_OPTIONS, DEPTH_FEATURES, type FeatureFrame, featureSchema } from '../../src/market/features.js';
import { InferencePool } from '../../src/models/inference/pool.js';
import { readModelSource } from '../../src/models/manifest.js';
import { TieredPredictor } from '../../src/models/predictor.js';
import { ModelRegistry } from '../../src/models/registry.js';
import { single } from '../support/predictions.js';

const N = 5_000;
const BOOKED = 3;
const GBDT = 'models/gbdt-base-10s/manifest.json';

test('5,000 instruments, 3 with a book: the 4,997 quotes-only ones drop out of the batch, the 3 get the model’s answer, every frame', async () => {
  const schema = featureSchema(DEFAULT_FEATURE_OPTIONS);
  const w = schema.features.length;
  const { manifest } = readModelSource(GBDT);
  const golden = manifest.golden!;
  const pool = await InferencePool.start({ workers: 2, timeoutMs: 5_000 });
  try {
    const registry = new ModelRegistry(pool, schema, pino({ level: 'silent' }), { latencyBudgetMs: 5_000, maxWindow: 8 });
    const symbols = Array.from({ length: N }, (_, i) => `SYM${i}`);
    const predictor = new TieredPredictor(registry, schema, symbols, { horizons: [{ horizonMs: 10_000, tiers: { base: [GBDT], sectors: {}, sectorCacheSize: 1 } }], historyFrames: 8 }, pino({ level: 'silent' }), () => 0);
    await predictor.start();

    // Every instrument warm; the booked ones read the golden rows, the rest have no depth features.
    const values = new Float64Array(N * w).fill(1);
    const inputs = manifest.input.features.length;
    for (let i = 0; i < N; i++) {
      const row = i % (golden.input.length / inputs);
      manifest.input.features.forEach((name, c) => (values[i * w + schema.features.indexOf(name)] = golden.input[row * inputs + c]!));
      if (i >= BOOKED) for (const name of DEPTH_FEATURES) values[i * w + schema.features.indexOf(name)] = NaN;
    }
    const frame: FeatureFrame = { intervalMs: 1_000, at: 0, wallAt: 0, schema, symbols, values, warm: new Uint8Array(N).fill(1), base: false };

    for (let n = 0; n < 3; n++) {
      frame.at = n * 1_000;
      const p = await predictor.predict(frame);
      assert.deepEqual(p.faults, []);
      for (let i = 0; i < BOOKED; i++) {
        const expected = golden.output[i % golden.output.length]!;
        assert.ok(Math.abs(single(p).value[i]! - expected) < 1e-4, `frame ${n}, instrument ${i}: ${single(p).value[i]} against the golden ${expected}`);
        assert.equal(single(p).models[i], `${manifest.name}@${manifest.version}`);
        assert.equal(single(p).tier[i], 'base');
      }
      const predicted = single(p).value.reduce((k, v) => k + (Number.isNaN(v) ? 0 : 1), 0);
      assert.equal(predicted, BOOKED, 'only the instruments with every model input');
      assert.equal(single(p).tier[BOOKED], '');
    }
  } finally {
    await pool.close();
  }
});

test('a worker run takes its input over, a run on the main thread leaves it: both answer alike', async () => {
  const source = readModelSource(GBDT);
  const golden = source.manifest.golden!;
  const pool = await InferencePool.start({ workers: 1, timeoutMs: 5_000 });
  try {
    await pool.load('gbdt', source.bytes);
    const features = source.manifest.input.features.length;
    const rows = golden.input.length / features;
    const input = Float32Array.from(golden.input);
    const kept = Float32Array.from(golden.input);
    const there = pool.run('gbdt', input, [rows, features], 'worker');
    assert.equal(input.length, 0, 'handed to the worker, not copied');
    const here = pool.run('gbdt', kept, [rows, features], 'here');
    const [a, b] = await Promise.all([there, here]);
    assert.equal(a.worker, 0);
    assert.equal(b.worker, -1);
    assert.deepEqual(a.outputs, b.outputs, 'the same answer on the main thread and in the worker');
    assert.deepEqual([...kept], [...Float32Array.from(golden.input)], 'a run here leaves its input as it is');
  } finally {
    await pool.close();
  }
});
