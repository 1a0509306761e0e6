/**
 * `clusterStatus` against a private Redis with shard keys set up by hand
 * (streams, the workers group, leases, heartbeats), its table, and
 * `keel cluster status` as a real process.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ENTRY_FIELD, WORKER_GROUP, ensureGroup } from '../../src/scaleout/fenced.js';
import { acquireLease } from '../../src/scaleout/lease.js';
import { heartbeat } from '../../src/scaleout/membership.js';
import { shardKeys, workersKey } from '../../src/scaleout/shards.js';
import { clusterStatus, formatClusterStatus, humanMs, shardRanges, type ClusterStatus } from '../../src/scaleout/status.js';
import { runKeel } from '../support/process.js';
import { freePort, redisForFile } from '../support/redis.js';

const redis = redisForFile();
const INSTANCE = 'status';
const TTL = 60_000;

/**
 * Shard 3: 3 inputs, 1 read by w1 (pending 1, lag 2), leased by w1.
 * Shard 4: 1 input, group, nothing read (lag 1), leased by w1.
 * Shard 10: 2 outputs, no input, no lease (unowned).
 * Shard 11: an empty input stream with its group, leased by w2.
 * Shard 20: a lease and no streams (not listed). Workers w1, w2, w3 heartbeat.
 */
async function setUp(): Promise<void> {
  const { client } = redis;
  const s3 = shardKeys(INSTANCE, 3);
  await ensureGroup(client, s3.input, WORKER_GROUP);
  for (const body of ['a', 'b', 'c']) await client.xadd(s3.input, '*', ENTRY_FIELD, body);
  assert.ok(await acquireLease(client, s3, 'w1', TTL));
  await client.xreadgroup('GROUP', WORKER_GROUP, 'w1', 'COUNT', 1, 'STREAMS', s3.input, '>');

  const s4 = shardKeys(INSTANCE, 4);
  await ensureGroup(client, s4.input, WORKER_GROUP);
  await client.xadd(s4.input, '*', ENTRY_FIELD, 'd');
  assert.ok(await acquireLease(client, s4, 'w1', TTL));

  const s10 = shardKeys(INSTANCE, 10);
  await client.xadd(s10.output, '*', ENTRY_FIELD, 'out-1');
  await client.xadd(s10.output, '*', ENTRY_FIELD, 'out-2');

  const s11 = shardKeys(INSTANCE, 11);
  await ensureGroup(client, s11.input, WORKER_GROUP);
  assert.ok(await acquireLease(client, s11, 'w2', TTL));

  assert.ok(await acquireLease(client, shardKeys(INSTANCE, 20), 'w3', TTL));
  for (const worker of ['w1', 'w2', 'w3']) await heartbeat(client, workersKey(INSTANCE), worker, TTL);
}

let ready: Promise<void> | undefined;
const prepared = () => (ready ??= setUp());

test('clusterStatus: owners, epochs, lag, pending, lengths, ages, unowned shards and each worker shards', async () => {
  await prepared();
  const before = Date.now();
  const status = await clusterStatus(redis.client, INSTANCE);
  assert.equal(status.instance, INSTANCE);
  assert.equal(status.shardCount, 128);
  assert.ok(Math.abs(status.at - before) < 5_000, `at ${status.at} is Redis time, near ${before}`);

  assert.deepEqual(
    status.shards.map((s) => s.shard),
    [3, 4, 10, 11],
    'only shards with an input or output stream, ascending',
  );
  const [s3, s4, s10, s11] = status.shards;
  assert.equal(s3!.owner, 'w1');
  assert.ok(Number.isInteger(s3!.epoch) && s3!.epoch! > 0);
  assert.equal(s3!.epoch, Number((await redis.client.get(shardKeys(INSTANCE, 3).epoch))!));
  assert.ok(s3!.leaseTtlMs! > 0 && s3!.leaseTtlMs! <= TTL, `lease ttl ${s3!.leaseTtlMs}`);
  assert.equal(s3!.inputLength, 3);
  assert.equal(s3!.lag, 2);
  assert.equal(s3!.pending, 1);
  assert.ok(s3!.lastInputAgeMs !== null && s3!.lastInputAgeMs >= 0 && s3!.lastInputAgeMs < 10_000);
  assert.equal(s3!.outputLength, 0);
  assert.equal(s3!.lastOutputAgeMs, null);

  assert.equal(s4!.owner, 'w1');
  assert.equal(s4!.lag, 1);
  assert.equal(s4!.pending, 0);

  assert.equal(s10!.owner, null);
  assert.equal(s10!.epoch, null);
  assert.equal(s10!.leaseTtlMs, null);
  assert.equal(s10!.inputLength, 0);
  assert.equal(s10!.lag, null, 'no input stream, no group');
  assert.equal(s10!.lastInputAgeMs, null);
  assert.equal(s10!.outputLength, 2);
  assert.ok(s10!.lastOutputAgeMs !== null && s10!.lastOutputAgeMs >= 0 && s10!.lastOutputAgeMs < 10_000);

  assert.equal(s11!.owner, 'w2');
  assert.equal(s11!.inputLength, 0);
  assert.equal(s11!.lag, 0);
  assert.equal(s11!.lastInputAgeMs, null, 'an empty stream has no newest entry');

  assert.deepEqual(status.unowned, [10]);
  assert.deepEqual(
    status.workers.map((w) => [w.worker, w.shards]),
    [
      ['w1', [3, 4]],
      ['w2', [11]],
      ['w3', [20]],
    ],
    "a worker's shards are the ones whose lease it holds (shard 20 has no streams, but w3 holds it)",
  );
  for (const w of status.workers) assert.ok(w.heartbeatAgeMs >= 0 && w.heartbeatAgeMs < 10_000, `${w.worker} heartbeat age ${w.heartbeatAgeMs}`);
});

test('clusterStatus: an input stream without the workers group, and an instance with nothing', async () => {
  await prepared();
  const { client } = redis;
  // An input stream the workers have not joined yet (no group): lag unknown, nothing pending.
  const keys = shardKeys('status-nogroup', 1, 8);
  await client.xadd(keys.input, '*', ENTRY_FIELD, 'x');
  let status = await clusterStatus(client, 'status-nogroup', 8);
  assert.deepEqual(
    status.shards.map((s) => [s.shard, s.lag, s.pending, s.inputLength]),
    [[1, null, 0, 1]],
    'no workers group: lag null',
  );
  assert.deepEqual(status.unowned, [1]);
  assert.deepEqual(status.workers, []);

  status = await clusterStatus(client, 'status-empty', 8);
  assert.deepEqual([status.shards, status.workers, status.unowned], [[], [], []]);
  assert.match(formatClusterStatus(status), /0 workers live, 0 shards active of 8, 0 unowned/);
});

test('formatClusterStatus: the header, one line per worker with its shards as ranges, one line per shard', async () => {
  await prepared();
  const text = formatClusterStatus(await clusterStatus(redis.client, INSTANCE));
  const lines = text.trimEnd().split('\n');
  assert.match(lines[0]!, /^instance status at \d{4}-\d\d-\d\dT.*Z \(Redis time\): 3 workers live, 4 shards active of 128, 1 unowned \(10\)$/);
  const row = (first: string) => {
    const found = lines.find((l) => l.trim().split(/\s{2,}/)[0] === first);
    assert.ok(found, `no line for ${first} in:\n${text}`);
    return found.trim().split(/\s{2,}/);
  };
  const w1 = row('w1');
  assert.equal(w1[2], '2');
  assert.equal(w1[3], '3-4');
  assert.match(w1[1]!, /^\d+ ms$|^\d+\.\d s$/);
  assert.deepEqual(row('w3').slice(2), ['1', '20']);
  const s3 = row('3');
  assert.equal(s3[1], 'w1');
  assert.deepEqual(s3.slice(4, 7), ['3', '2', '1'], 'input, lag, pending');
  assert.match(s3[3]!, /^\d+(\.\d)? s$/, 'lease ttl');
  const s10 = row('10');
  assert.equal(s10[1], '(unowned)');
  assert.deepEqual(s10.slice(2, 7), ['-', '-', '0', '-', '0']);
  // Aligned: every shard line is as long as its header line, right-aligned to the last column.
  const header = lines.findIndex((l) => l.startsWith('SHARD'));
  for (const line of lines.slice(header + 1)) assert.equal(line.length, lines[header]!.length, `'${line}'`);
});

test('humanMs and shardRanges', () => {
  assert.equal(humanMs(null), '-');
  assert.equal(humanMs(120), '120 ms');
  assert.equal(humanMs(3_240), '3.2 s');
  assert.equal(humanMs(90_000), '1.5 min');
  assert.equal(humanMs(2 * 3_600_000), '2.0 h');
  assert.equal(shardRanges([]), '-');
  assert.equal(shardRanges([9, 3, 4, 5]), '3-5,9');
  assert.equal(shardRanges([0, 2, 3, 7, 8, 9, 127]), '0,2-3,7-9,127');
});

/** stderr without the note that keel runs from its sources. */
const problems = (stderr: string[]) => stderr.filter((l) => l !== '' && !l.includes('through tsx'));

test('keel cluster status --json prints the status as one JSON object', async () => {
  await prepared();
  const run = runKeel(['cluster', 'status', '--redis', redis.server.url, '--instance', INSTANCE, '--json']);
  assert.equal(await run.exited, 0, run.stderr.join('\n'));
  const status = JSON.parse(run.stdout.join('\n')) as ClusterStatus;
  assert.deepEqual(
    status.shards.map((s) => [s.shard, s.owner]),
    [
      [3, 'w1'],
      [4, 'w1'],
      [10, null],
      [11, 'w2'],
    ],
  );
  assert.deepEqual(status.unowned, [10]);
  assert.deepEqual(problems(run.stderr), []);
});

test('keel cluster status prints the tables, and --watch reprints until SIGINT', async () => {
  await prepared();
  const run = runKeel(['cluster', 'status', '--redis', redis.server.url, '--instance', INSTANCE, '--watch', '150']);
  await run.waitFor('3 workers live');
  const seen = () => run.stdout.filter((l) => l.startsWith('instance status at')).length;
  while (seen() < 2) await new Promise((resolve) => setTimeout(resolve, 50));
  run.child.kill('SIGINT');
  assert.equal(await run.exited, 0, run.stderr.join('\n'));
  assert.ok(run.stdout.some((l) => /^w1\s+\S+ m?s\s+2\s+3-4$/.test(l)), run.stdout.join('\n'));
});

test('keel cluster status --help, and the command in keel --help', async () => {
  const help = runKeel(['cluster', 'status', '--help']);
  assert.equal(await help.exited, 0);
  assert.equal(help.stdout[0], 'Usage: keel cluster status [--redis URL] [--cluster] [--instance NAME] [--shards N] [--json] [--watch MS]');
  for (const flag of ['--redis URL', '--cluster', '--instance NAME', '--shards N', '--json', '--watch MS']) assert.ok(help.stdout.some((l) => l.trimStart().startsWith(flag)), flag);
  const general = runKeel(['--help']);
  assert.equal(await general.exited, 0);
  assert.ok(general.stdout.some((l) => l.includes('keel cluster status')));
});

test('keel cluster status: Redis out of reach is one line naming the URL and exit 1; a bad flag exit 2', async () => {
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  const run = runKeel(['cluster', 'status', '--redis', url]);
  assert.equal(await run.exited, 1);
  assert.deepEqual(problems(run.stderr), [`keel: cannot reach Redis at ${url}: connect ECONNREFUSED 127.0.0.1:${port}`]);
  assert.deepEqual(
    run.stdout.filter((l) => l !== ''),
    [],
  );

  const bad = runKeel(['cluster', 'status', '--shards', 'many']);
  assert.equal(await bad.exited, 2);
  assert.deepEqual(problems(bad.stderr), ["keel: --shards must be a whole number from 1 to 100000, got 'many'"]);
});
