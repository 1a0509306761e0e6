/**
 * Implied volatility: price → IV → price round trips over moneyness 0.5–2,
 * 5 minutes to 2 years and σ from 1 % to 500 %, Let's Be Rational against
 * the guarded Newton, the iteration count, and the answers for prices that
 * have no volatility.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { americanPrice } from '../../src/options/american.js';
import { bsmGreeks, bsmPrice, CALL, newGreeks, PUT, type Right } from '../../src/options/bsm.js';
import {
  americanImpliedVolCode,
  IV_ABOVE_BOUND,
  IV_BAD_INPUT,
  IV_BELOW_INTRINSIC,
  impliedVol,
  impliedVolCode,
  impliedVolNewton,
  ivReason,
  lastIterations,
} from '../../src/options/implied-vol.js';

const MONEYNESS = [0.5, 0.6, 0.75, 0.9, 0.97, 0.99, 1, 1.01, 1.03, 1.1, 1.25, 1.5, 1.75, 2];
const YEARS = [5 / 525_600, 1 / 8_760, 1 / 365, 7 / 365, 30 / 365, 0.25, 1, 2];
const VOLS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 1, 2, 3.5, 5];

test('price → IV → price across moneyness 0.5–2, T 5 min–2 y, σ 1 %–500 %, calls and puts', () => {
  const g = newGreeks();
  const S = 100;
  const r = 0.05;
  const q = 0.015;
  let solved = 0;
  let steps = 0;
  let worstSteps = 0;
  let wellConditioned = 0;
  for (const m of MONEYNESS) {
    for (const T of YEARS) {
      for (const sigma of VOLS) {
        for (const right of [CALL, PUT] as Right[]) {
          const K = S * m;
          const where = `${right === CALL ? 'C' : 'P'} K/S ${m} T ${T.toPrecision(3)} σ ${sigma}`;
          const price = bsmPrice(right, S, K, T, r, q, sigma);
          const iv = impliedVolCode(right, price, S, K, T, r, q);
          const intrinsic = Math.exp(-r * T) * Math.max(right * (S * Math.exp((r - q) * T) - K), 0);
          const bound = right === CALL ? S * Math.exp(-q * T) : K * Math.exp(-r * T);
          if (iv < 0) {
            // Only a price with no time value left in floating point, or one at its bound, may have no volatility.
            assert.ok(iv === IV_ABOVE_BOUND ? price >= bound * (1 - 1e-15) : Math.abs(price - intrinsic) <= 1e-14 * Math.max(S, K), `${where}: code ${iv} for ${price}`);
            continue;
          }
          solved++;
          steps += lastIterations;
          worstSteps = Math.max(worstSteps, lastIterations);
          const back = bsmPrice(right, S, K, T, r, q, iv);
          // The round trip reproduces the price (the far wings keep ~1e-11 of their relative precision).
          assert.ok(Math.abs(back - price) <= 1e-10 * price, `${where}: ${price} → σ ${iv} → ${back}`);
          // Subnormal prices (below 1e-308) have lost digits of their own: nothing to compare σ with.
          if (price < 1e-290 || price - intrinsic <= 0) continue;
          bsmGreeks(right, S, K, T, r, q, sigma, g);
          const vegaPerUnit = g.vega * 100;
          // σ itself: as close as the price can tell it, i.e. its error moves the price by less than 1e-10 of it.
          assert.ok(Math.abs(iv - sigma) <= Math.max((1e-10 * price) / vegaPerUnit, 1e-10 * sigma), `${where}: σ ${iv} ≠ ${sigma} (vega ${vegaPerUnit})`);
          if (vegaPerUnit * sigma > 1e-6 * price) {
            wellConditioned++;
            assert.ok(Math.abs(iv / sigma - 1) < 1e-9, `${where}: σ ${iv} ≠ ${sigma}`);
          }
        }
      }
    }
  }
  const cases = MONEYNESS.length * YEARS.length * VOLS.length * 2;
  assert.ok(solved > 0.9 * cases, `only ${solved} of ${cases} solved`);
  assert.ok(wellConditioned > 0.6 * cases, `only ${wellConditioned} well-conditioned cases`);
  // Two Householder steps almost everywhere (the second one small enough to stop on), never more than a few.
  assert.ok(steps / solved <= 2.5 && worstSteps <= 5, `mean ${steps / solved} steps, worst ${worstSteps}`);
});

test("Let's Be Rational agrees with the guarded Newton where both are well-posed", () => {
  for (const m of [0.8, 0.95, 1, 1.05, 1.2]) {
    for (const T of [1 / 365, 0.1, 1]) {
      for (const sigma of [0.05, 0.15, 0.4, 1.5]) {
        for (const right of [CALL, PUT] as Right[]) {
          const price = bsmPrice(right, 580, 580 * m, T, 0.045, 0.012, sigma);
          const g = bsmGreeks(right, 580, 580 * m, T, 0.045, 0.012, sigma, newGreeks());
          // Well-posed: σ moves the price by more than a millionth of it.
          if (g.vega * 100 * sigma < 1e-6 * price) continue;
          const lbr = impliedVol(right, price, 580, 580 * m, T, 0.045, 0.012);
          const newton = impliedVolNewton(right, price, 580, 580 * m, T, 0.045, 0.012);
          assert.ok(Math.abs(lbr - newton) < 1e-9 * sigma, `K/S ${m} T ${T} σ ${sigma}: ${lbr} vs Newton ${newton}`);
        }
      }
    }
  }
});

test('no cap on IV: a 0DTE wing at 800 % comes back as 800 %', () => {
  const T = 1 / 8_760;
  const price = bsmPrice(CALL, 580, 600, T, 0.045, 0.012, 8);
  assert.ok(Math.abs(impliedVol(CALL, price, 580, 600, T, 0.045, 0.012) / 8 - 1) < 1e-12);
});

test('no volatility for a price below intrinsic or at or above the bound: NaN with a reason', () => {
  const T = 0.1;
  const intrinsic = 600 * Math.exp(-0.045 * T) - 580 * Math.exp(-0.012 * T);
  for (const [right, price, code] of [
    [PUT, intrinsic - 0.01, IV_BELOW_INTRINSIC],
    [CALL, -0.01, IV_BAD_INPUT],
    [CALL, 580, IV_ABOVE_BOUND],
    [PUT, 600, IV_ABOVE_BOUND],
  ] as const) {
    assert.equal(impliedVolCode(right, price, 580, 600, T, 0.045, 0.012), code, `${right} ${price}`);
    assert.ok(Number.isNaN(impliedVol(right, price, 580, 600, T, 0.045, 0.012)));
    assert.match(ivReason(code)!, right === PUT && code === IV_BELOW_INTRINSIC ? /below intrinsic/ : /./);
  }
  assert.equal(ivReason(0.2), undefined);
  // At exactly intrinsic value the volatility is 0.
  assert.equal(impliedVolCode(PUT, intrinsic, 580, 600, T, 0.045, 0.012), 0);
  assert.equal(impliedVolCode(CALL, 1, 580, 600, 0, 0.045, 0.012), IV_BAD_INPUT);
});

test('American IV (Bjerksund–Stensland 2002) round trips, and is below the European IV of the same price', () => {
  for (const [right, K] of [[PUT, 600], [PUT, 580], [CALL, 560], [CALL, 600]] as const) {
    for (const sigma of [0.08, 0.2, 0.6]) {
      const price = americanPrice(right, 580, K, 0.25, 0.06, 0.03, sigma);
      const iv = americanImpliedVolCode(right, price, 580, K, 0.25, 0.06, 0.03);
      assert.ok(Math.abs(iv / sigma - 1) < 1e-8, `${right} ${K} σ ${sigma}: ${iv}`);
      const european = impliedVolCode(right, price, 580, K, 0.25, 0.06, 0.03);
      assert.ok(european < 0 || european >= iv - 1e-12, `${right} ${K}: European IV ${european} below American ${iv}`);
    }
  }
  assert.equal(americanImpliedVolCode(PUT, 19, 580, 600, 0.1, 0.05, 0.01), IV_BELOW_INTRINSIC);
});
