/**
 * Prometheus metrics for the inspector's GET /metrics, on a registry of
 * their own (never prom-client's global one, so two daemons in one process,
 * or two tests, do not clash).
 *
 * Almost everything is read at scrape time, in collect(), from what the
 * components retain on the bus or provide as services: the same objects /health reads, so
 * the data plane pays nothing. Only what is not retained is counted as it
 * passes: depth, trade and quote rows (one add per batch, never per row),
 * the predictor's latencies (one observation per frame) and the journal's
 * flush times (one per batch). A source that is absent (component not
 * configured or not started) is left out, never reported as a made-up 0.
 *
 * Cardinality stays bounded whatever the universe: per-instrument series
 * (feature scores, regime, prediction) only for the instruments keel trades,
 * those with a book or a position; the rest of the universe is counted (features by
 * status and by score, instruments by regime and by serving tier). With
 * `perInstrument: 'all'` every instrument gets its own series, as every
 * scrape had before the option: at 5,000 instruments about 5 MB and
 * hundreds of milliseconds of blocked event loop per scrape, against about
 * 23 KB and 2 to 4 ms by default (npm run bench -- inspector), so 'all' is
 * for small universes.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Bus } from '../bus.js';
import type { ServiceLookup } from '../services.js';
import type { PortfolioView } from '../trading/portfolio.js';
import type { ModelDrift } from '../models/monitor.js';
import { horizonLabel } from '../models/horizon.js';
import type { PredictorStatus } from '../models/predictor.js';
import type { IbConnectionState } from '../ib/link.js';
import { FileJournal } from '../journal/file-journal.js';
import type { Journal } from '../journal/records.js';
import { HEALTHY, STATUSES, statusOf, type FeatureHealth } from '../market/feature-health.js';
import type { RedisState } from '../redis/bridge.js';
import type { ClusterStatus } from '../scaleout/status.js';
import type { GateState } from '../trading/risk-gate.js';
import type { ActorView } from './protocol.js';
import {
  CLUSTER_TOPIC,
  DEPTH_TOPIC,
  FEATURE_HEALTH_TOPIC,
  IB_STATUS_TOPIC,
  PORTFOLIO_TOPIC,
  PREDICTIONS_TOPIC,
  MODEL_DRIFT_TOPIC,
  QUOTE_TOPS_TOPIC,
  REDIS_STATUS_TOPIC,
  REGIME_TOPIC,
  SUBSCRIPTIONS_STATUS_TOPIC,
  TRADES_TOPIC,
} from '../topics.js';

/** Which instruments get series of their own: those keel trades (with a book or a position), or all. */
export type PerInstrument = 'traded' | 'all';

export interface MetricsOptions {
  readonly bus: Bus;
  readonly services: ServiceLookup;
  readonly actors: () => readonly ActorView[];
  /** Default 'traded'. */
  readonly perInstrument?: PerInstrument;
}

export interface InspectorMetrics {
  readonly registry: Registry;
  readonly contentType: string;
  /** Prometheus text exposition: a scrape (read the registry through this, not directly). */
  render(): Promise<string>;
  /** Unsubscribes from the bus and the journal and stops the event-loop monitor. */
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
/** A write and fdatasync: well under a millisecond on a fast SSD, tens of ms on a busy disk, seconds when it stalls. */
const FLUSH_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const ADVISORY = ['false', 'true'];

export function createMetrics({ bus, services, actors, perInstrument = 'traded' }: MetricsOptions): InspectorMetrics {
  const registry = new Registry();
  const registers = [registry];
  collectDefaultMetrics({ register: registry });
  // Gauges named _total, which `promtool check metrics` refuses; nodejs_active_{handles,requests,resources}{type} carry the same counts.
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) registry.removeSingleMetric(name);
  // keel_event_loop_delay_* below says the same; these cost about 0.5 ms a scrape (the stddev walks the whole histogram).
  for (const stat of ['seconds', 'min_seconds', 'max_seconds', 'mean_seconds', 'stddev_seconds', 'p50_seconds', 'p90_seconds', 'p99_seconds']) registry.removeSingleMetric(`nodejs_eventloop_lag_${stat}`);

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
  const counter = (name: string, help: string, labelNames: readonly string[], read: Read) => {
    const c: Counter = new Counter({ name, help, labelNames, registers, collect: () => refill(c, name, labelNames.length === 0, read, (v, l = {}) => c.inc(l, v)) });
  };

  let scrapes = 0;
  /** `compute` once per scrape, for the metrics that share one pass over the universe. */
  const perScrape = <T>(compute: () => T): (() => T) => {
    let at = -1;
    let value: T;
    return () => {
      if (at !== scrapes) {
        value = compute();
        at = scrapes;
      }
      return value;
    };
  };

  /**
   * The symbols with series of their own (null: every one): those with a
   * book, the ones keel can trade, from the universe (or, without one, the
   * feature health's flags), and any with a position.
   */
  const ownSeries = perScrape((): ReadonlySet<string> | null => {
    if (perInstrument === 'all') return null;
    const own = new Set<string>();
    const universe = services.current('instruments') ?? bus.latest(FEATURE_HEALTH_TOPIC);
    if (universe) {
      const { symbols, booked } = universe;
      for (let i = 0; i < symbols.length; i++) if (booked[i]) own.add(symbols[i]!);
    }
    for (const p of bus.latest(PORTFOLIO_TOPIC)?.positions ?? []) own.add(p.symbol);
    return own;
  });
  const indexes = new WeakMap<readonly string[], ReadonlyMap<string, number>>();
  /** Calls `each` with the index of every one of `symbols` that has series of its own. */
  const forOwn = (symbols: readonly string[], each: (i: number) => void) => {
    const own = ownSeries();
    if (own === null) {
      for (let i = 0; i < symbols.length; i++) each(i);
      return;
    }
    // A component keeps one symbols list for its life: indexed once, a scrape costs what the traded instruments cost.
    let index = indexes.get(symbols);
    if (!index) indexes.set(symbols, (index = new Map(symbols.map((symbol, i) => [symbol, i]))));
    for (const symbol of own) {
      const i = index.get(symbol);
      if (i !== undefined) each(i);
    }
  };

  // Actors: from the supervision tree.
  gauge('keel_actor_up', 'Whether the actor is running (1) or not (0: starting, backing off, failed, stopped)', ['actor', 'kind'], (emit) => {
    for (const a of actors()) emit(a.status === 'running' ? 1 : 0, { actor: a.id, kind: a.kind });
  });
  gauge('keel_actor_status', "The actor's lifecycle status: 1 for the current one (starting, running, stopping, backoff, failed, stopped, exited)", ['actor', 'kind', 'status'], (emit) => {
    for (const a of actors()) emit(1, { actor: a.id, kind: a.kind, status: a.status });
  });
  counter('keel_actor_restarts_total', 'Times the supervisor restarted the actor since the daemon started', ['actor', 'kind'], (emit) => {
    for (const a of actors()) emit(a.restarts, { actor: a.id, kind: a.kind });
  });

  // The universe.
  gauge('keel_instruments', 'Instruments followed, by whether keel keeps their book (booked="true": depth, tradable) or has level-1 quotes only', ['booked'], (emit) => {
    const universe = services.current('instruments');
    if (!universe) return;
    let booked = 0;
    for (const b of universe.booked) if (b) booked++;
    emit(booked, { booked: 'true' });
    emit(universe.symbols.length - booked, { booked: 'false' });
  });

  // Feature health.
  gauge('keel_feature_health_score', 'Health score of each feature of each traded instrument (all of them with the inspector setting metrics.perInstrument: all), 0-100 (by default >= 80 HEALTHY, >= 50 WARNING, > 0 CRITICAL, 0 DISABLED); absent until judged', ['symbol', 'feature'], (emit) => {
    const h = bus.latest(FEATURE_HEALTH_TOPIC);
    if (!h) return;
    const features = h.schema.features;
    forOwn(h.symbols, (i) => {
      for (let f = 0; f < h.width; f++) {
        const score = h.scores[i * h.width + f]!;
        if (!Number.isNaN(score)) emit(score, { symbol: h.symbols[i]!, feature: features[f]! });
      }
    });
  });
  const census = perScrape(() => {
    const h = bus.latest(FEATURE_HEALTH_TOPIC);
    return h && healthCensus(h);
  });
  gauge(
    'keel_feature_health_features',
    'Judged features of every instrument by status now; advisory="true": judged, never a reason to stop trading (no model reads the feature, or its instrument has no book)',
    ['status', 'advisory'],
    (emit) => {
      const c = census();
      if (c) for (let a = 0; a < 2; a++) STATUSES.forEach((status, s) => emit(c.byStatus[a * STATUSES.length + s]!, { status, advisory: ADVISORY[a]! }));
    },
  );
  gauge('keel_feature_health_features_by_score', 'Judged features of every instrument by score now: a histogram of the scores, which take few values (100 less the penalties that apply)', ['score'], (emit) => {
    for (const [score, n] of census()?.byScore ?? []) emit(n, { score: String(score) });
  });
  gauge('keel_feature_quality_pct', 'Share of the judged features that are HEALTHY, percent', [], (emit) => {
    const c = census();
    if (c && c.judged > 0) emit((100 * c.healthy) / c.judged);
  });
  gauge('keel_feature_health_problems', 'Feature-health conditions stopping trading now (a bad model input, stale data, a silent feed)', [], (emit) => {
    const h = bus.latest(FEATURE_HEALTH_TOPIC);
    if (h) emit(h.problems.size);
  });

  // Regime and predictions: per traded instrument, counted for the universe.
  gauge('keel_regime_state', "Each traded instrument's market regime, 1 for the current one (absent before its first)", ['symbol', 'regime'], (emit) => {
    const r = bus.latest(REGIME_TOPIC);
    if (!r) return;
    forOwn(r.symbols, (i) => {
      const state = r.state[i]!;
      if (state >= 0) r.labels.forEach((regime, s) => emit(s === state ? 1 : 0, { symbol: r.symbols[i]!, regime }));
    });
  });
  gauge('keel_regime_instruments', 'Instruments of the universe in each regime now', ['regime'], (emit) => {
    const r = bus.latest(REGIME_TOPIC);
    if (!r) return;
    const counts = new Array<number>(r.labels.length).fill(0);
    for (const state of r.state) if (state >= 0) counts[state]!++;
    r.labels.forEach((regime, s) => emit(counts[s]!, { regime }));
  });
  counter('keel_regime_switches_total', 'Regime changes seen since the regime component started, all instruments together', [], (emit) => {
    const r = bus.latest(REGIME_TOPIC);
    if (r) emit(r.switches);
  });
  gauge('keel_prediction', "The models' latest prediction for each traded instrument at each horizon served (the demo models: log return of the mid over the horizon, bps); absent when none", ['symbol', 'horizon'], (emit) => {
    const p = bus.latest(PREDICTIONS_TOPIC);
    if (!p) return;
    for (const h of p.horizons) {
      const horizon = horizonLabel(h.horizonMs);
      forOwn(p.symbols, (i) => {
        const value = h.value[i]!;
        if (Number.isFinite(value)) emit(value, { symbol: p.symbols[i]!, horizon });
      });
    }
  });
  // Drift (models.drift): per model and traded instrument, and each model's live error after its horizon.
  const drift = () => bus.latest(MODEL_DRIFT_TOPIC);
  gauge('keel_model_input_psi', "Largest population stability index of a model's inputs for each traded instrument over the drift window, against the model's training bins", ['model', 'symbol'], (emit) => {
    const d = drift();
    if (!d) return;
    for (const m of d.models) forOwn(d.symbols, (i) => Number.isFinite(m.inputPsi[i]!) && emit(m.inputPsi[i]!, { model: m.id, symbol: d.symbols[i]! }));
  });
  gauge('keel_model_prediction_psi', "Population stability index of a model's predictions for each traded instrument over the drift window, against its held-out predictions", ['model', 'symbol'], (emit) => {
    const d = drift();
    if (!d) return;
    for (const m of d.models) forOwn(d.symbols, (i) => Number.isFinite(m.predictionPsi[i]!) && emit(m.predictionPsi[i]!, { model: m.id, symbol: d.symbols[i]! }));
  });
  gauge('keel_model_drifting_instruments', 'Instruments whose input or prediction PSI for a model is above the alert', ['model'], (emit) => {
    for (const m of drift()?.models ?? []) emit(m.drifted.length, { model: m.id });
  });
  const liveGauge = (name: string, help: string, read: (m: ModelDrift) => number) =>
    gauge(name, help, ['model'], (emit) => {
      for (const m of drift()?.models ?? []) if (Number.isFinite(read(m))) emit(read(m), { model: m.id });
    });
  liveGauge('keel_model_live_rmse', "A model's RMSE against realised returns once its horizon passed, over the error window (bps)", (m) => m.live.rmse);
  liveGauge('keel_model_live_zero_rmse', "The zero forecast's RMSE on the same realised returns (bps)", (m) => m.live.zeroRmse);
  liveGauge('keel_model_live_hit_rate', "Share of a model's resolved predictions that had the realised return's sign", (m) => m.live.hitRate);
  liveGauge('keel_model_live_dm_vs_zero', "Diebold-Mariano statistic of a model's squared errors against the zero forecast's: above 2.33, worse than predicting nothing at 99 %", (m) => m.live.dmVsZero);
  liveGauge('keel_model_heldout_rmse', "A model's held-out RMSE from its manifest (bps)", (m) => m.heldOut.rmse);
  liveGauge('keel_model_beyond_bound', "1 while a model's live error is beyond its bound and it serves no instrument", (m) => (m.beyondBound ? 1 : 0));
  gauge('keel_predicted_instruments', 'Instruments of the universe with a prediction in the latest frame, by horizon and the tier that served them', ['horizon', 'tier'], (emit) => {
    const p = bus.latest(PREDICTIONS_TOPIC);
    if (!p) return;
    for (const h of p.horizons) {
      const counts = new Map<string, number>();
      // Tiers are few and come in runs: the map is touched when the tier changes, not per instrument.
      let tier = '';
      let n = 0;
      for (let i = 0; i < p.symbols.length; i++) {
        if (!Number.isFinite(h.value[i]!)) continue;
        if (h.tier[i] !== tier) {
          if (n > 0) counts.set(tier, (counts.get(tier) ?? 0) + n);
          tier = h.tier[i]!;
          n = 0;
        }
        n++;
      }
      if (n > 0) counts.set(tier, (counts.get(tier) ?? 0) + n);
      const horizon = horizonLabel(h.horizonMs);
      for (const [name, count] of counts) emit(count, { horizon, tier: name });
    }
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

  // Scale-out: the shards this trading node reads (from its shard_reader), and the cluster's status as Redis last told it.
  const clusterStatus = (read: (s: ClusterStatus, emit: Emit) => void) => (emit: Emit) => {
    const s = bus.latest(CLUSTER_TOPIC)?.status;
    if (s) read(s, emit);
  };
  gauge('keel_cluster_shard_output_age_seconds', "Age of the newest output of each shard this node reads, by this node's clock against the tape time (since start before the first)", ['shard'], (emit) => {
    for (const s of bus.latest(CLUSTER_TOPIC)?.shards ?? []) if (Number.isFinite(s.ageMs)) emit(s.ageMs / 1000, { shard: String(s.shard) });
  });
  gauge('keel_cluster_shard_fresh', "Whether each shard this node reads has an output within the freshness bound (1) or is stale (0: halts the gate, or its instruments' predictions)", ['shard'], (emit) => {
    for (const s of bus.latest(CLUSTER_TOPIC)?.shards ?? []) emit(s.fresh ? 1 : 0, { shard: String(s.shard) });
  });
  gauge(
    'keel_cluster_shard_lag',
    'Input entries of each shard not yet delivered to a worker (XINFO GROUPS lag of the workers group); absent when Redis cannot tell',
    ['shard'],
    clusterStatus((s, emit) => {
      for (const sh of s.shards) if (sh.lag !== null) emit(sh.lag, { shard: String(sh.shard) });
    }),
  );
  gauge(
    'keel_cluster_shard_pending',
    'Input entries of each shard delivered to its worker and not yet committed (XINFO GROUPS pending of the workers group)',
    ['shard'],
    clusterStatus((s, emit) => {
      for (const sh of s.shards) emit(sh.pending, { shard: String(sh.shard) });
    }),
  );
  gauge(
    'keel_cluster_shard_input_age_seconds',
    "Age of each shard's newest input entry, by Redis's clock; absent for an empty input stream",
    ['shard'],
    clusterStatus((s, emit) => {
      for (const sh of s.shards) if (sh.lastInputAgeMs !== null) emit(sh.lastInputAgeMs / 1000, { shard: String(sh.shard) });
    }),
  );
  gauge(
    'keel_cluster_shard_owner',
    "Each shard's lease holder: 1 for the worker holding it (no series for an unowned shard)",
    ['shard', 'worker'],
    clusterStatus((s, emit) => {
      for (const sh of s.shards) if (sh.owner !== null) emit(1, { shard: String(sh.shard), worker: sh.owner });
    }),
  );
  gauge(
    'keel_cluster_shard_epoch',
    "The epoch of each shard's lease holder (it grows at every hand-over); absent without a holder",
    ['shard'],
    clusterStatus((s, emit) => {
      for (const sh of s.shards) if (sh.epoch !== null) emit(sh.epoch, { shard: String(sh.shard) });
    }),
  );
  gauge(
    'keel_cluster_workers',
    'Shard workers in the membership set (a dead one until its heartbeat expires)',
    [],
    clusterStatus((s, emit) => emit(s.workers.length)),
  );
  gauge(
    'keel_cluster_worker_shards',
    'Shards whose lease each worker holds',
    ['worker'],
    clusterStatus((s, emit) => {
      for (const w of s.workers) emit(w.shards.length, { worker: w.worker });
    }),
  );
  gauge(
    'keel_cluster_worker_heartbeat_age_seconds',
    "Time since each worker's last heartbeat, by Redis's clock",
    ['worker'],
    clusterStatus((s, emit) => {
      for (const w of s.workers) emit(w.heartbeatAgeMs / 1000, { worker: w.worker });
    }),
  );

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
  counter('keel_predictor_frames_total', 'Feature frames the models answered', [], predictor((s) => s.frames));
  counter('keel_predictor_skipped_frames_total', 'Feature frames skipped because inference was behind', [], predictor((s) => s.skipped));
  counter('keel_predictor_unwatched_frames_total', "Frames the drift monitor's thread was too far behind to watch", [], predictor((s) => s.monitor.skipped));
  counter('keel_predictor_late_frames_total', 'Predictions dropped because a newer frame was answered first', [], predictor((s) => s.late));
  gauge('keel_predictor_faults', 'Models that failed on the last frame (their instruments fall back to the other members)', [], predictor((s) => s.faults.length));
  const journal = (read: (j: FileJournal) => number) => (emit: Emit) => {
    const j = services.current('journal');
    if (j instanceof FileJournal) emit(read(j));
  };
  counter('keel_journal_records_total', 'Ledger records made durable (orders, fills, gate moves, ...)', [], journal((j) => j.stats.records));
  counter('keel_journal_flushes_total', 'Batches of records written and fsynced to the journal', [], journal((j) => j.stats.batches));
  counter('keel_journal_bytes_total', 'Bytes written to the journal', [], journal((j) => j.stats.bytes));
  counter('keel_journal_flush_seconds_total', 'Time spent writing and fsyncing journal batches (over keel_journal_flushes_total: the mean flush)', [], journal((j) => j.flushMs / 1000));

  // Event loop: how late timers ran, from a monitor of our own, per scrape window.
  const resolutionMs = 10;
  const loop = monitorEventLoopDelay({ resolution: resolutionMs });
  loop.enable();
  // The monitor records the whole interval between its timer's runs: the delay is what exceeds the resolution.
  const late = (ns: number) => Math.max(0, ns / 1e9 - resolutionMs / 1000);
  const loopDelay = (name: string, help: string, read: () => number, last = false) =>
    gauge(name, `How late the event loop ran timers since the previous scrape, seconds: ${help}`, [], (emit) => {
      if (loop.count > 0) emit(late(read()));
      // A scrape collects in registration order: the last of the three starts the next window.
      if (last) loop.reset();
    });
  loopDelay('keel_event_loop_delay_p50_seconds', 'the median', () => loop.percentile(50));
  loopDelay('keel_event_loop_delay_p99_seconds', 'the 99th percentile', () => loop.percentile(99));
  loopDelay('keel_event_loop_delay_max_seconds', 'the longest', () => loop.max, true);

  // Streams nothing retains: counted per batch or per frame as they pass.
  const depthRows = new Counter({ name: 'keel_depth_rows_total', help: 'Order book (L2 depth) updates received', registers });
  const depthBatches = new Counter({ name: 'keel_depth_batches_total', help: 'Batches the depth updates arrived in', registers });
  const trades = new Counter({ name: 'keel_trades_total', help: 'Trade prints (tick-by-tick last) received', registers });
  const quotes = new Counter({ name: 'keel_quote_changes_total', help: 'Level-1 tops that changed, of instruments without a book (an instrument counts once per socket read, however many ticks it took)', registers });
  const predictionLatency = new Histogram({
    name: 'keel_prediction_latency_seconds',
    help: 'Per features frame, from sending it to the models to the slowest model batch answering, seconds',
    buckets: LATENCY_BUCKETS,
    registers,
  });
  const inferenceTime = new Histogram({ name: 'keel_inference_seconds', help: 'Per features frame, time inside onnxruntime of the slowest model batch, seconds', buckets: LATENCY_BUCKETS, registers });
  const flushTime = new Histogram({ name: 'keel_journal_flush_duration_seconds', help: 'Per journal batch, time to write and fsync it, seconds', buckets: FLUSH_BUCKETS, registers });
  // These run in the producer's call stack: they must never throw (observe() refuses a non-finite value).
  const observe = (h: Histogram, ms: number) => {
    if (Number.isFinite(ms)) h.observe(ms / 1000);
  };
  let unhookJournal = () => {};
  const hookJournal = (j: Journal | undefined) => {
    unhookJournal();
    unhookJournal = j instanceof FileJournal ? j.onFlush((ms) => observe(flushTime, ms)) : () => {};
  };
  hookJournal(services.current('journal'));
  const unsubscribe = [
    services.onProvided('journal', hookJournal),
    () => unhookJournal(),
    bus.subscribe(DEPTH_TOPIC, (batch) => {
      depthRows.inc(batch.count);
      depthBatches.inc();
    }),
    bus.subscribe(TRADES_TOPIC, (batch) => trades.inc(batch.count)),
    bus.subscribe(QUOTE_TOPS_TOPIC, (board) => quotes.inc(board.changedCount)),
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
    render: () => {
      scrapes++;
      return registry.metrics();
    },
    stop() {
      for (const u of unsubscribe) u();
      loop.disable();
    },
  };
}

interface HealthCensus {
  /** Judged features by `advisory * STATUSES.length + status`. */
  readonly byStatus: readonly number[];
  /** Judged features by score. */
  readonly byScore: ReadonlyMap<number, number>;
  readonly judged: number;
  readonly healthy: number;
}

/**
 * Every feature of every instrument counted by score and status, in one
 * pass over the scores (80,000 at 5,000 instruments). Scores take a handful
 * of values in long runs, so a run is tallied when it ends; the status is a
 * function of the score (FeatureHealth's statusOf), worked out per distinct
 * score rather than read per feature.
 */
function healthCensus(h: FeatureHealth): HealthCensus {
  // By advisory bit (as FeatureHealth.isAdvisory: every feature of an instrument without a book, else the advisory columns).
  const tallies = [new Map<number, number>(), new Map<number, number>()] as const;
  const { scores, booked, advisory, width } = h;
  let last = NaN;
  let lastAdvisory = 0;
  let run = 0;
  for (let i = 0, k = 0; i < booked.length; i++) {
    const bookless = booked[i] === 0;
    for (let f = 0; f < width; f++, k++) {
      const score = scores[k]!;
      const adv = bookless ? 1 : advisory[f]!;
      if (score === last && adv === lastAdvisory) {
        run++;
        continue;
      }
      if (run > 0) tallies[lastAdvisory]!.set(last, (tallies[lastAdvisory]!.get(last) ?? 0) + run);
      // NaN (not judged yet) never equals `last`: each one lands here and is skipped.
      run = Number.isNaN(score) ? 0 : 1;
      last = score;
      lastAdvisory = adv;
    }
  }
  if (run > 0) tallies[lastAdvisory]!.set(last, (tallies[lastAdvisory]!.get(last) ?? 0) + run);

  const byStatus = new Array<number>(2 * STATUSES.length).fill(0);
  const byScore = new Map<number, number>();
  tallies.forEach((tally, adv) => {
    for (const [score, n] of tally) {
      byStatus[adv * STATUSES.length + statusOf(score, h.options.thresholds)]! += n;
      byScore.set(score, (byScore.get(score) ?? 0) + n);
    }
  });
  const judged = byStatus.reduce((a, b) => a + b, 0);
  const healthy = byStatus[HEALTHY]! + byStatus[STATUSES.length + HEALTHY]!;
  return { byStatus, byScore, judged, healthy };
}
