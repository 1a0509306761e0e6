/**
 * Zero data loss, the hard way: the daemon runs as a child process, trading
 * through the unmodified IB client on the simulator (which lives in this test
 * process, so the broker outlives the daemon), and is SIGKILLed mid-stream.
 *
 * After the kill, the journal file is read and summed here by plain
 * arithmetic. The restarted daemon must replay exactly that (orders,
 * positions, cash, P&L), reconcile with the broker, and go on trading; at
 * the end every execution the broker made for keel is in the journal exactly
 * once, the cash equals the broker's, no order went to the broker twice and
 * no IB order id was used twice.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { FileJournal } from '../../src/journal/file-journal.js';
import type { FillRecord, JournalEntry, OrderRecord } from '../../src/journal/records.js';
import { TwsSimulator } from '../../src/sim/server.js';
import { until } from '../support/ib-client.js';
import { writeTradingDaemonConfig } from '../support/daemon-config.js';
import { runKeel, type Running } from '../support/process.js';

const dir = mkdtempSync(join(tmpdir(), 'keel-crash-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const ACCOUNT = 'DU1234567';

function config(port: number): string {
  return writeTradingDaemonConfig({
    dir,
    instance: 'crash',
    port,
    symbols: ['SPY', 'QQQ'],
    riskGate: 'limits: { maxPosition: 1000, maxOrdersPerSecond: 20, collarBps: 100 }',
    paperTrader: `replaceAfterMs: 400
policy: { entryBps: 0.5, exitBps: 0.2, shares: 100, minHoldMs: 0, maxSpreadBps: 50 }`,
  });
}

/** The journal, summed by hand: what had counted when the daemon died. */
function sum(entries: readonly JournalEntry[]) {
  const fills = new Map<string, FillRecord>();
  const commissions = new Map<string, number>();
  const orders: OrderRecord[] = [];
  for (const { record } of entries) {
    if (record.type === 'order') orders.push(record);
    if (record.type === 'fill' && !fills.has(record.execId)) fills.set(record.execId, record);
    if (record.type === 'commission') commissions.set(record.execId, record.commission);
  }
  const positions: Record<string, number> = {};
  let cash = 1_000_000;
  for (const f of fills.values()) {
    positions[f.symbol] = (positions[f.symbol] ?? 0) + f.quantity;
    cash -= f.quantity * f.price + (commissions.get(f.execId) ?? f.commission);
  }
  return { records: entries.length, orders, fills, positions, cash };
}

async function readJournal() {
  const opened = await FileJournal.open(join(dir, 'journal.keel'));
  await opened.journal.close();
  return sum(opened.entries);
}

function replayLine(keel: Running): Record<string, unknown> {
  const line = keel.stdout.find((l) => l.includes('journal replayed'));
  assert.ok(line, 'the daemon logs what it replayed');
  return JSON.parse(line) as Record<string, unknown>;
}

const ours = (sim: TwsSimulator) => sim.broker.executions.filter((e) => e.orderRef?.startsWith('crash.'));

test('SIGKILL mid-stream: the restart replays exactly what the journal acknowledged, reconciles, and nothing is lost, doubled or reused', { timeout: 120_000 }, async () => {
  const sim = new TwsSimulator({ updatesPerSecond: 50, seed: 5 });
  const port = await sim.listen(0);
  const path = config(port);
  try {
    const first = runKeel(['run', '--config', path]);
    await first.waitFor('paper trader running');
    await until(() => ours(sim).length >= 12, 'a dozen fills at the broker', 20_000).catch((e: unknown) => {
      console.log(first.stdout.slice(-40).join('\n'), first.stderr.join('\n'));
      throw e;
    });
    first.child.kill('SIGKILL');
    await first.exited;

    const acknowledged = await readJournal();
    assert.ok(acknowledged.fills.size > 0, 'fills were journaled before the kill');

    const second = runKeel(['run', '--config', path]);
    await second.waitFor('paper trader running');
    const replayed = replayLine(second);
    assert.equal(replayed.records, acknowledged.records);
    assert.equal(replayed.fills, acknowledged.fills.size);
    const nonzero = (p: Record<string, number>) => Object.fromEntries(Object.entries(p).filter(([, q]) => q !== 0));
    assert.deepEqual(nonzero(replayed.positions as Record<string, number>), nonzero(acknowledged.positions));
    assert.ok(Math.abs((replayed.cash as number) - acknowledged.cash) < 1e-6, `cash replayed ${String(replayed.cash)}, journal ${acknowledged.cash}`);
    await second.waitFor('reconciled with the broker');

    // Trade on for a while, then stop cleanly: the stop cancels every working order.
    const before = ours(sim).length;
    await until(() => ours(sim).length >= before + 6, 'more fills after the restart', 60_000);
    second.child.kill('SIGTERM');
    assert.equal(await second.exited, 0, second.stderr.join('\n'));
    assert.equal(
      sim.broker.workingOrders().filter((o) => o.orderRef?.startsWith('crash.')).length,
      0,
      'no order of ours left working at the broker',
    );

    const final = await readJournal();
    const atBroker = ours(sim);
    assert.deepEqual([...final.fills.keys()].sort(), atBroker.map((e) => e.execId).sort(), 'every execution at the broker is in the journal exactly once');
    const account = sim.broker.accounts.get(ACCOUNT)!;
    assert.ok(Math.abs(final.cash - account.cash) < 1e-6, `cash: journal ${final.cash}, broker ${account.cash}`);
    for (const symbol of ['SPY', 'QQQ']) assert.equal(final.positions[symbol] ?? 0, sim.broker.positionOf(ACCOUNT, symbol)?.position ?? 0, symbol);

    const refs = sim.broker.allOrders().map((o) => o.orderRef);
    assert.equal(new Set(refs).size, refs.length, 'no order reached the broker twice');
    const ids = final.orders.map((o) => o.brokerOrderId);
    assert.equal(new Set(ids).size, ids.length, 'no IB order id used twice');
    const firstSessionIds = acknowledged.orders.map((o) => o.brokerOrderId!);
    const secondSessionIds = final.orders.slice(acknowledged.orders.length).map((o) => o.brokerOrderId!);
    assert.ok(secondSessionIds.length > 0 && Math.min(...secondSessionIds) > Math.max(...firstSessionIds), 'the restart took ids above every earlier one');
  } finally {
    await sim.close();
  }
});
