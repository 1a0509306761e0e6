/** Per-shard leases against a private redis-server: exclusive, expiring, fenced by an epoch. */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { acquireLease, releaseLease, renewLease } from '../../src/scaleout/lease.js';
import { shardKeys } from '../../src/scaleout/shards.js';
import { startRedis, type TestRedis } from '../support/redis.js';

let server: TestRedis;
let client: Redis;
before(async () => {
  server = await startRedis();
  client = new Redis(server.url);
});
after(async () => {
  client.disconnect();
  await server.dispose();
});

/** Waits (polling, no timing asserted) until the key is gone. */
async function untilGone(key: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while ((await client.exists(key)) === 1) {
    if (Date.now() > deadline) throw new Error(`${key} did not expire within 5 s`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

test('a lease is exclusive until it expires', async () => {
  const keys = shardKeys('lease-exclusive', 1);
  const a = await acquireLease(client, keys, 'worker-a', 60_000);
  assert.ok(a);
  assert.equal(await client.get(keys.lease), a.token);
  assert.equal(a.token, `worker-a#${a.epoch}`);
  const ttl = await client.pttl(keys.lease);
  assert.ok(ttl > 0 && ttl <= 60_000, `ttl ${ttl} ms`);
  assert.equal(await acquireLease(client, keys, 'worker-b', 60_000), null, 'held by worker-a');
  assert.equal(await acquireLease(client, keys, 'worker-a', 60_000), null, 'not even its holder acquires it twice');
  assert.equal(await client.get(keys.lease), a.token);
  assert.equal(await releaseLease(client, a), true);

  // Its own short TTL runs out (waited for, not timed).
  const short = await acquireLease(client, keys, 'worker-a', 20);
  assert.ok(short);
  await untilGone(keys.lease);
  const b = await acquireLease(client, keys, 'worker-b', 60_000);
  assert.ok(b);
  assert.ok(b.epoch > short.epoch);
  assert.equal(await renewLease(client, short, 60_000), false, 'an expired lease is not renewed');
});

test('renew and release refuse a foreign token', async () => {
  const keys = shardKeys('lease-foreign', 2);
  const held = await acquireLease(client, keys, 'worker-a', 60_000);
  assert.ok(held);
  const foreign = { ...held, worker: 'worker-b', token: `worker-b#${held.epoch}` };
  await client.pexpire(keys.lease, 1_000);
  assert.equal(await renewLease(client, foreign, 60_000), false);
  assert.ok((await client.pttl(keys.lease)) <= 1_000, 'a refused renewal leaves the ttl alone');
  assert.equal(await releaseLease(client, foreign), false);
  assert.equal(await client.get(keys.lease), held.token);

  assert.equal(await renewLease(client, held, 60_000), true);
  assert.ok((await client.pttl(keys.lease)) > 1_000, 'renewed to the new ttl');
  assert.equal(await releaseLease(client, held), true);
  assert.equal(await client.exists(keys.lease), 0);
  assert.equal(await releaseLease(client, held), false, 'released once');
});

test('every acquisition raises the epoch, so the same worker id gets a new token', async () => {
  const keys = shardKeys('lease-epoch', 3);
  const first = await acquireLease(client, keys, 'worker-a', 60_000);
  assert.ok(first);
  await client.pexpire(keys.lease, 1);
  await untilGone(keys.lease);
  const again = await acquireLease(client, keys, 'worker-a', 60_000);
  assert.ok(again);
  assert.equal(again.epoch, first.epoch + 1);
  assert.notEqual(again.token, first.token);
  assert.equal(await renewLease(client, first, 60_000), false, 'the older holder, same worker id, is refused');
  assert.equal(await releaseLease(client, first), false);
  assert.equal(await client.get(keys.lease), again.token);
});

test('after Redis loses its data the epoch starts above every epoch issued before', async () => {
  const keys = shardKeys('lease-restart', 4);
  await client.set(keys.epoch, 41);
  const before = await acquireLease(client, keys, 'worker-a', 60_000);
  assert.equal(before?.epoch, 42);
  await client.flushall();
  const after = await acquireLease(client, keys, 'worker-a', 60_000);
  assert.ok(after && after.epoch > before.epoch, `epoch ${after?.epoch} after the loss, ${before.epoch} before`);
  assert.notEqual(after.token, before.token);
});

test('bad lease arguments are refused with what was wrong', async () => {
  const keys = shardKeys('lease-args', 5);
  await assert.rejects(acquireLease(client, keys, '', 1_000), /acquireLease keel:lease-args:lease:\{s005\}: the worker id is empty/);
  await assert.rejects(acquireLease(client, keys, 'worker-a', 0), /lease ttl must be a positive integer of ms, got 0/);
});
