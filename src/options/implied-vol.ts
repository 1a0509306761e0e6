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
import { bsmPrice, otm, otmAt, type Right } from './bsm.js';
import { cdfAt, normalIo, pdf, quantileAt, scaledTailAt, SQRT_2PI, tailIo } from './normal.js';

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
  ivIo.price = price;
  ivIo.S = S;
  ivIo.K = K;
  ivIo.T = T;
  ivIo.r = r;
  ivIo.q = q;
  impliedVolInto(right);
  return ivIo.code;
}

/** σ or NaN; `reason` in words through ivReason(impliedVolCode(...)). */
export function impliedVol(right: Right, price: number, S: number, K: number, T: number, r: number, q: number): number {
  const code = impliedVolCode(right, price, S, K, T, r, q);
  return code >= 0 ? code : NaN;
}

/**
 * impliedVolCode's inputs and answer as fields, for the chain's batch: it
 * sets them and calls impliedVolInto. A double passed to or returned from a
 * call V8 does not inline is a heap number (a field holds it unboxed), and
 * the solver is far too large to inline (see normal.ts); its own steps pass
 * their doubles through `w` for the same reason. Not re-entrant.
 */
export const ivIo = { price: NaN, S: NaN, K: NaN, T: NaN, r: NaN, q: NaN, code: NaN };

/** impliedVolCode of ivIo's inputs, into ivIo.code. */
export function impliedVolInto(right: Right): void {
  lastIterations = 0;
  const { price, S, K, T, r, q } = ivIo;
  if (!(S > 0 && K > 0 && T > 0 && price >= 0 && Number.isFinite(S + K + T + r + q + price))) {
    ivIo.code = IV_BAD_INPUT;
    return;
  }
  const forward = S * Math.exp((r - q) * T);
  const undiscounted = price * Math.exp(r * T);
  const intrinsic = Math.max(right * (forward - K), 0);
  // A few ulps (of F and K, whose difference it is) under intrinsic is intrinsic: rounding, not a quote below it.
  if (undiscounted < intrinsic - 16 * Number.EPSILON * Math.max(forward, K)) {
    ivIo.code = IV_BELOW_INTRINSIC;
    return;
  }
  if (undiscounted >= (right === 1 ? forward : K)) {
    ivIo.code = IV_ABOVE_BOUND;
    return;
  }
  const beta = (undiscounted - intrinsic) / Math.sqrt(forward * K);
  if (beta <= 0) {
    ivIo.code = 0;
    return;
  }
  const x = -Math.abs(Math.log(forward / K));
  if (beta >= Math.exp(0.5 * x)) {
    ivIo.code = IV_ABOVE_BOUND;
    return;
  }
  w.beta = beta;
  w.x = x;
  solveOtm();
  ivIo.code = w.s / Math.sqrt(T);
}

/**
 * The solver's working values: β and x in; s, the start of the polish and
 * then its answer, inside the bracket (lo, hi); the ends (β, value, slope)
 * of a branch's interpolation, left and right, and its value f at β.
 */
const w = { beta: NaN, x: NaN, s: NaN, lo: NaN, hi: NaN, xl: NaN, xr: NaN, yl: NaN, yr: NaN, dl: NaN, dr: NaN, f: NaN };

/**
 * Delbourgo–Gregory rational cubic through (w.xl, w.yl) and (w.xr, w.yr)
 * with slopes w.dl, w.dr, at w.beta, into w.f. Its control parameter r
 * (3 is the cubic Hermite, larger pulls it towards the chord) gives a zero
 * second derivative at the left (or right) end, raised to keep the shape.
 */
function interpolate(atLeft: boolean): void {
  const { xl, xr, yl, yr, dl, dr } = w;
  const h = xr - xl;
  const slope = (yr - yl) / h;
  let r = atLeft ? (dr - dl) / (slope - dl) : (dr - dl) / (dr - slope);
  if (!Number.isFinite(r)) r = 3;
  // Monotone data stays monotone for r ≥ (dl + dr)/slope; convex (or concave) data keeps its sign for r above both ratios.
  if (slope !== 0 && dl * slope >= 0 && dr * slope >= 0) r = Math.max(r, (dl + dr) / slope);
  const a = slope - dl;
  const c = dr - slope;
  if (a * c > 0) r = Math.max(r, a / c, c / a);
  r = Math.max(r, -0.999);
  const s = (w.beta - xl) / h;
  const o = 1 - s;
  w.f = (yr * s * s * s + (r * yr - h * dr) * s * s * o + (r * yl + h * dl) * s * o * o + yl * o * o * o) / (1 + (r - 3) * s * o);
}

/** s = σ√T into w.s for the out-of-the-money normalised call time value w.beta at w.x ≤ 0, 0 < β < e^{x/2}. */
function solveOtm(): void {
  const beta = w.beta;
  const x = w.x;
  const bMax = Math.exp(0.5 * x);
  if (x === 0) {
    // At the money β = 1 - 2Φ(-s/2) exactly; the inverse is already the answer, one polish step below confirms it.
    normalIo.p = 0.5 * (1 - beta);
    quantileAt();
    w.s = -2 * normalIo.z;
    w.lo = 0;
    w.hi = Infinity;
    polish(CENTRE);
    return;
  }
  // The inflection point s_c, and where its tangent meets 0 and b_max: the branches' ends, b and b' there.
  const ax = -x;
  const sc = Math.sqrt(2 * ax);
  otm.x = x;
  otm.s = sc;
  otmAt();
  const bc = otm.b;
  const vc = otm.vega;
  const sl = sc - bc / vc;
  const su = sc + (bMax - bc) / vc;
  otm.s = sl;
  otmAt();
  const bl = otm.b; // 0 where sl ≤ 0
  const vl = otm.vega;
  otm.s = su;
  otmAt();
  const bu = otm.b;
  const vu = otm.vega;
  if (beta < bl) {
    // Lower tail: interpolate f = c·Φ(-z)³ (z = |x|/(√3 s)), which matches β's leading asymptotics, then invert f exactly.
    const c = (2 * Math.PI * ax) / (3 * Math.sqrt(3));
    const zl = ax / (Math.sqrt(3) * sl);
    normalIo.z = -zl;
    cdfAt();
    const tail = normalIo.p;
    const fl = c * tail * tail * tail;
    const dfl = (3 * c * tail * tail * normalIo.density * zl) / sl / vl;
    w.xl = 0; w.xr = bl; w.yl = 0; w.yr = fl; w.dl = 1; w.dr = dfl;
    interpolate(true);
    let s = sl / 2;
    if (w.f > 0) {
      normalIo.p = Math.cbrt(w.f / c);
      quantileAt();
      const z = -normalIo.z;
      if (z > 0) s = ax / (Math.sqrt(3) * z);
    }
    w.s = s;
    w.lo = 0;
    w.hi = sl;
    polish(LOWER);
    return;
  }
  if (beta <= bc) {
    // s(β) has zero second derivative at the inflection point.
    w.xl = bl; w.xr = bc; w.yl = sl; w.yr = sc; w.dl = 1 / vl; w.dr = 1 / vc;
    interpolate(false);
    w.s = w.f;
    w.lo = Math.max(sl, 0);
    w.hi = sc;
    polish(CENTRE);
    return;
  }
  if (beta <= bu) {
    w.xl = bc; w.xr = bu; w.yl = sc; w.yr = su; w.dl = 1 / vc; w.dr = 1 / vu;
    interpolate(true);
    w.s = w.f;
    w.lo = sc;
    w.hi = su;
    polish(CENTRE);
    return;
  }
  // Upper tail: interpolate f = Φ(-s/2), since b_max - β → 2Φ(-s/2) as s grows, then invert f exactly.
  normalIo.z = -0.5 * su;
  cdfAt();
  const fu = normalIo.p;
  const dfu = (-0.5 * normalIo.density) / vu;
  w.xl = bu; w.xr = bMax; w.yl = fu; w.yr = 0; w.dl = dfu; w.dr = -0.5;
  interpolate(false);
  let s = 2 * su;
  if (w.f > 0 && w.f < 0.5) {
    normalIo.p = w.f;
    quantileAt();
    s = -2 * normalIo.z;
  }
  w.s = s;
  w.lo = su;
  w.hi = Infinity;
  polish(beta > 0.5 * bMax ? UPPER : CENTRE);
}

const LOWER = 0;
const CENTRE = 1;
const UPPER = 2;

/**
 * Householder steps (third order) on the branch's objective from w.s, kept
 * inside (w.lo, w.hi), the bracket the branch gives: a step that leaves it
 * bisects instead. The answer into w.s.
 */
function polish(objective: number): void {
  const beta = w.beta;
  const x = w.x;
  let lo = w.lo;
  let hi = w.hi;
  const lnBeta = Math.log(beta);
  const bMax = Math.exp(0.5 * x);
  const gapBeta = bMax - beta;
  let s = w.s > lo && w.s < hi ? w.s : Number.isFinite(hi) ? 0.5 * (lo + hi) : 2 * lo + 1;
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
      // ln b from the scaled form, valid and exact where b itself underflows (the lower branch lies below the inflection point).
      let scaled: number;
      if (h + t <= 0) {
        tailIo.z = -h - t;
        scaledTailAt();
        const first = tailIo.value;
        tailIo.z = t - h;
        scaledTailAt();
        scaled = first - tailIo.value;
      } else {
        otm.x = x;
        otm.s = s;
        otmAt();
        scaled = Math.exp(-e) * otm.b;
      }
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
      // -ln(b_max - b): b_max - b summed from two tails, never a difference (the upper branch lies above the inflection point).
      otm.x = x;
      otm.s = s;
      otmAt();
      const gap = h + t > 0 ? otm.gap : bMax - otm.b;
      const v = otm.vega / gap;
      g = Math.log(gapBeta) - Math.log(gap);
      g1 = v;
      g2 = v * a1 + v * v;
      g3 = v * a2 + 3 * v * v * a1 + 2 * v * v * v;
      above = gap < gapBeta;
    } else {
      otm.x = x;
      otm.s = s;
      otmAt();
      const b = otm.b;
      const v = otm.vega;
      g = b - beta;
      g1 = v;
      g2 = v * a1;
      g3 = v * a2;
      above = b > beta;
    }
    if (g === 0) break;
    if (above) hi = s;
    else lo = s;
    const nu = -g / g1;
    const h2 = g2 / g1;
    const h3 = g3 / g1;
    const delta = (nu * (1 + 0.5 * h2 * nu)) / (1 + nu * (h2 + (h3 * nu) / 6));
    // Householder's fourth order: a step this small leaves an error far below rounding; further steps only chase noise.
    if (Math.abs(delta) <= 1e-10 * s) {
      s += delta;
      break;
    }
    let next = s + delta;
    if (!(next > lo && next < hi)) next = Number.isFinite(hi) ? 0.5 * (lo + hi) : 2 * s;
    s = next;
  }
  w.s = s;
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
