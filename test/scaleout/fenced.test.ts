/**
 * Fenced reads, commits and take-overs against a private redis-server. The
 * workers are simulated in process and die at chosen points (between a read
 * and its commit), so hand-overs are deterministic; leases are expired with
 * PEXPIRE rather than waited out.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { unpack } from 'msgpackr';
import { encodePlain } from '../../src/codecs.js';
import { ENTRY_FIELD, FENCED, FencedShard, WORKER_GROUP, ensureGroup, idAfter, type Batch, type StreamEntry } from '../../src/scaleout/fenced.js';
import { acquireLease } from '../../src/scaleout/lease.js';
import { shardKeys, type ShardKeys } from '../../src/scaleout/shards.js';
import { redisForFile } from '../support/redis.js';

const redis = redisForFile();

const TTL_MS = 60_000;

/** Expires a lease now, as its holder's death would after the TTL. */
async function expire(keys: ShardKeys): Promise<void> {
  await redis.client.pexpire(keys.lease, 1);
  const deadline = Date.now() + 5_000;
  while ((await redis.client.exists(keys.lease)) === 1) {
    if (Date.now() > deadline) throw new Error(`${keys.lease} did not expire`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

interface Tick {
  sym: string;
  /** The instrument's own count. */
  seq: number;
  /** The shard's tick: output order. */
  n: number;
  px: number;
}
interface State {
  n: number;
  sum: number;
}

/** The tape: ticks of three instruments, each on its own sequence. */
function tape(length: number): Tick[] {
  const seqs = new Map<string, number>();
  return Array.from({ length }, (_, i) => {
    const sym = ['SPY', 'QQQ', 'IWM'][i % 3]!;
    const seq = (seqs.get(sym) ?? 0) + 1;
    seqs.set(sym, seq);
    return { sym, seq, n: i + 1, px: 100 + ((i * 7) % 11) };
  });
}

async function publish(keys: ShardKeys, ticks: readonly Tick[]): Promise<string[]> {
  const ids: string[] = [];
  for (const t of ticks) ids.push((await redis.client.xadd(keys.input, '*', ENTRY_FIELD, encodePlain(t)))!);
  return ids;
}

/** The worker's computation: a running count and sum per instrument, one output per tick. */
function step(states: Map<string, State>, tick: Tick): { sym: string; seq: number; n: number; sum: number } {
  const s = states.get(tick.sym) ?? { n: 0, sum: 0 };
  const next = { n: s.n + 1, sum: s.sum + tick.px };
  states.set(tick.sym, next);
  return { sym: tick.sym, seq: tick.seq, ...next };
}

/** The checkpoint field holding the id of the last entry the states include. */
const INPUT = '@input';

/** A shard worker in process: takes the shard over, processes entries into batches. */
class Worker {
  readonly states = new Map<string, State>();
  /** The last entry the states include. */
  input: string | null = null;
  pending: string[] = [];
  committed: number | null = null;
  private constructor(readonly shard: FencedShard) {}

  static async start(keys: ShardKeys, worker: string): Promise<Worker> {
    const lease = await acquireLease(redis.client, keys, worker, TTL_MS);
    assert.ok(lease, `${worker} acquires ${keys.lease}`);
    const w = new Worker(new FencedShard(redis.client, lease));
    const taken = await w.shard.takeOver();
    if (taken === FENCED) assert.fail(`${worker} was fenced while taking ${keys.lease} over`);
    for (const [field, blob] of taken.checkpoint) {
      if (field === INPUT) w.input = blob.toString();
      else w.states.set(field, unpack(blob) as State);
    }
    w.pending = taken.pending;
    w.committed = taken.committed;
    return w;
  }

  /** Applies the entries after `input` (older ones are only acked); the batch carries a checkpoint unless told not to. */
  process(entries: readonly StreamEntry[], checkpoint = true): Batch {
    const outputs = [];
    for (const e of entries) {
      if (this.input !== null && !idAfter(e.id, this.input)) continue;
      this.input = e.id;
      const tick = unpack(e.body!) as Tick;
      outputs.push({ seq: tick.n, body: encodePlain(step(this.states, tick)) });
    }
    const states = new Map(checkpoint ? [...this.states].map(([sym, state]) => [sym, encodePlain(state)]) : []);
    if (checkpoint && this.input !== null) states.set(INPUT, Buffer.from(this.input));
    return { outputs, states, acks: entries.map((e) => e.id) };
  }

  async readAndProcess(count: number, checkpoint = true): Promise<Batch> {
    const entries = await this.shard.read(count);
    if (entries === FENCED) assert.fail(`${this.shard.lease.worker} was fenced on read`);
    return this.process(entries, checkpoint);
  }

  async commit(batch: Batch): Promise<void> {
    assert.equal(await this.shard.commit(batch), 'committed');
  }
}

async function outputs(keys: ShardKeys): Promise<unknown[]> {
  const entries = await redis.client.xrangeBuffer(keys.output, '-', '+');
  return entries.map(([, fields]) => unpack(fields[1]!));
}

async function checkpoint(keys: ShardKeys): Promise<Record<string, unknown>> {
  const flat = await redis.client.hgetallBuffer(keys.checkpoint);
  return Object.fromEntries(Object.entries(flat).map(([field, blob]) => [field, field === INPUT ? blob.toString() : unpack(blob)]));
}

async function pendingCount(keys: ShardKeys): Promise<number> {
  const [count] = (await redis.client.xpending(keys.input, WORKER_GROUP)) as [number];
  return count;
}

test('a commit after the lease moved returns FENCED and writes nothing', async () => {
  const keys = shardKeys('fenced-commit', 1);
  await ensureGroup(redis.client, keys.input, WORKER_GROUP);
  await publish(keys, tape(6));
  const old = await Worker.start(keys, 'worker-a');
  const batch = await old.readAndProcess(6);
  assert.equal(batch.acks.length, 6);

  // Expired, nobody else yet: already refused.
  await expire(keys);
  assert.equal(await old.shard.commit(batch), FENCED);
  // Moved to another holder: refused, the read too.
  const next = await acquireLease(redis.client, keys, 'worker-b', TTL_MS);
  assert.ok(next);
  assert.equal(await old.shard.commit(batch), FENCED);
  assert.equal(await old.shard.read(10), FENCED);

  assert.equal(await redis.client.exists(keys.output), 0, 'no output');
  assert.equal(await redis.client.exists(keys.checkpoint), 0, 'no checkpoint');
  assert.equal(await pendingCount(keys), 6, 'no ack: the entries stay pending for the new holder');
});

test('the same worker id back under a new epoch still fences its older self', async () => {
  const keys = shardKeys('fenced-same-id', 2);
  await ensureGroup(redis.client, keys.input, WORKER_GROUP);
  await publish(keys, tape(4));
  const old = await Worker.start(keys, 'worker-a');
  const stale = await old.readAndProcess(4);
  await expire(keys);
  const reborn = await Worker.start(keys, 'worker-a');
  assert.ok(reborn.shard.lease.epoch > old.shard.lease.epoch);
  assert.equal(await old.shard.commit(stale), FENCED);
  assert.equal(await redis.client.exists(keys.output), 0);
  assert.equal(reborn.pending.length, 4, 'the reborn worker claims what its older self read');
});

test('a take-over loads the checkpoint, claims the pending entries, re-reads them, and every output appears once in order', async () => {
  const keys = shardKeys('fenced-handover', 3);
  await ensureGroup(redis.client, keys.input, WORKER_GROUP);
  const ticks = tape(30);
  const ids = await publish(keys, ticks);

  // Worker 1 commits two batches, then reads two more and dies before committing them.
  const w1 = await Worker.start(keys, 'worker-1');
  await w1.commit(await w1.readAndProcess(4));
  await w1.commit(await w1.readAndProcess(4));
  const w1Zombie = [await w1.readAndProcess(4), await w1.readAndProcess(4)];
  await expire(keys);

  // Worker 2: the state after 8 ticks, and ticks 9 to 16 pending, in order.
  const w2 = await Worker.start(keys, 'worker-2');
  const after8 = new Map<string, State>();
  for (const t of ticks.slice(0, 8)) step(after8, t);
  assert.deepEqual(Object.fromEntries(w2.states), Object.fromEntries(after8));
  assert.deepEqual(w2.pending, ids.slice(8, 16));
  assert.equal(w2.input, ids[7]);
  const reread = await w2.shard.range(w2.input, w2.pending.length);
  assert.deepEqual(
    reread.map((e) => e.id),
    w2.pending,
    'the entries after the checkpoint are the pending ones',
  );
  await w2.commit(w2.process(reread));
  await w2.commit(await w2.readAndProcess(5));
  const w2Zombie = await w2.readAndProcess(5);

  // Worker 1's late commits are refused and change nothing.
  const before = { outputs: await outputs(keys), checkpoint: await checkpoint(keys), pending: await pendingCount(keys) };
  for (const batch of w1Zombie) assert.equal(await w1.shard.commit(batch), FENCED);
  assert.deepEqual({ outputs: await outputs(keys), checkpoint: await checkpoint(keys), pending: await pendingCount(keys) }, before);
  await expire(keys);

  // Worker 1 again (a new process, the same id) takes over from worker 2 and finishes the tape.
  const w1b = await Worker.start(keys, 'worker-1');
  assert.deepEqual(w1b.pending, ids.slice(21, 26));
  await w1b.commit(w1b.process(await w1b.shard.range(w1b.input, w1b.pending.length)));
  for (;;) {
    const batch = await w1b.readAndProcess(3);
    if (batch.acks.length === 0) break;
    await w1b.commit(batch);
  }
  assert.equal(await w2.shard.commit(w2Zombie), FENCED);
  assert.equal(await w1.shard.commit(w1Zombie[0]!), FENCED);

  // Exactly the outputs and final state of an uninterrupted run.
  const uninterrupted = new Map<string, State>();
  const expected = ticks.map((t) => step(uninterrupted, t));
  assert.deepEqual(await outputs(keys), expected);
  assert.deepEqual(await checkpoint(keys), { ...Object.fromEntries(uninterrupted), [INPUT]: ids.at(-1) });
  assert.equal(await pendingCount(keys), 0);
});

test('from a checkpoint older than its commits, a take-over re-computes committed ticks and the commit writes each once', async () => {
  const keys = shardKeys('fenced-sparse', 8);
  await ensureGroup(redis.client, keys.input, WORKER_GROUP);
  const ticks = tape(16);
  const ids = await publish(keys, ticks);

  // Worker 1 checkpoints after tick 2 only, commits ticks 3 to 10 without one, reads 11 and 12 and dies.
  const w1 = await Worker.start(keys, 'worker-1');
  await w1.commit(await w1.readAndProcess(2));
  for (let i = 0; i < 4; i++) await w1.commit(await w1.readAndProcess(2, false));
  await w1.readAndProcess(2, false);
  assert.equal(await redis.client.get(keys.committed), '10');
  await expire(keys);

  // Worker 2 starts from tick 2's state and re-reads everything after it, delivered or not.
  const w2 = await Worker.start(keys, 'worker-2');
  assert.equal(w2.input, ids[1]);
  assert.deepEqual(w2.pending, ids.slice(10, 12));
  assert.equal(w2.committed, 10);
  for (;;) {
    const entries = await w2.shard.range(w2.input, 3);
    if (entries.length === 0) break;
    await w2.commit(w2.process(entries, false));
  }
  assert.equal(await redis.client.get(keys.committed), '16');
  // The group then hands out the entries never delivered: taken already, they are only acked.
  const late = await w2.readAndProcess(10);
  assert.deepEqual(late.acks, ids.slice(12));
  assert.deepEqual(late.outputs, []);
  await w2.commit(late);

  const uninterrupted = new Map<string, State>();
  assert.deepEqual(
    await outputs(keys),
    ticks.map((t) => step(uninterrupted, t)),
    'ticks 3 to 10 were computed twice and written once',
  );
  assert.equal(await pendingCount(keys), 0);
  // Outputs at or below the committed tick are dropped whoever sends them; the checkpoint in the same commit still lands, replacing the last whole.
  assert.equal(await w2.shard.commit({ outputs: [{ seq: 16, body: encodePlain('again') }], states: new Map([[INPUT, Buffer.from(ids.at(-1)!)]]), acks: [] }), 'committed');
  assert.equal((await outputs(keys)).length, 16);
  assert.deepEqual(await checkpoint(keys), { [INPUT]: ids.at(-1) });
});

test('a take-over reports pending entries trimmed from the stream as deleted', async () => {
  const keys = shardKeys('fenced-trimmed', 4);
  await ensureGroup(redis.client, keys.input, WORKER_GROUP);
  const ids = await publish(keys, tape(3));
  const w1 = await Worker.start(keys, 'worker-1');
  await w1.readAndProcess(3);
  await redis.client.xtrim(keys.input, 'MAXLEN', 1);
  await expire(keys);
  const taken = await new FencedShard(redis.client, (await acquireLease(redis.client, keys, 'worker-2', TTL_MS))!).takeOver();
  if (taken === FENCED) assert.fail('fenced while taking over');
  assert.deepEqual(taken.pending, ids.slice(2));
  assert.deepEqual(taken.deleted, ids.slice(0, 2));
});

test('outputs are trimmed to about the output maxlen', async () => {
  const keys = shardKeys('fenced-trim', 5);
  const lease = await acquireLease(redis.client, keys, 'worker-1', TTL_MS);
  const shard = new FencedShard(redis.client, lease!, { outputMaxLen: 10 });
  const outputs = Array.from({ length: 300 }, (_, i) => ({ seq: i, body: encodePlain(i) }));
  assert.equal(await shard.commit({ outputs, states: new Map(), acks: [] }), 'committed');
  // MAXLEN ~ trims whole stream nodes (100 entries by default), never below the bound.
  const length = await redis.client.xlen(keys.output);
  assert.ok(length >= 10 && length < 300, `${length} output entries left of 300`);
});

test('after a Redis restart without persistence the group is recreated on the next read', async () => {
  const keys = shardKeys('fenced-restart', 6);
  await redis.server.kill();
  // Not events.once: the reconnect attempts' 'error' events would reject it.
  const ready = new Promise((resolve) => redis.client.once('ready', resolve));
  await redis.server.restart();
  await ready;
  const lease = await acquireLease(redis.client, keys, 'worker-1', TTL_MS);
  const shard = new FencedShard(redis.client, lease!);
  assert.deepEqual(await shard.read(10), [], 'NOGROUP answered by creating the group');
  const ids = await publish(keys, tape(2));
  const entries = await shard.read(10);
  assert.notEqual(entries, FENCED);
  assert.deepEqual(
    (entries as StreamEntry[]).map((e) => e.id),
    ids,
  );
  // The take-over path recreates it too.
  await redis.client.del(keys.input);
  const taken = await shard.takeOver();
  assert.deepEqual(taken, { checkpoint: new Map(), committed: null, pending: [], deleted: [] });
});

test('bad arguments are refused with what was wrong', async () => {
  const keys = shardKeys('fenced-args', 7);
  const lease = await acquireLease(redis.client, keys, 'worker-1', TTL_MS);
  const shard = new FencedShard(redis.client, lease!);
  await assert.rejects(shard.read(0), /keel:fenced-args:md:\{s007\}: read count must be a positive integer, got 0/);
  await assert.rejects(shard.range('last', 1), /keel:fenced-args:md:\{s007\}: 'last' is not a stream id/);
  await assert.rejects(shard.commit({ outputs: [{ seq: 1, body: Buffer.from('x') }], states: new Map(), acks: ['1-0', 'last'] }), /commit to keel:fenced-args:out:\{s007\}: 'last' is not a stream id of keel:fenced-args:md:\{s007\}/);
  const x = Buffer.from('x');
  await assert.rejects(
    shard.commit({
      outputs: [
        { seq: 2, body: x },
        { seq: 2, body: x },
      ],
      states: new Map(),
      acks: [],
    }),
    /commit to keel:fenced-args:out:\{s007\}: output ticks must be rising whole numbers, got 2 after 2/,
  );
  assert.equal(await redis.client.exists(keys.output), 0);
  assert.throws(() => new FencedShard(redis.client, lease!, { outputMaxLen: 0 }), /keel:fenced-args:out:\{s007\}: output maxlen must be a positive integer, got 0/);
});
