/**
 * A trading tree in book mode on a simulator's market (journal, IB link,
 * subscriptions, books, risk gate, paper trader; no predictor: the test
 * places every order), on a clock whose wall time the test sets. Shared by
 * the daily loss tests and their child-process fixture.
 */
import assert from 'node:assert/strict';
import { ibConnectionSettings } from '../../src/actors/ib-connection.js';
import { journalSettings } from '../../src/actors/journal.js';
import { l2MicrostructureSettings } from '../../src/actors/l2-microstructure.js';
import { paperTraderSettings } from '../../src/actors/paper-trader.js';
import { componentSpec } from '../../src/actors/registry.js';
import { riskGateSettings } from '../../src/actors/risk-gate.js';
import { subscriptionsSettings } from '../../src/actors/subscriptions.js';
import { systemClock, type Clock } from '../../src/clock.js';
import { until } from './ib-client.js';
import { startTree } from './probe.js';

/** Real time, with a wall clock that starts where the test says and can be moved (monotonic time goes on as it was). */
export class WallClock implements Clock {
  private wallAtOrigin: number;
  private origin = performance.now();

  constructor(wall: number) {
    this.wallAtOrigin = wall;
  }

  now(): number {
    return performance.now();
  }

  wallNow(): number {
    return this.wallAtOrigin + (performance.now() - this.origin);
  }

  setTimeout(fn: () => void, ms: number): unknown {
    return systemClock.setTimeout(fn, ms);
  }

  clearTimeout(handle: unknown): void {
    systemClock.clearTimeout(handle);
  }

  /** From now on the wall clock reads `wall`, and runs on from there. */
  setWall(wall: number): void {
    this.wallAtOrigin = wall;
    this.origin = performance.now();
  }
}

export interface BookSessionOptions {
  readonly journal: string;
  readonly orderIdFile: string;
  /** The simulator's TWS port. */
  readonly port: number;
  readonly clock: Clock;
  readonly maxDailyLoss: number;
  /** Commission per order (IB's minimum per order, the per-share fee being negligible for one share). */
  readonly feePerOrder: number;
  /** The horizon the trader's policy reads (default 10s). */
  readonly policyHorizon?: string;
}

export async function startBookSession(o: BookSessionOptions) {
  const tree = startTree(
    {
      children: [
        componentSpec('journal', 'journal', { settings: journalSettings.parse({ path: o.journal }) }),
        componentSpec('ib_connection', 'ib_connection', { settings: ibConnectionSettings.parse({ port: o.port, orderIdFile: o.orderIdFile }), dependsOn: ['journal'] }),
        componentSpec('subscriptions', 'subscriptions', {
          settings: subscriptionsSettings.parse({ instruments: [{ symbol: 'SPY', depth: { rows: 10 }, ticks: 'AllLast' }] }),
          dependsOn: ['ib_connection'],
        }),
        componentSpec('l2_microstructure', 'l2_microstructure', { settings: l2MicrostructureSettings.parse({}), dependsOn: ['subscriptions'] }),
        componentSpec('risk_gate', 'risk_gate', { settings: riskGateSettings.parse({ limits: { maxDailyLoss: o.maxDailyLoss } }), dependsOn: ['journal'] }),
        componentSpec('paper_trader', 'paper_trader', {
          settings: paperTraderSettings.parse({ mode: 'book', replaceAfterMs: 600_000, book: { minFeePerOrder: o.feePerOrder }, policy: { horizon: o.policyHorizon ?? '10s' } }),
          dependsOn: ['l2_microstructure', 'risk_gate'],
        }),
      ],
    },
    o.clock,
    'dayloss',
  );
  await until(() => tree.phase() === 'running', 'the tree to run', 10_000);
  const { services } = tree;
  const trader = services.current('trader')!;
  const ledger = services.current('ledger')!;
  const gate = services.current('riskGate')!;
  await until(() => services.current('books')?.book(0)?.twoSided() === true, 'a two-sided SPY book', 10_000);

  /** A marketable order of `quantity` SPY, filled. */
  const trade = async (quantity: number) => {
    const placed = trader.order({ symbol: 'SPY', quantity, reason: 'placed by the test' });
    assert.equal(placed.ok, true, JSON.stringify(placed));
    await until(() => ledger.order(placed.ref!)?.state === 'filled', `order ${placed.ref} to fill`, 10_000);
  };
  /** Buys one share at the ask and sells it at the bid: the spread and two commissions lost. */
  const roundTrip = async () => {
    await trade(1);
    await trade(-1);
  };
  const stop = async () => {
    tree.actor.send({ type: 'shutdown' });
    await until(() => tree.done, 'the tree to stop', 10_000);
  };
  return { tree, trader, ledger, gate, trade, roundTrip, stop };
}
