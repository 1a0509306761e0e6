/**
 * The three roles as processes on one machine, as a user runs them: a data
 * node (the simulator, IB session, books, shard publisher), three shard
 * workers and a trading node, on a private redis-server. One worker is
 * killed (SIGKILL) mid-stream and another paused (SIGSTOP) past its lease,
 * then resumed. Then the data node stops, the workers drain, and:
 *
 *   - every shard's outputs are its tape's ticks, each exactly once, in order;
 *   - the checkpoint of the killed worker's shard equals a fresh pipeline
 *     run over the same tape, and so do its outputs;
 *   - the trading node's gate halted for the stale shard and resumed;
 *   - the paused worker's late commit was refused (FENCED).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import pino from 'pino';
import { systemClock } from '../../src/clock.js';
import { openParts, shardWorkerSettings } from '../../src/actors/shard-worker.js';
import { decodeTape } from '../../src/scaleout/market-tape.js';
import { decodeOutput } from '../../src/scaleout/shard-output.js';
import { ShardPipeline } from '../../src/scaleout/shard-pipeline.js';
import { shardKeys, shardOf } from '../../src/scaleout/shards.js';
import { PIPELINE_FIELD } from '../../src/scaleout/worker.js';
import { runKeel, type Running } from '../support/process.js';
import { freePort, startRedis, type TestRedis } from '../support/redis.js';

const INSTANCE = 'e2e';
const SHARDS = 128;
const LEASE_MS = 1_500;
const ROUND_MS = 500;
const STOCKS = ['SPY', 'QQQ', 'AAPL', 'MSFT'];
const models = (p: string) => resolve('models', p, 'manifest.json');
const workerStages = {
  features: { samplesMs: [100, 1000] },
  health: { maxDataAgeMs: 5000, advisory: ['ret_1s', 'ret_10s', 'ret_1m'] },
  regime: { model: models('regime-sjm'), intervalMs: 1000 },
  predictor: { intervalMs: 1000, base: [models('gbdt-base'), models('lstm-base')] },
};

let redis: TestRedis;
let client: Redis;
let dir: string;
const running: Running[] = [];

before(async () => {
  redis = await startRedis();
  client = new Redis(redis.url);
  dir = mkdtempSync(join(tmpdir(), 'keel-cluster-'));
});

after(async () => {
  if (process.env.KEEL_E2E_LOGS) running.forEach((r, n) => writeFileSync(join(process.env.KEEL_E2E_LOGS!, `p${n}.log`), [...r.stdout, ...r.stderr].join('\n')));
  for (const r of running) r.child.kill('SIGKILL');
  await Promise.all(running.map((r) => r.exited));
  client.disconnect();
  await redis.dispose();
  rmSync(dir, { recursive: true, force: true });
});

function config(name: string, body: object): string {
  const path = join(dir, `${name}.json`);
  // JSON is YAML: the config loader reads it as is.
  writeFileSync(path, JSON.stringify({ instance: INSTANCE, log: { level: 'info' }, ...body }));
  return path;
}

function start(path: string): Running {
  const r = runKeel(['run', '--config', path]);
  running.push(r);
  return r;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, probe: () => Promise<T | undefined>, limitMs = 60_000): Promise<T> {
  console.log(`# ${new Date().toISOString()} waiting for ${what}`);
  const deadline = Date.now() + limitMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

const ownerOf = async (shard: number) => (await client.get(shardKeys(INSTANCE, shard, SHARDS).lease))?.split('#')[0];

async function seqs(stream: string, decode: (b: Buffer) => { seq: number }): Promise<number[]> {
  const entries = (await client.xrangeBuffer(stream, '-', '+')) as unknown as [Buffer, Buffer[]][];
  return entries.map(([, fields]) => decode(fields[1]!).seq);
}

test('data node, three shard workers and a trading node: a killed and a paused worker lose and double nothing', { timeout: 240_000 }, async () => {
  const [simPort, controlPort] = [await freePort(), await freePort()];
  const redisSettings = { url: redis.url };
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
      shard_publisher: { kind: 'shard_publisher', dependsOn: ['l2_microstructure'], settings: { redis: redisSettings, shards: SHARDS } },
    },
  });
  const worker = (name: string) =>
    config(name, { components: { shard_worker: { kind: 'shard_worker', settings: { redis: redisSettings, shards: SHARDS, worker: name, leaseMs: LEASE_MS, roundMs: ROUND_MS, ...workerStages } } } });
  const trader = config('trader', {
    components: {
      journal: { kind: 'journal', settings: { path: join(dir, 'journal.keel'), startingCash: 1_000_000 } },
      ib_connection: { kind: 'ib_connection', dependsOn: ['journal'], settings: ib(1) },
      subscriptions: { kind: 'subscriptions', dependsOn: ['ib_connection'], settings: { instruments: STOCKS.map((symbol) => ({ symbol, depth: { rows: 10 } })) } },
      l2_microstructure: { kind: 'l2_microstructure', dependsOn: ['subscriptions'] },
      risk_gate: { kind: 'risk_gate', dependsOn: ['journal'], settings: { initialState: 'ACTIVE', autoResume: true, healthyPeriodMs: 1000 } },
      shard_reader: { kind: 'shard_reader', dependsOn: ['subscriptions', 'risk_gate'], settings: { redis: redisSettings, shards: SHARDS, freshnessMs: 1000 } },
      paper_trader: { kind: 'paper_trader', dependsOn: ['shard_reader', 'risk_gate', 'l2_microstructure'], settings: { mode: 'book' } },
    },
  });

  const dataNode = start(data);
  await dataNode.waitFor('keel running');
  const workers = new Map(['w1', 'w2', 'w3'].map((name) => [name, start(worker(name))]));
  const tradingNode = start(trader);
  await tradingNode.waitFor('keel running');

  const active = [...new Set(STOCKS.map((s) => shardOf(s, SHARDS)))];
  const outputs = (shard: number) => client.xlen(shardKeys(INSTANCE, shard, SHARDS).output);
  // Every shard of the universe produces, and the trading node has seen them fresh (its gate is ACTIVE after the start-up halt).
  await until('outputs from every shard', async () => ((await Promise.all(active.map(outputs))).every((n) => n > 20) ? true : undefined));
  // The gate halts while the workers start (no output yet) and resumes once every shard is fresh.
  await until('the trading node to see every shard fresh', async () => (tradingNode.stdout.some((l) => l.includes('"to":"ACTIVE"')) ? true : undefined));

  // --- kill -9 the worker holding SPY's shard ---------------------------------
  const spy = shardOf('SPY', SHARDS);
  const victim = (await ownerOf(spy))!;
  assert.ok(workers.has(victim), `SPY's shard ${spy} is held by ${victim}`);
  const haltsBefore = tradingNode.stdout.filter((l) => l.includes('trading HALTED')).length;
  const killedAt = Date.now();
  workers.get(victim)!.child.kill('SIGKILL');
  const heir = await until('SPY shard to move', async () => {
    const owner = await ownerOf(spy);
    return owner && owner !== victim ? owner : undefined;
  });
  const movedMs = Date.now() - killedAt;
  const halted = await until('the gate to halt', async () => tradingNode.stdout.filter((l) => l.includes('trading HALTED'))[haltsBefore]);
  assert.match(halted, /"by":"cluster"/);
  assert.ok(tradingNode.stdout.some((l) => l.includes(`"condition":"shard s${spy} stale"`)), `the trading node saw shard ${spy} stale`);
  const outputsAtMove = await outputs(spy);
  await until('SPY shard outputs to resume', async () => ((await outputs(spy)) > outputsAtMove + 10 ? true : undefined));
  await until('the gate to resume', async () => (tradingNode.stdout.slice(tradingNode.stdout.indexOf(halted)).some((l) => l.includes('"to":"ACTIVE"')) ? true : undefined));
  console.log(`# SPY shard ${spy}: ${victim} killed, ${heir} holds it after ${movedMs} ms (lease ${LEASE_MS} ms, round ${ROUND_MS} ms)`);

  // --- SIGSTOP a surviving worker past its lease, then SIGCONT -----------------
  const paused = heir;
  const pausedShards = await Promise.all(active.map(async (s) => ((await ownerOf(s)) === paused ? s : undefined)));
  workers.get(paused)!.child.kill('SIGSTOP');
  await sleep(LEASE_MS * 2 + ROUND_MS);
  workers.get(paused)!.child.kill('SIGCONT');
  await until('the paused worker to notice', async () => {
    const lines = workers.get(paused)!.stdout;
    return lines.some((l) => /FENCED|shard \d+ lost/.test(l)) ? true : undefined;
  });
  await sleep(3_000);

  // --- stop the tape, let the workers drain -------------------------------------
  dataNode.child.kill('SIGTERM');
  await dataNode.exited;
  await until('every shard drained', async () => {
    const done = await Promise.all(
      active.map(async (s) => {
        const k = shardKeys(INSTANCE, s, SHARDS);
        const inputs = await seqs(k.input, decodeTape);
        const outs = await seqs(k.output, decodeOutput);
        return outs.length === inputs.length;
      }),
    );
    return done.every(Boolean) ? true : undefined;
  });

  // Exactly once, in order, per shard.
  for (const s of active) {
    const k = shardKeys(INSTANCE, s, SHARDS);
    const inputs = await seqs(k.input, decodeTape);
    const outs = await seqs(k.output, decodeOutput);
    assert.ok(inputs.length > 50, `shard ${s} has a tape (${inputs.length} ticks)`);
    assert.deepEqual(outs, inputs, `shard ${s}: every tick's output once, in tape order`);
  }

  // The killed worker's shard: checkpoint and outputs equal a fresh, uninterrupted run of its tape.
  const k = shardKeys(INSTANCE, spy, SHARDS);
  const tape = (await client.xrangeBuffer(k.input, '-', '+')) as unknown as [Buffer, Buffer[]][];
  const stored = (await client.xrangeBuffer(k.output, '-', '+')) as unknown as [Buffer, Buffer[]][];
  const parts = await openParts(shardWorkerSettings.parse({ worker: 'replay', ...workerStages }), pino({ level: 'silent' }), systemClock);
  try {
    let pipeline: ShardPipeline | undefined;
    for (const [n, [, fields]] of tape.entries()) {
      const entry = decodeTape(fields[1]!);
      pipeline ??= await ShardPipeline.create(spy, entry.symbols, entry.booked, parts.build);
      const out = await pipeline.apply(entry);
      const kept = decodeOutput(stored[n]![1][1]!);
      assert.equal(kept.seq, out.seq);
      assert.deepStrictEqual(kept.values, out.values, `shard ${spy} tick ${out.seq}: features equal the uninterrupted run`);
      assert.deepStrictEqual(kept.predictions?.value, out.predictions?.value, `shard ${spy} tick ${out.seq}: predictions equal the uninterrupted run`);
      assert.deepStrictEqual(kept.regime?.state, out.regime?.state);
    }
    const checkpoint = await client.hgetBuffer(k.checkpoint, PIPELINE_FIELD);
    assert.ok(checkpoint && pipeline);
    assert.ok(checkpoint.equals(pipeline.checkpoint()), `shard ${spy}: the checkpoint after the hand-over equals the uninterrupted run's state`);
    await pipeline.close();
  } finally {
    await parts.close();
  }
  assert.ok(pausedShards.some((s) => s !== undefined), `${paused} held a shard when paused`);
});
