/**
 * Prometheus metrics for the inspector's GET /metrics, on a registry of
 * their own (never prom-client's global one, so two daemons in one process,
 * or two tests, do not clash).
 *
 * Almost everything is read at scrape time, in collect(), from what the
 * components retain on the bus or provide as services: the same objects /health reads, so
 * the data plane pays nothing. Only what is not retained is counted as it
 * passes: depth and trade rows (one add per batch, never per row) and the
 * predictor's latencies (one observation per frame). A source that is absent
 * (component not configured or not started) is left out, never reported as
 * a made-up 0.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Bus } from '../bus.js';
import type { ServiceLookup } from '../services.js';
import type { PortfolioView } from '../trading/portfolio.js';
import type { PredictorStatus } from '../models/predictor.js';
import type { IbConnectionState } from '../ib/link.js';
import { FileJournal } from '../journal/file-journal.js';
import type { RedisState } from '../redis/bridge.js';
import type { GateState } from '../trading/risk-gate.js';
import type { ActorView } from './protocol.js';
import { DEPTH_TOPIC, FEATURE_HEALTH_TOPIC, IB_STATUS_TOPIC, PORTFOLIO_TOPIC, PREDICTIONS_TOPIC, REDIS_STATUS_TOPIC, SUBSCRIPTIONS_STATUS_TOPIC, TRADES_TOPIC } from '../topics.js';

export interface MetricsOptions {
  readonly bus: Bus;
  readonly services: ServiceLookup;
  readonly actors: () => readonly ActorView[];
}

export interface InspectorMetrics {
  readonly registry: Registry;
  readonly contentType: string;
  /** Prometheus text exposition. */
  render(): Promise<string>;
  /** Unsubscribes from the bus and stops the event-loop monitor. */
  stop(): void;
}

type Labels = Record<string, string>;
type Emit = (value: number, labels?: Labels) => void;
type Read = (emit: Emit) => void;

const GATE_STATES: readonly GateState[] = ['ACTIVE', 'REDUCING', 'HALTED'];
const IB_STATES: readonly IbConnectionState[] = ['disconnected', 'connecting', 'connected', 'degraded', 'reconnecting', 'stopped'];
const REDIS_STATES: readonly RedisState[] = ['connected', 'resyncing', 'down'];
/** Model latencies run from about a millisecond to the 1 s default timeout. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

export function createMetrics({ bus, services, actors }: MetricsOptions): InspectorMetrics {
  const registry = new Registry();
  const registers = [registry];
  collectDefaultMetrics({ register: registry });

  const collectErrors = new Counter({
    name: 'keel_metrics_collect_errors_total',
    help: 'Scrapes in which reading a metric from its component failed (the metric was left out of that scrape), by metric',
    labelNames: ['metric'],
    registers: [],
  });
  /** Refills a metric from `read` at each scrape; a read that throws leaves it out rather than failing the scrape. */
  const refill = (metric: { reset(): void; remove(...values: string[]): void }, name: string, unlabelled: boolean, read: Read, emit: Emit) => {
    const clear = () => {
      metric.reset();
      // reset() leaves an unlabelled metric at 0: an absent source is not zero.
      if (unlabelled) metric.remove();
    };
    clear();
    try {
      read(emit);
    } catch {
      clear();
      collectErrors.inc({ metric: name });
    }
  };
  const gauge = (name: string, help: string, labelNames: readonly string[], read: Read) => {
    const g: Gauge = new Gauge({ name, help, labelNames, registers, collect: () => refill(g, name, labelNames.length === 0, read, (v, l = {}) => g.set(l, v)) });
  };
  /** A count the component keeps that only grows; it starts over when the component restarts, which Prometheus reads as a counter reset. */
  const counter = (name: string, help: string, read: Read) => {
    const c: Counter = new Counter({ name, help, registers, collect: () => refill(c, name, true, read, (v) => c.inc(v)) });
  };

  // Actors: from the supervision tree.
  gauge('keel_actor_up', 'Whether the actor is running (1) or not (0: starting, backing off, failed, stopped)', ['actor', 'kind'], (emit) => {
    for (const a of actors()) emit(a.status === 'running' ? 1 : 0, { actor: a.id, kind: a.kind });
  });
  gauge('keel_actor_status', "The actor's lifecycle status: 1 for the current one (starting, running, stopping, backoff, failed, stopped, exited)", ['actor', 'kind', 'status'], (emit) => {
    for (const a of actors()) emit(1, { actor: a.id, kind: a.kind, status: a.status });
  });
  gauge('keel_actor_restarts', 'Times the supervisor restarted the actor since the daemon started', ['actor', 'kind'], (emit) => {
    for (const a of actors()) emit(a.restarts, { actor: a.id, kind: a.kind });
  });

  // Feature health.
  gauge('keel_feature_health_score', 'Health score of each feature of each instrument, 0-100 (by default >= 80 HEALTHY, >= 50 WARNING, > 0 CRITICAL, 0 DISABLED); absent until judged', ['symbol', 'feature'], (emit) => {
    const h = bus.latest(FEATURE_HEALTH_TOPIC);
    if (!h) return;
    for (let k = 0; k < h.scores.length; k++) {
      const score = h.scores[k]!;
      if (!Number.isNaN(score)) emit(score, { symbol: h.symbols[Math.floor(k / h.width)]!, feature: h.schema.features[k % h.width]! });
    }
  });
  gauge('keel_feature_quality_pct', 'Share of the judged features that are HEALTHY, percent', [], (emit) => {
    const quality = bus.latest(FEATURE_HEALTH_TOPIC)?.qualityPct() ?? NaN;
    if (!Number.isNaN(quality)) emit(quality);
  });
  gauge('keel_feature_health_problems', 'Feature-health conditions stopping trading now (a bad model input, stale data, a silent feed)', [], (emit) => {
    const h = bus.latest(FEATURE_HEALTH_TOPIC);
    if (h) emit(h.problems.size);
  });

  // Risk gate.
  gauge('keel_risk_gate_state', 'Risk gate state, 1 for the current one: ACTIVE trades, REDUCING only shrinks positions, HALTED sends nothing but cancels', ['state'], (emit) => {
    const g = services.current('riskGate');
    if (g) for (const state of GATE_STATES) emit(g.state === state ? 1 : 0, { state });
  });
  gauge('keel_risk_gate_conditions', 'Conditions holding the risk gate now (data conditions refuse a resume; latched ones, such as a refused fill, are acknowledged by it)', [], (emit) => {
    const g = services.current('riskGate');
    if (g) emit(g.activeConditions().length);
  });

  // P&L and exposure, account currency, since the ledger began.
  const account = (name: string, help: string, read: (p: PortfolioView) => number) =>
    gauge(name, help, [], (emit) => {
      const p = bus.latest(PORTFOLIO_TOPIC);
      if (p) emit(read(p));
    });
  account('keel_cash', 'Cash in the account', (p) => p.cash);
  account('keel_pnl_net', 'Net P&L: realized + unrealized - fees', (p) => p.netPnl);
  account('keel_pnl_realized', 'Realized P&L of closed quantity, fees excluded', (p) => p.realizedPnl);
  account('keel_pnl_unrealized', 'Unrealized P&L of open positions at their mark (at cost before the first mid)', (p) => p.unrealizedPnl);
  account('keel_fees', 'Commissions paid', (p) => p.fees);
  account('keel_exposure_gross', 'Gross exposure: sum of |shares x mark|', (p) => p.grossExposure);
  account('keel_exposure_net', 'Net exposure: long minus short, at the mark', (p) => p.netExposure);
  gauge('keel_position_shares', 'Position per instrument, shares, signed (negative is short)', ['symbol'], (emit) => {
    for (const p of bus.latest(PORTFOLIO_TOPIC)?.positions ?? []) emit(p.quantity, { symbol: p.symbol });
  });
  gauge('keel_working_orders', 'Orders sent and not yet filled, cancelled or rejected', [], (emit) => {
    const ledger = services.current('ledger');
    if (ledger) emit(ledger.workingOrders().length);
  });

  // Connections.
  gauge('keel_ib_connected', 'Whether the link to TWS / IB Gateway is fully up (1) or not (0: connecting, degraded, reconnecting, ...)', [], (emit) => {
    const s = bus.latest(IB_STATUS_TOPIC);
    if (s) emit(s.state === 'connected' ? 1 : 0);
  });
  gauge('keel_ib_state', 'State of the IB link, 1 for the current one', ['state'], (emit) => {
    const s = bus.latest(IB_STATUS_TOPIC);
    if (s) for (const state of IB_STATES) emit(s.state === state ? 1 : 0, { state });
  });
  gauge('keel_ib_farms_down', 'IB data farms reported down and not back yet', [], (emit) => {
    const s = bus.latest(IB_STATUS_TOPIC);
    if (s) emit(s.farmsDown.length);
  });
  gauge('keel_redis_up', 'Whether Redis is connected and the mirror current (1) or not (0: down, or resyncing after an outage)', [], (emit) => {
    const s = bus.latest(REDIS_STATUS_TOPIC);
    if (s) emit(s.state === 'connected' ? 1 : 0);
  });
  gauge('keel_redis_state', 'State of the Redis mirror, 1 for the current one', ['state'], (emit) => {
    const s = bus.latest(REDIS_STATUS_TOPIC);
    if (s) for (const state of REDIS_STATES) emit(s.state === state ? 1 : 0, { state });
  });
  gauge('keel_redis_missed_writes', 'Mirror writes not sent during the current or the last Redis outage', [], (emit) => {
    const s = bus.latest(REDIS_STATUS_TOPIC);
    if (s) emit(s.missed);
  });

  // Market data feeds.
  gauge('keel_market_feeds', 'Market data subscriptions by status (waiting, requested, live, refused)', ['status'], (emit) => {
    const s = bus.latest(SUBSCRIPTIONS_STATUS_TOPIC);
    if (s) for (const [status, n] of Object.entries(s.counts)) emit(n, { status });
  });

  // Predictor and journal: counts they keep.
  const predictor = (read: (s: PredictorStatus) => number) => (emit: Emit) => {
    const s = services.current('predictor');
    if (s) emit(read(s));
  };
  counter('keel_predictor_frames_total', 'Feature frames the models answered', predictor((s) => s.frames));
  counter('keel_predictor_skipped_frames_total', 'Feature frames skipped because inference was behind', predictor((s) => s.skipped));
  counter('keel_predictor_late_frames_total', 'Predictions dropped because a newer frame was answered first', predictor((s) => s.late));
  gauge('keel_predictor_faults', 'Models that failed on the last frame (their instruments fall back to the other members)', [], predictor((s) => s.faults.length));
  const journal = (read: (j: FileJournal) => number) => (emit: Emit) => {
    const j = services.current('journal');
    if (j instanceof FileJournal) emit(read(j));
  };
  counter('keel_journal_records_total', 'Ledger records made durable (orders, fills, gate moves, ...)', journal((j) => j.stats.records));
  counter('keel_journal_flushes_total', 'Batches of records written and fsynced to the journal', journal((j) => j.stats.batches));
  counter('keel_journal_bytes_total', 'Bytes written to the journal', journal((j) => j.stats.bytes));
  counter('keel_journal_flush_seconds_total', 'Time spent writing and fsyncing journal batches (over keel_journal_flushes_total: the mean flush)', journal((j) => j.flushMs / 1000));

  // Event loop: how late timers ran, from a monitor of our own, per scrape window.
  const resolutionMs = 10;
  const loop = monitorEventLoopDelay({ resolution: resolutionMs });
  loop.enable();
  // The monitor records the whole interval between its timer's runs: the delay is what exceeds the resolution.
  const late = (ns: number) => Math.max(0, ns / 1e9 - resolutionMs / 1000);
  gauge('keel_event_loop_delay_seconds', 'How late the event loop ran timers since the previous scrape, seconds: quantile 0.5, 0.99, and 1 (the max)', ['quantile'], (emit) => {
    if (loop.count > 0) {
      emit(late(loop.percentile(50)), { quantile: '0.5' });
      emit(late(loop.percentile(99)), { quantile: '0.99' });
      emit(late(loop.max), { quantile: '1' });
    }
    loop.reset();
  });

  // Streams nothing retains: counted per batch or per frame as they pass.
  const depthRows = new Counter({ name: 'keel_depth_rows_total', help: 'Order book (L2 depth) updates received', registers });
  const depthBatches = new Counter({ name: 'keel_depth_batches_total', help: 'Batches the depth updates arrived in', registers });
  const trades = new Counter({ name: 'keel_trades_total', help: 'Trade prints (tick-by-tick last) received', registers });
  const predictionLatency = new Histogram({
    name: 'keel_prediction_latency_seconds',
    help: 'Per features frame, from sending it to the models to the slowest model batch answering, seconds',
    buckets: LATENCY_BUCKETS,
    registers,
  });
  const inferenceTime = new Histogram({ name: 'keel_inference_seconds', help: 'Per features frame, time inside onnxruntime of the slowest model batch, seconds', buckets: LATENCY_BUCKETS, registers });
  // These run in the producer's call stack: they must never throw (observe() refuses a non-finite value).
  const observe = (h: Histogram, ms: number) => {
    if (Number.isFinite(ms)) h.observe(ms / 1000);
  };
  const unsubscribe = [
    bus.subscribe(DEPTH_TOPIC, (batch) => {
      depthRows.inc(batch.count);
      depthBatches.inc();
    }),
    bus.subscribe(TRADES_TOPIC, (batch) => trades.inc(batch.count)),
    bus.subscribe(PREDICTIONS_TOPIC, (frame) => {
      observe(predictionLatency, frame.latencyMs);
      observe(inferenceTime, frame.inferenceMs);
    }),
  ];

  // Last: a scrape gathers metrics in order, so a failure shows in the scrape it happened in.
  registry.registerMetric(collectErrors);

  return {
    registry,
    contentType: registry.contentType,
    render: () => registry.metrics(),
    stop() {
      for (const u of unsubscribe) u();
      loop.disable();
    },
  };
}
