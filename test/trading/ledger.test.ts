/** The ledger's arithmetic, and that a replay of its journal rebuilds it exactly. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { replayProblem } from '../../src/journal/examine.js';
import { FileJournal } from '../../src/journal/file-journal.js';
import type { LedgerRecord } from '../../src/journal/records.js';
import { Ledger } from '../../src/trading/ledger.js';
import { OptionOrderCost, optionCommissionSchedule } from '../../src/trading/option-commissions.js';
import { Position } from '../../src/trading/portfolio.js';

const dir = mkdtempSync(join(tmpdir(), 'keel-ledger-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('a position realizes against its average price, flips at the fill price, and keeps fees apart', () => {
  const p = new Position('SPY');
  assert.equal(p.fill(100, 10, 1), 0);
  assert.equal(p.fill(100, 12, 1), 0);
  assert.equal(p.averagePrice, 11);
  assert.equal(p.fill(-150, 13, 1), 300); // 150 closed at +2
  assert.equal(p.quantity, 50);
  assert.equal(p.averagePrice, 11);
  assert.equal(p.fill(-100, 9, 1), -100); // 50 closed at -2, 50 opened short
  assert.equal(p.quantity, -50);
  assert.equal(p.averagePrice, 9, 'the flipped side opened at the fill price');
  assert.equal(p.realizedPnl, 200);
  assert.equal(p.fees, 4);
  p.mark = 8;
  assert.equal(p.unrealizedPnl(), 50);
});

const at = 1_700_000_000_000;
const RECORDS: LedgerRecord[] = [
  { type: 'order', at, ref: 'k.1', symbol: 'SPY', quantity: 300, orderType: 'LMT', limitPrice: 100.05, reason: 'test' },
  { type: 'order.status', at, ref: 'k.1', state: 'working', permId: 7 },
  { type: 'fill', at, ref: 'k.1', execId: 'e1', symbol: 'SPY', quantity: 200, price: 100.01, commission: 0 },
  { type: 'commission', at, execId: 'e1', commission: 1 },
  { type: 'fill', at, ref: 'k.1', execId: 'e1', symbol: 'SPY', quantity: 200, price: 100.01, commission: 0 },
  { type: 'fill', at, ref: 'k.1', execId: 'e2', symbol: 'SPY', quantity: 100, price: 100.04, commission: 0.5 },
  { type: 'order', at, ref: 'k.2', symbol: 'SPY', quantity: -300, orderType: 'LMT', limitPrice: 100.2, reason: 'test' },
  { type: 'fill', at, ref: 'k.2', execId: 'e3', symbol: 'SPY', quantity: -100, price: 100.2, commission: 1 },
  { type: 'order.status', at, ref: 'k.2', state: 'cancelled', reason: 'by request' },
  { type: 'order.status', at, ref: 'k.2', state: 'working', reason: 'late news' },
  { type: 'commission', at, execId: 'unknown', commission: 5 },
  { type: 'gate', at, from: 'ACTIVE', to: 'HALTED', reason: 'test', by: 'operator' },
];

test('the ledger books fills once per execId, ignores late news after the end, and a replay equals it', async () => {
  const path = join(dir, 'replay.journal');
  const { journal } = await FileJournal.open(path);
  const live = new Ledger(journal, 1_000_000);
  for (const r of RECORDS) await live.record(r);
  await journal.close();

  assert.equal(live.fills.size, 3, 'e1 reported twice, booked once');
  assert.equal(live.order('k.1')!.state, 'filled');
  assert.ok(Math.abs(live.order('k.1')!.averageFillPrice - (200 * 100.01 + 100 * 100.04) / 300) < 1e-9);
  assert.equal(live.order('k.2')!.state, 'cancelled', 'a Submitted trailing the cancel moves nothing');
  assert.equal(live.order('k.2')!.filled, -100);
  assert.equal(live.positions.get('SPY')!.quantity, 200);
  const spent = 200 * 100.01 + 100 * 100.04 - 100 * 100.2 + 1 + 0.5 + 1;
  assert.ok(Math.abs(live.cash - (1_000_000 - spent)) < 1e-9, 'a commission for an unknown execution charges nothing');
  live.position('SPY').mark = 100.1;
  const view = live.view(at);
  assert.ok(Math.abs(view.cash + 200 * 100.1 - (1_000_000 + view.realizedPnl + view.unrealizedPnl - view.fees)) < 1e-6, 'cash + holdings = start + P&L - fees');

  const reopened = await FileJournal.open(path);
  const replayed = new Ledger(reopened.journal, 1_000_000);
  replayed.replay(reopened.entries);
  await reopened.journal.close();
  replayed.position('SPY').mark = 100.1;
  assert.deepEqual(replayed.view(at), view);
  assert.deepEqual([...replayed.orders.values()], [...live.orders.values()]);
});

test('an option books 100 shares a contract: cash, realized and unrealized P&L, exposure, and a replay equals it', async () => {
  const path = join(dir, 'options.journal');
  const { journal } = await FileJournal.open(path);
  const live = new Ledger(journal, 100_000);
  const call = 'SPY   260105C00580000';
  const option = { conId: 7001, underlying: 'SPY', expiry: '20260105', strike: 580, right: 'C' as const, multiplier: 100 };
  const records: LedgerRecord[] = [
    { type: 'order', at, ref: 'o.1', symbol: call, option, quantity: 3, orderType: 'LMT', limitPrice: 1.25, reason: 'test' },
    { type: 'fill', at, ref: 'o.1', execId: 'x1', symbol: call, quantity: 3, price: 1.25, commission: 1.95 },
    { type: 'order', at, ref: 'o.2', symbol: call, option, quantity: -2, orderType: 'LMT', limitPrice: 1.6, reason: 'test' },
    { type: 'fill', at, ref: 'o.2', execId: 'x2', symbol: call, quantity: -2, price: 1.6, commission: 1.3 },
    // SPY shares beside the option: the same underlying, another position.
    { type: 'order', at, ref: 's.1', symbol: 'SPY', quantity: 10, orderType: 'LMT', limitPrice: 580, reason: 'test' },
    { type: 'fill', at, ref: 's.1', execId: 'x3', symbol: 'SPY', quantity: 10, price: 580, commission: 1 },
  ];
  for (const r of records) await live.record(r);
  await journal.close();

  const p = live.positions.get(call)!;
  assert.equal(p.multiplier, 100);
  assert.equal(p.quantity, 1);
  assert.equal(p.averagePrice, 1.25);
  assert.ok(Math.abs(p.realizedPnl - 2 * (1.6 - 1.25) * 100) < 1e-9, `realized ${p.realizedPnl}: 2 contracts closed 0.35 higher`);
  assert.equal(live.positions.get('SPY')!.quantity, 10);
  assert.equal(live.positions.get('SPY')!.multiplier, 1);
  // 3 × 125 paid, 2 × 160 received, 10 shares at 580, fees 1.95 + 1.30 + 1.
  assert.ok(Math.abs(live.cash - (100_000 - 375 + 320 - 5_800 - 4.25)) < 1e-9, `cash ${live.cash}`);
  p.mark = 1.4;
  assert.ok(Math.abs(p.unrealizedPnl() - 15) < 1e-9, 'one contract 0.15 up');
  assert.ok(Math.abs(p.exposure() - 140) < 1e-9);
  const view = live.view(at);
  assert.equal(view.positions.find((v) => v.symbol === call)!.multiplier, 100);
  live.position('SPY').mark = 580;
  const after = live.view(at);
  assert.ok(Math.abs(after.cash + 140 + 5_800 - (100_000 + after.realizedPnl + after.unrealizedPnl - after.fees)) < 1e-9, 'cash + holdings = start + P&L - fees');

  const reopened = await FileJournal.open(path);
  const replayed = new Ledger(reopened.journal, 100_000);
  replayed.replay(reopened.entries);
  await reopened.journal.close();
  assert.deepEqual(replayed.options.get(call), option);
  replayed.position(call).mark = 1.4;
  replayed.position('SPY').mark = 580;
  assert.deepEqual(replayed.view(at), after);
});

test('a vertical as one combo: each leg booked as its own position at its own price, commission per leg, once; a replay equals it', async () => {
  const path = join(dir, 'combo.journal');
  const { journal } = await FileJournal.open(path);
  const live = new Ledger(journal, 100_000);
  const c580 = 'SPY   260105C00580000';
  const c585 = 'SPY   260105C00585000';
  const legs = [
    { symbol: c580, option: { conId: 7001, underlying: 'SPY', expiry: '20260105', strike: 580, right: 'C' as const, multiplier: 100 }, ratio: 1, price: 1.25 },
    { symbol: c585, option: { conId: 7002, underlying: 'SPY', expiry: '20260105', strike: 585, right: 'C' as const, multiplier: 100 }, ratio: -1, price: 0.4 },
  ];
  const name = 'SPY +1 20260105 580C -1 20260105 585C';
  // Each leg pays IBKR's default schedule as an order of its own.
  const cost = (contracts: number, premium: number) => new OptionOrderCost(optionCommissionSchedule.parse({})).fill(contracts, premium, 100);
  // Bought: 2 × 0.65 = 1.30 (over the $1 minimum) + 2 × (0.02685 + 0.02) = 1.39; sold: the same + TAF 2 × 0.00279 + SEC 80 × 0.000008 = 1.40.
  assert.deepEqual([cost(2, 1.25), cost(-2, 0.4), cost(-2, 1.5), cost(2, 0.5)], [1.39, 1.4, 1.4, 1.39]);
  await live.record({ type: 'order', at, ref: 'v.1', symbol: name, legs, quantity: 2, orderType: 'LMT', limitPrice: 0.85, reason: 'test: buy the vertical' });
  await live.record({ type: 'fill', at, ref: 'v.1', execId: 'v1.1', symbol: c580, quantity: 2, price: 1.25, commission: 1.39 });
  assert.equal(live.order('v.1')!.filled, 0, 'one leg filled is no combo yet');
  assert.equal(live.workingQuantity(c585), -2);
  await assert.rejects(live.record({ type: 'fill', at, ref: 'v.1', execId: 'v1.x', symbol: 'SPY   260105C00590000', quantity: 2, price: 0.1, commission: 0 }), /is not one of the combo's legs/);
  await assert.rejects(live.record({ type: 'fill', at, ref: 'v.1', execId: 'v1.y', symbol: c585, quantity: 2, price: 0.4, commission: 0 }), /a buy of 2 for order v\.1, a sell of SPY {3}260105C00585000/);
  await live.record({ type: 'fill', at, ref: 'v.1', execId: 'v1.2', symbol: c585, quantity: -2, price: 0.4, commission: 1.4 });
  await live.record({ type: 'fill', at, ref: 'v.1', execId: 'v1.2', symbol: c585, quantity: -2, price: 0.4, commission: 1.4 });
  assert.equal(live.order('v.1')!.state, 'filled');
  assert.equal(live.order('v.1')!.filled, 2);
  assert.ok(Math.abs(live.order('v.1')!.averageFillPrice - 0.85) < 1e-9, 'the net paid a share');
  assert.deepEqual([live.positions.get(c580)!.quantity, live.positions.get(c585)!.quantity], [2, -2]);
  assert.equal(live.positions.get(name), undefined, 'the combo is no position of its own');
  // 250 paid for the 580s, 80 received for the 585s, 1.39 + 1.40 in fees.
  assert.equal(Math.round(live.cash * 100), Math.round((100_000 - 250 + 80 - 1.39 - 1.4) * 100));
  assert.equal(Math.round(live.cash * 100), 9_982_721);

  // Sold back as one combo for a credit of 1.50 - 0.50 = 1.00.
  await live.record({ type: 'order', at, ref: 'v.2', symbol: name, legs: legs.map((l, i) => ({ ...l, price: [1.5, 0.5][i]! })), quantity: -2, orderType: 'LMT', limitPrice: 1, reason: 'test: sell it back' });
  await live.record({ type: 'fill', at, ref: 'v.2', execId: 'v2.1', symbol: c580, quantity: -2, price: 1.5, commission: 1.4 });
  await live.record({ type: 'fill', at, ref: 'v.2', execId: 'v2.2', symbol: c585, quantity: 2, price: 0.5, commission: 1.39 });
  await journal.close();
  assert.equal(live.order('v.2')!.state, 'filled');
  assert.equal(live.order('v.2')!.filled, -2);
  const [p580, p585] = [live.positions.get(c580)!, live.positions.get(c585)!];
  assert.deepEqual([p580.quantity, p585.quantity], [0, 0]);
  assert.ok(Math.abs(p580.realizedPnl - 50) < 1e-9, '2 × 100 × (1.50 - 1.25)');
  assert.ok(Math.abs(p585.realizedPnl - -20) < 1e-9, '2 × 100 × (0.40 - 0.50)');
  // + 300 for the 580s, - 100 for the 585s, 1.40 + 1.39 in fees.
  assert.equal(Math.round(live.cash * 100), 10_002_442);
  assert.equal(live.fills.size, 4);

  const reopened = await FileJournal.open(path);
  const replayed = new Ledger(reopened.journal, 100_000);
  replayed.replay(reopened.entries);
  await reopened.journal.close();
  assert.deepEqual(replayed.view(at), live.view(at));
  assert.deepEqual([...replayed.orders.values()], [...live.orders.values()]);
  assert.deepEqual(replayed.options.get(c585), legs[1]!.option);
});

test("the journal's examiner reads a combo's net limit as a price even when it is a credit; a single order's must still be positive", () => {
  const legs = [{ symbol: 'SPY   260105C00580000', option: { conId: 1, underlying: 'SPY', expiry: '20260105', strike: 580, right: 'C' as const, multiplier: 100 }, ratio: -1, price: 1.2 }];
  const credit: LedgerRecord = { type: 'order', at, ref: 'c.1', symbol: 'SPY -1 20260105 580C +1 20260105 585C', legs, quantity: 1, orderType: 'LMT', limitPrice: -0.75, reason: 'test' };
  assert.equal(replayProblem(credit), undefined);
  assert.equal(replayProblem({ ...credit, limitPrice: NaN }), 'limitPrice NaN');
  assert.equal(replayProblem({ ...credit, legs: undefined }), 'limitPrice -0.75');
});
