/** Live workers on a heartbeat set, judged by the Redis server's clock, against a private redis-server. */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { heartbeat, leave, liveWorkers } from '../../src/scaleout/membership.js';
import { workersKey } from '../../src/scaleout/shards.js';
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

const TTL_MS = 60_000;

test('a heartbeat lists the live workers; a stale entry is dropped by the next heartbeat', async () => {
  const key = workersKey('members-stale');
  assert.equal(key, 'keel:members-stale:workers');
  assert.deepEqual(await heartbeat(client, key, 'worker-b', TTL_MS), ['worker-b']);
  assert.deepEqual(await heartbeat(client, key, 'worker-a', TTL_MS), ['worker-a', 'worker-b'], 'sorted');
  // worker-b's last heartbeat a TTL ago, by the server's clock: dead.
  const [seconds] = await client.time();
  await client.zadd(key, Number(seconds) * 1000 - TTL_MS - 1_000, 'worker-b');
  assert.deepEqual(await liveWorkers(client, key, TTL_MS), ['worker-a'], 'a read skips it');
  assert.notEqual(await client.zscore(key, 'worker-b'), null, 'a read leaves it');
  assert.deepEqual(await heartbeat(client, key, 'worker-a', TTL_MS), ['worker-a']);
  assert.equal(await client.zscore(key, 'worker-b'), null, 'a heartbeat removes it');
  const ttl = await client.pttl(key);
  assert.ok(ttl > 0 && ttl <= TTL_MS, `the set expires with its last worker: pttl ${ttl}`);
});

test('a worker that leaves is gone at once; a bad argument is refused', async () => {
  const key = workersKey('members-leave');
  await heartbeat(client, key, 'worker-a', TTL_MS);
  await heartbeat(client, key, 'worker-b', TTL_MS);
  await leave(client, key, 'worker-a');
  assert.deepEqual(await liveWorkers(client, key, TTL_MS), ['worker-b']);
  await assert.rejects(heartbeat(client, key, '', TTL_MS), /heartbeat keel:members-leave:workers: the worker id is empty/);
  await assert.rejects(liveWorkers(client, key, 0), /membership ttl must be a positive integer of ms, got 0/);
  assert.throws(() => workersKey('a{b}'), /workers key: instance must be non-empty and without braces/);
});
