/**
 * The three roles as processes on one machine, as a user runs them: a data
 * node (the simulator, IB session, books, shard publisher), three shard
 * workers and a trading node (its books from the data node's tapes), on a private redis-server (or a private
 * 3-master Redis Cluster). Each scenario ends by stopping the data node,
 * letting the workers drain, and checking that every shard's outputs are
 * its tape's ticks, each exactly once, in order.
 *
 *   - a worker killed (SIGKILL) mid-stream, then another paused (SIGSTOP)
 *     past its lease and resumed: the killed worker's shard moves, the
 *     trading node's gate halts on it and resumes, and the shard's
 *     checkpoint and outputs equal a fresh run of its whole tape;
 *   - the same kill on a Redis Cluster;
 *   - Redis itself killed and restarted (append-only file on): the gate
 *     halts while it is gone, everything resumes, nothing is doubled.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, test } from 'node:test';
import { Redis, type Cluster } from 'ioredis';
import { unpack } from 'msgpackr';
import pino from 'pino';
import { chromium } from 'playwright-core';
import { openParts, shardWorkerSettings } from '../../src/actors/shard-worker.js';
import { systemClock } from '../../src/clock.js';
import { decodeTape } from '../../src/scaleout/market-tape.js';
import { decodeOutput } from '../../src/scaleout/shard-output.js';
import { HEAD_FIELD, ShardPipeline } from '../../src/scaleout/shard-pipeline.js';
import { shardKeys, shardOf } from '../../src/scaleout/shards.js';
import { clusterStatus, formatClusterStatus } from '../../src/scaleout/status.js';
import { BROWSER_ARGS, chromiumPath } from '../support/browser.js';
import { runKeel, type Running } from '../support/process.js';
import { freePort, startRedis } from '../support/redis.js';
import { startRedisCluster } from '../support/redis-cluster.js';
import { tmuxServer } from '../support/tmux.js';

const INSTANCE = 'e2e';
const SHARDS = 128;
const LEASE_MS = 1_500;
const ROUND_MS = 500;
const STOCKS = ['SPY', 'QQQ', 'AAPL', 'MSFT'];
const SPY_SHARD = shardOf('SPY', SHARDS);
const models = (p: string) => resolve('models', p, 'manifest.json');
/** Ticks between checkpoints: several per run, so a take-over starts from one and re-computes committed ticks. */
const CHECKPOINT_EVERY = 20;
const workerStages = {
  features: { samplesMs: [100, 1000] },
  health: { maxDataAgeMs: 5000, advisory: ['ret_1s', 'ret_10s', 'ret_1m'] },
  regime: { model: models('regime-sjm'), intervalMs: 1000 },
  // Two horizons side by side: the trading node's policy trades the 5 min one.
  predictor: { intervalMs: 1000, horizons: { '10s': { base: [models('gbdt-base-10s'), models('lstm-base-10s')] }, '5m': { base: [models('gbdt-base-5m')] } } },
};

type Client = Redis | Cluster;
const running: Running[] = [];
const dirs: string[] = [];

after(async () => {
  if (process.env.KEEL_E2E_LOGS) running.forEach((r, n) => writeFileSync(join(process.env.KEEL_E2E_LOGS!, `p${n}.log`), [...r.stdout, ...r.stderr].join('\n')));
  for (const r of running) r.child.kill('SIGKILL');
  await Promise.all(running.map((r) => r.exited));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, probe: () => Promise<T | undefined>, limitMs = 60_000): Promise<T> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

const ownerOf = async (client: Client, shard: number) => (await client.get(shardKeys(INSTANCE, shard, SHARDS).lease))?.split('#')[0];

async function seqs(client: Client, stream: string, decode: (b: Buffer) => { seq: number }): Promise<number[]> {
  const entries = (await client.xrangeBuffer(stream, '-', '+')) as unknown as [Buffer, Buffer[]][];
  return entries.map(([, fields]) => decode(fields[1]!).seq);
}

interface Nodes {
  readonly dataNode: Running;
  readonly workers: Map<string, Running>;
  readonly tradingNode: Running;
  /** The trading node's inspector. */
  readonly inspector: string;
  /** The shards of the universe. */
  readonly active: readonly number[];
}

/** Starts the roles on `redis` and waits until every shard produces and the trading node's gate is ACTIVE on them. */
async function startNodes(client: Client, redis: { url: string; cluster?: boolean }): Promise<Nodes> {
  const dir = mkdtempSync(join(tmpdir(), 'keel-cluster-'));
  dirs.push(dir);
  const config = (name: string, body: object) => {
    const path = join(dir, `${name}.json`);
    // JSON is YAML: the config loader reads it as is.
    writeFileSync(path, JSON.stringify({ instance: INSTANCE, log: { level: 'info' }, ...body }));
    return path;
  };
  const start = (path: string) => {
    const r = runKeel(['run', '--config', path]);
    running.push(r);
    return r;
  };
  const [simPort, controlPort, inspectorPort] = [await freePort(), await freePort(), await freePort()];
  const ib = (clientId: number) => ({ host: '127.0.0.1', port: simPort, clientId, orderIdFile: join(dir, `ids-${clientId}.json`) });
  const data = config('data', {
    components: {
      simulator: { kind: 'simulator', settings: { port: simPort, seed: 7, updatesPerSecond: 50, controlPort } },
      ib_connection: { kind: 'ib_connection', dependsOn: ['simulator'], settings: ib(0) },
      subscriptions: {
        kind: 'subscriptions',
        dependsOn: ['ib_connection'],
        settings: { instruments: [...STOCKS.slice(0, 3).map((symbol) => ({ symbol, depth: { rows: 10 }, ticks: 'AllLast' })), { symbol: 'MSFT' }] },
      },
      l2_microstructure: { kind: 'l2_microstructure', dependsOn: ['subscriptions'] },
      shard_publisher: { kind: 'shard_publisher', dependsOn: ['l2_microstructure'], settings: { redis, shards: SHARDS } },
    },
  });
  const worker = (name: string) =>
    config(name, { components: { shard_worker: { kind: 'shard_worker', settings: { redis, shards: SHARDS, worker: name, leaseMs: LEASE_MS, roundMs: ROUND_MS, checkpointEvery: CHECKPOINT_EVERY, ...workerStages } } } });
  const trader = config('trader', {
    components: {
      journal: { kind: 'journal', settings: { path: join(dir, 'journal.keel'), startingCash: 1_000_000 } },
      shard_market: { kind: 'shard_market', settings: { redis, shards: SHARDS, instruments: STOCKS } },
      risk_gate: { kind: 'risk_gate', dependsOn: ['journal'], settings: { initialState: 'ACTIVE', autoResume: true, healthyPeriodMs: 1000 } },
      shard_reader: { kind: 'shard_reader', dependsOn: ['shard_market', 'risk_gate'], settings: { redis, shards: SHARDS, freshnessMs: 1000, statusMs: 500 } },
      paper_trader: { kind: 'paper_trader', dependsOn: ['shard_reader', 'risk_gate', 'shard_market'], settings: { mode: 'book', policy: { horizon: '5m' } } },
      inspector: { kind: 'inspector', settings: { host: '127.0.0.1', port: inspectorPort, tokenFile: join(dir, 'inspector.token') } },
    },
  });

  const dataNode = start(data);
  await dataNode.waitFor('keel running');
  const workers = new Map(['w1', 'w2', 'w3'].map((name) => [name, start(worker(name))]));
  const tradingNode = start(trader);
  await tradingNode.waitFor('keel running');
  const active = [...new Set(STOCKS.map((s) => shardOf(s, SHARDS)))];
  const outputs = (shard: number) => client.xlen(shardKeys(INSTANCE, shard, SHARDS).output);
  await until('outputs from every shard', async () => ((await Promise.all(active.map(outputs))).every((n) => n > 20) ? true : undefined));
  // The gate may halt while the workers start (no output yet); it is ACTIVE once every shard is fresh.
  const runningAt = Date.now();
  await until('the trading node to see every shard fresh', async () => {
    const gate = tradingNode.stdout.filter((l) => l.includes('"actor":"risk_gate"') && /"(to|state)":"(ACTIVE|HALTED)"/.test(l));
    return Date.now() - runningAt > 2_000 && /"(to|state)":"ACTIVE"/.test(gate.at(-1) ?? '') ? true : undefined;
  });
  return { dataNode, workers, tradingNode, inspector: `http://127.0.0.1:${inspectorPort}`, active };
}

const haltsOf = (node: Running) => node.stdout.filter((l) => l.includes('trading HALTED'));

/** Waits for the halt after `before` halts, then for the gate to resume after it; returns the halt's line. */
async function haltAndResume(node: Running, before: number): Promise<string> {
  const halted = await until('the gate to halt', async () => haltsOf(node)[before]);
  await until('the gate to resume', async () => (node.stdout.slice(node.stdout.indexOf(halted)).some((l) => l.includes('"to":"ACTIVE"')) ? true : undefined));
  return halted;
}

/** SIGKILLs the worker holding `shard`; resolves once the lease moved, the gate halted on the shard's age, and outputs and gate resumed. */
async function killOwner(client: Client, nodes: Nodes, shard: number): Promise<string> {
  const { workers, tradingNode } = nodes;
  const victim = (await ownerOf(client, shard))!;
  assert.ok(workers.has(victim), `shard ${shard} is held by ${victim}`);
  const halts = haltsOf(tradingNode).length;
  const output = shardKeys(INSTANCE, shard, SHARDS).output;
  const killedAt = Date.now();
  workers.get(victim)!.child.kill('SIGKILL');
  const heir = await until(`shard ${shard} to move`, async () => {
    const owner = await ownerOf(client, shard);
    return owner && owner !== victim ? owner : undefined;
  });
  const movedMs = Date.now() - killedAt;
  const outputsAtMove = await client.xlen(output);
  const halted = await haltAndResume(tradingNode, halts);
  assert.match(halted, /"by":"cluster"/);
  assert.ok(tradingNode.stdout.some((l) => l.includes(`"condition":"shard s${shard} stale"`)), `the trading node saw shard ${shard} stale`);
  await until(`shard ${shard} outputs to resume`, async () => ((await client.xlen(output)) > outputsAtMove + 10 ? true : undefined));
  // The heir starts from the last checkpoint, which may be older than the last commit: the ticks between are re-computed, and written once (drainAndCheck).
  const resumed = workers
    .get(heir)!
    .stdout.filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { msg?: string; from?: number | null; committed?: number | null })
    .findLast((l) => l.msg?.startsWith(`shard ${shard} resumes`));
  assert.ok(resumed && typeof resumed.from === 'number' && typeof resumed.committed === 'number' && resumed.from <= resumed.committed, `the heir resumed shard ${shard} from a checkpoint: ${JSON.stringify(resumed)}`);
  console.log(`# shard ${shard}: ${victim} killed, ${heir} holds it after ${movedMs} ms (lease ${LEASE_MS} ms, round ${ROUND_MS} ms), resuming ${resumed.committed - resumed.from} committed ticks behind`);
  return heir;
}

/** Stops the data node, waits until the workers have drained every shard, and checks every tick's output is there once, in order. */
async function drainAndCheck(client: Client, nodes: Nodes): Promise<void> {
  nodes.dataNode.child.kill('SIGTERM');
  await nodes.dataNode.exited;
  const ticks = async (s: number) => {
    const k = shardKeys(INSTANCE, s, SHARDS);
    return { inputs: await seqs(client, k.input, decodeTape), outs: await seqs(client, k.output, decodeOutput) };
  };
  try {
    await until('every shard drained', async () => ((await Promise.all(nodes.active.map(ticks))).every((t) => t.outs.length >= t.inputs.length) ? true : undefined));
  } catch (error) {
    console.log(formatClusterStatus(await clusterStatus(client, INSTANCE, SHARDS)).split('\n').filter((l) => !/^ +\d+ .* 0 +- +0 +-$/.test(l)).join('\n'));
    for (const s of nodes.active) {
      const { inputs, outs } = await ticks(s);
      console.log(`shard ${s}: ticks without output ${inputs.filter((q) => !outs.includes(q)).join(', ') || 'none'}; input order ${inputs.every((q, i) => i === 0 || q > inputs[i - 1]!) ? 'rising' : 'NOT rising'}`);
    }
    throw error;
  }
  for (const s of nodes.active) {
    const { inputs, outs } = await ticks(s);
    assert.ok(inputs.length > 50, `shard ${s} has a tape (${inputs.length} ticks)`);
    assert.deepEqual(outs, inputs, `shard ${s}: every tick's output once, in tape order`);
  }
}

/** The Cluster panel shows the shard's owner and the three workers, and the instruments a prediction column per horizon: on the web page in a real browser, and in `keel inspect` in a real terminal. */
async function checkPanels(url: string, shard: number): Promise<void> {
  const ownerNow = async () => ((await (await fetch(`${url}/api/cluster`)).json()) as { shards: { shard: number; owner: string | null }[] }).shards.find((s) => s.shard === shard)?.owner;
  const browser = await chromium.launch({ executablePath: chromiumPath(), args: BROWSER_ARGS });
  try {
    const page = await browser.newPage();
    await page.goto(url);
    const row = page.locator(`#cluster-shards tr[data-shard="${shard}"]`);
    await row.waitFor({ timeout: 15_000 });
    await until('the page to show the owner the API names', async () => ((await row.locator('td').nth(2).textContent()) === (await ownerNow()) ? true : undefined));
    assert.equal(await row.getAttribute('data-fresh'), 'true');
    assert.deepEqual((await page.locator('#cluster-workers [data-worker]').evaluateAll((spans) => (spans as unknown as { getAttribute(name: string): string | null }[]).map((s) => s.getAttribute('data-worker')))).sort(), ['w1', 'w2', 'w3']);
    const headers = page.locator('#instruments thead th');
    await until('the instruments table to show both horizons', async () => ((await headers.allTextContents()).includes('pred 5m bps') ? true : undefined));
    assert.deepEqual((await headers.allTextContents()).filter((h) => h.startsWith('pred')), ['pred 10s bps', 'pred 5m bps']);
  } finally {
    await browser.close();
  }
  const term = tmuxServer(`keel-cluster-e2e-${process.pid}`);
  try {
    term.session('cluster', `${process.execPath} ${resolve('bin/keel.js')} inspect ${url} --token ''; sleep 600`);
    const owner = (await ownerNow())!;
    const line = new RegExp(`^\\s*${shard}\\s+${owner}\\s+\\d+`, 'm');
    const screen = await term.screenUntil('cluster', (s) => /CLUSTER\s+\d+ shards\s+3 workers/.test(s) && line.test(s) && /P10S\s+P5M/.test(s), `the cluster panel with shard ${shard} held by ${owner}, and a prediction column per horizon`);
    for (const w of ['w1', 'w2', 'w3']) assert.match(screen, new RegExp(`${w} \\d+ shards hb \\d+`));
  } finally {
    term.kill();
  }
}

const hex = (fields: ReadonlyMap<string, Buffer>) => new Map([...fields].map(([field, bytes]) => [field, bytes.toString('hex')]));

/** The shard's checkpoint and every output equal a fresh pipeline's run over its whole tape. */
async function checkAgainstFreshRun(client: Client, shard: number): Promise<void> {
  const k = shardKeys(INSTANCE, shard, SHARDS);
  const tape = (await client.xrangeBuffer(k.input, '-', '+')) as unknown as [Buffer, Buffer[]][];
  const stored = (await client.xrangeBuffer(k.output, '-', '+')) as unknown as [Buffer, Buffer[]][];
  const checkpoint = new Map(Object.entries(await client.hgetallBuffer(k.checkpoint)));
  const head = checkpoint.get(HEAD_FIELD);
  assert.ok(head, `shard ${shard} has a checkpoint`);
  const { input } = (unpack(head) as { head: { input: string } }).head;
  const parts = await openParts(shardWorkerSettings.parse({ worker: 'replay', ...workerStages }), pino({ level: 'silent' }), systemClock);
  let pipeline: ShardPipeline | undefined;
  let compared = false;
  try {
    for (const [n, [id, fields]] of tape.entries()) {
      const entry = decodeTape(fields[1]!);
      pipeline ??= await ShardPipeline.create(shard, entry.symbols, entry.booked, parts.build);
      const out = await pipeline.apply(entry);
      const kept = decodeOutput(stored[n]![1][1]!);
      assert.equal(kept.seq, out.seq);
      assert.deepStrictEqual(kept.values, out.values, `shard ${shard} tick ${out.seq}: features equal the uninterrupted run`);
      assert.deepStrictEqual(kept.predictions?.horizons, out.predictions?.horizons, `shard ${shard} tick ${out.seq}: predictions equal the uninterrupted run`);
      assert.deepStrictEqual(kept.regime?.state, out.regime?.state);
      if (id.toString() === input) {
        assert.deepEqual(hex(checkpoint), hex(pipeline.checkpoint(input)), `shard ${shard}: the checkpoint after the hand-over equals the uninterrupted run's state at tick ${out.seq}, instrument by instrument`);
        compared = true;
      }
    }
    assert.ok(compared, `shard ${shard}: the checkpoint's last entry ${input} is on the tape`);
  } finally {
    await pipeline?.close();
    await parts.close();
  }
}

test('a killed worker and a paused one lose and double nothing; the moved shard equals a fresh run of its tape', { timeout: 180_000 }, async () => {
  const redis = await startRedis();
  const client = new Redis(redis.url);
  try {
    const nodes = await startNodes(client, { url: redis.url });
    // The trading node's inspector shows who owns which shard, and exports it.
    const view = await until('the cluster status in the inspector', async () => {
      const panel = (await (await fetch(`${nodes.inspector}/api/cluster`)).json()) as { shards?: { shard: number; owner?: string | null }[] };
      return panel.shards?.find((s) => s.shard === SPY_SHARD && s.owner) ? panel : undefined;
    });
    assert.ok(nodes.workers.has(view.shards!.find((s) => s.shard === SPY_SHARD)!.owner!));
    const metrics = await (await fetch(`${nodes.inspector}/metrics`)).text();
    assert.match(metrics, new RegExp(`keel_cluster_shard_owner\\{shard="${SPY_SHARD}",worker="w\\d"\\} 1`));
    assert.match(metrics, new RegExp(`keel_cluster_shard_lag\\{shard="${SPY_SHARD}"\\} \\d`));
    assert.match(metrics, /keel_cluster_workers 3/);
    await checkPanels(nodes.inspector, SPY_SHARD);
    // Its books came from the data node's tapes at once (backfilled), with no IB session of its own.
    assert.ok(!nodes.tradingNode.stdout.some((l) => l.includes('no two-sided book on the shard tapes')), 'the trading node found books on the tapes');
    const heir = await killOwner(client, nodes, SPY_SHARD);

    // SIGSTOP a survivor past its lease, then SIGCONT: the others hold its shards by then, so what it sends first on waking
    // (a read, or the commit of a batch it had in hand) is refused by the lease check.
    const paused = nodes.workers.get(heir)!;
    paused.child.kill('SIGSTOP');
    await sleep(LEASE_MS * 2 + ROUND_MS);
    const linesBefore = paused.stdout.length;
    paused.child.kill('SIGCONT');
    await until('the paused worker to be refused', async () => (paused.stdout.slice(linesBefore).some((l) => /(read|commit) refused \(FENCED\)/.test(l)) ? true : undefined));
    await sleep(2_000);

    await drainAndCheck(client, nodes);
    await checkAgainstFreshRun(client, SPY_SHARD);
  } finally {
    client.disconnect();
    await redis.dispose();
  }
});

test('the same on a 3-master Redis Cluster', { timeout: 180_000 }, async () => {
  const cluster = await startRedisCluster();
  try {
    const nodes = await startNodes(cluster.client, { url: cluster.url, cluster: true });
    await killOwner(cluster.client, nodes, SPY_SHARD);
    await drainAndCheck(cluster.client, nodes);
  } finally {
    await cluster.dispose();
  }
});

test('Redis killed and restarted: the trading node halts, everything resumes, nothing is doubled', { timeout: 180_000 }, async () => {
  const redis = await startRedis({ appendonly: true });
  const client = new Redis(redis.url, { maxRetriesPerRequest: null });
  client.on('error', () => undefined);
  try {
    const nodes = await startNodes(client, { url: redis.url });
    const halts = haltsOf(nodes.tradingNode).length;
    await redis.kill();
    await until('the trading node to see Redis gone', async () => (nodes.tradingNode.stdout.some((l) => l.includes('"condition":"cluster redis"')) ? true : undefined));
    await sleep(1_000);
    await redis.restart();
    const halted = await haltAndResume(nodes.tradingNode, halts);
    assert.match(halted, /"by":"cluster"/);
    const output = shardKeys(INSTANCE, SPY_SHARD, SHARDS).output;
    const before = await client.xlen(output);
    await until('outputs after the restart', async () => ((await client.xlen(output)) > before + 10 ? true : undefined));
    await drainAndCheck(client, nodes);
  } finally {
    client.disconnect();
    await redis.dispose();
  }
});
