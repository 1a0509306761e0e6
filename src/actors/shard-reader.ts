/**
 * shard_reader: the trading node's side of the scale-out. Reads the output
 * stream of every shard its instruments live in (plain XREAD from where it
 * left off; every trading node sees every output), and publishes what the
 * single-process components would: `predictions` and `regime` over its
 * universe, once per prediction interval, and on `cluster` each shard's age
 * and the conditions that halt the risk gate (src/scaleout/shard-reader.ts).
 * Every `statusMs` it also reads the cluster's status from Redis (owners,
 * epochs, group lag and pending, heartbeats: src/scaleout/status.ts), one
 * read at a time, and attaches the latest to every view it publishes, for
 * the inspector's panel and metrics; a failed read is logged at debug and
 * the previous status stays.
 */
import { z } from 'zod';
import { closeRedis, connectRedis, scaleoutSettings } from '../scaleout/connect.js';
import { decodeOutput } from '../scaleout/shard-output.js';
import { OutputMerger } from '../scaleout/shard-reader.js';
import { shardKeys } from '../scaleout/shards.js';
import { clusterStatus, type ClusterStatus } from '../scaleout/status.js';
import { StreamTail } from '../scaleout/stream-tail.js';
import { serviceLogic } from '../supervision/service.js';
import { CLUSTER_TOPIC, PREDICTIONS_TOPIC, REGIME_TOPIC } from '../topics.js';

export const shardReaderSettings = z
  .object({
    ...scaleoutSettings,
    /** A shard whose newest output is older than this is stale: see `halt`. Above the workers' lease plus a round, a hand-over halts. */
    freshnessMs: z.number().int().positive().default(2_000),
    /** What a stale shard halts: `all` trading (the risk gate), or only its `instruments` (no predictions for them). */
    halt: z.enum(['all', 'instruments']).default('all'),
    /** Predictions and regimes published this often (the workers' predictor interval). */
    intervalMs: z.number().int().positive().default(1_000),
    /** Read the output streams this often. */
    pollMs: z.number().int().positive().default(50),
    /** Read the cluster's status (owners, lag, pending, heartbeats) this often, for the inspector. */
    statusMs: z.number().int().positive().default(5_000),
  })
  .strict();

export type ShardReaderSettings = z.infer<typeof shardReaderSettings>;

export const shardReaderLogic = serviceLogic<ShardReaderSettings>(async (ctx) => {
  const { bus, clock, log, settings, instance } = ctx;
  const { symbols } = ctx.need('instruments');
  const merger = new OutputMerger(symbols, settings.shards, settings.freshnessMs, settings.halt, clock.wallNow());
  const keys = merger.shards.map((shard) => shardKeys(instance, shard, settings.shards).output);
  const client = await connectRedis(settings.redis, `keel:${instance}:trader`);
  let problems = new Map<string, string>();
  let status: ClusterStatus | undefined;
  const publishView = () => {
    const view = merger.view(clock.wallNow());
    const changed = view.problems.size !== problems.size || [...view.problems.keys()].some((k) => !problems.has(k));
    if (changed) {
      for (const [key, reason] of view.problems) if (!problems.has(key)) log.error({ condition: key }, reason);
      for (const key of problems.keys()) if (!view.problems.has(key)) log.info({ condition: key }, `cleared: ${key}`);
      problems = new Map(view.problems);
    }
    bus.retain(CLUSTER_TOPIC, status ? { ...view, status } : view);
  };

  let stopped = false;
  let outage: string | undefined;
  const tail = new StreamTail({
    client,
    clock,
    keys,
    pollMs: settings.pollMs,
    onEntry: (_, body) => merger.onOutput(decodeOutput(body)),
    onSkipped: (stream, id, reason) => log.error({ stream, id }, `output entry skipped: ${reason}`),
    onPoll: (failure) => {
      if (failure === undefined && outage !== undefined) log.info('shard outputs readable again');
      if (failure !== undefined && outage === undefined) log.error({ redis: settings.redis.url }, `shard outputs unreadable: ${failure}`);
      outage = failure;
      merger.onRedis(failure);
      publishView();
    },
  });
  // From each stream's newest entry on: the past is no longer fresh, and a restart must not replay it.
  await tail.start(0);
  const publish = () => {
    publishTimer = clock.setTimeout(publish, settings.intervalMs);
    const now = clock.now();
    const regime = merger.regime(settings.intervalMs, now);
    if (regime) bus.retain(REGIME_TOPIC, regime);
    bus.retain(PREDICTIONS_TOPIC, merger.predictions(clock.wallNow(), now));
  };
  let publishTimer = clock.setTimeout(publish, settings.intervalMs);
  let statusReading: Promise<void> = Promise.resolve();
  const readStatus = () => {
    if (stopped) return;
    statusReading = clusterStatus(client, instance, settings.shards)
      .then((next) => {
        status = next;
      })
      .catch((error: Error) => log.debug({ redis: settings.redis.url }, `cluster status unreadable: ${error.message}`))
      .finally(() => {
        if (!stopped) statusTimer = clock.setTimeout(readStatus, settings.statusMs);
      });
  };
  let statusTimer = clock.setTimeout(readStatus, 0);
  publishView();
  log.info({ shards: merger.shards.length, freshnessMs: settings.freshnessMs, halt: settings.halt, redis: settings.redis.url }, `reading ${merger.shards.length} shards' outputs`);
  return {
    async stop() {
      stopped = true;
      clock.clearTimeout(publishTimer);
      clock.clearTimeout(statusTimer);
      await Promise.all([tail.stop(), statusReading]);
      closeRedis(client);
    },
  };
});
