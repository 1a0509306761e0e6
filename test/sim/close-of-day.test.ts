/** The simulated broker's close of day for options: exercise by exception at expiry, early assignment before an ex-dividend date, the next close. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { OptionContract } from '../../src/journal/records.js';
import { closeOfDay, nextClose, previousBusinessDay, type HeldOption } from '../../src/sim/options/close-of-day.js';

const AT = Date.UTC(2026, 2, 18, 20, 0);

function held(contracts: number, right: 'C' | 'P', strike: number, expiry: string): HeldOption {
  const option: OptionContract = { conId: 1, underlying: 'SPY', expiry, strike, right, multiplier: 100 };
  return { symbol: `SPY ${expiry}${right}${strike}`, contracts, option };
}

const atClose = (h: HeldOption, close: number, dividends = [] as { exDate: string; amount: number }[], date = h.option.expiry) =>
  closeOfDay({ date, held: [h], close, dividends, at: AT }).map((c) => [c.outcome, c.contracts, c.shares]);

test('expiry: a long call or put a cent in the money is exercised, a cent out of it (or at the money) expires', () => {
  assert.deepEqual(atClose(held(1, 'C', 580, '20260318'), 580.01), [['exercised', 1, 100]]);
  assert.deepEqual(atClose(held(1, 'C', 580, '20260318'), 580), [['expired', 1, 0]]);
  assert.deepEqual(atClose(held(1, 'C', 580, '20260318'), 579.99), [['expired', 1, 0]]);
  assert.deepEqual(atClose(held(2, 'P', 580, '20260318'), 579.99), [['exercised', 2, -200]]);
  assert.deepEqual(atClose(held(2, 'P', 580, '20260318'), 580.01), [['expired', 2, 0]]);
});

test('expiry: a short put in the money is assigned (its writer buys the shares at the strike); options of other expiries wait', () => {
  assert.deepEqual(atClose(held(-2, 'P', 580, '20260318'), 570), [['assigned', -2, 200]]);
  assert.deepEqual(atClose(held(-1, 'C', 570, '20260318'), 580), [['assigned', -1, -100]]);
  assert.deepEqual(atClose(held(-2, 'P', 580, '20260320'), 570, [], '20260318'), []);
});

test('the close before an ex-dividend date: a short call in the money by more than the dividend is assigned early, nothing else', () => {
  const dividend = [{ exDate: '20260319', amount: 1.8 }];
  const [change] = closeOfDay({ date: '20260318', held: [held(-3, 'C', 570, '20260320')], close: 580, dividends: dividend, at: AT });
  assert.deepEqual([change!.outcome, change!.contracts, change!.shares], ['assigned early', -3, -300]);
  assert.match(change!.reason, /10\.00 in the money at 580, more than the 1\.8 dividend going ex on 20260319: assigned, 300 SPY sold at 570/);
  // In the money by less than the dividend, a long call, a short put: not assigned.
  assert.deepEqual(atClose(held(-1, 'C', 579, '20260320'), 580, dividend, '20260318'), []);
  assert.deepEqual(atClose(held(1, 'C', 570, '20260320'), 580, dividend, '20260318'), []);
  assert.deepEqual(atClose(held(-1, 'P', 590, '20260320'), 580, dividend, '20260318'), []);
  // Not the day before the ex-date.
  assert.deepEqual(atClose(held(-1, 'C', 570, '20260320'), 580, dividend, '20260317'), []);
  // An option expiring that day settles as an expiry, once.
  assert.deepEqual(atClose(held(-1, 'C', 570, '20260318'), 580, dividend), [['assigned', -1, -100]]);
});

test('the day before an ex-date skips weekends and holidays', () => {
  assert.equal(previousBusinessDay('20260319'), '20260318');
  assert.equal(previousBusinessDay('20260323'), '20260320');
  // Good Friday 2026-04-03: a Monday ex-date's day before is the Thursday.
  assert.equal(previousBusinessDay('20260406'), '20260402');
  const [change] = closeOfDay({ date: '20260320', held: [held(-1, 'C', 570, '20260327')], close: 580, dividends: [{ exDate: '20260323', amount: 1 }], at: AT });
  assert.equal(change!.outcome, 'assigned early');
});

test('the next close: 16:00 New York, 13:00 on early-close days, skipping weekends and holidays', () => {
  // Monday 2026-01-05 11:00 New York: that day's 16:00 (21:00 UTC).
  assert.deepEqual(nextClose(Date.UTC(2026, 0, 5, 16, 0)), { date: '20260105', at: Date.UTC(2026, 0, 5, 21, 0) });
  // At Friday's close exactly: Monday's.
  assert.deepEqual(nextClose(Date.UTC(2026, 0, 9, 21, 0)), { date: '20260112', at: Date.UTC(2026, 0, 12, 21, 0) });
  // The day after Thanksgiving closes at 13:00 (18:00 UTC); Thanksgiving itself is skipped.
  assert.deepEqual(nextClose(Date.UTC(2026, 10, 26, 15, 0)), { date: '20261127', at: Date.UTC(2026, 10, 27, 18, 0) });
});

test('expiry: long contracts under a lapse instruction expire in the money; the rest of the position is exercised, a short one assigned', () => {
  const long = held(3, 'C', 570, '20260318');
  const lapse = (contracts: number) => new Map([[long.symbol, contracts]]);
  const settle = (h: HeldOption, doNotExercise: ReadonlyMap<string, number>) =>
    closeOfDay({ date: '20260318', held: [h], close: 580, dividends: [], at: AT, doNotExercise }).map((c) => [c.outcome, c.contracts, c.shares]);
  assert.deepEqual(settle(long, lapse(3)), [['expired', 3, 0]]);
  assert.deepEqual(settle(long, lapse(1)), [['exercised', 2, 200], ['expired', 1, 0]]);
  // More than is held (the position shrank since): the whole position lapses, no more.
  assert.deepEqual(settle(long, lapse(5)), [['expired', 3, 0]]);
  // A writer cannot refuse assignment.
  assert.deepEqual(settle({ ...long, contracts: -3 }, lapse(3)), [['assigned', -3, -300]]);
  const [expired] = closeOfDay({ date: '20260318', held: [long], close: 580, dividends: [], at: AT, doNotExercise: lapse(3) });
  assert.match(expired!.reason, /10\.00 in the money at 580, not exercised by instruction: expired/);
});
