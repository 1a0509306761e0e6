/**
 * An option chain's features, per underlying: per expiry the at-the-money
 * implied volatility, the 25-delta risk reversal (skew) and butterfly
 * (smile); across expiries the term slope; over the chain the put/call
 * volume and open-interest ratios and its net greeks. Pure: numbers in, a
 * caller-owned result filled in place (no actor, no bus); nothing is
 * allocated per contract, and the per-expiry records only when the
 * expiries change.
 *
 * Conventions (volatilities decimals, 0.15 = 15 %). Where the expiry has a
 * fitted smile (an SSVI slice, `points` > 0), ATM and 25-delta IVs are read
 * off the smile (it spans strikes beyond the streamed band: a 1DTE band of
 * ±5 strikes seldom reaches the 25-delta put); otherwise from the contracts:
 * - ATM IV: the IV at the forward F = S·e^{(r−q)T}: from a slice √(θ/T)
 *   (w(0) = θ); from contracts, interpolated linearly in log-moneyness
 *   ln(K/F) between the nearest out-of-the-money contracts each side (puts
 *   below F, calls at or above it); F outside the strikes is no answer (NaN).
 * - 25-delta: BSM spot delta e^{−qT}N(±d1) (the rows' own, IB's units) of
 *   +0.25 for the call and −0.25 for the put: from a slice, the strike
 *   found by bisection in k with the smile's volatility at each k; from
 *   contracts, the IV interpolated linearly in delta between the calls whose
 *   deltas bracket +0.25 (the puts −0.25); NaN when no pair brackets it.
 *   RR = σ(25Δ call) − σ(25Δ put) (negative for equity skew);
 *   fly = ½(σ(25Δ call) + σ(25Δ put)) − σ(ATM).
 * - Term slope: (ATM IV of the second expiry − of the first) per year of
 *   time between them (decimal vol per year; `termSpread` is the plain
 *   difference). The expiries in the order given, which is nearest first.
 * - Put/call ratios: Σ put volume / Σ call volume over the contracts that
 *   report one (likewise open interest); NaN when either side has none or
 *   the calls sum to 0.
 * - Net greeks: every streamed contract counted once, long, 100 shares a
 *   contract, S the underlying's price:
 *   delta1Pct = Σ Δ·100·S·1 %      dollars gained on a +1 % move;
 *   gamma1Pct = Σ Γ·100·S·(S·1 %)  dollar delta (Δ·100·S) gained on a +1 % move;
 *   vega      = Σ vega·100         dollars per volatility point;
 *   theta     = Σ θ·100            dollars per calendar day.
 *   NaN contracts (no IV yet) are left out; `contracts` counts those summed.
 * Anything that cannot be computed is NaN; nothing throws.
 */

import { cdf } from './normal.js';
import { sliceVariance, type SmileSlice } from './smile-fit.js';

/** One contract as the features read it (a ChainRow fits). */
export interface FeatureContract {
  readonly expiry: string;
  readonly strike: number;
  readonly right: 'C' | 'P';
  /** Years to expiry. */
  readonly years: number;
  /** Keel's volatility and greeks (IB's units). */
  readonly keel: { readonly iv: number; readonly delta: number; readonly gamma: number; readonly vega: number; readonly theta: number };
  /** Session volume and open interest, NaN (or absent) where not reported. */
  readonly volume?: number;
  readonly openInterest?: number;
}

export interface ExpiryFeatures {
  /** Years to expiry (the contracts' mean). */
  years: number;
  atmIv: number;
  /** σ(25Δ call) and σ(25Δ put). */
  call25Iv: number;
  put25Iv: number;
  riskReversal25: number;
  butterfly25: number;
  /** Whether ATM and 25-delta IVs came from the fitted smile (else from the contracts). */
  fromSmile: boolean;
}

export interface NetGreeks {
  delta1Pct: number;
  gamma1Pct: number;
  vega: number;
  theta: number;
  contracts: number;
}

export interface ChainFeatures {
  /** Per expiry (YYYYMMDD), nearest first. */
  expiries: Record<string, ExpiryFeatures>;
  /** ATM IV of the second expiry minus the first, per year between them. */
  termSlope: number;
  /** ATM IV of the second expiry minus the first. */
  termSpread: number;
  putCallVolume: number;
  putCallOpenInterest: number;
  net: NetGreeks;
}

const nanExpiry = (): ExpiryFeatures => ({ years: NaN, atmIv: NaN, call25Iv: NaN, put25Iv: NaN, riskReversal25: NaN, butterfly25: NaN, fromSmile: false });

export const newChainFeatures = (): ChainFeatures => ({
  expiries: {},
  termSlope: NaN,
  termSpread: NaN,
  putCallVolume: NaN,
  putCallOpenInterest: NaN,
  net: { delta1Pct: NaN, gamma1Pct: NaN, vega: NaN, theta: NaN, contracts: 0 },
});

/** Linear interpolation at x between (x0, y0) and (x1, y1); y0 when they coincide. */
const lerp = (x: number, x0: number, y0: number, x1: number, y1: number): number => (x1 === x0 ? y0 : y0 + ((y1 - y0) * (x - x0)) / (x1 - x0));

/**
 * The IV at a target delta for one expiry: the contracts of `right` with a
 * finite IV and delta, the nearest each side of `target`.
 */
function ivAtDelta(rows: readonly FeatureContract[], expiry: string, right: 'C' | 'P', target: number): number {
  let loD = -Infinity;
  let loIv = NaN;
  let hiD = Infinity;
  let hiIv = NaN;
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    if (r.expiry !== expiry || r.right !== right) continue;
    const d = r.keel.delta;
    const iv = r.keel.iv;
    if (!(Number.isFinite(d) && iv > 0)) continue;
    if (d <= target && d > loD) {
      loD = d;
      loIv = iv;
    }
    if (d >= target && d < hiD) {
      hiD = d;
      hiIv = iv;
    }
  }
  if (loIv !== loIv || hiIv !== hiIv) return NaN;
  return lerp(target, loD, loIv, hiD, hiIv);
}

/** The IV at the forward: out-of-the-money contracts the nearest each side of k = ln(K/F) = 0. */
function atmIv(rows: readonly FeatureContract[], expiry: string, spot: number, carry: number, out: ExpiryFeatures): void {
  let loK = -Infinity;
  let loIv = NaN;
  let hiK = Infinity;
  let hiIv = NaN;
  let years = 0;
  let n = 0;
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    if (r.expiry !== expiry) continue;
    if (Number.isFinite(r.years)) {
      years += r.years;
      n++;
    }
    const iv = r.keel.iv;
    if (!(iv > 0 && r.strike > 0 && r.years >= 0)) continue;
    const k = Math.log(r.strike / spot) - carry * r.years;
    if (!Number.isFinite(k)) continue;
    // Out of the money: puts below the forward, calls at or above it (a strike right at F: either).
    const otm = r.right === 'P' ? k <= 0 : k >= 0;
    if (!otm) continue;
    if (k <= 0 && k > loK) {
      loK = k;
      loIv = iv;
    }
    if (k >= 0 && k < hiK) {
      hiK = k;
      hiIv = iv;
    }
  }
  out.years = n > 0 ? years / n : NaN;
  out.atmIv = loIv !== loIv || hiIv !== hiIv ? NaN : lerp(0, loK, loIv, hiK, hiIv);
}

/**
 * The smile's volatility where the BSM spot delta of `right` (+1 call, −1
 * put) is `target`: bisection in k = ln(K/F) over [−1, 1] (delta falls as
 * k rises for both rights); NaN when [−1, 1] does not bracket it.
 */
function smileIvAtDelta(slice: SmileSlice, T: number, q: number, right: 1 | -1, target: number): number {
  const carry = Math.exp(-q * T);
  const deltaAt = (k: number): number => {
    const s = Math.sqrt(sliceVariance(k, slice.theta, slice.rho, slice.phi));
    const d1 = -k / s + 0.5 * s;
    return right * carry * cdf(right * d1);
  };
  let lo = -1;
  let hi = 1;
  if (!(deltaAt(lo) >= target && deltaAt(hi) <= target)) return NaN;
  for (let i = 0; i < 60; i++) {
    const mid = 0.5 * (lo + hi);
    if (deltaAt(mid) > target) lo = mid;
    else hi = mid;
  }
  const k = 0.5 * (lo + hi);
  return Math.sqrt(sliceVariance(k, slice.theta, slice.rho, slice.phi) / T);
}

/**
 * Fills `out` from the contracts of `expiries` (nearest first) at the
 * underlying's price `spot`, with carry `rate − dividendYield` for the
 * forward, and from each expiry's fitted smile where `smiles` has one (its
 * years to expiry: the mean of the expiry's contracts'). Per-expiry records are reused while the expiries stay the same.
 */
export function computeChainFeatures(
  rows: readonly FeatureContract[],
  expiries: readonly string[],
  spot: number,
  rate: number,
  dividendYield: number,
  out: ChainFeatures,
  smiles?: Readonly<Record<string, SmileSlice>>,
): ChainFeatures {
  const carry = rate - dividendYield;
  const keys = Object.keys(out.expiries);
  let same = keys.length === expiries.length;
  for (let i = 0; same && i < keys.length; i++) same = keys[i] === expiries[i];
  if (!same) {
    const fresh: Record<string, ExpiryFeatures> = {};
    for (const e of expiries) fresh[e] = out.expiries[e] ?? nanExpiry();
    out.expiries = fresh;
  }
  for (const e of expiries) {
    const f = out.expiries[e]!;
    if (spot > 0 && Number.isFinite(spot + carry)) atmIv(rows, e, spot, carry, f);
    else f.years = f.atmIv = NaN;
    const slice = smiles?.[e];
    const T = f.years;
    f.fromSmile = slice !== undefined && slice.points > 0 && T > 0 && slice.theta > 0 && Number.isFinite(slice.rho + slice.phi + dividendYield);
    if (f.fromSmile) {
      f.atmIv = Math.sqrt(slice!.theta / T);
      f.call25Iv = smileIvAtDelta(slice!, T, dividendYield, 1, 0.25);
      f.put25Iv = smileIvAtDelta(slice!, T, dividendYield, -1, -0.25);
    } else {
      f.call25Iv = ivAtDelta(rows, e, 'C', 0.25);
      f.put25Iv = ivAtDelta(rows, e, 'P', -0.25);
    }
    f.riskReversal25 = f.call25Iv - f.put25Iv;
    f.butterfly25 = 0.5 * (f.call25Iv + f.put25Iv) - f.atmIv;
  }
  const first = expiries.length > 1 ? out.expiries[expiries[0]!] : undefined;
  const second = expiries.length > 1 ? out.expiries[expiries[1]!] : undefined;
  if (first && second) {
    out.termSpread = second.atmIv - first.atmIv;
    const dt = second.years - first.years;
    out.termSlope = dt > 0 ? out.termSpread / dt : NaN;
  } else {
    out.termSpread = out.termSlope = NaN;
  }

  let callVol = 0;
  let putVol = 0;
  let callVolN = 0;
  let putVolN = 0;
  let callOi = 0;
  let putOi = 0;
  let callOiN = 0;
  let putOiN = 0;
  const net = out.net;
  net.delta1Pct = net.gamma1Pct = net.vega = net.theta = 0;
  net.contracts = 0;
  const move = 0.01 * spot;
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    const call = r.right === 'C';
    const v = r.volume;
    if (v !== undefined && v >= 0) {
      if (call) {
        callVol += v;
        callVolN++;
      } else {
        putVol += v;
        putVolN++;
      }
    }
    const oi = r.openInterest;
    if (oi !== undefined && oi >= 0) {
      if (call) {
        callOi += oi;
        callOiN++;
      } else {
        putOi += oi;
        putOiN++;
      }
    }
    const g = r.keel;
    if (!Number.isFinite(g.delta + g.gamma + g.vega + g.theta)) continue;
    net.delta1Pct += g.delta * 100 * move;
    net.gamma1Pct += g.gamma * 100 * spot * move;
    net.vega += g.vega * 100;
    net.theta += g.theta * 100;
    net.contracts++;
  }
  if (net.contracts === 0 || !(spot > 0)) {
    net.delta1Pct = net.gamma1Pct = NaN;
    if (net.contracts === 0) net.vega = net.theta = NaN;
  }
  out.putCallVolume = callVolN > 0 && putVolN > 0 && callVol > 0 ? putVol / callVol : NaN;
  out.putCallOpenInterest = callOiN > 0 && putOiN > 0 && callOi > 0 ? putOi / callOi : NaN;
  return out;
}
