/**
 * The gate's rules on their own: conditions halt in the same call, cancels
 * go out before anyone hears of it, resume waits for health.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { riskLimits } from '../../src/trading/limits.js';
import type { OrderIntent } from '../../src/trading/risk-gate.js';
import { optionIntent, watchedGate } from '../support/gate.js';

/** Limits no order here comes near: these tests are about the gate's state. */
const LOOSE = riskLimits.parse({ maxPosition: 1_000_000, maxOrderNotional: 1e9, maxGrossExposure: 1e10, maxOrdersPerSecond: 1000, collarBps: 500 });

function setup(options = { autoResume: false, healthyPeriodMs: 1000 }) {
  return watchedGate(LOOSE, options);
}

const problems = (entries: Record<string, string>) => new Map(Object.entries(entries));

/** An SPY order at 100.01 with the mid at 100, nothing else working. */
const intent = (quantity: number, position: number): OrderIntent => ({ symbol: 'SPY', quantity, position, price: 100.01, mid: 100, working: 0, grossExposure: Math.abs(position) * 100 });

test('a new condition halts before report() returns, with working orders cancelled first', () => {
  const { gate, happened, transitions } = setup();
  gate.report('feature_health', problems({}));
  assert.equal(gate.state, 'ACTIVE');
  gate.report('feature_health', problems({ 'nan SPY mid': 'SPY mid is NaN or Inf in a model input' }));
  assert.equal(gate.state, 'HALTED');
  assert.deepEqual(happened, ['cancel all while HALTED', 'ACTIVE -> HALTED']);
  assert.equal(transitions[0]!.reason, 'SPY mid is NaN or Inf in a model input');
  assert.equal(transitions[0]!.by, 'feature_health');
  // The same condition again, or more while halted: no new transition.
  gate.report('feature_health', problems({ 'nan SPY mid': 'x', 'stale QQQ': 'y' }));
  assert.equal(transitions.length, 1);
});

test('while HALTED every order is refused with the reason; cancels are not the gate’s business', () => {
  const { gate } = setup();
  assert.deepEqual(gate.check(intent(100, 0)), { ok: true });
  gate.report('ib', problems({ link: 'IB link reconnecting: socket closed' }));
  assert.deepEqual(gate.check(intent(-100, 100)), { ok: false, reason: 'trading halted: IB link reconnecting: socket closed' });
});

test('resume is refused while a condition is present, and allowed once none is', () => {
  const { gate } = setup();
  gate.report('feature_health', problems({ 'stale SPY': 'SPY market data is 6.0 s old (limit 5.0 s)' }));
  const refused = gate.resume('looks fine to me');
  assert.equal(refused.ok, false);
  assert.match((refused as { reason: string }).reason, /1 condition still present: feature_health: SPY market data is 6.0 s old/);
  gate.report('feature_health', problems({}));
  assert.deepEqual(gate.resume('data is back'), { ok: true });
  assert.equal(gate.state, 'ACTIVE');
});

test('auto-resume after the healthy period, only when configured and never after an operator halt', async () => {
  const { clock, gate } = setup({ autoResume: true, healthyPeriodMs: 1000 });
  gate.report('feature_health', problems({ 'stale SPY': 'old' }));
  await clock.advance(500);
  gate.report('feature_health', problems({}));
  await clock.advance(900);
  gate.tick(clock.now());
  assert.equal(gate.state, 'HALTED', 'only 900 ms healthy');
  await clock.advance(100);
  gate.tick(clock.now());
  assert.equal(gate.state, 'ACTIVE');
  assert.equal(gate.reason, 'no condition for 1 s');

  gate.halt('operator says stop');
  await clock.advance(10_000);
  gate.tick(clock.now());
  assert.equal(gate.state, 'HALTED', 'an operator halt waits for an operator');

  const manual = setup({ autoResume: false, healthyPeriodMs: 1000 });
  manual.gate.report('x', problems({ a: 'a' }));
  manual.gate.report('x', problems({}));
  await manual.clock.advance(5000);
  manual.gate.tick(manual.clock.now());
  assert.equal(manual.gate.state, 'HALTED');
});

test('reduce-only lets through only orders that shrink a position without flipping it', () => {
  const { gate } = setup();
  gate.reduceOnly('end of day');
  const ok = (quantity: number, position: number) => gate.check(intent(quantity, position)).ok;
  assert.equal(ok(-50, 100), true);
  assert.equal(ok(-100, 100), true, 'to flat');
  assert.equal(ok(-150, 100), false, 'flips to short');
  assert.equal(ok(10, 100), false, 'grows');
  assert.equal(ok(10, 0), false, 'opens');
  assert.equal(ok(30, -50), true);
  assert.match((gate.check(intent(10, 0)) as { reason: string }).reason, /reduce-only \(end of day\): SPY order of 10 would not shrink the position of 0/);
  // Working orders count as filled: with 80 already being sold, selling 50 more would flip 100 to short.
  assert.match((gate.check({ ...intent(-50, 100), working: -80 }) as { reason: string }).reason, /would not shrink the position of 100 and working -80$/);
  gate.report('feature_health', problems({ k: 'SPY ofi is CRITICAL' }));
  assert.equal(gate.state, 'HALTED', 'a condition halts from REDUCING too');
});

test('a canceller that throws does not spare the others, and the gate still halts', () => {
  const { gate, happened } = setup();
  gate.onHalt(() => {
    throw new Error('broken canceller');
  });
  gate.onHalt(() => happened.push('second canceller ran'));
  assert.throws(() => gate.halt('test'), /broken canceller/);
  assert.equal(gate.state, 'HALTED');
  assert.ok(happened.includes('second canceller ran'));
});

test('a latched condition halts at once, outlasts the healthy period, and an operator resume acknowledges it instead of being refused', async () => {
  const { clock, gate, happened, transitions } = setup({ autoResume: true, healthyPeriodMs: 1000 });
  gate.latch('executions', 'e1', 'execution e1 for k.1 refused: price NaN is not a finite number above 0');
  assert.equal(gate.state, 'HALTED');
  assert.deepEqual(happened, ['cancel all while HALTED', 'ACTIVE -> HALTED']);
  assert.equal(transitions[0]!.by, 'executions');
  assert.equal(gate.reason, 'execution e1 for k.1 refused: price NaN is not a finite number above 0');
  assert.deepEqual(gate.activeConditions(), ['executions: execution e1 for k.1 refused: price NaN is not a finite number above 0 (until an operator resumes)']);
  // The same key again is not news; nothing but a resume ends it.
  gate.latch('executions', 'e1', 'again');
  assert.equal(transitions.length, 1);
  await clock.advance(60_000);
  gate.tick(clock.now());
  assert.equal(gate.state, 'HALTED', 'no healthy period ends a latched condition');
  assert.match((gate.reduceOnly('just reduce') as { reason: string }).reason, /1 condition still present: executions: .* \(latched conditions are acknowledged by a resume\)$/);
  // A data condition still refuses the resume; the latched one never does.
  gate.report('ib', problems({ link: 'IB link reconnecting: socket closed' }));
  assert.match((gate.resume('operator') as { reason: string }).reason, /^1 condition still present: ib: IB link reconnecting/);
  gate.report('ib', problems({}));
  assert.deepEqual(gate.resume('the operator read the evidence'), { ok: true });
  assert.equal(gate.state, 'ACTIVE');
  assert.equal(transitions.at(-1)!.reason, 'the operator read the evidence (acknowledged: executions: execution e1 for k.1 refused: price NaN is not a finite number above 0)');
  assert.deepEqual(gate.activeConditions(), []);
  // Acknowledged: the same key may latch again (a new session's refusal), and halts again.
  gate.latch('executions', 'e1', 'execution e1 refused again');
  assert.equal(gate.state, 'HALTED');
});

test('the reason is what holds the gate now: a cleared cause is never named while something else holds it', () => {
  const { gate } = setup();
  gate.report('ib', problems({ link: 'IB link reconnecting: socket closed' }));
  assert.equal(gate.reason, 'IB link reconnecting: socket closed');
  // Halted already: the bad P&L arrives without a transition, and holds the gate once the link is back.
  gate.reportDailyPnl(NaN);
  gate.report('ib', problems({}));
  assert.equal(gate.reason, 'daily P&L is NaN: the daily loss limit cannot be judged');
  assert.deepEqual(gate.holds(), ['daily loss: daily P&L is NaN: the daily loss limit cannot be judged']);
  assert.deepEqual(gate.check(intent(100, 0)), { ok: false, reason: 'trading halted: daily P&L is NaN: the daily loss limit cannot be judged' });
  // An operator's halt on top: the condition first (it is what refuses a resume), the operator's after.
  gate.halt('lunch', 'inspector');
  assert.deepEqual(gate.holds(), ['daily loss: daily P&L is NaN: the daily loss limit cannot be judged', 'inspector: lunch']);
  gate.reportDailyPnl(0);
  assert.equal(gate.reason, 'lunch');
  assert.deepEqual(gate.resume('back from lunch'), { ok: true });
  assert.deepEqual(gate.holds(), []);
  // Nothing left but the want of a resume (no auto-resume configured): said so, with the cause that cleared.
  gate.report('feature_health', problems({ 'stale SPY': 'SPY market data is 6.0 s old (limit 5.0 s)' }));
  gate.report('feature_health', problems({}));
  assert.equal(gate.reason, 'SPY market data is 6.0 s old (limit 5.0 s) (cleared; waiting for a resume)');
  assert.deepEqual(gate.reduceOnly('reduce only'), { ok: true });
  assert.deepEqual(gate.holds(), ['reduce-only: reduce only']);
  assert.equal(gate.reason, 'reduce only');
});

test('option conditions refuse option orders only; stocks trade on, and options resume once none is left', () => {
  const { gate, transitions } = setup();
  const option = optionIntent();
  const combo = { ...option, secType: 'BAG' as const };
  assert.equal(gate.reportOptions('feature_health', problems({ stale: 'the SPY option chain is stale' })), true);
  assert.equal(gate.reportOptions('ib', problems({ 'farm usopt': 'the options data farm usopt is down' })), false, 'already stopped: no change');
  assert.equal(gate.state, 'ACTIVE', 'the gate itself does not move');
  assert.equal(transitions.length, 0);
  assert.deepEqual(gate.check(option), { ok: false, reason: 'option trading halted: feature_health: the SPY option chain is stale (and 1 more)' });
  assert.equal(gate.check(combo).ok, false);
  assert.deepEqual(gate.check(intent(100, 0)), { ok: true });
  assert.deepEqual(gate.check({ ...intent(100, 0), secType: 'STK' }), { ok: true });
  assert.deepEqual(gate.optionHolds(), ['feature_health: the SPY option chain is stale', 'ib: the options data farm usopt is down']);
  gate.reportOptions('feature_health', problems({}));
  assert.equal(gate.check(option).ok, false, 'one source still holds');
  assert.equal(gate.reportOptions('ib', problems({})), true);
  assert.deepEqual(gate.check(option), { ok: true });
  gate.report('feature_health', problems({ 'nan SPY mid': 'SPY mid is NaN' }));
  assert.match((gate.check(option) as { reason: string }).reason, /^trading halted/, 'a halt stops options too');
});
