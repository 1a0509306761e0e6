/**
 * The greek risk limits in the gate's order path: each refuses the order
 * that would cross it, naming the limit, the value and the limit; an order
 * that brings a greek back towards zero passes even beyond a limit;
 * REDUCING lets through only orders that reduce every greek.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { riskLimits } from '../../src/trading/limits.js';
import type { OptionRisk } from '../../src/trading/option-limits.js';
import type { Decision, OrderIntent } from '../../src/trading/risk-gate.js';
import { optionIntent, watchedGate } from '../support/gate.js';

const LIMITS = riskLimits.parse({
  maxOrdersPerSecond: 1000,
  options: { maxContractsPerOrder: 10, maxContractsPerExpiry: 20, maxPremiumAtRisk: 5_000, maxDelta: 500, maxGamma: 200, maxVega: 300, maxTheta: 400 },
});
const CALL = optionIntent().symbol;

/** The support's ATM 0DTE SPY call (Δ 0.5, Γ 0.08 per $1, vega 0.05 per point, θ −0.60 a day, per share), varied. */
const buy = (quantity: number, o: Partial<OptionRisk> = {}, intent: Partial<OrderIntent> = {}): OrderIntent => {
  const base = optionIntent();
  return { ...base, quantity, mid: 1.24, option: { ...base.option!, ...o }, ...intent };
};
const reason = (d: Decision) => (d.ok ? 'ok' : d.reason);

test('within every limit an option order passes; its notional counts 100 shares a contract', () => {
  const { gate } = watchedGate(LIMITS);
  assert.equal(reason(gate.check(buy(4))), 'ok');
  const tight = watchedGate(riskLimits.parse({ maxOrderNotional: 400, maxOrdersPerSecond: 1000 })).gate;
  assert.equal(reason(tight.check(buy(4))), `max order notional: 500.00 > 400 (${CALL} buy 4 at 1.25)`);
});

test('each option limit refuses the order that would cross it, naming it', () => {
  const { gate } = watchedGate(LIMITS);
  assert.equal(reason(gate.check(buy(11))), `max contracts per order: 11 > 10 (${CALL} buy 11)`);
  assert.equal(reason(gate.check(buy(5, { contractsInExpiry: 16 }))), `max contracts per expiry: 21 > 20 (20260105, ${CALL} buy 5)`);
  assert.equal(reason(gate.check(buy(5, { premiumAtRisk: 4_500 }))), `max premium at risk: 5,125.00 > 5,000 (${CALL} buy 5 at 1.25)`);
  assert.equal(reason(gate.check(buy(2, { portfolio: { delta: 450, gamma: 0, vega: 0, theta: 0 } }))), `max delta: 550.00 > 500 shares (SPY delta 450.00 before ${CALL} buy 2)`);
  assert.equal(reason(gate.check(buy(1, { portfolio: { delta: 0, gamma: 195, vega: 0, theta: 0 } }))), `max gamma: 203.00 > 200 shares per $1 (SPY gamma 195.00 before ${CALL} buy 1)`);
  assert.equal(reason(gate.check(buy(1, { portfolio: { delta: 0, gamma: 0, vega: 298, theta: 0 } }))), `max vega: 303.00 > 300 $ per vol point (SPY vega 298.00 before ${CALL} buy 1)`);
  assert.equal(reason(gate.check(buy(1, { portfolio: { delta: 0, gamma: 0, vega: 0, theta: -350 } }))), `max theta: 410.00 > 400 $ per day (SPY theta -350.00 before ${CALL} buy 1)`);
  assert.equal(reason(gate.check(buy(1, {}, { price: 1.35 }))), `price collar: 0.11 > 0.05 from the option's mid (${CALL} 1.35 vs mid 1.24)`);
  const noGreeks = buy(1, { greeks: { delta: NaN, gamma: 0.08, vega: 0.05, theta: -0.6 } });
  assert.match(reason(gate.check(noGreeks)), /^option greeks: .*never trade an option that cannot be judged$/);
  assert.match(reason(gate.check({ ...buy(1), option: undefined })), /an option order without its greeks and the portfolio's cannot be judged/);
});

test('an order that brings a greek back towards zero passes beyond its limit', () => {
  const { gate } = watchedGate(LIMITS);
  // Long 700 deltas already (over the limit): selling 4 calls takes off 200.
  assert.equal(reason(gate.check(buy(-4, { portfolio: { delta: 700, gamma: 32, vega: 20, theta: -240 } }, { position: 14 }))), 'ok');
});

test('no short options unless covered or allowed: a call against 100 shares a contract is covered, a put never', () => {
  const { gate } = watchedGate(LIMITS);
  assert.equal(reason(gate.check(buy(-2))), `no short options: ${CALL} sell 2 leaves 2 calls short, 200 shares to cover, 0 held (allowShortOptions is false)`);
  assert.equal(reason(gate.check(buy(-2, { sharesHeld: 200, portfolio: { delta: 200, gamma: 0, vega: 0, theta: 0 } }))), 'ok');
  assert.equal(reason(gate.check(buy(-1, { right: 'P', greeks: { delta: -0.5, gamma: 0.08, vega: 0.05, theta: -0.6 } }))), `no short options: ${CALL} sell 1 leaves 1 puts short (allowShortOptions is false)`);
  assert.equal(reason(gate.check(buy(-2, {}, { position: 2 }))), 'ok', 'closing a long is not going short');
  const allowed = watchedGate(riskLimits.parse({ maxOrdersPerSecond: 1000, options: { allowShortOptions: true } })).gate;
  assert.equal(reason(allowed.check(buy(-2))), 'ok');
});

test('REDUCING lets an option order through only if it brings every greek closer to zero', () => {
  const { gate } = watchedGate(LIMITS);
  gate.reduceOnly('test');
  const held = { portfolio: { delta: 200, gamma: 32, vega: 20, theta: -240 } };
  assert.equal(reason(gate.check(buy(-2, held, { position: 4 }))), 'ok');
  assert.equal(reason(gate.check(buy(1, held, { position: 4 }))), `reduce-only (test): ${CALL} order of 1 would not bring every greek of SPY closer to zero`);
});

test('combo orders are refused until the gate judges them', () => {
  const { gate } = watchedGate(LIMITS);
  assert.equal(reason(gate.check({ ...buy(1), secType: 'BAG' })), `${CALL}: combo orders are not judged by the gate yet: refused`);
});
