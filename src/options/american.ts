/**
 * American exercise by Bjerksund & Stensland (2002): the call's exercise
 * boundary approximated by two flat pieces, [0, t1] and [t1, T] with
 * t1 = ½(√5 - 1)T, priced in closed form with the bivariate normal. A put
 * is the call under the put–call transformation
 * P(S, K, T, r, b, σ) = C(K, S, T, r - b, -b, σ).
 *
 * Greeks are central finite differences of the price: the closed form has
 * no tidy analytic greeks, and for 0–3 DTE SPY the early-exercise premium
 * is under a cent near the money, so the European greeks are the better
 * choice there (chain-pricing uses them).
 */
import { bsmGreeks, bsmPrice, DAYS_PER_YEAR, validInputs, type Greeks, type Right } from './bsm.js';
import { bivariateCdf, cdf } from './normal.js';

/** The American price (NaN for inputs that cannot be priced). */
export function americanPrice(right: Right, S: number, K: number, T: number, r: number, q: number, sigma: number): number {
  if (!validInputs(S, K, T, r, q, sigma)) return NaN;
  const b = r - q;
  return right === 1 ? bs2002Call(S, K, T, r, b, sigma) : bs2002Call(K, S, T, r - b, -b, sigma);
}

/** The call of Bjerksund–Stensland 2002, with cost of carry b. */
function bs2002Call(S: number, K: number, T: number, r: number, b: number, sigma: number): number {
  const intrinsic = Math.max(S - K, 0);
  if (T === 0 || sigma === 0) return Math.max(intrinsic, bsmPrice(1, S, K, T, r, r - b, sigma));
  // Never exercised early when carry is at least the rate: the European call.
  if (b >= r) return bsmPrice(1, S, K, T, r, r - b, sigma);
  const v2 = sigma * sigma;
  const beta = 0.5 - b / v2 + Math.sqrt((b / v2 - 0.5) ** 2 + (2 * r) / v2);
  const bInf = (beta / (beta - 1)) * K;
  const b0 = Math.max(K, (r / (r - b)) * K);
  const t1 = 0.5 * (Math.sqrt(5) - 1) * T;
  const h1 = (-(b * t1 + 2 * sigma * Math.sqrt(t1)) * K * K) / ((bInf - b0) * b0);
  const h2 = (-(b * T + 2 * sigma * Math.sqrt(T)) * K * K) / ((bInf - b0) * b0);
  const i1 = b0 + (bInf - b0) * (1 - Math.exp(h1));
  const i2 = b0 + (bInf - b0) * (1 - Math.exp(h2));
  if (S >= i2) return intrinsic;
  const alpha1 = (i1 - K) * i1 ** -beta;
  const alpha2 = (i2 - K) * i2 ** -beta;
  const p = { S, r, b, sigma };
  const price =
    alpha2 * S ** beta -
    alpha2 * phi(p, t1, beta, i2, i2) +
    phi(p, t1, 1, i2, i2) -
    phi(p, t1, 1, i1, i2) -
    K * phi(p, t1, 0, i2, i2) +
    K * phi(p, t1, 0, i1, i2) +
    alpha1 * phi(p, t1, beta, i1, i2) -
    alpha1 * psi(p, T, beta, i1, i2, i1, t1) +
    psi(p, T, 1, i1, i2, i1, t1) -
    psi(p, T, 1, K, i2, i1, t1) -
    K * psi(p, T, 0, i1, i2, i1, t1) +
    K * psi(p, T, 0, K, i2, i1, t1);
  // The approximation is a lower bound on the true price; it can never be worth less than exercising now.
  return Math.max(price, intrinsic);
}

interface Params {
  readonly S: number;
  readonly r: number;
  readonly b: number;
  readonly sigma: number;
}

/** E[e^{-rT} S_T^γ; S never above I before T, S_T ≤ H] in the paper's notation φ(S, T, γ, H, I). */
function phi({ S, r, b, sigma }: Params, T: number, gamma: number, H: number, I: number): number {
  const v2 = sigma * sigma;
  const sT = sigma * Math.sqrt(T);
  const lambda = (-r + gamma * b + 0.5 * gamma * (gamma - 1) * v2) * T;
  const d = -(Math.log(S / H) + (b + (gamma - 0.5) * v2) * T) / sT;
  const kappa = (2 * b) / v2 + (2 * gamma - 1);
  return Math.exp(lambda) * S ** gamma * (cdf(d) - (I / S) ** kappa * cdf(d - (2 * Math.log(I / S)) / sT));
}

/** The two-period counterpart ψ(S, T, γ, H, I2, I1, t1), with the bivariate normal at correlation ±√(t1/T). */
function psi({ S, r, b, sigma }: Params, T: number, gamma: number, H: number, i2: number, i1: number, t1: number): number {
  const v2 = sigma * sigma;
  const drift = b + (gamma - 0.5) * v2;
  const s1 = sigma * Math.sqrt(t1);
  const sT = sigma * Math.sqrt(T);
  const e1 = -(Math.log(S / i1) + drift * t1) / s1;
  const e2 = -(Math.log((i2 * i2) / (S * i1)) + drift * t1) / s1;
  const e3 = -(Math.log(S / i1) - drift * t1) / s1;
  const e4 = -(Math.log((i2 * i2) / (S * i1)) - drift * t1) / s1;
  const f1 = -(Math.log(S / H) + drift * T) / sT;
  const f2 = -(Math.log((i2 * i2) / (S * H)) + drift * T) / sT;
  const f3 = -(Math.log((i1 * i1) / (S * H)) + drift * T) / sT;
  const f4 = -(Math.log((S * i1 * i1) / (H * i2 * i2)) + drift * T) / sT;
  const rho = Math.sqrt(t1 / T);
  const lambda = (-r + gamma * b + 0.5 * gamma * (gamma - 1) * v2) * T;
  const kappa = (2 * b) / v2 + (2 * gamma - 1);
  return (
    Math.exp(lambda) *
    S ** gamma *
    (bivariateCdf(e1, f1, rho) -
      (i2 / S) ** kappa * bivariateCdf(e2, f2, rho) -
      (i1 / S) ** kappa * bivariateCdf(e3, f3, -rho) +
      (i1 / i2) ** kappa * bivariateCdf(e4, f4, -rho))
  );
}

/**
 * The American price and greeks into `out`, by central differences: spot
 * ±0.01 % (delta, gamma), σ ±1 point (vega, already per point), a
 * forward step of 1 % of a day (or of the time left) for theta.
 */
export function americanGreeks(right: Right, S: number, K: number, T: number, r: number, q: number, sigma: number, out: Greeks): Greeks {
  if (!validInputs(S, K, T, r, q, sigma)) return bsmGreeks(right, S, K, T, r, q, sigma, out);
  const price = americanPrice(right, S, K, T, r, q, sigma);
  const dS = 1e-4 * S;
  const up = americanPrice(right, S + dS, K, T, r, q, sigma);
  const down = americanPrice(right, S - dS, K, T, r, q, sigma);
  out.price = price;
  out.delta = (up - down) / (2 * dS);
  out.gamma = (up - 2 * price + down) / (dS * dS);
  const dv = Math.min(0.01, sigma);
  out.vega = dv > 0 ? (americanPrice(right, S, K, T, r, q, sigma + dv) - americanPrice(right, S, K, T, r, q, sigma - dv)) / (2 * dv) / 100 : 0;
  // The rate of decay now, per day (as BSM's theta), not the loss over a whole day: 0DTE has less than one left.
  const dt = 0.01 * Math.min(1 / DAYS_PER_YEAR, T);
  out.theta = dt > 0 ? ((americanPrice(right, S, K, T - dt, r, q, sigma) - price) / dt) / DAYS_PER_YEAR : 0;
  return out;
}
