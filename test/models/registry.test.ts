import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { DEFAULT_FEATURE_OPTIONS, type FeatureFrame, featureSchema } from '../../src/market/features.js';
import { InferencePool } from '../../src/models/inference/pool.js';
import { ModelRefused } from '../../src/models/manifest.js';
import { DEFAULT_MONITOR } from '../../src/models/monitor.js';
import { MonitorThread } from '../../src/models/monitor-thread.js';
import { TieredPredictor, type PredictionFrame } from '../../src/models/predictor.js';
import { ModelRegistry, type SwapEvent } from '../../src/models/registry.js';
import type { TierConfig } from '../../src/models/tiers.js';
import { affine, writeAffineModel } from '../support/models.js';
import { single } from '../support/predictions.js';

const schema = featureSchema(DEFAULT_FEATURE_OPTIONS);
const FEATURES = ['imbalance_l1', 'ofi', 'spread_bps'];
const W1 = [1, 2, 3];
const W2 = [-1, 0.5, 4];
const log = pino({ level: 'silent' });
let dir: string;
let pool: InferencePool;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'keel-registry-'));
  pool = await InferencePool.start({ workers: 2, timeoutMs: 5_000 });
});
after(async () => {
  await pool.close();
  rmSync(dir, { recursive: true, force: true });
});

const registry = () => new ModelRegistry(pool, schema, log, { latencyBudgetMs: 5_000, maxWindow: 8 });
const model = (version: string, weights = W1, extra: Partial<Parameters<typeof writeAffineModel>[1]> = {}) =>
  writeAffineModel(dir, { name: 'lin', version, features: FEATURES, weights, bias: 0.25, ...extra });

function frame(symbols: string[], fill: (instrument: number, feature: string) => number, at: number, warm = symbols.map(() => 1)): FeatureFrame {
  const width = schema.features.length;
  const values = new Float64Array(symbols.length * width);
  symbols.forEach((_, i) => schema.features.forEach((f, k) => (values[i * width + k] = fill(i, f))));
  return { intervalMs: 1_000, at, wallAt: at, schema, symbols, values, warm: Uint8Array.from(warm), base: false };
}

const inputsOf = (f: FeatureFrame, i: number) => FEATURES.map((name) => f.values[i * schema.features.length + schema.features.indexOf(name)]!);

test('a swapped model serves the next batch; rollback brings the previous one back', async () => {
  const reg = registry();
  const events: SwapEvent[] = [];
  reg.onSwap((e) => events.push(e));
  await reg.install('10s/base/0', model('1'));
  const x = Float32Array.from([1, 2, 3, -1, 0, 2]);
  const run = async () => Array.from((await reg.run(reg.live('10s/base/0'), x.slice(), 2)).outputs.prediction!);
  assert.deepEqual(await run(), [affine(W1, 0.25, x, 0), affine(W1, 0.25, x, 3)]);
  assert.deepEqual(await reg.swap('10s/base/0', model('2', W2)), { from: 'lin@1', to: 'lin@2' });
  assert.deepEqual(await run(), [affine(W2, 0.25, x, 0), affine(W2, 0.25, x, 3)]);
  assert.deepEqual(reg.rollback('10s/base/0'), { from: 'lin@2', to: 'lin@1' });
  assert.deepEqual(await run(), [affine(W1, 0.25, x, 0), affine(W1, 0.25, x, 3)]);
  assert.deepEqual(
    events.map((e) => `${e.action} ${e.to}`),
    ['install lin@1', 'swap lin@2', 'rollback lin@1'],
  );
});

test('each bad candidate is refused with its reason and the live model keeps answering', async () => {
  const reg = registry();
  await reg.install('10s/base/0', model('1'));
  const garbage = new Uint8Array(256).map((_, i) => (i * 37) & 0xff);
  const tampered = model('tampered');
  writeFileSync(join(dir, 'lin-tampered', 'model.onnx'), Buffer.concat([readFileSync(join(dir, 'lin-tampered', 'model.onnx')), Buffer.from([0])]));
  const cases: [string, string, RegExp][] = [
    ['corrupt file', model('corrupt', W1, { bytes: garbage }), /onnxruntime cannot load/],
    ['checksum', tampered, /checksum mismatch/],
    ['wrong input shape', model('shape', W1, { fileWeights: [1, 2] }), /golden inputs failed/],
    ['NaN outputs', model('nan', W1, { fileWeights: [NaN, 1, 1] }), /golden inputs failed \(non-finite\)/],
    ['not the file the manifest describes', model('other', W1, { fileWeights: W2 }), /golden row 0 gave/],
    ['unknown feature', writeAffineModel(dir, { name: 'lin', version: 'feat', features: ['imbalance_l1', 'gamma_exposure', 'ofi'], weights: W1, bias: 0 }), /reads gamma_exposure/],
    ['other schema', model('schema', W1, { manifest: { featureSchema: { name: 'keel.microstructure', version: 99 } } }), /feature schema keel.microstructure v99/],
    ['window too long', model('window', W1, { manifest: { input: { name: 'input', features: FEATURES, window: 50 }, golden: undefined } }), /window of 50 frames/],
    ['missing manifest', join(dir, 'nowhere', 'manifest.json'), /cannot read manifest/],
  ];
  for (const [what, path, reason] of cases) {
    await assert.rejects(reg.swap('10s/base/0', path), (err: Error) => {
      assert.ok(err instanceof ModelRefused, `${what}: ${err.message}`);
      assert.match(err.message, reason, what);
      return true;
    });
    assert.equal(reg.live('10s/base/0').id, 'lin@1', `${what}: the live model is unchanged`);
    const out = await reg.run(reg.live('10s/base/0'), Float32Array.from([1, 1, 1]), 1);
    assert.equal(out.outputs.prediction![0], affine(W1, 0.25, [1, 1, 1]), `${what}: the live model still answers`);
  }
  assert.equal(reg.previous('10s/base/0'), undefined, 'no refused candidate became the rollback target');
});

test('a swap under load loses no prediction and never mixes versions within a batch', async () => {
  const reg = registry();
  const symbols = ['SPY', 'QQQ', 'AAPL', 'MSFT', 'IWM'];
  const tiers: TierConfig = { base: [model('1')], sectors: {}, sectorCacheSize: 1 };
  const predictor = new TieredPredictor(reg, schema, symbols, { horizons: [{ horizonMs: 10_000, tiers }], historyFrames: 4 }, log, () => 0);
  await predictor.start();
  const v2 = model('2', W2);
  const pending: { frame: FeatureFrame; inputs: number[][]; result: Promise<PredictionFrame> }[] = [];
  let swap: Promise<unknown> | undefined;
  for (let n = 0; n < 300; n++) {
    const f = frame(symbols, (i, name) => Math.sin(n * 7 + i * 3 + name.length), n);
    pending.push({ frame: f, inputs: symbols.map((_, i) => inputsOf(f, i)), result: predictor.predict(f) });
    if (n === 20) swap = reg.swap('10s/base/0', v2);
    if (n % 10 === 0) await new Promise((r) => setImmediate(r));
  }
  await swap;
  for (let n = 300; n < 320; n++) {
    const f = frame(symbols, (i) => i + n, n);
    pending.push({ frame: f, inputs: symbols.map((_, i) => inputsOf(f, i)), result: predictor.predict(f) });
  }
  const versions = new Set<string>();
  for (const { inputs, result } of pending) {
    const out = await result;
    const p = single(out);
    const ids = new Set(p.models);
    assert.equal(ids.size, 1, `one version per batch, got ${[...ids].join(', ')}`);
    const id = p.models[0]!;
    versions.add(id);
    const w = id === 'lin@1' ? W1 : W2;
    inputs.forEach((x, i) => assert.ok(Math.abs(p.value[i]! - affine(w, 0.25, x)) < 1e-4, `instrument ${i} answered by ${id}`));
    assert.deepEqual(out.faults, []);
  }
  assert.deepEqual([...versions].sort(), ['lin@1', 'lin@2'], 'both versions served: the swap happened under load');
});

test('tiers: the specialist takes over above the volatility, sectors load on first use under an LRU cap', async () => {
  const reg = registry();
  const symbols = ['SPY', 'AAPL', 'MSFT', 'XOM'];
  const tiers: TierConfig = {
    base: [model('base')],
    sectors: { tech: { symbols: ['AAPL', 'MSFT'], models: [model('tech', W2)] }, energy: { symbols: ['XOM'], models: [model('energy', [0, 0, 1])] } },
    sectorCacheSize: 1,
    highVol: { feature: 'rv_1m', above: 50, models: [model('hv', [5, 5, 5])] },
  };
  const predictor = new TieredPredictor(reg, schema, symbols, { horizons: [{ horizonMs: 10_000, tiers }], historyFrames: 4 }, log, () => 0);
  await predictor.start();
  const vol = (hot: number) => (i: number, f: string) => (f === 'rv_1m' ? (i === hot ? 80 : 10) : 1);
  const noXom = [1, 1, 1, 0];
  const waitFor = async (sector: string) => {
    while (!predictor.horizons[0]!.tiers.loadedSectors().includes(sector)) await new Promise((r) => setTimeout(r, 5));
  };
  let p = single(await predictor.predict(frame(symbols, vol(0), 1, noXom)));
  assert.deepEqual(p.tier, ['high_vol', 'base', 'base', ''], 'tech not loaded yet: base serves it');
  await waitFor('tech');
  p = single(await predictor.predict(frame(symbols, vol(-1), 2, noXom)));
  assert.deepEqual(p.tier, ['base', 'sector:tech', 'sector:tech', '']);
  assert.equal(p.models[1], 'lin@tech');
  assert.equal(p.value[1], affine(W2, 0.25, [1, 1, 1]));
  p = single(await predictor.predict(frame(symbols, vol(-1), 3)));
  assert.equal(p.tier[3], 'base', 'energy loads on first use');
  await waitFor('energy');
  assert.deepEqual(predictor.horizons[0]!.tiers.loadedSectors(), ['energy'], 'cap 1: energy evicted tech');
  assert.equal(reg.has('10s/sector:tech/0'), false);
  p = single(await predictor.predict(frame(symbols, vol(-1), 4)));
  assert.deepEqual(p.tier, ['base', 'base', 'base', 'sector:energy'], 'tech waits for its turn again');
  p = single(await predictor.predict(frame(symbols, vol(3), 500)));
  assert.equal(p.tier[3], 'high_vol', 'the specialist outranks the sector');
  assert.equal(p.value[3], affine([5, 5, 5], 0.25, [1, 1, 1]));
});

test('shadow mode compares a candidate with the live model on a share of instruments, then promotes it', async () => {
  const reg = registry();
  const symbols = Array.from({ length: 40 }, (_, i) => `S${i}`);
  const predictor = new TieredPredictor(reg, schema, symbols, { horizons: [{ horizonMs: 10_000, tiers: { base: [model('1')], sectors: {}, sectorCacheSize: 1 } }], historyFrames: 2 }, log, () => 0);
  await predictor.start();
  await reg.shadow('10s/base/0', model('cand', [1, 2, 2.5]), 0.5);
  for (let n = 0; n < 10; n++) {
    const p = single(await predictor.predict(frame(symbols, (i, f) => Math.cos(i + n + f.length), n)));
    assert.ok(p.models.every((m) => m === 'lin@1'), 'the shadow never serves');
  }
  const report = reg.shadowReport('10s/base/0')!;
  assert.equal(report.candidate, 'lin@cand');
  assert.equal(report.batches, 10);
  assert.ok(report.rows > 40 && report.rows < 360, `about half of 40 instruments x 10 frames, got ${report.rows}`);
  assert.ok(report.signAgreement > 0.5 && report.signAgreement <= 1);
  assert.ok(report.meanAbsDiff > 0);
  assert.deepEqual(reg.promote('10s/base/0'), { from: 'lin@1', to: 'lin@cand' });
  const p = single(await predictor.predict(frame(symbols, () => 1, 99)));
  assert.ok(p.models.every((m) => m === 'lin@cand'));
  assert.equal(reg.rollback('10s/base/0').to, 'lin@1');
});

test('an instrument with a non-finite input sits the frame out alone; the rest of its batch is answered', async () => {
  const reg = registry();
  const symbols = ['SPY', 'QQQ', 'AAPL'];
  const predictor = new TieredPredictor(reg, schema, symbols, { horizons: [{ horizonMs: 10_000, tiers: { base: [model('1')], sectors: {}, sectorCacheSize: 1 } }], historyFrames: 2 }, log, () => 0);
  await predictor.start();
  const out = await predictor.predict(frame(symbols, (i, f) => (i === 1 && f === 'ofi' ? NaN : 1), 1));
  const p = single(out);
  assert.deepEqual(out.faults, []);
  assert.deepEqual(Array.from(p.value, Number.isFinite), [true, false, true]);
  assert.deepEqual(p.tier, ['base', '', 'base']);
  assert.equal(p.value[0], affine(W1, 0.25, [1, 1, 1]));
});

test('a batch that fails in a worker is a fault of its frame; the drift monitor\'s thread watches on', async () => {
  const reg = registry();
  const symbols = ['SPY', 'QQQ'];
  const failures: Error[] = [];
  const monitor = await MonitorThread.start(symbols, schema.features.length, 1_000, DEFAULT_MONITOR, (err) => failures.push(err));
  try {
    // inThreadMaxMs 0: every batch goes to a worker, which takes its instruments over.
    const predictor = new TieredPredictor(reg, schema, symbols, { horizons: [{ horizonMs: 10_000, tiers: { base: [model('1')], sectors: {}, sectorCacheSize: 1 } }], historyFrames: 2, inThreadMaxMs: 0, monitor }, log, () => 0);
    await predictor.start();
    // Finite inputs whose answer overflows float32: the worker's run fails as non-finite.
    const overflow = await predictor.predict(frame(symbols, () => 1e38, 1));
    assert.equal(predictor.paths.workers.batches, 0, 'the failed batch is not counted as run');
    assert.deepEqual(overflow.faults.map((f) => f.replace(/:.*/, '')), ['lin@1']);
    assert.match(overflow.faults[0]!, /non-finite|Infinity/);
    assert.deepEqual(Array.from(single(overflow).value, Number.isFinite), [false, false]);
    const next = await predictor.predict(frame(symbols, () => 1, 2));
    assert.deepEqual(next.faults, []);
    assert.equal(single(next).value[0], affine(W1, 0.25, [1, 1, 1]));
    await monitor.caughtUp();
    assert.deepEqual(failures, []);
    assert.equal(monitor.skipped, 0);
    assert.deepEqual((await monitor.report()).map((m) => m.id), ['lin@1']);
  } finally {
    await monitor.close();
  }
});

test('a refused start model is left out: its tier serves with the rest, an empty specialist hands its instruments to base', async () => {
  const reg = registry();
  const symbols = ['SPY', 'QQQ'];
  const corrupt = writeAffineModel(dir, { name: 'corrupt', version: '1', features: FEATURES, weights: W1, bias: 0, bytes: new Uint8Array([1, 2, 3, 4]) });
  const mismatch = model('mismatch');
  writeFileSync(mismatch, JSON.stringify({ ...JSON.parse(readFileSync(mismatch, 'utf8')), sha256: '0'.repeat(64) }));
  const tiers: TierConfig = { base: [model('good'), corrupt], sectors: {}, sectorCacheSize: 1, highVol: { feature: 'rv_1m', above: 50, models: [mismatch] } };
  const predictor = new TieredPredictor(reg, schema, symbols, { horizons: [{ horizonMs: 10_000, tiers }], historyFrames: 4 }, log, () => 0);
  await predictor.start();
  assert.deepEqual(reg.slotNames(), ['10s/base/0']);
  assert.deepEqual(
    predictor.unavailable.map((u) => [u.slot, u.manifest, u.retryable]),
    [
      ['10s/base/1', corrupt, false],
      ['10s/high_vol/0', mismatch, false],
    ],
  );
  assert.match(predictor.unavailable[0]!.reason, /^onnxruntime cannot load model\.onnx/);
  assert.match(predictor.unavailable[1]!.reason, /^checksum mismatch/);
  // SPY is above the specialist's threshold, but the specialist has no model: base serves it, with its one good member.
  const f = frame(symbols, (i, name) => (name === 'rv_1m' ? (i === 0 ? 80 : 10) : i + 1), 1);
  const out = await predictor.predict(f);
  const p = single(out);
  assert.deepEqual(p.tier, ['base', 'base']);
  assert.deepEqual(p.models, ['lin@good', 'lin@good']);
  assert.deepEqual(out.faults, []);
  assert.equal(p.value[0], affine(W1, 0.25, inputsOf(f, 0)));
});

test('a swap must read what its slot reads: other features or another order are refused, naming both; the live model keeps serving', async () => {
  const reg = registry();
  await reg.install('10s/base/0', model('1'));
  assert.equal(reg.live('10s/base/0').family, 'other', 'no tree ensemble or recurrent operator');
  const cases: [string, string, RegExp][] = [
    ['another order', writeAffineModel(dir, { name: 'lin', version: 'order', features: ['ofi', 'imbalance_l1', 'spread_bps'], weights: W1, bias: 0 }), /input 1 frame x 3 features, input 1 being ofi where lin@1 reads imbalance_l1/],
    ['fewer features', writeAffineModel(dir, { name: 'lin', version: 'fewer', features: ['imbalance_l1', 'ofi'], weights: [1, 2], bias: 0 }), /input 1 frame x 2 features, input 3 being none where lin@1 reads spread_bps/],
  ];
  for (const [what, path, reason] of cases) {
    await assert.rejects(reg.swap('10s/base/0', path), (err: Error) => {
      assert.ok(err instanceof ModelRefused, `${what}: ${err.message}`);
      assert.match(err.message, /slot 10s\/base\/0 serves lin@1 \(family other, input 1 frame x 3 features\)/, what);
      assert.match(err.message, reason, what);
      return true;
    });
    assert.equal(reg.live('10s/base/0').id, 'lin@1', `${what}: the live model is unchanged`);
    const out = await reg.run(reg.live('10s/base/0'), Float32Array.from([1, 1, 1]), 1);
    assert.equal(out.outputs.prediction![0], affine(W1, 0.25, [1, 1, 1]), `${what}: the live model still answers`);
  }
  assert.equal(reg.previous('10s/base/0'), undefined);
});

test('a tier never serves one model twice: by name or by file, whether swapped, promoted or rolled back in', async () => {
  const reg = registry();
  const events: SwapEvent[] = [];
  reg.onSwap((e) => events.push(e));
  const named = (name: string, version: string, weights: number[]) => writeAffineModel(dir, { name, version, features: FEATURES, weights, bias: 0 });
  const a = named('a', '1', W1);
  await reg.install('10s/base/0', a);
  await reg.install('10s/base/1', named('b', '1', W2));
  await assert.rejects(reg.swap('10s/base/1', named('a', '2', [0, 1, 1])), /tier 10s\/base would average one model twice: 10s\/base\/0 already serves a@1 \(the same name as a@2\)/);
  // Another name, the very same file.
  await assert.rejects(reg.swap('10s/base/1', named('c', '1', W1)), /tier 10s\/base would average one model twice: 10s\/base\/0 already serves a@1 \(the same file as c@1\)/);
  assert.equal(reg.live('10s/base/1').id, 'b@1');
  assert.deepEqual(events.filter((e) => e.action === 'refused').map((e) => e.slot), ['10s/base/1', '10s/base/1'], 'each refusal is reported');

  // a moves from base/0 to base/1: rolling base/0 back would bring it there too.
  await reg.swap('10s/base/0', named('d', '1', [2, 2, 2]));
  await reg.swap('10s/base/1', a);
  assert.throws(() => reg.rollback('10s/base/0'), /tier 10s\/base would average one model twice: 10s\/base\/1 already serves a@1/);
  assert.equal(reg.live('10s/base/0').id, 'd@1');

  // Any model may shadow; only one that fits may be promoted.
  await reg.shadow('10s/base/0', a, 0.5);
  assert.throws(() => reg.promote('10s/base/0'), /base\/1 already serves a@1/);
  assert.equal(reg.live('10s/base/0').id, 'd@1');
  assert.equal(reg.shadowOf('10s/base/0')?.model.id, 'a@1', 'the candidate still shadows');
});

test('horizons side by side: each its own tiers and slots, one frame answering both; a model trained for another horizon is refused from a slot', async () => {
  const reg = registry();
  const symbols = ['SPY', 'QQQ'];
  const tenSeconds = model('10s', W1, { manifest: { horizonMs: 10_000 } });
  const fiveMinutes = model('5m', W2, { manifest: { horizonMs: 300_000 } });
  const horizons = [
    // Given longest first: the frame lists them shortest first all the same.
    { horizonMs: 300_000, tiers: { base: [fiveMinutes, tenSeconds], sectors: {}, sectorCacheSize: 1 } },
    { horizonMs: 10_000, tiers: { base: [tenSeconds], sectors: {}, sectorCacheSize: 1 } },
  ];
  const predictor = new TieredPredictor(reg, schema, symbols, { horizons, historyFrames: 2 }, log, () => 0);
  await predictor.start();
  assert.deepEqual(reg.slotNames().sort(), ['10s/base/0', '5m/base/0']);
  assert.deepEqual(
    predictor.unavailable.map((u) => [u.slot, u.reason]),
    [['5m/base/1', 'forecasts 10s ahead; this slot serves the 5m horizon']],
  );
  const f = frame(symbols, (i) => i + 1, 1);
  const p = await predictor.predict(f);
  assert.deepEqual(
    p.horizons.map((h) => [h.horizonMs, [...h.models]]),
    [
      [10_000, ['lin@10s', 'lin@10s']],
      [300_000, ['lin@5m', 'lin@5m']],
    ],
  );
  assert.equal(p.horizons[0]!.value[1], affine(W1, 0.25, inputsOf(f, 1)));
  assert.equal(p.horizons[1]!.value[1], affine(W2, 0.25, inputsOf(f, 1)));
  await assert.rejects(reg.swap('10s/base/0', fiveMinutes), /forecasts 5m ahead; this slot serves the 10s horizon/);
  await assert.rejects(reg.shadow('5m/base/0', tenSeconds, 1), /forecasts 10s ahead; this slot serves the 5m horizon/);
  assert.equal(reg.live('10s/base/0').id, 'lin@10s', 'the live model keeps serving');
  assert.throws(() => new TieredPredictor(reg, schema, symbols, { horizons: [horizons[1]!, horizons[1]!], historyFrames: 2 }, log, () => 0), /horizon 10s is configured twice/);
});
