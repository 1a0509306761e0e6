/**
 * The one-call health rollup of the whole daemon, in the shape the
 * production system keel learns from answers on /health:
 *
 *   {healthy, phase, check_time_ms, components: {ib, features, data_age,
 *    regime, predictor, redis, risk_gate}, overall_status}
 *
 * It only reads the states retained on the bus and the services provided, so it costs
 * microseconds and never waits on anything. Each component gets OK,
 * DEGRADED or CRITICAL; the overall status is the worst of them.
 *
 * The risk gate's line is what holds it now (the gate's `holds()`: its
 * conditions, latched evidence, an operator's halt), read at each call,
 * never the reason of a transition that has since cleared.
 */
import type { Bus } from '../bus.js';
import type { Clock } from '../clock.js';
import type { ServiceLookup } from '../services.js';
import type { IbStatus } from '../ib/link.js';
import type { FeatureHealth } from '../market/feature-health.js';
import type { FeatureEngine } from '../market/features.js';
import type { RedisStatus } from '../redis/bridge.js';
import type { RiskGate } from '../trading/risk-gate.js';
import { FEATURE_HEALTH_TOPIC, IB_STATUS_TOPIC, REDIS_STATUS_TOPIC, REGIME_TOPIC } from '../topics.js';
import type { PredictorStatus } from '../models/predictor.js';
import type { RegimeFrame } from '../models/regime-tracker.js';

export type Status = 'OK' | 'DEGRADED' | 'CRITICAL';
export type DataAge = 'Fresh' | 'Recent' | 'OLD' | 'STALE';

export interface ComponentHealth {
  readonly status: Status;
  readonly detail: string;
}

export interface SystemHealth {
  readonly healthy: boolean;
  readonly phase: string;
  readonly check_time_ms: number;
  readonly components: {
    readonly ib: ComponentHealth;
    readonly features: ComponentHealth & { readonly quality_pct: number | null };
    readonly data_age: ComponentHealth & { readonly label: DataAge; readonly age_ms: number | null };
    readonly regime: ComponentHealth;
    readonly predictor: ComponentHealth;
    readonly redis: ComponentHealth;
    /** `holds`: what keeps the gate out of ACTIVE now, `who: why`, most binding first (empty when ACTIVE). */
    readonly risk_gate: ComponentHealth & { readonly holds: readonly string[] };
  };
  readonly overall_status: Status;
}

const MINUTE = 60_000;

export function dataAgeLabel(ageMs: number): DataAge {
  return ageMs < 5 * MINUTE ? 'Fresh' : ageMs < 15 * MINUTE ? 'Recent' : ageMs < 60 * MINUTE ? 'OLD' : 'STALE';
}

const RANK: Record<Status, number> = { OK: 0, DEGRADED: 1, CRITICAL: 2 };

function ib(status: IbStatus | undefined): ComponentHealth {
  if (!status) return { status: 'CRITICAL', detail: 'no IB connection component' };
  const detail = `${status.state}: ${status.reason}`;
  return { status: status.state === 'connected' ? 'OK' : status.state === 'degraded' ? 'DEGRADED' : 'CRITICAL', detail };
}

function features(health: FeatureHealth | undefined) {
  const quality = health?.qualityPct() ?? NaN;
  if (Number.isNaN(quality)) return { status: 'DEGRADED' as const, detail: 'no feature judged yet (warming up or no data)', quality_pct: null };
  const status: Status = quality >= 80 ? 'OK' : quality >= 50 ? 'DEGRADED' : 'CRITICAL';
  return { status, detail: `${quality.toFixed(1)} % of features HEALTHY`, quality_pct: quality };
}

function dataAge(engine: FeatureEngine | undefined, now: number) {
  let newest = -Infinity;
  for (const at of engine?.lastDataAt ?? []) if (at > newest) newest = at;
  if (newest === -Infinity) return { status: 'DEGRADED' as const, detail: 'no market data yet', label: 'STALE' as const, age_ms: null };
  const age = now - newest;
  const label = dataAgeLabel(age);
  return { status: label === 'OLD' || label === 'STALE' ? ('DEGRADED' as const) : ('OK' as const), detail: `newest market data ${Math.round(age)} ms old`, label, age_ms: age };
}

function gate(g: RiskGate | undefined): ComponentHealth & { holds: readonly string[] } {
  if (!g) return { status: 'CRITICAL', detail: 'no risk gate: nothing may trade', holds: [] };
  const holds = g.holds();
  const status: Status = g.state === 'ACTIVE' ? 'OK' : g.state === 'REDUCING' ? 'DEGRADED' : 'CRITICAL';
  return { status, detail: `${g.state}: ${holds.length > 0 ? holds.join('; ') : g.reason}`, holds };
}

/** Not built yet, or not configured: reported, never counted against the system. */
const absent = (detail: string): ComponentHealth => ({ status: 'OK', detail });

/** Models answer once per frame of their clock: three missed frames in a row (and at least 5 s) is news. */
const silentAfterMs = (intervalMs: number) => Math.max(5_000, 3 * intervalMs);

function regime(frame: RegimeFrame | undefined, now: number): ComponentHealth {
  if (!frame) return absent('not configured or no frame yet');
  const age = now - frame.at;
  if (age > silentAfterMs(frame.intervalMs)) return { status: 'DEGRADED', detail: `${frame.model}: no regime update for ${Math.round(age)} ms` };
  let known = 0;
  for (const s of frame.state) if (s >= 0) known++;
  if (known === 0) return { status: 'DEGRADED', detail: `${frame.model}: no instrument has a regime yet (warming up)` };
  return { status: 'OK', detail: `${frame.model}: ${known} of ${frame.symbols.length} instruments have a regime` };
}

function predictor(status: PredictorStatus | undefined, now: number): ComponentHealth {
  if (!status) return absent('not configured');
  if (status.faults.length > 0) return { status: 'DEGRADED', detail: `model fault: ${status.faults.join('; ')}` };
  if (Number.isNaN(status.lastAt)) return { status: 'DEGRADED', detail: 'no prediction yet' };
  const age = now - status.lastAt;
  if (age > silentAfterMs(status.intervalMs)) return { status: 'DEGRADED', detail: `no prediction for ${Math.round(age)} ms` };
  return { status: 'OK', detail: `${status.frames} frames served, ${status.skipped} skipped` };
}

/** No status: no redis component, Redis not configured. Down is CRITICAL (the gate halts on it); resyncing is on its way back. */
function redis(status: RedisStatus | undefined): ComponentHealth {
  if (!status) return absent('not configured');
  const missed = status.missed > 0 ? `, ${status.missed} messages missed` : '';
  if (status.state === 'connected') return { status: 'OK', detail: `connected to ${status.url}` };
  if (status.state === 'resyncing') return { status: 'DEGRADED', detail: `resyncing ${status.url}: ${status.reason}${missed}` };
  return { status: 'CRITICAL', detail: `unreachable at ${status.url}: ${status.reason}${missed}` };
}

export function checkSystemHealth(bus: Bus, services: ServiceLookup, phase: string, clock: Pick<Clock, 'now'>): SystemHealth {
  const started = clock.now();
  const components = {
    ib: ib(bus.latest(IB_STATUS_TOPIC)),
    features: features(bus.latest(FEATURE_HEALTH_TOPIC)),
    data_age: dataAge(services.current('featureEngine'), started),
    regime: regime(bus.latest(REGIME_TOPIC), started),
    predictor: predictor(services.current('predictor'), started),
    redis: redis(bus.latest(REDIS_STATUS_TOPIC)),
    risk_gate: gate(services.current('riskGate')),
  };
  let overall: Status = phase === 'running' ? 'OK' : phase === 'failed' ? 'CRITICAL' : 'DEGRADED';
  for (const c of Object.values(components)) if (RANK[c.status] > RANK[overall]) overall = c.status;
  return { healthy: overall === 'OK', phase, check_time_ms: clock.now() - started, components, overall_status: overall };
}
