/**
 * The chain's features on hand-computable chains (a flat smile, a linear
 * skew, two expiries, known volumes and greeks), NaN without a throw where
 * there is nothing to compute, and a chain priced by BSM on the simulator's
 * SSVI skew.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bsmGreeks, newGreeks } from '../../src/options/bsm.js';
import { computeChainFeatures, newChainFeatures, type FeatureContract } from '../../src/options/chain-features.js';
import { sliceVariance } from '../../src/options/smile-fit.js';
import { SPY_SSVI, phi as ssviPhi } from '../../src/sim/options/surface.js';

const close = (actual: number, expected: number, tol = 1e-12, what = '') => assert.ok(Math.abs(actual - expected) <= tol, `${what} ${actual} ≠ ${expected}`);

interface Spec {
  expiry?: string;
  strike: number;
  right: 'C' | 'P';
  years?: number;
  iv: number;
  delta: number;
  gamma?: number;
  vega?: number;
  theta?: number;
  volume?: number;
  openInterest?: number;
}
const row = (s: Spec): FeatureContract => ({
  expiry: s.expiry ?? '20260105',
  strike: s.strike,
  right: s.right,
  years: s.years ?? 1 / 365,
  keel: { iv: s.iv, delta: s.delta, gamma: s.gamma ?? 0, vega: s.vega ?? 0, theta: s.theta ?? 0 },
  volume: s.volume,
  openInterest: s.openInterest,
});

/** Calls and puts at strikes 96..104 (spot 100, no carry: F = 100), deltas and IVs given. */
function chain(callIv: (delta: number) => number, putIv: (delta: number) => number, expiry = '20260105', years = 1 / 365, atm = 0.2): FeatureContract[] {
  const calls: [number, number][] = [
    [100, 0.5],
    [101, 0.4],
    [102, 0.3],
    [103, 0.2],
    [104, 0.1],
  ];
  const puts: [number, number][] = [
    [100, -0.5],
    [99, -0.4],
    [98, -0.3],
    [97, -0.2],
    [96, -0.1],
  ];
  return [
    ...calls.map(([K, d]) => row({ expiry, years, strike: K, right: 'C', delta: d, iv: K === 100 ? atm : callIv(d) })),
    ...puts.map(([K, d]) => row({ expiry, years, strike: K, right: 'P', delta: d, iv: K === 100 ? atm : putIv(d) })),
  ];
}

test('a flat smile: ATM IV its level, risk reversal and butterfly 0', () => {
  const f = computeChainFeatures(chain(() => 0.2, () => 0.2), ['20260105'], 100, 0, 0, newChainFeatures());
  const e = f.expiries['20260105']!;
  close(e.atmIv, 0.2);
  close(e.call25Iv, 0.2);
  close(e.put25Iv, 0.2);
  close(e.riskReversal25, 0);
  close(e.butterfly25, 0);
  close(e.years, 1 / 365);
  // One expiry: no term slope; no volumes: no ratios.
  assert.ok(Number.isNaN(f.termSlope) && Number.isNaN(f.termSpread));
  assert.ok(Number.isNaN(f.putCallVolume) && Number.isNaN(f.putCallOpenInterest));
});

test('a linear skew in delta: the 25-delta IVs interpolated, RR negative, the fly as the wings say', () => {
  // Calls: σ = 0.2 − 0.1·(0.5 − Δ) → σ(0.25) = 0.175. Puts: σ = 0.2 + 0.2·(0.5 − |Δ|) → σ(−0.25) = 0.25.
  const rows = chain(
    (d) => 0.2 - 0.1 * (0.5 - d),
    (d) => 0.2 + 0.2 * (0.5 + d),
  );
  const e = computeChainFeatures(rows, ['20260105'], 100, 0, 0, newChainFeatures()).expiries['20260105']!;
  close(e.atmIv, 0.2);
  close(e.call25Iv, 0.175, 1e-12, 'call');
  close(e.put25Iv, 0.25, 1e-12, 'put');
  close(e.riskReversal25, -0.075, 1e-12, 'RR');
  close(e.butterfly25, 0.0125, 1e-12, 'fly');
});

test('ATM IV interpolated in log-moneyness at the forward, from the out-of-the-money side', () => {
  // No strike at 100: a put at 99 (21 %) and a call at 101 (19 %); the ITM call at 99 and put at 101 are ignored.
  const rows = [
    row({ strike: 99, right: 'P', delta: -0.45, iv: 0.21 }),
    row({ strike: 101, right: 'C', delta: 0.45, iv: 0.19 }),
    row({ strike: 99, right: 'C', delta: 0.55, iv: 0.5 }),
    row({ strike: 101, right: 'P', delta: -0.55, iv: 0.5 }),
  ];
  const lo = Math.log(0.99);
  const hi = Math.log(1.01);
  const expected = 0.21 + ((0.19 - 0.21) * (0 - lo)) / (hi - lo);
  close(computeChainFeatures(rows, ['20260105'], 100, 0, 0, newChainFeatures()).expiries['20260105']!.atmIv, expected);
  // With carry the forward moves: r − q = 10 %/year over a year puts F at 110.5, above every strike: no ATM IV.
  const carried = rows.map((r) => ({ ...r, years: 1 }));
  assert.ok(Number.isNaN(computeChainFeatures(carried, ['20260105'], 100, 0.1, 0, newChainFeatures()).expiries['20260105']!.atmIv));
});

test('the term slope: second ATM IV minus the first, per year between them', () => {
  const rows = [...chain(() => 0.2, () => 0.2, '20260105', 1 / 365, 0.2), ...chain(() => 0.18, () => 0.18, '20260106', 2 / 365, 0.18)];
  const f = computeChainFeatures(rows, ['20260105', '20260106'], 100, 0, 0, newChainFeatures());
  close(f.termSpread, -0.02);
  close(f.termSlope, -0.02 * 365, 1e-9);
  close(f.expiries['20260106']!.atmIv, 0.18);
});

test('put/call ratios and the net greeks per 1 % move, in dollars for 100-share contracts', () => {
  const rows = [
    row({ strike: 100, right: 'C', iv: 0.2, delta: 0.5, gamma: 0.04, vega: 0.1, theta: -0.2, volume: 100, openInterest: 1000 }),
    row({ strike: 101, right: 'C', iv: 0.2, delta: 0.3, gamma: 0.03, vega: 0.05, theta: -0.1, volume: 300 }),
    row({ strike: 99, right: 'P', iv: 0.2, delta: -0.3, gamma: 0.03, vega: 0.08, theta: -0.1, volume: 600, openInterest: 500 }),
    // No greeks (no IV yet): counted for its volume, left out of the sums.
    row({ strike: 98, right: 'P', iv: NaN, delta: NaN, gamma: NaN, vega: NaN, theta: NaN, volume: NaN, openInterest: 250 }),
  ];
  const f = computeChainFeatures(rows, ['20260105'], 100, 0, 0, newChainFeatures());
  close(f.putCallVolume, 600 / 400);
  close(f.putCallOpenInterest, 750 / 1000);
  // Δ: (0.5 + 0.3 − 0.3)·100 shares·$1 (1 % of $100) = $50. Γ: 0.1·100·$100·$1 = $1,000 of dollar delta.
  close(f.net.delta1Pct, 50, 1e-9);
  close(f.net.gamma1Pct, 1000, 1e-9);
  close(f.net.vega, 23, 1e-9);
  close(f.net.theta, -40, 1e-9);
  assert.equal(f.net.contracts, 3);
});

test('nothing to compute: NaN everywhere, no throw; the result object is reused', () => {
  const out = newChainFeatures();
  const f = computeChainFeatures([], ['20260105', '20260106'], NaN, 0.045, 0.012, out);
  assert.equal(f, out);
  for (const e of Object.values(f.expiries)) {
    const { fromSmile, ...numbers } = e;
    assert.equal(fromSmile, false);
    for (const v of Object.values(numbers)) assert.ok(Number.isNaN(v));
  }
  assert.ok([f.termSlope, f.termSpread, f.putCallVolume, f.putCallOpenInterest, f.net.delta1Pct, f.net.gamma1Pct, f.net.vega, f.net.theta].every(Number.isNaN));
  assert.equal(f.net.contracts, 0);
  // Only one side of the 25-delta bracketed: NaN, not an extrapolation.
  const calls = [row({ strike: 101, right: 'C', iv: 0.2, delta: 0.4 }), row({ strike: 102, right: 'C', iv: 0.2, delta: 0.3 })];
  const again = computeChainFeatures(calls, ['20260105', '20260106'], 100, 0, 0, out);
  const e = again.expiries['20260105']!;
  assert.equal(again.expiries, f.expiries, 'the same expiries: the same records');
  assert.ok(Number.isNaN(e.call25Iv) && Number.isNaN(e.riskReversal25) && Number.isNaN(e.butterfly25));
});

test('a chain priced by BSM on the simulator’s SSVI skew: ATM IV the slice’s, negative RR, positive fly, the 25-delta IVs the smile’s', () => {
  const S = 583.3;
  const r = 0.045;
  const q = 0.012;
  const T = 33 / 8760;
  const atmVol = 0.17;
  const theta = atmVol * atmVol * T;
  const phi = ssviPhi(theta, SPY_SSVI);
  const volAt = (K: number) => Math.sqrt(sliceVariance(Math.log(K / S) - (r - q) * T, theta, SPY_SSVI.rho, phi) / T);
  const g = newGreeks();
  const rows: FeatureContract[] = [];
  let delta = 0;
  for (let K = 563; K <= 603; K++) {
    for (const right of ['C', 'P'] as const) {
      const vol = volAt(K);
      bsmGreeks(right === 'C' ? 1 : -1, S, K, T, r, q, vol, g);
      rows.push({ expiry: '20260106', strike: K, right, years: T, keel: { iv: vol, delta: g.delta, gamma: g.gamma, vega: g.vega, theta: g.theta } });
      delta += g.delta;
    }
  }
  const f = computeChainFeatures(rows, ['20260106'], S, r, q, newChainFeatures());
  const e = f.expiries['20260106']!;
  close(e.atmIv, atmVol, 2e-4, 'ATM');
  assert.ok(e.riskReversal25 < -0.01, `RR ${e.riskReversal25}`);
  assert.ok(e.butterfly25 > 0, `fly ${e.butterfly25}`);
  // The smile's own volatility at ±25 delta, found by bisection on the strike.
  const volAtDelta = (right: 1 | -1, target: number) => {
    let lo = 540;
    let hi = 640;
    for (let i = 0; i < 100; i++) {
      const K = 0.5 * (lo + hi);
      bsmGreeks(right, S, K, T, r, q, volAt(K), g);
      // Delta falls as the strike rises, for calls and puts alike.
      if (g.delta > target) lo = K;
      else hi = K;
    }
    return volAt(0.5 * (lo + hi));
  };
  close(e.call25Iv, volAtDelta(1, 0.25), 2e-3, 'call 25Δ');
  close(e.put25Iv, volAtDelta(-1, -0.25), 2e-3, 'put 25Δ');
  close(f.net.delta1Pct, delta * 100 * 0.01 * S, 1e-6, 'net delta');
  assert.equal(f.net.contracts, rows.length);

  // From the slice itself: ATM IV √(θ/T) exactly, the 25-delta IVs the bisection's; and beyond the strikes the
  // contracts reach (a band of ±2 strikes brackets no 25-delta), the smile still answers.
  const slice = { theta, rho: SPY_SSVI.rho, phi, rmsPrice: 0, points: rows.length };
  const near = rows.filter((c) => Math.abs(c.strike - S) <= 2);
  const fromContracts = computeChainFeatures(near, ['20260106'], S, r, q, newChainFeatures()).expiries['20260106']!;
  assert.ok(Number.isNaN(fromContracts.riskReversal25) && !fromContracts.fromSmile);
  const s = computeChainFeatures(near, ['20260106'], S, r, q, newChainFeatures(), { '20260106': slice }).expiries['20260106']!;
  assert.ok(s.fromSmile);
  close(s.atmIv, atmVol, 1e-12, 'smile ATM');
  close(s.call25Iv, volAtDelta(1, 0.25), 1e-9, 'smile call 25Δ');
  close(s.put25Iv, volAtDelta(-1, -0.25), 1e-9, 'smile put 25Δ');
  close(s.riskReversal25, e.riskReversal25, 2e-3, 'smile RR vs contracts RR');
  assert.ok(s.riskReversal25 < -0.01 && s.butterfly25 > 0);
});
