/**
 * The scale-out on /metrics and in the panels: a shard_reader's retained
 * `cluster` view (its shards' ages and freshness, and the cluster status it
 * read from Redis: owners, epochs, lag, pending, heartbeats) read at scrape
 * time; nothing while no view exists, and only the view's own series before
 * a status was read.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Bus } from '../../src/bus.js';
import { ServiceTable } from '../../src/services.js';
import { createMetrics } from '../../src/inspector/metrics.js';
import { clusterPanel } from '../../src/inspector/panels.js';
import type { ClusterView } from '../../src/scaleout/shard-reader.js';
import type { ClusterStatus } from '../../src/scaleout/status.js';
import { CLUSTER_TOPIC } from '../../src/topics.js';

/** The value of one sample line (`name{labels}` exactly as exposed), or undefined when it is not there. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

const STATUS: ClusterStatus = {
  instance: 'test',
  shardCount: 8,
  at: 1_700_000_000_000,
  workers: [
    { worker: 'w-a', heartbeatAgeMs: 250, shards: [1, 3] },
    { worker: 'w-b', heartbeatAgeMs: 4_500, shards: [5] },
  ],
  shards: [
    { shard: 1, owner: 'w-a', epoch: 3, leaseTtlMs: 1_200, inputLength: 100, lag: 4, pending: 2, lastInputAgeMs: 150, lastOutputAgeMs: 200, outputLength: 90 },
    { shard: 3, owner: 'w-a', epoch: 1, leaseTtlMs: 900, inputLength: 50, lag: null, pending: 0, lastInputAgeMs: null, lastOutputAgeMs: null, outputLength: 0 },
    { shard: 5, owner: 'w-b', epoch: 7, leaseTtlMs: 1_500, inputLength: 10, lag: 0, pending: 1, lastInputAgeMs: 2_000, lastOutputAgeMs: 2_100, outputLength: 10 },
    { shard: 6, owner: null, epoch: null, leaseTtlMs: null, inputLength: 5, lag: 5, pending: 0, lastInputAgeMs: 30_000, lastOutputAgeMs: null, outputLength: 0 },
  ],
  unowned: [6],
};

const VIEW: ClusterView = {
  shards: [
    { shard: 1, symbols: ['SPY', 'QQQ'], seq: 42, at: 1_000, ageMs: 120, fresh: true, outputs: 42 },
    { shard: 3, symbols: ['IWM'], seq: NaN, at: NaN, ageMs: 3_500, fresh: false, outputs: 0 },
  ],
  problems: new Map([['shard s3 stale', 'shard 3 (IWM): no output for 3.5 s']]),
};

const CLUSTER_SERIES = /^keel_cluster_/m;

test('no cluster view: no keel_cluster_ series, no cluster panel', async () => {
  const bus = new Bus();
  const metrics = createMetrics({ bus, services: new ServiceTable(), actors: () => [] });
  try {
    assert.doesNotMatch(await metrics.render(), CLUSTER_SERIES);
    assert.equal(clusterPanel(bus), null);
  } finally {
    metrics.stop();
  }
});

test("a view without a status: each read shard's output age and freshness only", async () => {
  const bus = new Bus();
  const metrics = createMetrics({ bus, services: new ServiceTable(), actors: () => [] });
  try {
    bus.retain(CLUSTER_TOPIC, VIEW);
    const text = await metrics.render();
    assert.equal(sample(text, 'keel_cluster_shard_output_age_seconds{shard="1"}'), 0.12);
    assert.equal(sample(text, 'keel_cluster_shard_output_age_seconds{shard="3"}'), 3.5);
    assert.equal(sample(text, 'keel_cluster_shard_fresh{shard="1"}'), 1);
    assert.equal(sample(text, 'keel_cluster_shard_fresh{shard="3"}'), 0);
    for (const name of ['lag', 'pending', 'input_age_seconds', 'owner', 'epoch']) assert.doesNotMatch(text, new RegExp(`^keel_cluster_shard_${name}\\{`, 'm'), name);
    assert.doesNotMatch(text, /^keel_cluster_worker/m);
    assert.doesNotMatch(text, /^keel_cluster_workers /m);
    assert.doesNotMatch(text, /^keel_metrics_collect_errors_total\{/m);

    const panel = clusterPanel(bus)!;
    assert.equal(panel.statusAt, null);
    assert.deepEqual(panel.workers, []);
    assert.deepEqual(
      panel.shards.map((s) => [s.shard, s.symbols.join(','), s.owner, s.ageMs, s.fresh, s.lag]),
      [
        [1, 'SPY,QQQ', null, 120, true, null],
        [3, 'IWM', null, 3_500, false, null],
      ],
    );
    assert.deepEqual(panel.problems, { 'shard s3 stale': 'shard 3 (IWM): no output for 3.5 s' });
  } finally {
    metrics.stop();
  }
});

test('a view with a status: lag, pending, input age, owner, epoch per shard; shards and heartbeat per worker; the worker count', async () => {
  const bus = new Bus();
  const metrics = createMetrics({ bus, services: new ServiceTable(), actors: () => [] });
  try {
    bus.retain(CLUSTER_TOPIC, { ...VIEW, status: STATUS });
    const text = await metrics.render();
    assert.equal(sample(text, 'keel_cluster_shard_fresh{shard="1"}'), 1);
    assert.equal(sample(text, 'keel_cluster_shard_lag{shard="1"}'), 4);
    assert.equal(sample(text, 'keel_cluster_shard_lag{shard="3"}'), undefined, 'Redis could not tell: no series, not 0');
    assert.equal(sample(text, 'keel_cluster_shard_lag{shard="6"}'), 5);
    assert.equal(sample(text, 'keel_cluster_shard_pending{shard="1"}'), 2);
    assert.equal(sample(text, 'keel_cluster_shard_pending{shard="5"}'), 1);
    assert.equal(sample(text, 'keel_cluster_shard_input_age_seconds{shard="1"}'), 0.15);
    assert.equal(sample(text, 'keel_cluster_shard_input_age_seconds{shard="3"}'), undefined);
    assert.equal(sample(text, 'keel_cluster_shard_input_age_seconds{shard="6"}'), 30);
    assert.equal(sample(text, 'keel_cluster_shard_owner{shard="1",worker="w-a"}'), 1);
    assert.equal(sample(text, 'keel_cluster_shard_owner{shard="5",worker="w-b"}'), 1);
    assert.doesNotMatch(text, /^keel_cluster_shard_owner\{shard="6"/m, 'an unowned shard has no owner series');
    assert.equal(sample(text, 'keel_cluster_shard_epoch{shard="1"}'), 3);
    assert.equal(sample(text, 'keel_cluster_shard_epoch{shard="5"}'), 7);
    assert.equal(sample(text, 'keel_cluster_shard_epoch{shard="6"}'), undefined);
    assert.equal(sample(text, 'keel_cluster_worker_shards{worker="w-a"}'), 2);
    assert.equal(sample(text, 'keel_cluster_worker_shards{worker="w-b"}'), 1);
    assert.equal(sample(text, 'keel_cluster_worker_heartbeat_age_seconds{worker="w-a"}'), 0.25);
    assert.equal(sample(text, 'keel_cluster_worker_heartbeat_age_seconds{worker="w-b"}'), 4.5);
    assert.equal(sample(text, 'keel_cluster_workers'), 2);
    // Every one a gauge with help, none named _total (promtool check metrics' lint).
    const names = [...new Set([...text.matchAll(/^(keel_cluster_\w+)[{ ]/gm)].map((m) => m[1]!))];
    assert.equal(names.length, 10, names.join(', '));
    for (const name of names) {
      assert.match(text, new RegExp(`^# TYPE ${name} gauge$`, 'm'), name);
      assert.match(text, new RegExp(`^# HELP ${name} \\S`, 'm'), name);
      assert.doesNotMatch(name, /_total$/);
    }

    // A newer status replaces the old series: a worker gone and a shard handed over leave nothing behind.
    bus.retain(CLUSTER_TOPIC, {
      ...VIEW,
      status: { ...STATUS, workers: [{ worker: 'w-b', heartbeatAgeMs: 100, shards: [1, 3, 5] }], shards: STATUS.shards.map((s) => (s.owner === 'w-a' ? { ...s, owner: 'w-b', epoch: s.epoch! + 1 } : s)) },
    });
    const next = await metrics.render();
    assert.equal(sample(next, 'keel_cluster_workers'), 1);
    assert.doesNotMatch(next, /worker="w-a"/);
    assert.equal(sample(next, 'keel_cluster_shard_owner{shard="1",worker="w-b"}'), 1);
    assert.equal(sample(next, 'keel_cluster_shard_epoch{shard="1"}'), 4);
    assert.equal(sample(next, 'keel_cluster_worker_shards{worker="w-b"}'), 3);
  } finally {
    metrics.stop();
  }
});

test('the cluster panel joins what this node reads with what Redis says, every active shard ascending', () => {
  const bus = new Bus();
  bus.retain(CLUSTER_TOPIC, { ...VIEW, status: STATUS });
  const panel = clusterPanel(bus)!;
  assert.equal(panel.statusAt, STATUS.at);
  assert.deepEqual(panel.workers, [
    { worker: 'w-a', shards: 2, heartbeatAgeMs: 250 },
    { worker: 'w-b', shards: 1, heartbeatAgeMs: 4_500 },
  ]);
  assert.deepEqual(panel.shards, [
    { shard: 1, symbols: ['SPY', 'QQQ'], owner: 'w-a', epoch: 3, ageMs: 120, fresh: true, lag: 4, pending: 2 },
    { shard: 3, symbols: ['IWM'], owner: 'w-a', epoch: 1, ageMs: 3_500, fresh: false, lag: null, pending: 0 },
    { shard: 5, symbols: [], owner: 'w-b', epoch: 7, ageMs: null, fresh: null, lag: 0, pending: 1 },
    { shard: 6, symbols: [], owner: null, epoch: null, ageMs: null, fresh: null, lag: 5, pending: 0 },
  ]);
  // It travels as JSON (the panels message, /api/cluster): no Map, no NaN.
  assert.deepEqual(JSON.parse(JSON.stringify(panel)), panel);
});
