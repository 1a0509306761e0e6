/**
 * Record and replay carry the option chain: a short session of keel's real
 * components (ib_connection, subscriptions, option_chain, the recorder) on
 * the simulator's SPY chain is recorded, with a re-centring of the band in
 * it; the recording replayed through the same chain, from the recording,
 * publishes at each recorded pricing the same contracts, quotes, prints, IB
 * computations and keel IVs and greeks as the live chain did. A replay
 * whose band asks for contracts the recording never streamed prices what
 * it has; a recording from before option chains (version 1) still replays.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, test } from 'node:test';
import { stringify } from 'yaml';
import { featuresSettings } from '../../src/actors/features.js';
import { l2MicrostructureSettings } from '../../src/actors/l2-microstructure.js';
import { optionChainSettings } from '../../src/actors/option-chain.js';
import { recorderSettings } from '../../src/actors/recorder.js';
import { componentSpec } from '../../src/actors/registry.js';
import { Bus } from '../../src/bus.js';
import { parseConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/log.js';
import type { OptionChainView } from '../../src/options/chain-view.js';
import { encodeHeader, openRecording } from '../../src/replay/recording.js';
import { replay } from '../../src/replay/replay.js';
import { TwsSimulator } from '../../src/sim/server.js';
import { writeMarketTape } from '../../src/sim/tape.js';
import { OPTIONS_CHAIN_TOPIC } from '../../src/topics.js';
import { until } from '../support/ib-client.js';
import { journalAndConnection } from '../support/ib-tree.js';
import { runKeel } from '../support/process.js';
import { startTree } from '../support/probe.js';
import { mondayMorning, spyQuoteLine } from '../support/option-chain.js';

const dir = mkdtempSync(join(tmpdir(), 'keel-chain-replay-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const quiet = createLogger({ level: 'warn', destination: new Writable({ write: (_c, _e, done) => done() }) });


const LINES = 41;
const CHAIN = { expiries: '0..1', strikes: 'atm ± 10', cooldownMs: 1_000, publishMs: 100 };

/** What a pricing published: copied, as the view is re-priced in place. */
function snapshot(v: OptionChainView) {
  return {
    pricedAt: v.pricedAt,
    spot: v.spot,
    centres: { ...v.centres },
    recentres: v.recentres,
    rows: v.rows.map((r) => ({ conId: r.conId, localSymbol: r.localSymbol, expiry: r.expiry, strike: r.strike, right: r.right, multiplier: r.multiplier, bid: r.bid, ask: r.ask, volume: r.volume, last: r.last, lastSize: r.lastSize, prints: r.prints, midIv: r.midIv, keel: { ...r.keel }, ib: { ...r.ib } })),
  };
}
type Snapshot = ReturnType<typeof snapshot>;

/** Every pricing published on `bus` (views published without a new price, while discovering, are skipped), the line of each row at the last, and how many views were published. */
function pricings(bus: Bus): { seen: Snapshot[]; lines: Map<number, string>; views: () => number } {
  const seen: Snapshot[] = [];
  const lines = new Map<number, string>();
  let views = 0;
  bus.subscribe(OPTIONS_CHAIN_TOPIC, (v) => {
    views++;
    if (v.pricedAt === v.pricedAt && v.pricedAt !== seen.at(-1)?.pricedAt) seen.push(snapshot(v));
    lines.clear();
    for (const r of v.rows) lines.set(r.conId, r.line);
  });
  return { seen, lines, views: () => views };
}

/** The daemon config a replay runs, as YAML: the IB side (left out by the replay), books, features and the chain. */
function replayYaml(chain: Record<string, unknown>): string {
  return stringify({
    instance: 'chain-replay',
    components: {
      simulator: { kind: 'simulator', settings: { port: 1 } },
      ib_connection: { kind: 'ib_connection', dependsOn: ['simulator'], settings: { port: 1, orderIdFile: join(dir, 'replay-ids.json') } },
      subscriptions: { kind: 'subscriptions', dependsOn: ['ib_connection'], settings: { instruments: [{ symbol: 'SPY' }] } },
      l2_microstructure: { kind: 'l2_microstructure', dependsOn: ['subscriptions'] },
      features: { kind: 'features', dependsOn: ['l2_microstructure'] },
      option_chain: { kind: 'option_chain', dependsOn: ['subscriptions'], settings: chain },
    },
  });
}

let journals = 0;
async function replayed(path: string, chain: Record<string, unknown>) {
  const bus = new Bus();
  const { seen: published, lines, views } = pricings(bus);
  const summary = await replay({ recording: await openRecording(path), config: parseConfig(replayYaml(chain), 'chain-replay.yaml'), speed: Infinity, journalPath: join(dir, `journal-${++journals}.keel`), log: quiet, bus });
  return { summary, published, lines, views: views() };
}

/** Records a session of the chain on the simulator, with one move of the band; returns the file and what the live chain priced. */
async function recordSession(): Promise<{ path: string; live: Snapshot[] }> {
  const recordings = join(dir, 'recordings');
  const clock = mondayMorning();
  const sim = new TwsSimulator({ clock, updatesPerSecond: 50, seed: 5, limits: { marketDataLines: LINES } });
  const port = await sim.listen(0);
  const tree = startTree(
    {
      children: [
        ...journalAndConnection(dir, 'record', port),
        spyQuoteLine(LINES),
        componentSpec('l2_microstructure', 'l2_microstructure', { settings: l2MicrostructureSettings.parse({}), dependsOn: ['subscriptions'] }),
        componentSpec('features', 'features', { settings: featuresSettings.parse({}), dependsOn: ['l2_microstructure'] }),
        componentSpec('recorder', 'recorder', { settings: recorderSettings.parse({ dir: recordings, chunkRows: 256, flushMs: 200 }), dependsOn: ['features'] }),
        // After the recorder: the recording holds the chain from its discovery on.
        componentSpec('option_chain', 'option_chain', { settings: optionChainSettings.parse(CHAIN), dependsOn: ['subscriptions', 'recorder'] }),
      ],
    },
    clock,
  );
  const live = pricings(tree.bus).seen;
  try {
    await until(() => tree.phase() === 'running', 'the tree to run', 15_000);
    const chain = () => tree.bus.latest(OPTIONS_CHAIN_TOPIC);
    const allLive = () => {
      const c = chain();
      return c !== undefined && c.rows.length > 0 && c.rows.every((r) => r.line === 'live' && r.bid === r.bid && r.ask === r.ask && r.ib.iv === r.ib.iv && r.keel.iv === r.keel.iv);
    };
    await until(allLive, 'the band live and priced', 20_000);
    sim.faults.jumpPrice('SPY', 3.3);
    await until(() => chain()!.recentres === 1 && allLive(), 'the band to re-centre and be priced again', 20_000);
    const moved = live.length;
    await until(() => live.length >= moved + 5, 'a few more pricings', 10_000);
  } finally {
    tree.actor.send({ type: 'shutdown' });
    await until(() => tree.done, 'the tree to stop');
    await sim.close();
  }
  const files = readdirSync(recordings);
  assert.equal(files.length, 1);
  return { path: join(recordings, files[0]!), live };
}

test('a recorded chain replays through the same chain: the same contracts, quotes, IB computations and keel greeks at every pricing', { timeout: 120_000 }, async () => {
  const { path, live } = await recordSession();
  assert.ok(live.length >= 10, `${live.length} live pricings`);
  assert.equal(live.at(-1)!.recentres, 1);

  const { summary, published } = await replayed(path, CHAIN);
  assert.equal(summary.optionListings, 1);
  assert.ok(summary.optionRows > summary.optionPricings && summary.optionPricings >= live.length, `${summary.optionRows} option rows, ${summary.optionPricings} pricings`);
  // Every live pricing, in order, at the same instant: the band (before and after it moved), each row's quote, IB's computation, keel's IV and greeks.
  assert.equal(published.length, live.length);
  for (let i = 0; i < live.length; i++) assert.deepStrictEqual(published[i], live[i], `pricing ${i} of ${live.length}`);
  const last = published.at(-1)!;
  assert.equal(last.recentres, 1, 'the replay moved the band too');
  assert.ok(last.rows.length === LINES - 1 && last.rows.every((r) => Number.isFinite(r.ib.iv) && Number.isFinite(r.ib.delta) && Number.isFinite(r.ib.underlying)), "IB's computations carried");
  assert.ok(last.rows.every((r) => Number.isFinite(r.keel.iv) && Number.isFinite(r.keel.delta)), 'keel priced every row');
  assert.ok(last.rows.every((r) => r.multiplier === 100), 'the listing carried the multiplier');
  const prints = last.rows.reduce((n, r) => n + r.prints, 0);
  assert.ok(prints > 0 && last.rows.every((r) => r.prints === 0 || (r.last > 0 && r.lastSize > 0)), `${prints} prints carried, each with its price and size`);

  // A band of calls only reaches strikes the recording never streamed: those wait unquoted, and the chain prices what it has.
  const calls = await replayed(path, { ...CHAIN, rights: ['C'] });
  const priced = calls.published.at(-1)!;
  const streamed = new Set(live.flatMap((p) => p.rows.map((r) => r.conId)));
  const missing = priced.rows.filter((r) => !streamed.has(r.conId));
  assert.equal(priced.rows.length, LINES - 1);
  assert.ok(missing.length > 0 && missing.every((r) => Number.isNaN(r.bid) && Number.isNaN(r.ask) && Number.isNaN(r.ib.iv)), `${missing.length} calls never streamed`);
  assert.deepEqual([...calls.lines], priced.rows.map((r) => [r.conId, streamed.has(r.conId) ? 'live' : 'waiting']));
  // Those it has carry the quotes and IB's computations the live chain had at the same pricing.
  assert.equal(priced.pricedAt, last.pricedAt);
  const lastLive = new Map(last.rows.map((r) => [r.conId, r]));
  const shared = priced.rows.filter((r) => lastLive.has(r.conId));
  assert.ok(shared.length >= 10, `${shared.length} calls in both bands`);
  for (const r of shared) assert.deepStrictEqual([r.bid, r.ask, r.ib], [lastLive.get(r.conId)!.bid, lastLive.get(r.conId)!.ask, lastLive.get(r.conId)!.ib], `${r.localSymbol} as recorded`);
  // Keel's smile, fitted to the calls it has, prices the unquoted ones too.
  assert.ok(priced.rows.every((r) => Number.isFinite(r.keel.iv)), 'every call priced from the smile');

  // keel replay says what it played of the chain.
  const config = join(dir, 'chain-replay.yaml');
  writeFileSync(config, replayYaml(CHAIN));
  const cli = runKeel(['replay', path, '--config', config]);
  const [code] = (await once(cli.child, 'close')) as [number | null];
  assert.equal(code, 0, cli.stderr.join('\n'));
  const stdout = cli.stdout.join('\n');
  assert.match(stdout, new RegExp(`rows +[\\d,]+ \\([\\d,]+ depth, [\\d,]+ prints, ${summary.optionRows.toLocaleString('en-US')} option\\) for 1 instrument`));
  assert.match(stdout, new RegExp(`options +${summary.optionPricings.toLocaleString('en-US')} chain pricings from 1 listing\\b`));
});

test('a version 1 recording (no option data) replays with an option chain in the config, which waits for a listing', { timeout: 60_000 }, async () => {
  const tape = join(dir, 'tape.keelrec');
  const written = await writeMarketTape(tape, { seed: 2, instruments: 1, updatesPerSecond: 500, rows: 5_000 });
  // The same rows under a version 1 header: what keel wrote before option chains.
  const bytes = readFileSync(tape);
  const rest = bytes.subarray(4 + bytes.readUInt32BE(0));
  const header = (await openRecording(tape)).header;
  const old = join(dir, 'version-1.keelrec');
  writeFileSync(old, Buffer.concat([encodeHeader({ ...header, version: 1 }), rest]));
  assert.equal((await openRecording(old)).header.version, 1);

  const { summary, views } = await replayed(old, CHAIN);
  assert.equal(summary.rows, written.rows);
  assert.equal(summary.optionRows, 0);
  assert.equal(summary.optionListings, 0);
  assert.equal(views, 0, 'no option chain published');
});
