/**
 * The emergency stop end to end: the simulator's depth for SPY starts
 * lying, the real components (books, features, health, gate) under a real
 * supervisor notice, the gate halts, working orders at the simulated broker
 * are cancelled through the unmodified IB client, and nothing is accepted
 * until the data is good and someone resumes.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { featureHealthLogic, featureHealthSettings, FEATURE_HEALTH_TOPIC } from '../../src/actors/feature-health.js';
import { featuresLogic, featuresSettings } from '../../src/actors/features.js';
import { ibConnectionLogic, ibConnectionSettings } from '../../src/actors/ib-connection.js';
import { l2MicrostructureLogic, l2MicrostructureSettings } from '../../src/actors/l2-microstructure.js';
import { GATE_TRANSITION_TOPIC, RISK_GATE_TOPIC, riskGateLogic, riskGateSettings } from '../../src/actors/risk-gate.js';
import { subscriptionsLogic, subscriptionsSettings } from '../../src/actors/subscriptions.js';
import { systemClock } from '../../src/clock.js';
import { checkSystemHealth } from '../../src/health/system-health.js';
import { createLogger } from '../../src/log.js';
import { LINK_TOPIC, type IbLink } from '../../src/ib/link.js';
import { BOOK_TOPIC, type OrderBooks } from '../../src/market/books.js';
import type { FeatureHealth } from '../../src/market/feature-health.js';
import { TwsSimulator } from '../../src/sim/server.js';
import { IbOrders } from '../../src/trading/ib-orders.js';
import type { GateTransition, RiskGate } from '../../src/trading/risk-gate.js';
import { until } from '../support/ib-client.js';
import { startTree } from '../support/probe.js';

const dir = mkdtempSync(join(tmpdir(), 'keel-stop-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function start(name: string) {
  const sim = new TwsSimulator({ updatesPerSecond: 300, seed: 7 });
  const port = await sim.listen(0);
  const tree = startTree(
    {
      children: [
        {
          id: 'ib_connection',
          logic: ibConnectionLogic,
          settings: ibConnectionSettings.parse({ port, reconnect: { minMs: 50, maxMs: 500, randomFactor: 0.2, maxAttempts: 0 }, orderIdFile: join(dir, `${name}.json`) }),
        },
        {
          id: 'subscriptions',
          logic: subscriptionsLogic,
          settings: subscriptionsSettings.parse({ instruments: [{ symbol: 'SPY', depth: { rows: 10 }, ticks: 'AllLast' }, { symbol: 'MSFT' }], sweepMs: 20 }),
          dependsOn: ['ib_connection'],
        },
        { id: 'l2_microstructure', logic: l2MicrostructureLogic, settings: l2MicrostructureSettings.parse({}), dependsOn: ['subscriptions'] },
        {
          id: 'features',
          logic: featuresLogic,
          // Short horizons: warm in about a second.
          settings: featuresSettings.parse({ samplesMs: [100], volHalfLivesMs: [1000], returnHorizonsMs: [500], flowHalfLifeMs: 1000 }),
          dependsOn: ['l2_microstructure'],
        },
        { id: 'risk_gate', logic: riskGateLogic, settings: riskGateSettings.parse({}) },
        {
          id: 'feature_health',
          logic: featureHealthLogic,
          // Returns are flat in many 500 ms windows: advisory here, as they would be for a model that does not use them.
          settings: featureHealthSettings.parse({ maxDataAgeMs: 1500, thresholds: { window: 20 }, advisory: ['ret_500ms'] }),
          dependsOn: ['features', 'risk_gate'],
        },
      ],
    },
    systemClock,
  );
  const bus = tree.bus;
  const transitions: GateTransition[] = [];
  bus.subscribe<GateTransition>(GATE_TRANSITION_TOPIC, (t) => transitions.push(t));
  await until(() => tree.phase() === 'running', 'the tree to run', 10_000);
  const gate = bus.latest<RiskGate>(RISK_GATE_TOPIC)!;
  const health = () => bus.latest<FeatureHealth>(FEATURE_HEALTH_TOPIC)!;
  const link = bus.latest<IbLink>(LINK_TOPIC)!;
  const orders = new IbOrders(link, gate, createLogger({ level: 'debug', pretty: false, destination: tree.sink }));
  // SPY judged and healthy: the data path is live end to end.
  await until(() => !Number.isNaN(health().qualityPct()) && health().problems.size === 0, 'SPY features judged healthy', 10_000);
  assert.equal(gate.state, 'ACTIVE', `gate ${gate.state}: ${gate.reason}`);
  const stop = async () => {
    orders.close();
    tree.actor.send({ type: 'shutdown' });
    await until(() => tree.done, 'the tree to stop');
    await sim.close();
  };
  return { sim, tree, bus, gate, health, orders, transitions, stop };
}

const gateActorState = (s: Awaited<ReturnType<typeof start>>) => s.tree.actor.system.get('risk_gate')?.getSnapshot().value;

async function restingBuys(s: Awaited<ReturnType<typeof start>>, n: number): Promise<number[]> {
  const ids: number[] = [];
  for (let k = 0; k < n; k++) {
    const placed = s.orders.place({ symbol: 'SPY', quantity: 100, limitPrice: 1 + k / 100 });
    assert.equal(placed.ok, true, JSON.stringify(placed));
    ids.push(placed.orderId!);
  }
  await until(() => ids.every((id) => s.orders.working.get(id)?.status === 'Submitted'), 'the orders to be working at the broker');
  assert.equal(s.sim.broker.workingOrders().length, n);
  return ids;
}

test('zero sizes in the SPY depth: HALTED, every working order cancelled at the broker, no order accepted until resumed', async () => {
  const s = await start('zeros');
  try {
    await restingBuys(s, 3);
    s.sim.faults.corruptDepth('SPY', 'zero-sizes');
    await until(() => s.gate.state === 'HALTED', 'the gate to halt', 10_000);
    const halt = s.transitions.find((t) => t.to === 'HALTED')!;
    assert.equal(halt.by, 'feature_health');
    assert.equal(gateActorState(s), 'halted', 'the risk_gate actor mirrors the gate for the inspector');
    assert.match(halt.reason, /SPY \w+ (is NaN or Inf in a model input|is CRITICAL|is DISABLED)/);
    // The cancels were issued inside the halt; the broker confirms them.
    assert.equal(s.orders.cancelsIssued, 3);
    await until(() => s.sim.broker.workingOrders().length === 0 && s.orders.working.size === 0, 'the broker to cancel every order');

    const refused = s.orders.place({ symbol: 'SPY', quantity: 100, limitPrice: 1 });
    assert.equal(refused.ok, false);
    assert.match((refused as { reason: string }).reason, /^trading halted: SPY/);
    const resumeWhileBad = s.gate.resume('operator');
    assert.equal(resumeWhileBad.ok, false, 'resume is refused while the data is bad');

    const report = checkSystemHealth(s.bus, s.tree.phase(), systemClock);
    assert.equal(report.overall_status, 'CRITICAL');
    assert.equal(report.components.risk_gate.status, 'CRITICAL');
    assert.equal(report.healthy, false);

    // Clean data again: the book refills with real sizes, the NaNs stop, and an operator may resume.
    s.sim.faults.corruptDepth('SPY', 'clean');
    await until(() => s.gate.resume('data clean again').ok, 'resume to be allowed', 15_000);
    assert.equal(s.gate.state, 'ACTIVE');
    assert.equal(gateActorState(s), 'active');
    assert.equal(s.orders.place({ symbol: 'SPY', quantity: 100, limitPrice: 1 }).ok, true);
  } finally {
    await s.stop();
  }
});

test('NaN prices in the SPY depth: the book rejects every insert and update, and the gate halts on what is left', async () => {
  const s = await start('nans');
  try {
    await restingBuys(s, 2);
    const books = s.bus.latest<OrderBooks>(BOOK_TOPIC)!;
    const before = books.book(0)!.rejected[3]!;
    s.sim.faults.corruptDepth('SPY', 'nan-prices');
    await until(() => s.gate.state === 'HALTED', 'the gate to halt', 10_000);
    assert.ok(books.book(0)!.rejected[3]! > before, 'NaN prices were rejected and counted, never applied');
    const halt = s.transitions.find((t) => t.to === 'HALTED')!;
    // Deletes carry no price and still apply: the book thins out until it has no mid (or, if no delete came, its data ages past the limit).
    assert.match(halt.reason, /SPY (\w+ is NaN or Inf in a model input|market data is \d+\.\d s old \(limit 1\.5 s\))/);
    await until(() => s.sim.broker.workingOrders().length === 0, 'the broker to cancel every order');
    assert.equal(s.orders.place({ symbol: 'SPY', quantity: -10, limitPrice: 1000, position: 100 }).ok, false, 'not even a reducing order');
  } finally {
    await s.stop();
  }
});
