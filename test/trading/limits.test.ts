/**
 * The pre-trade limits in the gate's order path: each refuses with a reason
 * that names the limit, the value and the limit; reducing orders pass the
 * position and exposure limits but not the collar; the order rate is a
 * rolling second; a daily loss beyond the limit halts until an operator
 * resumes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock } from '../../src/clock.js';
import { riskGateSettings } from '../../src/actors/risk-gate.js';
import { riskLimits, type RiskLimits } from '../../src/trading/limits.js';
import { RiskGate, type Decision, type OrderIntent } from '../../src/trading/risk-gate.js';
import { watchedGate } from '../support/gate.js';

const LIMITS = riskLimits.parse({ maxPosition: 1000, maxOrderNotional: 100_000, maxGrossExposure: 300_000, maxOrdersPerSecond: 3, maxDailyLoss: 10_000, collarBps: 50 });

function setup(limits: RiskLimits = LIMITS, autoResume = false) {
  return watchedGate(limits, { autoResume, healthyPeriodMs: 1000 });
}

/** A buy of 100 SPY at the mid of 100, flat, nothing working, nothing held. */
const order = (o: Partial<OrderIntent> = {}): OrderIntent => ({ symbol: 'SPY', quantity: 100, position: 0, price: 100, mid: 100, working: 0, grossExposure: 0, ...o });
const reason = (d: Decision) => (d.ok ? 'ok' : d.reason);

test('defaults: every limit has one, and the risk_gate settings carry them', () => {
  const limits = riskGateSettings.parse({}).limits;
  assert.deepEqual(limits, riskLimits.parse({}));
  const { options, ...stock } = limits;
  for (const value of Object.values(stock)) assert.ok(value > 0);
  for (const value of Object.values(options)) assert.ok(value === false || (typeof value === 'number' && value > 0), 'option limits on, short options off');
  assert.throws(() => riskGateSettings.parse({ limits: { maxPositon: 5 } }), /maxPositon/);
});

test('quantity and price must be real', () => {
  const { gate } = setup();
  assert.equal(reason(gate.check(order({ quantity: 0 }))), 'SPY: quantity 0 is not a non-zero whole number');
  assert.equal(reason(gate.check(order({ quantity: 10.5 }))), 'SPY: quantity 10.5 is not a non-zero whole number');
  assert.equal(reason(gate.check(order({ price: NaN }))), 'SPY: price NaN is not a finite positive number');
  assert.equal(reason(gate.check(order({ price: -1 }))), 'SPY: price -1 is not a finite positive number');
  assert.equal(reason(gate.check(order({ working: NaN }))), 'SPY: working quantity NaN is not a number');
  assert.equal(reason(gate.check(order())), 'ok');
});

test('price collar: too far from the mid, or no mid at all, is refused', () => {
  const { gate } = setup();
  assert.equal(reason(gate.check(order({ price: 100.5 }))), 'ok', 'exactly 50 bps');
  assert.equal(reason(gate.check(order({ price: 100.6 }))), 'price collar: 60.00 bps > 50 (SPY 100.60 vs mid 100.00)');
  assert.equal(reason(gate.check(order({ quantity: -100, price: 99 }))), 'price collar: 100.00 bps > 50 (SPY 99.00 vs mid 100.00)');
  assert.equal(reason(gate.check(order({ mid: NaN }))), 'price collar: no mid for SPY (NaN): never trade without one');
  assert.equal(reason(gate.check(order({ mid: 0 }))), 'price collar: no mid for SPY (0): never trade without one');
});

test('max order notional', () => {
  const { gate } = setup();
  assert.equal(reason(gate.check(order({ quantity: 1000 }))), 'ok', 'exactly 100,000');
  assert.equal(reason(gate.check(order({ quantity: 1200 }))), 'max order notional: 120,000.00 > 100,000 (SPY buy 1,200 at 100.00)');
  // A fat finger is one whatever it does: a closing order meets it too.
  assert.equal(reason(gate.check(order({ quantity: -1200, position: 1200 }))), 'max order notional: 120,000.00 > 100,000 (SPY sell 1,200 at 100.00)');
});

test('max position counts working orders; an order that shrinks the position passes it', () => {
  const { gate } = setup(riskLimits.parse({ ...LIMITS, maxOrderNotional: 1e9, maxGrossExposure: 1e9, maxOrdersPerSecond: 100 }));
  assert.equal(reason(gate.check(order({ quantity: 500, position: 500 }))), 'ok', 'exactly 1,000');
  assert.equal(reason(gate.check(order({ quantity: 500, position: 500, working: 100 }))), 'max position: 1,100 > 1,000 shares (SPY position 500, working 100, buy 500)');
  assert.equal(reason(gate.check(order({ quantity: -1100, position: 0 }))), 'max position: 1,100 > 1,000 shares (SPY position 0, working 0, sell 1,100)');
  assert.equal(reason(gate.check(order({ quantity: -2500, position: 1200 }))), 'max position: 1,300 > 1,000 shares (SPY position 1,200, working 0, sell 2,500)', 'a flip past the limit');
  // Over the limit already (it was lowered): shrinking is always allowed.
  assert.equal(reason(gate.check(order({ quantity: -100, position: 1500 }))), 'ok');
  assert.equal(reason(gate.check(order({ quantity: 100, position: -1500, working: 200 }))), 'ok');
  // Working orders count as filled: with a sell of 1,400 working, selling 1,200 more flips 1,500 to -1,100.
  assert.equal(reason(gate.check(order({ quantity: -1200, position: 1500, working: -1400 }))), 'max position: 1,100 > 1,000 shares (SPY position 1,500, working -1,400, sell 1,200)');
});

test('max gross exposure is judged after the order, with the instrument’s share replaced', () => {
  const { gate } = setup(riskLimits.parse({ ...LIMITS, maxOrdersPerSecond: 100 }));
  // Held elsewhere: 250,000; buying 600 SPY at 100 would make 310,000.
  assert.equal(reason(gate.check(order({ quantity: 500, grossExposure: 250_000 }))), 'ok', 'exactly 300,000');
  assert.equal(reason(gate.check(order({ quantity: 600, grossExposure: 250_000 }))), 'max gross exposure: 310,000.00 > 300,000 (after SPY buy 600 at mid 100.00)');
  // Working orders of the instrument count as filled.
  assert.equal(reason(gate.check(order({ quantity: 400, working: 200, grossExposure: 250_000 }))), 'max gross exposure: 310,000.00 > 300,000 (after SPY buy 400 at mid 100.00)');
  // A flip from +500 to -500 adds nothing: 300,000 before, 300,000 after.
  assert.equal(reason(gate.check(order({ quantity: -1000, position: 500, grossExposure: 300_000 }))), 'ok');
  // Already over the limit: a reducing order passes, an increasing one does not.
  assert.equal(reason(gate.check(order({ quantity: -100, position: 500, grossExposure: 400_000 }))), 'ok');
  assert.equal(reason(gate.check(order({ quantity: 100, position: 500, grossExposure: 400_000 }))), 'max gross exposure: 410,000.00 > 300,000 (after SPY buy 100 at mid 100.00)');
  assert.equal(reason(gate.check(order({ grossExposure: NaN }))), "max gross exposure: the portfolio's gross exposure is unknown (NaN)");
  assert.equal(reason(gate.check(order({ quantity: -100, position: 500, grossExposure: NaN }))), 'ok', 'a reducing order needs no exposure figure');
});

test('a reducing order is not refused by position or exposure, but is by the collar and the rate', async () => {
  const { clock, gate } = setup();
  gate.reduceOnly('end of day');
  const reducing = order({ quantity: -100, position: 5000, grossExposure: 10_000_000 });
  assert.equal(reason(gate.check(reducing)), 'ok');
  assert.equal(reason(gate.check({ ...reducing, price: 98 })), 'price collar: 200.00 bps > 50 (SPY 98.00 vs mid 100.00)');
  assert.equal(reason(gate.check({ ...reducing, mid: NaN })), 'price collar: no mid for SPY (NaN): never trade without one');
  assert.equal(reason(gate.check(reducing)), 'ok');
  assert.equal(reason(gate.check(reducing)), 'ok');
  assert.equal(reason(gate.check(reducing)), 'max orders per second: 4 > 3');
  await clock.advance(1000);
  assert.equal(reason(gate.check(reducing)), 'ok');
  // Reduce-only counts working orders as filled: two sells of 3,000 would flip 5,000.
  assert.match(reason(gate.check({ ...reducing, quantity: -3000, working: -3000 })), /^reduce-only \(end of day\): SPY order of -3000 would not shrink the position of 5000 and working -3000$/);
});

test('the order rate: the (N+1)th accepted order within a second is refused, never queued; refusals do not count', async () => {
  const { clock, gate } = setup();
  assert.equal(reason(gate.check(order())), 'ok');
  await clock.advance(300);
  assert.equal(reason(gate.check(order())), 'ok');
  assert.equal(reason(gate.check(order({ price: 200 }))), 'price collar: 10,000.00 bps > 50 (SPY 200.00 vs mid 100.00)', 'refused by another limit: takes no place');
  await clock.advance(300);
  assert.equal(reason(gate.check(order())), 'ok');
  assert.equal(gate.limits!.acceptedInWindow(clock.now()), 3);
  assert.equal(reason(gate.check(order())), 'max orders per second: 4 > 3');
  await clock.advance(399); // t = 999: the first is 999 ms old
  assert.equal(reason(gate.check(order())), 'max orders per second: 4 > 3');
  await clock.advance(1); // t = 1000: the first has left the window
  assert.equal(reason(gate.check(order())), 'ok');
  assert.equal(reason(gate.check(order())), 'max orders per second: 4 > 3');
  await clock.advance(300); // t = 1300: the one at 300 has left
  assert.equal(reason(gate.check(order())), 'ok');
  // A halted gate's refusals take no place either.
  await clock.advance(1000);
  gate.halt('pause');
  for (let k = 0; k < 5; k++) assert.match(reason(gate.check(order())), /^trading halted: pause$/);
  gate.resume('go');
  for (let k = 0; k < 3; k++) assert.equal(reason(gate.check(order())), 'ok');
});

test('daily loss beyond the limit halts in the same call, cancels first, and never resumes by itself', async () => {
  const { clock, gate, happened, transitions } = setup(LIMITS, true);
  gate.reportDailyPnl(-2_000);
  gate.reportDailyPnl(-10_000);
  assert.equal(gate.state, 'ACTIVE', 'a loss of exactly the limit is within it');
  gate.reportDailyPnl(-10_500);
  assert.equal(gate.state, 'HALTED');
  assert.deepEqual(happened, ['cancel all while HALTED', 'ACTIVE -> HALTED']);
  assert.equal(transitions[0]!.by, 'daily loss');
  assert.equal(transitions[0]!.reason, 'max daily loss: 10,500.00 > 10,000');
  assert.equal(reason(gate.check(order())), 'trading halted: max daily loss: 10,500.00 > 10,000');
  // Still beyond: an operator's resume is refused, and reporting more of the same changes nothing.
  gate.reportDailyPnl(-11_000);
  assert.equal(transitions.length, 1);
  assert.equal(reason(gate.resume('operator')), '1 condition still present: daily loss: max daily loss: 10,500.00 > 10,000');
  // Back within the limit: auto-resume is configured, but this halt waits for an operator.
  gate.reportDailyPnl(-9_000);
  await clock.advance(60_000);
  gate.tick(clock.now());
  assert.equal(gate.state, 'HALTED', 'no auto-resume after a daily loss halt');
  assert.equal(reason(gate.resume('operator accepts the day')), 'ok');
  assert.equal(gate.state, 'ACTIVE');
  // Beyond again: halts again.
  gate.reportDailyPnl(-12_000);
  assert.equal(gate.state, 'HALTED');
  assert.equal(gate.reason, 'max daily loss: 12,000.00 > 10,000');
  assert.equal(happened.filter((h) => h.startsWith('cancel all')).length, 2);
});

test('a daily loss while already halted by data still latches: the data coming back does not resume', async () => {
  const { clock, gate } = setup(LIMITS, true);
  gate.report('feature_health', new Map([['stale SPY', 'SPY market data is old']]));
  gate.reportDailyPnl(-20_000);
  gate.report('feature_health', new Map());
  gate.reportDailyPnl(0);
  await clock.advance(60_000);
  gate.tick(clock.now());
  assert.equal(gate.state, 'HALTED');
});

test('a daily P&L that is not a number halts until a real figure comes back', async () => {
  const { clock, gate, happened, transitions } = setup(LIMITS, true);
  gate.reportDailyPnl(NaN);
  assert.equal(gate.state, 'HALTED');
  assert.deepEqual(happened, ['cancel all while HALTED', 'ACTIVE -> HALTED']);
  assert.equal(transitions[0]!.by, 'daily loss');
  assert.equal(transitions[0]!.reason, 'daily P&L is NaN: the daily loss limit cannot be judged');
  assert.equal(reason(gate.resume('operator')), '1 condition still present: daily loss: daily P&L is NaN: the daily loss limit cannot be judged');
  gate.reportDailyPnl(-500);
  await clock.advance(1000);
  gate.tick(clock.now());
  assert.equal(gate.state, 'ACTIVE', 'an ordinary condition: the healthy period ends it');
  // A NaN after a breach keeps the breach: the last real figure decides.
  gate.reportDailyPnl(-15_000);
  gate.reportDailyPnl(NaN);
  gate.reportDailyPnl(Infinity);
  assert.deepEqual(gate.activeConditions(), ['daily loss: max daily loss: 15,000.00 > 10,000', 'daily loss: daily P&L is NaN: the daily loss limit cannot be judged']);
});

test('a gate without limits judges its state only', () => {
  const gate = new RiskGate(new ManualClock(), { autoResume: false, healthyPeriodMs: 1000 });
  // No mid and no exposure figure: any limit would refuse it.
  assert.equal(reason(gate.check(order({ price: 200, mid: NaN, grossExposure: NaN }))), 'ok');
  assert.equal(gate.limits, undefined);
});
