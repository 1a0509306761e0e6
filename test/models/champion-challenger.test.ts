/**
 * Champion and challenger on the real parts: the simulator's market through
 * keel's features, models trained by keel's own recipe on it, served by the
 * real predictor (onnxruntime sessions), the challenger in the registry's
 * shadow, judged by the monitor's paired scores (promotion.ts). Everything
 * is counted in frames of market time.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import pino from 'pino';
import { DEFAULT_FEATURE_OPTIONS, featureSchema, type FeatureFrame } from '../../src/market/features.js';
import { between, eachFrame, type Dataset } from '../../src/models/dataset.js';
import { InferencePool } from '../../src/models/inference/pool.js';
import { DEFAULT_MONITOR, ModelMonitor, type ChallengerScore } from '../../src/models/monitor.js';
import { TieredPredictor } from '../../src/models/predictor.js';
import { DEFAULT_PROMOTION, judgeChallenger, type Verdict } from '../../src/models/promotion.js';
import { ModelRegistry } from '../../src/models/registry.js';
import { trainModels } from '../../src/models/train.js';
import { simulateDataset } from '../../src/models/training-data.js';
import type { Dynamics } from '../../src/sim/market.js';

const SHIPPED = 'models/gbdt-base-10s/manifest.json';
const SLOT = 'base/0';
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
  readonly verdict: Verdict;
  readonly score: ChallengerScore;
}

/**
 * Serves `data` with the shipped GBDT; `challenger` shadows it on every
 * instrument from `shadowFrom` and is judged every `minFrames` frames as
 * the daemon does; a promoted model on probation is rolled back when it
 * goes beyond its bound. Returns the verdicts and what the slot held.
 */
async function contest(data: Dataset, challenger: string, shadowFrom: number, force = false) {
  const pool = await InferencePool.start({ workers: 0, timeoutMs: 30_000 });
  try {
    const silent = pino({ level: 'silent' });
    const registry = new ModelRegistry(pool, schema, silent, { latencyBudgetMs: 10_000, maxWindow: 16 });
    const monitor = new ModelMonitor(data.symbols, schema.features.length, data.sampleMs, DEFAULT_MONITOR);
    const predictor = new TieredPredictor(registry, schema, data.symbols, { tiers: { base: [SHIPPED], sectors: {}, sectorCacheSize: 1 }, historyFrames: 16, monitor }, silent, () => 0);
    await predictor.start();
    const champion = registry.live(SLOT).id;
    const frames: FeatureFrame[] = [];
    eachFrame(data, (f) => frames.push({ intervalMs: data.sampleMs, at: f.at, wallAt: f.at, schema, symbols: data.symbols, values: f.values.slice(), warm: f.warm.slice(), base: false }));
    const steps: Step[] = [];
    let shadowedFor = -1;
    let promotedAt: number | undefined;
    let promotedId: string | undefined;
    let rolledBackAt: number | undefined;
    let atRollback: ReturnType<ModelMonitor['liveError']>;
    for (const frame of frames) {
      if (frame.at === shadowFrom) {
        await registry.shadow(SLOT, challenger, 1);
        shadowedFor = 0;
        if (force) {
          // An operator's force: promoted at once, on probation like any promotion.
          registry.promote(SLOT);
          promotedAt = frame.at;
          promotedId = registry.live(SLOT).id;
        }
      }
      await predictor.predict(frame);
      if (shadowedFor >= 0 && registry.shadowOf(SLOT)) {
        shadowedFor++;
        if (shadowedFor % DEFAULT_PROMOTION.minFrames === 0) {
          const score = monitor.challenger(SLOT)!;
          const verdict = judgeChallenger(score.paired, shadowedFor, DEFAULT_PROMOTION);
          steps.push({ minute: frame.at / 60_000, verdict, score });
          if (verdict.kind === 'promote') {
            registry.promote(SLOT);
            promotedAt = frame.at;
            promotedId = registry.live(SLOT).id;
          } else if (verdict.kind === 'reject') {
            shadowedFor = -1;
            registry.endShadow(SLOT, verdict.reason);
          }
        }
      }
      if (promotedAt !== undefined && rolledBackAt === undefined && frame.at - promotedAt <= DEFAULT_PROMOTION.probationFrames * data.sampleMs && monitor.beyondBound(promotedId!)) {
        atRollback = monitor.liveError(promotedId!);
        registry.rollback(SLOT);
        rolledBackAt = frame.at;
      }
    }
    return { champion, steps, promotedAt, promotedId, rolledBackAt, live: registry.live(SLOT).id, atRollback };
  } finally {
    await pool.close();
  }
}

const describe = (steps: readonly Step[]) => steps.map((s) => `min ${s.minute.toFixed(1)}: ${s.verdict.kind}: ${s.verdict.reason}`).join('\n');

test('after a planted drift, a challenger trained on the drifted market is promoted, with lower error than the stale champion on the same predictions', async () => {
  // The market flips at 20 min; the recorder's last 40 minutes of it train the challenger, which shadows from 60 min; at 110 min the market turns back.
  const market = simulateDataset({ ...options, seed: 31, seconds: 150 * 60, drift: { atSeconds: 20 * 60, dynamics: FLIP } });
  const recent = between(market, minutes(20), minutes(60));
  const challenger = challengerOn(recent, 'after-drift');
  const run = await contest(market, challenger, minutes(60));
  console.log(describe(run.steps));
  const promoted = run.steps.find((s) => s.verdict.kind === 'promote');
  assert.ok(promoted, `promoted:\n${describe(run.steps)}`);
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
  assert.equal(run.steps.at(-1)?.verdict.kind, 'reject', describe(run.steps));
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
