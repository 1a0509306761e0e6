/**
 * The referee's timing, on a view of made-up scores (the rules' figures are
 * tested on real models in champion-challenger.test.ts): a challenger is
 * judged once per minFrames of its shadow, also when the steps skip frames,
 * as they do when the drift monitor's thread falls behind.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { PairedErrorStats } from '../../src/models/drift.js';
import { Referee, type RefereeView } from '../../src/models/promotion.js';

const SETTINGS = { minFrames: 10, maxFrames: 30, confidence: 0.99, probationFrames: 30 };

/** A challenger neither better nor worse: every judgement waits, until maxFrames rejects it. */
function undecided(): RefereeView & { asked: number } {
  const paired: PairedErrorStats = { n: 100, frames: 10, rmse: [1, 1], dm: 0 };
  const view = {
    asked: 0,
    challenger: () => (view.asked++, { challenger: 'b@2', paired }),
    beyondBound: () => false,
    liveError: () => undefined,
  };
  return view;
}

function run(steps: readonly number[]): { asked: number; rejectedAt: number | undefined } {
  const referee = new Referee(SETTINGS);
  const view = undecided();
  referee.step(1, view);
  referee.onSwap({ slot: '10s/base/0', action: 'shadow', to: 'b@2' });
  for (const frame of steps) {
    const calls = referee.step(frame, view);
    if (calls.length > 0) {
      assert.deepEqual(calls.map((c) => c.action), ['reject']);
      return { asked: view.asked, rejectedAt: frame };
    }
  }
  return { asked: view.asked, rejectedAt: undefined };
}

test('a challenger is judged once per minFrames of its shadow, and rejected at maxFrames without proof', () => {
  const everyFrame = Array.from({ length: 40 }, (_, k) => k + 2);
  assert.deepEqual(run(everyFrame), { asked: 3, rejectedAt: 31 });
});

test('steps that skip frames judge at the first step at or past each judgement, once', () => {
  // Shadowing from frame 1: judgements due at 11, 21, 31.
  assert.deepEqual(run([5, 12, 13, 19, 26, 40]), { asked: 3, rejectedAt: 40 });
  // One step past two judgements judges once, and the next falls due after it.
  assert.deepEqual(run([5, 25, 30, 31]), { asked: 2, rejectedAt: 31 });
});
