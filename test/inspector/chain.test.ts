/**
 * The option chain through the inspector's protocol, from a real run: the
 * simulator's SPY chain, keel's option_chain pricing it, the inspector
 * serving it on /ws and /api/chain. Without an option_chain the page and
 * `keel inspect` get `chain: null` and no chain messages.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CHAIN_INTERVAL_MS, type ChainPanel } from '../../src/inspector/protocol.js';
import { startInspected, StreamClient } from '../support/inspector.js';
import { Probes } from '../support/probe.js';
import { complete, quotes, startChainDaemon } from './chain-daemon.js';

test('the chain panel from a real run: every band contract with bid, ask, IV and delta, the smile, at most twice a second, and /api/chain', { timeout: 30_000 }, async (t) => {
  const daemon = await startChainDaemon('chain-panel');
  t.after(() => daemon.stop());
  const client = new StreamClient(daemon.url);
  t.after(() => client.close());
  await client.waitFor('the snapshot', () => client.of('snapshot').length > 0);
  assert.notEqual(client.of('snapshot')[0]!.chain, null, 'the snapshot carries the chain: option_chain publishes from its start');
  const firstAt = performance.now();
  const panels = () => client.of('chain').map((m) => m.chain);
  await client.waitFor('a chain message with every contract live and priced', () => complete(panels().at(-1)), 20_000);
  const chain: ChainPanel = panels().at(-1)!;
  const view = daemon.chain()!;

  assert.equal(chain.underlying, 'SPY');
  assert.equal(chain.phase, 'streaming');
  assert.ok(chain.spot !== null && chain.spot > 0);
  assert.deepEqual(chain.expiries.map((e) => e.expiry), ['20260105', '20260106']);
  // The band as option_chain holds it: the same contracts, each once.
  const conIds = quotes(chain).map((q) => q.conId);
  assert.equal(new Set(conIds).size, conIds.length);
  assert.deepEqual([...conIds].sort(), view.rows.map((r) => r.conId).sort());
  assert.equal(conIds.length, 40);
  assert.equal(chain.lines.live, 40);

  for (const e of chain.expiries) {
    const strikes = e.strikes.map((s) => s.strike);
    assert.deepEqual(strikes, [...strikes].sort((a, b) => a - b), 'strikes ascending');
    const nearest = strikes.reduce((best, k) => (Math.abs(k - chain.spot!) < Math.abs(best - chain.spot!) ? k : best));
    assert.equal(e.atmStrike, nearest, `${e.expiry}: the ATM strike is the band's nearest to ${chain.spot}`);
    assert.ok(e.atmIv !== null && e.atmIv > 0.03 && e.atmIv < 1, `${e.expiry} ATM IV ${e.atmIv}`);
    for (const s of e.strikes) {
      for (const q of [s.call, s.put]) {
        if (!q) continue;
        assert.ok(q.bid! >= 0 && q.ask! >= q.bid!, `${e.expiry} ${s.strike}: bid ${q.bid} ask ${q.ask}`);
        assert.ok(q.iv! > 0.01 && q.iv! < 3, `${e.expiry} ${s.strike}: IV ${q.iv}`);
      }
      if (s.call) assert.ok(s.call.delta! > 0 && s.call.delta! < 1, `call delta ${s.call.delta}`);
      if (s.put) assert.ok(s.put.delta! < 0 && s.put.delta! > -1, `put delta ${s.put.delta}`);
    }
    // The smile spans the band and beyond, and at a band strike it is the volatility keel priced the band at.
    const smile = new Map(e.smile);
    assert.ok(e.smile[0]![0] < strikes[0]! && e.smile.at(-1)![0] > strikes.at(-1)!, `${e.expiry}: the smile from ${e.smile[0]![0]} to ${e.smile.at(-1)![0]} around ${strikes[0]}..${strikes.at(-1)}`);
    for (const s of e.strikes) {
      const iv = (s.call ?? s.put)!.iv!;
      assert.ok(Math.abs(smile.get(s.strike)! - iv) < 1e-9, `${e.expiry} ${s.strike}: smile ${smile.get(s.strike)} vs keel ${iv}`);
    }
  }

  // Throttled: however often the chain is re-priced (every 100 ms here), a chain message at most every CHAIN_INTERVAL_MS.
  const elapsed = performance.now() - firstAt;
  const sent = client.of('chain').length;
  assert.ok(sent <= Math.ceil(elapsed / CHAIN_INTERVAL_MS) + 2, `${sent} chain messages in ${Math.round(elapsed)} ms`);

  const res = await fetch(`${daemon.url}/api/chain`);
  assert.equal(res.status, 200);
  const served = (await res.json()) as ChainPanel;
  assert.equal(served.underlying, 'SPY');
  assert.deepEqual(served.expiries.map((e) => e.strikes.length), chain.expiries.map((e) => e.strikes.length));
});

test('without an option_chain: chain null in the snapshot, no chain messages, /api/chain 503', { timeout: 30_000 }, async (t) => {
  const daemon = await startInspected([new Probes().spec('feed')]);
  t.after(() => daemon.stop());
  const client = new StreamClient(daemon.url);
  t.after(() => client.close());
  await client.waitFor('the snapshot and two panels messages', () => client.of('snapshot').length > 0 && client.of('panels').length >= 2, 10_000);
  assert.equal(client.of('snapshot')[0]!.chain, null);
  assert.deepEqual(client.of('chain'), []);
  const res = await fetch(`${daemon.url}/api/chain`);
  assert.equal(res.status, 503);
  assert.match(((await res.json()) as { error: string }).error, /no option chain yet: is the option_chain component configured/);
});
