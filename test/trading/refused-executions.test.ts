/**
 * Bad execution reports end to end, in ib mode: the simulator's broker
 * fills keel's order for real and then sends, about the same order, a
 * report TWS should never send (its price `abc`, 1,000,000 shares of TSLA,
 * one share more than the order has left). Each is refused before the
 * journal counts it, kept there as evidence, and halts the gate until an
 * operator resumes; the journal keeps agreeing with the broker's own
 * account, and a restart replays the evidence without moving anything.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { l2MicrostructureSettings } from '../../src/actors/l2-microstructure.js';
import { paperTraderSettings } from '../../src/actors/paper-trader.js';
import { componentSpec } from '../../src/actors/registry.js';
import { riskGateSettings } from '../../src/actors/risk-gate.js';
import { subscriptionsSettings } from '../../src/actors/subscriptions.js';
import { systemClock } from '../../src/clock.js';
import { BAD_EXECUTION_KINDS, type BadExecutionKind } from '../../src/sim/broker.js';
import { TwsSimulator } from '../../src/sim/server.js';
import { until } from '../support/ib-client.js';
import { journalAndConnection } from '../support/ib-tree.js';
import { startTree } from '../support/probe.js';

const dir = mkdtempSync(join(tmpdir(), 'keel-refused-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const ACCOUNT = 'DU1234567';

/** A tree in ib mode on `sim`, its journal and order ids under `name`: the same name is the same keel after a restart. */
async function start(name: string, sim: TwsSimulator, port: number) {
  const tree = startTree(
    {
      children: [
        ...journalAndConnection(dir, name, port),
        componentSpec('subscriptions', 'subscriptions', { settings: subscriptionsSettings.parse({ instruments: [{ symbol: 'SPY', depth: { rows: 10 }, ticks: 'AllLast' }] }), dependsOn: ['ib_connection'] }),
        componentSpec('l2_microstructure', 'l2_microstructure', { settings: l2MicrostructureSettings.parse({}), dependsOn: ['subscriptions'] }),
        componentSpec('risk_gate', 'risk_gate', {
          settings: riskGateSettings.parse({ limits: { maxPosition: 100_000, maxOrderNotional: 10_000_000, maxGrossExposure: 50_000_000, maxOrdersPerSecond: 50, collarBps: 500 } }),
          dependsOn: ['journal'],
        }),
        // No predictor: every order is placed by the test.
        componentSpec('paper_trader', 'paper_trader', { settings: paperTraderSettings.parse({ mode: 'ib', replaceAfterMs: 600_000 }), dependsOn: ['l2_microstructure', 'risk_gate'] }),
      ],
    },
    systemClock,
  );
  await until(() => tree.phase() === 'running', 'the tree to run', 10_000);
  const { services } = tree;
  const trader = services.current('trader')!;
  const ledger = services.current('ledger')!;
  const gate = services.current('riskGate')!;
  const book = () => services.current('books')?.book(0);
  await until(() => book()?.twoSided() === true && book()!.count[0]! >= 5, 'a SPY book with depth', 10_000);
  return {
    tree,
    trader,
    ledger,
    gate,
    book,
    async stop() {
      tree.actor.send({ type: 'shutdown' });
      await until(() => tree.done, 'the tree to stop');
    },
    /** A buy of `quantity` SPY priced through the first three ask levels, so the walk fills it whole. */
    place(quantity: number) {
      const levels = book()!;
      const placed = trader.order({ symbol: 'SPY', quantity, limitPrice: Math.round((levels.price[2]! + 0.05) * 100) / 100, reason: 'placed by the test' });
      assert.equal(placed.ok, true, JSON.stringify(placed));
      return placed.ref!;
    },
    /** The broker's account and the journal agree, share for share and cent for cent; every real execution once, no other. */
    agreesWithBroker() {
      const held = sim.broker.positionOf(ACCOUNT, 'SPY')?.position ?? 0;
      assert.equal(ledger.positions.get('SPY')?.quantity ?? 0, held, 'position');
      assert.ok(Math.abs(ledger.cash - sim.broker.accounts.get(ACCOUNT)!.cash) < 1e-6, `cash: journal ${ledger.cash}, broker ${sim.broker.accounts.get(ACCOUNT)!.cash}`);
      const ours = sim.broker.executions.filter((e) => e.orderRef?.startsWith('keel.'));
      assert.deepEqual([...ledger.fills.keys()].sort(), ours.map((e) => e.execId).sort(), 'every execution once');
      assert.deepEqual(
        [...ledger.fills.values()].filter((f) => f.symbol !== 'SPY' || !(f.price > 0)),
        [],
      );
    },
  };
}

type Session = Awaited<ReturnType<typeof start>>;

const REASONS: Record<BadExecutionKind, RegExp> = {
  'price-not-a-number': /^price NaN is not a finite number above 0$/,
  'wrong-symbol': /^symbol TSLA is not the order's \(SPY\)$/,
  overfill: /^\d+ more would fill 51 of order keel\.[\w.]+'s 50 \(\d+ filled already\)$/,
};

/** Every figure of the portfolio is a number. */
function assertFinite(s: Session): void {
  const view = s.ledger.view(Date.now());
  const figures = { cash: view.cash, realized: view.realizedPnl, unrealized: view.unrealizedPnl, fees: view.fees, net: view.netPnl, gross: view.grossExposure };
  for (const [name, value] of Object.entries(figures)) assert.ok(Number.isFinite(value), `${name} is ${value}`);
  for (const p of view.positions) assert.ok(Number.isFinite(p.quantity) && Number.isFinite(p.averagePrice), `${p.symbol}: ${p.quantity} at ${p.averagePrice}`);
}

/** Arms the fault, places a 50-share buy, and waits for the order to end and the refusal to be durable; returns the evidence. */
async function refusedOnce(s: Session, sim: TwsSimulator, kind: BadExecutionKind) {
  const before = s.ledger.evidence.length;
  sim.faults.badExecution(kind);
  const ref = s.place(50);
  // Filled, or (should the book not hold 50 within the limit) its rest cancelled by the halt: either way done at the broker.
  const atBroker = () => sim.broker.allOrders().find((o) => o.orderRef === ref);
  await until(() => s.ledger.evidence.length > before && ['Filled', 'Cancelled'].includes(atBroker()?.status ?? '') && s.ledger.order(ref)?.filled === atBroker()?.filled, `the ${kind} report refused and the order done`, 10_000);
  // Later fills of a small order pay no commission (the minimum came with the first): wait for the broker's total, not for each.
  const charged = (fills: readonly { commission: number }[]) => fills.reduce((sum, f) => sum + f.commission, 0);
  const brokerCharged = charged(sim.broker.executions.filter((e) => e.orderRef === ref));
  await until(() => Math.abs(charged([...s.ledger.fills.values()].filter((f) => f.ref === ref)) - brokerCharged) < 1e-9, 'the commissions');
  const evidence = s.ledger.evidence.at(-1)!;
  assert.equal(s.ledger.evidence.length, before + 1, 'one refusal for one bad report');
  assert.equal(evidence.kind, 'refused');
  assert.equal(evidence.ref, ref);
  assert.match(evidence.reason, REASONS[kind]);
  assert.ok(s.ledger.order(ref)!.filled > 0 && s.ledger.order(ref)!.filled <= 50, 'the order filled once over, never past its quantity');
  return evidence;
}

test('ib mode: each bad execution report is refused, kept as evidence, and halts until an operator resumes; the journal stays the broker’s, and a restart moves nothing', async () => {
  const sim = new TwsSimulator({ updatesPerSecond: 100, seed: 17 });
  const port = await sim.listen(0);
  try {
    const s = await start('each-kind', sim, port);
    let before: ReturnType<typeof s.ledger.view>;
    try {
      for (const kind of BAD_EXECUTION_KINDS) {
        const evidence = await refusedOnce(s, sim, kind);
        assert.equal(s.gate.state, 'HALTED', kind);
        assert.equal(s.gate.reason, evidence.text, 'the gate names the refusal');
        assert.ok(s.gate.activeConditions().includes(`executions: ${evidence.text} (until an operator resumes)`), s.gate.activeConditions().join('\n'));
        const logged = s.tree.sink.lines.find((l) => l.level === 50 && l.execId === evidence.execId);
        assert.ok(logged, `an error line for ${evidence.execId}`);
        assert.match(String(logged.msg), /refused: .*: not booked, kept in the journal as evidence; trading halts until an operator resumes$/);
        assert.ok(s.tree.sink.messages().includes(`trading HALTED: ${evidence.text}`), 'the halt is logged with the refusal');
        s.agreesWithBroker();
        assertFinite(s);
        // Refused orders wait for the operator; the operator's resume is not refused.
        assert.equal(s.trader.order({ symbol: 'SPY', quantity: 1, reason: 'while halted' }).ok, false);
        assert.deepEqual(s.gate.resume('the operator read the evidence'), { ok: true });
        assert.equal(s.gate.state, 'ACTIVE');
        await until(() => evidence.acknowledged, 'the resume journaled after the evidence');
      }
      const refused = (await s.tree.services.current('journal')!.entriesSince(0)).filter((e) => e.record.type === 'execution.refused').map((e) => e.record);
      assert.equal(refused.length, 3);
      assert.ok(refused.some((r) => r.type === 'execution.refused' && r.symbol === 'TSLA' && r.quantity === 1_000_000), 'the TSLA report kept as reported');
      assert.ok(refused.some((r) => r.type === 'execution.refused' && Number.isNaN(r.price)), 'the price kept as reported: NaN');
      before = s.ledger.view(0);
    } finally {
      await s.stop();
    }

    const again = await start('each-kind', sim, port);
    try {
      assert.deepEqual(again.ledger.evidence.map((e) => [e.kind, e.acknowledged]), [
        ['refused', true],
        ['refused', true],
        ['refused', true],
      ]);
      assert.equal(again.gate.state, 'ACTIVE', 'acknowledged evidence does not halt a restart');
      const after = again.ledger.view(0);
      assert.deepEqual({ ...after, seq: 0 }, { ...before, seq: 0 }, 'the replay moved nothing');
      again.agreesWithBroker();
      assert.ok(again.tree.sink.messages().some((m) => m.startsWith('reconciled with the broker') && m.endsWith('no mismatch')));
    } finally {
      await again.stop();
    }
  } finally {
    await sim.close();
  }
});

test('ib mode: a refusal no operator acknowledged before a restart halts the next start, named; its resume acknowledges it', async () => {
  const sim = new TwsSimulator({ updatesPerSecond: 100, seed: 18 });
  const port = await sim.listen(0);
  try {
    const s = await start('unacknowledged', sim, port);
    let text: string;
    try {
      text = (await refusedOnce(s, sim, 'price-not-a-number')).text;
      assert.equal(s.gate.state, 'HALTED');
    } finally {
      await s.stop();
    }

    const again = await start('unacknowledged', sim, port);
    try {
      assert.equal(again.gate.state, 'HALTED');
      assert.equal(again.gate.reason, text);
      const seq = again.ledger.evidence[0]!.seq;
      assert.ok(again.tree.sink.lines.some((l) => l.level === 40 && l.seq === seq && String(l.msg) === `${text}: trading waits for an operator's resume`), 'a warning naming the entry');
      again.agreesWithBroker();
      assertFinite(again);
      assert.deepEqual(again.gate.resume('seen it'), { ok: true });
      await until(() => again.ledger.unacknowledged().length === 0, 'the resume journaled');
      const ref = again.place(20);
      await until(() => again.ledger.order(ref)?.filled === 20, 'trading again');
    } finally {
      await again.stop();
    }

    const third = await start('unacknowledged', sim, port);
    try {
      assert.equal(third.gate.state, 'ACTIVE');
      third.agreesWithBroker();
    } finally {
      await third.stop();
    }
  } finally {
    await sim.close();
  }
});
