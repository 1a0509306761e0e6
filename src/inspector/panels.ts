/**
 * The market and trading panels, read from what components retain on the
 * bus: nothing here waits on a component or touches the hot path. Also
 * the JSON of /api/features, /api/positions and /api/orders.
 */
import type { Bus } from '../bus.js';
import type { Clock } from '../clock.js';
import { FEATURE_HEALTH_TOPIC } from '../actors/feature-health.js';
import { FEATURES_ENGINE_TOPIC } from '../actors/features.js';
import { LEDGER_TOPIC } from '../actors/journal.js';
import { PREDICTIONS_TOPIC } from '../actors/predictor.js';
import { REGIME_TOPIC, type RegimeFrame } from '../actors/regime.js';
import { RISK_GATE_TOPIC } from '../actors/risk-gate.js';
import { INSTRUMENTS_TOPIC } from '../actors/subscriptions.js';
import { checkSystemHealth } from '../health/system-health.js';
import { STATUS_TOPIC, type IbStatus } from '../ib/link.js';
import { BOOK_TOPIC, type OrderBooks } from '../market/books.js';
import { STATUSES, type FeatureHealth } from '../market/feature-health.js';
import type { FeatureEngine } from '../market/features.js';
import type { PredictionFrame } from '../models/predictor.js';
import { REDIS_STATUS_TOPIC, type RedisStatus } from '../redis/bridge.js';
import type { Ledger, LedgerOrder } from '../trading/ledger.js';
import { PORTFOLIO_TOPIC, type PortfolioView } from '../trading/portfolio.js';
import type { RiskGate } from '../trading/risk-gate.js';
import type { FeatureHealthPanel, InstrumentPanel, Panels } from './protocol.js';

const finite = (x: number | undefined): number | null => (x !== undefined && Number.isFinite(x) ? x : null);

export function featureHealthPanel(bus: Bus): FeatureHealthPanel | null {
  const health = bus.latest<FeatureHealth>(FEATURE_HEALTH_TOPIC);
  if (!health) return null;
  const features = health.schema.features;
  const scores = health.symbols.map((_, i) => features.map((_, k) => finite(health.scores[i * health.width + k])));
  const status = health.symbols.map((_, i) => features.map((_, k) => STATUSES[health.status[i * health.width + k]!] ?? ''));
  return { symbols: health.symbols, features, scores, status, qualityPct: finite(health.qualityPct()), problems: Object.fromEntries(health.problems) };
}

function instruments(bus: Bus, portfolio: PortfolioView | undefined): InstrumentPanel[] {
  const symbols = bus.latest<readonly string[]>(INSTRUMENTS_TOPIC) ?? portfolio?.positions.map((p) => p.symbol) ?? [];
  const books = bus.latest<OrderBooks>(BOOK_TOPIC);
  const regime = bus.latest<RegimeFrame>(REGIME_TOPIC);
  const predictions = bus.latest<PredictionFrame>(PREDICTIONS_TOPIC);
  // The frames list the same universe in the same order: look up by place, not by a search per symbol (quadratic at 5,000).
  const at = (list: readonly string[], symbol: string, i: number) => (list[i] === symbol ? i : list.indexOf(symbol));
  const positions = new Map(portfolio?.positions.map((q) => [q.symbol, q]));
  return symbols.map((symbol, i) => {
    const book = books?.book(i);
    const r = regime ? regime.state[at(regime.symbols, symbol, i)] : undefined;
    const p = predictions ? predictions.value[at(predictions.symbols, symbol, i)] : undefined;
    const position = positions.get(symbol);
    return {
      symbol,
      bid: finite(book?.bestBid()),
      ask: finite(book?.bestAsk()),
      regime: r !== undefined && r >= 0 ? (regime!.labels[r] ?? String(r)) : null,
      prediction: finite(p),
      position: position?.quantity ?? 0,
      averagePrice: position && position.quantity !== 0 ? position.averagePrice : null,
      unrealizedPnl: position?.unrealizedPnl ?? 0,
      realizedPnl: position?.realizedPnl ?? 0,
    };
  });
}

export function buildPanels(bus: Bus, phase: string, clock: Pick<Clock, 'now' | 'wallNow'>, equity: Panels['equity']): Panels {
  const gate = bus.latest<RiskGate>(RISK_GATE_TOPIC);
  const ib = bus.latest<IbStatus>(STATUS_TOPIC);
  const redis = bus.latest<RedisStatus>(REDIS_STATUS_TOPIC);
  const portfolio = bus.latest<PortfolioView>(PORTFOLIO_TOPIC);
  const ledger = bus.latest<Ledger>(LEDGER_TOPIC);
  return {
    at: clock.wallNow(),
    phase,
    health: checkSystemHealth(bus, phase, clock).overall_status,
    gate: gate ? { state: gate.state, reason: gate.reason, conditions: gate.activeConditions() } : null,
    ib: ib ? { state: ib.state, reason: ib.reason } : null,
    redis: redis ? { state: redis.state, reason: redis.reason } : null,
    featureHealth: featureHealthPanel(bus),
    instruments: instruments(bus, portfolio),
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
  };
}

/** GET /api/features: the latest value and health of every feature of every instrument. */
export function featuresReport(bus: Bus) {
  const engine = bus.latest<FeatureEngine>(FEATURES_ENGINE_TOPIC);
  const symbols = bus.latest<readonly string[]>(INSTRUMENTS_TOPIC) ?? [];
  return {
    symbols,
    features: engine?.schema.features ?? [],
    values: engine ? symbols.map((_, i) => engine.schema.features.map((_, k) => finite(engine.values[i * engine.width + k]))) : [],
    health: featureHealthPanel(bus),
  };
}

/** GET /api/positions: the portfolio as the ledger books it. */
export function positionsReport(bus: Bus) {
  return bus.latest<PortfolioView>(PORTFOLIO_TOPIC) ?? null;
}

/** GET /api/orders: working orders, and the latest `limit` of the day's orders newest first. */
export function ordersReport(bus: Bus, limit = 200): { working: LedgerOrder[]; recent: LedgerOrder[]; total: number } | null {
  const ledger = bus.latest<Ledger>(LEDGER_TOPIC);
  if (!ledger) return null;
  const all = [...ledger.orders.values()];
  return { working: ledger.workingOrders(), recent: all.slice(-limit).reverse(), total: all.length };
}
