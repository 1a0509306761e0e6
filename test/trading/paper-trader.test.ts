/**
 * The paper trader in both modes on the simulator's live market. In `book`
 * mode its book venue fills against keel's L2 book. In `ib` mode it goes
 * through the unmodified IB client, with the simulator as the broker: partial fills, cancel and replace, a fill
 * that arrives before its order, duplicate execution reports, and a
 * disconnect while an order is open followed by reconciliation. The broker's
 * own account is the check: the journal's positions and cash must equal it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ibConnectionSettings } from '../../src/actors/ib-connection.js';
import { journalSettings } from '../../src/actors/journal.js';
import { l2MicrostructureSettings } from '../../src/actors/l2-microstructure.js';
import { paperTraderSettings } from '../../src/actors/paper-trader.js';
import { riskGateSettings } from '../../src/actors/risk-gate.js';
import { subscriptionsSettings } from '../../src/actors/subscriptions.js';
import { systemClock } from '../../src/clock.js';
import { TwsSimulator } from '../../src/sim/server.js';
import type { IbVenue } from '../../src/trading/ib-venue.js';



import { until } from '../support/ib-client.js';
import { startTree } from '../support/probe.js';
import { componentSpec } from '../../src/actors/registry.js';

const dir = mkdtempSync(join(tmpdir(), 'keel-ib-mode-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const ACCOUNT = 'DU1234567';

interface StartOptions {
  mode?: 'book' | 'ib';
  ackDelayMs?: number;
  reconnectMinMs?: number;
  /** A broker that outlives this tree (left open by stop), listening on `port`. */
  sim?: TwsSimulator;
  port?: number;
  onMismatch?: 'REDUCING' | 'HALTED';
}

async function start(name: string, options: StartOptions = {}) {
  const { mode = 'ib', reconnectMinMs = 50 } = options;
  const sim = options.sim ?? new TwsSimulator({ updatesPerSecond: 100, seed: 11, ackDelayMs: options.ackDelayMs });
  const port = options.port ?? (await sim.listen(0));
  const tree = startTree(
    {
      children: [
        componentSpec('journal', 'journal', { settings: journalSettings.parse({ path: join(dir, `${name}.journal`) }) }),
        componentSpec('ib_connection', 'ib_connection', { settings: ibConnectionSettings.parse({ port, reconnect: { minMs: reconnectMinMs, maxMs: reconnectMinMs * 2, randomFactor: 0.2, maxAttempts: 0 }, orderIdFile: join(dir, `${name}.ids`) }),
          dependsOn: ['journal'] }),
        componentSpec('subscriptions', 'subscriptions', { settings: subscriptionsSettings.parse({ instruments: [{ symbol: 'SPY', depth: { rows: 10 }, ticks: 'AllLast' }] }),
          dependsOn: ['ib_connection'] }),
        componentSpec('l2_microstructure', 'l2_microstructure', { settings: l2MicrostructureSettings.parse({}), dependsOn: ['subscriptions'] }),
        componentSpec('risk_gate', 'risk_gate', { settings: riskGateSettings.parse({ limits: { maxPosition: 100_000, maxOrderNotional: 10_000_000, maxGrossExposure: 50_000_000, maxOrdersPerSecond: 50, collarBps: 500 } }),
          dependsOn: ['journal'] }),
        // No predictor here: every order is placed by the test.
        componentSpec('paper_trader', 'paper_trader', {
          settings: paperTraderSettings.parse({ mode, replaceAfterMs: 600_000, reconcile: { onMismatch: options.onMismatch ?? 'HALTED' } }),
          dependsOn: ['l2_microstructure', 'risk_gate'] }),
      ],
    },
    systemClock,
  );
  await until(() => tree.phase() === 'running', 'the tree to run', 10_000);
  const { bus, services } = tree;
  const trader = services.current('trader')!;
  const ledger = services.current('ledger')!;
  const gate = services.current('riskGate')!;
  const book = () => services.current('books')?.book(0);
  await until(() => book()?.twoSided() === true && book()!.count[0]! >= 5, 'a SPY book with depth', 10_000);
  const stop = async () => {
    tree.actor.send({ type: 'shutdown' });
    await until(() => tree.done, 'the tree to stop');
    if (!options.sim) await sim.close();
  };
  const place = (quantity: number, limitPrice?: number) => {
    const placed = trader.order({ symbol: 'SPY', quantity, limitPrice, reason: 'placed by the test' });
    assert.equal(placed.ok, true, JSON.stringify(placed));
    return placed.ref!;
  };
  /** The broker's account and the journal agree, share for share and cent for cent. */
  const agreesWithBroker = () => {
    const account = sim.broker.accounts.get(ACCOUNT)!;
    const held = sim.broker.positionOf(ACCOUNT, 'SPY')?.position ?? 0;
    assert.equal(ledger.positions.get('SPY')?.quantity ?? 0, held, 'position');
    assert.ok(Math.abs(ledger.cash - account.cash) < 1e-6, `cash: journal ${ledger.cash}, broker ${account.cash}`);
    const ours = sim.broker.executions.filter((e) => e.orderRef?.startsWith('keel.'));
    assert.deepEqual([...ledger.fills.keys()].sort(), ours.map((e) => e.execId).sort(), 'every execution once');
  };
  return { sim, tree, bus, trader, ledger, gate, book, stop, place, agreesWithBroker, venue: () => trader.venue as IbVenue };
}

const round = (price: number) => Math.round(price * 100) / 100;

test('ib mode: a marketable order walks the book in partial fills; the journal equals the broker', async () => {
  const s = await start('partial');
  try {
    const levels = s.book()!;
    // Through three levels of the displayed asks.
    const quantity = levels.size[0]! + levels.size[1]! + 1;
    const ref = s.place(quantity, round(levels.price[2]! + 0.05));
    await until(() => s.ledger.order(ref)?.state === 'filled', 'the order to fill', 10_000);
    const order = s.ledger.order(ref)!;
    const fills = [...s.ledger.fills.values()].filter((f) => f.ref === ref);
    assert.ok(fills.length >= 2, `${fills.length} fills`);
    assert.equal(order.filled, quantity);
    const value = fills.reduce((sum, f) => sum + f.quantity * f.price, 0);
    assert.ok(Math.abs(order.averageFillPrice - value / quantity) < 1e-9);
    await until(() => [...s.ledger.fills.values()].every((f) => f.commission > 0), 'the commissions to be recorded');
    s.agreesWithBroker();
  } finally {
    await s.stop();
  }
});

test('ib mode: cancel and replace a resting order', async () => {
  const s = await start('replace');
  try {
    const far = round(s.book()!.price[s.book()!.maxRows]! - 2); // two dollars under the best bid
    const first = s.place(100, far);
    await until(() => s.ledger.order(first)?.state === 'working', 'the order to work');
    s.trader.cancel(first, 'replace');
    await until(() => s.ledger.order(first)?.state === 'cancelled', 'the cancel to be confirmed');
    const second = s.trader.order({ symbol: 'SPY', quantity: 100, limitPrice: round(far + 0.5), reason: 'the replacement' });
    // The first is done: the one-order-per-instrument rule lets the replacement through.
    assert.equal(second.ok, true, JSON.stringify(second));
    await until(() => s.sim.broker.workingOrders().some((o) => o.orderRef === second.ref && o.status === 'Submitted'), 'the replacement to work at the broker');
    // The broker's status reaches keel over the socket after the broker has it.
    await until(() => s.ledger.order(second.ref!)?.state === 'working', 'the replacement to work in the journal');
    const atBroker = s.sim.broker.allOrders().filter((o) => o.orderRef === first || o.orderRef === second.ref);
    assert.deepEqual(
      atBroker.map((o) => [o.orderRef, o.status, o.lmtPrice]),
      [
        [first, 'Cancelled', far],
        [second.ref, 'Submitted', round(far + 0.5)],
      ],
    );
    assert.notEqual(s.ledger.order(first)!.brokerOrderId, s.ledger.order(second.ref!)!.brokerOrderId);
  } finally {
    await s.stop();
  }
});

test('ib mode: a fill reported before its order, and every execution reported twice, count once each', async () => {
  const s = await start('early-fill');
  try {
    s.sim.broker.orderNewsDelayMs = 300;
    s.sim.broker.duplicateExecutions = true;
    const ref = s.place(200);
    await until(() => s.ledger.order(ref)?.state === 'filled', 'the order to fill', 10_000);
    // The fill came first: the order was still pending when it was recorded.
    assert.equal(s.venue().stageOf(ref), 'sent');
    await until(() => s.venue().stageOf(ref) === 'working', 'the late openOrder');
    assert.equal(s.ledger.order(ref)!.state, 'filled', 'late news does not move a filled order back');
    assert.ok(s.venue().duplicateExecutions > 0, 'the duplicates arrived and were dropped');
    await until(() => [...s.ledger.fills.values()].every((f) => f.commission > 0), 'the commissions');
    s.agreesWithBroker();
  } finally {
    await s.stop();
  }
});

test('ib mode: the link drops while an order is open; its fill is recovered on reconnect', async () => {
  // The order reaches the market 400 ms after the broker has it; keel is away for at least a second.
  const s = await start('drop', { ackDelayMs: 400, reconnectMinMs: 1_000 });
  try {
    const ref = s.place(300);
    await until(() => s.sim.broker.allOrders().some((o) => o.orderRef === ref), 'the broker to have the order');
    s.sim.faults.dropConnections();
    // The order fills at the broker while keel is away.
    await until(() => s.sim.broker.executions.some((e) => e.orderRef === ref), 'the fill at the broker', 5_000);
    assert.equal(s.ledger.fills.size, 0, 'the fill happened while the link was down');
    await until(() => s.ledger.order(ref)?.state === 'filled', 'the fill to be recovered after the reconnect', 10_000);
    await until(() => s.tree.sink.messages().some((m) => m.startsWith('reconciled with the broker')), 'the reconciliation');
    await until(() => [...s.ledger.fills.values()].every((f) => f.commission > 0), 'the commissions');
    s.agreesWithBroker();
    assert.equal(s.gate.state, 'HALTED', 'the link loss halted trading; a resume is an explicit command');
  } finally {
    await s.stop();
  }
});

test('book mode: a marketable order fills against the live book at its prices, with fees; a resting one waits and cancels', async () => {
  const s = await start('book-mode', { mode: 'book' });
  try {
    const book = s.book()!;
    const asks = Array.from(book.price.subarray(0, book.count[0]!));
    const ref = s.place(300);
    await until(() => s.ledger.order(ref)?.state === 'filled', 'the order to fill');
    const fills = [...s.ledger.fills.values()].filter((f) => f.ref === ref);
    const value = fills.reduce((sum, f) => sum + f.quantity * f.price, 0);
    const fees = fills.reduce((sum, f) => sum + f.commission, 0);
    assert.ok(fills.every((f) => f.price >= asks[0]! - 0.5 && f.price <= asks.at(-1)! + 0.5), `fill prices ${fills.map((f) => f.price).join(', ')} near the asks`);
    assert.equal(fees, Math.max(1, 0.005 * 300), 'IB fixed pricing: max(1, 0.005 per share)');
    assert.equal(s.ledger.positions.get('SPY')!.quantity, 300);
    assert.ok(Math.abs(s.ledger.cash - (1_000_000 - value - fees)) < 1e-6);
    assert.equal(s.sim.broker.allOrders().length, 0, 'nothing went to the broker');

    const resting = s.place(-100, round(book.price[0]! + 1));
    await until(() => s.ledger.order(resting)?.state === 'working', 'the sell to rest');
    s.trader.cancel(resting, 'the test cancels it');
    await until(() => s.ledger.order(resting)?.state === 'cancelled', 'the cancel');
    assert.equal(s.ledger.order(resting)!.filled, 0);
  } finally {
    await s.stop();
  }
});

test('ib mode: a journal that disagrees with the broker leaves the gate where configured, naming the difference', async () => {
  const sim = new TwsSimulator({ updatesPerSecond: 100, seed: 12 });
  const port = await sim.listen(0);
  try {
    const earlier = await start('mismatch-a', { sim, port });
    const ref = earlier.place(100);
    await until(() => earlier.ledger.order(ref)?.state === 'filled', 'the buy to fill');
    await earlier.stop();
    // A second keel with a fresh journal against the same account: the broker holds 100 SPY it does not know of.
    for (const [name, onMismatch, state] of [
      ['mismatch-b', 'HALTED', 'HALTED'],
      ['mismatch-c', 'REDUCING', 'REDUCING'],
    ] as const) {
      const s = await start(name, { sim, port, onMismatch });
      try {
        assert.equal(s.gate.state, state, s.tree.sink.messages().filter((m) => /reconcil|disagree|gate/.test(m)).join('\n'));
        assert.equal(s.gate.reason, 'reconciliation: SPY: the journal holds 0 shares, the broker 100');
        assert.equal(s.trader.order({ symbol: 'SPY', quantity: 100, reason: 'more' }).ok, false);
      } finally {
        await s.stop();
      }
    }
  } finally {
    await sim.close();
  }
});
