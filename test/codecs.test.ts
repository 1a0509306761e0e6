/**
 * Every data topic's codec: what goes out is plain msgpack any reader
 * decodes, and what comes back has its typed arrays again.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Unpackr } from 'msgpackr';
import { DepthBatch } from '../src/ib/depth-feed.js';
import { TradeBatch } from '../src/ib/trade-feed.js';
import type { FeatureFrame } from '../src/market/features.js';
import type { PredictionFrame } from '../src/models/predictor.js';
import type { RegimeFrame } from '../src/models/regime-tracker.js';
import { CODECS, codecOf, DEPTH_TOPIC, FEATURES_TOPIC, PORTFOLIO_TOPIC, PREDICTIONS_TOPIC, REGIME_TOPIC, TRADES_TOPIC } from '../src/topics.js';
import type { PortfolioView } from '../src/trading/portfolio.js';

const plain = new Unpackr({ useRecords: false, moreTypes: false });

test('a features frame survives the round trip, NaN included, typed arrays restored', () => {
  const frame: FeatureFrame = {
    intervalMs: 100,
    at: 5,
    wallAt: 1_796_000_000_000,
    schema: { name: 'keel.microstructure', version: 1, features: ['mid', 'spread_bps'] },
    symbols: ['SPY', 'QQQ'],
    values: Float64Array.from([500.25, 1.5, NaN, 2]),
    warm: Uint8Array.from([1, 0]),
    base: true,
  };
  const back = codecOf(FEATURES_TOPIC)!.decode(codecOf(FEATURES_TOPIC)!.encode(frame, 0)) as { values: Float64Array; warm: Uint8Array; at: number; symbols: string[] };
  assert.ok(back.values instanceof Float64Array && back.warm instanceof Uint8Array);
  assert.deepEqual([...back.values], [500.25, 1.5, NaN, 2]);
  assert.deepEqual([...back.warm], [1, 0]);
  assert.equal(back.at, frame.wallAt, 'a frame carries wall-clock time out');
  assert.deepEqual(back.symbols, ['SPY', 'QQQ']);
});

test('regimes, predictions, depth and trades come back with their typed arrays, depth and trades only their valid rows', () => {
  const regime = { model: 'sjm@1', intervalMs: 1000, labels: ['calm', 'volatile'], symbols: ['SPY'], k: 2, state: Int32Array.from([1]), probabilities: Float64Array.from([0.25, 0.75]), switches: 3 } as unknown as RegimeFrame;
  const r = codecOf(REGIME_TOPIC)!.decode(codecOf(REGIME_TOPIC)!.encode(regime, 7)) as { state: Int32Array; probabilities: Float64Array; at: number };
  assert.ok(r.state instanceof Int32Array && r.probabilities instanceof Float64Array);
  assert.deepEqual([...r.probabilities], [0.25, 0.75]);
  assert.equal(r.at, 7);

  const prediction: PredictionFrame = {
    frameAt: 1,
    at: 2,
    symbols: ['SPY'],
    horizons: [
      { horizonMs: 10_000, value: Float64Array.from([NaN]), tier: [''], models: [''] },
      { horizonMs: 300_000, value: Float64Array.from([2.5]), tier: ['base'], models: ['gbdt-base-5m@1'] },
    ],
    latencyMs: 1,
    inferenceMs: 0.5,
    faults: [],
  };
  const p = codecOf(PREDICTIONS_TOPIC)!.decode(codecOf(PREDICTIONS_TOPIC)!.encode(prediction, 9)) as { at: number; horizons: { horizonMs: number; value: Float64Array; models: string[] }[] };
  assert.equal(p.at, 9);
  assert.deepEqual(p.horizons.map((h) => h.horizonMs), [10_000, 300_000]);
  assert.ok(p.horizons[0]!.value instanceof Float64Array && Number.isNaN(p.horizons[0]!.value[0]));
  assert.deepEqual([...p.horizons[1]!.value], [2.5]);
  assert.deepEqual(p.horizons[1]!.models, ['gbdt-base-5m@1']);

  const depth = new DepthBatch(8);
  depth.count = 2;
  depth.instrument.set([0, 3]);
  depth.price.set([100.5, 100.25]);
  depth.size.set([200, 300]);
  depth.side.set([1, 0]);
  const d = codecOf(DEPTH_TOPIC)!.decode(codecOf(DEPTH_TOPIC)!.encode(depth, 0)) as { count: number; instrument: Int32Array; price: Float64Array; side: Uint8Array };
  assert.equal(d.count, 2);
  assert.ok(d.instrument instanceof Int32Array && d.price instanceof Float64Array && d.side instanceof Uint8Array);
  assert.deepEqual([...d.price], [100.5, 100.25]);

  const trades = new TradeBatch(4);
  trades.count = 1;
  trades.price[0] = 99.99;
  const t = codecOf(TRADES_TOPIC)!.decode(codecOf(TRADES_TOPIC)!.encode(trades, 0)) as { price: Float64Array };
  assert.deepEqual([...t.price], [99.99]);
});

test('the wire form is plain msgpack: any reader gets arrays of numbers, no msgpackr extensions', () => {
  const frame = { intervalMs: 1000, at: 0, wallAt: 1, schema: { name: 'x', version: 1, features: ['a'] }, symbols: ['SPY'], values: Float64Array.from([1.5]), warm: Uint8Array.from([1]), base: false } as FeatureFrame;
  const raw = plain.unpack(codecOf(FEATURES_TOPIC)!.encode(frame, 0)) as { values: unknown; warm: unknown };
  assert.deepEqual(raw.values, [1.5]);
  assert.deepEqual(raw.warm, [1]);
});

test('plain topics go out as they are', () => {
  const view: PortfolioView = { at: 1, cash: 1_000, positions: [], realizedPnl: 0, unrealizedPnl: NaN, fees: 0, netPnl: 0, grossExposure: 0, netExposure: 0, seq: 4 };
  const back = codecOf(PORTFOLIO_TOPIC)!.decode(codecOf(PORTFOLIO_TOPIC)!.encode(view, 0)) as PortfolioView;
  assert.deepEqual({ ...back, unrealizedPnl: 0 }, { ...view, unrealizedPnl: 0 });
  assert.ok(Number.isNaN(back.unrealizedPnl));
  assert.ok(Object.keys(CODECS).length >= 10);
});
