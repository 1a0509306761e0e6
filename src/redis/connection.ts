/**
 * The Redis connection's plain parts, driven by the redis component's
 * statechart (src/actors/redis.ts): the client's options, its events as
 * callbacks, and the PING watchdog. Which mode the mirror is in (connecting,
 * connected, down, resyncing) is the machine's; nothing here keeps one.
 */
import type { Redis, RedisOptions } from 'ioredis';
import type { Clock } from '../clock.js';

/**
 * Client options the mirror relies on: commands fail at once while Redis is
 * down (no offline queue, no retry of a command in flight), reconnects
 * forever with a backoff capped at `maxBackoffMs`.
 */
export function redisClientOptions(connectTimeoutMs: number, maxBackoffMs = 1_000): RedisOptions {
  return {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    connectTimeout: connectTimeoutMs,
    retryStrategy: (attempt: number) => Math.min(maxBackoffMs, 50 * 2 ** Math.min(attempt - 1, 10)),
  };
}

export interface ClientEvents {
  /** The connection answers commands (after every connect and reconnect). */
  ready(): void;
  /** The connection is gone (ioredis reconnects by itself). */
  closed(): void;
  error(message: string): void;
}

/**
 * Connects a client made with `redisClientOptions` and reports its events
 * until the returned function, which disconnects it for good.
 */
export function connect(client: Redis, events: ClientEvents): () => void {
  const onReady = () => events.ready();
  const onClose = () => events.closed();
  const onError = (error: Error) => events.error(error.message);
  client.on('ready', onReady);
  client.on('close', onClose);
  client.on('end', onClose);
  client.on('error', onError);
  // A failed first attempt rejects connect(); the client keeps retrying and 'ready' is what counts.
  client.connect().catch(() => undefined);
  return () => {
    client.off('ready', onReady);
    client.off('close', onClose);
    client.off('end', onClose);
    client.off('error', onError);
    // An unheard 'error' is printed by ioredis: a late one goes nowhere instead.
    client.on('error', () => undefined);
    client.disconnect();
  };
}

/**
 * A half-open connection (Redis hung, sockets open) answers nothing and
 * closes nothing: a PING every `pingMs`, and one unanswered for longer than
 * `pingTimeoutMs` is reported with its age. Runs until the returned
 * function; a late answer after that changes nothing.
 */
export function watchPings(client: Redis, clock: Clock, limits: { pingMs: number; pingTimeoutMs: number }, unanswered: (ms: number) => void): () => void {
  let sentAt = NaN;
  let stopped = false;
  let timer: unknown;
  const tick = () => {
    const now = clock.now();
    if (!Number.isNaN(sentAt)) {
      if (now - sentAt > limits.pingTimeoutMs) {
        unanswered(Math.round(now - sentAt));
        return;
      }
    } else {
      sentAt = now;
      client.ping().then(
        () => {
          if (!stopped) sentAt = NaN;
        },
        // A PING refused or lost with the connection: the connection's own events say so.
        () => undefined,
      );
    }
    timer = clock.setTimeout(tick, limits.pingMs);
  };
  timer = clock.setTimeout(tick, limits.pingMs);
  return () => {
    stopped = true;
    clock.clearTimeout(timer);
  };
}
