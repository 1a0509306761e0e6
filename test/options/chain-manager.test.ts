/**
 * The chain manager end to end: keel's real components (ib_connection,
 * subscriptions, option_chain) drive the unmodified @stoqey/ib client
 * against the simulator's SPY chain. The band is discovered and streamed
 * within the line budget (the simulator allows exactly that many lines, so
 * one too many is a 101) with no pacing violation (100); when SPY jumps
 * through the band it re-centres once, never holding more lines than the
 * budget; and every streamed contract's IV and greeks, computed by keel,
 * agree with the simulator's own surface.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { EventName } from '@stoqey/ib';
import { bsmGreeks, newGreeks } from '../../src/options/bsm.js';
import type { OptionChainView } from '../../src/options/chain-view.js';
import { SPY_DIVIDEND_YIELD, SPY_RATE } from '../../src/sim/options/chain.js';
import { OPTIONS_CHAIN_TOPIC } from '../../src/topics.js';
import { until } from '../support/ib-client.js';
import { CHAIN_LINES, startChainTree } from '../support/option-chain.js';

const dir = mkdtempSync(join(tmpdir(), 'keel-chain-'));
after(() => rmSync(dir, { recursive: true, force: true }));


const LINES = CHAIN_LINES;

async function start(name: string) {
  const { sim, tree } = await startChainTree(dir, name, { cooldownMs: 1_000 });
  /** Every error code the client saw, across reconnects. */
  const errors: number[] = [];
  const listen = () => tree.services.current('ibLink')!.api.on(EventName.error, (_e: Error, code: number) => errors.push(code));
  listen();
  const chain = () => tree.bus.latest(OPTIONS_CHAIN_TOPIC) as OptionChainView | undefined;
  const allLive = () => {
    const c = chain();
    return c !== undefined && c.rows.length > 0 && c.rows.every((r) => r.line === 'live' && r.bid === r.bid && r.ask === r.ask && r.ib.iv === r.ib.iv);
  };
  const simLines = () => [...sim.sessions].filter((session) => session.open).reduce((n, session) => n + sim.options.linesOf(session).length, 0);
  return {
    sim,
    tree,
    errors,
    chain,
    allLive,
    simLines,
    async stop() {
      tree.actor.send({ type: 'shutdown' });
      await until(() => tree.done, 'the tree to stop');
      await sim.close();
    },
  };
}

test('the band: discovered, streamed within the budget, re-centred when SPY moves through it, priced as the surface says', async () => {
  const { sim, errors, chain, allLive, simLines, stop } = await start('band');
  try {
    await until(allLive, 'every contract of the band live, quoted and computed by IB', 20_000);
    const first = chain()!;
    const listing = sim.options.listing;
    // Discovery: the day's expiries, and the two nearest in the band.
    assert.equal(first.listing.expiries, listing.expiries.length);
    const [front, next] = listing.allExpiries;
    assert.deepEqual([front, next], ['20260105', '20260106']);
    assert.deepEqual(Object.keys(first.centres).sort(), [front, next]);
    // Listed: every contract of the eight nearest expiries (the surface's), two of them streamed.
    const surfaceExpiries = listing.allExpiries.slice(0, 8);
    assert.equal(first.listing.contracts, surfaceExpiries.reduce((n, e) => n + listing.expiry(e)!.contracts.length, 0));
    assert.deepEqual(first.listed!.expiries, surfaceExpiries);
    // Within the budget: SPY's line and 40 option lines, nearest the money first.
    assert.equal(first.lines.allowance, LINES - 1);
    assert.equal(first.rows.length, LINES - 1);
    const spot = first.spot;
    const atm = first.centres[front!]!;
    assert.ok(Math.abs(atm - spot) <= 0.6, `centred on ${atm} with SPY at ${spot}`);
    assert.ok(first.rows.every((r) => Math.abs(r.strike - atm) <= 6), 'the strikes nearest the money');
    assert.ok(first.rows.every((r) => r.askSize > 0 && r.bidSize >= 0), 'displayed sizes with the quotes');
    assert.equal(simLines(), LINES - 1);
    assert.deepEqual(errors.filter((c) => c === 100 || c === 101), []);

    // SPY jumps $3.30 through the band: after the cooldown the band follows, once.
    const before = first.recentres;
    sim.faults.jumpPrice('SPY', 3.3);
    await until(() => chain()!.recentres > before && allLive(), 'the band to re-centre and its new lines to go live', 20_000);
    const moved = chain()!;
    assert.equal(moved.recentres, before + 1);
    const centre = moved.centres[front!]!;
    assert.ok(Math.abs(centre - moved.spot) <= 0.6 && centre >= atm + 3, `re-centred on ${centre} with SPY at ${moved.spot} (was ${atm})`);
    assert.equal(moved.rows.length, LINES - 1);
    assert.ok(moved.rows.every((r) => Math.abs(r.strike - centre) <= 6));
    assert.equal(simLines(), LINES - 1, 'the old lines cancelled, the new ones held');
    assert.deepEqual(errors.filter((c) => c === 100 || c === 101), [], 'no line beyond the budget, no pacing violation');

    // Every streamed contract: keel's IV within half a vol point of the surface, its price and greeks within a cent.
    await until(() => chain()!.rows.every((r) => r.keel.iv === r.keel.iv), 'an IV for every contract', 10_000);
    const c = chain()!;
    const g = newGreeks();
    const worst = { iv: 0, price: 0, delta: 0, gamma: 0, vega: 0, theta: 0 };
    for (const row of c.rows) {
      const contract = listing.byId(row.conId)!;
      const vol = sim.options.surfaceVol(row.conId);
      bsmGreeks(contract.right === 'C' ? 1 : -1, c.spot, contract.strike, row.years, SPY_RATE, SPY_DIVIDEND_YIELD, vol, g);
      worst.iv = Math.max(worst.iv, Math.abs(row.keel.iv - vol));
      for (const k of ['price', 'delta', 'gamma', 'vega', 'theta'] as const) worst[k] = Math.max(worst[k], Math.abs(row.keel[k] - g[k]));
    }
    assert.ok(worst.iv < 0.005, `IV within half a vol point: ${JSON.stringify(worst)}`);
    for (const k of ['price', 'delta', 'gamma', 'vega', 'theta'] as const) assert.ok(worst[k] < 0.01, `${k} within a cent: ${JSON.stringify(worst)}`);

    // The chain's features, for both streamed expiries: finite, and the skew negative as the simulator's surface has it.
    const features = c.features;
    for (const expiry of [front!, next!]) {
      const e = features.expiries[expiry]!;
      assert.ok([e.atmIv, e.riskReversal25, e.butterfly25].every(Number.isFinite), `${expiry} features: ${JSON.stringify(e)}`);
      assert.ok(e.riskReversal25 < 0, `${expiry} risk reversal negative: ${JSON.stringify(e)}`);
    }
    assert.ok(Number.isFinite(features.termSlope), `term slope: ${features.termSlope}`);
    assert.ok([features.net.delta1Pct, features.net.gamma1Pct, features.net.vega, features.net.theta].every(Number.isFinite) && features.net.contracts === c.rows.length, JSON.stringify(features.net));
    assert.ok(Number.isFinite(features.putCallVolume), `put/call volume: ${features.putCallVolume}`);

    // Contracts listed but not streamed are priced too: in the band's expiries from their fitted smiles, as well
    // as the streamed ones; in the others from the surface extended from those fits (a model: no quote checks it).
    const listed = c.listed!;
    assert.equal(listed.count, c.listing.contracts);
    assert.deepEqual([...listed.fromQuotes], surfaceExpiries.map((e) => (e === front || e === next ? 1 : 0)));
    const streamed = new Set(c.rows.map((r) => r.conId));
    const away = { iv: 0, price: 0, checked: 0 };
    const beyond = { iv: 0, checked: 0, expiries: new Set<string>() };
    for (let i = 0; i < listed.count; i++) {
      const conId = listed.conId[i]!;
      if (streamed.has(conId) || Math.abs(listed.strike[i]! - c.spot) > 8) continue;
      const vol = sim.options.surfaceVol(conId);
      if (listed.fromQuotes[listed.expiry[i]!] === 0) {
        beyond.iv = Math.max(beyond.iv, Math.abs(listed.vol[i]! - vol));
        beyond.expiries.add(listed.expiries[listed.expiry[i]!]!);
        beyond.checked++;
        continue;
      }
      bsmGreeks(listed.right[i] as 1 | -1, c.spot, listed.strike[i]!, listed.years[i]!, SPY_RATE, SPY_DIVIDEND_YIELD, vol, g);
      away.iv = Math.max(away.iv, Math.abs(listed.vol[i]! - vol));
      away.price = Math.max(away.price, Math.abs(listed.price[i]! - g.price));
      away.checked++;
    }
    assert.ok(away.checked >= 20, `${away.checked} contracts checked`);
    assert.ok(away.iv < 0.005 && away.price < 0.01, `not streamed, within $8 of SPY: ${JSON.stringify(away)}`);
    assert.equal(beyond.expiries.size, 6, 'every expiry beyond the band priced near the money');
    assert.ok(listed.vol.every((v) => v > 0 && v < 5), 'every listed contract has a volatility');
    // The extension holds the last fit's ATM vol where the simulator's term structure goes on moving: measured 3.6 vol points at worst.
    assert.ok(beyond.iv < 0.06, `beyond the band: ${beyond.checked} contracts within $8, worst IV error ${(beyond.iv * 100).toFixed(2)} vol points`);
  } finally {
    await stop();
  }
});

test('after a reconnect every line of the band is asked for again, within the budget, and the chain streams on', async () => {
  const { sim, tree, errors, chain, allLive, simLines, stop } = await start('reconnect');
  try {
    await until(allLive, 'the band live', 20_000);
    const before = chain()!.rows.map((r) => r.conId);
    assert.equal(sim.faults.dropConnections(), 1);
    await until(() => tree.services.current('ibLink')?.ready === true && simLines() === LINES - 1, 'the band requested again on the new connection', 20_000);
    // Fresh quotes on the new lines: every row quoted and priced again.
    const pricedAt = chain()!.pricedAt;
    await until(() => chain()!.pricedAt > pricedAt && allLive() && chain()!.rows.every((r) => r.keel.iv === r.keel.iv), 'the chain live again', 20_000);
    assert.deepEqual(chain()!.rows.map((r) => r.conId), before, 'the same band');
    assert.deepEqual(errors.filter((c) => c === 100 || c === 101), []);
  } finally {
    await stop();
  }
});
