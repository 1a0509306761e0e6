/**
 * The value of the exercise strategy Bjerksund–Stensland (2002) prices, by
 * finite differences instead of by their closed form: a call exercised as
 * soon as spot reaches I2 during [0, t1] or I1 during [t1, T], with
 * t1 = ½(√5 - 1)T and the two flat boundaries of the paper,
 * I(τ) = B0 + (B∞ - B0)(1 - exp h(τ)), h(τ) = -(bτ + 2σ√τ)·K²/((B∞ - B0)B0),
 * I1 = I(t1), I2 = I(T) (as in NAG's s30qcf documentation,
 * https://support.nag.com/numeric/fl/nagdoc_latest/html/s/s30qcf.html).
 *
 * The strategy is feasible but not optimal, so its value is a lower bound on
 * the American price (the paper's abstract, https://hdl.handle.net/11250/163705).
 * If keel's closed form equals this strategy's value, any gap to a tree is the
 * model's, not a slip in the φ/ψ terms. A put is priced as the call of the
 * put–call transformation P(S, K, T, r, b, σ) = C(K, S, T, r - b, -b, σ).
 *
 * Crank–Nicolson in x = ln S (Rannacher start: two implicit steps after each
 * kink), the grid built so that ln I1 and ln I2 are both nodes and the
 * boundaries are exact Dirichlet conditions (value I - K on them).
 */
import type { Right } from '../../../src/options/bsm.js';

/** The boundaries I1 (second period) and I2 (first period) and the split t1, for a call with carry b < r. */
export function bs2002Boundaries(K: number, T: number, r: number, b: number, sigma: number): { t1: number; i1: number; i2: number } {
  const v2 = sigma * sigma;
  const beta = 0.5 - b / v2 + Math.sqrt((b / v2 - 0.5) ** 2 + (2 * r) / v2);
  const bInf = (beta / (beta - 1)) * K;
  const b0 = Math.max(K, (r / (r - b)) * K);
  const boundary = (tau: number) => b0 + (bInf - b0) * (1 - Math.exp((-(b * tau + 2 * sigma * Math.sqrt(tau)) * K * K) / ((bInf - b0) * b0)));
  const t1 = 0.5 * (Math.sqrt(5) - 1) * T;
  return { t1, i1: boundary(t1), i2: boundary(T) };
}

/** θ-scheme steps of V_t + ½σ²V_xx + (b - ½σ²)V_x - rV = 0 on nodes 0..n, V[0] = 0 far below, V[n] = top. */
function march(V: Float64Array, n: number, h: number, dt: number, steps: number, r: number, b: number, sigma: number, top: number, theta: number): void {
  const a = (0.5 * sigma * sigma) / (h * h);
  const c = (b - 0.5 * sigma * sigma) / (2 * h);
  const lo = a - c;
  const mid = -2 * a - r;
  const hi = a + c;
  const diag = new Float64Array(n + 1);
  const rhs = new Float64Array(n + 1);
  for (let s = 0; s < steps; s++) {
    V[0] = 0;
    V[n] = top;
    for (let i = 1; i < n; i++) {
      diag[i] = 1 - theta * dt * mid;
      rhs[i] = V[i]! + (1 - theta) * dt * (lo * V[i - 1]! + mid * V[i]! + hi * V[i + 1]!);
    }
    rhs[n - 1]! += theta * dt * hi * top;
    // Thomas: sub-diagonal -θ·dt·lo, super-diagonal -θ·dt·hi, both constant.
    const sub = -theta * dt * lo;
    const sup = -theta * dt * hi;
    for (let i = 2; i < n; i++) {
      const m = sub / diag[i - 1]!;
      diag[i]! -= m * sup;
      rhs[i]! -= m * rhs[i - 1]!;
    }
    V[n - 1] = rhs[n - 1]! / diag[n - 1]!;
    for (let i = n - 2; i >= 1; i--) V[i] = (rhs[i]! - sup * V[i + 1]!) / diag[i]!;
  }
}

/** The strategy's value for a call with carry b < r; `nodes` grid steps up to ln I1, about `steps` time steps over T. */
function strategyCall(S: number, K: number, T: number, r: number, b: number, sigma: number, nodes: number, steps: number): number {
  const { t1, i1, i2 } = bs2002Boundaries(K, T, r, b, sigma);
  if (S >= i2) return S - K;
  const x1 = Math.log(i1);
  const x2 = Math.log(i2);
  const bottom = Math.min(Math.log(S), Math.log(K)) - 10 * sigma * Math.sqrt(T);
  let h = (x1 - bottom) / nodes;
  const gap = Math.max(1, Math.round((x2 - x1) / h));
  if (x2 > x1) h = (x2 - x1) / gap;
  const n1 = Math.ceil((x1 - bottom) / h);
  const n2 = x2 > x1 ? n1 + gap : n1;
  const base = x1 - n1 * h;
  const spot = (i: number) => Math.exp(base + i * h);
  const V = new Float64Array(n2 + 1);
  for (let i = 0; i <= n1; i++) V[i] = Math.max(spot(i) - K, 0);
  const period = (length: number, top: number, n: number) => {
    const count = Math.max(8, Math.round((steps * length) / T));
    const dt = length / count;
    march(V, n, h, dt / 2, 4, r, b, sigma, top, 1);
    march(V, n, h, dt, count - 2, r, b, sigma, top, 0.5);
  };
  // Backwards: [t1, T] under I1, then at t1 exercise everything at or above I1, then [0, t1] under I2.
  period(T - t1, i1 - K, n1);
  for (let i = n1; i <= n2; i++) V[i] = spot(i) - K;
  period(t1, i2 - K, n2);
  const at = (Math.log(S) - base) / h;
  const i = Math.floor(at);
  const w = at - i;
  const [f0, f1, f2] = [V[i - 1]!, V[i]!, V[i + 1]!];
  return f1 + 0.5 * w * (f2 - f0) + 0.5 * w * w * (f2 - 2 * f1 + f0);
}

/** The value of BS2002's exercise strategy for an American option with early exercise (a call needs q > 0, a put r > 0). */
export function bs2002StrategyValue(right: Right, S: number, K: number, T: number, r: number, q: number, sigma: number, nodes = 2000, steps = 2000): number {
  const b = r - q;
  return right === 1 ? strategyCall(S, K, T, r, b, sigma, nodes, steps) : strategyCall(K, S, T, r - b, -b, sigma, nodes, steps);
}
