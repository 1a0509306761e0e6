/**
 * Expiry, exercise and assignment booked in the ledger, with cash and
 * positions hand-computed: long calls and puts a cent either side of the
 * money, a short put assigned, a vertical with one leg in the money, a
 * contrary instruction; and a replay of the journal equals the live ledger.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { FileJournal } from '../../src/journal/file-journal.js';
import type { LedgerRecord, OptionContract } from '../../src/journal/records.js';
import { centsInTheMoney, settleExpiry } from '../../src/options/settlement.js';
import { Ledger } from '../../src/trading/ledger.js';

const dir = mkdtempSync(join(tmpdir(), 'keel-settle-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const at = Date.UTC(2026, 0, 5, 21, 0);
const EXPIRY = '20260105';

function option(strike: number, right: 'C' | 'P', expiry = EXPIRY): { symbol: string; contract: OptionContract } {
  const symbol = `SPY   ${expiry.slice(2)}${right}${String(strike * 1000).padStart(8, '0')}`;
  return { symbol, contract: { conId: strike * 10 + (right === 'C' ? 1 : 2), underlying: 'SPY', expiry, strike, right, multiplier: 100 } };
}

let n = 0;
/** An order for `quantity` contracts and its whole fill at `price`, no fees: the premium is all that moves. */
function trade(o: ReturnType<typeof option>, quantity: number, price: number): LedgerRecord[] {
  const ref = `o.${++n}`;
  return [
    { type: 'order', at, ref, symbol: o.symbol, option: o.contract, quantity, orderType: 'LMT', limitPrice: price, reason: 'test' },
    { type: 'fill', at, ref, execId: `x.${n}`, symbol: o.symbol, quantity, price, commission: 0 },
  ];
}

async function settled(name: string, trades: LedgerRecord[], close: number, doNotExercise?: Set<string>) {
  const path = join(dir, `${name}.journal`);
  const { journal } = await FileJournal.open(path);
  const ledger = new Ledger(journal, 100_000);
  for (const r of trades) await ledger.record(r);
  const positions = new Map([...ledger.positions].filter(([s]) => ledger.options.has(s)).map(([s, p]) => [s, p.quantity]));
  const records = settleExpiry({ positions, contracts: ledger.options, expiry: EXPIRY, closes: new Map([['SPY', close]]), doNotExercise, at });
  for (const r of records) await ledger.record(r);
  await journal.close();
  const reopened = await FileJournal.open(path);
  const replayed = new Ledger(reopened.journal, 100_000);
  replayed.replay(reopened.entries);
  await reopened.journal.close();
  assert.deepEqual(replayed.view(at), ledger.view(at), 'the replay books the settlement exactly as live');
  return { ledger, records };
}

test('moneyness in whole cents: a cent in is in, at the strike is not', () => {
  const call = option(580, 'C').contract;
  const put = option(580, 'P').contract;
  assert.equal(centsInTheMoney(call, 580.01), 1);
  assert.equal(580.01 - 580 >= 0.01, false, 'the float alone would say no');
  assert.equal(centsInTheMoney(call, 580), 0);
  assert.equal(centsInTheMoney(put, 579.99), 1);
  assert.equal(centsInTheMoney(put, 580.01), -1);
});

test('a long call a cent in the money is exercised: 100 shares a contract bought at the strike; a cent out expires', async () => {
  const call = option(580, 'C');
  const { ledger, records } = await settled('call-in', trade(call, 2, 1.25), 580.01);
  assert.deepEqual(records.map((r) => [r.outcome, r.shares]), [['exercised', 200]]);
  assert.equal(ledger.positions.get(call.symbol)!.quantity, 0);
  assert.equal(ledger.positions.get('SPY')!.quantity, 200);
  assert.equal(ledger.positions.get('SPY')!.averagePrice, 580);
  // 250 premium paid, 116,000 for the shares.
  assert.equal(ledger.cash, 100_000 - 250 - 116_000);
  assert.equal(ledger.positions.get(call.symbol)!.realizedPnl, -250, 'the premium, realized as paid');

  const out = await settled('call-out', trade(call, 2, 1.25), 579.99);
  assert.deepEqual(out.records.map((r) => [r.outcome, r.shares]), [['expired', 0]]);
  assert.equal(out.ledger.positions.get('SPY'), undefined);
  assert.equal(out.ledger.cash, 100_000 - 250);
  assert.match(out.records[0]!.reason, /^0\.01 out of the money at 579\.99: expired worthless$/);
});

test('a long put a cent in the money sells 100 shares a contract at the strike; a cent out expires', async () => {
  const put = option(575, 'P');
  const { ledger, records } = await settled('put-in', trade(put, 1, 0.8), 574.99);
  assert.deepEqual(records.map((r) => [r.outcome, r.shares]), [['exercised', -100]]);
  assert.equal(ledger.positions.get('SPY')!.quantity, -100);
  assert.equal(ledger.cash, 100_000 - 80 + 57_500);
  const out = await settled('put-out', trade(put, 1, 0.8), 575.01);
  assert.deepEqual(out.records.map((r) => r.outcome), ['expired']);
  assert.equal(out.ledger.cash, 100_000 - 80);
});

test('a short put in the money is assigned: the writer buys the shares at the strike and keeps the premium', async () => {
  const put = option(578, 'P');
  const { ledger, records } = await settled('short-put', trade(put, -3, 1.1), 576.5);
  assert.deepEqual(records.map((r) => [r.outcome, r.contracts, r.shares]), [['assigned', -3, 300]]);
  assert.equal(ledger.positions.get(put.symbol)!.quantity, 0);
  assert.equal(ledger.positions.get(put.symbol)!.realizedPnl, 330, 'the premium received, realized');
  assert.equal(ledger.positions.get('SPY')!.quantity, 300);
  assert.equal(ledger.cash, 100_000 + 330 - 173_400);
  ledger.position('SPY').mark = 576.5;
  // Economically: 3 × (1.10 − 1.50) × 100 = −120.
  assert.ok(Math.abs(ledger.netPnl() - -120) < 1e-9, `net ${ledger.netPnl()}`);
});

test('a call vertical with one leg in the money: the long leg exercised, the short leg expires; a contrary instruction lets a long one expire', async () => {
  const long = option(580, 'C');
  const short = option(582, 'C');
  const { ledger, records } = await settled('vertical', [...trade(long, 1, 1.5), ...trade(short, -1, 0.6)], 581.2);
  assert.deepEqual(records.map((r) => [r.symbol, r.outcome, r.shares]), [[long.symbol, 'exercised', 100], [short.symbol, 'expired', 0]]);
  assert.equal(ledger.cash, 100_000 - 150 + 60 - 58_000);
  ledger.position('SPY').mark = 581.2;
  assert.ok(Math.abs(ledger.netPnl() - (120 - 90)) < 1e-9, 'worth 1.20 at the close, paid 0.90 net');

  const kept = await settled('instructed', trade(long, 1, 1.5), 581.2, new Set([long.symbol]));
  assert.deepEqual(kept.records.map((r) => r.outcome), ['expired']);
  assert.match(kept.records[0]!.reason, /not exercised by instruction/);
  assert.equal(kept.ledger.positions.get('SPY'), undefined);
});

test("another expiry's options and closed positions are left alone; a missing closing price is an error naming the underlying", () => {
  const today = option(580, 'C');
  const tomorrow = option(580, 'C', '20260106');
  const contracts = new Map([[today.symbol, today.contract], [tomorrow.symbol, tomorrow.contract]]);
  const records = settleExpiry({ positions: new Map([[today.symbol, 0], [tomorrow.symbol, 1]]), contracts, expiry: EXPIRY, closes: new Map([['SPY', 590]]), at });
  assert.deepEqual(records, []);
  assert.throws(() => settleExpiry({ positions: new Map([[today.symbol, 1]]), contracts, expiry: EXPIRY, closes: new Map(), at }), /cannot settle SPY {3}260105C00580000: no closing price for SPY/);
});

test('a settlement journaled twice (a crash between deciding and knowing it was durable) books once', async () => {
  const call = option(580, 'C');
  const { journal } = await FileJournal.open(join(dir, 'twice.journal'));
  const ledger = new Ledger(journal, 100_000);
  for (const r of trade(call, 1, 1)) await ledger.record(r);
  const [record] = settleExpiry({ positions: new Map([[call.symbol, 1]]), contracts: ledger.options, expiry: EXPIRY, closes: new Map([['SPY', 585]]), at });
  await ledger.record(record!);
  await ledger.record(record!);
  await journal.close();
  assert.equal(ledger.positions.get('SPY')!.quantity, 100);
  assert.equal(ledger.cash, 100_000 - 100 - 58_000);
});
