/** The batch API agrees with the single-contract functions and keeps nothing per re-pricing; expiry times in New York. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GCProfiler, getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { bsmGreeks, bsmPrice, newGreeks, type Right } from '../../src/options/bsm.js';
import { ChainPricing } from '../../src/options/chain-pricing.js';
import { ExpiryError, expiryMs, yearsToExpiry } from '../../src/options/expiry.js';
import { IV_BELOW_INTRINSIC } from '../../src/options/implied-vol.js';

// A full collection on demand, to see what a re-pricing keeps.
setFlagsFromString('--expose-gc');

function spyChain(): ChainPricing {
  const chain = new ChainPricing(2_400);
  for (let e = 0; e < 4; e++) {
    for (let k = 0; k < 300; k++) {
      for (const right of [1, -1] as Right[]) chain.add(right, 430 + k * 0.5, (e + 0.25) / 365, 0.1 + Math.abs(k - 100) * 0.002);
    }
  }
  return chain;
}

test('chain greeks and IVs equal the single-contract answers, row by row', () => {
  const chain = spyChain();
  const S = 480.3;
  chain.greeks(S, 0.05, 0.013);
  const g = newGreeks();
  for (let i = 0; i < chain.count; i++) {
    const right = chain.right[i] as Right;
    bsmGreeks(right, S, chain.strike[i]!, chain.years[i]!, 0.05, 0.013, chain.vol[i]!, g);
    for (const [k, ours] of [['price', chain.price], ['delta', chain.delta], ['gamma', chain.gamma], ['vega', chain.vega], ['theta', chain.theta]] as const) {
      assert.ok(Math.abs(ours[i]! - g[k]) <= 1e-12 * Math.max(1, Math.abs(g[k])), `row ${i} ${k}: ${ours[i]} vs ${g[k]}`);
    }
    chain.quote[i] = chain.price[i]!;
  }
  chain.quote[7] = 0; // below intrinsic for whichever right row 7 is, if in the money; else IV 0
  chain.impliedVols(S, 0.05, 0.013);
  for (let i = 0; i < chain.count; i++) {
    if (i === 7) continue;
    if (chain.ivCode[i] !== 0 || !(chain.price[i]! > 1e-290)) continue;
    // The batch price is good to a few ulps of S (the textbook form), so σ comes back to what that much price can tell.
    const vega = chain.vega[i]! * 100;
    assert.ok(Math.abs(chain.iv[i]! - chain.vol[i]!) * vega <= 8 * Number.EPSILON * S + 1e-9 * chain.vol[i]! * vega, `row ${i}: IV ${chain.iv[i]} vs ${chain.vol[i]}`);
  }
  const intrinsic7 = Math.max(chain.right[7]! * (S - chain.strike[7]!), 0);
  if (intrinsic7 > 0.01) assert.equal(chain.ivCode[7], IV_BELOW_INTRINSIC);
  // Expired rows price at intrinsic; unpriceable rows are NaN.
  const small = new ChainPricing(2);
  small.add(1, 100, 0, 0.2);
  small.add(1, -5, 0.1, 0.2);
  small.greeks(103, 0.05, 0);
  assert.equal(small.price[0], 3);
  assert.equal(small.delta[0], 1);
  assert.ok(Number.isNaN(small.price[1]!));
  assert.throws(() => small.add(1, 1, 1), /chain full/);
});

test('re-pricing a chain keeps nothing and allocates nothing per contract', () => {
  const chain = spyChain();
  for (let i = 0; i < chain.count; i++) chain.quote[i] = bsmPrice(chain.right[i] as Right, 480, chain.strike[i]!, chain.years[i]!, 0.05, 0.013, chain.vol[i]!);
  for (let i = 0; i < 50; i++) {
    chain.greeks(480 + i * 0.01, 0.05, 0.013);
    chain.impliedVols(480, 0.05, 0.013);
  }
  const rounds = 400;
  const collect = runInNewContext('gc') as () => void;
  collect();
  const kept = getHeapStatistics().used_heap_size;
  const allocated = allocatedDuring(() => {
    for (let i = 0; i < rounds; i++) {
      chain.greeks(480 + (i % 7) * 0.01, 0.05, 0.013);
      chain.impliedVols(480, 0.05, 0.013);
    }
  });
  collect();
  const retained = getHeapStatistics().used_heap_size - kept;
  // Nothing survives a re-pricing: the chain's columns are all it holds.
  assert.ok(retained < 1_000_000, `${retained} bytes retained over ${rounds} re-pricings`);
  // A double passed to or returned from a call V8 does not inline is a 16-byte heap number; the greeks and
  // the IV solver pass theirs through fields instead, so a re-pricing allocates nothing per contract (under
  // a byte measured, against 525 bytes before). 64 bytes a contract, four heap numbers, is the margin; the
  // measure counts what collections freed, unlike the heap's size alone.
  const perContract = allocated / rounds / chain.count;
  assert.ok(perContract < 64, `${perContract.toFixed(1)} bytes allocated a contract per re-pricing`);
});

/**
 * Bytes allocated on the heap while `fn` ran, collections included: the heap's
 * growth between collections, summed. (The heap's size before and after alone
 * would miss whatever a collection in between freed.)
 */
function allocatedDuring(fn: () => void): number {
  const profiler = new GCProfiler();
  const start = getHeapStatistics().used_heap_size;
  profiler.start();
  fn();
  const end = getHeapStatistics().used_heap_size;
  const { statistics } = profiler.stop();
  let allocated = 0;
  let from = start;
  for (const gc of statistics) {
    allocated += gc.beforeGC.heapStatistics.usedHeapSize - from;
    from = gc.afterGC.heapStatistics.usedHeapSize;
  }
  return allocated + end - from;
}

test('expiry: 16:00 New York on the date, daylight saving time included; a time can be given', () => {
  assert.equal(new Date(expiryMs('20230811')).toISOString(), '2023-08-11T20:00:00.000Z');
  assert.equal(new Date(expiryMs('20240115')).toISOString(), '2024-01-15T21:00:00.000Z');
  assert.equal(new Date(expiryMs('20240115T16:15')).toISOString(), '2024-01-15T21:15:00.000Z');
  // The day clocks spring forward: 03:30 exists, in EDT.
  assert.equal(new Date(expiryMs('20240310T03:30')).toISOString(), '2024-03-10T07:30:00.000Z');
  const twoHours = yearsToExpiry(expiryMs('20260105'), Date.parse('2026-01-05T19:00:00Z'));
  assert.ok(Math.abs(twoHours - 2 / 8_760) < 1e-15);
  for (const bad of ['2026015', '20260230', '20260105T25:00', 'tomorrow']) assert.throws(() => expiryMs(bad), ExpiryError, bad);
});

test("expiry on NYSE's early-close days is at 13:00 New York: the day after Thanksgiving and Christmas Eve", () => {
  assert.equal(new Date(expiryMs('20261127')).toISOString(), '2026-11-27T18:00:00.000Z');
  assert.equal(new Date(expiryMs('20251224')).toISOString(), '2025-12-24T18:00:00.000Z');
  assert.equal(new Date(expiryMs('20250703')).toISOString(), '2025-07-03T17:00:00.000Z', 'summer time: 13:00 is 17:00 UTC');
  assert.equal(new Date(expiryMs('20261130')).toISOString(), '2026-11-30T21:00:00.000Z', 'the Monday after: 16:00');
  assert.equal(new Date(expiryMs('20261127T16:00')).toISOString(), '2026-11-27T21:00:00.000Z', 'a time given is the time');
});
