/** The ledger's arithmetic, and that a replay of its journal rebuilds it exactly. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { FileJournal } from '../../src/journal/file-journal.js';
import type { LedgerRecord } from '../../src/journal/records.js';
import { Ledger } from '../../src/trading/ledger.js';
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
