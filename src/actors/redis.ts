/**
 * redis: mirrors chosen bus topics, the journal and the positions to Redis
 * for outside readers (see src/redis/encoding.ts for the keys and encoding),
 * and publishes the link's state (retained) on `redis.status`.
 *
 * Start connects and writes the first full mirror; it fails, naming the URL,
 * when Redis does not answer within `connectTimeoutMs`. Redis going away
 * later is not a failure of this component: ioredis reconnects by itself
 * (backoff capped at `maxBackoffMs`) and the bridge resyncs. It is a risk
 * gate condition instead, from the moment the loss is seen until the resync
 * ends. A resync that Redis refuses while it answers fails the component.
 */
import { Redis } from 'ioredis';
import { z } from 'zod';
import { RedisBridge, redisClientOptions } from '../redis/bridge.js';
import { MIRRORED_TOPICS, redactUrl } from '../redis/encoding.js';
import { serviceLogic } from '../supervision/service.js';
import { isTopic, TOPIC_NAMES, type TopicName } from '../topics.js';

const topicName = z.custom<TopicName>((v) => typeof v === 'string' && isTopic(v), `expected a bus topic: ${TOPIC_NAMES.join(', ')}`);

export const redisSettings = z
  .object({
    url: z
      .string()
      .regex(/^rediss?:\/\/[^\s]*$/, 'expected a redis:// or rediss:// URL')
      .default('redis://127.0.0.1:6379'),
    /** Start fails when Redis has not answered (and the first mirror is not written) within this, ms. */
    connectTimeoutMs: z.number().int().positive().default(5_000),
    /** Reconnect attempts back off up to this, ms. */
    maxBackoffMs: z.number().int().positive().default(1_000),
    /** Bus topics to mirror; `journal.record` mirrors the journal (stream, orders, fills, gate). */
    topics: z.array(topicName).min(1).default([...MIRRORED_TOPICS]),
    /** Liveness probe: a PING every pingMs; no answer within pingTimeoutMs counts as Redis down. */
    pingMs: z.number().int().positive().default(1_000),
    pingTimeoutMs: z.number().int().positive().default(3_000),
  })
  .strict();

export type RedisSettings = z.infer<typeof redisSettings>;

export const redisLogic = serviceLogic<RedisSettings>(async (ctx) => {
  const { bus, clock, log, settings } = ctx;
  const { instance } = ctx;
  const client = new Redis(settings.url, redisClientOptions(settings.connectTimeoutMs, settings.maxBackoffMs));
  const bridge = new RedisBridge({
    client,
    bus,
    services: ctx.services,
    instance,
    clock,
    log,
    url: settings.url,
    topics: settings.topics,
    pingMs: settings.pingMs,
    pingTimeoutMs: settings.pingTimeoutMs,
    onError: (error) => ctx.fail(error),
  });
  // Rejects naming the URL; the bridge has disconnected the client.
  await bridge.start(settings.connectTimeoutMs);
  log.info({ instance, topics: settings.topics }, `Redis mirror of keel:${instance}:* at ${redactUrl(settings.url)}`);
  return {
    async stop() {
      bridge.stop();
      // QUIT goes after every write already sent; a client that is not connected has nothing to flush.
      if (client.status === 'ready') await client.quit().catch(() => client.disconnect());
      else client.disconnect();
    },
  };
});
