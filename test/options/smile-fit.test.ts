/** The SSVI slice fit: exact data comes back exactly; penny-rounded quotes come back within their noise. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bsmGreeks, bsmPrice, newGreeks } from '../../src/options/bsm.js';
import { impliedVol } from '../../src/options/implied-vol.js';
import { newSlice, SmileFit, sliceVariance } from '../../src/options/smile-fit.js';
import { SPY_SSVI, phi as ssviPhi } from '../../src/sim/options/surface.js';

const S = 583.3;
const r = 0.045;
const q = 0.012;

/** A 0DTE-like slice (θ from 22 % over 9 hours) and a 1DTE one, with the simulator's SSVI skew. */
const CASES = [
  { T: 9 / 8760, atmVol: 0.22 },
  { T: 33 / 8760, atmVol: 0.17 },
];

for (const { T, atmVol } of CASES) {
  const theta = atmVol * atmVol * T;
  const phi = ssviPhi(theta, SPY_SSVI);
  const volAt = (K: number) => Math.sqrt(sliceVariance(Math.log(K / S) - (r - q) * T, theta, SPY_SSVI.rho, phi) / T);
  const strikes = Array.from({ length: 21 }, (_, i) => 573 + i);

  test(`exact quotes give the slice back (T ${(T * 8760).toFixed(0)} h)`, () => {
    const fit = new SmileFit(64);
    const g = newGreeks();
    for (const K of strikes) {
      const vol = volAt(K);
      bsmGreeks(1, S, K, T, r, q, vol, g);
      fit.add(Math.log(K / S) - (r - q) * T, vol, T, g.vega);
    }
    const slice = newSlice();
    assert.ok(fit.fit(slice));
    for (const K of strikes) {
      const k = Math.log(K / S) - (r - q) * T;
      const got = Math.sqrt(sliceVariance(k, slice.theta, slice.rho, slice.phi) / T);
      assert.ok(Math.abs(got - volAt(K)) < 2e-5, `K ${K}: ${got} against ${volAt(K)} (${JSON.stringify(slice)})`);
    }
    assert.ok(slice.rmsPrice < 1e-4, `rms price error ${slice.rmsPrice}`);
  });

  test(`penny-rounded quotes, calls and puts, give the surface within a fifth of a vol point (T ${(T * 8760).toFixed(0)} h)`, () => {
    const fit = new SmileFit(64);
    const g = newGreeks();
    for (const K of strikes) {
      const vol = volAt(K);
      for (const right of [1, -1] as const) {
        const theo = bsmPrice(right, S, K, T, r, q, vol);
        const half = Math.max(0.005, 0.003 + 0.0015 * theo);
        const bid = Math.floor((theo - half) * 100) / 100;
        const ask = Math.ceil((theo + half) * 100) / 100;
        const iv = impliedVol(right, (bid + ask) / 2, S, K, T, r, q);
        bsmGreeks(right, S, K, T, r, q, iv, g);
        fit.add(Math.log(K / S) - (r - q) * T, iv, T, g.vega);
      }
    }
    const slice = newSlice();
    assert.ok(fit.fit(slice));
    let worst = 0;
    for (const K of strikes) {
      const got = Math.sqrt(sliceVariance(Math.log(K / S) - (r - q) * T, slice.theta, slice.rho, slice.phi) / T);
      worst = Math.max(worst, Math.abs(got - volAt(K)));
    }
    assert.ok(worst < 0.002, `worst ${worst}`);
  });
}

test('too few quotes: no fit', () => {
  const fit = new SmileFit(4);
  fit.add(0, 0.2, 0.01, 0.1);
  fit.add(0.01, Number.NaN, 0.01, 0.1);
  fit.add(0.02, 0.2, 0.01, 0);
  assert.equal(fit.fit(newSlice()), false);
});
