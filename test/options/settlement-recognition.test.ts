/**
 * ib mode: IB exercises, assigns and expires options without an event, so
 * reconciliation must recognise the overnight change in the broker's
 * positions (options gone, shares at the strike) and book it as settlement,
 * not report it as a mismatch; and only when exactly one set of outcomes,
 * at one closing price per expiry, explains it. A contrary instruction
 * (do not exercise) is journaled, within its deadline.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { systemClock } from '../../src/clock.js';
import { FileJournal } from '../../src/journal/file-journal.js';
import type { OptionContract } from '../../src/journal/records.js';
import { recogniseSettlements } from '../../src/options/settlement.js';
import type { BrokerSnapshot } from '../../src/trading/ib-venue.js';
import { Ledger } from '../../src/trading/ledger.js';
import { instructDoNotExercise } from '../../src/trading/exercise.js';
import { reconcile } from '../../src/trading/reconcile.js';

const dir = mkdtempSync(join(tmpdir(), 'keel-recognise-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const EXPIRY = '20260105';
/** The expiry's close, 16:00 New York, and the next morning. */
const CLOSE = Date.UTC(2026, 0, 5, 21, 0);
const NEXT_MORNING = CLOSE + 17.5 * 3_600_000;

function option(strike: number, right: 'C' | 'P', expiry = EXPIRY): { symbol: string; contract: OptionContract } {
  const symbol = `SPY   ${expiry.slice(2)}${right}${String(strike * 1000).padStart(8, '0')}`;
  return { symbol, contract: { conId: strike * 10 + (right === 'C' ? 1 : 2), underlying: 'SPY', expiry, strike, right, multiplier: 100 } };
}

function recognise(held: [ReturnType<typeof option>, number][], theirs: [string, number][], at = NEXT_MORNING, spy = 0) {
  return recogniseSettlements({
    ours: new Map([...held.map(([o, n]) => [o.symbol, n] as const), ['SPY', spy]]),
    theirs: new Map(theirs),
    contracts: new Map(held.map(([o]) => [o.symbol, o.contract])),
    at,
  });
}

test('options gone and shares at the strike the morning after expiry: exercised, assigned or expired as the shares say', () => {
  const call = option(580, 'C');
  const put = option(575, 'P');
  assert.deepEqual(
    recognise([[call, 2]], [['SPY', 200]]).map((r) => [r.symbol, r.outcome, r.contracts, r.shares]),
    [[call.symbol, 'exercised', 2, 200]],
  );
  assert.deepEqual(recognise([[call, 2]], []).map((r) => [r.outcome, r.shares]), [['expired', 0]]);
  // A short put assigned: the writer buys the shares.
  assert.deepEqual(recognise([[put, -3]], [['SPY', 300]]).map((r) => [r.outcome, r.contracts, r.shares]), [['assigned', -3, 300]]);
  assert.match(recognise([[put, -3]], [['SPY', 300]])[0]!.reason, /assigned, 300 SPY bought at 575 after the 20260105 close/);
});

test('a vertical with one leg in the money: the one closing price that explains it is found', () => {
  const long = option(580, 'C');
  const short = option(585, 'C');
  // SPY closed between 580.01 and 585: the long leg exercised, the short leg expired.
  const records = recognise([[long, 1], [short, -1]], [['SPY', 100]]);
  assert.deepEqual(records.map((r) => [r.symbol, r.outcome, r.shares]), [[long.symbol, 'exercised', 100], [short.symbol, 'expired', 0]]);
  // No shares: both legs in the money (the shares cancel) or both out of it. Two explanations: none booked.
  assert.deepEqual(recognise([[long, 1], [short, -1]], []), []);
});

test('no single closing price, several explanations, or an unexpired long: nothing recognised', () => {
  // 200 shares from a 580 call and two 585s: only the 585s exercised with the 580 expired, which needs two closing prices.
  const low = option(580, 'C');
  const high = option(585, 'C');
  assert.deepEqual(recognise([[low, 1], [high, 2]], [['SPY', 200]]), []);
  // A long position that vanished before its expiry is not IB's doing.
  assert.deepEqual(recognise([[low, 1]], [], CLOSE - 3_600_000), []);
  // Shares nothing explains.
  assert.deepEqual(recognise([[low, 1]], [['SPY', 37]]), []);
});

test('a short call assigned early, before its expiry: part of the position, shares delivered at the strike', () => {
  const call = option(570, 'C', '20260107');
  const records = recognise([[call, -3]], [[call.symbol, -1], ['SPY', -200]], NEXT_MORNING);
  assert.deepEqual(records.map((r) => [r.outcome, r.contracts, r.shares]), [['assigned', -2, -200]]);
  assert.match(records[0]!.reason, /early/);
});

test('a contrary instruction lets a long in-the-money option expire without breaking the one closing price', () => {
  const low = option(580, 'C');
  const high = option(585, 'C');
  const at = NEXT_MORNING;
  const ours = new Map([[low.symbol, 1], [high.symbol, 2]]);
  const contracts = new Map([[low.symbol, low.contract], [high.symbol, high.contract]]);
  const theirs = new Map([['SPY', 200]]);
  // The two 585s exercised and the 580 not: only possible if the 580 was told not to.
  assert.deepEqual(recogniseSettlements({ ours, theirs, contracts, at }), []);
  const told = recogniseSettlements({ ours, theirs, contracts, at, doNotExercise: new Set([low.symbol]) });
  assert.deepEqual(told.map((r) => [r.symbol, r.outcome]), [[low.symbol, 'expired'], [high.symbol, 'exercised']]);
});

test('reconciliation books what it recognises, to the cent, and still reports what it cannot explain', async () => {
  const call = option(580, 'C');
  const { journal } = await FileJournal.open(join(dir, 'reconcile.journal'));
  const ledger = new Ledger(journal, 100_000);
  await ledger.record({ type: 'order', at: CLOSE - 60_000, ref: 'k.1', symbol: call.symbol, option: call.contract, quantity: 2, orderType: 'LMT', limitPrice: 1.25, reason: 'test' });
  await ledger.record({ type: 'fill', at: CLOSE - 60_000, ref: 'k.1', execId: 'e1', symbol: call.symbol, quantity: 2, price: 1.25, commission: 0 });
  const snapshot = (spy: number): BrokerSnapshot => ({ openOrders: [], positions: new Map([['SPY', spy]]), executions: 0 });

  const odd = reconcile(ledger, snapshot(150), NEXT_MORNING);
  assert.deepEqual(odd.settlements, []);
  assert.deepEqual(odd.mismatches, [`SPY: the journal holds 0 shares, the broker 150`, `${call.symbol}: the journal holds 2 contracts, the broker 0`]);

  const result = reconcile(ledger, snapshot(200), NEXT_MORNING);
  assert.deepEqual(result.mismatches, []);
  for (const r of result.settlements) await ledger.record(r);
  await journal.close();
  assert.equal(ledger.positions.get(call.symbol)!.quantity, 0);
  assert.equal(ledger.positions.get('SPY')!.quantity, 200);
  assert.equal(ledger.positions.get('SPY')!.averagePrice, 580);
  assert.equal(ledger.cash, 100_000 - 250 - 116_000);
  // Reconciled again, the journal now agrees: nothing booked twice.
  assert.deepEqual(reconcile(ledger, snapshot(200), NEXT_MORNING + 1), { records: [], settlements: [], mismatches: [] });
});

test('a contrary instruction: only for a long option the journal holds, until 30 minutes after its close; journaled, so a replay keeps it', async () => {
  const call = option(580, 'C');
  const { journal } = await FileJournal.open(join(dir, 'instruction.journal'));
  const ledger = new Ledger(journal, 100_000);
  const clock = { ...systemClock, wallNow: () => now };
  let now = CLOSE - 3_600_000;
  const tell = () => instructDoNotExercise({ ledger, clock, venue: undefined, symbol: call.symbol, reason: 'test' });
  assert.deepEqual(await tell(), { ok: false, reason: `${call.symbol} is not an option the journal knows` });
  await ledger.record({ type: 'order', at: now, ref: 'k.1', symbol: call.symbol, option: call.contract, quantity: -1, orderType: 'LMT', limitPrice: 1.25, reason: 'test' });
  await ledger.record({ type: 'fill', at: now, ref: 'k.1', execId: 'e1', symbol: call.symbol, quantity: -1, price: 1.25, commission: 0 });
  assert.deepEqual(await tell(), { ok: false, reason: `${call.symbol}: only a long position can be told not to exercise, and the journal holds -1` });
  await ledger.record({ type: 'order', at: now, ref: 'k.2', symbol: call.symbol, option: call.contract, quantity: 3, orderType: 'LMT', limitPrice: 1.25, reason: 'test' });
  await ledger.record({ type: 'fill', at: now, ref: 'k.2', execId: 'e2', symbol: call.symbol, quantity: 3, price: 1.25, commission: 0 });
  now = CLOSE + 30 * 60_000 + 1;
  assert.deepEqual(await tell(), { ok: false, reason: `${call.symbol}: too late, instructions for the 20260105 expiry closed at 2026-01-05T21:30:00.000Z (30 minutes after its close)` });
  now = CLOSE + 30 * 60_000;
  assert.deepEqual(await tell(), { ok: true });
  assert.deepEqual(await tell(), { ok: true }, 'told twice: journaled once');
  assert.ok(ledger.doNotExercise.has(call.symbol));
  await journal.close();
  const reopened = await FileJournal.open(join(dir, 'instruction.journal'));
  assert.equal(reopened.entries.filter((e) => e.record.type === 'option.instruction').length, 1);
  const replayed = new Ledger(reopened.journal, 100_000);
  replayed.replay(reopened.entries);
  await reopened.journal.close();
  assert.deepEqual([...replayed.doNotExercise], [call.symbol]);
});
