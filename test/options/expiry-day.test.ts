/**
 * A whole expiry day on a market clock running 1,200 times as fast as real
 * time: the simulator and keel's chain tree from before Monday's open to
 * past its close in about 20 s. The 0DTE chain keeps pricing all day with
 * its time to expiry shrinking to zero, its health judged on real time
 * (never stale for the calendar's speed), and after the close the expired
 * expiry leaves the band and the next one is the 0DTE.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ChainHealth } from '../../src/options/chain-health.js';
import { MS_PER_YEAR } from '../../src/options/expiry.js';
import { OPTIONS_CHAIN_TOPIC } from '../../src/topics.js';
import { until } from '../support/ib-client.js';
import { marketAt, startChainTree } from '../support/option-chain.js';

const dir = mkdtempSync(join(tmpdir(), 'keel-expiry-day-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const MINUTE = 60_000;
/** Monday 2026-01-05 in New York (EST): the open, and the close that is the 0DTE's expiry moment. */
const OPEN = Date.UTC(2026, 0, 5, 14, 30);
const CLOSE = Date.UTC(2026, 0, 5, 21, 0);
const SPEED = 1_200;

/** What one publication of the chain said, copied: the view is re-priced in place. */
interface Published {
  readonly pricedAt: number;
  readonly expiries: readonly string[];
  readonly years: readonly number[];
  readonly priced: number;
  readonly rows: number;
  readonly problems: readonly string[];
}

test('a whole expiry day at 1,200 times real time: the 0DTE prices to its close, then the next expiry is the 0DTE', { timeout: 120_000 }, async () => {
  // Starting up takes a second or two of real time, up to 40 minutes of this market: an hour before the open leaves room.
  const clock = marketAt(OPEN - 60 * MINUTE, SPEED);
  const { sim, tree } = await startChainTree(dir, 'expiry-day', { expiries: '0..0', strikes: 'atm ± 3' }, [], clock);
  const health = new ChainHealth({ maxQuoteAgeMs: 5_000, noIvGraceMs: 2_000 });
  const seen: Published[] = [];
  const stop = tree.bus.subscribe(OPTIONS_CHAIN_TOPIC, (view) => {
    if (view.pricedAt !== view.pricedAt || view.pricedAt === seen.at(-1)?.pricedAt) return;
    seen.push({
      pricedAt: view.pricedAt,
      expiries: [...new Set(view.rows.map((r) => r.expiry))],
      years: view.rows.map((r) => r.years),
      priced: view.rows.filter((r) => r.keel.iv === r.keel.iv).length,
      rows: view.rows.length,
      problems: [...health.judge(view, clock.now()).keys()],
    });
  });
  try {
    const nextDay = () => seen.some((p) => p.pricedAt > CLOSE && p.expiries.length === 1 && p.expiries[0] === '20260106' && p.priced > 0);
    await until(nextDay, 'the close to pass and the next expiry to be priced as the 0DTE', 90_000);

    const day = seen.filter((p) => p.pricedAt >= OPEN && p.pricedAt < CLOSE);
    assert.ok(day.every((p) => p.expiries.length === 1 && p.expiries[0] === '20260105'), 'all day the band is the 0DTE');
    for (const p of day) {
      for (const years of p.years) assert.ok(Math.abs(years - (CLOSE - p.pricedAt) / MS_PER_YEAR) < 1e-12, `priced at ${new Date(p.pricedAt).toISOString()} with ${years} years to the close`);
    }
    assert.ok(day.every((p, i) => i === 0 || p.years[0]! < day[i - 1]!.years[0]!), 'time to expiry only shrinks');
    // A publication every 100 ms of real time is 2 minutes of this market: the last comes minutes from the close.
    assert.ok(day.at(-1)!.years[0]! * MS_PER_YEAR < 20 * MINUTE, `priced until minutes from the close: the last at ${new Date(day.at(-1)!.pricedAt).toISOString()}`);
    // Every hour of the session (3 s of real time) most of the band was priced.
    for (let at = OPEN; at < CLOSE; at += 60 * MINUTE) {
      const hour = day.filter((p) => p.pricedAt >= at && p.pricedAt < Math.min(at + 60 * MINUTE, CLOSE));
      assert.ok(hour.some((p) => p.priced >= p.rows / 2), `priced from ${new Date(at).toISOString()} for an hour: ${JSON.stringify(hour.map((p) => p.priced))}`);
    }
    // From the first quote on. A quote lagging the underlying right at the close may have no IV for a moment; a stale or missing chain never.
    const quoted = seen.slice(seen.findIndex((p) => p.priced > 0));
    const problems = new Set(quoted.flatMap((p) => p.problems).filter((k) => !k.startsWith('no iv')));
    assert.deepEqual([...problems], [], 'the chain was never stale, crossed nor gone');

    const afterClose = seen.filter((p) => p.pricedAt > CLOSE);
    assert.ok(afterClose.every((p) => p.expiries.every((e) => e === '20260105' || e === '20260106')));
    const next = afterClose.find((p) => p.expiries[0] === '20260106' && p.priced > 0)!;
    assert.ok(next.years.every((y) => y > 0), 'the new 0DTE has time left');
    assert.deepEqual(tree.errors, []);
    assert.equal(tree.child('option_chain').incarnation, 1, 'option_chain never restarted');
    const errors = tree.sink.lines.filter((l) => (l.level as number) >= 50);
    assert.deepEqual(errors.map((l) => l.msg), [], 'no error logged');
    assert.equal(tree.sink.messages().filter((m) => /option chain discovered/.test(m)).length, 2, "discovered twice: the day's chain, and after the close the next");
  } finally {
    stop();
    tree.actor.send({ type: 'shutdown' });
    await until(() => tree.done, 'the tree to stop');
    await sim.close();
  }
});
