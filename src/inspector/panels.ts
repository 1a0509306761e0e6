/**
 * The market and trading panels, read from the states retained on the bus
 * and the services provided now: nothing here waits on a component or touches the hot path. Also
 * the JSON of /api/features, /api/positions, /api/orders and /api/cluster.
 */
import type { Bus } from '../bus.js';
import type { Clock } from '../clock.js';
import type { ServiceLookup } from '../services.js';
import { checkSystemHealth } from '../health/system-health.js';
import { STATUSES } from '../market/feature-health.js';
import type { LedgerOrder } from '../trading/ledger.js';
import type { PortfolioView } from '../trading/portfolio.js';
import { underlyingRisk } from '../options/option-risk.js';
import type { ModelDrift } from '../models/monitor.js';
import { horizonLabel } from '../models/horizon.js';
import type { ClusterPanel, ClusterShardPanel, FeatureHealthPanel, InstrumentPanel, ModelDriftPanel, ModelSlotPanel, OptionRiskPanel, Panels } from './protocol.js';
import { CLUSTER_TOPIC, MODEL_DRIFT_TOPIC, FEATURE_HEALTH_TOPIC, IB_STATUS_TOPIC, OPTIONS_CHAIN_TOPIC, PORTFOLIO_TOPIC, PREDICTIONS_TOPIC, REDIS_STATUS_TOPIC, REGIME_TOPIC } from '../topics.js';

const finite = (x: number | undefined): number | null => (x !== undefined && Number.isFinite(x) ? x : null);

export function featureHealthPanel(bus: Bus): FeatureHealthPanel | null {
  const health = bus.latest(FEATURE_HEALTH_TOPIC);
  if (!health) return null;
  const features = health.schema.features;
  const scores = health.symbols.map((_, i) => features.map((_, k) => finite(health.scores[i * health.width + k])));
  const status = health.symbols.map((_, i) => features.map((_, k) => STATUSES[health.status[i * health.width + k]!] ?? ''));
  return { symbols: health.symbols, features, scores, status, qualityPct: finite(health.qualityPct()), problems: Object.fromEntries(health.problems) };
}

function instruments(bus: Bus, services: ServiceLookup, portfolio: PortfolioView | undefined): InstrumentPanel[] {
  const symbols = services.current('instruments')?.symbols ?? portfolio?.positions.map((p) => p.symbol) ?? [];
  const books = services.current('books');
  const regime = bus.latest(REGIME_TOPIC);
  const predictions = bus.latest(PREDICTIONS_TOPIC);
  // The frames list the same universe in the same order: look up by place, not by a search per symbol (quadratic at 5,000).
  const at = (list: readonly string[], symbol: string, i: number) => (list[i] === symbol ? i : list.indexOf(symbol));
  const positions = new Map(portfolio?.positions.map((q) => [q.symbol, q]));
  return symbols.map((symbol, i) => {
    const book = books?.book(i);
    const r = regime ? regime.state[at(regime.symbols, symbol, i)] : undefined;
    const p = predictions ? at(predictions.symbols, symbol, i) : -1;
    const position = positions.get(symbol);
    return {
      symbol,
      bid: finite(book?.bestBid()),
      ask: finite(book?.bestAsk()),
      regime: r !== undefined && r >= 0 ? (regime!.labels[r] ?? String(r)) : null,
      predictions: predictions ? predictions.horizons.map((h) => finite(p >= 0 ? h.value[p] : undefined)) : [],
      position: position?.quantity ?? 0,
      averagePrice: position && position.quantity !== 0 ? position.averagePrice : null,
      unrealizedPnl: position?.unrealizedPnl ?? 0,
      realizedPnl: position?.realizedPnl ?? 0,
    };
  });
}

/** A model's drift report in the panel's numbers. */
function driftPanel(m: ModelDrift, symbols: readonly string[]): ModelDriftPanel {
  let worst = -1;
  m.inputPsi.forEach((p, i) => {
    if (Number.isFinite(p) && (worst < 0 || p > m.inputPsi[worst]!)) worst = i;
  });
  return {
    drifting: m.drifted.length,
    maxInputPsi: worst >= 0 ? m.inputPsi[worst]! : null,
    worst: worst >= 0 ? `${symbols[worst]} ${m.inputOf[worst]}` : null,
    horizonMs: m.horizonMs ?? null,
    resolved: m.live.n,
    liveRmse: finite(m.live.rmse),
    zeroRmse: finite(m.live.zeroRmse),
    hitRate: finite(m.live.hitRate),
    dmVsZero: finite(m.live.dmVsZero),
    heldOutRmse: finite(m.heldOut.rmse),
    beyondBound: m.beyondBound,
  };
}

function modelSlots(bus: Bus, services: ServiceLookup): ModelSlotPanel[] | undefined {
  const registry = services.current('predictor')?.registry;
  if (!registry) return undefined;
  const drift = bus.latest(MODEL_DRIFT_TOPIC);
  return registry.slotNames().map((slot) => {
    const live = registry.live(slot);
    const d = drift?.models.find((m) => m.id === live.id && !m.shadow);
    return {
      slot,
      model: live.id,
      family: live.family,
      input: `${live.window} x ${live.columns.length}`,
      previous: registry.previous(slot)?.id ?? null,
      shadow: registry.shadowOf(slot)?.model.id ?? null,
      drift: d && drift ? driftPanel(d, drift.symbols) : null,
    };
  });
}

export function buildPanels(bus: Bus, services: ServiceLookup, phase: string, clock: Pick<Clock, 'now' | 'wallNow'>, equity: Panels['equity']): Panels {
  const gate = services.current('riskGate');
  const ib = bus.latest(IB_STATUS_TOPIC);
  const redis = bus.latest(REDIS_STATUS_TOPIC);
  const portfolio = bus.latest(PORTFOLIO_TOPIC);
  const ledger = services.current('ledger');
  const models = modelSlots(bus, services);
  const cluster = clusterPanel(bus);
  return {
    at: clock.wallNow(),
    phase,
    health: checkSystemHealth(bus, services, phase, clock).overall_status,
    // Read from the gate at each build: what holds it now, never the reason of a transition that has cleared since.
    gate: gate ? { state: gate.state, reason: gate.reason, conditions: gate.holds(), options: gate.optionHolds() } : null,
    ib: ib ? { state: ib.state, reason: ib.reason } : null,
    redis: redis ? { state: redis.state, reason: redis.reason } : null,
    featureHealth: featureHealthPanel(bus),
    horizons: (bus.latest(PREDICTIONS_TOPIC)?.horizons ?? []).map((h) => horizonLabel(h.horizonMs)),
    instruments: instruments(bus, services, portfolio),
    account: portfolio
      ? {
          cash: portfolio.cash,
          netPnl: portfolio.netPnl,
          realizedPnl: portfolio.realizedPnl,
          unrealizedPnl: portfolio.unrealizedPnl,
          fees: portfolio.fees,
          grossExposure: portfolio.grossExposure,
          netExposure: portfolio.netExposure,
          workingOrders: ledger?.workingOrders().length ?? 0,
        }
      : null,
    equity,
    ...(models ? { models } : {}),
    ...optionRiskPanel(bus, services),
    ...(cluster ? { cluster } : {}),
  };
}

/** The `cluster` state (a shard_reader's) as the page shows it; null on a node that does not scale out. */
export function clusterPanel(bus: Bus): ClusterPanel | null {
  const view = bus.latest(CLUSTER_TOPIC);
  if (!view) return null;
  const status = view.status;
  const rows = new Map<number, ClusterShardPanel>();
  for (const s of view.shards) {
    rows.set(s.shard, { shard: s.shard, symbols: s.symbols, owner: null, epoch: null, ageMs: finite(s.ageMs), fresh: s.fresh, lag: null, pending: null });
  }
  for (const s of status?.shards ?? []) {
    const row = rows.get(s.shard);
    rows.set(s.shard, { shard: s.shard, symbols: row?.symbols ?? [], owner: s.owner, epoch: s.epoch, ageMs: row?.ageMs ?? null, fresh: row?.fresh ?? null, lag: s.lag, pending: s.pending });
  }
  return {
    shards: [...rows.values()].sort((a, b) => a.shard - b.shard),
    workers: status?.workers.map((w) => ({ worker: w.worker, shards: w.shards.length, heartbeatAgeMs: w.heartbeatAgeMs })) ?? [],
    statusAt: status?.at ?? null,
    problems: Object.fromEntries(view.problems),
  };
}

/** The portfolio's greeks, premium and contracts in the option chain's underlying, beside the gate's option limits. */
function optionRiskPanel(bus: Bus, services: ServiceLookup): { optionRisk?: OptionRiskPanel } {
  const chain = bus.latest(OPTIONS_CHAIN_TOPIC);
  const ledger = services.current('ledger');
  const limits = services.current('riskGate')?.limits?.limits.options;
  if (!chain || !ledger || !limits) return {};
  const risk = underlyingRisk(chain.underlying, chain, ledger);
  const against = (value: number, limit: number) => ({ value: finite(value), limit });
  return {
    optionRisk: {
      underlying: chain.underlying,
      delta: against(risk.portfolio.delta, limits.maxDelta),
      gamma: against(risk.portfolio.gamma, limits.maxGamma),
      vega: against(risk.portfolio.vega, limits.maxVega),
      theta: against(risk.portfolio.theta, limits.maxTheta),
      premiumAtRisk: against(risk.premiumAtRisk, limits.maxPremiumAtRisk),
      contractsInExpiry: against(Math.max(0, ...risk.contractsByExpiry.values()), limits.maxContractsPerExpiry),
    },
  };
}

/** GET /api/features: the latest value and health of every feature of every instrument. */
export function featuresReport(bus: Bus, services: ServiceLookup) {
  const engine = services.current('featureEngine');
  const symbols = services.current('instruments')?.symbols ?? [];
  return {
    symbols,
    features: engine?.schema.features ?? [],
    values: engine ? symbols.map((_, i) => engine.schema.features.map((_, k) => finite(engine.values[i * engine.width + k]))) : [],
    health: featureHealthPanel(bus),
  };
}

/** GET /api/positions: the portfolio as the ledger books it. */
export function positionsReport(bus: Bus) {
  return bus.latest(PORTFOLIO_TOPIC) ?? null;
}

/** GET /api/orders: working orders, and the latest `limit` of the day's orders newest first. */
export function ordersReport(services: ServiceLookup, limit = 200): { working: LedgerOrder[]; recent: LedgerOrder[]; total: number } | null {
  const ledger = services.current('ledger');
  if (!ledger) return null;
  const all = [...ledger.orders.values()];
  return { working: ledger.workingOrders(), recent: all.slice(-limit).reverse(), total: all.length };
}
