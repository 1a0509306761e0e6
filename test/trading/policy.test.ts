/**
 * The trading policy on its own: entry and exit thresholds with their
 * hysteresis, the minimum hold, regime sizes, the spread rule, and bad data
 * that never moves a position.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { policySettings, TradingPolicy, type PolicySettings } from '../../src/trading/policy.js';

const LABELS = ['calm', 'volatile', 'crisis'] as const;

/** One instrument, driven frame by frame; positions move only when the test says so (fills). */
function single(settings: Partial<PolicySettings> = {}) {
  const policy = new TradingPolicy(policySettings.parse(settings), ['SPY']);
  const predictions = new Float64Array(1);
  const spreadBps = new Float64Array([1]);
  const positions = new Float64Array(1);
  const regime = new Int32Array([0]);
  const targets = new Float64Array(1);
  let now = 0;
  const decide = (prediction: number, o: { at?: number; spread?: number; position?: number; regime?: number | undefined } = {}) => {
    if (o.at !== undefined) now = o.at;
    predictions[0] = prediction;
    if (o.spread !== undefined) spreadBps[0] = o.spread;
    if (o.position !== undefined) positions[0] = o.position;
    if (o.regime !== undefined) regime[0] = o.regime;
    policy.decide({ now, predictions, regime, regimeLabels: LABELS, spreadBps, positions }, targets);
    return targets[0]!;
  };
  return { policy, decide, reason: () => policy.reason(0) };
}

test('settings: defaults, and an exit above the entry is refused', () => {
  const s = policySettings.parse({});
  assert.deepEqual(s, { horizon: 10_000, entryBps: 1, exitBps: 0.2, shares: 100, maxSpreadBps: 5, minHoldMs: 10_000, regimes: {} });
  assert.throws(() => policySettings.parse({ entryBps: 1, exitBps: 2 }), /exitBps must not be above entryBps/);
  assert.throws(() => policySettings.parse({ regimes: { volatile: 1.5 } }), /regimes/);
  assert.throws(() => policySettings.parse({ share: 10 }), /share/);
});

test('entry and exit thresholds, with hysteresis between them', () => {
  const { decide, reason } = single({ minHoldMs: 0 });
  assert.equal(decide(0.9), 0, 'below entry: stay flat');
  assert.equal(reason(), 'flat: prediction +0.90 bps within entry 1');
  assert.equal(decide(1.0), 0, 'entry is strictly above entryBps');
  assert.equal(decide(1.5), 100);
  assert.equal(reason(), 'open long 100: prediction +1.50 bps beyond entry 1');
  // Not filled yet: a prediction between exit and entry keeps the entry.
  assert.equal(decide(0.5), 100);
  assert.equal(decide(0.5, { position: 100, at: 1000 }), 100, 'filled: held while the prediction stays above exit');
  assert.equal(reason(), 'hold long 100: prediction +0.50 bps not below exit 0.2');
  assert.equal(decide(0.2, { at: 2000 }), 100, 'exit is inclusive');
  assert.equal(decide(0.19, { at: 3000 }), 0, 'faded below exit: close');
  assert.equal(reason(), 'close: prediction +0.19 bps below exit 0.2');
  assert.equal(decide(0.5, { position: 0, at: 4000 }), 0, 'flat again: a weak prediction does not reopen');
  // Short side, and a prediction turning against the position closes it.
  assert.equal(decide(-1.2, { at: 5000 }), -100);
  assert.equal(decide(-0.3, { position: -100, at: 6000 }), -100);
  assert.equal(decide(0.4, { at: 7000 }), 0);
  assert.equal(reason(), 'close: prediction +0.40 bps against it');
  // An unfilled entry whose prediction fades is dropped.
  assert.equal(decide(2, { position: 0, at: 8000 }), 100);
  assert.equal(decide(0.1, { at: 9000 }), 0);
  assert.equal(reason(), 'drop the entry: prediction +0.10 bps below exit 0.2');
});

test('a flip or a close waits for the minimum hold after the position last changed; adding does not', () => {
  const { decide, reason } = single({ minHoldMs: 10_000 });
  assert.equal(decide(1.5, { at: 0 }), 100);
  assert.equal(decide(1.5, { position: 40, at: 1000 }), 100, 'partly filled');
  assert.equal(decide(1.5, { position: 100, at: 3000 }), 100, 'filled at t = 3 s');
  assert.equal(decide(-2, { at: 8000 }), 100, 'flip held back');
  assert.equal(reason(), 'keep long 100: would flip, but held 5.0 s < min hold 10 s');
  assert.equal(decide(0, { at: 12_999 }), 100, 'close held back');
  assert.equal(reason(), 'keep long 100: would close, but held 9.9 s < min hold 10 s');
  assert.equal(decide(-2, { at: 13_000 }), -100, 'held 10 s since the last fill: flip');
  assert.equal(reason(), 'flip to short 100: prediction -2.00 bps beyond entry 1');
  // A fill moving the position restarts the hold.
  assert.equal(decide(-2, { position: -100, at: 14_000 }), -100);
  assert.equal(decide(0, { at: 20_000 }), -100);
  assert.equal(decide(0, { at: 24_000 }), 0);
  // The hold never stops the policy adding: the regime lets it grow, and the hold does not apply.
  const grow = single({ minHoldMs: 10_000, regimes: { volatile: 0.5 } });
  assert.equal(grow.decide(2, { at: 0, regime: 1 }), 50);
  assert.equal(grow.decide(2, { at: 1000, regime: 0, position: 50 }), 100);
  assert.equal(grow.reason(), 'add to long 100: prediction +2.00 bps beyond entry 1');
});

test('regime multipliers: 0 is flat, 0.5 is half size rounded down to whole shares, an unlisted label is 1', () => {
  const { decide, reason } = single({ minHoldMs: 0, shares: 101, regimes: { volatile: 0.5, crisis: 0 } });
  assert.equal(decide(2, { regime: 1 }), 50, '101 x 0.5 = 50.5: 50 shares');
  assert.equal(reason(), 'open long 50: prediction +2.00 bps beyond entry 1 (regime volatile x0.5)');
  assert.equal(decide(2, { regime: 0, position: 50, at: 1000 }), 101, 'calm is not listed: full size');
  assert.equal(decide(2, { regime: 2, position: 101, at: 2000 }), 0, 'crisis: flat');
  assert.equal(reason(), 'flat in regime crisis x0');
  assert.equal(decide(-5, { regime: 2, position: 0, at: 3000 }), 0, 'no entry in crisis');
  // A held position follows its regime's size down at once (after the hold), with a weak prediction too.
  assert.equal(decide(2, { regime: 0, at: 4000 }), 101);
  assert.equal(decide(0.5, { regime: 1, position: 101, at: 5000 }), 50);
  assert.equal(reason(), 'shrink long to 50: regime volatile x0.5');
  // Back to calm with only a holding-strength prediction: no growing back.
  assert.equal(decide(0.5, { regime: 0, position: 50, at: 6000 }), 50);
  // A multiplier that rounds to nothing is flat too.
  const tiny = single({ shares: 1, regimes: { volatile: 0.5 } });
  assert.equal(tiny.decide(3, { regime: 1 }), 0);
});

test('an unknown regime keeps the position when multipliers are configured, and does not matter when none are', () => {
  const { decide, reason } = single({ minHoldMs: 0, regimes: { volatile: 0.5 } });
  assert.equal(decide(2, { regime: -1 }), 0);
  assert.equal(reason(), 'regime unknown: keep 0');
  assert.equal(decide(0, { regime: 7, position: 80 }), 80, 'a state beyond the labels is unknown too');
  const plain = single({ minHoldMs: 0 });
  assert.equal(plain.decide(2, { regime: -1 }), 100);
  // No regime frame at all.
  const policy = new TradingPolicy(policySettings.parse({ regimes: { volatile: 0 } }), ['SPY']);
  const targets = new Float64Array(1);
  policy.decide({ now: 0, predictions: new Float64Array([3]), regime: undefined, regimeLabels: [], spreadBps: new Float64Array([1]), positions: new Float64Array([0]) }, targets);
  assert.equal(targets[0], 0);
});

test('a wide or unknown spread blocks opening, not closing; a blocked flip only closes', () => {
  const { decide, reason } = single({ minHoldMs: 0, maxSpreadBps: 5 });
  assert.equal(decide(2, { spread: 6 }), 0);
  assert.equal(reason(), 'flat: prediction +2.00 bps beyond entry 1, but spread 6.00 bps > 5');
  assert.equal(decide(2, { spread: NaN }), 0);
  assert.equal(reason(), 'flat: prediction +2.00 bps beyond entry 1, but spread unknown');
  assert.equal(decide(2, { spread: 5 }), 100, 'exactly the limit opens');
  assert.equal(decide(0, { spread: 50, position: 100, at: 1000 }), 0, 'closing into a wide spread is allowed');
  assert.equal(decide(-3, { spread: 50, at: 2000 }), 0, 'a flip into a wide spread only closes');
  assert.equal(reason(), 'close: prediction -3.00 bps beyond entry 1 the other way, but spread 50.00 bps > 5 blocks the flip');
  assert.equal(decide(-3, { spread: 1, at: 3000 }), -100);
});

test('bad data never moves a position', () => {
  const { decide, reason } = single({ minHoldMs: 0 });
  assert.equal(decide(NaN, { position: 100 }), 100);
  assert.equal(reason(), 'no prediction: keep 100');
  assert.equal(decide(Infinity, { position: -30 }), -30);
  assert.equal(decide(2, { position: NaN }), NaN, 'position unknown: no target');
  assert.equal(reason(), 'position unknown (NaN): no target');
  // An unfilled entry is dropped when the prediction goes missing.
  assert.equal(decide(2, { position: 0 }), 100);
  assert.equal(decide(NaN), 0);
});

test('many instruments in one call: returns how many targets changed, and allocates nothing after the first', () => {
  const symbols = ['SPY', 'QQQ', 'AAPL', 'MSFT'];
  const policy = new TradingPolicy(policySettings.parse({ minHoldMs: 0, regimes: { volatile: 0.5 } }), symbols);
  const input = {
    now: 0,
    predictions: new Float64Array([2, -2, 0.5, NaN]),
    regime: new Int32Array([0, 1, 0, 0]),
    regimeLabels: LABELS,
    spreadBps: new Float64Array([1, 1, 1, 1]),
    positions: new Float64Array([0, 0, 0, 20]),
  };
  const targets = new Float64Array(4);
  assert.equal(policy.decide(input, targets), 4, 'every target is new');
  assert.deepEqual([...targets], [100, -50, 0, 20]);
  assert.equal(policy.decide({ ...input, now: 1000 }, targets), 0);
  input.predictions[2] = 3;
  assert.equal(policy.decide({ ...input, now: 2000 }, targets), 1);
  assert.deepEqual([...targets], [100, -50, 100, 20]);
  assert.deepEqual(
    symbols.map((_, i) => policy.reason(i)),
    ['hold long 100: prediction +2.00 bps not below exit 0.2', 'hold short 50: prediction -2.00 bps not below exit 0.2', 'open long 100: prediction +3.00 bps beyond entry 1', 'no prediction: keep 20'],
  );
  assert.throws(() => policy.decide({ ...input, positions: new Float64Array(3) }, targets), /4 instruments/);
});
