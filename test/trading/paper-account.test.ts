/**
 * The paper account guard end to end, in ib mode through the unmodified IB
 * client: the simulator presents a live-looking account (U…) and keel
 * refuses it before any order, visibly (a gate condition naming the
 * account and the setting, a log line), unless `allowLiveAccount` is set; a
 * paper account (D…) trades. TWS logging in to another account while keel
 * runs is caught at the reconnect, and a paper account again lifts it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { EventName } from '@stoqey/ib';
import { l2MicrostructureSettings } from '../../src/actors/l2-microstructure.js';
import { paperTraderSettings } from '../../src/actors/paper-trader.js';
import { componentSpec } from '../../src/actors/registry.js';
import { riskGateSettings } from '../../src/actors/risk-gate.js';
import { subscriptionsSettings } from '../../src/actors/subscriptions.js';
import { systemClock } from '../../src/clock.js';
import { IbLink } from '../../src/ib/link.js';
import { OrderIdLedger } from '../../src/ib/order-ids.js';
import { createLogger } from '../../src/log.js';
import { TwsSimulator } from '../../src/sim/server.js';
import { IbVenue } from '../../src/trading/ib-venue.js';
import type { VenueEvent } from '../../src/trading/venue.js';
import { nextEvent, until } from '../support/ib-client.js';
import { journalAndConnection } from '../support/ib-tree.js';
import { startTree } from '../support/probe.js';

const dir = mkdtempSync(join(tmpdir(), 'keel-account-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const SETTING = 'components.paper_trader.settings.allowLiveAccount';

async function start(name: string, accounts: string[], allowLiveAccount = false) {
  const sim = new TwsSimulator({ accounts, updatesPerSecond: 100, seed: 5 });
  const port = await sim.listen(0);
  const tree = startTree(
    {
      children: [
        ...journalAndConnection(dir, name, port),
        componentSpec('subscriptions', 'subscriptions', { settings: subscriptionsSettings.parse({ instruments: [{ symbol: 'SPY', depth: { rows: 10 } }] }), dependsOn: ['ib_connection'] }),
        componentSpec('l2_microstructure', 'l2_microstructure', { settings: l2MicrostructureSettings.parse({}), dependsOn: ['subscriptions'] }),
        componentSpec('risk_gate', 'risk_gate', {
          settings: riskGateSettings.parse({ limits: { maxPosition: 100_000, maxOrderNotional: 10_000_000, maxGrossExposure: 50_000_000, maxOrdersPerSecond: 50, collarBps: 500 } }),
          dependsOn: ['journal'],
        }),
        // No predictor: every order is placed by the test.
        componentSpec('paper_trader', 'paper_trader', {
          settings: paperTraderSettings.parse({ mode: 'ib', replaceAfterMs: 600_000, allowLiveAccount }),
          dependsOn: ['l2_microstructure', 'risk_gate'],
        }),
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
  await until(() => book()?.twoSided() === true, 'a two-sided SPY book', 10_000);
  const accountConditions = () => gate.activeConditions().filter((c) => c.startsWith('account: '));
  return {
    sim,
    tree,
    trader,
    ledger,
    gate,
    accountConditions,
    /** A marketable buy of `quantity` SPY, as the trader answers it. */
    buy: (quantity: number) => trader.order({ symbol: 'SPY', quantity, limitPrice: Math.round((book()!.bestAsk() + 0.5) * 100) / 100, reason: 'placed by the test' }),
    async filled(quantity: number) {
      const placed = this.buy(quantity);
      assert.equal(placed.ok, true, JSON.stringify(placed));
      await until(() => ledger.order(placed.ref!)?.state === 'filled', 'the order to fill', 10_000);
      return placed.ref!;
    },
    async stop() {
      tree.actor.send({ type: 'shutdown' });
      await until(() => tree.done, 'the tree to stop');
      await sim.close();
    },
  };
}

test('ib mode refuses a live account: no order reaches the broker, and the gate and the log say which account and which setting', async () => {
  const s = await start('live', ['U1234567']);
  try {
    await until(() => s.tree.sink.messages().some((m) => m.startsWith('refusing to trade')), 'the refusal');
    const refusal = s.tree.sink.messages().find((m) => m.startsWith('refusing to trade'))!;
    assert.match(refusal, /account U1234567 is not a paper account/);
    assert.ok(refusal.includes(`set ${SETTING}: true`), refusal);
    assert.equal(s.gate.state, 'HALTED');
    assert.match(s.gate.reason, /U1234567 is not a paper account/);
    assert.equal(s.accountConditions().length, 1, s.gate.activeConditions().join('\n'));
    assert.equal(s.gate.resume('tried by the test').ok, false, 'an operator cannot resume past it');
    const placed = s.buy(100);
    assert.equal(placed.ok, false);
    assert.match(placed.reason ?? '', /U1234567/);
    assert.equal(s.sim.broker.allOrders().length, 0, 'nothing reached the broker');
    assert.equal(s.ledger.orders.size, 0);
    assert.ok(!s.tree.sink.messages().some((m) => m.startsWith('reconciled with the broker')), 'a refused account is not reconciled against');
  } finally {
    await s.stop();
  }
});

test('allowLiveAccount: true trades a live account, and says so', async () => {
  const s = await start('allowed', ['U1234567'], true);
  try {
    await s.filled(100);
    assert.deepEqual(
      s.sim.broker.allOrders().map((o) => o.account),
      ['U1234567'],
    );
    assert.ok(s.tree.sink.messages().includes('trading live account U1234567: allowLiveAccount is set'));
    assert.deepEqual(s.accountConditions(), []);
  } finally {
    await s.stop();
  }
});

test('a paper account trades', async () => {
  const s = await start('paper', ['DU7654321']);
  try {
    await s.filled(100);
    assert.deepEqual(
      s.sim.broker.allOrders().map((o) => o.account),
      ['DU7654321'],
    );
    assert.ok(s.tree.sink.messages().includes('TWS trades paper account DU7654321'));
  } finally {
    await s.stop();
  }
});

test('the accounts are checked again at every reconnect: TWS logged in to a live account is refused, a paper one lifts the refusal', async () => {
  const s = await start('relogin', ['DU1234567']);
  try {
    await s.filled(100);
    const ordersBefore = s.sim.broker.allOrders().length;
    s.sim.faults.login(['U7654321']);
    await until(() => s.accountConditions().length === 1, 'the refusal after the reconnect', 10_000);
    assert.match(s.accountConditions()[0]!, /account U7654321 is not a paper account/);
    assert.equal(s.buy(100).ok, false);
    assert.equal(s.sim.broker.allOrders().length, ordersBefore, 'no order reached the live account');

    const reconciled = () => s.tree.sink.messages().filter((m) => m.startsWith('reconciled with the broker')).length;
    const before = reconciled();
    s.sim.faults.login(['DU1234567']);
    await until(() => s.accountConditions().length === 0 && reconciled() > before, 'the paper account back, reconciled', 10_000);
    // The link loss halted trading too: a resume is an explicit command, and nothing refuses it now.
    assert.deepEqual(s.gate.resume('the paper account is back').ok, true);
    await s.filled(100);
    assert.equal(s.sim.broker.positionOf('DU1234567', 'SPY')?.position, 200);
  } finally {
    await s.stop();
  }
});

test('the ib venue places no order before the session\'s accounts are checked, and sends a refused account nothing, cancels included', async () => {
  const sim = new TwsSimulator({ accounts: ['U1234567'] });
  const port = await sim.listen(0);
  const link = new IbLink({ host: '127.0.0.1', port, maxMessagesPerSecond: 45 }, systemClock, new OrderIdLedger(join(dir, 'venue.ids')));
  link.api.on(EventName.error, () => {});
  const connected = nextEvent(link.api, EventName.nextValidId);
  link.api.connect(7);
  const [nextValidId] = (await connected) as [number];
  link.orderIds.start(nextValidId);
  link.ready = true;
  const events: VenueEvent[] = [];
  const venue = new IbVenue({
    link,
    clock: systemClock,
    log: createLogger({ level: 'silent', destination: process.stderr }),
    onEvent: (e) => events.push(e),
    knownExecution: () => false,
    // An order an earlier session left working: the halt would cancel it.
    earlierOrders: new Map([[nextValidId + 1_000, 'earlier']]),
  });
  const submit = (ref: string) => venue.submit({ ref, symbol: 'SPY', quantity: 1, orderType: 'MKT', limitPrice: NaN, brokerOrderId: link.orderIds.take() });
  const rejection = (ref: string) => {
    const event = events.find((e) => e.kind === 'status' && e.ref === ref && e.state === 'rejected');
    return event?.kind === 'status' ? (event.reason ?? '') : 'not rejected';
  };
  try {
    submit('unchecked');
    assert.match(rejection('unchecked'), /not sent: the managed accounts of this TWS session are not checked yet/);

    const refused = await venue.checkAccounts(false, SETTING);
    assert.deepEqual(refused.accounts, ['U1234567']);
    assert.match(refused.refusal ?? '', /account U1234567 is not a paper account/);
    submit('refused');
    assert.match(rejection('refused'), /not sent: account U1234567 is not a paper account/);
    const sent = link.pacer.sent;
    venue.cancel('earlier');
    assert.equal(link.pacer.sent, sent, 'no cancel went out');

    const allowed = await venue.checkAccounts(true, SETTING);
    assert.equal(allowed.refusal, undefined);
    submit('allowed');
    await until(() => sim.broker.allOrders().length > 0, 'the allowed order at the broker');
    assert.deepEqual(
      sim.broker.allOrders().map((o) => o.orderRef),
      ['allowed'],
    );
  } finally {
    venue.close();
    link.ready = false;
    link.api.disconnect();
    link.orderIds.close();
    await sim.close();
  }
});
