/**
 * swap-model through the real inspector control path, on the shipped demo
 * models: a model that does not fit its slot (another family, other inputs)
 * or that its tier already serves is refused, naming both sides, and the
 * ensemble keeps averaging what it averaged; the inspector shows each slot's
 * model and family.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { DEFAULT_FEATURE_OPTIONS, featureSchema, type FeatureFrame } from '../../src/market/features.js';
import { InferencePool } from '../../src/models/inference/pool.js';
import type { Manifest } from '../../src/models/manifest.js';
import { TieredPredictor, type PredictorStatus } from '../../src/models/predictor.js';
import { ModelRegistry } from '../../src/models/registry.js';
import { MODEL_SWAP_TOPIC } from '../../src/topics.js';
import { control, startInspected, StreamClient } from '../support/inspector.js';
import { single } from '../support/predictions.js';

const GBDT = 'models/gbdt-base-10s/manifest.json';
const LSTM = 'models/lstm-base-10s/manifest.json';
const HIGH_VOL = 'models/gbdt-highvol-10s/manifest.json';
const GBDT_ID = 'gbdt-base-10s@seed-20261121';
const LSTM_ID = 'lstm-base-10s@seed-20261121';

const schema = featureSchema(DEFAULT_FEATURE_OPTIONS);
const gbdt = JSON.parse(readFileSync(GBDT, 'utf8')) as Manifest;
let daemon: Awaited<ReturnType<typeof startInspected>>;
let pool: InferencePool;
let registry: ModelRegistry;
let predictor: TieredPredictor;

before(async () => {
  daemon = await startInspected([]);
  pool = await InferencePool.start({ workers: 1, timeoutMs: 10_000 });
  registry = new ModelRegistry(pool, schema, pino({ level: 'silent' }), { latencyBudgetMs: 10_000, maxWindow: 32 });
  // As the predictor actor does: swaps and refusals reach the inspector's event log.
  registry.onSwap((event) => daemon.bus.publish(MODEL_SWAP_TOPIC, event));
  predictor = new TieredPredictor(registry, schema, ['SPY'], { horizons: [{ horizonMs: 10_000, tiers: { base: [GBDT, LSTM], sectors: {}, sectorCacheSize: 1 } }], historyFrames: 32 }, pino({ level: 'silent' }), () => 0);
  await predictor.start();
  const status = { registry, predictor, intervalMs: 1_000, frames: 0, skipped: 0, late: 0, faults: [], unavailable: [], lastAt: NaN, monitor: { skipped: 0, caughtUp: () => Promise.resolve() } } as PredictorStatus;
  daemon.services.provide('test', 'predictor', status);
});
after(async () => {
  await daemon.stop();
  await pool.close();
});

/** Row `r` of the GBDT's golden inputs as a features frame (columns the models do not read stay 0). */
function goldenFrame(r: number, at: number): FeatureFrame {
  const f = gbdt.input.features.length;
  const values = new Float64Array(schema.features.length);
  gbdt.input.features.forEach((name, k) => (values[schema.features.indexOf(name)] = gbdt.golden!.input[r * f + k]!));
  return { intervalMs: 1_000, at, wallAt: at, schema, symbols: ['SPY'], values, warm: Uint8Array.of(1), base: false };
}

/** What the base tier answers after ten golden frames, and what its two members answer alone on the same inputs. */
async function baseTier() {
  const f = gbdt.input.features.length;
  const rows = gbdt.golden!.output.length;
  let p;
  for (let n = 0; n < 10; n++) p = await predictor.predict(goldenFrame(n % rows, n));
  const lstm = registry.live('10s/base/1');
  const std = lstm.manifest.input.standardize!;
  const window = Float32Array.from({ length: 10 * f }, (_, i) => (gbdt.golden!.input[(i / f | 0) % rows * f + (i % f)]! - std.mean[i % f]!) / std.std[i % f]!);
  const alone = (await registry.run(lstm, window, 1)).outputs.prediction![0]!;
  return { p: p!, gbdt: gbdt.golden!.output[9 % rows]!, lstm: alone };
}

test('swap-model of lstm-base-10s into the GBDT slot is refused, naming both; the ensemble still averages the GBDT and the LSTM', async () => {
  const refused = await control(daemon.url, 'swap-model', { path: LSTM, slot: '10s/base/0' }, daemon.token);
  assert.equal(refused.status, 409, JSON.stringify(refused.body));
  const error = String(refused.body.error);
  for (const said of ['slot 10s/base/0', GBDT_ID, `${GBDT_ID} (family tree-ensemble, input 1 frame x 11 features)`, `${LSTM_ID} is family lstm, input 10 frames x the same 11 features`]) {
    assert.ok(error.includes(said), `the error says "${said}": ${error}`);
  }
  assert.equal(registry.live('10s/base/0').id, GBDT_ID, 'the GBDT still holds its slot');
  assert.equal(registry.previous('10s/base/0'), undefined, 'nothing to roll back: nothing was swapped');

  const { p, gbdt: g, lstm } = await baseTier();
  assert.equal(single(p).models[0], `${GBDT_ID}+${LSTM_ID}`, 'both members answered, each once');
  assert.ok(Math.abs(single(p).value[0]! - (g + lstm) / 2) < 1e-5, `the mean of the GBDT (${g}) and the LSTM (${lstm}), got ${single(p).value[0]}`);
  assert.ok(Math.abs(g - lstm) > 1e-3, 'the two members differ, so the mean tells them apart');
});

test('the inspector shows each slot with its model, family and input; the refusal is in its event log', async () => {
  const client = new StreamClient(daemon.url);
  try {
    await client.open;
    await client.waitFor('a snapshot', () => client.of('snapshot').length > 0);
    const snapshot = client.of('snapshot')[0]!;
    const slots = snapshot.panels.models!;
    assert.deepEqual(
      slots.map(({ drift: _, ...slot }) => slot),
      [
        { slot: '10s/base/0', model: GBDT_ID, family: 'tree-ensemble', input: '1 x 11', previous: null, shadow: null },
        { slot: '10s/base/1', model: LSTM_ID, family: 'lstm', input: '10 x 11', previous: null, shadow: null },
      ],
    );
    // Drift figures come with the predictor's first report (every 10 frames): none yet, or the models' 10 s horizon.
    for (const s of slots) assert.ok(s.drift === null || s.drift.horizonMs === 10_000, JSON.stringify(s.drift));
    const refusal = snapshot.events.find((e) => e.kind === 'model' && e.text.startsWith('model refused in 10s/base/0'));
    assert.ok(refusal, JSON.stringify(snapshot.events));
    assert.ok(refusal.text.includes('is family lstm'), refusal.text);
  } finally {
    client.close();
  }
});

test('a swap that would make a tier average one model twice is refused; one that fits its slot goes through', async () => {
  // A tier of two tree ensembles over the same inputs: either may take the other's place, but not both at once.
  await registry.install('pair/0', GBDT);
  await registry.install('pair/1', HIGH_VOL);
  const twice = await control(daemon.url, 'swap-model', { path: GBDT, slot: 'pair/1' }, daemon.token);
  assert.equal(twice.status, 409, JSON.stringify(twice.body));
  assert.match(String(twice.body.error), new RegExp(`tier pair would average one model twice: pair/0 already serves ${GBDT_ID} \\(the same name as ${GBDT_ID}\\)`));
  assert.equal(registry.live('pair/1').id, 'gbdt-highvol-10s@seed-20261121');

  // The same family over the same inputs, but trained for another horizon: a 10 s slot takes only a 10 s model.
  const later = await control(daemon.url, 'swap-model', { path: 'models/gbdt-base-5m/manifest.json', slot: '10s/base/0' }, daemon.token);
  assert.equal(later.status, 409, JSON.stringify(later.body));
  assert.match(String(later.body.error), /gbdt-base-5m\/manifest\.json refused: forecasts 5m ahead; this slot serves the 10s horizon/);
  assert.equal(registry.live('10s/base/0').id, GBDT_ID);

  const fits = await control(daemon.url, 'swap-model', { path: HIGH_VOL, slot: '10s/base/0' }, daemon.token);
  assert.equal(fits.status, 200, JSON.stringify(fits.body));
  assert.deepEqual(fits.body, { ok: true, command: 'swap-model', slot: '10s/base/0', from: GBDT_ID, to: 'gbdt-highvol-10s@seed-20261121' });
  const back = await control(daemon.url, 'rollback-model', { slot: '10s/base/0' }, daemon.token);
  assert.equal(back.status, 200, JSON.stringify(back.body));
  assert.equal(registry.live('10s/base/0').id, GBDT_ID);
});

test('an operator shadows a challenger, vetoes it, shadows it again and forces its promotion through the control API', async () => {
  const shadowed = await control(daemon.url, 'shadow-model', { path: HIGH_VOL, slot: '10s/base/0' }, daemon.token);
  assert.equal(shadowed.status, 200, JSON.stringify(shadowed.body));
  assert.deepEqual(shadowed.body, { ok: true, command: 'shadow-model', slot: '10s/base/0', live: GBDT_ID, challenger: 'gbdt-highvol-10s@seed-20261121' });
  assert.equal(registry.shadowOf('10s/base/0')?.model.id, 'gbdt-highvol-10s@seed-20261121');

  const veto = await control(daemon.url, 'veto-model', { slot: '10s/base/0', reason: 'trained on a holiday' }, daemon.token);
  assert.deepEqual(veto.body, { ok: true, command: 'veto-model', slot: '10s/base/0', vetoed: 'gbdt-highvol-10s@seed-20261121' });
  assert.equal(registry.shadowOf('10s/base/0'), undefined);
  const again = await control(daemon.url, 'veto-model', { slot: '10s/base/0' }, daemon.token);
  assert.equal(again.status, 409);
  assert.match(String(again.body.error), /slot 10s\/base\/0 has no challenger/);
  const nothing = await control(daemon.url, 'promote-model', { slot: '10s/base/0' }, daemon.token);
  assert.equal(nothing.status, 409);
  assert.match(String(nothing.body.error), /promotion refused: slot 10s\/base\/0 has no shadow candidate to promote/);

  await control(daemon.url, 'shadow-model', { path: HIGH_VOL, slot: '10s/base/0' }, daemon.token);
  const forced = await control(daemon.url, 'promote-model', { slot: '10s/base/0', reason: 'the market changed' }, daemon.token);
  assert.deepEqual(forced.body, { ok: true, command: 'promote-model', slot: '10s/base/0', from: GBDT_ID, to: 'gbdt-highvol-10s@seed-20261121' });
  assert.equal(registry.live('10s/base/0').id, 'gbdt-highvol-10s@seed-20261121');
  assert.equal((await control(daemon.url, 'rollback-model', { slot: '10s/base/0' }, daemon.token)).status, 200);
  assert.equal(registry.live('10s/base/0').id, GBDT_ID);
});
