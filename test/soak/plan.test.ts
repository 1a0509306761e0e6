/** The soak's fault schedule: every fault in every round, the daemon kills spread out, the same seed the same plan. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FAULTS, planSoak, QUIET_TAIL_MS, WARM_UP_MS, type FaultKind } from './plan.js';

const SYMBOLS = ['SPY', 'QQQ', 'AAPL'];
const ALL = Object.keys(FAULTS) as FaultKind[];

test('two minutes: one round of every fault after the warm-up, the daemon kill last, all before the quiet tail', () => {
  const plan = planSoak(2, 1, SYMBOLS);
  assert.equal(plan.durationMs, 120_000);
  assert.deepEqual(plan.faults.map((f) => f.kind).sort(), [...ALL].sort());
  assert.equal(plan.faults.at(-1)!.kind, 'daemon-kill');
  assert.equal(plan.faults[0]!.atMs, WARM_UP_MS);
  for (let i = 1; i < plan.faults.length; i++) assert.ok(plan.faults[i]!.atMs > plan.faults[i - 1]!.atMs, 'in time order');
  assert.ok(plan.faults.at(-1)!.atMs < plan.durationMs - QUIET_TAIL_MS);
  for (const f of plan.faults) assert.ok(SYMBOLS.includes(f.symbol), f.symbol);
});

test('the same seed gives the same plan; another seed another order', () => {
  assert.deepEqual(planSoak(5, 7, SYMBOLS), planSoak(5, 7, SYMBOLS));
  const order = (seed: number) => planSoak(20, seed, SYMBOLS).faults.map((f) => `${f.kind}/${f.symbol}`);
  assert.notDeepEqual(order(1), order(2));
});

test('an hour: rounds of every fault but the kill, and a daemon kill about every ten minutes, each at the end of a round', () => {
  const plan = planSoak(60, 3, SYMBOLS);
  const kills = plan.faults.flatMap((f, i) => (f.kind === 'daemon-kill' ? [i] : []));
  assert.equal(kills.length, 6);
  assert.equal(kills.at(-1), plan.faults.length - 1, 'the last fault is a kill');
  const others = plan.faults.filter((f) => f.kind !== 'daemon-kill');
  const size = ALL.length - 1;
  const rounds = others.length / size;
  assert.ok(Number.isInteger(rounds) && rounds >= 20, `${others.length} other faults`);
  for (let r = 0; r < rounds; r++) {
    assert.deepEqual(new Set(others.slice(r * size, r * size + size).map((f) => f.kind)).size, size, `round ${r} has each once`);
  }
  const gaps = kills.slice(1).map((k, i) => plan.faults[k]!.atMs - plan.faults[kills[i]!]!.atMs);
  for (const gap of gaps) assert.ok(gap > 8 * 60_000, `kills ${gap} ms apart`);
});

test('too short a soak, or nothing to corrupt, is refused with the reason', () => {
  assert.throws(() => planSoak(1.5, 1, SYMBOLS), /at least 2 minutes .* got 1\.5/);
  assert.throws(() => planSoak(Number.NaN, 1, SYMBOLS), /at least 2 minutes/);
  assert.throws(() => planSoak(5, 1, []), /at least one symbol/);
});
