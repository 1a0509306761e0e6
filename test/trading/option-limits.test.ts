/**
 * The greek risk limits in the gate's order path: each refuses the order
 * that would cross it, naming the limit, the value and the limit; an order
 * that brings a greek back towards zero passes even beyond a limit;
 * REDUCING lets through only orders that reduce every greek. Combos are
 * judged as a whole: all their legs together.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { riskLimits } from '../../src/trading/limits.js';
import type { ComboLegRisk, ComboRisk, OptionRisk } from '../../src/trading/option-limits.js';
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

/** A 580/585 call vertical on the support's expiry: the 580 call (as above) bought, the 585 call (Δ 0.25) sold, one of each a combo. */
const C580: ComboLegRisk = { symbol: CALL, expiry: '20260105', right: 'C', multiplier: 100, ratio: 1, greeks: { delta: 0.5, gamma: 0.08, vega: 0.05, theta: -0.6 }, bid: 1.2, ask: 1.25, position: 0, working: 0 };
const C585: ComboLegRisk = { symbol: 'SPY   260105C00585000', expiry: '20260105', right: 'C', multiplier: 100, ratio: -1, greeks: { delta: 0.25, gamma: 0.05, vega: 0.03, theta: -0.4 }, bid: 0.4, ask: 0.45, position: 0, working: 0 };
const FLAT = { delta: 0, gamma: 0, vega: 0, theta: 0 };
const V = 'SPY +1 20260105 580C -1 20260105 585C';
/** Bought at the net of the touches, 1.25 - 0.40 = 0.85, against a net mid of 1.225 - 0.425 = 0.80; a combo is 25 deltas, 3 gamma, 2 vega, -20 theta. */
const combo = (quantity: number, c: Partial<ComboRisk> = {}, intent: Partial<OrderIntent> = {}): OrderIntent => ({
  symbol: V,
  secType: 'BAG',
  quantity,
  position: 0,
  working: 0,
  price: 0.85,
  mid: 0.8,
  grossExposure: 0,
  combo: { underlying: 'SPY', legs: [C580, C585], portfolio: FLAT, contractsByExpiry: new Map(), premiumAtRisk: 0, sharesHeld: 0, ...c },
  ...intent,
});

test('a vertical is judged as a whole: its short leg is covered by its long one, a credit is a price, three legs are fine', () => {
  const { gate } = watchedGate(LIMITS);
  assert.equal(reason(gate.check(combo(1))), 'ok');
  // The bear call spread: the 580 sold, covered by the 585 bought, for a credit.
  const bear = combo(1, { legs: [{ ...C580, ratio: -1 }, { ...C585, ratio: 1 }] }, { symbol: 'SPY -1 20260105 580C +1 20260105 585C', price: -0.75, mid: -0.8 });
  assert.equal(reason(gate.check(bear)), 'ok');
  const fly = combo(2, { legs: [C580, { ...C585, ratio: -2 }, { ...C580, symbol: 'SPY   260105C00590000', ratio: 1, bid: 0.1, ask: 0.12 }] }, { price: 0.57, mid: 0.485 });
  assert.equal(reason(gate.check(fly)), 'ok');
  assert.equal(reason(gate.check({ ...fly, quantity: 3 })), `max contracts per order: 12 > 10 (${V} buy 3)`, 'three combos of four contracts');
});

test('a combo leaving a short leg uncovered is refused, naming the limit: more sold than bought, a put sold, a long expiring first', () => {
  const { gate } = watchedGate(LIMITS);
  const ratio = combo(1, { legs: [C580, { ...C585, ratio: -2 }] }, { price: 0.45, mid: 0.375 });
  assert.equal(reason(gate.check(ratio)), `no short options: ${V} buy 1 leaves 2 calls short, 200 shares to cover, 0 held, 100 shares' worth not covered by the long calls expiring no earlier (allowShortOptions is false)`);
  const put = { ...C585, symbol: 'SPY   260105P00575000', right: 'P' as const, greeks: { delta: -0.25, gamma: 0.05, vega: 0.03, theta: -0.4 } };
  assert.equal(reason(gate.check(combo(1, { legs: [C580, put] }))), `no short options: ${V} buy 1 leaves 1 puts short (allowShortOptions is false)`);
  const later = combo(1, { legs: [C580, { ...C585, expiry: '20260106' }] });
  assert.match(reason(gate.check(later)), /^no short options: .* leaves 1 calls short, 100 shares to cover, 0 held, 100 shares' worth not covered by the long calls expiring no earlier/);
  assert.equal(reason(gate.check(combo(1, { legs: [C580, { ...C585, ratio: -2 }], sharesHeld: 100 }, { price: 0.45, mid: 0.375 }))), 'ok', 'shares cover what the long call does not');
});

test('each limit refuses the combo that would cross it, all legs together, naming it', () => {
  const { gate } = watchedGate(LIMITS);
  assert.equal(reason(gate.check(combo(6))), `max contracts per order: 12 > 10 (${V} buy 6)`);
  assert.equal(reason(gate.check(combo(5, { contractsByExpiry: new Map([['20260105', 11]]) }))), `max contracts per expiry: 21 > 20 (20260105, ${V} buy 5)`);
  assert.equal(reason(gate.check(combo(4, { premiumAtRisk: 4_600 }))), `max premium at risk: 5,100.00 > 5,000 (${V} buy 4 at 0.85)`, 'the long leg at its ask: 4 × 100 × 1.25');
  assert.equal(reason(gate.check(combo(1, { portfolio: { ...FLAT, delta: 480 } }))), `max delta: 505.00 > 500 shares (SPY delta 480.00 before ${V} buy 1)`);
  assert.equal(reason(gate.check(combo(1, { portfolio: { ...FLAT, gamma: 198 } }))), `max gamma: 201.00 > 200 shares per $1 (SPY gamma 198.00 before ${V} buy 1)`);
  assert.equal(reason(gate.check(combo(1, { portfolio: { ...FLAT, vega: 299 } }))), `max vega: 301.00 > 300 $ per vol point (SPY vega 299.00 before ${V} buy 1)`);
  assert.equal(reason(gate.check(combo(1, { portfolio: { ...FLAT, theta: -390 } }))), `max theta: 410.00 > 400 $ per day (SPY theta -390.00 before ${V} buy 1)`);
  assert.equal(reason(gate.check(combo(1, {}, { price: 0.95 }))), `price collar: 0.15 > 0.1 from the combo's mid (${V} 0.95 vs mid 0.80)`, 'the collar once per leg');
  const tight = watchedGate(riskLimits.parse({ maxOrderNotional: 100, maxOrdersPerSecond: 1000 })).gate;
  assert.equal(reason(tight.check(combo(1))), `max order notional: 165.00 > 100 (${V} buy 1 at 0.85)`, 'each leg at its touch: 125 + 40');
  assert.equal(reason(gate.check({ ...combo(1), combo: undefined })), `${V}: a combo order without its legs' greeks and the portfolio's cannot be judged`);
  const noGreeks = combo(1, { legs: [C580, { ...C585, greeks: { ...C585.greeks, vega: NaN } }] });
  assert.match(reason(gate.check(noGreeks)), /^option greeks: .*never trade an option that cannot be judged$/);
});

test('REDUCING lets a combo through only if it brings every greek closer to zero', () => {
  const { gate } = watchedGate(LIMITS);
  gate.reduceOnly('test');
  const held = { portfolio: { delta: 25, gamma: 3, vega: 2, theta: -20 }, legs: [{ ...C580, position: 1 }, { ...C585, position: -1 }] };
  assert.equal(reason(gate.check(combo(-1, held, { price: 0.75, mid: 0.8 }))), 'ok', 'the vertical sold back');
  assert.equal(reason(gate.check(combo(1, held))), `reduce-only (test): ${V} order of 1 would not bring every greek of SPY closer to zero`);
});
