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
import { closeRedis, openRedis, scaleoutSettings, whenReady } from '../scaleout/connect.js';
import { ENTRY_FIELD } from '../scaleout/fenced.js';
import { decodeOutput } from '../scaleout/shard-output.js';
import { OutputMerger } from '../scaleout/shard-reader.js';
import { shardKeys } from '../scaleout/shards.js';
import { clusterStatus, type ClusterStatus } from '../scaleout/status.js';
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

type RawEntries = [Buffer, Buffer[]][];

export const shardReaderLogic = serviceLogic<ShardReaderSettings>(async (ctx) => {
  const { bus, clock, log, settings, instance } = ctx;
  const { symbols } = ctx.need('instruments');
  const merger = new OutputMerger(symbols, settings.shards, settings.freshnessMs, settings.halt, clock.wallNow());
  const keys = merger.shards.map((shard) => shardKeys(instance, shard, settings.shards).output);
  const client = openRedis(settings.redis, `keel:${instance}:trader`);
  client.on('error', () => undefined);
  try {
    await whenReady(client, settings.redis);
  } catch (error) {
    closeRedis(client);
    throw error;
  }
  // From each stream's newest entry: the past is no longer fresh, and a restart must not replay it.
  const lastIds = await Promise.all(
    keys.map(async (key) => {
      const newest = (await client.xrevrangeBuffer(key, '+', '-', 'COUNT', 1)) as unknown as RawEntries;
      return newest.length > 0 ? newest[0]![0].toString() : '0-0';
    }),
  );
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
  let reading: Promise<void> = Promise.resolve();
  let outage: string | undefined;
  const read = async () => {
    const replies = await Promise.all(keys.map((key, n) => client.xreadBuffer('COUNT', 1_000, 'STREAMS', key, lastIds[n]!) as Promise<[Buffer, RawEntries][] | null>));
    replies.forEach((reply, n) => {
      for (const [id, fields] of reply?.[0]?.[1] ?? []) {
        lastIds[n] = id.toString();
        const at = fields.findIndex((f, i) => i % 2 === 0 && f.toString() === ENTRY_FIELD);
        try {
          if (at < 0) throw new Error('no batch field');
          merger.onOutput(decodeOutput(fields[at + 1]!));
        } catch (error) {
          log.error({ stream: keys[n], id: lastIds[n] }, `output entry skipped: ${(error as Error).message}`);
        }
      }
    });
  };
  const poll = () => {
    if (stopped) return;
    reading = read()
      .then(() => {
        if (outage !== undefined) log.info('shard outputs readable again');
        outage = undefined;
        merger.onRedis(undefined);
      })
      .catch((error: Error) => {
        if (outage === undefined) log.error({ redis: settings.redis.url }, `shard outputs unreadable: ${error.message}`);
        outage = error.message;
        merger.onRedis(error.message);
      })
      .finally(() => {
        publishView();
        if (!stopped) pollTimer = clock.setTimeout(poll, settings.pollMs);
      });
  };
  let pollTimer = clock.setTimeout(poll, 0);
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
      clock.clearTimeout(pollTimer);
      clock.clearTimeout(publishTimer);
      clock.clearTimeout(statusTimer);
      await Promise.all([reading, statusReading]);
      closeRedis(client);
    },
  };
});
