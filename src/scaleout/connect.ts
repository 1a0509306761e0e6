/**
 * Where the scale-out streams live: one Redis, or a Redis Cluster seeded
 * from one of its nodes. Every role's component takes the same `redis`
 * settings; the shard keys' hash tags make both work (shards.ts).
 */
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { z } from 'zod';
import type { RedisClient } from './scripts.js';
import { DEFAULT_SHARD_COUNT } from './shards.js';

export const redisTarget = z
  .object({
    /** redis://host:port; with `cluster: true`, any node of the Cluster. */
    url: z.string().url().default('redis://127.0.0.1:6379'),
    cluster: z.boolean().default(false),
    connectTimeoutMs: z.number().int().positive().default(5_000),
  })
  .strict();

export type RedisTarget = z.infer<typeof redisTarget>;

/** What every scale-out role must agree on: the streams' Redis and the shard count. */
export const scaleoutSettings = {
  redis: redisTarget.prefault({}),
  /** Fixed for a deployment: changing it moves most instruments (a migration, not a restart). */
  shards: z.number().int().positive().max(16_384).default(DEFAULT_SHARD_COUNT),
};

/**
 * A client that fails commands at once while Redis is down (no offline
 * queue: a stale write replayed later could land after newer ones), and
 * reconnects by itself. The many small per-shard commands of a tick are
 * written without waiting for each other's replies, so they share round
 * trips already; ioredis's auto-pipelining would break the Lua scripts
 * defined after its first batch (`pipeline[functionName] is not a function`).
 */
function openRedis(target: RedisTarget, name: string): RedisClient {
  const options: RedisOptions = {
    connectionName: name,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: target.connectTimeoutMs,
    retryStrategy: (attempt: number) => Math.min(1_000, 50 * 2 ** Math.min(attempt - 1, 10)),
  };
  const url = new URL(target.url);
  if (!target.cluster) return new Redis(target.url, options);
  return new Cluster([{ host: url.hostname, port: Number(url.port || 6379) }], {
    enableOfflineQueue: false,
    clusterRetryStrategy: (attempt: number) => Math.min(1_000, 50 * 2 ** Math.min(attempt - 1, 10)),
    redisOptions: options,
  });
}

/** Resolves once the client answers, or rejects naming the target after `connectTimeoutMs`. */
async function whenReady(client: RedisClient, target: RedisTarget): Promise<void> {
  if (client.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off('ready', onReady);
      reject(new Error(`Redis at ${target.url}${target.cluster ? ' (cluster)' : ''} did not answer within ${target.connectTimeoutMs} ms`));
    }, target.connectTimeoutMs);
    const onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    client.once('ready', onReady);
  });
}

/** A client that answers (see openRedis), or an Error naming the target; `onError` hears its connection errors from then on. */
export async function connectRedis(target: RedisTarget, name: string, onError: (error: Error) => void = () => undefined): Promise<RedisClient> {
  const client = openRedis(target, name);
  client.on('error', onError);
  try {
    await whenReady(client, target);
  } catch (error) {
    closeRedis(client);
    throw error;
  }
  return client;
}

/** Disconnects for good; a late 'error' goes nowhere instead of being printed. */
export function closeRedis(client: RedisClient): void {
  client.on('error', () => undefined);
  client.disconnect();
}
