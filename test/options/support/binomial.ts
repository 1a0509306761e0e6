/**
 * The Leisen–Reimer (1996) binomial tree: up and down moves chosen by the
 * Peizer–Pratt inversion so the tree's probabilities match N(d1) and N(d2)
 * at every (odd) step count, converging as 1/n² instead of the 1/n of
 * Cox–Ross–Rubinstein. Too slow for a chain (O(n²)); it is the reference
 * the closed-form American approximations are checked against.
 */
import { validInputs, type Right } from '../../../src/options/bsm.js';

/** Peizer–Pratt method 2: a probability whose binomial tail with n steps approximates Φ(z). */
function peizerPratt(z: number, n: number): number {
  const a = z / (n + 1 / 3 + 0.1 / (n + 1));
  return 0.5 + Math.sign(z) * 0.5 * Math.sqrt(1 - Math.exp(-a * a * (n + 1 / 6)));
}

/** The American (or, with `american` false, European) price on an n-step tree; n is made odd. */
export function leisenReimerPrice(right: Right, S: number, K: number, T: number, r: number, q: number, sigma: number, steps = 501, american = true): number {
  if (!validInputs(S, K, T, r, q, sigma)) return NaN;
  if (T === 0 || sigma === 0) return Math.max(right * (S - K), 0);
  const n = steps % 2 === 1 ? steps : steps + 1;
  const b = r - q;
  const sT = sigma * Math.sqrt(T);
  const d1 = (Math.log(S / K) + (b + 0.5 * sigma * sigma) * T) / sT;
  const d2 = d1 - sT;
  const p = peizerPratt(d2, n);
  const pStar = peizerPratt(d1, n);
  const dt = T / n;
  const growth = Math.exp(b * dt);
  const up = (growth * pStar) / p;
  const down = (growth - p * up) / (1 - p);
  const df = Math.exp(-r * dt);
  const values = new Float64Array(n + 1);
  for (let i = 0; i <= n; i++) values[i] = Math.max(right * (S * up ** i * down ** (n - i) - K), 0);
  for (let step = n - 1; step >= 0; step--) {
    for (let i = 0; i <= step; i++) {
      const held = df * (p * values[i + 1]! + (1 - p) * values[i]!);
      values[i] = american ? Math.max(held, right * (S * up ** i * down ** (step - i) - K)) : held;
    }
  }
  return values[0]!;
}
