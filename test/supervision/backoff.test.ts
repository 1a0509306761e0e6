import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backoffDelay } from '../../src/supervision/backoff.js';

const settings = { minMs: 100, maxMs: 1_000, randomFactor: 0.5, resetAfterMs: 10_000 };

test('delay doubles per attempt from minMs', () => {
  assert.deepEqual([0, 1, 2, 3].map((n) => backoffDelay(settings, n, 0)), [100, 200, 400, 800]);
});

test('delay is capped at maxMs before jitter', () => {
  assert.equal(backoffDelay(settings, 4, 0), 1_000);
  assert.equal(backoffDelay(settings, 30, 0), 1_000);
});

test('jitter stretches the delay by at most randomFactor', () => {
  for (let attempt = 0; attempt < 8; attempt++) {
    const base = backoffDelay(settings, attempt, 0);
    for (const r of [0, 0.25, 0.5, 0.999999]) {
      const d = backoffDelay(settings, attempt, r);
      assert.ok(d >= base && d < base * 1.5, `attempt ${attempt}, random ${r}: ${d} outside [${base}, ${base * 1.5})`);
    }
  }
  assert.equal(backoffDelay(settings, 1, 0.5), 250);
});
