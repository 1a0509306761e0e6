/**
 * What the option chain's tests share: a clock that reads Monday morning,
 * subscriptions holding SPY's quote line, the chain on the simulator, and
 * the option trading tree.
 */
import assert from 'node:assert/strict';
import { l2MicrostructureSettings } from '../../src/actors/l2-microstructure.js';
import { optionChainSettings } from '../../src/actors/option-chain.js';
import { paperTraderSettings } from '../../src/actors/paper-trader.js';
import { componentSpec } from '../../src/actors/registry.js';
import { riskGateSettings } from '../../src/actors/risk-gate.js';
import { subscriptionsSettings } from '../../src/actors/subscriptions.js';
import type { OptionContract } from '../../src/journal/records.js';
import type { ChainRow, OptionChainView } from '../../src/options/chain-view.js';
import { optionRisk } from '../../src/options/option-risk.js';
import type { Ledger } from '../../src/trading/ledger.js';
import type { OptionRisk } from '../../src/trading/option-limits.js';
import { OPTIONS_CHAIN_TOPIC, PREDICTIONS_TOPIC } from '../../src/topics.js';
import { marketClock, type Clock } from '../../src/clock.js';
import { TwsSimulator } from '../../src/sim/server.js';
import type { ChildSpec } from '../../src/supervision/spec.js';
import { until } from './ib-client.js';
import { journalAndConnection } from './ib-tree.js';
import { startTree } from './probe.js';
import { predictionFrame } from './predictions.js';

/** Monday 2026-01-05 11:00 New York. */
export const WALL_START = Date.UTC(2026, 0, 5, 16, 0);

/** Real time, read as if it began at WALL_START: the day's expiry five hours away whenever the test runs, so the chain and its greeks are the same at any hour. */
export function mondayMorning(): Clock {
  return marketAt(WALL_START);
}

/** A market clock that reads `marketStart` now and runs `speed` times as fast as real time from here. */
export function marketAt(marketStart: number, speed = 1): Clock {
  return marketClock({ speed, marketStart, realStart: Date.now() });
}

/** subscriptions with SPY's quote line (what prices the chain) under a budget of `lines` market-data lines: the rest are the chain's. */
export function spyQuoteLine(lines: number): ChildSpec {
  return componentSpec('subscriptions', 'subscriptions', {
    settings: subscriptionsSettings.parse({ instruments: [{ symbol: 'SPY' }], budgets: { marketDataLines: lines, depthSlots: 3, tickByTickSlots: 3 } }),
    dependsOn: ['ib_connection'],
  });
}

/** SPY's quote line and 40 option lines: ten strikes a side of two expiries; the simulator allows exactly as many. */
export const CHAIN_LINES = 41;

/**
 * The simulator's SPY chain on a Monday morning (or on `clock`), under
 * CHAIN_LINES, and a running tree of keel's journal, ib_connection,
 * subscriptions (SPY's quote line) and option_chain (`0..1`, `atm ± 10`,
 * priced every 100 ms; `chain` overrides), with `extra` children after them.
 */
export async function startChainTree(dir: string, name: string, chain: object = {}, extra: ChildSpec[] = [], clock: Clock = mondayMorning()) {
  const sim = new TwsSimulator({ clock, updatesPerSecond: 50, seed: 5, limits: { marketDataLines: CHAIN_LINES } });
  const port = await sim.listen(0);
  const tree = startTree(
    {
      children: [
        ...journalAndConnection(dir, name, port),
        spyQuoteLine(CHAIN_LINES),
        componentSpec('option_chain', 'option_chain', {
          settings: optionChainSettings.parse({ expiries: '0..1', strikes: 'atm ± 10', publishMs: 100, ...chain }),
          dependsOn: ['subscriptions'],
        }),
        ...extra,
      ],
    },
    clock,
  );
  await until(() => tree.phase() === 'running', 'the tree to run', 15_000);
  return { clock, sim, tree };
}

/**
 * Books, the gate, the paper trader (its stock policy out of reach) and the
 * chain (the nearest expiry, three strikes a side) on the simulator's SPY
 * chain, running with the band live, quoted and priced. `trader` and
 * `optionLimits` are added to the paper trader's settings (book mode
 * unless they say otherwise) and the gate's option limits.
 */
export async function startOptionTrading(dir: string, name: string, clock: Clock, trader: object = {}, optionLimits: object = {}) {
  const sim = new TwsSimulator({ clock, updatesPerSecond: 100, seed: 3 });
  const port = await sim.listen(0);
  const tree = startTree(
    {
      children: [
        ...journalAndConnection(dir, name, port),
        componentSpec('subscriptions', 'subscriptions', {
          settings: subscriptionsSettings.parse({ instruments: [{ symbol: 'SPY', depth: { rows: 10 } }] }),
          dependsOn: ['ib_connection'],
        }),
        componentSpec('l2_microstructure', 'l2_microstructure', { settings: l2MicrostructureSettings.parse({}), dependsOn: ['subscriptions'] }),
        componentSpec('risk_gate', 'risk_gate', { settings: riskGateSettings.parse({ initialState: 'ACTIVE', limits: { options: optionLimits } }), dependsOn: ['journal'] }),
        componentSpec('paper_trader', 'paper_trader', { settings: paperTraderSettings.parse({ mode: 'book', replaceAfterMs: 600_000, policy: { entryBps: 1_000 }, ...trader }), dependsOn: ['l2_microstructure', 'risk_gate'] }),
        componentSpec('option_chain', 'option_chain', { settings: optionChainSettings.parse({ expiries: '0..0', strikes: 'atm ± 3', publishMs: 100 }), dependsOn: ['subscriptions'] }),
      ],
    },
    clock,
  );
  await until(() => tree.phase() === 'running', 'the tree to run', 15_000);
  const chain = () => tree.bus.latest(OPTIONS_CHAIN_TOPIC)!;
  await until(() => {
    const c = tree.bus.latest(OPTIONS_CHAIN_TOPIC);
    // Near the close a deep in-the-money quote may have no IV (and so no delta): the calls near the money must.
    return c !== undefined && c.rows.length > 0 && c.rows.every((r) => r.line === 'live' && r.ask > 0 && r.askSize > 0) && c.rows.filter((r) => r.right === 'C' && r.keel.delta === r.keel.delta).length >= 3;
  }, 'the band live, quoted and priced', 30_000);
  return {
    sim,
    port,
    tree,
    chain,
    trader: tree.services.current('trader')!,
    ledger: tree.services.current('ledger')!,
    /** A prediction frame for SPY, as the predictor would publish it. */
    predict(bps: number) {
      const at = clock.now();
      tree.bus.retain(PREDICTIONS_TOPIC, predictionFrame({ frameAt: at, symbols: ['SPY'], value: [bps], tier: ['test'], models: ['test'] }));
    },
    async stop() {
      tree.actor.send({ type: 'shutdown' });
      await until(() => tree.done, 'the tree to stop');
      await sim.close();
    },
  };
}

/** The contract a chain row lists, as the journal records it (SPY's 100 a contract). */
export function contractOf(row: ChainRow): OptionContract {
  return { conId: row.conId, underlying: 'SPY', expiry: row.expiry, strike: row.strike, right: row.right, multiplier: 100 };
}

/** The chain's row of `right` nearest the money. */
export function nearestTheMoney(chain: OptionChainView, right: 'C' | 'P'): ChainRow {
  return chain.rows.filter((r) => r.right === right).sort((a, b) => Math.abs(a.strike - chain.spot) - Math.abs(b.strike - chain.spot))[0]!;
}

/** The chain's row of `right` deepest in the money that still has a bid. */
export function deepestInTheMoney(chain: OptionChainView, right: 'C' | 'P'): ChainRow {
  return chain.rows.filter((r) => r.right === right && r.bid > 0).sort((a, b) => (right === 'C' ? a.strike - b.strike : b.strike - a.strike))[0]!;
}

/** The option's risk now, which must be one (not a reason there is none). */
export function riskOf(option: OptionContract, chain: OptionChainView, ledger: Ledger): OptionRisk {
  const risk = optionRisk(option, chain, ledger);
  assert.ok(typeof risk !== 'string', String(risk));
  return risk;
}
