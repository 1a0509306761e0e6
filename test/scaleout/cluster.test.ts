/**
 * The same scripts on a 3-master Redis Cluster on local ports: every key a
 * script touches carries the shard's hash tag, so no script fails with
 * CROSSSLOT, and EVALSHA finds its way to whichever node owns the shard.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Cluster } from 'ioredis';
import { ENTRY_FIELD, FENCED, FencedShard, WORKER_GROUP, ensureGroup } from '../../src/scaleout/fenced.js';
import { acquireLease } from '../../src/scaleout/lease.js';
import { shardKeys } from '../../src/scaleout/shards.js';
import { freePort } from '../support/redis.js';

const dir = mkdtempSync(join(tmpdir(), 'keel-cluster-'));
const nodes: ChildProcess[] = [];
let cluster: Cluster;

before(async () => {
  const ports = [await freePort(), await freePort(), await freePort()];
  for (const port of ports) {
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--dir', dir];
    nodes.push(spawn('redis-server', args, { stdio: 'ignore' }));
  }
  const deadline = Date.now() + 10_000;
  for (const port of ports) {
    while (spawnSync('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8' }).stdout.trim() !== 'PONG') {
      if (Date.now() > deadline) throw new Error(`cluster node on port ${port} did not answer PING within 10 s`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
  const created = spawnSync('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], { encoding: 'utf8' });
  if (created.status !== 0 || !created.stdout.includes('All 16384 slots covered')) throw new Error(`redis-cli --cluster create on ports ${ports.join(', ')} failed: ${created.stdout}${created.stderr}`);
  cluster = new Cluster(ports.map((port) => ({ host: '127.0.0.1', port })));
  await new Promise<void>((resolve, reject) => {
    cluster.once('ready', resolve);
    cluster.once('error', reject);
  });
});
after(() => {
  cluster?.disconnect();
  for (const node of nodes) node.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

test('leases, fenced reads, commits and take-overs work on every node of a Redis Cluster', async () => {
  const masters = new Set<string>();
  for (let shard = 0; shard < 8; shard++) {
    const keys = shardKeys('cluster', shard);
    const slot = Number(await cluster.cluster('KEYSLOT', keys.input));
    for (const key of [keys.output, keys.lease, keys.epoch, keys.checkpoint]) assert.equal(Number(await cluster.cluster('KEYSLOT', key)), slot, key);
    masters.add(cluster.slots[slot]![0]!);

    await ensureGroup(cluster, keys.input, WORKER_GROUP);
    const first = await cluster.xadd(keys.input, '*', ENTRY_FIELD, 'a');
    const second = await cluster.xadd(keys.input, '*', ENTRY_FIELD, 'b');
    const old = new FencedShard(cluster, (await acquireLease(cluster, keys, 'worker-1', 60_000))!);
    const read = await old.read(10);
    assert.notEqual(read, FENCED);
    assert.equal(await old.commit({ outputs: [Buffer.from('out-a')], states: new Map([['SPY', Buffer.from('state-a')]]), acks: [first!] }), 'committed');

    await cluster.del(keys.lease);
    const next = new FencedShard(cluster, (await acquireLease(cluster, keys, 'worker-2', 60_000))!);
    assert.equal(await old.commit({ outputs: [Buffer.from('out-b')], states: new Map(), acks: [second!] }), FENCED);
    const taken = await next.takeOver();
    if (taken === FENCED) assert.fail(`worker-2 was fenced taking over shard ${shard}`);
    assert.deepEqual(
      taken.pending.map((e) => e.id),
      [second],
    );
    assert.deepEqual(taken.checkpoint, new Map([['SPY', Buffer.from('state-a')]]));
  }
  assert.equal(masters.size, 3, 'the shards tested live on all three masters');
});
