/**
 * /metrics on a real bus: what components retain is read at scrape time
 * (and follows them), the streams are counted per batch, absent components
 * are left out, per-instrument series only for traded instruments unless
 * asked for all, and each instance has its own registry and subscriptions.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { register } from 'prom-client';
import { Bus } from '../../src/bus.js';
import { ServiceTable } from '../../src/services.js';
import { ManualClock } from '../../src/clock.js';
import { buildPanels } from '../../src/inspector/panels.js';
import { DepthBatch } from '../../src/ib/depth-feed.js';
import type { IbStatus } from '../../src/ib/link.js';
import { TradeBatch } from '../../src/ib/trade-feed.js';
import { createMetrics } from '../../src/inspector/metrics.js';
import type { ActorView } from '../../src/inspector/protocol.js';
import { FileJournal } from '../../src/journal/file-journal.js';
import { DEFAULT_THRESHOLDS, FeatureHealth } from '../../src/market/feature-health.js';
import type { PredictionFrame, PredictorStatus } from '../../src/models/predictor.js';
import type { RedisStatus } from '../../src/redis/bridge.js';
import { Ledger } from '../../src/trading/ledger.js';
import type { PortfolioView } from '../../src/trading/portfolio.js';
import { RiskGate } from '../../src/trading/risk-gate.js';
import { QuoteBoard } from '../../src/ib/quote-board.js';
import type { RegimeFrame } from '../../src/models/regime-tracker.js';
import { DEPTH_TOPIC, FEATURE_HEALTH_TOPIC, IB_STATUS_TOPIC, MODEL_DRIFT_TOPIC, PORTFOLIO_TOPIC, PREDICTIONS_TOPIC, QUOTE_TOPS_TOPIC, REDIS_STATUS_TOPIC, REGIME_TOPIC, TRADES_TOPIC } from '../../src/topics.js';
import { predictionFrame } from '../support/predictions.js';

/** The value of one sample line (`name{labels}` exactly as exposed), or undefined when it is not there. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

const actor = (id: string, kind: string, status: string, restarts: number): ActorView => ({
  id,
  parent: id === 'root' ? null : 'root',
  kind,
  state: null,
  status,
  restarts,
  backoffUntil: null,
  lastError: null,
  health: null,
  since: 0,
});

const ACTORS = [actor('root', 'supervisor', 'running', 0), actor('ib', 'ib_connection', 'backoff', 3), actor('risk_gate', 'risk_gate', 'running', 0)];

function depth(bus: Bus, rows: number) {
  const batch = new DepthBatch(16);
  batch.count = rows;
  bus.publish(DEPTH_TOPIC, batch);
}

function trades(bus: Bus, rows: number) {
  const batch = new TradeBatch(16);
  batch.count = rows;
  bus.publish(TRADES_TOPIC, batch);
}

test('actors, gate, feature health, account and links are read from the bus at each scrape', async () => {
  const bus = new Bus();
  const services = new ServiceTable();
  const metrics = createMetrics({ bus, services, actors: () => ACTORS });
  try {
    const gate = new RiskGate(new ManualClock(), { autoResume: false, healthyPeriodMs: 1000 });
    services.provide('risk_gate', 'riskGate', gate);
    // SPY is warm and judged; QQQ is not, so its cells are NaN and left out.
    const health = new FeatureHealth(['SPY', 'QQQ'], { name: 'test', version: 1, features: ['mid', 'spread'] }, { thresholds: DEFAULT_THRESHOLDS, advisory: [], maxDataAgeMs: 1000 });
    health.observe(new Float64Array([100, 0.01, 0, 0]), new Uint8Array([1, 0]), 0);
    bus.retain(FEATURE_HEALTH_TOPIC, health);
    const portfolio: PortfolioView = {
      at: 0,
      cash: 990_000,
      positions: [
        { symbol: 'SPY', quantity: 100, multiplier: 1, averagePrice: 500, mark: 501, realizedPnl: 20, unrealizedPnl: 100, fees: 1 },
        { symbol: 'QQQ', quantity: -50, multiplier: 1, averagePrice: 400, mark: 401, realizedPnl: 0, unrealizedPnl: -50, fees: 0.5 },
      ],
      realizedPnl: 20,
      unrealizedPnl: 50,
      fees: 1.5,
      netPnl: 68.5,
      grossExposure: 70_150,
      netExposure: 30_050,
      seq: 7,
    };
    bus.retain(PORTFOLIO_TOPIC, portfolio);
    const ib: IbStatus = { state: 'degraded', clientId: 1, reason: '2103: farm down', farmsDown: ['usfarm'], dataEpoch: 1, since: 0 };
    bus.retain(IB_STATUS_TOPIC, ib);
    const redis: RedisStatus = { state: 'resyncing', reason: 'back after an outage', since: 0, missed: 12, url: 'redis://localhost:6379' };
    bus.retain(REDIS_STATUS_TOPIC, redis);

    let text = await metrics.render();
    assert.equal(sample(text, 'keel_actor_up{actor="root",kind="supervisor"}'), 1);
    assert.equal(sample(text, 'keel_actor_up{actor="ib",kind="ib_connection"}'), 0);
    assert.equal(sample(text, 'keel_actor_status{actor="ib",kind="ib_connection",status="backoff"}'), 1);
    assert.equal(sample(text, 'keel_actor_restarts_total{actor="ib",kind="ib_connection"}'), 3);

    assert.equal(sample(text, 'keel_risk_gate_state{state="ACTIVE"}'), 1);
    assert.equal(sample(text, 'keel_risk_gate_state{state="HALTED"}'), 0);
    assert.equal(sample(text, 'keel_risk_gate_conditions'), 0);

    assert.equal(sample(text, 'keel_feature_health_score{symbol="SPY",feature="mid"}'), 100);
    assert.equal(sample(text, 'keel_feature_health_score{symbol="SPY",feature="spread"}'), 100);
    assert.doesNotMatch(text, /keel_feature_health_score\{symbol="QQQ"/);
    assert.equal(sample(text, 'keel_feature_health_features{status="HEALTHY",advisory="false"}'), 2);
    assert.equal(sample(text, 'keel_feature_health_features{status="CRITICAL",advisory="false"}'), 0);
    assert.equal(sample(text, 'keel_feature_health_features_by_score{score="100"}'), 2);
    assert.equal(sample(text, 'keel_feature_quality_pct'), 100);
    assert.equal(sample(text, 'keel_feature_health_problems'), 0);

    assert.equal(sample(text, 'keel_cash'), 990_000);
    assert.equal(sample(text, 'keel_pnl_net'), 68.5);
    assert.equal(sample(text, 'keel_pnl_realized'), 20);
    assert.equal(sample(text, 'keel_pnl_unrealized'), 50);
    assert.equal(sample(text, 'keel_fees'), 1.5);
    assert.equal(sample(text, 'keel_exposure_gross'), 70_150);
    assert.equal(sample(text, 'keel_exposure_net'), 30_050);
    assert.equal(sample(text, 'keel_position_shares{symbol="SPY"}'), 100);
    assert.equal(sample(text, 'keel_position_shares{symbol="QQQ"}'), -50);

    assert.equal(sample(text, 'keel_ib_connected'), 0);
    assert.equal(sample(text, 'keel_ib_state{state="degraded"}'), 1);
    assert.equal(sample(text, 'keel_ib_state{state="connected"}'), 0);
    assert.equal(sample(text, 'keel_ib_farms_down'), 1);
    assert.equal(sample(text, 'keel_redis_up'), 0);
    assert.equal(sample(text, 'keel_redis_state{state="resyncing"}'), 1);
    assert.equal(sample(text, 'keel_redis_missed_writes'), 12);

    // The objects change in place or are replaced: the next scrape follows.
    gate.report('ib', new Map([['ib link', 'IB link reconnecting: socket closed']]));
    bus.retain(IB_STATUS_TOPIC, { ...ib, state: 'connected', farmsDown: [] });
    bus.retain(REDIS_STATUS_TOPIC, { ...redis, state: 'connected' });
    text = await metrics.render();
    assert.equal(sample(text, 'keel_risk_gate_state{state="HALTED"}'), 1);
    assert.equal(sample(text, 'keel_risk_gate_state{state="ACTIVE"}'), 0);
    assert.equal(sample(text, 'keel_risk_gate_conditions'), 1);
    assert.equal(sample(text, 'keel_ib_connected'), 1);
    assert.equal(sample(text, 'keel_ib_farms_down'), 0);
    assert.equal(sample(text, 'keel_redis_up'), 1);
  } finally {
    metrics.stop();
  }
});

/** SPY has a book; MSFT and IBM have quotes only, and IBM a position: all three judged (spread read by no model), with a regime and a prediction where given. */
function universe(bus: Bus, services: ServiceTable) {
  const symbols = ['SPY', 'MSFT', 'IBM'];
  const booked = [true, false, false];
  services.provide('subscriptions', 'instruments', { symbols, booked });
  const health = new FeatureHealth(symbols, { name: 'test', version: 1, features: ['mid', 'spread'] }, { thresholds: DEFAULT_THRESHOLDS, advisory: ['spread'], maxDataAgeMs: 1000, booked });
  health.observe(new Float64Array([500, 0.01, 400, 0.02, 150, 0.05]), new Uint8Array([1, 1, 1]), 0);
  bus.retain(FEATURE_HEALTH_TOPIC, health);
  const position = { symbol: 'IBM', quantity: 10, multiplier: 1, averagePrice: 150, mark: 150, realizedPnl: 0, unrealizedPnl: 0, fees: 1 };
  bus.retain(PORTFOLIO_TOPIC, { at: 0, cash: 998_499, positions: [position], realizedPnl: 0, unrealizedPnl: 0, fees: 1, netPnl: -1, grossExposure: 1500, netExposure: 1500, seq: 1 });
  const regime: RegimeFrame = { model: 'sjm@1', intervalMs: 1000, labels: ['calm', 'volatile'], symbols, k: 2, at: 0, state: new Int32Array([0, 1, -1]), probabilities: new Float64Array([0.9, 0.1, 0.2, 0.8, NaN, NaN]), switches: 4 };
  bus.retain(REGIME_TOPIC, regime);
  const horizons = [
    { horizonMs: 10_000, value: new Float64Array([1.5, NaN, -0.5]), tier: ['base', '', 'highVol'], models: ['gbdt@1', '', 'gbdt-hv@1'] },
    { horizonMs: 300_000, value: new Float64Array([4, 2, NaN]), tier: ['base', 'base', ''], models: ['gbdt-5m@1', 'gbdt-5m@1', ''] },
  ];
  const prediction: PredictionFrame = { frameAt: 0, at: 5, symbols, horizons, latencyMs: 5, inferenceMs: 1, faults: [] };
  bus.retain(PREDICTIONS_TOPIC, prediction);
  const live = { n: 900, frames: 300, rmse: 8, zeroRmse: 7.5, hitRate: 0.48, dmVsZero: 3.1 };
  const model = { id: 'gbdt@1', slot: '10s/base/0', shadow: false, horizonMs: 10_000, inputPsi: new Float64Array([7.2, 0.1, NaN]), inputOf: ['ret_1s', 'ofi', ''], predictionPsi: new Float64Array([3, 0.2, NaN]), drifted: ['SPY'], live, heldOut: { rmse: 1.6, zeroRmse: 1.7, hitRate: 0.57 }, beyondBound: true };
  bus.retain(MODEL_DRIFT_TOPIC, { at: 0, symbols, models: [model], challengers: [] });
}

test('instruments traded (a book or a position) get series of their own; the rest of the universe is counted', async () => {
  const bus = new Bus();
  const services = new ServiceTable();
  const metrics = createMetrics({ bus, services, actors: () => [] });
  try {
    universe(bus, services);
    const text = await metrics.render();
    assert.equal(sample(text, 'keel_instruments{booked="true"}'), 1);
    assert.equal(sample(text, 'keel_instruments{booked="false"}'), 2);

    assert.equal(sample(text, 'keel_feature_health_score{symbol="SPY",feature="spread"}'), 100);
    assert.equal(sample(text, 'keel_feature_health_score{symbol="IBM",feature="spread"}'), 100, 'a position makes a quotes-only instrument traded');
    assert.doesNotMatch(text, /symbol="MSFT"/);
    // Only SPY's mid can stop trading: spread is read by no model, and MSFT and IBM have no book.
    assert.equal(sample(text, 'keel_feature_health_features{status="HEALTHY",advisory="false"}'), 1);
    assert.equal(sample(text, 'keel_feature_health_features{status="HEALTHY",advisory="true"}'), 5);
    assert.equal(sample(text, 'keel_feature_health_features_by_score{score="100"}'), 6);

    assert.equal(sample(text, 'keel_regime_state{symbol="SPY",regime="calm"}'), 1);
    assert.equal(sample(text, 'keel_regime_state{symbol="SPY",regime="volatile"}'), 0);
    assert.doesNotMatch(text, /keel_regime_state\{symbol="IBM"/, 'no regime yet');
    assert.equal(sample(text, 'keel_regime_instruments{regime="calm"}'), 1);
    assert.equal(sample(text, 'keel_regime_instruments{regime="volatile"}'), 1);
    assert.equal(sample(text, 'keel_regime_switches_total'), 4);

    assert.equal(sample(text, 'keel_prediction{symbol="SPY",horizon="10s"}'), 1.5);
    assert.equal(sample(text, 'keel_prediction{symbol="IBM",horizon="10s"}'), -0.5);
    assert.equal(sample(text, 'keel_prediction{symbol="SPY",horizon="5m"}'), 4);
    assert.doesNotMatch(text, /keel_prediction\{symbol="IBM",horizon="5m"\}/, 'none at 5 min for IBM');
    assert.equal(sample(text, 'keel_predicted_instruments{horizon="10s",tier="base"}'), 1);
    assert.equal(sample(text, 'keel_predicted_instruments{horizon="10s",tier="highVol"}'), 1);
    assert.equal(sample(text, 'keel_predicted_instruments{horizon="5m",tier="base"}'), 2, 'MSFT too: the universe is counted');

    assert.equal(sample(text, 'keel_model_input_psi{model="gbdt@1",symbol="SPY"}'), 7.2);
    assert.equal(sample(text, 'keel_model_prediction_psi{model="gbdt@1",symbol="SPY"}'), 3);
    assert.doesNotMatch(text, /keel_model_input_psi\{model="gbdt@1",symbol="MSFT"/, 'an instrument not traded has no drift series');
    assert.equal(sample(text, 'keel_model_drifting_instruments{model="gbdt@1"}'), 1);
    assert.equal(sample(text, 'keel_model_live_rmse{model="gbdt@1"}'), 8);
    assert.equal(sample(text, 'keel_model_live_zero_rmse{model="gbdt@1"}'), 7.5);
    assert.equal(sample(text, 'keel_model_live_dm_vs_zero{model="gbdt@1"}'), 3.1);
    assert.equal(sample(text, 'keel_model_beyond_bound{model="gbdt@1"}'), 1);
  } finally {
    metrics.stop();
  }
});

test("perInstrument 'all' gives every instrument its own series", async () => {
  const bus = new Bus();
  const services = new ServiceTable();
  const metrics = createMetrics({ bus, services, actors: () => [], perInstrument: 'all' });
  try {
    universe(bus, services);
    const text = await metrics.render();
    assert.equal(sample(text, 'keel_feature_health_score{symbol="MSFT",feature="mid"}'), 100);
    assert.equal(sample(text, 'keel_regime_state{symbol="MSFT",regime="volatile"}'), 1);
    assert.equal(sample(text, 'keel_feature_health_features{status="HEALTHY",advisory="true"}'), 5);
  } finally {
    metrics.stop();
  }
});

test('depth rows, trades and prediction latencies are counted per batch and per frame', async () => {
  const bus = new Bus();
  const services = new ServiceTable();
  const metrics = createMetrics({ bus, services, actors: () => [] });
  try {
    depth(bus, 3);
    depth(bus, 2);
    trades(bus, 4);
    const board = new QuoteBoard(['MSFT', 'IBM']);
    board.changedCount = 2;
    bus.publish(QUOTE_TOPS_TOPIC, board);
    const frame = predictionFrame({ frameAt: 0, at: 12, symbols: ['SPY'], value: [1.5], tier: ['base'], models: ['gbdt@1'], latencyMs: 12, inferenceMs: 3 });
    bus.retain(PREDICTIONS_TOPIC, frame);
    // The serving status carries the registry and predictor too; only its counts are read here.
    services.provide('predictor', 'predictor', { intervalMs: 1000, frames: 10, skipped: 2, late: 1, faults: ['gbdt@1: timeout'], lastAt: 12, monitor: { skipped: 4 } } as unknown as PredictorStatus); // the metrics read only the counters

    const text = await metrics.render();
    assert.equal(sample(text, 'keel_depth_rows_total'), 5);
    assert.equal(sample(text, 'keel_depth_batches_total'), 2);
    assert.equal(sample(text, 'keel_trades_total'), 4);
    assert.equal(sample(text, 'keel_quote_changes_total'), 2);
    assert.equal(sample(text, 'keel_prediction_latency_seconds_count'), 1);
    assert.equal(sample(text, 'keel_prediction_latency_seconds_sum'), 0.012);
    assert.equal(sample(text, 'keel_prediction_latency_seconds_bucket{le="0.01"}'), 0);
    assert.equal(sample(text, 'keel_prediction_latency_seconds_bucket{le="0.025"}'), 1);
    assert.equal(sample(text, 'keel_inference_seconds_bucket{le="0.005"}'), 1);
    assert.equal(sample(text, 'keel_predictor_frames_total'), 10);
    assert.equal(sample(text, 'keel_predictor_skipped_frames_total'), 2);
    assert.equal(sample(text, 'keel_predictor_unwatched_frames_total'), 4);
    assert.equal(sample(text, 'keel_predictor_late_frames_total'), 1);
    assert.equal(sample(text, 'keel_predictor_faults'), 1);
  } finally {
    metrics.stop();
  }
});

test('the journal and ledger are read from the real objects the journal actor retains', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'keel-metrics-'));
  const bus = new Bus();
  const services = new ServiceTable();
  const metrics = createMetrics({ bus, services, actors: () => [] });
  const { journal } = await FileJournal.open(join(dir, 'ledger.journal'));
  try {
    services.provide('journal', 'journal', journal);
    services.provide('journal', 'ledger', new Ledger(journal, 1_000_000));
    await journal.append({ type: 'gate', at: 0, from: 'ACTIVE', to: 'HALTED', reason: 'test', by: 'operator' });
    const text = await metrics.render();
    assert.equal(sample(text, 'keel_journal_records_total'), 1);
    assert.equal(sample(text, 'keel_journal_flushes_total'), 1);
    assert.equal(sample(text, 'keel_journal_bytes_total'), journal.stats.bytes);
    assert.ok(sample(text, 'keel_journal_flush_seconds_total')! >= 0);
    // Each flush is timed into the histogram as it happens.
    assert.equal(sample(text, 'keel_journal_flush_duration_seconds_count'), 1);
    assert.equal(sample(text, 'keel_journal_flush_duration_seconds_bucket{le="+Inf"}'), 1);
    assert.equal(sample(text, 'keel_working_orders'), 0);
  } finally {
    metrics.stop();
    await journal.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('absent components are left out, a component in a bad shape fails only its own metric', async () => {
  const bus = new Bus();
  const services = new ServiceTable();
  const metrics = createMetrics({ bus, services, actors: () => [] });
  try {
    let text = await metrics.render();
    for (const name of ['keel_cash', 'keel_pnl_net', 'keel_risk_gate_conditions', 'keel_feature_quality_pct', 'keel_ib_connected', 'keel_redis_up', 'keel_journal_records_total']) {
      assert.match(text, new RegExp(`# HELP ${name} `), name);
      assert.equal(sample(text, name), undefined, `${name} has no source and no sample`);
    }
    assert.doesNotMatch(text, /^keel_risk_gate_state\{/m);
    // Nothing received is a true zero.
    assert.equal(sample(text, 'keel_depth_rows_total'), 0);

    services.provide('risk_gate', 'riskGate', { state: 'HALTED' } as RiskGate);
    await metrics.render();
    text = await metrics.render();
    assert.equal(sample(text, 'keel_risk_gate_state{state="HALTED"}'), 1);
    assert.equal(sample(text, 'keel_risk_gate_conditions'), undefined);
    assert.equal(sample(text, 'keel_metrics_collect_errors_total{metric="keel_risk_gate_conditions"}'), 2, 'once per scrape, shown in the scrape it failed in');
  } finally {
    metrics.stop();
  }
});

test('the event-loop monitor and the default process metrics are on the registry', async () => {
  const metrics = createMetrics({ bus: new Bus(), services: new ServiceTable(), actors: () => [] });
  try {
    // The monitor samples every 10 ms: one of our timers later it has.
    await sleep(30);
    const text = await metrics.render();
    for (const name of ['keel_event_loop_delay_p50_seconds', 'keel_event_loop_delay_p99_seconds', 'keel_event_loop_delay_max_seconds']) assert.ok(sample(text, name)! >= 0, name);
    // promtool's lint refuses gauges named _total: the per-type series stay.
    assert.doesNotMatch(text, /^nodejs_active_handles_total/m);
    assert.match(text, /^nodejs_active_handles\{/m);
    assert.doesNotMatch(text, /^nodejs_eventloop_lag_/m, "prom-client's copy of the event-loop delay is left out");
    assert.match(text, /^process_cpu_user_seconds_total /m);
    assert.match(metrics.contentType, /^text\/plain/);
  } finally {
    metrics.stop();
  }
});

test('two instances have their own registries, and stop() unsubscribes from the bus', async () => {
  const bus = new Bus();
  const services = new ServiceTable();
  const a = createMetrics({ bus, services, actors: () => [] });
  const b = createMetrics({ bus, services, actors: () => [] });
  try {
    assert.notEqual(a.registry, b.registry);
    assert.doesNotMatch(await register.metrics(), /keel_|nodejs_/, 'nothing on the global registry');
    depth(bus, 3);
    assert.equal(sample(await a.render(), 'keel_depth_rows_total'), 3);
    assert.equal(sample(await b.render(), 'keel_depth_rows_total'), 3);

    a.stop();
    depth(bus, 4);
    trades(bus, 1);
    const text = await a.render();
    assert.equal(sample(text, 'keel_depth_rows_total'), 3);
    assert.equal(sample(text, 'keel_trades_total'), 0);
    assert.equal(sample(await b.render(), 'keel_depth_rows_total'), 7);
  } finally {
    a.stop();
    b.stop();
  }
});

test('the inspector panels list the horizons served and each instrument’s prediction at every one, shortest first', () => {
  const bus = new Bus();
  const services = new ServiceTable();
  universe(bus, services);
  const panels = buildPanels(bus, services, 'running', new ManualClock(0), []);
  assert.deepEqual(panels.horizons, ['10s', '5m']);
  assert.deepEqual(
    panels.instruments.map((i) => [i.symbol, i.predictions]),
    [
      ['SPY', [1.5, 4]],
      ['MSFT', [null, 2]],
      ['IBM', [-0.5, null]],
    ],
  );
});
