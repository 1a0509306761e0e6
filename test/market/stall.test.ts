/**
 * An event-loop stall end to end: the simulator runs in its own process and
 * goes on sending while keel's loop is blocked in the middle of a socket
 * read, so what TWS sent meanwhile is stamped with a receive time after the
 * stall and looks fresh. The real components (IB client, books, features,
 * feature health, gate) must not take it for fresh: the stall itself halts
 * trading.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { EventName } from '@stoqey/ib';
import { featureHealthSettings } from '../../src/actors/feature-health.js';
import { featuresSettings } from '../../src/actors/features.js';
import { ibConnectionSettings } from '../../src/actors/ib-connection.js';
import { journalSettings } from '../../src/actors/journal.js';
import { l2MicrostructureSettings } from '../../src/actors/l2-microstructure.js';
import { componentSpec } from '../../src/actors/registry.js';
import { riskGateSettings } from '../../src/actors/risk-gate.js';
import { subscriptionsSettings } from '../../src/actors/subscriptions.js';
import { systemClock } from '../../src/clock.js';
import { featureSchema } from '../../src/market/features.js';
import type { GateTransition } from '../../src/trading/risk-gate.js';
import { FEATURE_HEALTH_TOPIC, GATE_TRANSITION_TOPIC } from '../../src/topics.js';
import { until } from '../support/ib-client.js';
import { startTree } from '../support/probe.js';
import { runKeel } from '../support/process.js';

const dir = mkdtempSync(join(tmpdir(), 'keel-stall-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const MAX_DATA_AGE_MS = 500;
// Short horizons: warm in about a second.
const FEATURES = { samplesMs: [100], volHalfLivesMs: [1000], returnHorizonsMs: [500], flowHalfLifeMs: 1000 };

test('a stall longer than maxDataAgeMs halts trading, though the backlog read after it looks fresh', async () => {
  const sim = runKeel(['sim', '--port', '0', '--updates-per-second', '100']);
  const port = (JSON.parse(await sim.waitFor('TWS simulator listening')) as { port: number }).port;
  const tree = startTree(
    {
      children: [
        componentSpec('journal', 'journal', { settings: journalSettings.parse({ path: join(dir, 'stall.journal') }) }),
        componentSpec('ib_connection', 'ib_connection', {
          settings: ibConnectionSettings.parse({ port, orderIdFile: join(dir, 'stall.ids') }),
          dependsOn: ['journal'],
        }),
        componentSpec('subscriptions', 'subscriptions', {
          settings: subscriptionsSettings.parse({ instruments: [{ symbol: 'SPY', depth: { rows: 10 } }] }),
          dependsOn: ['ib_connection'],
        }),
        componentSpec('l2_microstructure', 'l2_microstructure', { settings: l2MicrostructureSettings.parse({}), dependsOn: ['subscriptions'] }),
        componentSpec('features', 'features', {
          settings: featuresSettings.parse(FEATURES),
          dependsOn: ['l2_microstructure'],
        }),
        componentSpec('risk_gate', 'risk_gate', { settings: riskGateSettings.parse({}), dependsOn: ['journal'] }),
        // Only data age is under test: every feature advisory, so no score halts first.
        componentSpec('feature_health', 'feature_health', {
          settings: featureHealthSettings.parse({ maxDataAgeMs: MAX_DATA_AGE_MS, advisory: featureSchema({ baseMs: 100, ...FEATURES }).features }),
          dependsOn: ['features', 'risk_gate'],
        }),
      ],
    },
    systemClock,
  );
  const { bus, services } = tree;
  try {
    await until(() => tree.phase() === 'running', 'the tree to run', 15_000);
    const gate = services.current('riskGate')!;
    const engine = services.current('featureEngine')!;
    const health = () => bus.latest(FEATURE_HEALTH_TOPIC)!;
    // Data flowing and judged, nothing held: the gate may trade.
    await until(() => engine.lastDataAt.every((at) => at === at) && !Number.isNaN(health().qualityPct()) && health().problems.size === 0 && gate.resume('data flowing').ok, 'fresh data and an active gate', 15_000);
    assert.equal(gate.state, 'ACTIVE');
    const transitions: GateTransition[] = [];
    bus.subscribe(GATE_TRANSITION_TOPIC, (t) => transitions.push(t));

    // The loop blocks in the middle of a socket read, before the next message is stamped with its receive
    // time (a slow decode, a long GC): what TWS sent meanwhile is stamped after the stall, looking fresh.
    let stalled = false;
    const api = services.current('ibLink')!.api;
    const stall = () => {
      if (stalled) return;
      stalled = true;
      const end = performance.now() + 2.5 * MAX_DATA_AGE_MS;
      while (performance.now() < end);
    };
    // Ahead of the depth handler that stamps it.
    const handlers = api.listeners(EventName.updateMktDepth);
    api.removeAllListeners(EventName.updateMktDepth);
    for (const handler of [stall, ...handlers]) api.on(EventName.updateMktDepth, handler);
    await until(() => stalled, 'the stall');
    api.off(EventName.updateMktDepth, stall);

    await until(() => gate.state === 'HALTED', 'the gate to halt on the stall');
    const halt = transitions.find((t) => t.to === 'HALTED')!;
    assert.equal(halt.by, 'feature_health');
    assert.match(halt.reason, /^event loop stalled \d+\.\d s \(limit 0\.5 s\): data read right after it may be that old/);
  } finally {
    tree.actor.send({ type: 'shutdown' });
    await until(() => tree.done, 'the tree to stop', 10_000);
    sim.child.kill('SIGTERM');
    await sim.exited;
  }
});
