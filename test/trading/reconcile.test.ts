/**
 * Reconciling while the account moves: the broker's positions and the
 * journal are read at different moments, so a fill between the two must not
 * read as a mismatch, while a real mismatch still does.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { systemClock } from '../../src/clock.js';
import { FileJournal } from '../../src/journal/file-journal.js';
import type { BrokerSnapshot } from '../../src/trading/ib-venue.js';
import { Ledger } from '../../src/trading/ledger.js';
import { reconcileWhenQuiet } from '../../src/trading/reconcile.js';

const dir = mkdtempSync(join(tmpdir(), 'keel-reconcile-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const at = 1_700_000_000_000;
let journals = 0;

/** A ledger with one sell of 100 SPY working at the broker, 41 of it filled. */
async function sellingLedger(): Promise<{ ledger: Ledger; close: () => Promise<void> }> {
  const { journal } = await FileJournal.open(join(dir, `${journals++}.journal`));
  const ledger = new Ledger(journal, 1_000_000);
  await ledger.record({ type: 'order', at, ref: 'k.1', symbol: 'SPY', quantity: -100, orderType: 'LMT', limitPrice: 500, reason: 'test' });
  await ledger.record({ type: 'order.status', at, ref: 'k.1', state: 'working', permId: 7 });
  await ledger.record({ type: 'fill', at, ref: 'k.1', execId: 'e1', symbol: 'SPY', quantity: -41, price: 500, commission: 0 });
  return { ledger, close: () => journal.close() };
}

const working = { orderId: 1, ref: 'k.1', permId: 7, status: 'Submitted', symbol: 'SPY' };
const report = (spy: number, open: BrokerSnapshot['openOrders']): BrokerSnapshot => ({ openOrders: open, positions: new Map([['SPY', spy]]), executions: 0 });

test('a fill that lands between the broker report and the journal is asked again, and then agrees', async () => {
  const { ledger, close } = await sellingLedger();
  const reports = [report(-41, [working]), report(-100, [])];
  let settles = 0;
  const result = await reconcileWhenQuiet({
    ledger,
    clock: systemClock,
    snapshot: async () => reports.shift()!,
    // The rest of the order fills after the broker's positions ended, before the journal is read.
    settled: async () => {
      if (settles++ === 0) await ledger.record({ type: 'fill', at, ref: 'k.1', execId: 'e2', symbol: 'SPY', quantity: -59, price: 500, commission: 0 });
    },
    overlapMs: 0,
    attempts: 3,
    retryMs: 0,
  });
  await close();
  assert.deepEqual(result.mismatches, []);
  assert.equal(result.attempts, 2);
  assert.equal(reports.length, 0);
});

test('a mismatch while nothing moves counts at once; one that outlasts every attempt counts at the last', async () => {
  const still = await sellingLedger();
  let asked = 0;
  const quiet = await reconcileWhenQuiet({
    ledger: still.ledger,
    clock: systemClock,
    snapshot: async () => (asked++, report(-23, [])),
    settled: async () => {},
    overlapMs: 0,
    attempts: 3,
    retryMs: 0,
  });
  await still.close();
  assert.deepEqual(quiet.mismatches, ['SPY: the journal holds -41 shares, the broker -23']);
  assert.equal(asked, 1, 'nothing worked at the broker and no fill came: no second look');
  assert.equal(quiet.records.length, 1, 'the order the broker no longer lists is closed');

  const busy = await sellingLedger();
  asked = 0;
  const moving = await reconcileWhenQuiet({
    ledger: busy.ledger,
    clock: systemClock,
    snapshot: async () => (asked++, report(-23, [working])),
    settled: async () => {},
    overlapMs: 0,
    attempts: 3,
    retryMs: 0,
  });
  await busy.close();
  assert.deepEqual(moving.mismatches, ['SPY: the journal holds -41 shares, the broker -23']);
  assert.equal(asked, 3);
  assert.equal(moving.attempts, 3);
});
