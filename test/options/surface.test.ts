/** The surface between and beyond the fitted slices, on its own. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { newSlice } from '../../src/options/smile-fit.js';
import { FittedSlices, surfaceSlice } from '../../src/options/surface.js';

const slice = (theta: number, rho: number, phi: number) => ({ ...newSlice(), theta, rho, phi, points: 10 });

test('between fits θ, ρ and φ√θ are linear in T; beyond them the nearest ATM vol, ρ and φ√θ hold', () => {
  const fitted = new FittedSlices(4);
  // 1 day at 20 % ATM, 3 days at 18 %.
  const t1 = 1 / 365;
  const t3 = 3 / 365;
  fitted.add(t1, slice(0.2 ** 2 * t1, -0.6, 40));
  fitted.add(t3, slice(0.18 ** 2 * t3, -0.4, 25));
  const out = { theta: 0, rho: 0, phi: 0 };
  assert.equal(surfaceSlice(fitted, 2 / 365, out), true);
  assert.ok(Math.abs(out.theta - (0.2 ** 2 * t1 + 0.18 ** 2 * t3) / 2) < 1e-15);
  assert.ok(Math.abs(out.rho + 0.5) < 1e-12);
  const eta = (40 * Math.sqrt(0.2 ** 2 * t1) + 25 * Math.sqrt(0.18 ** 2 * t3)) / 2;
  assert.ok(Math.abs(out.phi * Math.sqrt(out.theta) - eta) < 1e-12);

  surfaceSlice(fitted, 30 / 365, out);
  assert.ok(Math.abs(Math.sqrt(out.theta / (30 / 365)) - 0.18) < 1e-12, 'the last ATM vol holds');
  assert.equal(out.rho, -0.4);
  assert.ok(Math.abs(out.phi * Math.sqrt(out.theta) - 25 * Math.sqrt(0.18 ** 2 * t3)) < 1e-12);
  surfaceSlice(fitted, 0.5 / 365, out);
  assert.ok(Math.abs(Math.sqrt(out.theta / (0.5 / 365)) - 0.2) < 1e-12, 'the first ATM vol holds before it');
});

test('no fit, a fit without points or one not later than the last: nothing to extend from', () => {
  const fitted = new FittedSlices(3);
  const out = { theta: 0, rho: 0, phi: 0 };
  assert.equal(surfaceSlice(fitted, 0.01, out), false);
  assert.ok(Number.isNaN(out.theta));
  fitted.add(0.01, { ...newSlice(), theta: 0.001, rho: -0.5, phi: 10, points: 0 });
  assert.equal(fitted.count, 0);
  fitted.add(0.01, slice(0.001, -0.5, 10));
  fitted.add(0.005, slice(0.0005, -0.5, 10));
  assert.equal(fitted.count, 1, 'out of order: left out');
  assert.equal(surfaceSlice(fitted, 0, out), false);
});
