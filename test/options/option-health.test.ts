/**
 * Option conditions end to end: the real components (books, features,
 * feature health, the risk gate, option_chain) on the simulator's SPY
 * chain through the unmodified IB client. A crossed option quote, a chain
 * whose quotes stop and the options farm going down each stop option
 * orders at the gate, named, while the gate itself stays ACTIVE and stock
 * orders pass; each clears when the fault does.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { featureHealthSettings } from '../../src/actors/feature-health.js';
import { featuresSettings } from '../../src/actors/features.js';
import { l2MicrostructureSettings } from '../../src/actors/l2-microstructure.js';
import { optionChainSettings } from '../../src/actors/option-chain.js';
import { componentSpec } from '../../src/actors/registry.js';
import { riskGateSettings } from '../../src/actors/risk-gate.js';
import { subscriptionsSettings } from '../../src/actors/subscriptions.js';
import { TwsSimulator } from '../../src/sim/server.js';
import { FEATURE_HEALTH_TOPIC, GATE_TRANSITION_TOPIC, IB_STATUS_TOPIC, OPTIONS_CHAIN_TOPIC, OPTIONS_HEALTH_TOPIC } from '../../src/topics.js';
import type { GateTransition, OrderIntent } from '../../src/trading/risk-gate.js';
import { optionIntent } from '../support/gate.js';
import { until } from '../support/ib-client.js';
import { journalAndConnection } from '../support/ib-tree.js';
import { startTree } from '../support/probe.js';
import { mondayMorning } from '../support/option-chain.js';

const dir = mkdtempSync(join(tmpdir(), 'keel-option-health-'));
after(() => rmSync(dir, { recursive: true, force: true }));


test('a crossed option quote, a stale chain and the options farm down stop option orders only, each named, until it clears', { timeout: 120_000 }, async () => {
  const clock = mondayMorning();
  const sim = new TwsSimulator({ clock, updatesPerSecond: 300, seed: 7 });
  const port = await sim.listen(0);
  const tree = startTree(
    {
      children: [
        ...journalAndConnection(dir, 'health', port),
        componentSpec('subscriptions', 'subscriptions', {
          settings: subscriptionsSettings.parse({ instruments: [{ symbol: 'SPY', depth: { rows: 10 }, ticks: 'AllLast' }], sweepMs: 20 }),
          dependsOn: ['ib_connection'],
        }),
        componentSpec('l2_microstructure', 'l2_microstructure', { settings: l2MicrostructureSettings.parse({}), dependsOn: ['subscriptions'] }),
        componentSpec('features', 'features', {
          settings: featuresSettings.parse({ samplesMs: [100], volHalfLivesMs: [1000], returnHorizonsMs: [500], flowHalfLifeMs: 1000 }),
          dependsOn: ['l2_microstructure'],
        }),
        componentSpec('risk_gate', 'risk_gate', { settings: riskGateSettings.parse({}), dependsOn: ['journal'] }),
        componentSpec('feature_health', 'feature_health', {
          settings: featureHealthSettings.parse({ maxDataAgeMs: 1500, thresholds: { window: 20 }, advisory: ['ret_500ms'], options: { maxQuoteAgeMs: 1500 } }),
          dependsOn: ['features', 'risk_gate'],
        }),
        componentSpec('option_chain', 'option_chain', {
          settings: optionChainSettings.parse({ expiries: '0..0', strikes: 'atm ± 5', publishMs: 100 }),
          dependsOn: ['subscriptions'],
        }),
      ],
    },
    clock,
  );
  const { bus, services } = tree;
  const transitions: GateTransition[] = [];
  bus.subscribe(GATE_TRANSITION_TOPIC, (t) => transitions.push(t));
  try {
    await until(() => tree.phase() === 'running', 'the tree to run', 15_000);
    const gate = services.current('riskGate')!;
    const problems = () => [...(bus.latest(OPTIONS_HEALTH_TOPIC)?.problems.keys() ?? [])];
    const chain = () => bus.latest(OPTIONS_CHAIN_TOPIC);
    const spot = () => chain()?.spot ?? NaN;
    const option = optionIntent;
    const stock = (): OrderIntent => ({ symbol: 'SPY', quantity: 1, position: 0, price: spot(), mid: spot(), working: 0, grossExposure: 0 });

    await until(() => {
      const c = chain();
      return c !== undefined && c.rows.length > 0 && c.rows.every((r) => r.line === 'live' && r.bid === r.bid && r.ask === r.ask);
    }, 'the band live and quoted', 30_000);
    await until(() => bus.latest(FEATURE_HEALTH_TOPIC)?.problems.size === 0 && problems().length === 0, 'stocks and options healthy', 15_000);
    assert.equal(gate.state, 'ACTIVE', `gate ${gate.state}: ${gate.reason}`);
    assert.deepEqual(gate.check(option()), { ok: true });
    const transitionsBefore = transitions.length;

    // Crossed quotes: every streamed contract named, options refused, stocks not.
    sim.faults.optionsCrossed(true);
    await until(() => problems().some((k) => k.startsWith('crossed ')), 'a crossed quote to be a condition');
    const refused = gate.check(option());
    assert.equal(refused.ok, false);
    assert.match((refused as { reason: string }).reason, /^option trading halted: feature_health: SPY\S* .*quote is crossed: bid [\d.]+ > ask [\d.]+/);
    assert.deepEqual(gate.check(stock()), { ok: true });
    sim.faults.optionsCrossed(false);
    await until(() => problems().length === 0, 'the crossed quotes to clear');
    assert.deepEqual(gate.check(option()), { ok: true });

    // Quotes stop without a word: stale after maxQuoteAgeMs.
    sim.faults.optionsStale(true);
    await until(() => problems().includes('stale'), 'the chain to be stale', 10_000);
    assert.match(gate.optionHolds().join('; '), /the SPY option chain is stale: no option quote since \d\d:\d\d:\d\d UTC \(limit 1\.5 s\)/);
    assert.equal(gate.check(option()).ok, false);
    assert.deepEqual(gate.check(stock()), { ok: true });
    sim.faults.optionsStale(false);
    await until(() => problems().length === 0, 'fresh quotes to clear it', 10_000);

    // The options farm down: the link stays connected, options stop at once, stocks go on.
    sim.faults.optionsFarmOutage(1_000);
    await until(() => gate.optionHolds().some((h) => h.startsWith('ib: the options data farm usopt is down')), 'the farm outage to stop options');
    assert.equal(bus.latest(IB_STATUS_TOPIC)!.state, 'connected', 'an options farm is not the link');
    assert.equal(gate.check(option()).ok, false);
    assert.deepEqual(gate.check(stock()), { ok: true });
    await until(() => gate.optionHolds().length === 0, 'the farm back and the chain quoted again', 15_000);
    assert.deepEqual(gate.check(option()), { ok: true });

    assert.equal(gate.state, 'ACTIVE');
    assert.deepEqual(transitions.slice(transitionsBefore), [], 'option conditions never moved the gate');
  } finally {
    tree.actor.send({ type: 'shutdown' });
    await until(() => tree.done, 'the tree to stop');
    await sim.close();
  }
});
