/**
 * redis: mirrors chosen bus topics, the journal and the positions to Redis
 * for outside readers (see src/redis/encoding.ts for the keys and encoding),
 * and publishes the link's state (retained) on `redis.status`.
 *
 *   connecting --first full sync--> connected --lost--> down
 *   (dialing <-> syncing)              ^                   |
 *                                      |            Redis answers
 *                                      |                   v
 *                                      +---- done ---- resyncing --lost again--> down
 *
 *   shutdown: stopping (QUIT after what was sent) -> stopped (final)
 *   a first sync not done within connectTimeoutMs, or a write Redis refuses
 *   while it answers: failed (ctx.fail) -> shutdown -> stopped
 *
 * connecting: the client dials, then (syncing) writes the first full mirror;
 * a start that fails names the URL and publishes nothing. connected, down
 * and resyncing are all 'ready': once the mirror was complete, Redis going
 * away is not a failure of this component (ioredis reconnects by itself,
 * backoff capped at `maxBackoffMs`, and the mirror is rewritten) but a risk
 * gate condition, from the moment the loss is seen (`down` is published in
 * the call that saw it) until the resync ends. A resync cut short by
 * another loss is the same outage: its start and `missed` count go on.
 *
 * Bus messages never become events here: the bridge (src/redis/bridge.ts)
 * writes them as plain calls, attached to the connection while one answers.
 */
import { createRequire } from 'node:module';
import type { Redis } from 'ioredis';
import { assign, enqueueActions, fromCallback, fromPromise, setup } from 'xstate';
import { z } from 'zod';
import { RedisBridge, type RedisState, type RedisStatus, type ResyncSummary } from '../redis/bridge.js';
import { connect, redisClientOptions, watchPings } from '../redis/connection.js';
import { MIRRORED_TOPICS, redactUrl } from '../redis/encoding.js';
import type { ComponentContext } from '../supervision/component.js';
import { isTopic, REDIS_STATUS_TOPIC, TOPIC_NAMES, type TopicName } from '../topics.js';

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

type Event =
  | { type: 'redis.ready' }
  | { type: 'redis.closed' }
  | { type: 'redis.error'; message: string }
  | { type: 'mirror.lost'; reason: string }
  | { type: 'mirror.failed'; error: Error }
  | { type: 'ping.unanswered'; ms: number }
  | { type: 'shutdown' };

interface Context {
  readonly ctx: ComponentContext<RedisSettings>;
  readonly client: Redis;
  readonly bridge: RedisBridge;
  /** Where Redis is, password redacted. */
  readonly url: string;
  /** The client's last error since Redis last answered: why a start times out, or a connection closed. */
  readonly lastError: string | undefined;
  /** What `redis.status` says (the object retained: while down the bridge counts `missed` into it); none before the first full sync. */
  readonly status: RedisStatus | undefined;
  /** Monotonic ms the synced mirror was lost: one outage lasts until a resync ends, across losses mid-resync. */
  readonly downAt: number;
  /** Why the component failed. */
  readonly failure: Error | undefined;
}

/** The connection's events, for as long as the actor lives; the client goes with it. */
const connection = fromCallback<Event, Context>(({ input, sendBack }) =>
  input.ctx.scope(() =>
    connect(input.client, {
      ready: () => sendBack({ type: 'redis.ready' }),
      closed: () => sendBack({ type: 'redis.closed' }),
      error: (message) => sendBack({ type: 'redis.error', message }),
    }),
  ),
);

/** The data plane, following the bus for as long as the actor lives. */
const mirror = fromCallback<Event, Context>(({ input, sendBack }) =>
  input.ctx.scope(() =>
    input.bridge.listen({
      lost: (reason) => sendBack({ type: 'mirror.lost', reason }),
      failed: (error) => sendBack({ type: 'mirror.failed', error }),
    }),
  ),
);

const resync = fromPromise<ResyncSummary, Context>(({ input }) => input.ctx.scope(() => input.bridge.resync()));

/** A hung Redis keeps its sockets open: only an unanswered PING tells. */
const watchdog = fromCallback<Event, Context>(({ input, sendBack }) =>
  input.ctx.scope(() => watchPings(input.client, input.ctx.clock, input.ctx.settings, (ms) => sendBack({ type: 'ping.unanswered', ms }))),
);

/** QUIT goes after every write already sent; a client that is not connected has nothing to flush. */
const quit = fromPromise<void, Context>(({ input: { ctx, client } }) =>
  ctx.scope(async () => {
    if (client.status === 'ready') await client.quit().catch(() => client.disconnect());
    else client.disconnect();
  }),
);

type StatusParams = { state: RedisState; reason: string; missed: number };

function statusOf(context: Context, params: StatusParams): RedisStatus {
  return { state: params.state, reason: params.reason, since: context.ctx.clock.wallNow(), missed: params.missed, url: context.url };
}

/** Why the connection counts as gone, from the event that saw it. */
function lostReason(context: Context, event: Event): string {
  switch (event.type) {
    case 'redis.error':
      return `Redis error: ${event.message}`;
    case 'mirror.lost':
      return event.reason;
    case 'ping.unanswered':
      return `no answer to PING for ${event.ms} ms`;
    default:
      return context.lastError ? `connection lost (${context.lastError})` : 'connection closed';
  }
}

/** The connection is gone: from connected a new outage begins; from resyncing the same one goes on. */
function lostOn(newOutage: boolean) {
  const lose = { type: 'lose', params: { newOutage } } as const;
  return {
    'redis.closed': { target: 'down', actions: lose },
    'redis.error': { target: 'down', actions: ['noteError', lose, 'dropSocket'] },
    'mirror.lost': { target: 'down', actions: lose },
  } as const;
}

export const redisLogic = setup({
  types: {} as { context: Context; input: ComponentContext<RedisSettings>; events: Event },
  actors: { connection, mirror, resync, watchdog, quit },
  delays: {
    connectTimeout: ({ context }) => context.ctx.settings.connectTimeoutMs,
  },
  actions: {
    noteError: assign(({ event }) => (event.type === 'redis.error' ? { lastError: event.message } : {})),
    clearError: assign({ lastError: undefined }),
    // Made here, published by `publish`: no side effect inside assign.
    setStatus: assign(({ context }, params: StatusParams) => ({ status: statusOf(context, params) })),
    publish: ({ context }) => context.ctx.bus.retain(REDIS_STATUS_TOPIC, context.status!),
    attach: ({ context }) => context.bridge.attach(),
    detach: ({ context }) => context.bridge.detach(),
    lose: assign(({ context, event }, params: { newOutage: boolean }) => ({
      downAt: params.newOutage ? context.ctx.clock.now() : context.downAt,
      status: statusOf(context, { state: 'down', reason: lostReason(context, event), missed: params.newOutage ? 0 : context.status!.missed }),
    })),
    noteFailure: assign(({ context, event }) => {
      if (event.type === 'mirror.failed') return { failure: event.error };
      // The resync's own error (xstate.error.actor.*): Redis refused a write while it answers.
      const error = (event as unknown as { error: unknown }).error;
      return { failure: new Error(`Redis at ${context.url}: resync failed: ${(error as Error).message}`, { cause: error }) };
    }),
    // Messages not sent while down are counted into the `down` status in place, so readers see the count grow.
    detachCounting: ({ context }) => context.bridge.detach(context.status),
    // An error on a live connection is a lost connection: drop it, ioredis reconnects.
    dropSocket: ({ context }) => context.client.disconnect(true),
    /** Out of service: nothing more is sent, and a mirror that was complete once is reported down. */
    stopMirroring: enqueueActions(({ context, enqueue }, params: { reason: string }) => {
      enqueue(({ context }) => context.bridge.detach());
      if (!context.status) return;
      enqueue.assign({ status: statusOf(context, { state: 'down', reason: params.reason, missed: 0 }) });
      enqueue(({ context }) => context.ctx.bus.retain(REDIS_STATUS_TOPIC, context.status!));
    }),
  },
}).createMachine({
  id: 'redis',
  context: ({ input }) => {
    const { settings } = input;
    const client = new (loadIoredis().Redis)(settings.url, redisClientOptions(settings.connectTimeoutMs, settings.maxBackoffMs));
    return {
      ctx: input,
      client,
      bridge: new RedisBridge({ client, bus: input.bus, services: input.services, instance: input.instance, clock: input.clock, log: input.log, url: settings.url, topics: settings.topics }),
      url: redactUrl(settings.url),
      lastError: undefined,
      status: undefined,
      downAt: NaN,
      failure: undefined,
    };
  },
  invoke: [
    { src: 'mirror', input: ({ context }) => context },
    { src: 'connection', input: ({ context }) => context },
  ],
  on: {
    'redis.error': { actions: 'noteError' },
  },
  initial: 'connecting',
  states: {
    connecting: {
      initial: 'dialing',
      after: {
        connectTimeout: {
          target: 'failed',
          actions: assign({
            failure: ({ context }) =>
              new Error(`Redis at ${context.url} is not reachable: no connection within ${context.ctx.settings.connectTimeoutMs} ms (${context.lastError ?? `status ${context.client.status}`})`),
          }),
        },
      },
      on: { shutdown: 'stopping' },
      states: {
        dialing: {
          entry: 'detach',
          on: { 'redis.ready': { target: 'syncing', actions: 'clearError' } },
        },
        syncing: {
          entry: 'attach',
          invoke: {
            src: 'resync',
            input: ({ context }) => context,
            onDone: {
              target: '#redis.connected',
              actions: [
                { type: 'setStatus', params: { state: 'connected', reason: 'connected', missed: 0 } },
                ({ context, event }) => {
                  const { log, instance, settings } = context.ctx;
                  const done = event.output;
                  log.info({ url: context.url, ...done }, `mirroring to Redis at ${context.url}: ${done.topics} latest values, ${done.positions} positions, ${done.journalEntries} journal entries written`);
                  log.info({ instance, topics: settings.topics }, `Redis mirror of keel:${instance}:* at ${context.url}`);
                },
              ],
            },
            onError: { target: '#redis.failed', actions: 'noteFailure' },
          },
          // Lost before the mirror was complete: nothing to report; the next 'ready' starts over.
          on: {
            'redis.closed': 'dialing',
            'redis.error': { target: 'dialing', actions: ['noteError', 'dropSocket'] },
            'mirror.lost': 'dialing',
            'mirror.failed': { target: '#redis.failed', actions: 'noteFailure' },
          },
        },
      },
    },
    connected: {
      tags: ['ready'],
      entry: 'publish',
      invoke: { src: 'watchdog', input: ({ context }) => context },
      on: {
        ...lostOn(true),
        'ping.unanswered': { target: 'down', actions: [{ type: 'lose', params: { newOutage: true } }, 'dropSocket'] },
        'mirror.failed': { target: 'failed', actions: 'noteFailure' },
        shutdown: 'stopping',
      },
    },
    down: {
      tags: ['ready'],
      entry: [
        'detachCounting',
        'publish',
        ({ context }) => context.ctx.log.error({ reason: context.status!.reason, url: context.url }, `Redis unreachable: ${context.status!.reason}; mirroring paused`),
      ],
      on: {
        'redis.ready': {
          target: 'resyncing',
          actions: [
            'clearError',
            {
              type: 'setStatus',
              params: ({ context }) => ({
                state: 'resyncing',
                reason: `Redis answers again after ${Math.round(context.ctx.clock.now() - context.downAt)} ms: rewriting the mirror`,
                missed: context.status!.missed,
              }),
            },
          ],
        },
        shutdown: 'stopping',
      },
    },
    resyncing: {
      tags: ['ready'],
      entry: ['attach', 'publish'],
      invoke: {
        src: 'resync',
        input: ({ context }) => context,
        onDone: {
          target: 'connected',
          actions: enqueueActions(({ context, event, enqueue }) => {
            const downMs = Math.round(context.ctx.clock.now() - context.downAt);
            const { missed } = context.status!;
            const done = event.output;
            enqueue.assign({ downAt: NaN, status: statusOf(context, { state: 'connected', reason: `resynced after ${downMs} ms down`, missed }) });
            enqueue(() =>
              context.ctx.log.info(
                { downMs, missed, touched: context.bridge.takeTouched(), ...done },
                `Redis back after ${(downMs / 1000).toFixed(1)} s down: resynced ${done.topics} latest values, ${done.positions} positions and ${done.journalEntries} journal entries (${missed} messages missed while down)`,
              ),
            );
          }),
        },
        onError: { target: 'failed', actions: 'noteFailure' },
      },
      on: {
        // Lost again mid-resync: the same outage, its start and count kept.
        ...lostOn(false),
        'mirror.failed': { target: 'failed', actions: 'noteFailure' },
        shutdown: 'stopping',
      },
    },
    failed: {
      entry: [
        { type: 'stopMirroring', params: ({ context }) => ({ reason: context.failure!.message }) },
        // Nothing is sent any more: no reconnecting meanwhile.
        ({ context }) => context.client.disconnect(),
        ({ context }) => context.ctx.fail(context.failure),
      ],
      on: { shutdown: 'stopped' },
    },
    stopping: {
      entry: { type: 'stopMirroring', params: { reason: 'the redis component stopped' } },
      invoke: { src: 'quit', input: ({ context }) => context, onDone: 'stopped' },
    },
    stopped: { type: 'final' },
  },
});

/** ioredis (about 110 ms of start-up) is loaded only by a daemon that mirrors to Redis. */
function loadIoredis(): typeof import('ioredis') {
  return createRequire(import.meta.url)('ioredis') as typeof import('ioredis');
}
