/**
 * The pricing formulas against the reference values of OPTIONS-NOTES.md
 * (Hull, Haug, Bjerksund–Stensland 2002, the SPY 0DTE case), put–call
 * parity, the normal distribution against high-precision values, and the
 * American models against the Leisen–Reimer tree.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { americanGreeks, americanPrice } from '../../src/options/american.js';
import { bawPrice } from './support/baw.js';
import { leisenReimerPrice } from './support/binomial.js';
import { bsmGreeks, bsmPrice, CALL, newGreeks, PUT, type Right } from '../../src/options/bsm.js';
import { bivariateCdf, cdf, inverseCdf } from '../../src/options/normal.js';

/** Equal when rounded to `decimals` places (the notes' values are given to 4). */
function rounds(actual: number, expected: number, decimals = 4, what = '') {
  assert.equal(actual.toFixed(decimals), expected.toFixed(decimals), `${what}: ${actual} does not round to ${expected}`);
}

test('Φ to ~1e-15 relative in the lower tail (values from mpmath at 40 digits)', () => {
  const reference: [number, number][] = [
    [-37, 5.725571222524e-300],
    [-20, 2.753624118606e-89],
    [-10, 7.619853024160e-24],
    [-7.2, 3.010627981117e-13],
    [-3, 1.349898031630e-3],
    [-0.5, 0.308537538726],
    [1, 0.841344746069],
  ];
  for (const [z, p] of reference) assert.ok(Math.abs(cdf(z) / p - 1) < 1e-11, `Φ(${z}) = ${cdf(z)}, want ${p}`);
  // Continuity where the pieces meet, and symmetry.
  for (let z = -12; z <= 12; z += 0.125) {
    assert.ok(Math.abs(cdf(z) + cdf(-z) - 1) < 2e-16 * 4, `Φ(${z}) + Φ(${-z}) = ${cdf(z) + cdf(-z)}`);
    const below = cdf(z - 1e-9);
    assert.ok(below <= cdf(z) + 1e-16 * cdf(z), `Φ is not monotone at ${z}`);
  }
  for (const p of [1e-300, 1e-20, 1e-5, 0.01, 0.3, 0.7, 0.99, 1 - 1e-12]) {
    const x = inverseCdf(p);
    const back = p < 0.5 ? cdf(x) / p - 1 : (1 - cdf(x)) / (1 - p) - 1;
    assert.ok(Math.abs(back) < 1e-12, `Φ(Φ⁻¹(${p})) is off by ${back}`);
  }
});

test('bivariate normal: against its ρ = 0 product and a brute-force double integral', () => {
  for (const [a, b] of [[0.3, -0.4], [-2, 1], [1.5, 2.5]] as const) assert.ok(Math.abs(bivariateCdf(a, b, 0) - cdf(a) * cdf(b)) < 1e-15);
  // Midpoint rule over x < a of φ(x)·Φ((b - ρx)/√(1-ρ²)).
  for (const [a, b, rho] of [[0.3, -0.4, 0.786], [-2, 1, -0.786], [1, 1, 0.5]] as const) {
    let sum = 0;
    const dx = 1e-4;
    for (let x = -12 + dx / 2; x < a; x += dx) sum += (Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI)) * cdf((b - rho * x) / Math.sqrt(1 - rho * rho)) * dx;
    assert.ok(Math.abs(bivariateCdf(a, b, rho) - sum) < 1e-8, `M(${a}, ${b}, ${rho}) = ${bivariateCdf(a, b, rho)}, integral ${sum}`);
  }
});

test('Black–Scholes–Merton: the reference prices of the notes, to 4 decimals', () => {
  rounds(bsmPrice(CALL, 42, 40, 0.5, 0.1, 0, 0.2), 4.7594, 4, 'Hull call');
  rounds(bsmPrice(PUT, 42, 40, 0.5, 0.1, 0, 0.2), 0.8086, 4, 'Hull put');
  rounds(bsmPrice(CALL, 60, 65, 0.25, 0.08, 0, 0.3), 2.1334, 4, 'Haug call');
  rounds(bsmPrice(PUT, 100, 95, 0.5, 0.1, 0.05, 0.2), 2.4648, 4, 'Haug put q 0.05');
  rounds(bsmPrice(PUT, 19, 19, 0.75, 0.1, 0.1, 0.28), 1.7011, 4, 'Haug futures-like put');
  rounds(bsmPrice(CALL, 1.56, 1.6, 0.5, 0.06, 0.08, 0.12), 0.0291, 4, 'Haug currency call');
  rounds(bsmPrice(PUT, 75, 70, 0.5, 0.1, 0.05, 0.35), 4.087, 4, 'Haug put');
});

test('BSM greeks: the reference values of the notes, in IB units and back', () => {
  const g = newGreeks();
  rounds(bsmGreeks(CALL, 105, 100, 0.5, 0.1, 0.1, 0.36, g).delta, 0.5946, 4, 'call delta');
  rounds(bsmGreeks(PUT, 105, 100, 0.5, 0.1, 0.1, 0.36, g).delta, -0.3566, 4, 'put delta');
  bsmGreeks(CALL, 55, 60, 0.75, 0.1, 0, 0.3, g);
  rounds(g.gamma, 0.0278, 4, 'gamma');
  // IB's vega is per volatility point: the notes give it per 1.00 of σ.
  rounds(g.vega * 100, 18.9358, 4, 'vega per 1.00');
  // IB's theta is per calendar day: the notes give it per year.
  rounds(bsmGreeks(PUT, 430, 405, 1 / 12, 0.07, 0.05, 0.2, g).theta * 365, -31.1924, 4, 'theta per year');
});

test('BSM greeks agree with central differences of the price', () => {
  const g = newGreeks();
  for (const right of [CALL, PUT] as Right[]) {
    for (const [S, K, T, r, q, v] of [[100, 90, 0.3, 0.05, 0.02, 0.25], [580, 585, 2 / 8760, 0.045, 0.012, 0.15], [50, 80, 2, 0.01, 0.03, 0.6]] as const) {
      bsmGreeks(right, S, K, T, r, q, v, g);
      const p = (s: number, t: number, vol: number) => bsmPrice(right, s, K, t, r, q, vol);
      const h = S * 1e-4;
      const delta = (p(S + h, T, v) - p(S - h, T, v)) / (2 * h);
      const gamma = (p(S + h, T, v) - 2 * p(S, T, v) + p(S - h, T, v)) / (h * h);
      const vega = (p(S, T, v + 1e-5) - p(S, T, v - 1e-5)) / 2e-5 / 100;
      const dt = T * 1e-5;
      const theta = -(p(S, T + dt, v) - p(S, T - dt, v)) / (2 * dt) / 365;
      const near = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) <= 1e-5 * Math.max(1, Math.abs(b)), `${right} ${S}/${K} ${what}: ${a} vs ${b}`);
      near(g.delta, delta, 'delta');
      near(g.gamma, gamma, 'gamma');
      near(g.vega, vega, 'vega');
      near(g.theta, theta, 'theta');
    }
  }
});

test('put–call parity: C - P = S e^{-qT} - K e^{-rT}, across strikes, times and volatilities', () => {
  for (const K of [50, 90, 100, 110, 200]) {
    for (const T of [1 / 52_560, 1 / 365, 0.5, 2]) {
      for (const v of [0.01, 0.2, 1, 5]) {
        const S = 100;
        const r = 0.05;
        const q = 0.02;
        const lhs = bsmPrice(CALL, S, K, T, r, q, v) - bsmPrice(PUT, S, K, T, r, q, v);
        const rhs = S * Math.exp(-q * T) - K * Math.exp(-r * T);
        assert.ok(Math.abs(lhs - rhs) < 1e-12 * Math.max(S, K), `K ${K} T ${T} σ ${v}: ${lhs} vs ${rhs}`);
      }
    }
  }
});

test('prices stay within their no-arbitrage bounds and rise with volatility', () => {
  for (const right of [CALL, PUT] as Right[]) {
    let previous = -1;
    for (const v of [0, 0.01, 0.05, 0.2, 1, 3, 10, 50]) {
      const p = bsmPrice(right, 100, 105, 0.25, 0.05, 0.01, v);
      const lower = Math.max(right * (100 * Math.exp(-0.01 * 0.25) - 105 * Math.exp(-0.05 * 0.25)), 0);
      const upper = right === CALL ? 100 * Math.exp(-0.01 * 0.25) : 105 * Math.exp(-0.05 * 0.25);
      assert.ok(p >= lower - 1e-12 && p <= upper + 1e-12, `${right} σ ${v}: ${p} outside [${lower}, ${upper}]`);
      assert.ok(p > previous || p === upper, `${right}: price does not rise with σ at ${v}`);
      previous = p;
    }
  }
  assert.ok(Number.isNaN(bsmPrice(CALL, -1, 100, 1, 0, 0, 0.2)));
  assert.ok(Number.isNaN(bsmPrice(CALL, 100, 100, -1, 0, 0, 0.2)));
});

test('Bjerksund–Stensland 2002: the reference values of the notes, to 4 decimals', () => {
  // b = 0 (q = r = 0.10), T = 0.5, K = 100.
  const cases: [number, number, number, number][] = [
    [90, 0.15, 0.8099, 10.54],
    [100, 0.25, 6.7661, 6.7661],
    [110, 0.35, 15.5137, 5.8374],
  ];
  for (const [S, v, call, put] of cases) {
    rounds(americanPrice(CALL, S, 100, 0.5, 0.1, 0.1, v), call, 4, `call S ${S}`);
    rounds(americanPrice(PUT, S, 100, 0.5, 0.1, 0.1, v), put, 4, `put S ${S}`);
  }
});

test('SPY 0DTE: ATM put, 2 h of a 6.5 h day of 252: European 1.2011, BS2002 1.2017, Leisen–Reimer 1.2022', () => {
  // The notes' case counts time in trading years: 2 h of a 6.5 h session, 252 sessions a year.
  const T = 2 / 6.5 / 252;
  rounds(bsmPrice(PUT, 580, 580, T, 0.045, 0.012, 0.15), 1.2011, 4, 'European');
  rounds(americanPrice(PUT, 580, 580, T, 0.045, 0.012, 0.15), 1.2017, 4, 'Bjerksund–Stensland 2002');
  rounds(leisenReimerPrice(PUT, 580, 580, T, 0.045, 0.012, 0.15, 501), 1.2022, 4, 'Leisen–Reimer, 501 steps');
  rounds(leisenReimerPrice(PUT, 580, 580, T, 0.045, 0.012, 0.15, 1001, false), 1.2011, 4, 'the European tree');
});

test('Barone-Adesi–Whaley: the notes give 1.8771 and 14.6945; an exact BAW gives 1.8769 and 14.6943', () => {
  // The notes' figures (Haug's table) sit 1.8e-4 above BAW solved exactly; an independent
  // implementation (scipy, Newton on the critical price) gives keel's figures, so they are checked to 3 decimals.
  rounds(bawPrice(CALL, 100, 100, 0.1, 0.1, 0.1, 0.15), 1.8771, 3, 'BAW call');
  rounds(bawPrice(PUT, 90, 100, 0.5, 0.1, 0.1, 0.35), 14.6945, 3, 'BAW put');
  rounds(bawPrice(CALL, 100, 100, 0.1, 0.1, 0.1, 0.15), 1.8769, 4, 'BAW call, exact');
  rounds(bawPrice(PUT, 90, 100, 0.5, 0.1, 0.1, 0.35), 14.6943, 4, 'BAW put, exact');
});

test('American prices: at least European and intrinsic, and near the Leisen–Reimer tree', () => {
  for (const right of [CALL, PUT] as Right[]) {
    for (const [S, K, T, r, q, v] of [[100, 100, 0.5, 0.08, 0.0, 0.25], [90, 100, 1, 0.06, 0.03, 0.3], [120, 100, 0.25, 0.05, 0.08, 0.2], [451, 470, 7 / 365, 0.053, 0.015, 0.13]] as const) {
      const a = americanPrice(right, S, K, T, r, q, v);
      const e = bsmPrice(right, S, K, T, r, q, v);
      const tree = leisenReimerPrice(right, S, K, T, r, q, v, 1001);
      assert.ok(a >= e - 1e-12 && a >= right * (S - K) - 1e-12, `${right} ${S}/${K}: ${a} below European ${e} or intrinsic`);
      // BS2002 is a lower bound on the true price; with b ≠ 0 at the money it lands up to ~1.3 % under the tree.
      assert.ok(a <= tree + 1e-6 && tree - a < 0.015 * tree + 1e-4, `${right} ${S}/${K}: BS2002 ${a} vs tree ${tree}`);
    }
  }
  // A call with carry at least the rate is never exercised early: exactly European.
  assert.equal(americanPrice(CALL, 100, 95, 1, 0.05, 0, 0.2), bsmPrice(CALL, 100, 95, 1, 0.05, 0, 0.2));
  const g = americanGreeks(PUT, 100, 100, 0.5, 0.08, 0, 0.25, newGreeks());
  assert.ok(g.delta < -0.4 && g.delta > -0.6 && g.gamma > 0 && g.vega > 0 && g.theta < 0, JSON.stringify(g));
});
