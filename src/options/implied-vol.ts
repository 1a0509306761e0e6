/**
 * Implied volatility. The main path follows Jäckel, "Let's Be Rational"
 * (2015), written for keel from the paper's ideas: the price is normalised
 * to an out-of-the-money call's time value β(x, s), x = ln(F/K) ≤ 0,
 * s = σ√T; the inflection point s_c = √(2|x|) and the tangents there split
 * β into four branches; each branch starts from a rational cubic
 * interpolation (in β itself near s_c, in a transformed variable in the two
 * tails, where β ~ Φ(-|x|/(√3 s))³ and ~ 2Φ(-s/2)) and is polished by
 * third-order Householder steps on an objective that is nearly linear on
 * that branch (1/ln β in the lower tail, ln(b_max - β) in the upper). Two
 * steps reach machine precision from the start almost everywhere; the steps
 * are kept inside a bracket, so a bad start costs a few more, never a wrong
 * answer. There is no cap on σ: 0DTE wings trade above 200 %.
 *
 * A guarded Newton (Brenner–Subrahmanyam start, bisection fallback, vega
 * floor) is kept as the independent cross-check the tests run against.
 *
 * Prices below intrinsic value or at or above the no-arbitrage bound have
 * no implied volatility: NaN, and a negative code that says why.
 */
import { americanPrice } from './american.js';
import { bsmPrice, normalisedOtm, type Right } from './bsm.js';
import { cdf, inverseCdf, pdf, scaledTail, SQRT_2PI } from './normal.js';

/** Why there is no implied volatility (the negative codes of impliedVolCode). */
export const IV_BELOW_INTRINSIC = -1;
export const IV_ABOVE_BOUND = -2;
export const IV_BAD_INPUT = -3;
export const IV_NOT_FOUND = -4;

/** A reason in words for a negative code, or undefined for a volatility. */
export function ivReason(code: number): string | undefined {
  switch (code) {
    case IV_BELOW_INTRINSIC:
      return 'price below intrinsic value: no volatility gives it';
    case IV_ABOVE_BOUND:
      return 'price at or above the upper bound (a call is worth less than the underlying, a put less than the strike): no volatility gives it';
    case IV_BAD_INPUT:
      return 'inputs cannot be priced (spot, strike and time must be positive, the price finite and not negative)';
    case IV_NOT_FOUND:
      return 'the solver did not converge';
    default:
      return code >= 0 ? undefined : 'unknown';
  }
}

/** Householder steps taken by the last call of impliedVolCode (for the tests and the benchmark). */
export let lastIterations = 0;
const MAX_STEPS = 100;

/**
 * European implied volatility by Let's Be Rational: σ ≥ 0, or a negative
 * code (IV_*) when there is none. At exactly intrinsic value it is 0.
 */
export function impliedVolCode(right: Right, price: number, S: number, K: number, T: number, r: number, q: number): number {
  lastIterations = 0;
  if (!(S > 0 && K > 0 && T > 0 && price >= 0 && Number.isFinite(S + K + T + r + q + price))) return IV_BAD_INPUT;
  const forward = S * Math.exp((r - q) * T);
  const undiscounted = price * Math.exp(r * T);
  const intrinsic = Math.max(right * (forward - K), 0);
  // A few ulps (of F and K, whose difference it is) under intrinsic is intrinsic: rounding, not a quote below it.
  if (undiscounted < intrinsic - 16 * Number.EPSILON * Math.max(forward, K)) return IV_BELOW_INTRINSIC;
  if (undiscounted >= (right === 1 ? forward : K)) return IV_ABOVE_BOUND;
  const beta = (undiscounted - intrinsic) / Math.sqrt(forward * K);
  if (beta <= 0) return 0;
  const x = -Math.abs(Math.log(forward / K));
  if (beta >= Math.exp(0.5 * x)) return IV_ABOVE_BOUND;
  return solveOtm(beta, x) / Math.sqrt(T);
}

/** σ or NaN; `reason` in words through ivReason(impliedVolCode(...)). */
export function impliedVol(right: Right, price: number, S: number, K: number, T: number, r: number, q: number): number {
  const code = impliedVolCode(right, price, S, K, T, r, q);
  return code >= 0 ? code : NaN;
}

/** ∂b/∂s, the normalised vega: exp(-(h² + t²)/2)/√2π. */
function normalisedVega(x: number, s: number): number {
  const h = x / s;
  const t = 0.5 * s;
  return Math.exp(-0.5 * (h * h + t * t)) / SQRT_2PI;
}

/**
 * Delbourgo–Gregory rational cubic through (xl, yl) and (xr, yr) with slopes
 * dl, dr; r = 3 is the cubic Hermite, larger r pulls it towards the chord.
 */
function rationalCubic(x: number, xl: number, xr: number, yl: number, yr: number, dl: number, dr: number, r: number): number {
  const h = xr - xl;
  const s = (x - xl) / h;
  const o = 1 - s;
  return (yr * s * s * s + (r * yr - h * dr) * s * s * o + (r * yl + h * dl) * s * o * o + yl * o * o * o) / (1 + (r - 3) * s * o);
}

/** The control parameter that matches a second derivative at the left (or right) end, raised to keep the shape. */
function controlParameter(xl: number, xr: number, yl: number, yr: number, dl: number, dr: number, second: number, atLeft: boolean): number {
  const h = xr - xl;
  const slope = (yr - yl) / h;
  let r = atLeft ? (0.5 * h * second + (dr - dl)) / (slope - dl) : (0.5 * h * second + (dr - dl)) / (dr - slope);
  if (!Number.isFinite(r)) r = 3;
  // Monotone data stays monotone for r ≥ (dl + dr)/slope; convex (or concave) data keeps its sign for r above both ratios.
  if (slope !== 0 && dl * slope >= 0 && dr * slope >= 0) r = Math.max(r, (dl + dr) / slope);
  const a = slope - dl;
  const c = dr - slope;
  if (a * c > 0) r = Math.max(r, a / c, c / a);
  return Math.max(r, -0.999);
}

/** s = σ√T for the out-of-the-money normalised call time value beta at x ≤ 0, 0 < beta < e^{x/2}. */
function solveOtm(beta: number, x: number): number {
  const bMax = Math.exp(0.5 * x);
  if (x === 0) {
    // At the money β = 1 - 2Φ(-s/2) exactly; the inverse is already the answer, one polish step below confirms it.
    return polish(beta, x, -2 * inverseCdf(0.5 * (1 - beta)), 0, Infinity, CENTRE);
  }
  const ax = -x;
  const sc = Math.sqrt(2 * ax);
  const bc = normalisedOtm(x, sc);
  const vc = normalisedVega(x, sc);
  const sl = sc - bc / vc;
  const su = sc + (bMax - bc) / vc;
  const bl = sl > 0 ? normalisedOtm(x, sl) : 0;
  const bu = normalisedOtm(x, su);
  if (beta < bl) {
    // Lower tail: interpolate f = c·Φ(-z)³ (z = |x|/(√3 s)), which matches β's leading asymptotics, then invert f exactly.
    const c = (2 * Math.PI * ax) / (3 * Math.sqrt(3));
    const zl = ax / (Math.sqrt(3) * sl);
    const tail = cdf(-zl);
    const fl = c * tail * tail * tail;
    const dfl = (3 * c * tail * tail * pdf(zl) * zl) / sl / normalisedVega(x, sl);
    const r = controlParameter(0, bl, 0, fl, 1, dfl, 0, true);
    const f = rationalCubic(beta, 0, bl, 0, fl, 1, dfl, r);
    let s = sl / 2;
    if (f > 0) {
      const z = -inverseCdf(Math.cbrt(f / c));
      if (z > 0) s = ax / (Math.sqrt(3) * z);
    }
    return polish(beta, x, s, 0, sl, LOWER);
  }
  if (beta <= bc) {
    const dl = 1 / normalisedVega(x, sl);
    const dr = 1 / vc;
    // s(β) has zero second derivative at the inflection point.
    const r = controlParameter(bl, bc, sl, sc, dl, dr, 0, false);
    return polish(beta, x, rationalCubic(beta, bl, bc, sl, sc, dl, dr, r), Math.max(sl, 0), sc, CENTRE);
  }
  if (beta <= bu) {
    const dl = 1 / vc;
    const dr = 1 / normalisedVega(x, su);
    const r = controlParameter(bc, bu, sc, su, dl, dr, 0, true);
    return polish(beta, x, rationalCubic(beta, bc, bu, sc, su, dl, dr, r), sc, su, CENTRE);
  }
  // Upper tail: interpolate f = Φ(-s/2), since b_max - β → 2Φ(-s/2) as s grows, then invert f exactly.
  const fu = cdf(-0.5 * su);
  const dfu = (-0.5 * pdf(0.5 * su)) / normalisedVega(x, su);
  const r = controlParameter(bu, bMax, fu, 0, dfu, -0.5, 0, false);
  const f = rationalCubic(beta, bu, bMax, fu, 0, dfu, -0.5, r);
  const s = f > 0 && f < 0.5 ? -2 * inverseCdf(f) : 2 * su;
  return polish(beta, x, s, su, Infinity, beta > 0.5 * bMax ? UPPER : CENTRE);
}

const LOWER = 0;
const CENTRE = 1;
const UPPER = 2;

/**
 * Householder steps (third order) on the branch's objective from s, kept
 * inside (lo, hi), the bracket the branch gives: a step that leaves it
 * bisects instead.
 */
function polish(beta: number, x: number, start: number, lo: number, hi: number, objective: number): number {
  const lnBeta = Math.log(beta);
  const bMax = Math.exp(0.5 * x);
  const gapBeta = bMax - beta;
  let s = start > lo && start < hi ? start : Number.isFinite(hi) ? 0.5 * (lo + hi) : 2 * lo + 1;
  for (let step = 0; step < MAX_STEPS; step++) {
    lastIterations = step + 1;
    const h = x / s;
    const t = 0.5 * s;
    const e = -0.5 * (h * h + t * t);
    // b' / b'' / b''' in ratios to b' (they never underflow): b''/b' = h²/s - s/4.
    const a1 = (h * h) / s - 0.25 * s;
    const a2 = a1 * a1 - (3 * h * h) / (s * s) - 0.25;
    let g: number;
    let g1: number;
    let g2: number;
    let g3: number;
    let above: boolean;
    if (objective === LOWER) {
      // ln b from the scaled form, valid and exact where b itself underflows.
      const scaled = h + t <= 0 ? scaledTail(-h - t) - scaledTail(t - h) : Math.exp(-e) * normalisedOtm(x, s);
      const L = e + Math.log(scaled);
      const v = 1 / (SQRT_2PI * scaled); // b'/b
      const L1 = v;
      const L2 = v * a1 - v * v;
      const L3 = v * a2 - 3 * v * v * a1 + 2 * v * v * v;
      g = 1 / L - 1 / lnBeta;
      g1 = -L1 / (L * L);
      g2 = -L2 / (L * L) + (2 * L1 * L1) / (L * L * L);
      g3 = -L3 / (L * L) + (6 * L1 * L2) / (L * L * L) - (6 * L1 * L1 * L1) / (L * L * L * L);
      above = L > lnBeta;
    } else if (objective === UPPER) {
      // -ln(b_max - b): b_max - b summed from two tails, never a difference.
      const gap = Math.exp(0.5 * x) * cdf(-h - t) + Math.exp(-0.5 * x) * cdf(h - t);
      const v = Math.exp(e) / SQRT_2PI;
      const w = v / gap;
      g = Math.log(gapBeta) - Math.log(gap);
      g1 = w;
      g2 = w * a1 + w * w;
      g3 = w * a2 + 3 * w * w * a1 + 2 * w * w * w;
      above = gap < gapBeta;
    } else {
      const b = normalisedOtm(x, s);
      const v = Math.exp(e) / SQRT_2PI;
      g = b - beta;
      g1 = v;
      g2 = v * a1;
      g3 = v * a2;
      above = b > beta;
    }
    if (g === 0) return s;
    if (above) hi = s;
    else lo = s;
    const nu = -g / g1;
    const h2 = g2 / g1;
    const h3 = g3 / g1;
    const delta = (nu * (1 + 0.5 * h2 * nu)) / (1 + nu * (h2 + (h3 * nu) / 6));
    // Householder's fourth order: a step this small leaves an error far below rounding; further steps only chase noise.
    if (Math.abs(delta) <= 1e-10 * s) return s + delta;
    let next = s + delta;
    if (!(next > lo && next < hi)) next = Number.isFinite(hi) ? 0.5 * (lo + hi) : 2 * s;
    s = next;
  }
  return s;
}

/**
 * The cross-check: Newton on σ from Brenner–Subrahmanyam's σ₀ = √(2π/T)·C/S,
 * bisecting whenever a step leaves the bracket or vega is below its floor.
 */
export function impliedVolNewton(right: Right, price: number, S: number, K: number, T: number, r: number, q: number): number {
  if (!(S > 0 && K > 0 && T > 0 && price >= 0 && Number.isFinite(S + K + T + r + q + price))) return NaN;
  const forward = S * Math.exp((r - q) * T);
  const discount = Math.exp(-r * T);
  const lower = discount * Math.max(right * (forward - K), 0);
  const upper = discount * (right === 1 ? forward : K);
  if (price < lower || price >= upper) return NaN;
  if (price === lower) return 0;
  let lo = 0;
  let hi = 1;
  while (bsmPrice(right, S, K, T, r, q, hi) < price) {
    lo = hi;
    hi *= 2;
    if (hi > 1e6) return NaN;
  }
  let sigma = Math.sqrt((2 * Math.PI) / T) * (price / S);
  if (!(sigma > lo && sigma < hi)) sigma = 0.5 * (lo + hi);
  for (let i = 0; i < 200; i++) {
    const diff = bsmPrice(right, S, K, T, r, q, sigma) - price;
    if (diff > 0) hi = sigma;
    else lo = sigma;
    const vega = S * Math.exp(-q * T) * pdf((Math.log(forward / K) + 0.5 * sigma * sigma * T) / (sigma * Math.sqrt(T))) * Math.sqrt(T);
    let next = vega > 1e-12 * S ? sigma - diff / vega : NaN;
    if (!(next > lo && next < hi)) next = 0.5 * (lo + hi);
    if (Math.abs(next - sigma) <= 1e-15 * sigma || hi - lo <= 1e-15 * hi) return next;
    sigma = next;
  }
  return sigma;
}

/**
 * American implied volatility (Bjerksund–Stensland 2002 prices): the European
 * answer as a start, then regula falsi (Illinois) on the American price
 * inside a bracket. σ ≥ 0 or a negative code.
 */
export function americanImpliedVolCode(right: Right, price: number, S: number, K: number, T: number, r: number, q: number): number {
  if (!(S > 0 && K > 0 && T > 0 && price >= 0 && Number.isFinite(S + K + T + r + q + price))) return IV_BAD_INPUT;
  const floor = americanPrice(right, S, K, T, r, q, 0);
  if (price < floor) return IV_BELOW_INTRINSIC;
  if (price >= (right === 1 ? S : K)) return IV_ABOVE_BOUND;
  if (price === floor) return 0;
  const f = (sigma: number) => americanPrice(right, S, K, T, r, q, sigma) - price;
  const european = impliedVolCode(right, price, S, K, T, r, q);
  let lo = 0;
  let flo = floor - price;
  let hi = european > 0 ? european * 1.01 : 1;
  let fhi = f(hi);
  while (fhi < 0) {
    lo = hi;
    flo = fhi;
    hi *= 2;
    if (hi > 1e6) return IV_NOT_FOUND;
    fhi = f(hi);
  }
  let side = 0;
  for (let i = 0; i < 200; i++) {
    const sigma = (lo * fhi - hi * flo) / (fhi - flo);
    const fs = f(sigma);
    if (fs === 0 || hi - lo <= 1e-14 * hi) return sigma;
    if (fs > 0) {
      hi = sigma;
      fhi = fs;
      if (side === 1) flo /= 2;
      side = 1;
    } else {
      lo = sigma;
      flo = fs;
      if (side === -1) fhi /= 2;
      side = -1;
    }
  }
  return 0.5 * (lo + hi);
}
