/** Per-shard leases against a private redis-server: exclusive, expiring, fenced by an epoch. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { acquireLease, releaseLease, renewLease } from '../../src/scaleout/lease.js';
import { shardKeys } from '../../src/scaleout/shards.js';
import { redisForFile } from '../support/redis.js';

const redis = redisForFile();

/** Waits (polling, no timing asserted) until the key is gone. */
async function untilGone(key: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while ((await redis.client.exists(key)) === 1) {
    if (Date.now() > deadline) throw new Error(`${key} did not expire within 5 s`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

test('a lease is exclusive until it expires', async () => {
  const keys = shardKeys('lease-exclusive', 1);
  const a = await acquireLease(redis.client, keys, 'worker-a', 60_000);
  assert.ok(a);
  assert.equal(await redis.client.get(keys.lease), a.token);
  assert.equal(a.token, `worker-a#${a.epoch}`);
  const ttl = await redis.client.pttl(keys.lease);
  assert.ok(ttl > 0 && ttl <= 60_000, `ttl ${ttl} ms`);
  assert.equal(await acquireLease(redis.client, keys, 'worker-b', 60_000), null, 'held by worker-a');
  assert.equal(await acquireLease(redis.client, keys, 'worker-a', 60_000), null, 'not even its holder acquires it twice');
  assert.equal(await redis.client.get(keys.lease), a.token);
  assert.equal(await releaseLease(redis.client, a), true);

  // Its own short TTL runs out (waited for, not timed).
  const short = await acquireLease(redis.client, keys, 'worker-a', 20);
  assert.ok(short);
  await untilGone(keys.lease);
  const b = await acquireLease(redis.client, keys, 'worker-b', 60_000);
  assert.ok(b);
  assert.ok(b.epoch > short.epoch);
  assert.equal(await renewLease(redis.client, short, 60_000), false, 'an expired lease is not renewed');
});

test('renew and release refuse a foreign token', async () => {
  const keys = shardKeys('lease-foreign', 2);
  const held = await acquireLease(redis.client, keys, 'worker-a', 60_000);
  assert.ok(held);
  const foreign = { ...held, worker: 'worker-b', token: `worker-b#${held.epoch}` };
  await redis.client.pexpire(keys.lease, 1_000);
  assert.equal(await renewLease(redis.client, foreign, 60_000), false);
  assert.ok((await redis.client.pttl(keys.lease)) <= 1_000, 'a refused renewal leaves the ttl alone');
  assert.equal(await releaseLease(redis.client, foreign), false);
  assert.equal(await redis.client.get(keys.lease), held.token);

  assert.equal(await renewLease(redis.client, held, 60_000), true);
  assert.ok((await redis.client.pttl(keys.lease)) > 1_000, 'renewed to the new ttl');
  assert.equal(await releaseLease(redis.client, held), true);
  assert.equal(await redis.client.exists(keys.lease), 0);
  assert.equal(await releaseLease(redis.client, held), false, 'released once');
});

test('every acquisition raises the epoch, so the same worker id gets a new token', async () => {
  const keys = shardKeys('lease-epoch', 3);
  const first = await acquireLease(redis.client, keys, 'worker-a', 60_000);
  assert.ok(first);
  await redis.client.pexpire(keys.lease, 1);
  await untilGone(keys.lease);
  const again = await acquireLease(redis.client, keys, 'worker-a', 60_000);
  assert.ok(again);
  assert.equal(again.epoch, first.epoch + 1);
  assert.notEqual(again.token, first.token);
  assert.equal(await renewLease(redis.client, first, 60_000), false, 'the older holder, same worker id, is refused');
  assert.equal(await releaseLease(redis.client, first), false);
  assert.equal(await redis.client.get(keys.lease), again.token);
});

test('after Redis loses its data the epoch starts above every epoch issued before', async () => {
  const keys = shardKeys('lease-restart', 4);
  await redis.client.set(keys.epoch, 41);
  const before = await acquireLease(redis.client, keys, 'worker-a', 60_000);
  assert.equal(before?.epoch, 42);
  await redis.client.flushall();
  const after = await acquireLease(redis.client, keys, 'worker-a', 60_000);
  assert.ok(after && after.epoch > before.epoch, `epoch ${after?.epoch} after the loss, ${before.epoch} before`);
  assert.notEqual(after.token, before.token);
});

test('bad lease arguments are refused with what was wrong', async () => {
  const keys = shardKeys('lease-args', 5);
  await assert.rejects(acquireLease(redis.client, keys, '', 1_000), /acquireLease keel:lease-args:lease:\{s005\}: the worker id is empty/);
  await assert.rejects(acquireLease(redis.client, keys, 'worker-a', 0), /lease ttl must be a positive integer of ms, got 0/);
});
