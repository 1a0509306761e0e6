/**
 * The same scripts on a 3-master Redis Cluster on local ports: every key a
 * script touches carries the shard's hash tag, so no script fails with
 * CROSSSLOT, and EVALSHA finds its way to whichever node owns the shard.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Cluster } from 'ioredis';
import { ENTRY_FIELD, FENCED, FencedShard, WORKER_GROUP, ensureGroup } from '../../src/scaleout/fenced.js';
import { acquireLease } from '../../src/scaleout/lease.js';
import { shardKeys } from '../../src/scaleout/shards.js';
import { startRedisCluster, type TestRedisCluster } from '../support/redis-cluster.js';

let redis: TestRedisCluster;
let cluster: Cluster;

before(async () => {
  redis = await startRedisCluster();
  cluster = redis.client;
});
after(() => redis?.dispose());

test('leases, fenced reads, commits and take-overs work on every node of a Redis Cluster', async () => {
  const masters = new Set<string>();
  for (let shard = 0; shard < 8; shard++) {
    const keys = shardKeys('cluster', shard);
    const slot = Number(await cluster.cluster('KEYSLOT', keys.input));
    for (const key of [keys.output, keys.lease, keys.epoch, keys.checkpoint, keys.committed]) assert.equal(Number(await cluster.cluster('KEYSLOT', key)), slot, key);
    masters.add(cluster.slots[slot]![0]!);

    await ensureGroup(cluster, keys.input, WORKER_GROUP);
    const first = await cluster.xadd(keys.input, '*', ENTRY_FIELD, 'a');
    const second = await cluster.xadd(keys.input, '*', ENTRY_FIELD, 'b');
    const old = new FencedShard(cluster, (await acquireLease(cluster, keys, 'worker-1', 60_000))!);
    const read = await old.read(10);
    assert.notEqual(read, FENCED);
    assert.equal(await old.commit({ outputs: [{ seq: 1, body: Buffer.from('out-a') }], states: new Map([['SPY', Buffer.from('state-a')]]), acks: [first!] }), 'committed');

    await cluster.del(keys.lease);
    const next = new FencedShard(cluster, (await acquireLease(cluster, keys, 'worker-2', 60_000))!);
    assert.equal(await old.commit({ outputs: [{ seq: 2, body: Buffer.from('out-b') }], states: new Map(), acks: [second!] }), FENCED);
    const taken = await next.takeOver();
    if (taken === FENCED) assert.fail(`worker-2 was fenced taking over shard ${shard}`);
    assert.deepEqual(taken.pending, [second]);
    assert.deepEqual(taken.checkpoint, new Map([['SPY', Buffer.from('state-a')]]));
    assert.equal(await cluster.get(keys.committed), '1');
  }
  assert.equal(masters.size, 3, 'the shards tested live on all three masters');
});
