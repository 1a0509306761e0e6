/**
 * Barone-Adesi & Whaley (1987): the American premium as a quadratic
 * approximation, with the critical price found by bisection. A cross-check
 * for Bjerksund–Stensland 2002 (keel's American model), not used for pricing.
 */
import { bsmPrice, validInputs, type Right } from '../../../src/options/bsm.js';
import { cdf } from '../../../src/options/normal.js';

export function bawPrice(right: Right, S: number, K: number, T: number, r: number, q: number, sigma: number): number {
  if (!validInputs(S, K, T, r, q, sigma)) return NaN;
  const b = r - q;
  const european = bsmPrice(right, S, K, T, r, q, sigma);
  if (T === 0 || sigma === 0) return Math.max(european, right * (S - K));
  // A call with carry at least the rate is never exercised early.
  if (right === 1 && b >= r) return european;
  const v2 = sigma * sigma;
  const m = (2 * r) / v2;
  const nn = (2 * b) / v2;
  const k = 1 - Math.exp(-r * T);
  const root = Math.sqrt((nn - 1) ** 2 + (4 * m) / k);
  const qq = right === 1 ? 0.5 * (-(nn - 1) + root) : 0.5 * (-(nn - 1) - root);
  const carry = Math.exp((b - r) * T);
  const sT = sigma * Math.sqrt(T);
  // The premium's coefficient at spot x: the boundary condition's smooth-pasting term.
  const coefficient = (x: number) => (right * x * (1 - carry * cdf((right * (Math.log(x / K) + (b + 0.5 * v2) * T)) / sT))) / qq;
  // The critical price solves right·(x - K) = european(x) + coefficient(x); bisect on log x.
  const gap = (x: number) => right * (x - K) - bsmPrice(right, x, K, T, r, q, sigma) - coefficient(x);
  let lo = right === 1 ? K : K * 1e-6;
  let hi = right === 1 ? K * 1e6 : K;
  for (let i = 0; i < 200 && hi / lo - 1 > 1e-15; i++) {
    const mid = Math.sqrt(lo * hi);
    // For a call the gap turns positive above the boundary, for a put below it.
    if ((gap(mid) > 0) === (right === 1)) hi = mid;
    else lo = mid;
  }
  const critical = Math.sqrt(lo * hi);
  if (right * (S - critical) >= 0) return right * (S - K);
  return european + coefficient(critical) * (S / critical) ** qq;
}
