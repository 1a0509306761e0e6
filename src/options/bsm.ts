/**
 * Black–Scholes–Merton with cost of carry b = r - q (Merton 1973, in Haug's
 * generalised form) and its analytic greeks, in IB's units: delta and gamma
 * per $1 of the underlying, vega per volatility point (÷ 100), theta per
 * calendar day (÷ 365), volatility a decimal (0.15 = 15 %).
 *
 * Prices go through the normalised Black function of the out-of-the-money
 * side (in-the-money = out-of-the-money + discounted forward intrinsic), so a
 * far wing's price keeps its relative precision instead of being the
 * difference of two nearly equal terms.
 */
import { cdf, pdf, scaledTailAt, SQRT_2PI, tailIo } from './normal.js';

/** +1 a call, -1 a put (the θ of the formulas). */
export type Right = 1 | -1;
export const CALL: Right = 1;
export const PUT: Right = -1;

/** Days a year for IB's theta (calendar days). */
export const DAYS_PER_YEAR = 365;

/** Price and greeks in IB's units; a caller-owned object that the functions fill, so hot loops make no result object per contract. */
export interface Greeks {
  price: number;
  delta: number;
  gamma: number;
  /** Per volatility point: the change in price for σ + 0.01. */
  vega: number;
  /** Per calendar day: the change in price as one day passes (negative for a long option, mostly). */
  theta: number;
}

export function newGreeks(): Greeks {
  return { price: NaN, delta: NaN, gamma: NaN, vega: NaN, theta: NaN };
}

/**
 * The normalised Black call b(x, s) = e^{x/2}Φ(x/s + s/2) - e^{-x/2}Φ(x/s - s/2),
 * x = ln(F/K), s = σ√T; the undiscounted call is √(FK)·b. A put is b(-x, s).
 */
export function normalisedBlack(x: number, s: number): number {
  if (x > 0) return normalisedOtm(-x, s) + (Math.exp(0.5 * x) - Math.exp(-0.5 * x));
  return normalisedOtm(x, s);
}

/** b(x, s) for x ≤ 0, the out-of-the-money call: all time value (see otmAt). */
export function normalisedOtm(x: number, s: number): number {
  otm.x = x;
  otm.s = s;
  otmAt();
  return otm.b;
}

/**
 * In and out of otmAt, for the hot loops (the chain's batch, the implied-volatility solver): a double passed
 * to or returned from a call V8 does not inline is a heap number, one in a field is not (see normal.ts).
 * In: x ≤ 0 and s. Out: b = b(x, s), vega = ∂b/∂s and, above the inflection point (h + t > 0), where the
 * solver's upper branch works, gap = e^{x/2} - b summed from two tails rather than subtracted (NaN below it).
 */
export const otm = { x: NaN, s: NaN, b: NaN, vega: NaN, gap: NaN };

/** b(x, s), x ≤ 0, and its companions into `otm`: 0 where s is not positive. */
export function otmAt(): void {
  const o = otm; // a local alias: each use of a module-level constant also checks it is initialised, bytecode that counts against V8's inlining limit
  const x = o.x;
  const s = o.s;
  const h = x / s;
  const t = 0.5 * s;
  if (!(h + t <= 0 && s > 0)) {
    otmAbove();
    return;
  }
  // Below the inflection both terms are tails: take out their common Gaussian factor exp(-(h² + t²)/2).
  const tail = tailIo;
  tail.z = -h - t;
  scaledTailAt();
  const first = tail.value;
  tail.z = t - h;
  scaledTailAt();
  const gauss = Math.exp(-0.5 * (h * h + t * t));
  o.b = gauss * (first - tail.value);
  o.vega = gauss / SQRT_2PI;
  o.gap = NaN;
}

/** otmAt above the inflection point, b = e^{x/2}Φ(h + t) - e^{-x/2}Φ(h - t), and where s is not positive. */
function otmAbove(): void {
  const o = otm;
  const x = o.x;
  const s = o.s;
  const h = x / s;
  const t = 0.5 * s;
  o.vega = Math.exp(-0.5 * (h * h + t * t)) / SQRT_2PI;
  if (!(s > 0)) {
    // No time value (the vega formula still holds: the solver's start asks for it at a negative s).
    o.b = 0;
    o.gap = Math.exp(0.5 * x);
    return;
  }
  const tail = tailIo;
  tail.z = h + t;
  scaledTailAt();
  const first = tail.value;
  tail.z = t - h;
  scaledTailAt();
  // 1 - Φ(h + t) and Φ(h - t), as cdf has them (zero beyond 38.5, where they underflow).
  const upper = h + t > 38.5 ? 0 : Math.exp(-0.5 * (h + t) * (h + t)) * first;
  const lower = t - h > 38.5 ? 0 : Math.exp(-0.5 * (h - t) * (h - t)) * tail.value;
  const rootFK = Math.exp(0.5 * x);
  const rootKF = Math.exp(-0.5 * x);
  o.b = rootFK * (1 - upper) - rootKF * lower;
  o.gap = rootFK * upper + rootKF * lower;
}

/** True when the inputs can be priced: positive spot and strike, non-negative time and σ, finite rates. */
export function validInputs(S: number, K: number, T: number, r: number, q: number, sigma: number): boolean {
  return S > 0 && K > 0 && T >= 0 && sigma >= 0 && Number.isFinite(S + K + T + r + q + sigma);
}

/** The European price (NaN for inputs that cannot be priced). */
export function bsmPrice(right: Right, S: number, K: number, T: number, r: number, q: number, sigma: number): number {
  if (!validInputs(S, K, T, r, q, sigma)) return NaN;
  const discount = Math.exp(-r * T);
  const F = S * Math.exp((r - q) * T);
  const s = sigma * Math.sqrt(T);
  // Forward intrinsic plus the out-of-the-money time value: the same split the implied volatility undoes.
  return discount * (Math.max(right * (F - K), 0) + Math.sqrt(F * K) * normalisedOtm(-Math.abs(Math.log(F / K)), s));
}

/** The European price and greeks into `out`; NaN everywhere for inputs that cannot be priced. */
export function bsmGreeks(right: Right, S: number, K: number, T: number, r: number, q: number, sigma: number, out: Greeks): Greeks {
  if (!validInputs(S, K, T, r, q, sigma)) {
    out.price = out.delta = out.gamma = out.vega = out.theta = NaN;
    return out;
  }
  const b = r - q;
  const sqrtT = Math.sqrt(T);
  const s = sigma * sqrtT;
  const carry = Math.exp((b - r) * T); // e^{-qT}
  const discount = Math.exp(-r * T);
  out.price = bsmPrice(right, S, K, T, r, q, sigma);
  if (s === 0) {
    // At expiry (or σ = 0) the option is its forward intrinsic value: a step in delta, nothing else.
    const itm = right * (S * Math.exp(b * T) - K) > 0;
    out.delta = itm ? right * carry : 0;
    out.gamma = out.vega = 0;
    out.theta = itm ? (-right * (b - r) * S * carry - right * r * K * discount) / DAYS_PER_YEAR : 0;
    return out;
  }
  const d1 = (Math.log(S / K) + (b + 0.5 * sigma * sigma) * T) / s;
  const d2 = d1 - s;
  const density = pdf(d1);
  const nd1 = cdf(right * d1);
  const nd2 = cdf(right * d2);
  out.delta = right * carry * nd1;
  out.gamma = (carry * density) / (S * s);
  out.vega = (S * carry * density * sqrtT) / 100;
  const decay = -(S * carry * density * sigma) / (2 * sqrtT);
  out.theta = (decay - right * (b - r) * S * carry * nd1 - right * r * K * discount * nd2) / DAYS_PER_YEAR;
  return out;
}
