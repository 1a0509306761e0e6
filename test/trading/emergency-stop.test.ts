/**
 * The emergency stop end to end: the simulator's depth for SPY starts
 * lying, the real components (books, features, health, gate) under a real
 * supervisor notice, the gate halts, and the paper trader (ib mode, through
 * the unmodified IB client) cancels every working order at the simulated
 * broker inside the halt, the journal recording each cancel asked for and
 * confirmed; nothing is accepted until the data is good and someone resumes.
 *
 * The trader works one order per instrument, so the resting buys are one
 * per instrument, each 1.5 % under its best bid: inside the collar, out of
 * the market's reach.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { featureHealthSettings } from '../../src/actors/feature-health.js';
import { featuresSettings } from '../../src/actors/features.js';
import { ibConnectionSettings } from '../../src/actors/ib-connection.js';
import { journalSettings } from '../../src/actors/journal.js';
import { l2MicrostructureSettings } from '../../src/actors/l2-microstructure.js';
import { paperTraderSettings } from '../../src/actors/paper-trader.js';
import { riskGateSettings } from '../../src/actors/risk-gate.js';
import { subscriptionsSettings } from '../../src/actors/subscriptions.js';
import { systemClock } from '../../src/clock.js';
import { checkSystemHealth } from '../../src/health/system-health.js';
import type { BookResync } from '../../src/market/books.js';
import { TwsSimulator } from '../../src/sim/server.js';
import type { IbVenue } from '../../src/trading/ib-venue.js';
import type { GateTransition } from '../../src/trading/risk-gate.js';
import { until } from '../support/ib-client.js';
import { startTree } from '../support/probe.js';
import { BOOK_RESYNC_TOPIC, FEATURE_HEALTH_TOPIC, GATE_TRANSITION_TOPIC, SUBSCRIPTIONS_STATUS_TOPIC } from '../../src/topics.js';
import { componentSpec } from '../../src/actors/registry.js';

const dir = mkdtempSync(join(tmpdir(), 'keel-stop-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Depth and trades for each: every one has a book to price a resting order from, and features to judge. */
const SYMBOLS = ['SPY', 'QQQ', 'MSFT'] as const;

async function start(name: string) {
  const sim = new TwsSimulator({ updatesPerSecond: 300, seed: 7 });
  const port = await sim.listen(0);
  const tree = startTree(
    {
      children: [
        componentSpec('journal', 'journal', { settings: journalSettings.parse({ path: join(dir, `${name}.journal`) }) }),
        componentSpec('ib_connection', 'ib_connection', { settings: ibConnectionSettings.parse({ port, reconnect: { minMs: 50, maxMs: 500, randomFactor: 0.2, maxAttempts: 0 }, orderIdFile: join(dir, `${name}.ids`) }),
          dependsOn: ['journal'] }),
        componentSpec('subscriptions', 'subscriptions', { settings: subscriptionsSettings.parse({ instruments: SYMBOLS.map((symbol) => ({ symbol, depth: { rows: 10 }, ticks: 'AllLast' })), sweepMs: 20 }),
          dependsOn: ['ib_connection'] }),
        componentSpec('l2_microstructure', 'l2_microstructure', { settings: l2MicrostructureSettings.parse({}), dependsOn: ['subscriptions'] }),
        // Short horizons: warm in about a second.
        componentSpec('features', 'features', {
          settings: featuresSettings.parse({ samplesMs: [100], volHalfLivesMs: [1000], returnHorizonsMs: [500], flowHalfLifeMs: 1000 }),
          dependsOn: ['l2_microstructure'] }),
        // Far above what the test trades; the collar admits the resting buys 1.5 % under the bid.
        componentSpec('risk_gate', 'risk_gate', {
          settings: riskGateSettings.parse({ limits: { maxPosition: 100_000, maxOrderNotional: 10_000_000, maxGrossExposure: 50_000_000, maxOrdersPerSecond: 50, collarBps: 500 } }),
          dependsOn: ['journal'] }),
        // Returns are flat in many 500 ms windows: advisory here, as they would be for a model that does not use them.
        componentSpec('feature_health', 'feature_health', {
          settings: featureHealthSettings.parse({ maxDataAgeMs: 1500, thresholds: { window: 20 }, advisory: ['ret_500ms'] }),
          dependsOn: ['features', 'risk_gate'] }),
        // No predictor: every order is placed by the test.
        componentSpec('paper_trader', 'paper_trader', {
          settings: paperTraderSettings.parse({ mode: 'ib', replaceAfterMs: 600_000 }),
          dependsOn: ['l2_microstructure', 'risk_gate'] }),
      ],
    },
    systemClock,
  );
  const { bus, services } = tree;
  const transitions: GateTransition[] = [];
  bus.subscribe(GATE_TRANSITION_TOPIC, (t) => transitions.push(t));
  await until(() => tree.phase() === 'running', 'the tree to run', 10_000);
  const gate = services.current('riskGate')!;
  const health = () => bus.latest(FEATURE_HEALTH_TOPIC)!;
  const trader = services.current('trader')!;
  const ledger = services.current('ledger')!;
  const venue = trader.venue as IbVenue;
  const book = (symbol: string) => services.current('books')?.book(SYMBOLS.indexOf(symbol as (typeof SYMBOLS)[number]));
  // Every order's journaled states, in order.
  const journaled = new Map<string, string[]>();
  ledger.onEntry(({ record }) => {
    if (record.type !== 'order.status') return;
    if (!journaled.has(record.ref)) journaled.set(record.ref, []);
    journaled.get(record.ref)!.push(record.state);
  });
  // What the venue had done with each order by the time anyone heard of the halt.
  let atHalt: { stages: Map<string, string | undefined>; cancels: number } | undefined;
  gate.onTransition((t) => {
    if (t.to !== 'HALTED' || atHalt) return;
    atHalt = { stages: new Map([...ledger.orders.keys()].map((ref) => [ref, venue.stageOf(ref)])), cancels: trader.counts.cancels };
  });
  // Every instrument judged and healthy: the data path is live end to end.
  await until(() => !Number.isNaN(health().qualityPct()) && health().problems.size === 0 && SYMBOLS.every((s) => book(s)?.twoSided()), 'the features judged healthy', 10_000);
  assert.equal(gate.state, 'ACTIVE', `gate ${gate.state}: ${gate.reason}`);
  const stop = async () => {
    tree.actor.send({ type: 'shutdown' });
    await until(() => tree.done, 'the tree to stop');
    await sim.close();
  };
  return { sim, tree, bus, services, gate, health, trader, ledger, book, journaled, halted: () => atHalt, transitions, stop };
}

type Started = Awaited<ReturnType<typeof start>>;

const gateActorState = (s: Started) => s.tree.actor.system.get('risk_gate')?.getSnapshot().value;
const round = (price: number) => Math.round(price * 100) / 100;
/** 1.5 % under the best bid: within the 500 bps collar, and not about to fill. */
const restingPrice = (s: Started, symbol: string) => round(s.book(symbol)!.bestBid() * 0.985);

function buy(s: Started, symbol: string, quantity: number, limitPrice?: number) {
  return s.trader.order({ symbol, quantity, limitPrice, reason: 'placed by the test' });
}

/** A resting buy of 100 in each symbol, working at the broker; returns their refs. */
async function restingBuys(s: Started, symbols: readonly string[]): Promise<string[]> {
  const refs = symbols.map((symbol) => {
    const placed = buy(s, symbol, 100, restingPrice(s, symbol));
    assert.equal(placed.ok, true, JSON.stringify(placed));
    return placed.ref!;
  });
  await until(() => refs.every((ref) => s.ledger.order(ref)?.state === 'working'), 'the orders to be working at the broker');
  assert.equal(s.sim.broker.workingOrders().length, refs.length);
  assert.deepEqual(s.sim.broker.workingOrders().map((o) => o.orderRef).sort(), [...refs].sort());
  return refs;
}

/** Cancels went out inside the halt; the broker confirmed them and the journal recorded both. */
async function allCancelled(s: Started, refs: readonly string[], cancelsBefore: number): Promise<void> {
  const atHalt = s.halted()!;
  assert.ok(atHalt, 'the gate halted');
  assert.equal(atHalt.cancels - cancelsBefore, refs.length, 'one cancel per working order, before anyone heard of the halt');
  for (const ref of refs) assert.equal(atHalt.stages.get(ref), 'cancel-requested', `${ref} was being cancelled when the halt was announced`);
  await until(() => s.sim.broker.workingOrders().length === 0 && refs.every((ref) => s.ledger.order(ref)?.state === 'cancelled'), 'the broker to cancel every order');
  assert.equal(s.ledger.workingOrders().length, 0);
  for (const ref of refs) {
    const states = s.journaled.get(ref)!.filter((state, k, all) => state !== all[k - 1]);
    assert.deepEqual(states, ['working', 'cancel-requested', 'cancelled'], `${ref} in the journal`);
  }
}

test('zero sizes in the SPY depth: HALTED, every working order cancelled at the broker, no order accepted until resumed', async () => {
  const s = await start('zeros');
  try {
    const refs = await restingBuys(s, SYMBOLS);
    const cancelsBefore = s.trader.counts.cancels;
    s.sim.faults.corruptDepth('SPY', 'zero-sizes');
    await until(() => s.gate.state === 'HALTED', 'the gate to halt', 10_000);
    const halt = s.transitions.find((t) => t.to === 'HALTED')!;
    assert.equal(halt.by, 'feature_health');
    assert.equal(gateActorState(s), 'halted', 'the risk_gate actor mirrors the gate for the inspector');
    assert.match(halt.reason, /SPY \w+ (is NaN or Inf in a model input|is CRITICAL|is DISABLED)/);
    await allCancelled(s, refs, cancelsBefore);

    const refused = buy(s, 'QQQ', 100, restingPrice(s, 'QQQ'));
    assert.equal(refused.ok, false);
    assert.match((refused as { reason: string }).reason, /^trading halted: SPY/);
    const resumeWhileBad = s.gate.resume('operator');
    assert.equal(resumeWhileBad.ok, false, 'resume is refused while the data is bad');

    const report = checkSystemHealth(s.bus, s.services, s.tree.phase(), systemClock);
    assert.equal(report.overall_status, 'CRITICAL');
    assert.equal(report.components.risk_gate.status, 'CRITICAL');
    assert.equal(report.healthy, false);

    // Clean data again: the book refills with real sizes, the NaNs stop, and an operator may resume.
    s.sim.faults.corruptDepth('SPY', 'clean');
    await until(() => s.gate.resume('data clean again').ok, 'resume to be allowed', 15_000);
    assert.equal(s.gate.state, 'ACTIVE');
    assert.equal(gateActorState(s), 'active');
    const again = buy(s, 'SPY', 100, restingPrice(s, 'SPY'));
    assert.equal(again.ok, true, JSON.stringify(again));
    await until(() => s.sim.broker.workingOrders().some((o) => o.orderRef === again.ref), 'the new order to reach the broker');
  } finally {
    await s.stop();
  }
});

test('NaN prices in the SPY depth: the book rejects every insert and update, and the gate halts on what is left', async () => {
  const s = await start('nans');
  try {
    // A position to reduce: a marketable buy, filled at the broker.
    const bought = buy(s, 'SPY', 10);
    assert.equal(bought.ok, true, JSON.stringify(bought));
    await until(() => s.ledger.order(bought.ref!)?.state === 'filled', 'the marketable buy to fill', 10_000);
    assert.equal(s.ledger.positions.get('SPY')?.quantity, 10);
    const refs = await restingBuys(s, ['SPY', 'QQQ']);
    const lastBid = s.book('SPY')!.bestBid();
    const cancelsBefore = s.trader.counts.cancels;

    const books = s.services.current('books')!;
    const before = books.book(0)!.rejected[3]!;
    const resyncs: BookResync[] = [];
    s.bus.subscribe(BOOK_RESYNC_TOPIC, (r) => resyncs.push(r));
    s.sim.faults.corruptDepth('SPY', 'nan-prices');
    await until(() => s.gate.state === 'HALTED', 'the gate to halt', 10_000);
    assert.ok(books.book(0)!.rejected[3]! > before, 'NaN prices were rejected and counted, never applied');
    const halt = s.transitions.find((t) => t.to === 'HALTED')!;
    assert.equal(halt.by, 'feature_health');
    // Deletes carry no price and still apply: the book thins out until it has no mid (or, if no delete came, its data ages past the limit).
    assert.match(halt.reason, /SPY (\w+ is NaN or Inf in a model input|market data is \d+\.\d s old \(limit 1\.5 s\))/);
    await allCancelled(s, refs, cancelsBefore);

    const reducing = s.trader.order({ symbol: 'SPY', quantity: -10, limitPrice: round(lastBid), reason: 'flatten' });
    assert.equal(reducing.ok, false, 'not even a reducing order');
    assert.match((reducing as { reason: string }).reason, /^trading halted: SPY/);
    assert.equal(s.sim.broker.workingOrders().length, 0);

    // Clean prices again: the damaged book asks for a fresh snapshot and ends up row for row as TWS's, not merely thinned.
    s.sim.faults.corruptDepth('SPY', 'clean');
    const tws = s.sim.marketData.market.bookAt(0)!;
    const book = books.book(0)!;
    const sameRows = () => [0, 1].every((side) => Array.from({ length: 10 }, (_, row) => row).every((row) => book.rowPrice[side * book.maxRows + row] === tws.price[side]![row]! / 100));
    let rejected = book.totalRejected();
    let quietSince = Date.now();
    await until(
      () => {
        if (book.totalRejected() !== rejected) {
          rejected = book.totalRejected();
          quietSince = Date.now();
        }
        return Date.now() - quietSince >= 1_000 && sameRows();
      },
      "SPY's book to stop rejecting and match the simulator's row for row",
      15_000,
    );
    assert.ok(resyncs.length > 0 && resyncs.every((r) => r.symbol === 'SPY'), 'the book said it was out of sync');
    const spyDepth = s.bus.latest(SUBSCRIPTIONS_STATUS_TOPIC)!.feeds.find((f) => f.symbol === 'SPY' && f.kind === 'depth')!;
    assert.ok(spyDepth.rerequests > 0, 'and its depth was asked for again');
  } finally {
    await s.stop();
  }
});
