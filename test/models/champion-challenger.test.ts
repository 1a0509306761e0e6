/**
 * Champion and challenger on the real parts: the simulator's market through
 * keel's features, models trained by keel's own recipe on it, served by the
 * real predictor (onnxruntime sessions), the challenger in the registry's
 * shadow, judged by the monitor's paired scores (promotion.ts). Everything
 * is counted in frames of market time.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import pino from 'pino';
import { journalSettings } from '../../src/actors/journal.js';
import { predictorSettings } from '../../src/actors/predictor.js';
import { retrainerSettings } from '../../src/actors/retrainer.js';
import { componentSpec } from '../../src/actors/registry.js';
import { systemClock } from '../../src/clock.js';
import { DEFAULT_FEATURE_OPTIONS, FeatureEngine, featureSchema } from '../../src/market/features.js';
import type { ModelEvent } from '../../src/models/monitor.js';
import { MonitorThread } from '../../src/models/monitor-thread.js';
import { serviceLogic } from '../../src/supervision/service.js';
import type { ChildSpec } from '../../src/supervision/spec.js';
import { FEATURES_TOPIC, JOURNAL_RECORD_TOPIC, MODEL_EVENT_TOPIC, PREDICTIONS_TOPIC } from '../../src/topics.js';
import { until } from '../support/ib-client.js';
import { startTree } from '../support/probe.js';
import { framesOf } from '../support/models.js';
import { recordSimulatedMarket } from '../support/recordings.js';
import { between, type Dataset } from '../../src/models/dataset.js';
import { InferencePool } from '../../src/models/inference/pool.js';
import { DEFAULT_MONITOR, ModelMonitor, type ChallengerScore } from '../../src/models/monitor.js';
import { TieredPredictor } from '../../src/models/predictor.js';
import { carryOut, DEFAULT_PROMOTION, Referee, type RefereeCall } from '../../src/models/promotion.js';
import { ModelRegistry } from '../../src/models/registry.js';
import { trainModels } from '../../src/models/train.js';
import { simulateDataset } from '../../src/models/training-data.js';
import type { Dynamics } from '../../src/sim/market.js';

const SHIPPED = 'models/gbdt-base-10s/manifest.json';
const SLOT = '10s/base/0';
const schema = featureSchema(DEFAULT_FEATURE_OPTIONS);
const FLIP: Dynamics = { volatilityScale: 1, resting: 'away' };
const dir = mkdtempSync(join(tmpdir(), 'keel-challenger-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const minutes = (m: number) => m * 60_000;
const options = { instruments: 3, sampleMs: 1_000, horizonMs: 10_000, updatesPerSecond: 50 };

/** A GBDT for the 10 s horizon trained by keel's recipe on `data`, into its own directory; its manifest's path. */
function challengerOn(data: Dataset, name: string): string {
  const out = join(dir, name);
  trainModels(data, out, { seed: 5, horizonsMs: [10_000], heldOutShare: 0.25, version: name, script: 'test', only: ['gbdt-base-10s'], progress: () => {} });
  return join(out, 'gbdt-base-10s', 'manifest.json');
}

interface Step {
  readonly minute: number;
  readonly call: RefereeCall;
  /** The paired scores when the call was made (none for a rollback after the contest). */
  readonly score: ChallengerScore | undefined;
}

/**
 * Serves `data` with the shipped GBDT; `challenger` shadows it on every
 * instrument from `shadowFrom` (or, with `force`, is promoted at once as an
 * operator would), and the referee judges as the predictor component does.
 * Returns its calls and what the slot held.
 */
async function contest(data: Dataset, challenger: string, shadowFrom: number, force = false) {
  const pool = await InferencePool.start({ workers: 0, timeoutMs: 30_000 });
  try {
    const silent = pino({ level: 'silent' });
    const registry = new ModelRegistry(pool, schema, silent, { latencyBudgetMs: 10_000, maxWindow: 16 });
    const monitor = new ModelMonitor(data.symbols, schema.features.length, data.sampleMs, DEFAULT_MONITOR);
    const predictor = new TieredPredictor(registry, schema, data.symbols, { horizons: [{ horizonMs: 10_000, tiers: { base: [SHIPPED], sectors: {}, sectorCacheSize: 1 } }], historyFrames: 16, monitor }, silent, () => 0);
    await predictor.start();
    const referee = new Referee(DEFAULT_PROMOTION);
    let frame = 0;
    registry.onSwap((e) => referee.onSwap(e));
    const champion = registry.live(SLOT).id;
    const frames = framesOf(data);
    const steps: Step[] = [];
    let promotedAt: number | undefined;
    let promotedId: string | undefined;
    let rolledBackAt: number | undefined;
    let atRollback: ReturnType<ModelMonitor['liveError']>;
    for (const f of frames) {
      frame++;
      if (f.at === shadowFrom) {
        await registry.shadow(SLOT, challenger, 1);
        if (force) registry.promote(SLOT);
      }
      await predictor.predict(f);
      for (const call of referee.step(frame, monitor)) {
        steps.push({ minute: f.at / 60_000, call, score: monitor.challenger(SLOT) });
        if (call.action === 'rollback') atRollback = monitor.liveError(call.model);
        carryOut(call, registry);
        if (call.action === 'rollback') rolledBackAt = f.at;
      }
      if (force && f.at === shadowFrom) {
        promotedAt = f.at;
        promotedId = registry.live(SLOT).id;
      }
      const promoted = steps.find((s) => s.call.action === 'promote');
      if (promoted && promotedAt === undefined) {
        promotedAt = f.at;
        promotedId = registry.live(SLOT).id;
      }
    }
    return { champion, steps, promotedAt, promotedId, rolledBackAt, live: registry.live(SLOT).id, atRollback };
  } finally {
    await pool.close();
  }
}

const describe = (steps: readonly Step[]) => steps.map((s) => `min ${s.minute.toFixed(1)}: ${s.call.action} ${s.call.model}: ${s.call.reason}`).join('\n');

test('after a planted drift, a challenger trained on the drifted market is promoted, with lower error than the stale champion on the same predictions', async () => {
  // The market flips at 20 min; the recorder's last 40 minutes of it train the challenger, which shadows from 60 min; at 110 min the market turns back.
  const market = simulateDataset({ ...options, seed: 31, seconds: 150 * 60, drift: { atSeconds: 20 * 60, dynamics: FLIP } });
  const recent = between(market, minutes(20), minutes(60));
  const challenger = challengerOn(recent, 'after-drift');
  const run = await contest(market, challenger, minutes(60));
  console.log(describe(run.steps));
  const promoted = run.steps.find((s) => s.call.action === 'promote');
  assert.ok(promoted?.score, `promoted:\n${describe(run.steps)}`);
  const [stale, fresh] = promoted.score.paired.rmse;
  assert.ok(fresh < stale, `lower error than the stale champion over the same ${promoted.score.paired.n} predictions: ${fresh} vs ${stale}`);
  assert.ok(promoted.minute - 60 <= 30, `promoted within 30 minutes of shadowing (at ${promoted.minute})`);
  assert.equal(run.live, run.promotedId, 'the new champion serves to the end: no drift back in this market');
});

test('with no drift a challenger trained on the same kind of market is never promoted over two hours of shadowing', async () => {
  const market = simulateDataset({ ...options, seed: 41, seconds: 150 * 60 });
  const challenger = challengerOn(between(market, 0, minutes(30)), 'no-drift');
  const run = await contest(market, challenger, minutes(30));
  console.log(describe(run.steps));
  assert.equal(run.promotedAt, undefined, `no promotion:\n${describe(run.steps)}`);
  assert.equal(run.live, run.champion);
});

test('a bad challenger (trained on the flipped market, shadowing a normal one) is rejected, never promoted', async () => {
  const flipped = simulateDataset({ ...options, seed: 51, seconds: 60 * 60, drift: { atSeconds: 1, dynamics: FLIP } });
  const challenger = challengerOn(flipped, 'bad');
  const market = simulateDataset({ ...options, seed: 52, seconds: 60 * 60 });
  const run = await contest(market, challenger, minutes(5));
  console.log(describe(run.steps));
  assert.equal(run.promotedAt, undefined);
  assert.equal(run.steps.at(-1)?.call.action, 'reject', describe(run.steps));
  assert.equal(run.live, run.champion);
});

test('a promoted model that turns out bad (forced in by an operator: trained on the flipped market, serving a normal one) is rolled back to the champion it replaced', async () => {
  const flipped = simulateDataset({ ...options, seed: 61, seconds: 60 * 60, drift: { atSeconds: 1, dynamics: FLIP } });
  const bad = challengerOn(flipped, 'forced');
  const market = simulateDataset({ ...options, seed: 62, seconds: 60 * 60 });
  const run = await contest(market, bad, minutes(5), true);
  assert.ok(run.promotedAt !== undefined && run.promotedId?.endsWith('@forced'));
  assert.ok(run.rolledBackAt !== undefined, 'rolled back');
  const e = run.atRollback!;
  console.log(`rolled back ${(run.rolledBackAt - run.promotedAt) / 60_000} min after the promotion: live RMSE ${e.rmse.toFixed(3)} against zero's ${e.zeroRmse.toFixed(3)}, DM ${e.dmVsZero.toFixed(2)}`);
  assert.ok(e.rmse > e.zeroRmse && e.dmVsZero > 2.33);
  assert.equal(run.live, run.champion, 'the champion it replaced serves again');
});

/** Stands in for the market-data components: the instruments and the live feature schema, as they provide them. */
function standIn(symbols: readonly string[]): { marketData: ChildSpec } {
  const engine = new FeatureEngine(symbols.length, DEFAULT_FEATURE_OPTIONS);
  const marketData: ChildSpec = {
    id: 'market',
    logic: serviceLogic(async (ctx) => {
      ctx.provide('featureEngine', engine);
      ctx.provide('instruments', { symbols, booked: symbols.map(() => true) });
      return { stop() {} };
    }),
    contract: { provides: ['featureEngine', 'instruments'], needs: [], publishes: [], reads: [], hears: [] },
  };
  return { marketData };
}

test('in the daemon: the predictor component says every step on models.event, with the figures, and the journal records each', async () => {
  const market = simulateDataset({ ...options, seed: 31, seconds: 90 * 60, drift: { atSeconds: 20 * 60, dynamics: FLIP } });
  const challenger = challengerOn(between(market, minutes(20), minutes(50)), 'daemon');
  const { marketData } = standIn(market.symbols);
  const tree = startTree(
    {
      children: [
        componentSpec('journal', 'journal', { settings: journalSettings.parse({ path: join(dir, 'daemon.journal'), fsync: false }) }),
        marketData,
        // threadAbove 0: the monitor on its own thread, as a large universe has it.
        componentSpec('predictor', 'predictor', { settings: predictorSettings.parse({ horizons: { '10s': { base: [SHIPPED] } }, workers: 0, latencyBudgetMs: 10_000, drift: { threadAbove: 0 } }), dependsOn: ['market', 'journal'] }),
      ],
    },
    systemClock,
  );
  const events: ModelEvent[] = [];
  tree.bus.subscribe(MODEL_EVENT_TOPIC, (e) => events.push(e));
  // Each frame is published once the last one's predictions are out and its drift monitor has watched it, as a 1 s clock would leave time for.
  let predicted: () => void = () => {};
  tree.bus.subscribe(PREDICTIONS_TOPIC, () => predicted());
  // Published once durable in the journal.
  const journaled: string[] = [];
  tree.bus.subscribe(JOURNAL_RECORD_TOPIC, ({ record: r }) => r.type === 'model' && journaled.push(`${r.kind} ${r.model}`));
  try {
    await until(() => tree.phase() === 'running', 'the tree to run', 15_000);
    assert.ok(tree.services.current('predictor')!.monitor instanceof MonitorThread, 'the monitor has its own thread');
    const frames = framesOf(market);
    for (const [k, frame] of frames.entries()) {
      if (frame.at === minutes(50)) await tree.services.current('predictor')!.registry.shadow(SLOT, challenger, 1);
      const out = new Promise<void>((resolve, reject) => {
        const late = setTimeout(() => reject(new Error(`no prediction for frame ${k} in 10 s`)), 10_000);
        predicted = () => (clearTimeout(late), resolve());
      });
      tree.bus.publish(FEATURES_TOPIC, frame);
      await out;
      await tree.services.current('predictor')!.monitor.caughtUp();
    }
    const kinds = events.map((e) => e.kind);
    console.log(events.map((e) => `${e.kind} ${e.model}: ${e.reason}`).join('\n'));
    for (const kind of ['drift', 'beyond-bound', 'shadowing', 'promoted'] as const) assert.ok(kinds.includes(kind), `a ${kind} event: ${kinds.join(', ')}`);
    const promoted = events.find((e) => e.kind === 'promoted')!;
    assert.match(promoted.reason, /^10s\/base\/0: better with 99 % confidence: RMSE [\d.]+ against the champion's [\d.]+ on \d+ predictions over \d+ frames, Diebold-Mariano -[\d.]+$/);
    assert.equal(tree.services.current('predictor')!.registry.live(SLOT).id, 'gbdt-base-10s@daemon');
    await until(() => journaled.length >= events.length, 'the journal to catch up', 5_000);
    assert.deepEqual(journaled, events.map((e) => `${e.kind} ${e.model}`), 'every event journaled, in order');
    assert.ok(tree.inspection.events().some((e) => e.kind === 'model' && e.text === `model gbdt-base-10s@daemon promoted: ${promoted.reason}`), "in the inspector's event log too");
  } finally {
    tree.actor.send({ type: 'shutdown' });
    await until(() => tree.done, 'the tree to stop', 10_000);
  }
});

test('the retrainer trains a challenger from the recorder\'s recent recordings in a child process when the slot drifts, and the predictor shadows it', async () => {
  const recordings = join(dir, 'recordings');
  mkdirSync(recordings, { recursive: true });
  await recordSimulatedMarket(join(recordings, 'keel-session.keelrec'), { seed: 71, instruments: 3, seconds: 40 * 60, updatesPerSecond: 50, wallAt: Date.now() - 40 * 60_000, drift: { atSeconds: 1, dynamics: FLIP } });
  const { marketData } = standIn(['SPY', 'QQQ', 'AAPL']);
  const tree = startTree(
    {
      children: [
        marketData,
        componentSpec('predictor', 'predictor', { settings: predictorSettings.parse({ horizons: { '10s': { base: [SHIPPED] } }, workers: 0, latencyBudgetMs: 10_000 }), dependsOn: ['market'] }),
        componentSpec('retrainer', 'retrainer', { settings: retrainerSettings.parse({ recordings, lookbackMinutes: 60, out: join(dir, 'retrained'), minIntervalMinutes: 0 }), dependsOn: ['predictor'] }),
      ],
    },
    systemClock,
  );
  const events: ModelEvent[] = [];
  tree.bus.subscribe(MODEL_EVENT_TOPIC, (e) => events.push(e));
  try {
    await until(() => tree.phase() === 'running', 'the tree to run', 15_000);
    assert.ok(!(tree.services.current('predictor')!.monitor instanceof MonitorThread), 'three instruments: the monitor on the main thread');
    const registry = tree.services.current('predictor')!.registry;
    const champion = registry.live(SLOT).id;
    // As the predictor says it when its monitor sees the drift.
    tree.bus.publish(MODEL_EVENT_TOPIC, { at: 0, model: champion, kind: 'drift', reason: 'drifting on 3 instruments' });
    await until(() => events.some((e) => e.kind === 'trained' || e.kind === 'training-failed'), 'the training to end', 120_000);
    console.log(events.map((e) => `${e.kind} ${e.model}: ${e.reason}`).join('\n'));
    const trained = events.find((e) => e.kind === 'trained');
    assert.ok(trained, events.map((e) => e.reason).join('\n'));
    assert.match(trained.reason, /^10s\/base\/0: trained \(drift: drifting on 3 instruments\) on keel test-recorder .*keel-session\.keelrec.*; held out RMSE [\d.]+ against the zero forecast's [\d.]+; now shadowing gbdt-base-10s@seed-20261121$/);
    assert.match(trained.model, /^gbdt-base-10s@retrained-\d{8}T\d{6}Z$/);
    assert.equal(registry.shadowOf(SLOT)?.model.id, trained.model, 'the predictor shadows it; the referee takes it from there');
    assert.ok(events.some((e) => e.kind === 'shadowing' && e.model === trained.model));
  } finally {
    tree.actor.send({ type: 'shutdown' });
    await until(() => tree.done, 'the tree to stop', 10_000);
  }
});
