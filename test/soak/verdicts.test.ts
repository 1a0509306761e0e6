/** The soak's judgements on made-up facts, each made to fail the way a broken keel would. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FillRecord, GateRecord, LedgerRecord, OrderRecord } from '../../src/journal/records.js';
import { compareAccounts, compareFills, compareOrders, judgeFault, judgeMemory, type BrokerExecution, type BrokerOrder, type MemorySample } from './verdicts.js';

const exec = (execId: string, side: 'BOT' | 'SLD' = 'BOT', orderRef = 'soak.a1'): BrokerExecution => ({ execId, orderRef, symbol: 'SPY', side, shares: 100, price: 580.01 });
const fill = (execId: string, quantity = 100, price = 580.01): FillRecord => ({ type: 'fill', at: 0, ref: 'soak.a1', execId, symbol: 'SPY', quantity, price, commission: 0 });

test('fills: the journal holding each of our executions once, as the broker made it, is clean; a foreign execution is not ours', () => {
  const broker = [exec('e1'), exec('e2', 'SLD'), exec('x1', 'BOT', 'someone-else.1')];
  const result = compareFills(broker, [fill('e1'), fill('e2', -100)], 'soak.');
  assert.deepEqual(result, { atBroker: 2, journaled: 2, lost: [], doubled: [], phantom: [], misrecorded: [] });
});

test('fills: lost, doubled, unknown to the broker and recorded wrong are each found', () => {
  const broker = [exec('e1'), exec('e2'), exec('e3'), exec('e4', 'SLD')];
  const journal: LedgerRecord[] = [fill('e1'), fill('e1'), fill('e3'), fill('ghost'), fill('e4', 100), { type: 'commission', at: 0, execId: 'e1', commission: 1 }];
  const result = compareFills(broker, journal, 'soak.');
  assert.deepEqual(result.lost, ['e2']);
  assert.deepEqual(result.doubled, [{ execId: 'e1', times: 2 }]);
  assert.deepEqual(result.phantom, ['ghost']);
  assert.deepEqual(result.misrecorded, ['e4: journal 100 SPY at 580.01, broker -100 SPY at 580.01']);
  assert.equal(result.journaled, 5);
});

test('orders: sent twice, sent without a journal record, and left working are each found', () => {
  const order = (orderRef: string, status = 'Filled'): BrokerOrder => ({ orderId: 1, orderRef, symbol: 'SPY', status });
  const recorded = (ref: string): OrderRecord => ({ type: 'order', at: 0, ref, symbol: 'SPY', quantity: 100, orderType: 'LMT', limitPrice: 580, reason: 'test' });
  const broker = [order('soak.1'), order('soak.2', 'Cancelled'), order('soak.2', 'Submitted'), order('soak.3'), order('other.1', 'Submitted')];
  const result = compareOrders(broker, [recorded('soak.1'), recorded('soak.2')], 'soak.');
  assert.deepEqual(result, { atBroker: 4, sentTwice: ['soak.2'], unrecorded: ['soak.3'], leftWorking: ['soak.2 (SPY, Submitted)'] });
  assert.deepEqual(compareOrders([order('soak.1')], [recorded('soak.1')], 'soak.'), { atBroker: 1, sentTwice: [], unrecorded: [], leftWorking: [] });
});

const gate = (at: number, to: string, by = 'gate', reason = 'why'): GateRecord => ({ type: 'gate', at, from: to === 'HALTED' ? 'ACTIVE' : 'HALTED', to, reason, by });

test('a halting fault must halt first by its own source and end ACTIVE; what happened outside its window does not count', () => {
  const window = { kind: 'drop' as const, startedAt: 100, endedAt: 200 };
  const good = judgeFault(window, [gate(50, 'HALTED', 'feature_health'), gate(110, 'HALTED', 'ib'), gate(150, 'ACTIVE'), gate(250, 'HALTED', 'redis')]);
  assert.deepEqual(good, { ok: true, observed: 'HALTED by ib -> ACTIVE' });

  const relapse = judgeFault({ ...window, kind: 'nan-burst' }, [gate(110, 'HALTED', 'feature_health'), gate(130, 'ACTIVE'), gate(140, 'HALTED', 'feature_health'), gate(170, 'ACTIVE')]);
  assert.equal(relapse.ok, true);
  assert.equal(relapse.observed, 'HALTED by feature_health -> ACTIVE -> HALTED by feature_health -> ACTIVE');

  const wrongSource = judgeFault(window, [gate(110, 'HALTED', 'feature_health', 'SPY market data is 2.1 s old'), gate(150, 'ACTIVE')]);
  assert.equal(wrongSource.ok, false);
  assert.equal(wrongSource.problem, 'expected HALTED by ib, the first halt was by feature_health: SPY market data is 2.1 s old');

  assert.equal(judgeFault(window, []).problem, 'expected HALTED by ib, the gate never halted');
  assert.equal(judgeFault({ ...window, endedAt: undefined }, [gate(110, 'HALTED', 'ib')]).problem, 'the gate did not come back to ACTIVE');
});

test('a fault that must not stop trading fails if the gate halted, or was not seen ACTIVE after it', () => {
  const window = { kind: 'duplicate-executions' as const, startedAt: 100, endedAt: 200 };
  assert.deepEqual(judgeFault(window, [gate(90, 'HALTED', 'ib')]), { ok: true, observed: 'ACTIVE throughout' });
  const halted = judgeFault({ ...window, kind: 'daemon-kill' }, [gate(120, 'HALTED', 'paper_trader', 'reconciliation: SPY: the journal holds 100 shares, the broker 200')]);
  assert.equal(halted.ok, false);
  assert.equal(halted.problem, 'trading must go on, but the gate halted by paper_trader: reconciliation: SPY: the journal holds 100 shares, the broker 200');
  assert.equal(judgeFault({ ...window, endedAt: undefined }, []).problem, 'the gate was not seen ACTIVE afterwards');
});

const MB = 1_048_576;
const readings = (rssMb: readonly number[], everyMs = 5_000): MemorySample[] => rssMb.map((rss, i) => ({ at: i * everyMs, rssBytes: rss * MB, heapUsedBytes: 30 * MB }));

test('memory: a peak that holds passes, a peak that keeps rising fails, low readings after a collection do not count, a short life is not judged', () => {
  const limits = { minWindowMs: 60_000, maxGrowth: 0.15 };
  const flat = judgeMemory(readings([160, 175, 150, 180, 165, 170, 185, 160, 172, 181, 150, 178, 184]), limits);
  assert.equal(flat.judged, true);
  assert.equal(flat.windowMs, 60_000);
  assert.deepEqual([flat.earlyPeakRss, flat.latePeakRss], [180 * MB, 185 * MB]);
  assert.equal(flat.ok, true);

  const leaking = judgeMemory(readings([160, 161, 162, 175, 190, 205, 220, 235, 250, 265, 280, 295, 310]), limits);
  assert.equal(leaking.judged, true);
  assert.equal(leaking.ok, false);
  assert.deepEqual([leaking.earlyPeakRss, leaking.latePeakRss], [205 * MB, 310 * MB]);

  // A collection handed memory back in the first half: the peak, not the dip, is the baseline.
  const dip = judgeMemory(readings([200, 120, 125, 130, 135, 140, 200, 198, 201, 199, 202, 200, 203]), limits);
  assert.equal(dip.ok, true);

  const short = judgeMemory(readings([160, 200, 240, 280]), limits);
  assert.deepEqual([short.judged, short.ok], [false, false]);
  assert.equal(judgeMemory([], limits).judged, false);
});

test('account: fills and settlements summed per symbol against the broker; an exercise the journal missed is found', () => {
  const call = 'SPY   261207C00580000';
  const option = { conId: 1, underlying: 'SPY', expiry: '20261207', strike: 580, right: 'C' as const, multiplier: 100 };
  const journal: LedgerRecord[] = [
    { type: 'order', at: 0, ref: 'soak.o1', symbol: call, option, quantity: 2, orderType: 'LMT', limitPrice: 1, reason: 'test' },
    { ...fill('o1', 2, 1), ref: 'soak.o1', symbol: call },
    fill('s1', -100),
    { type: 'option.settlement', at: 0, symbol: call, outcome: 'exercised', contracts: 2, shares: 200, reason: 'test' },
  ];
  assert.deepEqual(compareAccounts({ SPY: 100 }, journal), { differ: [], optionFills: 1, settlements: 'exercised 1', settled: 1, heldAtExpiry: 0 });
  assert.equal(compareAccounts({ SPY: 100 }, journal, '20261207').heldAtExpiry, 2, 'two calls held into their close');
  assert.equal(compareAccounts({ SPY: 100 }, journal, '20261204').heldAtExpiry, 0, 'an expiry after the close crossed is not held into it');
  assert.deepEqual(compareAccounts({ SPY: -100, [call]: 2 }, journal.slice(0, 3)).differ, []);
  assert.deepEqual(compareAccounts({ SPY: 100 }, journal.slice(0, 3)).differ, [`SPY: journal -100, broker 100`, `${call}: journal 2, broker 0`]);
});
