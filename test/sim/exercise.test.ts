/** Exercise and lapse instructions at the simulated broker (options/exercise.ts): what each does, and every refusal naming what was wrong. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { OptionContract } from '../../src/journal/records.js';
import { decideExercise, EXERCISE, LAPSE, type ExerciseInput } from '../../src/sim/options/exercise.js';

const CALL: OptionContract = { conId: 1, underlying: 'SPY', expiry: '20260105', strike: 580, right: 'C', multiplier: 100 };
const SYMBOL = 'SPY   260105C00580000';
/** Monday 2026-01-05 15:00 New York. */
const EXPIRY_DAY = Date.UTC(2026, 0, 5, 20, 0);
const input = (over: Partial<ExerciseInput>): ExerciseInput => ({ symbol: SYMBOL, option: CALL, action: LAPSE, quantity: 2, held: 3, at: EXPIRY_DAY, ...over });

test('a lapse is taken on the expiry day for up to the long position, until 30 minutes after the close', () => {
  assert.deepEqual(decideExercise(input({})), { kind: 'lapse', contracts: 2 });
  assert.deepEqual(decideExercise(input({ quantity: 3, at: Date.UTC(2026, 0, 5, 21, 29) })), { kind: 'lapse', contracts: 3 });
  const late = decideExercise(input({ at: Date.UTC(2026, 0, 5, 21, 30) }));
  assert.equal(late.kind, 'refused');
  assert.match((late as { reason: string }).reason, /SPY {3}260105C00580000 expired: instructions were taken until 2026-01-05T21:30:00.000Z, 30 minutes after the close of 20260105/);
  // The day before: too early for a contrary instruction.
  assert.deepEqual(decideExercise(input({ at: Date.UTC(2026, 0, 2, 20, 0) })), { kind: 'refused', reason: `a lapse instruction for ${SYMBOL} is taken on its expiry day, 20260105, not on 20260102` });
});

test('on an early-close day the cutoff is 13:30 New York', () => {
  // The day after Thanksgiving 2026 closes at 13:00 New York (18:00 UTC).
  const option = { ...CALL, expiry: '20261127' };
  assert.equal(decideExercise(input({ option, at: Date.UTC(2026, 10, 27, 18, 29) })).kind, 'lapse');
  assert.equal(decideExercise(input({ option, at: Date.UTC(2026, 10, 27, 18, 30) })).kind, 'refused');
});

test('an exercise delivers the shares at once: a call brings them, a put takes them, any day before the cutoff', () => {
  assert.deepEqual(decideExercise(input({ action: EXERCISE })), { kind: 'exercise', contracts: 2, shares: 200 });
  assert.deepEqual(decideExercise(input({ action: EXERCISE, option: { ...CALL, right: 'P' }, at: Date.UTC(2026, 0, 2, 20, 0) })), { kind: 'exercise', contracts: 2, shares: -200 });
});

test('refusals name what was wrong', () => {
  const reason = (over: Partial<ExerciseInput>) => (decideExercise(input(over)) as { reason?: string }).reason;
  assert.equal(reason({ action: 3 }), 'exerciseAction must be 1 (exercise) or 2 (lapse), got 3');
  assert.equal(reason({ quantity: 0 }), 'exerciseQuantity must be a whole number of contracts above 0, got 0');
  assert.equal(reason({ held: 0 }), `no long position in ${SYMBOL} to lapse (position 0)`);
  assert.equal(reason({ held: -2, action: EXERCISE }), `no long position in ${SYMBOL} to exercise (position -2)`);
  assert.equal(reason({ quantity: 4 }), `exerciseQuantity 4 is above the long position of 3 in ${SYMBOL}`);
});
