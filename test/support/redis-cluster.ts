/**
 * A 3-master Redis Cluster on free local ports, for the tests that must
 * show keel works on a Cluster as on one Redis (hash tags, scripts on
 * every node). Data in a temporary directory, removed by `dispose`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster } from 'ioredis';
import { freePort } from './redis.js';

export interface TestRedisCluster {
  readonly ports: readonly number[];
  /** A node's URL: what keel's `redis: { url, cluster: true }` takes as its seed. */
  readonly url: string;
  readonly client: Cluster;
  dispose(): Promise<void>;
}

export async function startRedisCluster(): Promise<TestRedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'keel-redis-cluster-'));
  const nodes: ChildProcess[] = [];
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
  const client = new Cluster(ports.map((port) => ({ host: '127.0.0.1', port })));
  await new Promise<void>((resolve, reject) => {
    client.once('ready', resolve);
    client.once('error', reject);
  });
  return {
    ports,
    url: `redis://127.0.0.1:${ports[0]}`,
    client,
    async dispose() {
      client.disconnect();
      for (const node of nodes) node.kill('SIGKILL');
      await Promise.all(nodes.map((n) => (n.exitCode === null ? new Promise((r) => n.once('exit', r)) : undefined)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
