/**
 * A real tree with an option chain and the inspector, for the inspector's
 * chain tests: the simulator's SPY chain, keel's journal, ib_connection,
 * subscriptions and option_chain, and the inspector on a free port. Real
 * time read as Monday 2026-01-05 11:00 New York (as in
 * test/options/chain-manager.test.ts), so the day's expiry is five hours
 * away whenever the test runs.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspectorSettings } from '../../src/actors/inspector.js';
import { componentSpec } from '../../src/actors/registry.js';
import type { ChainPanel } from '../../src/inspector/protocol.js';
import { INSPECTOR_TOPIC, OPTIONS_CHAIN_TOPIC } from '../../src/topics.js';
import { until } from '../support/ib-client.js';
import { startChainTree } from '../support/option-chain.js';


export async function startChainDaemon(name: string) {
  const dir = mkdtempSync(join(tmpdir(), `keel-inspector-chain-`));
  const inspector = componentSpec('inspector', 'inspector', { settings: inspectorSettings.parse({ port: 0, tokenFile: join(dir, 'token') }) });
  const { sim, tree } = await startChainTree(dir, name, {}, [inspector]);
  const { url } = tree.bus.latest(INSPECTOR_TOPIC)!;
  return {
    sim,
    tree,
    url,
    chain: () => tree.bus.latest(OPTIONS_CHAIN_TOPIC),
    async stop() {
      tree.actor.send({ type: 'shutdown' });
      await until(() => tree.done, 'the tree to stop', 10_000);
      await sim.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Every contract of the panel. */
export const quotes = (chain: ChainPanel) => chain.expiries.flatMap((e) => e.strikes.flatMap((s) => [s.call, s.put])).filter((q) => q !== null);

/** Every contract live, with a bid, an ask, keel's IV and delta, and each expiry's smile fitted. */
export const complete = (chain: ChainPanel | null | undefined): boolean =>
  !!chain &&
  chain.expiries.length > 0 &&
  chain.expiries.every((e) => e.fitPoints > 0 && e.smile.length > 0) &&
  quotes(chain).length > 0 &&
  quotes(chain).every((q) => q.line === 'live' && q.bid !== null && q.ask !== null && q.iv !== null && q.delta !== null);
