/**
 * The simulator's implied-volatility surface: SSVI (Gatheral & Jacquier,
 * "Arbitrage-free SVI volatility surfaces", 2014), pure functions on numbers.
 *
 * Total implied variance at log forward moneyness k = ln(K/F) is
 *   w(k, θ) = θ/2 · [1 + ρφk + √((φk + ρ)² + 1 − ρ²)],
 * θ the at-the-money total variance, φ(θ) = η / (θ^γ (1 + θ)^(1−γ)) (their
 * power-law form). With 0 ≤ γ ≤ ½ and η(1 + |ρ|) ≤ 2 it is free of
 * butterfly arbitrage, and with θ increasing in time free of calendar
 * arbitrage (θφ(θ) is non-decreasing and within their bound for these φ).
 * ρ < 0 gives SPY's put skew; γ = ½ makes the at-the-money skew grow like
 * 1/√T towards expiry, as 0DTE skews do.
 *
 * θ comes from a mean-reverting at-the-money variance: forward variance
 * v̄² + (v² − v̄²)e^{−κs}, integrated over business time (session hours
 * count fully, nights, weekends and holidays at OFF_SESSION_WEIGHT), so θ
 * increases with the expiry. The simulator reports implied volatility in
 * calendar time, √(w / T) with T in 365-day years, as IB does: the same
 * variance spread over the calendar.
 */
import { newYorkTimeMs } from '../../options/expiry.js';
import { closeOf, isBusinessDay } from '../../options/calendar.js';

export interface SsviParams {
  /** Correlation-like skew parameter, in (−1, 1); negative for a put skew. */
  readonly rho: number;
  readonly eta: number;
  /** In [0, ½]. */
  readonly gamma: number;
}

/** SPY-like: a steep put skew, η(1 + |ρ|) = 1.7. */
export const SPY_SSVI: SsviParams = { rho: -0.7, eta: 1.0, gamma: 0.5 };

/** Why the parameters could allow static arbitrage, or undefined when they cannot. */
export function ssviArbitrage(p: SsviParams): string | undefined {
  if (!(Math.abs(p.rho) < 1)) return `|rho| must be below 1, got ${p.rho}`;
  if (!(p.gamma >= 0 && p.gamma <= 0.5)) return `gamma must be in [0, 0.5], got ${p.gamma}`;
  if (!(p.eta > 0 && p.eta * (1 + Math.abs(p.rho)) <= 2)) return `eta (1 + |rho|) must be in (0, 2], got ${p.eta * (1 + Math.abs(p.rho))}`;
  return undefined;
}

export function phi(theta: number, p: SsviParams): number {
  return p.eta / (Math.pow(theta, p.gamma) * Math.pow(1 + theta, 1 - p.gamma));
}

/** w(k, θ): total implied variance at log forward moneyness k. */
export function totalVariance(k: number, theta: number, p: SsviParams): number {
  if (!(theta > 0)) return 0;
  const pk = phi(theta, p) * k;
  return 0.5 * theta * (1 + p.rho * pk + Math.sqrt((pk + p.rho) * (pk + p.rho) + 1 - p.rho * p.rho));
}

/** The at-the-money variance process: its level now, its long-run level and its speed, per business year. */
export interface AtmVariance {
  /** At-the-money volatility now (a decimal, business time). */
  readonly vol: number;
  /** Long-run at-the-money volatility. */
  readonly longRunVol: number;
  /** Mean-reversion speed, per business year. */
  readonly kappa: number;
}

/** θ(τ) = ∫₀^τ [v̄² + (v² − v̄²)e^{−κs}] ds: increasing in τ, since the forward variance is positive. */
export function atmTotalVariance(tau: number, a: AtmVariance): number {
  if (!(tau > 0)) return 0;
  const longRun = a.longRunVol * a.longRunVol;
  const excess = a.vol * a.vol - longRun;
  const decay = a.kappa * tau < 1e-8 ? tau : -Math.expm1(-a.kappa * tau) / a.kappa;
  return longRun * tau + excess * decay;
}

/**
 * Calendar-time implied volatility of strike K at spot S: k = ln(K/F),
 * F = S e^{(r−q)T}, T calendar years, τ business years. NaN once expired.
 */
export function surfaceVol(p: SsviParams, a: AtmVariance, S: number, K: number, T: number, tau: number, r: number, q: number): number {
  if (!(T > 0 && tau > 0 && S > 0 && K > 0)) return NaN;
  const k = Math.log(K / S) - (r - q) * T;
  return Math.sqrt(totalVariance(k, atmTotalVariance(tau, a), p) / T);
}

/** Variance weight of an hour outside the session against one inside: overnight moves are about a fifth of a day's variance. */
export const OFF_SESSION_WEIGHT = 0.1;
const HOUR = 3_600_000;
const SESSION_HOURS = 6.5;
/** A business year: 252 sessions and their nights. */
export const BUSINESS_YEAR_MS = 252 * (SESSION_HOURS + (24 - SESSION_HOURS) * OFF_SESSION_WEIGHT) * HOUR;

/**
 * Business time: weighted ms between two instants, sessions (09:30–16:00
 * New York on business days) at full weight, everything else at
 * OFF_SESSION_WEIGHT. Sessions are looked up per day and cached.
 */
export class BusinessClock {
  /** Per New York date: the session's start and end, epoch ms, or null on a closed day. */
  private readonly sessions = new Map<string, readonly [number, number] | null>();

  /** Business years from `fromMs` to `toMs` (negative when `toMs` is earlier). */
  years(fromMs: number, toMs: number): number {
    if (toMs < fromMs) return -this.years(toMs, fromMs);
    let weighted = (toMs - fromMs) * OFF_SESSION_WEIGHT;
    // Noon UTC of each calendar date the interval touches: the New York date is the same one.
    const first = Math.floor((fromMs - 86_400_000) / 86_400_000);
    const last = Math.floor((toMs + 86_400_000) / 86_400_000);
    for (let day = first; day <= last; day++) {
      const session = this.session(new Date(day * 86_400_000).toISOString().slice(0, 10).replaceAll('-', ''));
      if (!session) continue;
      const overlap = Math.min(toMs, session[1]) - Math.max(fromMs, session[0]);
      if (overlap > 0) weighted += overlap * (1 - OFF_SESSION_WEIGHT);
    }
    return weighted / BUSINESS_YEAR_MS;
  }

  private session(date: string): readonly [number, number] | null {
    let session = this.sessions.get(date);
    if (session === undefined) {
      const [y, m, d] = [Number(date.slice(0, 4)), Number(date.slice(4, 6)), Number(date.slice(6, 8))];
      session = isBusinessDay(date) ? [newYorkTimeMs(y, m, d, 9, 30), newYorkTimeMs(y, m, d, ...closeOf(date))] : null;
      this.sessions.set(date, session);
    }
    return session;
  }
}
