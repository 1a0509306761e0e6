/**
 * The regime and predictor actors under a real supervisor, fed by the real
 * data path (simulator -> unmodified IB client -> books -> features), with
 * real ONNX sessions in worker threads; and the shipped demo models, which
 * must pass the registry's checks against the default live schema.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import pino from 'pino';
import { featuresSettings } from '../../src/actors/features.js';
import { ibConnectionSettings } from '../../src/actors/ib-connection.js';
import { l2MicrostructureSettings } from '../../src/actors/l2-microstructure.js';
import { predictorSettings } from '../../src/actors/predictor.js';
import { regimeSettings } from '../../src/actors/regime.js';
import { subscriptionsSettings } from '../../src/actors/subscriptions.js';
import { loadConfig } from '../../src/config/load.js';
import { systemClock } from '../../src/clock.js';
import { checkSystemHealth } from '../../src/health/system-health.js';
import { DEFAULT_FEATURE_OPTIONS, featureSchema } from '../../src/market/features.js';
import { InferencePool } from '../../src/models/inference/pool.js';
import type { PredictionFrame } from '../../src/models/predictor.js';
import { ModelRegistry } from '../../src/models/registry.js';
import { TwsSimulator } from '../../src/sim/server.js';
import { until } from '../support/ib-client.js';
import { affine, writeAffineModel, writeJumpModel } from '../support/models.js';
import { startTree } from '../support/probe.js';
import { FEATURES_TOPIC, PREDICTIONS_TOPIC, REGIME_TOPIC } from '../../src/topics.js';


import { componentSpec } from '../../src/actors/registry.js';

const dir = mkdtempSync(join(tmpdir(), 'keel-model-actors-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const INPUTS = ['imbalance_l1', 'ofi', 'spread_bps'];
const WEIGHTS = [0.5, 0.01, -0.2];
const WEIGHTS_5M = [-0.3, 0.02, 0.4];

test("regime and predictor follow the live features: states per warm instrument, predictions at each horizon equal to that horizon's model on that frame", async () => {
  const sim = new TwsSimulator({ updatesPerSecond: 200, seed: 11 });
  const port = await sim.listen(0);
  const tree = startTree(
    {
      children: [
        componentSpec('ib_connection', 'ib_connection', { settings: ibConnectionSettings.parse({ port, reconnect: { minMs: 50, maxMs: 500, randomFactor: 0.2, maxAttempts: 0 }, orderIdFile: join(dir, 'ids.json') }) }),
        componentSpec('subscriptions', 'subscriptions', { settings: subscriptionsSettings.parse({
            instruments: [
              { symbol: 'SPY', depth: { rows: 10 }, ticks: 'AllLast' },
              { symbol: 'QQQ', depth: { rows: 10 }, ticks: 'AllLast' },
            ],
          }),
          dependsOn: ['ib_connection'] }),
        componentSpec('l2_microstructure', 'l2_microstructure', { settings: l2MicrostructureSettings.parse({}), dependsOn: ['subscriptions'] }),
        // Short horizons: warm within a second.
        componentSpec('features', 'features', {
          settings: featuresSettings.parse({ samplesMs: [100, 200], volHalfLivesMs: [1000], returnHorizonsMs: [500], flowHalfLifeMs: 1000 }),
          dependsOn: ['l2_microstructure'] }),
        componentSpec('regime', 'regime', { settings: regimeSettings.parse({ model: writeJumpModel(dir, ['spread_bps', 'trade_intensity']), intervalMs: 200 }),
          dependsOn: ['features'] }),
        componentSpec('predictor', 'predictor', {
          settings: predictorSettings.parse({
            intervalMs: 200,
            // Two horizons side by side, each its own model (the manifests name their horizons).
            horizons: {
              '10s': { base: [writeAffineModel(dir, { name: 'lin', version: '1', features: INPUTS, weights: WEIGHTS, bias: 0.1, manifest: { horizonMs: 10_000 } })] },
              '5m': { base: [writeAffineModel(dir, { name: 'lin-5m', version: '1', features: INPUTS, weights: WEIGHTS_5M, bias: -0.2, manifest: { horizonMs: 300_000 } })] },
            },
            latencyBudgetMs: 5_000,
          }),
          dependsOn: ['features', 'regime'] }),
      ],
    },
    systemClock,
  );
  const bus = tree.bus;
  // Frames are reused by their publisher: keep a copy of each, by time, to check predictions against.
  const frames = new Map<number, Float64Array>();
  bus.subscribe(FEATURES_TOPIC, (f) => f.intervalMs === 200 && frames.set(f.at, f.values.slice()));
  const predictions: PredictionFrame[] = [];
  bus.subscribe(PREDICTIONS_TOPIC, (p) => predictions.push(p));
  try {
    await until(() => tree.phase() === 'running', 'the tree to run', 15_000);
    const complete = (p: PredictionFrame) => p.horizons.every((h) => h.value.every(Number.isFinite));
    await until(() => predictions.filter(complete).length >= 5, 'five frames of predictions for both instruments', 15_000);
    const schema = featureSchema({ baseMs: 100, volHalfLivesMs: [1000], returnHorizonsMs: [500], flowHalfLifeMs: 1000 });
    const width = schema.features.length;
    const served = [
      { horizonMs: 10_000, weights: WEIGHTS, bias: 0.1, model: 'lin@1' },
      { horizonMs: 300_000, weights: WEIGHTS_5M, bias: -0.2, model: 'lin-5m@1' },
    ];
    for (const p of predictions.filter(complete)) {
      const values = frames.get(p.frameAt)!;
      assert.ok(values, 'each prediction names the frame it is for');
      assert.deepEqual(p.horizons.map((h) => h.horizonMs), [10_000, 300_000], 'both horizons, shortest first');
      p.horizons.forEach((h, k) => {
        const { weights, bias, model } = served[k]!;
        p.symbols.forEach((_, i) => {
          const x = INPUTS.map((name) => values[i * width + schema.features.indexOf(name)]!);
          const want = affine(weights, bias, x);
          assert.ok(Math.abs(h.value[i]! - want) < 1e-3 * Math.max(1, Math.abs(want)), `${p.symbols[i]} at ${h.horizonMs} ms: ${h.value[i]} vs ${want}`);
          assert.equal(h.tier[i], 'base');
          assert.equal(h.models[i], model);
        });
      });
      assert.ok(p.latencyMs > 0 && p.inferenceMs >= 0);
    }

    await until(() => bus.latest(REGIME_TOPIC)?.state.every((s) => s >= 0) === true, 'a regime for both instruments', 10_000);
    const regime = bus.latest(REGIME_TOPIC)!;
    assert.deepEqual(regime.labels, ['calm', 'volatile']);
    for (let i = 0; i < 2; i++) {
      const p = regime.probabilities.subarray(i * 2, i * 2 + 2);
      assert.ok(Math.abs(p[0]! + p[1]! - 1) < 1e-9, 'probabilities sum to 1');
      assert.equal(regime.state[i], p[1]! > p[0]! ? 1 : 0, 'the state is the most likely one');
    }

    const health = checkSystemHealth(bus, tree.services, tree.phase(), systemClock);
    assert.equal(health.components.regime.status, 'OK', health.components.regime.detail);
    assert.equal(health.components.predictor.status, 'OK', health.components.predictor.detail);
    const status = tree.services.current('predictor')!;
    assert.deepEqual(status.registry.slotNames(), ['10s/base/0', '5m/base/0']);
  } finally {
    tree.actor.send({ type: 'shutdown' });
    await until(() => tree.done, 'the tree to stop');
    await sim.close();
  }
});

test('the shipped demo models pass the registry: manifest, checksum, golden rows through onnxruntime', async () => {
  const config = loadConfig('config/default.yaml');
  const settings = predictorSettings.parse(config.components.predictor!.settings);
  const manifests = Object.values(settings.horizons).flatMap((t) => [...t.base, ...(t.highVol?.models ?? [])]);
  assert.ok(manifests.length >= 3, 'base GBDT, base LSTM and the high-volatility specialist');
  const pool = await InferencePool.start({ workers: 1, timeoutMs: 10_000 });
  try {
    const registry = new ModelRegistry(pool, featureSchema(DEFAULT_FEATURE_OPTIONS), pino({ level: 'silent' }), { latencyBudgetMs: 10_000, maxWindow: settings.historyFrames });
    for (const [i, path] of manifests.entries()) {
      const model = await registry.install(`m/${i}`, path);
      assert.ok(model.manifest.metrics.model.rmse! < model.manifest.metrics.baseline.rmse!, `${model.id} beats its baseline on held-out data`);
    }
  } finally {
    await pool.close();
  }
});
