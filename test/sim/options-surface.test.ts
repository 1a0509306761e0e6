/** The simulator's option surface and listing, as pure functions: no static arbitrage on the grid, a real calendar. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock } from '../../src/clock.js';
import { bsmPrice } from '../../src/options/bsm.js';
import { MS_PER_YEAR } from '../../src/options/expiry.js';
import { SPY_DIVIDEND_YIELD, SPY_RATE } from '../../src/sim/options/chain.js';
import { OptionListing, osiSymbol, strikesFor } from '../../src/sim/options/listing.js';
import {
  atmTotalVariance,
  BUSINESS_YEAR_MS,
  BusinessClock,
  OFF_SESSION_WEIGHT,
  SPY_SSVI,
  ssviArbitrage,
  surfaceVol,
  totalVariance,
  type AtmVariance,
} from '../../src/sim/options/surface.js';
import { TwsSimulator } from '../../src/sim/server.js';

/** Monday 2026-01-05 09:30 New York. */
const MONDAY_OPEN = Date.UTC(2026, 0, 5, 14, 30);
const HOUR = 3_600_000;
const STATES: AtmVariance[] = [0.04, 0.08, 0.13, 0.3, 0.8, 1.5].map((vol) => ({ vol, longRunVol: 0.13, kappa: 5 }));

test('the SPY parameters meet the Gatheral–Jacquier conditions; parameters that do not are named', () => {
  assert.equal(ssviArbitrage(SPY_SSVI), undefined);
  assert.match(ssviArbitrage({ rho: -0.9, eta: 1.2, gamma: 0.5 })!, /eta/);
  assert.match(ssviArbitrage({ rho: -0.7, eta: 1, gamma: 0.7 })!, /gamma/);
  assert.ok(SPY_SSVI.rho < 0, 'a put skew');
});

test('business time: a session hour counts fully, a night or weekend hour at the off-session weight, a weekday is 1/252 of a year', () => {
  const clock = new BusinessClock();
  assert.ok(Math.abs(clock.years(MONDAY_OPEN, MONDAY_OPEN + HOUR) * BUSINESS_YEAR_MS - HOUR) < 1);
  const saturday = Date.UTC(2026, 0, 10, 15);
  assert.ok(Math.abs(clock.years(saturday, saturday + HOUR) * BUSINESS_YEAR_MS - OFF_SESSION_WEIGHT * HOUR) < 1);
  const mondayMidnight = Date.UTC(2026, 0, 5, 5);
  assert.ok(Math.abs(clock.years(mondayMidnight, mondayMidnight + 24 * HOUR) - 1 / 252) < 1e-12);
  // MLK day 2026-01-19 is a holiday: no session.
  const holiday = Date.UTC(2026, 0, 19, 15);
  assert.ok(Math.abs(clock.years(holiday, holiday + HOUR) * BUSINESS_YEAR_MS - OFF_SESSION_WEIGHT * HOUR) < 1);
  assert.equal(clock.years(MONDAY_OPEN + HOUR, MONDAY_OPEN), -clock.years(MONDAY_OPEN, MONDAY_OPEN + HOUR));
});

test('no calendar arbitrage: total variance at every moneyness increases with the expiry', () => {
  const listing = new OptionListing('SPY', 580, MONDAY_OPEN);
  const clock = new BusinessClock();
  for (const now of [MONDAY_OPEN, MONDAY_OPEN + 6 * HOUR, Date.UTC(2026, 0, 9, 20, 55), Date.UTC(2026, 0, 10, 12)]) {
    const taus = listing.expiries.map((e) => clock.years(now, e.expiryMs)).filter((tau) => tau > 0);
    for (let i = 1; i < taus.length; i++) assert.ok(taus[i]! > taus[i - 1]!);
    for (const state of STATES) {
      const thetas = taus.map((tau) => atmTotalVariance(tau, state));
      for (let k = -1; k <= 1.0001; k += 0.005) {
        let previous = 0;
        for (const theta of thetas) {
          const w = totalVariance(k, theta, SPY_SSVI);
          assert.ok(w >= previous * (1 - 1e-12), `k ${k.toFixed(3)}, vol ${state.vol}: w ${w} below ${previous}`);
          previous = w;
        }
      }
    }
  }
});

test('no butterfly arbitrage: call prices on every listed expiry fall and are convex in strike', () => {
  const listing = new OptionListing('SPY', 580, MONDAY_OPEN);
  const clock = new BusinessClock();
  for (const now of [MONDAY_OPEN, MONDAY_OPEN + 6.4 * HOUR]) {
    for (const expiry of listing.expiries) {
      const T = (expiry.expiryMs - now) / MS_PER_YEAR;
      const tau = clock.years(now, expiry.expiryMs);
      for (const state of STATES) {
        for (const S of [560, 580, 601.37]) {
          const call = (K: number) => bsmPrice(1, S, K, T, SPY_RATE, SPY_DIVIDEND_YIELD, surfaceVol(SPY_SSVI, state, S, K, T, tau, SPY_RATE, SPY_DIVIDEND_YIELD));
          // $0.50 steps from far below to far above the money: finer than any listed strike grid.
          let [a, b] = [call(250), call(250.5)];
          for (let K = 251; K <= 850; K += 0.5) {
            const c = call(K);
            const where = `${expiry.date} at ${((now - MONDAY_OPEN) / HOUR).toFixed(1)} h, S ${S}, vol ${state.vol}, K ${K}`;
            assert.ok(c <= b + 1e-9, `calls rise in strike: ${where}`);
            assert.ok(a - 2 * b + c >= -1e-9, `calls not convex: ${where} (${a}, ${b}, ${c})`);
            [a, b] = [b, c];
          }
        }
      }
    }
  }
});

test('the smile: a put skew that steepens towards expiry, and an at-the-money vol that mean-reverts along the term structure', () => {
  const state: AtmVariance = { vol: 0.3, longRunVol: 0.13, kappa: 5 };
  const vol = (K: number, T: number) => surfaceVol(SPY_SSVI, state, 580, K, T, T, 0, 0);
  for (const T of [1 / 365 / 6, 1 / 365, 7 / 365, 60 / 365]) assert.ok(vol(570, T) > vol(590, T), `skew at T ${T}`);
  const skew = (T: number) => (vol(575, T) - vol(585, T)) / vol(580, T);
  assert.ok(skew(1 / 365) > skew(30 / 365) && skew(30 / 365) > skew(180 / 365));
  // High vol now, lower later: the at-the-money term structure falls towards the long-run level.
  const atm = (T: number) => Math.sqrt(atmTotalVariance(T, state) / T);
  assert.ok(atm(1 / 365) > atm(30 / 365) && atm(30 / 365) > atm(1) && atm(1) > 0.13);
});

test('the listing: 0–3 DTE, weeklies and monthlies, holidays skipped, $1 strikes near the money and $5 further out', () => {
  const monday = new OptionListing('SPY', 580, MONDAY_OPEN);
  assert.deepEqual(monday.allExpiries, ['20260105', '20260106', '20260107', '20260108', '20260109', '20260116', '20260123', '20260130', '20260206', '20260220', '20260320']);
  assert.deepEqual(monday.expiries.map((e) => e.kind).slice(0, 6), ['daily', 'daily', 'daily', 'daily', 'weekly', 'monthly']);
  const nearTerm = monday.expiries.slice(0, 4).reduce((n, e) => n + e.contracts.length, 0);
  assert.ok(nearTerm >= 800 && nearTerm <= 2_400, `${nearTerm} contracts 0–3 DTE`);
  // After the 16:00 expiry moment today's options are gone.
  assert.equal(new OptionListing('SPY', 580, Date.UTC(2026, 0, 5, 21, 1)).allExpiries[0], '20260106');
  // Friday 2026-01-16 then Monday 2026-01-19 (MLK day) is skipped.
  assert.deepEqual(new OptionListing('SPY', 580, Date.UTC(2026, 0, 16, 15)).allExpiries.slice(0, 4), ['20260116', '20260120', '20260121', '20260122']);
  // Good Friday 2026-04-03: that week's expiry is Thursday.
  assert.ok(new OptionListing('SPY', 580, Date.UTC(2026, 2, 23, 15)).allExpiries.includes('20260402'));
  assert.ok(!new OptionListing('SPY', 580, Date.UTC(2026, 2, 23, 15)).allExpiries.includes('20260403'));
  // A weekend: Monday is 0DTE's next day.
  assert.equal(new OptionListing('SPY', 580, Date.UTC(2026, 0, 10, 15)).allExpiries[0], '20260112');

  const strikes = strikesFor(580, 0, 'daily');
  for (let k = 540; k <= 610; k++) assert.ok(strikes.includes(k), `$1 strike ${k}`);
  const far = strikes.filter((k) => k < 500);
  assert.ok(far.length > 3 && far.every((k) => k % 5 === 0), 'only $5 strikes far out');
  assert.ok(strikesFor(580, 70, 'monthly').length > strikes.length);

  const conIds = new Set(monday.contracts.map((c) => c.conId));
  assert.equal(conIds.size, monday.contracts.length);
  assert.ok([...conIds].every((id) => id > 0 && id < 2 ** 31));
  assert.equal(osiSymbol('SPY', '20261204', 'C', 580), 'SPY   261204C00580000');
  assert.equal(osiSymbol('SPY', '20260105', 'P', 582.5), 'SPY   260105P00582500');
  assert.deepEqual(monday.select('202601', 580, 'C').map((c) => c.expiry), monday.allExpiries.filter((d) => d.startsWith('202601')));
});

test('the at-the-money volatility moves against SPY and stays deterministic under the seed', async () => {
  const path = async (seed: number) => {
    const clock = new ManualClock(0, MONDAY_OPEN);
    const sim = new TwsSimulator({ clock, seed, updatesPerSecond: 1_000 });
    sim.options.start();
    const out: [number, number][] = [];
    for (let t = 100; t <= 120_000; t += 100) {
      await clock.advance(100);
      sim.marketData.market.advanceTo(t);
      sim.options.advanceTo(t);
      out.push([sim.options.state.spot, sim.options.state.atmVol]);
    }
    await sim.close();
    return out;
  };
  const run = await path(3);
  assert.deepEqual(await path(3), run);
  const returns = run.slice(1).map(([s], i) => Math.log(s / run[i]![0]));
  const moves = run.slice(1).map(([, v], i) => v - run[i]![1]);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const [mr, mv] = [mean(returns), mean(moves)];
  const cov = mean(returns.map((r, i) => (r - mr) * (moves[i]! - mv)));
  const corr = cov / Math.sqrt(mean(returns.map((r) => (r - mr) ** 2)) * mean(moves.map((v) => (v - mv) ** 2)));
  assert.ok(corr < -0.2, `spot-vol correlation ${corr}`);
});
