/**
 * Cluster: what the Redis-Streams scale-out shows on this machine (2 cores
 * here, so only what two cores can show honestly).
 *
 * A synthetic tape: N instruments (default 200) hashed over 128 shards, each
 * 100 ms tick with book updates (10 levels a side; a price move rewrites the
 * book, otherwise a few size changes) and prints for every instrument,
 * written by the data node's TapeWriter into a private redis-server.
 * Shard workers are child processes (bench/cluster-worker.ts): a
 * ShardWorker with `openParts` stages (features, feature health, regime SJM,
 * predictor with the GBDT base model only, in-thread inference).
 *
 *   throughput  k = 1, 2, 4 workers; each run warms up on a few ticks until
 *               the leases have settled on every worker's share, then the
 *               workers are SIGSTOPped, `--ticks` ticks per shard are
 *               pre-filled, and the workers SIGCONTed: instrument-ticks per
 *               second until every output is written (outputs, checkpoint
 *               and acks commit in one script, so output count = consumed);
 *               worker CPU (/proc/<pid>/stat) and Redis CPU (INFO cpu) over
 *               that window, per instrument-tick. The same with every
 *               worker pinned to core 0 (taskset -c 0): the control, which
 *               must not speed up. And 2 workers at readCount 1.
 *   division    shards and instrument-ticks per worker (lease owners).
 *   hand-over   3 workers on a live tape (one tick per 100 ms); one is
 *               SIGKILLed: time until each of its shards has a new lease
 *               holder, and until its shards' output resumes.
 *   latency     on the live tape before the kill: a tick's tape time (taken
 *               just before the publisher's XADDs) to the trading side's XREAD
 *               of its output, vs ShardPipeline.apply() on the same entries
 *               in this process.
 *   capacity    a model from the measured CPU costs.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import pino from 'pino';
import { openParts, shardWorkerSettings } from '../src/actors/shard-worker.js';
import { systemClock } from '../src/clock.js';
import { DepthBatch } from '../src/ib/depth-feed.js';
import { TradeBatch } from '../src/ib/trade-feed.js';
import { OrderBooks } from '../src/market/books.js';
import { DEFAULT_FEATURE_OPTIONS } from '../src/market/features.js';
import { ASK, BID, INSERT, UPDATE } from '../src/market/order-book.js';
import { shareOf } from '../src/scaleout/assignment.js';
import { ENTRY_FIELD } from '../src/scaleout/fenced.js';
import { decodeTape, TapeWriter } from '../src/scaleout/market-tape.js';
import { decodeOutput } from '../src/scaleout/shard-output.js';
import { ShardPipeline } from '../src/scaleout/shard-pipeline.js';
import { shardKeys, shardOf } from '../src/scaleout/shards.js';
import { startRedis, type TestRedis } from '../test/support/redis.js';
import { benchStages, type ClusterWorkerArgs } from './cluster-stages.js';
import { fmt, percentile, type BenchOptions } from './stats.js';

const SHARDS = 128;
const TICK_MS = 100;
const ROWS = 10;
/**
 * Ticks before anything is measured: past the features' warm-up (their
 * longest return horizon), so every instrument is warm and the regime and
 * the predictor run on all of them, as in steady trading.
 */
const WARM_TICKS = Math.max(...DEFAULT_FEATURE_OPTIONS.returnHorizonsMs) / TICK_MS + 20;
/**
 * The throughput runs' lease: the workers are stopped while the tape is
 * pre-filled (2 s at 5,000 instruments), and a lease that ran out meanwhile
 * would have them take their own shards over, re-computing from the last
 * checkpoint inside the measure.
 */
const THROUGHPUT_LEASE_MS = 10_000;
/** The shard worker's default: a checkpoint every 5 s of ticks per shard. */
const CHECKPOINT_EVERY = 50;
const WORKER_COUNTS = [1, 2, 4];
const HANDOVER_WORKERS = 3;
const LEASES: readonly (readonly [number, number])[] = [
  [3_000, 1_000],
  [1_500, 500],
];
const LATENCY_WINDOW_MS = 5_000;
/** Other processes' cores busy above which a run is marked contended. */
const CONTENDED = 0.3;
/** In-process comparison: ticks applied before timing, then timed. */
const INPROC_WARM = WARM_TICKS;
const INPROC_TIMED = 120;

export interface ClusterOptions extends BenchOptions {
  readonly instruments?: number;
  readonly ticks?: number;
}

export const CLUSTER_FLAGS = `  cluster: --instruments N  synthetic universe (default 200); --ticks N  pre-filled ticks per shard per run (default 300)`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** How long the workers may take over the warm-up ticks: a minute, plus their work at a slow 10,000 instrument-ticks/s. */
const catchUpMs = (instruments: number) => 60_000 + (WARM_TICKS * instruments) / 10;

/** mulberry32: a seeded uniform in [0, 1). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// --- the synthetic market ------------------------------------------------------------

class SyntheticMarket {
  readonly symbols: string[];
  readonly writer: TapeWriter;
  /** Instruments per shard (shards with none are absent). */
  readonly instrumentsOf = new Map<number, number>();
  private readonly books: OrderBooks;
  private readonly depth: DepthBatch;
  private readonly trades: TradeBatch;
  private readonly mid: Float64Array;
  private readonly random = rng(20261203);
  private started = false;
  private seq = 0;

  constructor(readonly n: number) {
    this.symbols = Array.from({ length: n }, (_, i) => `SYN${String(i).padStart(4, '0')}`);
    this.writer = new TapeWriter(this.symbols, this.symbols.map(() => true), SHARDS, TICK_MS);
    this.books = new OrderBooks(n, ROWS);
    this.depth = new DepthBatch(n * 2 * ROWS);
    this.trades = new TradeBatch(n * 2);
    this.mid = Float64Array.from({ length: n }, (_, i) => 20 + (i % 50) * 7);
    for (const symbol of this.symbols) {
      const shard = shardOf(symbol, SHARDS);
      this.instrumentsOf.set(shard, (this.instrumentsOf.get(shard) ?? 0) + 1);
    }
  }

  get activeShards(): number[] {
    return [...this.instrumentsOf.keys()].sort((a, b) => a - b);
  }

  private row(i: number, position: number, operation: number, side: number, price: number, size: number, at: number): void {
    const d = this.depth;
    const r = d.count++;
    d.instrument[r] = i;
    d.position[r] = position;
    d.operation[r] = operation;
    d.side[r] = side;
    d.smart[r] = 0;
    d.price[r] = price;
    d.size[r] = size;
    d.seq[r] = ++this.seq;
    d.receivedAt[r] = at;
  }

  private level(i: number, side: number, j: number): number {
    const step = 0.01;
    return Math.round((side === ASK ? this.mid[i]! + (j + 0.5) * step : this.mid[i]! - (j + 0.5) * step) * 1000) / 1000;
  }

  /** One 100 ms tick ending at tape time `at` (epoch ms): its events, then the shards' entries. */
  tick(at: number): { seq: number; entries: { shard: number; body: Buffer }[] } {
    const r = this.random;
    this.depth.count = 0;
    for (let i = 0; i < this.n; i++) {
      const t = at - TICK_MS + r() * TICK_MS;
      if (!this.started || r() < 0.2) {
        if (this.started) this.mid[i] = Math.max(1, this.mid[i]! + (r() < 0.5 ? -0.01 : 0.01));
        for (const side of [ASK, BID]) for (let j = 0; j < ROWS; j++) this.row(i, j, this.started ? UPDATE : INSERT, side, this.level(i, side, j), 100 + Math.floor(r() * 900), t);
      } else {
        for (let k = 0; k < 4; k++) {
          const side = r() < 0.5 ? ASK : BID;
          const j = Math.floor(r() * ROWS);
          this.row(i, j, UPDATE, side, this.level(i, side, j), 100 + Math.floor(r() * 900), t);
        }
      }
    }
    this.started = true;
    this.books.apply(this.depth);
    this.writer.onBook(this.books, 0);
    const tr = this.trades;
    tr.count = 0;
    for (let i = 0; i < this.n; i++) {
      const prints = r() < 0.3 ? 2 : 1;
      for (let k = 0; k < prints; k++) {
        const n = tr.count++;
        tr.instrument[n] = i;
        tr.price[n] = r() < 0.5 ? this.level(i, ASK, 0) : this.level(i, BID, 0);
        tr.size[n] = 1 + Math.floor(r() * 300);
        tr.seq[n] = ++this.seq;
        tr.receivedAt[n] = at - TICK_MS + r() * TICK_MS;
      }
    }
    this.writer.onTrades(tr, 0);
    return this.writer.tick(at);
  }

  rejectedRows(): number {
    let total = 0;
    for (let i = 0; i < this.n; i++) for (const n of this.books.books[i]!.rejected) total += n;
    return total;
  }
}

// --- processes -------------------------------------------------------------------------

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** utime + stime of a process (all its threads), µs. */
function procCpuUs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) / CLK_TCK) * 1e6;
}

/** CPU time the whole machine spent busy (all processes), µs. */
function machineBusyUs(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return ((total - f[3]! - f[4]!) / CLK_TCK) * 1e6;
}

const selfCpuUs = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

/**
 * Waits (up to `limitMs`) for a half second in which the machine is nearly
 * idle apart from this bench: other processes share these two cores. Returns
 * the cores the others kept busy in the last sample.
 */
async function quiet(progress: (line: string) => void, ours: () => number, limitMs = 10_000): Promise<number> {
  const start = performance.now();
  for (;;) {
    const [m0, o0, t0] = [machineBusyUs(), ours(), performance.now()];
    await sleep(500);
    const foreign = (machineBusyUs() - m0 - (ours() - o0)) / ((performance.now() - t0) * 1000);
    if (foreign < 0.2) return foreign;
    if (performance.now() - start > limitMs) {
      progress(`  warning: other processes keep ${fmt(foreign, 2)} cores busy; measuring anyway`);
      return foreign;
    }
  }
}

/** Bytes Redis has read from its clients so far. */
async function redisInputBytes(client: Redis): Promise<number> {
  return Number(/total_net_input_bytes:(\d+)/.exec(await client.info('stats'))?.[1] ?? NaN);
}

async function redisCpuUs(client: Redis): Promise<number> {
  const info = await client.info('cpu');
  const get = (k: string) => Number(new RegExp(`${k}:([0-9.]+)`).exec(info)?.[1] ?? NaN);
  return (get('used_cpu_sys') + get('used_cpu_user')) * 1e6;
}

interface Worker {
  readonly name: string;
  readonly child: ChildProcess;
  readonly ready: Promise<void>;
  readonly exited: Promise<number | null>;
  readonly lines: string[];
}

function startWorker(args: ClusterWorkerArgs, pinned: boolean): Worker {
  const node = [process.execPath, '--import', 'tsx', 'bench/cluster-worker.ts', JSON.stringify({ checkpointEvery: CHECKPOINT_EVERY, ...args })];
  const child = pinned ? spawn('taskset', ['-c', '0', ...node], { stdio: ['ignore', 'pipe', 'pipe'] }) : spawn(node[0]!, node.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const errors: string[] = [];
  let onReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (onReady = resolve));
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    for (const line of chunk.split('\n').filter(Boolean)) {
      lines.push(line);
      if (line === 'ready') onReady();
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => errors.push(chunk));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const failed = exited.then((code) => {
    throw new Error(`worker ${args.worker} exited (${code}) before it was ready: ${errors.join('').slice(-2000)}`);
  });
  return { name: args.worker, child, ready: Promise.race([ready, failed]), exited, lines };
}

async function stopWorkers(workers: readonly Worker[]): Promise<void> {
  for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGTERM');
  await Promise.all(
    workers.map((w) =>
      Promise.race([
        w.exited,
        sleep(10_000).then(() => {
          w.child.kill('SIGKILL');
          return w.exited;
        }),
      ]),
    ),
  );
}

// --- Redis helpers -----------------------------------------------------------------------

async function publish(client: Redis, instance: string, ticks: readonly { shard: number; body: Buffer }[][], maxLen = 100_000): Promise<void> {
  const chunk = 2_000;
  const flat = ticks.flat();
  for (let k = 0; k < flat.length; k += chunk) {
    const p = client.pipeline();
    for (const { shard, body } of flat.slice(k, k + chunk)) p.xadd(shardKeys(instance, shard, SHARDS).input, 'MAXLEN', '~', maxLen, '*', ENTRY_FIELD, body);
    await p.exec();
  }
}

async function outputsWritten(client: Redis, instance: string, shards: readonly number[]): Promise<number> {
  const p = client.pipeline();
  for (const s of shards) p.xlen(shardKeys(instance, s, SHARDS).output);
  const replies = (await p.exec()) ?? [];
  return replies.reduce((sum, [, n]) => sum + Number(n), 0);
}

/** Lease owner of every shard (undefined: none). */
/** Each shard's lease: `worker#epoch`, or null. */
async function leases(client: Redis, instance: string): Promise<(string | null)[]> {
  return client.mget(Array.from({ length: SHARDS }, (_, s) => shardKeys(instance, s, SHARDS).lease));
}

async function owners(client: Redis, instance: string): Promise<(string | undefined)[]> {
  return (await leases(client, instance)).map((v) => v?.split('#')[0]);
}

async function until(what: string, timeoutMs: number, done: () => Promise<boolean>, everyMs = 50): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (await done()) return performance.now();
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Every shard leased by the worker whose share it is. */
async function settled(client: Redis, instance: string, names: readonly string[]): Promise<boolean> {
  const own = await owners(client, instance);
  return names.every((name) => shareOf(name, names, SHARDS).every((s) => own[s] === name));
}

// --- 1-3, 5: throughput ----------------------------------------------------------------------

interface Throughput {
  readonly workers: number;
  readonly pinned: boolean;
  readonly readCount: number;
  readonly instrumentTicks: number;
  readonly seconds: number;
  readonly perSecond: number;
  /** Between 10 % and 90 % of the outputs. */
  readonly middlePerSecond: number;
  readonly rampMs: number;
  readonly tailMs: number;
  /** CPU cores busy on average over the run: all workers together, and Redis. */
  readonly workerCores: number;
  readonly redisCores: number;
  /** Cores other processes on the machine kept busy during the run. */
  readonly foreignCores: number;
  readonly workerCpuUsPerIT: number;
  readonly redisCpuUsPerIT: number;
  readonly publishRedisUsPerIT: number;
  readonly fillMs: number;
  readonly shardsPerWorker: number[];
  readonly activeShardsPerWorker: number[];
  readonly itPerWorker: number[];
  readonly cpuSharePerWorker: number[];
}

const deviation = (xs: readonly number[]) => {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  return mean > 0 ? (Math.max(...xs) / mean - 1) * 100 : 0;
};

interface Ctx {
  readonly redis: TestRedis;
  readonly client: Redis;
  readonly market: SyntheticMarket;
  readonly warm: { shard: number; body: Buffer }[][];
  readonly bulk: { shard: number; body: Buffer }[][];
  readonly progress: (line: string) => void;
  readonly redisPid: number;
  /** Tape time of the last live tick published. */
  lastLiveAt: number;
}

async function throughputRun(ctx: Ctx, k: number, pinned: boolean, readCount: number): Promise<Throughput> {
  const { client, market } = ctx;
  const instance = `tp${k}${pinned ? 'p' : 'u'}r${readCount}`;
  const active = market.activeShards;
  const instruments = market.n;
  await publish(client, instance, ctx.warm);
  const names = Array.from({ length: k }, (_, n) => `w${n + 1}`);
  const workers = names.map((name) => startWorker({ url: ctx.redis.url, instance, worker: name, readCount, leaseMs: THROUGHPUT_LEASE_MS }, pinned));
  try {
    await Promise.all(workers.map((w) => w.ready));
    await until('the leases to settle and the warm-up ticks to be consumed', catchUpMs(instruments), async () => (await settled(client, instance, names)) && (await outputsWritten(client, instance, active)) === WARM_TICKS * active.length);
    // Steady: settled, warm. Freeze the workers while the bulk is written, so the measure is theirs, not the publisher's.
    const ours = () => selfCpuUs() + procCpuUs(ctx.redisPid) + workers.reduce((sum, w) => sum + procCpuUs(w.child.pid!), 0);
    await quiet(ctx.progress, ours);
    for (const w of workers) w.child.kill('SIGSTOP');
    const r0 = await redisCpuUs(client);
    const f0 = performance.now();
    await publish(client, instance, ctx.bulk);
    const fillMs = performance.now() - f0;
    const r1 = await redisCpuUs(client);
    const c0 = workers.map((w) => procCpuUs(w.child.pid!));
    const held = await leases(client, instance);
    const own = held.map((v) => v?.split('#')[0]);
    const m0 = machineBusyUs();
    const o0 = ours();
    const t0 = performance.now();
    for (const w of workers) w.child.kill('SIGCONT');
    const expected = (WARM_TICKS + ctx.bulk.length) * active.length;
    const base = WARM_TICKS * active.length;
    const timeline: [number, number][] = [[t0, 0]];
    const t1 = await until(
      `${k} worker(s) to consume the pre-filled tape`,
      180_000,
      async () => {
        const n = await outputsWritten(client, instance, active);
        timeline.push([performance.now(), n - base]);
        return n === expected;
      },
      20,
    );
    // The steady middle: from 10 % to 90 % of the outputs (no wake-up, no tail of the last shards).
    const total = expected - base;
    const crossing = (share: number) => {
      const n = share * total;
      const i = timeline.findIndex(([, c]) => c >= n);
      const [ta, ca] = timeline[Math.max(0, i - 1)]!;
      const [tb, cb] = timeline[i]!;
      return cb === ca ? tb : ta + ((n - ca) / (cb - ca)) * (tb - ta);
    };
    const t10 = crossing(0.1);
    const t90 = crossing(0.9);
    const foreignCores = (machineBusyUs() - m0 - (ours() - o0)) / ((performance.now() - t0) * 1000);
    const r2 = await redisCpuUs(client);
    const c1 = workers.map((w) => procCpuUs(w.child.pid!));
    const itCount = ctx.bulk.length * instruments;
    const seconds = (t1 - t0) / 1000;
    const cpu = c1.map((c, n) => c - c0[n]!);
    const cpuTotal = cpu.reduce((a, b) => a + b, 0);
    // A new epoch, even for the same worker, is a take-over: re-computation from a checkpoint inside the measure.
    const moved = (await leases(client, instance)).some((l, s) => l !== held[s]);
    if (moved) ctx.progress(`  warning: a lease was taken anew during the ${k}-worker run`);
    if (fillMs > THROUGHPUT_LEASE_MS / 2) ctx.progress(`  warning: pre-fill took ${fmt(fillMs)} ms with the workers stopped (lease ${fmt(THROUGHPUT_LEASE_MS)} ms)`);
    return {
      workers: k,
      pinned,
      readCount,
      instrumentTicks: itCount,
      seconds,
      perSecond: itCount / seconds,
      middlePerSecond: (0.8 * itCount) / ((t90 - t10) / 1000),
      rampMs: t10 - t0,
      tailMs: t1 - t90,
      workerCores: cpuTotal / 1e6 / seconds,
      redisCores: (r2 - r1) / 1e6 / seconds,
      foreignCores,
      workerCpuUsPerIT: cpuTotal / itCount,
      redisCpuUsPerIT: (r2 - r1) / itCount,
      publishRedisUsPerIT: (r1 - r0) / itCount,
      fillMs,
      shardsPerWorker: names.map((name) => own.filter((o) => o === name).length),
      activeShardsPerWorker: names.map((name) => active.filter((s) => own[s] === name).length),
      itPerWorker: names.map((name) => active.filter((s) => own[s] === name).reduce((sum, s) => sum + market.instrumentsOf.get(s)! * ctx.bulk.length, 0)),
      cpuSharePerWorker: cpu.map((c) => c / cpuTotal),
    };
  } finally {
    for (const w of workers) w.child.kill('SIGCONT');
    await stopWorkers(workers);
    await client.flushall();
  }
}

// --- 4, 7: hand-over and latency on a live tape ---------------------------------------------------

interface Handover {
  readonly leaseMs: number;
  readonly roundMs: number;
  readonly victimShards: number;
  /** ms from the SIGKILL until every shard of the victim has a new holder / new output; medians too. */
  readonly leasedAllMs: number;
  readonly leasedMedianMs: number;
  readonly outputAllMs: number;
  readonly outputMedianMs: number;
  readonly latencyMs?: readonly number[];
  /** False when the workers never caught up with the live tape: the window measured an overloaded cluster. */
  readonly caughtUp: boolean;
  /** During the steady window before the kill: cores busy with other processes, and with this bench (workers, Redis, publisher and reader). */
  readonly foreignCores: number;
  readonly ourCores: number;
  /** During the steady window: Redis's CPU (cores) and the bytes it read per second (tapes, outputs, checkpoints). */
  readonly redisCores: number;
  readonly redisInBytesPerS: number;
}

async function liveRun(ctx: Ctx, leaseMs: number, roundMs: number, measureLatency: boolean): Promise<Handover> {
  const { client, market } = ctx;
  const instance = `ho${leaseMs}`;
  const active = market.activeShards;
  const names = Array.from({ length: HANDOVER_WORKERS }, (_, n) => `w${n + 1}`);
  // The warm-up ticks, ending now, are there before the workers start: they begin warm, as in steady trading.
  // Tape times only rise on the one synthetic market: a second run's tape runs ahead of the wall clock by `offset`, so that its warm-up comes after the last run's ticks.
  const offset = Math.max(0, ctx.lastLiveAt + TICK_MS - (Date.now() - WARM_TICKS * TICK_MS));
  const start = Date.now() + offset;
  await publish(client, instance, Array.from({ length: WARM_TICKS }, (_, k) => market.tick(start - (WARM_TICKS - k) * TICK_MS).entries));
  const pub = new Redis(ctx.redis.url);
  let publishing = true;
  let published = 0;
  const publisher = (async () => {
    let next = performance.now();
    while (publishing) {
      ctx.lastLiveAt = Date.now() + offset;
      const { entries } = market.tick(ctx.lastLiveAt);
      const p = pub.pipeline();
      for (const { shard, body } of entries) p.xadd(shardKeys(instance, shard, SHARDS).input, 'MAXLEN', '~', 20_000, '*', ENTRY_FIELD, body);
      await p.exec();
      published++;
      next += TICK_MS;
      await sleep(Math.max(0, next - performance.now()));
    }
  })();
  const workers = names.map((name) => startWorker({ url: ctx.redis.url, instance, worker: name, leaseMs, roundMs }, false));
  const reader = new Redis(ctx.redis.url);
  try {
    await Promise.all(workers.map((w) => w.ready));
    await until('the leases to settle on the live tape', 60_000, async () => settled(client, instance, names), 100);
    await until('output on every shard', 30_000, async () => {
      const p = client.pipeline();
      for (const s of active) p.xlen(shardKeys(instance, s, SHARDS).output);
      return ((await p.exec()) ?? []).every(([, n]) => Number(n) > 0);
    });
    // Steady state: a few seconds of live ticks, timed at the trading side's XREAD.
    const latencyMs: number[] = [];
    const streams = active.map((s) => shardKeys(instance, s, SHARDS).output);
    const ids = streams.map(() => '$');
    const readOnce = async (into: number[]) => {
      const reply = (await reader.xreadBuffer('COUNT', 100, 'BLOCK', 500, 'STREAMS', ...streams, ...ids)) as [Buffer, [Buffer, Buffer[]][]][] | null;
      const receivedAt = Date.now();
      for (const [stream, entries] of reply ?? []) {
        const n = streams.indexOf(stream.toString());
        for (const [id, fields] of entries) {
          ids[n] = id.toString();
          into.push(receivedAt + offset - decodeOutput(fields[1]!).at);
        }
      }
    };
    // Caught up first: the backlog of the workers' start and the first rebalances is not steady state.
    const settleStart = performance.now();
    let lastLate = performance.now();
    while (performance.now() - lastLate < 2_000 && performance.now() - settleStart < catchUpMs(market.n)) {
      const seen: number[] = [];
      await readOnce(seen);
      if (seen.some((ms) => ms > 500)) lastLate = performance.now();
    }
    const caughtUp = performance.now() - lastLate >= 2_000;
    ctx.progress(caughtUp ? `  steady after ${fmt(performance.now() - settleStart)} ms of catching up` : `  warning: the workers never caught up with the live tape in ${fmt(performance.now() - settleStart)} ms: what follows is an overloaded cluster`);
    const ours = () => selfCpuUs() + procCpuUs(ctx.redisPid) + workers.reduce((sum, w) => sum + procCpuUs(w.child.pid!), 0);
    const [m0, o0, w0] = [machineBusyUs(), ours(), performance.now()];
    const [r0, b0] = [await redisCpuUs(client), await redisInputBytes(client)];
    const windowEnd = performance.now() + (measureLatency ? LATENCY_WINDOW_MS : 1_000);
    while (performance.now() < windowEnd) await readOnce(latencyMs);
    const foreignCores = (machineBusyUs() - m0 - (ours() - o0)) / ((performance.now() - w0) * 1000);
    const ourCores = (ours() - o0) / ((performance.now() - w0) * 1000);
    const redisCores = ((await redisCpuUs(client)) - r0) / ((performance.now() - w0) * 1000);
    const redisInBytesPerS = ((await redisInputBytes(client)) - b0) / ((performance.now() - w0) / 1000);
    const own = await owners(client, instance);
    const victim = workers[1]!;
    const mine = own.flatMap((o, s) => (o === victim.name ? [s] : []));
    const mineActive = mine.filter((s) => market.instrumentsOf.has(s));
    const killedAt = Date.now();
    victim.child.kill('SIGKILL');
    const leasedAt = new Map<number, number>();
    const outputAt = new Map<number, number>();
    await until('the killed worker’s shards to move and produce again', leaseMs * 4 + 20_000, async () => {
      const now = Date.now();
      const leases = await client.mget(mine.map((s) => shardKeys(instance, s, SHARDS).lease));
      leases.forEach((v, n) => {
        const o = v?.split('#')[0];
        if (o && o !== victim.name && !leasedAt.has(mine[n]!)) leasedAt.set(mine[n]!, now);
      });
      const p = client.pipeline();
      for (const s of mineActive) p.xrevrange(shardKeys(instance, s, SHARDS).output, '+', '-', 'COUNT', 1);
      ((await p.exec()) ?? []).forEach(([, r], n) => {
        const last = (r as [string, string[]][])[0];
        const at = last ? Number(last[0].split('-')[0]) : 0;
        // An entry the dead worker's commit could still have landed a few ms after the kill is not a resumption.
        if (at > killedAt + 20 && leasedAt.has(mineActive[n]!) && !outputAt.has(mineActive[n]!)) outputAt.set(mineActive[n]!, at);
      });
      return leasedAt.size === mine.length && outputAt.size === mineActive.length;
    }, 20);
    const lease = [...leasedAt.values()].map((t) => t - killedAt);
    const out = [...outputAt.values()].map((t) => t - killedAt);
    ctx.progress(`  lease ${leaseMs}/${roundMs} ms: ${mine.length} shards moved in ${fmt(Math.max(...lease))} ms, output resumed in ${fmt(Math.max(...out))} ms (${published} ticks published); steady window: bench ${fmt(ourCores, 2)} cores, other processes ${fmt(foreignCores, 2)}`);
    return {
      leaseMs,
      roundMs,
      victimShards: mine.length,
      leasedAllMs: Math.max(...lease),
      leasedMedianMs: percentile(lease, 50),
      outputAllMs: Math.max(...out),
      outputMedianMs: percentile(out, 50),
      latencyMs: measureLatency ? latencyMs : undefined,
      caughtUp,
      foreignCores,
      ourCores,
      redisCores,
      redisInBytesPerS,
    };
  } finally {
    publishing = false;
    await publisher;
    pub.disconnect();
    reader.disconnect();
    await stopWorkers(workers);
    await client.flushall();
  }
}

// --- 7: the in-process path --------------------------------------------------------------------

async function inProcess(ctx: Ctx): Promise<{ perEntryUs: number[]; perTickUs: number[] }> {
  const settings = shardWorkerSettings.parse(benchStages());
  const parts = await openParts(settings, pino({ level: 'warn' }, pino.destination(2)), systemClock);
  const ticks = [...ctx.warm, ...ctx.bulk].slice(0, INPROC_WARM + INPROC_TIMED);
  const pipelines = new Map<number, ShardPipeline>();
  const perEntryUs: number[] = [];
  const perTickUs: number[] = [];
  let cold = 0;
  try {
    for (const [k, entries] of ticks.entries()) {
      let tickUs = 0;
      for (const { shard, body } of entries) {
        const tape = decodeTape(body);
        let p = pipelines.get(shard);
        if (!p) pipelines.set(shard, (p = await ShardPipeline.create(shard, tape.symbols, tape.booked, parts.build)));
        const t0 = performance.now();
        const out = await p.apply(tape);
        const us = (performance.now() - t0) * 1000;
        tickUs += us;
        if (k >= INPROC_WARM) perEntryUs.push(us);
        if (k === INPROC_WARM) cold += out.warm.filter((w) => w === 0).length;
      }
      if (k >= INPROC_WARM) perTickUs.push(tickUs);
    }
  } finally {
    for (const p of pipelines.values()) await p.close();
    await parts.close();
  }
  // What the warm-up is for: were it too short, the models would skip cold instruments and every figure would flatter.
  if (cold > 0) ctx.progress(`  warning: ${cold} instruments still cold after the ${INPROC_WARM} warm-up ticks`);
  return { perEntryUs, perTickUs };
}

// --- the bench ----------------------------------------------------------------------------------

export async function clusterBench({ progress, instruments = 200, ticks = 300 }: ClusterOptions) {
  const started = performance.now();
  const market = new SyntheticMarket(instruments);
  const active = market.activeShards;
  progress(`cluster: ${instruments} instruments over ${active.length} of ${SHARDS} shards; generating ${WARM_TICKS} + ${ticks} ticks`);
  const warm = Array.from({ length: WARM_TICKS }, (_, k) => market.tick(1_000_000_000_000 + k * TICK_MS).entries);
  const bulk = Array.from({ length: ticks }, (_, k) => market.tick(1_000_000_000_000 + (WARM_TICKS + k) * TICK_MS).entries);
  const bytes = bulk.flat().reduce((sum, e) => sum + e.body.length, 0);
  if (market.rejectedRows() > 0) progress(`  warning: the synthetic books rejected ${market.rejectedRows()} rows`);
  progress(`  tape: ${fmt(bytes / bulk.flat().length)} bytes per shard entry on average`);
  const redis = await startRedis();
  const client = new Redis(redis.url);
  const redisPid = Number(/process_id:(\d+)/.exec(await client.info('server'))?.[1]);
  const ctx: Ctx = { redis, client, market, warm, bulk, progress, redisPid, lastLiveAt: 0 };
  const tp: Throughput[] = [];
  const live: Handover[] = [];
  let inproc: { perEntryUs: number[]; perTickUs: number[] };
  let rc1: Throughput;
  try {
    for (const k of WORKER_COUNTS) {
      for (const pinned of [false, true]) {
        progress(`throughput: ${k} worker(s)${pinned ? ', pinned to core 0' : ''}`);
        const r = await throughputRun(ctx, k, pinned, 10);
        progress(`  ${fmt(r.perSecond)} instrument-ticks/s over ${fmt(r.seconds, 1)} s (10-90 %: ${fmt(r.middlePerSecond)}/s; to 10 % ${fmt(r.rampMs)} ms, from 90 % ${fmt(r.tailMs)} ms); workers busy ${fmt(r.workerCores, 2)} cores, Redis ${fmt(r.redisCores, 2)}, other processes ${fmt(r.foreignCores, 2)}; worker ${fmt(r.workerCpuUsPerIT, 1)} µs, Redis ${fmt(r.redisCpuUsPerIT, 1)} µs CPU per instrument-tick`);
        tp.push(r);
      }
    }
    progress('throughput: 2 workers, readCount 1');
    rc1 = await throughputRun(ctx, 2, false, 1);
    progress(`  ${fmt(rc1.perSecond)} instrument-ticks/s (10-90 %: ${fmt(rc1.middlePerSecond)}/s), other processes ${fmt(rc1.foreignCores, 2)} cores; Redis ${fmt(rc1.redisCpuUsPerIT, 1)} µs CPU per instrument-tick`);
    tp.push(rc1);
    for (const [n, [leaseMs, roundMs]] of LEASES.entries()) {
      progress(`hand-over: ${HANDOVER_WORKERS} workers on a live tape, lease ${leaseMs} ms, round ${roundMs} ms${n === 0 ? ', with latency' : ''}`);
      live.push(await liveRun(ctx, leaseMs, roundMs, n === 0));
    }
    progress('in-process: ShardPipeline.apply on the same entries');
    inproc = await inProcess(ctx);
  } finally {
    client.disconnect();
    await redis.dispose();
  }

  // --- tables ---
  const find = (k: number, pinned: boolean, readCount = 10) => tp.find((r) => r.workers === k && r.pinned === pinned && r.readCount === readCount)!;
  const lines: string[] = [];
  lines.push(`${instruments} instruments over ${active.length} of ${SHARDS} shards, ${WARM_TICKS} warm-up ticks (every instrument warm: regime and predictor run on all), ${ticks} pre-filled ticks per shard (${fmt(ticks * instruments)} instrument-ticks a run), tape ${fmt(bytes / bulk.flat().length)} B per shard entry. Workers: ShardWorker + openParts (features, health, regime SJM, predictor GBDT base only, in-thread), readCount 10, pollMs 50. One run per variant (--runs is ignored here).`);
  lines.push('');
  lines.push('| workers | cores | instr-ticks/s (until all consumed) | 10–90 % of outputs | vs 1 worker (10–90 %) | worker CPU µs / instr-tick | Redis CPU µs / instr-tick (read+commit) | Redis µs / instr-tick (publish XADD) | busy cores: workers / Redis / other processes | shards per worker (with input) | instr-ticks per worker: max/mean − 1 |');
  lines.push('|---|---|---|---|---|---|---|---|---|---|---|');
  for (const pinned of [false, true])
    for (const k of WORKER_COUNTS) {
      const r = find(k, pinned);
      const base = find(1, pinned);
      lines.push(
        `| ${k}${r.foreignCores > CONTENDED ? ' ⚠' : ''} | ${pinned ? 'pinned to core 0' : 'both'} | ${fmt(r.perSecond)} | ${fmt(r.middlePerSecond)} | ${fmt(r.middlePerSecond / base.middlePerSecond, 2)}× | ${fmt(r.workerCpuUsPerIT, 1)} | ${fmt(r.redisCpuUsPerIT, 1)} | ${fmt(r.publishRedisUsPerIT, 1)} | ${fmt(r.workerCores, 2)} / ${fmt(r.redisCores, 2)} / ${fmt(r.foreignCores, 2)} | ${r.shardsPerWorker.join(' / ')} (${r.activeShardsPerWorker.join(' / ')}) | ${fmt(deviation(r.itPerWorker), 1)} % |`,
      );
    }
  lines.push('');
  const contended = tp.filter((r) => r.foreignCores > CONTENDED).length;
  lines.push(
    `⚠: other processes on this machine kept more than ${CONTENDED} cores busy during the run (${contended} of ${tp.length} runs): its throughput says little; the CPU µs per instrument-tick (from each process's own accounting) hold up better. Redis CPU includes this bench's progress polls (${active.length} XLEN every 20 ms, about 1 µs each).`,
  );
  lines.push('');
  lines.push('| workers | unpinned / pinned throughput (until all) | (10–90 %) |');
  lines.push('|---|---|---|');
  for (const k of WORKER_COUNTS) lines.push(`| ${k} | ${fmt(find(k, false).perSecond / find(k, true).perSecond, 2)}× | ${fmt(find(k, false).middlePerSecond / find(k, true).middlePerSecond, 2)}× |`);
  lines.push('');
  lines.push('Even division (leases; shards with input in brackets; CPU share from /proc):');
  lines.push('');
  lines.push('| workers | shards: max/mean − 1 | active shards: max/mean − 1 | instr-ticks: max/mean − 1 | CPU share per worker |');
  lines.push('|---|---|---|---|---|');
  for (const k of WORKER_COUNTS.filter((k) => k > 1)) {
    const r = find(k, false);
    lines.push(`| ${k} | ${fmt(deviation(r.shardsPerWorker), 1)} % | ${fmt(deviation(r.activeShardsPerWorker), 1)} % | ${fmt(deviation(r.itPerWorker), 1)} % | ${r.cpuSharePerWorker.map((s) => `${fmt(s * 100)} %`).join(' / ')} |`);
  }
  lines.push('');
  const r10 = find(2, false, 10);
  lines.push('Redis CPU per instrument-tick by read size (2 workers, unpinned):');
  lines.push('');
  lines.push('| readCount | instr-ticks/s (10–90 %) | Redis CPU µs / instr-tick (read+commit) | worker CPU µs / instr-tick | other processes, cores |');
  lines.push('|---|---|---|---|---|');
  for (const r of [r10, rc1]) lines.push(`| ${r.readCount} | ${fmt(r.middlePerSecond)} | ${fmt(r.redisCpuUsPerIT, 2)} | ${fmt(r.workerCpuUsPerIT, 1)} | ${fmt(r.foreignCores, 2)} |`);
  lines.push(`| ratio 1 / 10 | ${fmt(rc1.middlePerSecond / r10.middlePerSecond, 2)}× | ${fmt(rc1.redisCpuUsPerIT / r10.redisCpuUsPerIT, 2)}× | ${fmt(rc1.workerCpuUsPerIT / r10.workerCpuUsPerIT, 2)}× |`);
  lines.push('');
  lines.push(`Hand-over: ${HANDOVER_WORKERS} workers on a live tape (one tick per 100 ms); one SIGKILLed:`);
  lines.push('');
  lines.push('| lease / round ms | its shards | all re-leased (median) | all producing again (median) | all producing / lease |');
  lines.push('|---|---|---|---|---|');
  for (const h of live) lines.push(`| ${h.leaseMs} / ${h.roundMs} | ${h.victimShards} | ${fmt(h.leasedAllMs)} ms (${fmt(h.leasedMedianMs)}) | ${fmt(h.outputAllMs)} ms (${fmt(h.outputMedianMs)}) | ${fmt(h.outputAllMs / h.leaseMs, 2)}× |`);
  lines.push('');
  const lat = live[0]!.latencyMs ?? [];
  const p = (xs: readonly number[], q: number) => percentile(xs, q);
  const entryMs = inproc.perEntryUs.map((u) => u / 1000);
  const tickMs = inproc.perTickUs.map((u) => u / 1000);
  if (!live[0]!.caughtUp) lines.push(`⚠ The workers never caught up with the live tape of ${instruments} instruments (this bench's publisher and Redis share the two cores with them): the latency below is an overloaded cluster's.`, '');
  lines.push(`Tick to decision (${HANDOVER_WORKERS} workers, live tape, ${fmt(lat.length)} outputs over ${LATENCY_WINDOW_MS / 1000} s${live[0]!.caughtUp ? ' once caught up' : ''}; bench ${fmt(live[0]!.ourCores, 2)} cores busy, other processes ${fmt(live[0]!.foreignCores, 2)}): tape time of the tick (just before its XADDs) to the trading side's XREAD, same clock; vs ShardPipeline.apply() in this process on ${INPROC_TIMED} ticks of the same tape:`);
  lines.push('');
  lines.push('| path | p50 ms | p99 ms | through Redis / this |');
  lines.push('|---|---|---|---|');
  lines.push(`| through Redis (publish → worker poll/read → apply → commit → XREAD) | ${fmt(p(lat, 50), 1)} | ${fmt(p(lat, 99), 1)} | 1× |`);
  lines.push(`| in-process apply, one shard entry | ${fmt(p(entryMs, 50), 3)} | ${fmt(p(entryMs, 99), 3)} | ${fmt(p(lat, 50) / p(entryMs, 50))}× / ${fmt(p(lat, 99) / p(entryMs, 99))}× |`);
  lines.push(`| in-process apply, all ${active.length} shards of a tick | ${fmt(p(tickMs, 50), 2)} | ${fmt(p(tickMs, 99), 2)} | ${fmt(p(lat, 50) / p(tickMs, 50), 1)}× / ${fmt(p(lat, 99) / p(tickMs, 99), 1)}× |`);
  lines.push('');
  // Capacity: a worker's CPU per instrument-tick at 1 worker (no contention) is what one core carries; Redis's read+commit and publish costs are what its one core carries.
  // One worker (pinned and unpinned averaged): no other worker to share its core with.
  const oneUs = (find(1, false).workerCpuUsPerIT + find(1, true).workerCpuUsPerIT) / 2;
  const perCore = 1e6 / oneUs;
  const redisUs = r10.redisCpuUsPerIT + r10.publishRedisUsPerIT;
  const redisLimitIT = 1e6 / redisUs;
  const at10 = (it: number) => it / (1000 / TICK_MS);
  lines.push(`Live (the tick-to-decision window): Redis ${fmt(live[0]!.redisCores, 2)} cores busy, reading ${fmt(live[0]!.redisInBytesPerS / 1e6, 2)} MB/s from its clients (${fmt(live[0]!.redisInBytesPerS / (instruments * (1000 / TICK_MS)) / 1e3, 2)} kB per instrument-tick: tapes, outputs and a checkpoint every ${CHECKPOINT_EVERY} ticks per shard).`);
  lines.push('');
  lines.push(`Capacity model: one worker core carries ${fmt(perCore)} instrument-ticks/s (1e6 / ${fmt(oneUs, 1)} µs, the 1-worker runs' CPU per instrument-tick) = ${fmt(at10(perCore))} instruments at 10 ticks/s; Redis spends ${fmt(redisUs, 1)} µs per instrument-tick (read+commit ${fmt(r10.redisCpuUsPerIT, 1)} + publish ${fmt(r10.publishRedisUsPerIT, 1)}; the trading side's reads not counted), so its one core saturates at ${fmt(redisLimitIT)} instrument-ticks/s = ${fmt(at10(redisLimitIT))} instruments at 10 ticks/s.`);
  lines.push('');
  lines.push('| worker machines (2 cores each, all for workers) | instruments at 10 ticks/s, workers alone | with one Redis core | limited by |');
  lines.push('|---|---|---|---|');
  for (const machines of [1, 2, 4, 8, 16, 32]) {
    const workersAlone = at10(perCore * 2 * machines);
    const cap = Math.min(workersAlone, at10(redisLimitIT));
    lines.push(`| ${machines} | ${fmt(workersAlone)} | ${fmt(cap)} | ${workersAlone > at10(redisLimitIT) ? 'Redis' : 'workers'} |`);
  }
  lines.push('');
  lines.push(`Total bench time ${fmt((performance.now() - started) / 1000)} s.`);
  const rows = { throughput: tp, handover: live.map(({ latencyMs: _, ...h }) => h), latency: { redisP50: p(lat, 50), redisP99: p(lat, 99), samples: lat.length, applyEntryP50: p(entryMs, 50), applyEntryP99: p(entryMs, 99), applyTickP50: p(tickMs, 50), applyTickP99: p(tickMs, 99) }, capacity: { perCoreIT: perCore, redisUsPerIT: redisUs, redisLimitIT } };
  return { rows: [rows], table: lines.join('\n'), method: 'one run per variant (--runs does not apply)' };
}
