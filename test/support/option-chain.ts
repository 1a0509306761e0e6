/** What the option chain's tests share: a clock that reads Monday morning, and subscriptions holding SPY's quote line. */
import { optionChainSettings } from '../../src/actors/option-chain.js';
import { componentSpec } from '../../src/actors/registry.js';
import { subscriptionsSettings } from '../../src/actors/subscriptions.js';
import { systemClock, type Clock } from '../../src/clock.js';
import { TwsSimulator } from '../../src/sim/server.js';
import type { ChildSpec } from '../../src/supervision/spec.js';
import { until } from './ib-client.js';
import { journalAndConnection } from './ib-tree.js';
import { startTree } from './probe.js';

/** Monday 2026-01-05 11:00 New York. */
export const WALL_START = Date.UTC(2026, 0, 5, 16, 0);

/** Real time, read as if it began at WALL_START: the day's expiry five hours away whenever the test runs, so the chain and its greeks are the same at any hour. */
export function mondayMorning(): Clock {
  const offset = WALL_START - Date.now();
  return { ...systemClock, wallNow: () => Date.now() + offset };
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
 * The simulator's SPY chain on a Monday morning, under CHAIN_LINES, and a
 * running tree of keel's journal, ib_connection, subscriptions (SPY's quote
 * line) and option_chain (`0..1`, `atm ± 10`, priced every 100 ms; `chain`
 * overrides), with `extra` children after them.
 */
export async function startChainTree(dir: string, name: string, chain: object = {}, extra: ChildSpec[] = []) {
  const clock = mondayMorning();
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
