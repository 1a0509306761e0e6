/** The option chain's health on its own: what stops option trading, and that a steady set keeps its identity. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ChainHealth } from '../../src/options/chain-health.js';
import type { ChainRow, OptionChainView } from '../../src/options/chain-view.js';

const NOW = Date.UTC(2026, 0, 5, 16, 0);

function row(localSymbol: string, bid: number, ask: number, midIv: number, ivReason?: string): ChainRow {
  return { localSymbol, bid, ask, midIv, ivReason } as unknown as ChainRow;
}

/** A view quoted at `quotedAt`, on a clock whose monotonic and wall readings agree (`wallAt` when they do not). */
function view(quotedAt: number, rows: ChainRow[], wallAt = quotedAt): OptionChainView {
  return { underlying: 'SPY', phase: 'streaming', quotedAt: wallAt, quotedMonotonic: quotedAt, rows } as unknown as OptionChainView;
}

test('a healthy chain has no condition, and the same empty set is returned each time', () => {
  const health = new ChainHealth({ maxQuoteAgeMs: 5_000, noIvGraceMs: 2_000 });
  const first = health.judge(view(NOW - 100, [row('SPY C600', 1.2, 1.25, 0.15), row('SPY P600', NaN, NaN, NaN, 'no two-sided quote yet'), row('SPY P560', 0, 0.01, 0.41)]), NOW);
  assert.equal(first.size, 0);
  assert.equal(health.judge(view(NOW, [row('SPY C600', 1.2, 1.25, 0.15)]), NOW + 1), first);
});

test('no quote yet, stale quotes, a crossed quote and a mid without IV are conditions, each named', () => {
  const health = new ChainHealth({ maxQuoteAgeMs: 5_000, noIvGraceMs: 2_000 });
  assert.deepEqual([...health.judge(view(NaN, []), NOW).keys()], ['no chain']);
  const rows = [row('SPY C600', 1.3, 1.2, NaN), row('SPY C590', 0.5, 0.6, NaN, 'the price is below intrinsic value'), row('SPY C601', 1, 1.1, 0.16)];
  assert.deepEqual([...health.judge(view(NOW - 8_000, rows), NOW - 2_000).keys()], ['stale', 'crossed SPY C600'], 'a mid without IV has its grace');
  const bad = health.judge(view(NOW - 8_000, rows), NOW);
  assert.deepEqual([...bad.keys()], ['stale', 'crossed SPY C600', 'no iv SPY C590']);
  assert.match(bad.get('stale')!, /no option quote since 15:59:52 UTC \(limit 5\.0 s\)/);
  assert.equal(bad.get('crossed SPY C600'), 'SPY C600 quote is crossed: bid 1.3 > ask 1.2');
  assert.match(bad.get('no iv SPY C590')!, /mid 0\.550 has had no implied volatility for 2\.0 s: the price is below intrinsic value/);
  const again = health.judge(view(NOW - 7_000, rows.slice(0, 2)), NOW + 100);
  assert.equal(again, bad, 'the same conditions: the same object, so nobody hears a change');
  health.judge(view(NOW, [row('SPY C590', 0.5, 0.6, 0.2)]), NOW + 200);
  assert.deepEqual([...health.judge(view(NOW, rows.slice(1, 2)), NOW + 300).keys()], [], 'solved once: the grace starts again');
});

test('a chain that was published and is gone stops option trading; one never configured does not', () => {
  const never = new ChainHealth({ maxQuoteAgeMs: 5_000, noIvGraceMs: 2_000 });
  assert.equal(never.judge(undefined, NOW).size, 0);
  const health = new ChainHealth({ maxQuoteAgeMs: 5_000, noIvGraceMs: 2_000 });
  health.judge(view(NOW, [row('SPY C600', 1.2, 1.25, 0.15)]), NOW);
  assert.deepEqual([...health.judge(undefined, NOW).keys()], ['no chain']);
});

test('quote ages are monotonic: a market clock running 600 times as fast does not make a fresh chain stale', () => {
  const health = new ChainHealth({ maxQuoteAgeMs: 5_000, noIvGraceMs: 2_000 });
  // Quoted 1 s ago in real time, which was 10 minutes of market time.
  assert.equal(health.judge(view(NOW - 1_000, [row('SPY C600', 1.2, 1.25, 0.15)], NOW - 600_000), NOW).size, 0);
});
