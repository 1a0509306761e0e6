/** Live workers on a heartbeat set, judged by the Redis server's clock, against a private redis-server. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { heartbeat, leave, liveWorkers } from '../../src/scaleout/membership.js';
import { workersKey } from '../../src/scaleout/shards.js';
import { redisForFile } from '../support/redis.js';

const redis = redisForFile();

const TTL_MS = 60_000;

test('a heartbeat lists the live workers; a stale entry is dropped by the next heartbeat', async () => {
  const key = workersKey('members-stale');
  assert.equal(key, 'keel:members-stale:workers');
  assert.deepEqual(await heartbeat(redis.client, key, 'worker-b', TTL_MS), ['worker-b']);
  assert.deepEqual(await heartbeat(redis.client, key, 'worker-a', TTL_MS), ['worker-a', 'worker-b'], 'sorted');
  // worker-b's last heartbeat a TTL ago, by the server's clock: dead.
  const [seconds] = await redis.client.time();
  await redis.client.zadd(key, Number(seconds) * 1000 - TTL_MS - 1_000, 'worker-b');
  assert.deepEqual(await liveWorkers(redis.client, key, TTL_MS), ['worker-a'], 'a read skips it');
  assert.notEqual(await redis.client.zscore(key, 'worker-b'), null, 'a read leaves it');
  assert.deepEqual(await heartbeat(redis.client, key, 'worker-a', TTL_MS), ['worker-a']);
  assert.equal(await redis.client.zscore(key, 'worker-b'), null, 'a heartbeat removes it');
  const ttl = await redis.client.pttl(key);
  assert.ok(ttl > 0 && ttl <= TTL_MS, `the set expires with its last worker: pttl ${ttl}`);
});

test('a worker that leaves is gone at once; a bad argument is refused', async () => {
  const key = workersKey('members-leave');
  await heartbeat(redis.client, key, 'worker-a', TTL_MS);
  await heartbeat(redis.client, key, 'worker-b', TTL_MS);
  await leave(redis.client, key, 'worker-a');
  assert.deepEqual(await liveWorkers(redis.client, key, TTL_MS), ['worker-b']);
  await assert.rejects(heartbeat(redis.client, key, '', TTL_MS), /heartbeat keel:members-leave:workers: the worker id is empty/);
  await assert.rejects(liveWorkers(redis.client, key, 0), /membership ttl must be a positive integer of ms, got 0/);
  assert.throws(() => workersKey('a{b}'), /workers key: instance must be non-empty and without braces/);
});
