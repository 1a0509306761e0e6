/**
 * Drift end to end on the real parts: the simulator's market with a planted
 * drift (passive orders turn to rest against the coming move) runs through
 * keel's books and features, and the shipped 10 s models serve every frame
 * through the real predictor (onnxruntime sessions on the model files) with
 * its drift monitor. Counted in frames of market time, never in wall time.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { DEFAULT_FEATURE_OPTIONS, featureSchema } from '../../src/market/features.js';
import type { Dataset } from '../../src/models/dataset.js';
import { InferencePool } from '../../src/models/inference/pool.js';
import { DEFAULT_MONITOR, ModelMonitor, type FrameMonitor, type ModelDrift } from '../../src/models/monitor.js';
import { MAX_FRAMES_BEHIND, MonitorThread } from '../../src/models/monitor-thread.js';
import { TieredPredictor } from '../../src/models/predictor.js';
import { ModelRegistry } from '../../src/models/registry.js';
import { simulateDataset } from '../../src/models/training-data.js';
import { framesOf } from '../support/models.js';
import { single } from '../support/predictions.js';

const GBDT = 'models/gbdt-base-10s/manifest.json';
const LSTM = 'models/lstm-base-10s/manifest.json';
const DRIFT_AT_S = 40 * 60;
const END_S = 80 * 60;
const schema = featureSchema(DEFAULT_FEATURE_OPTIONS);

interface Checkpoint {
  readonly minute: number;
  readonly models: readonly ModelDrift[];
  readonly faults: readonly string[];
  readonly predicted: number;
}

interface Watcher {
  readonly monitor: FrameMonitor;
  report(): ModelDrift[] | Promise<ModelDrift[]>;
  /** Resolves once the monitor has watched every frame so far. */
  caughtUp?(): Promise<unknown>;
}

const inThread = (data: Dataset): Watcher => {
  const monitor = new ModelMonitor(data.symbols, schema.features.length, data.sampleMs, DEFAULT_MONITOR);
  return { monitor, report: () => monitor.report() };
};

/** Runs `data` through a predictor of the base tier with a monitor; a report every simulated minute. */
async function serve(data: Dataset, { monitor, report, caughtUp }: Watcher = inThread(data)): Promise<Checkpoint[]> {
  const pool = await InferencePool.start({ workers: 0, timeoutMs: 30_000 });
  try {
    const silent = pino({ level: 'silent' });
    const registry = new ModelRegistry(pool, schema, silent, { latencyBudgetMs: 10_000, maxWindow: 16 });
    const tiers = { base: [GBDT, LSTM], sectors: {}, sectorCacheSize: 1 };
    const predictor = new TieredPredictor(registry, schema, data.symbols, { horizons: [{ horizonMs: 10_000, tiers }], historyFrames: 16, monitor }, silent, () => 0);
    await predictor.start();
    const frames = framesOf(data);
    const out: Checkpoint[] = [];
    for (const frame of frames) {
      const p = await predictor.predict(frame);
      await caughtUp?.();
      if (frame.at % 60_000 === 0) out.push({ minute: frame.at / 60_000, models: await report(), faults: p.faults, predicted: single(p).value.filter(Number.isFinite).length });
    }
    return out;
  } finally {
    await pool.close();
  }
}

const options = { seed: 21, instruments: 3, seconds: END_S, sampleMs: 1_000, horizonMs: 10_000, updatesPerSecond: 50 };
const drifting = simulateDataset({ ...options, drift: { atSeconds: DRIFT_AT_S, dynamics: { volatilityScale: 1, resting: 'away' } } });

test('a planted drift is seen in the inputs within 10 minutes, and the stale model is benched once its live error passes the bound', async () => {
  const run = await serve(drifting);
  const at = (minute: number) => run.find((c) => c.minute === minute)!;
  const gbdt = (c: Checkpoint) => c.models.find((m) => m.id.startsWith('gbdt-base-10s@'))!;
  const line = (c: Checkpoint) => {
    const g = gbdt(c);
    return `min ${c.minute}: drifted ${g.drifted.join(',') || '-'}, max input PSI ${Math.max(...g.inputPsi.filter(Number.isFinite)).toFixed(2)}, live rmse ${g.live.rmse.toFixed(2)} zero ${g.live.zeroRmse.toFixed(2)} n ${g.live.n}, beyond ${g.beyondBound}`;
  };
  for (const c of run) if (c.minute % 5 === 0) console.log(line(c));
  const before = run.filter((c) => c.minute < DRIFT_AT_S / 60);
  assert.ok(before.every((c) => gbdt(c).drifted.length === 0), `no drift before the fault:\n${before.map(line).join('\n')}`);
  assert.ok(before.every((c) => !gbdt(c).beyondBound), 'within its bound before the fault');
  const seen = run.find((c) => c.minute >= DRIFT_AT_S / 60 && gbdt(c).drifted.length === drifting.symbols.length);
  assert.ok(seen, 'every instrument drifts after the fault');
  console.log(`every instrument drifting ${seen.minute - DRIFT_AT_S / 60} min after the fault`);
  assert.ok(seen.minute - DRIFT_AT_S / 60 <= 10, `drift seen within 10 minutes of market time (${line(seen)})`);
  const benched = run.find((c) => c.minute >= DRIFT_AT_S / 60 && gbdt(c).beyondBound);
  assert.ok(benched, `the stale model goes beyond its bound:\n${run.filter((c) => c.minute >= DRIFT_AT_S / 60).map(line).join('\n')}`);
  console.log(`beyond its bound ${benched.minute - DRIFT_AT_S / 60} min after the fault`);
  assert.ok(at(END_S / 60 - 1).faults.some((f) => /gbdt-base-10s@.*live error beyond its bound/.test(f)), 'the predictor says it benched it');
});

test('the monitor on its own thread reports exactly what it reports on the caller\'s, and the predictor benches from its verdicts', async () => {
  const here = await serve(drifting);
  const failures: Error[] = [];
  const thread = await MonitorThread.start(drifting.symbols, schema.features.length, drifting.sampleMs, DEFAULT_MONITOR, (err) => failures.push(err));
  try {
    // A frame at a time: never so far behind that it skips one, and its verdicts a frame late, as in the daemon at its pace.
    const there = await serve(drifting, { monitor: thread, report: () => thread.report(), caughtUp: () => thread.caughtUp() });
    assert.equal(thread.skipped, 0);
    assert.deepEqual(failures, []);
    assert.deepEqual(
      there.map((c) => c.models),
      here.map((c) => c.models),
    );
    const benched = there.findIndex((c) => c.models.some((m) => m.beyondBound));
    assert.ok(benched > 0, 'a model goes beyond its bound in the thread too');
    // Its verdicts reach the predictor a frame later: from the next checkpoint on, the same models are left out as in-thread (their figures a frame older).
    const leftOut = (run: Checkpoint[]) => run.slice(benched + 1).map((c) => c.faults.map((f) => f.replace(/ \(RMSE [^)]*\)/, '')));
    assert.deepEqual(leftOut(there), leftOut(here));
    assert.ok(there.at(-1)!.faults.some((f) => /gbdt-base-10s@.*live error beyond its bound/.test(f)));
  } finally {
    await thread.close();
  }
});

test('a monitor thread behind by MAX_FRAMES_BEHIND frames skips the next rather than queue it', async () => {
  const thread = await MonitorThread.start(drifting.symbols, schema.features.length, drifting.sampleMs, DEFAULT_MONITOR, (err) => assert.fail(err));
  try {
    const frame = framesOf(drifting)[0]!;
    // Nothing is answered while this loop holds the thread: the first MAX_FRAMES_BEHIND frames are posted, the rest skipped.
    for (let k = 0; k < MAX_FRAMES_BEHIND + 3; k++) thread.observe(thread.copy(frame), []);
    assert.equal(thread.skipped, 3);
    await thread.report();
    thread.observe(thread.copy(frame), []);
    assert.equal(thread.skipped, 3, 'caught up: watched again');
  } finally {
    await thread.close();
  }
});

test('a monitor thread that cannot start says why', async () => {
  await assert.rejects(
    MonitorThread.start(['SPY'], schema.features.length, 1_000, { ...DEFAULT_MONITOR, confidence: 2 }, () => undefined),
    /^Error: the drift monitor's thread failed: a probability between 0 and 1, got 2$/,
  );
});

test('a monitor thread that fails while watching says why once; reports asked reject, catching up does not hang', async () => {
  const failures: Error[] = [];
  const thread = await MonitorThread.start(['SPY', 'QQQ'], schema.features.length, 1_000, DEFAULT_MONITOR, (err) => failures.push(err));
  try {
    const bins = { edges: [0], shares: [0.5, 0.5] };
    // A manifest the registry would refuse (SPY's own bins lack an input): the monitor throws on its thread.
    const model = {
      id: 'bad@1',
      key: 'bad@1#1',
      columns: Int32Array.of(1, 2),
      manifest: { input: { name: 'input', features: ['a', 'b'], window: 1 }, reference: { inputs: [bins, bins], symbols: { SPY: { inputs: [bins] } } }, metrics: { heldOutRows: 0, model: {}, baseline: {}, baselineName: 'zero' } },
    };
    const frame = framesOf(drifting)[0]!;
    thread.observe(thread.copy({ ...frame, symbols: ['SPY', 'QQQ'], values: frame.values.subarray(0, 2 * schema.features.length), warm: frame.warm.subarray(0, 2) }), [
      { slot: '10s/base/0', model, shadow: false, instruments: Int32Array.of(0, 1), values: Float32Array.of(1, 2) },
    ]);
    await assert.rejects(thread.report(), /^Error: the drift monitor's thread failed: every instrument needs a reference per variable$/);
    await thread.caughtUp();
    assert.deepEqual(failures.map((e) => e.message), ["the drift monitor's thread failed: every instrument needs a reference per variable"]);
  } finally {
    await thread.close();
  }
});
