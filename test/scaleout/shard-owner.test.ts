/**
 * Shard owners in one process against a private redis-server, each worker
 * with its own connection and its own clock. The clock runs real timers
 * (leases expire in Redis's real time) but can be paused: a paused worker
 * runs no rounds, as under SIGSTOP, and one never resumed is dead (killed:
 * nothing released). Short leases; hand-over speed is asserted by counting
 * the survivors' rounds, never by timing.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { systemClock, type Clock } from '../../src/clock.js';
import { assignShards } from '../../src/scaleout/assignment.js';
import { FENCED, type FencedShard } from '../../src/scaleout/fenced.js';
import { ShardOwner, type LostReason } from '../../src/scaleout/shard-owner.js';
import { shardKeys, workersKey } from '../../src/scaleout/shards.js';
import { startRedis, type TestRedis } from '../support/redis.js';

const SHARDS = 128;
const TTL_MS = 500;
const ROUND_MS = 100;
/** Rounds a shard of a dead worker may take to move: its TTL, one more round, and one for where in a round it died. */
const HANDOVER_ROUNDS = TTL_MS / ROUND_MS + 2;

let server: TestRedis;
before(async () => {
  server = await startRedis();
});
after(async () => {
  await server.dispose();
});

interface Timer {
  handle: unknown;
  cancelled: boolean;
}

/** Real timers; while paused, callbacks that come due are held until resumed. Counts the callbacks run: the owner's rounds. */
class PausableClock implements Clock {
  rounds = 0;
  private paused = false;
  private held: (() => void)[] = [];
  now = () => systemClock.now();
  wallNow = () => systemClock.wallNow();

  setTimeout(fn: () => void, ms: number): Timer {
    const timer: Timer = { handle: undefined, cancelled: false };
    timer.handle = systemClock.setTimeout(() => this.fire(timer, fn), ms);
    return timer;
  }

  clearTimeout(handle: unknown): void {
    const timer = handle as Timer | undefined;
    if (!timer) return;
    timer.cancelled = true;
    systemClock.clearTimeout(timer.handle);
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    const held = this.held;
    this.held = [];
    for (const fire of held) fire();
  }

  private fire(timer: Timer, fn: () => void): void {
    if (timer.cancelled) return;
    if (this.paused) {
      this.held.push(() => this.fire(timer, fn));
      return;
    }
    this.rounds++;
    fn();
  }
}

interface Worker {
  readonly id: string;
  readonly clock: PausableClock;
  readonly client: Redis;
  readonly owner: ShardOwner;
  /** What onGained handed over, by shard. */
  readonly shards: Map<number, FencedShard>;
  /** The clock's round count when each shard was last gained: hand-over speed, free of the test's polling. */
  readonly gainedAt: Map<number, number>;
  readonly lost: { shard: number; reason: LostReason }[];
  readonly errors: unknown[];
}

const running: Worker[] = [];
afterEach(async () => {
  for (const worker of running.splice(0)) {
    worker.clock.resume();
    await worker.owner.stop();
    worker.client.disconnect();
  }
});

/** `drain` stands for the caller finishing its in-flight batch before a shard is handed back. */
function startWorker(instance: string, id: string, drain?: (shard: number) => Promise<void>): Worker {
  const client = new Redis(server.url);
  const clock = new PausableClock();
  const shards = new Map<number, FencedShard>();
  const gainedAt = new Map<number, number>();
  const lost: Worker['lost'] = [];
  const errors: unknown[] = [];
  const owner = new ShardOwner({
    client,
    clock,
    instance,
    worker: id,
    shardCount: SHARDS,
    leaseTtlMs: TTL_MS,
    roundMs: ROUND_MS,
    onGained: (shard, takeOver) => {
      assert.deepEqual(takeOver.pending, [], 'nothing was ever read');
      shards.set(shard.lease.keys.shard, shard);
      gainedAt.set(shard.lease.keys.shard, clock.rounds);
    },
    onLost: (shard, reason) => {
      lost.push({ shard, reason });
      return reason === 'rebalanced' ? drain?.(shard) : undefined;
    },
    onError: (error) => errors.push(error),
  });
  const worker = { id, clock, client, owner, shards, gainedAt, lost, errors };
  running.push(worker);
  owner.start();
  return worker;
}

/** Polls until `done`; the deadline only stops a hang, nothing is timed. */
async function until(what: string, done: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`not within 20 s: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Each live worker holds exactly its share, and each lease in Redis is its holder's. */
async function settled(instance: string, workers: Worker[]): Promise<boolean> {
  const shares = assignShards(workers.map((w) => w.id), SHARDS);
  if (!workers.every((w) => String(w.owner.owned()) === String(shares.get(w.id)))) return false;
  for (const w of workers) {
    for (const shard of w.owner.owned()) if ((await w.client.get(shardKeys(instance, shard, SHARDS).lease)) !== w.shards.get(shard)?.lease.token) return false;
  }
  return true;
}

/** Clears what the workers were told so far: the start-up churn, as the first to start holds every shard until the others come. */
function forget(workers: Worker[]): void {
  for (const w of workers) w.lost.length = 0;
}

/** Only hand-backs, never a lease lost. */
function neverLost(w: Worker): void {
  assert.deepEqual(w.lost.filter((l) => l.reason === 'lost'), [], `${w.id} lost no lease`);
}

function ownerOf(workers: Worker[], shard: number): Worker[] {
  return workers.filter((w) => w.owner.owned().includes(shard));
}

/** The most rounds any of `workers` ran, from `start` (their round counts then), before it gained its last of `shards`. */
function roundsToGain(workers: Worker[], start: number[], shards: number[]): number {
  return Math.max(...shards.map((shard) => {
    const i = workers.findIndex((w) => w.owner.owned().includes(shard));
    return workers[i]!.gainedAt.get(shard)! - start[i]!;
  }));
}

test('three workers settle with every shard owned by exactly one of them, evenly', async () => {
  const instance = 'owner-settle';
  const workers = ['worker-a', 'worker-b', 'worker-c'].map((id) => startWorker(instance, id));
  await until('three workers settle', () => settled(instance, workers));
  for (let shard = 0; shard < SHARDS; shard++) assert.equal(ownerOf(workers, shard).length, 1, `shard ${shard}`);
  assert.deepEqual(workers.map((w) => w.owner.owned().length).sort(), [42, 43, 43]);
  for (const w of workers) {
    neverLost(w);
    assert.deepEqual(w.errors, []);
  }
});

test('a killed worker\'s shards move to the others within the lease TTL plus one round', async () => {
  const instance = 'owner-kill';
  const [a, b, c] = ['worker-a', 'worker-b', 'worker-c'].map((id) => startWorker(instance, id)) as [Worker, Worker, Worker];
  await until('three workers settle', () => settled(instance, [a, b, c]));
  forget([a, b, c]);
  const orphans = b.owner.owned();
  // Killed: no more rounds, nothing released, its leases and heartbeat left to expire.
  b.clock.pause();
  const start = [a.clock.rounds, c.clock.rounds];
  await until("the others take every shard of worker-b", () => orphans.every((shard) => ownerOf([a, c], shard).length === 1));
  const rounds = roundsToGain([a, c], start, orphans);
  console.log(`kill: ${orphans.length} shards moved within ${rounds} rounds of ${ROUND_MS} ms (lease ${TTL_MS} ms, bound ${HANDOVER_ROUNDS})`);
  assert.ok(rounds <= HANDOVER_ROUNDS, `${rounds} rounds`);
  await until('two workers settle', () => settled(instance, [a, c]));
  [a, c].forEach(neverLost);
  assert.deepEqual(b.lost, [], 'the dead worker ran nothing');
});

test('a joining worker takes its share; the others hand back exactly the shards that move, after their batch', async () => {
  const instance = 'owner-join';
  let letGo: () => void = () => undefined;
  const held = new Promise<void>((resolve) => (letGo = resolve));
  let armed = false;
  let draining: number | undefined;
  // Once armed, worker-a finishes its first in-flight batch only when the test says so.
  const a = startWorker(instance, 'worker-a', (shard) => {
    if (!armed || draining !== undefined) return Promise.resolve();
    draining = shard;
    return held;
  });
  const others = ['worker-b', 'worker-c'].map((id) => startWorker(instance, id));
  const three = [a, ...others];
  await until('three workers settle', () => settled(instance, three));
  forget(three);
  const before = assignShards(three.map((w) => w.id), SHARDS);
  armed = true;
  const d = startWorker(instance, 'worker-d');
  const four = [...three, d];
  const after = assignShards(four.map((w) => w.id), SHARDS);

  // A failing assert must not leave worker-a's stop waiting on its batch for ever.
  try {
    await until('worker-a is handing a shard back', () => draining !== undefined);
    const shard = draining!;
    // Renewed while the batch finishes: held past a whole TTL, and still worker-a's.
    const from = a.clock.rounds;
    await until('worker-a runs a TTL of rounds', () => a.clock.rounds > from + TTL_MS / ROUND_MS);
    assert.equal(await a.client.get(shardKeys(instance, shard, SHARDS).lease), a.shards.get(shard)!.lease.token);
    assert.deepEqual(ownerOf(four, shard), [a]);
  } finally {
    letGo();
  }
  await until('four workers settle', () => settled(instance, four));

  const owner = (shares: Map<string, number[]>, s: number) => [...shares].find(([, list]) => list.includes(s))![0];
  const moving = Array.from({ length: SHARDS }, (_, s) => s).filter((s) => owner(before, s) !== owner(after, s));
  const handedBack = three.flatMap((w) => w.lost.map((l) => l.shard)).sort((x, y) => x - y);
  assert.deepEqual(handedBack, moving);
  assert.ok(three.every((w) => w.lost.every((l) => l.reason === 'rebalanced')));
  assert.deepEqual(d.owner.owned(), after.get('worker-d'));
  const toD = moving.filter((s) => owner(after, s) === 'worker-d').length;
  console.log(`join: ${moving.length} shards handed back, ${toD} to the joiner, ${moving.length - toD} between the others`);
  assert.deepEqual(d.lost, []);
});

test('a paused worker loses its shards, is told so when it wakes, and its late commit is FENCED', async () => {
  const instance = 'owner-pause';
  const [a, b, c] = ['worker-a', 'worker-b', 'worker-c'].map((id) => startWorker(instance, id)) as [Worker, Worker, Worker];
  await until('three workers settle', () => settled(instance, [a, b, c]));
  forget([a, b, c]);
  const taken = b.owner.owned();
  const stale = b.shards.get(taken[0]!)!;
  b.clock.pause();
  await until('the others take every shard of the paused worker', () => taken.every((shard) => ownerOf([a, c], shard).length === 1));
  const keys = stale.lease.keys;
  const outputsBefore = await a.client.xlen(keys.output);

  b.clock.resume();
  await until('worker-b is told', () => b.lost.length === taken.length);
  assert.deepEqual([...b.lost].sort((x, y) => x.shard - y.shard), taken.map((shard) => ({ shard, reason: 'lost' })));
  const late = { outputs: [{ seq: 1, body: Buffer.from('late') }], states: new Map([['SPY', Buffer.from('late')]]), acks: [] };
  assert.equal(await stale.commit(late), FENCED);
  assert.equal(await a.client.xlen(keys.output), outputsBefore, 'nothing written');
  assert.equal(await a.client.hget(keys.checkpoint, 'SPY'), null);

  // Awake again, it rejoins and gets a share back under new epochs; the old lease stays fenced.
  await until('three workers settle again', () => settled(instance, [a, b, c]));
  assert.equal(await stale.commit(late), FENCED);
  [a, c].forEach(neverLost);
});

test('a clean stop hands every shard back at once, without waiting for the TTL', async () => {
  const instance = 'owner-stop';
  const [a, b, c] = ['worker-a', 'worker-b', 'worker-c'].map((id) => startWorker(instance, id)) as [Worker, Worker, Worker];
  await until('three workers settle', () => settled(instance, [a, b, c]));
  forget([a, b, c]);
  const released = c.owner.owned();
  running.splice(running.indexOf(c), 1);
  await c.owner.stop();
  c.client.disconnect();
  assert.deepEqual([...c.lost].sort((x, y) => x.shard - y.shard), released.map((shard) => ({ shard, reason: 'stopped' })));
  assert.deepEqual(c.owner.owned(), []);
  // What spares the others the TTL: before stop() returns, its leases are gone (or already taken) and it has left the membership.
  for (const shard of released) {
    const holder = await a.client.get(shardKeys(instance, shard, SHARDS).lease);
    assert.ok(holder === null || !holder.startsWith(`${c.id}#`), `shard ${shard}'s lease released, not ${holder}`);
  }
  assert.equal(await a.client.zscore(workersKey(instance), c.id), null, 'worker-c left');
  const start = [a.clock.rounds, b.clock.rounds];
  await until('the others take every shard of worker-c', () => released.every((shard) => ownerOf([a, b], shard).length === 1));
  // Normally one round, two if one was under way; a round that overran its slot (a loaded machine) adds one. A TTL would be 5.
  const rounds = roundsToGain([a, b], start, released);
  assert.ok(rounds < TTL_MS / ROUND_MS, `${rounds} rounds, not a TTL's ${TTL_MS / ROUND_MS}`);
  await until('two workers settle', () => settled(instance, [a, b]));
});

test('a stop whose drain never settles still ends, within a lease time, and leaves', { timeout: 20_000 }, async () => {
  const instance = 'owner-stuck';
  const client = new Redis(server.url);
  let gained = 0;
  const owner = new ShardOwner({
    client,
    clock: systemClock,
    instance,
    worker: 'stuck',
    shardCount: SHARDS,
    leaseTtlMs: TTL_MS,
    roundMs: ROUND_MS,
    onGained: () => void gained++,
    // A batch that never finishes.
    onLost: () => new Promise<void>(() => undefined),
  });
  try {
    owner.start();
    await until('the shards are taken', () => gained === SHARDS);
    await owner.stop();
    assert.equal(await client.zscore(workersKey(instance), 'stuck'), null, 'it left the live workers');
  } finally {
    client.disconnect();
  }
});
