/**
 * `keel cluster status`: the scale-out state of an instance, read from Redis
 * (src/scaleout/status.ts): its live shard workers and which shards each
 * holds, and per shard its lease, lag, pending entries and stream ages.
 * Reads only. Redis out of reach is one line and exit 1; a bad flag one line
 * and exit 2.
 */
import { Cluster, Redis } from 'ioredis';
import type { RedisClient } from '../scaleout/scripts.js';
import { DEFAULT_SHARD_COUNT } from '../scaleout/shards.js';
import { clusterStatus, formatClusterStatus } from '../scaleout/status.js';
import { numberFlag, reportMistakes, stringFlag, UserError, type Values } from './flags.js';
import type { Command } from './main.js';

const DEFAULT_REDIS = 'redis://127.0.0.1:6379';
const DEFAULT_INSTANCE = 'keel-dev';
const CONNECT_TIMEOUT_MS = 5_000;
const MAX_SHARDS = 100_000;
const MIN_WATCH_MS = 100;
const EXIT_FAILED = 1;

export const clusterCommands: Record<string, Command> = {
  'cluster status': {
    summary: "show a scale-out instance's workers and shards in Redis",
    usage: 'keel cluster status [--redis URL] [--cluster] [--instance NAME] [--shards N] [--json] [--watch MS]',
    help: `Reads the shard workers' state of an instance from Redis, without changing
anything: a header (workers live, shards active, shards nobody owns), one
line per worker in the instance's workers set (its heartbeat age and the
shards whose lease it holds),
and one line per shard whose input (keel:NAME:md:{sNNN}) or output
(keel:NAME:out:{sNNN}) stream exists:

  OWNER       the lease holder, or (unowned); (no heartbeat) when it is not
              in the instance's workers set
  EPOCH       the fencing epoch of the holder's lease
  LEASE TTL   what is left of the lease
  INPUT       entries in the input stream
  LAG         entries the workers group has not been given yet (- when the
              group is missing or Redis cannot tell)
  PENDING     entries given to a worker and not committed yet
  INPUT AGE   how long ago the newest input entry was added
  OUTPUT      entries in the output stream
  OUTPUT AGE  how long ago the newest output entry was added

Ages are by Redis's clock. Exit 0 when the status was read, 1 when Redis
cannot be reached or answers with an error, 2 for a usage mistake.

Options:
      --redis URL       Redis to read (default ${DEFAULT_REDIS})
      --cluster         Redis is a Redis Cluster: --redis names one node of it
                        (the others are found from it)
      --instance NAME   the config's instance (default ${DEFAULT_INSTANCE})
      --shards N        the deployment's shard count (default ${DEFAULT_SHARD_COUNT})
      --json            one JSON object instead of the tables (with --watch,
                        one JSON line per reading)
      --watch MS        read and print again every MS ms (at least ${MIN_WATCH_MS})
                        until SIGINT`,
    options: {
      redis: { type: 'string' },
      cluster: { type: 'boolean' },
      instance: { type: 'string' },
      shards: { type: 'string' },
      json: { type: 'boolean' },
      watch: { type: 'string' },
    },
    async run(values, positionals) {
      return reportMistakes(() => status(values, positionals));
    },
  },
};

/** A Redis URL with its password, if any, hidden. */
function shown(url: URL): string {
  if (url.password === '') return url.href.replace(/\/$/, '');
  const copy = new URL(url.href);
  copy.password = '***';
  return copy.href.replace(/\/$/, '');
}

function parseRedisUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UserError(`--redis must be a URL such as ${DEFAULT_REDIS}, got '${text}'`);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw new UserError(`--redis must be a redis:// or rediss:// URL, got '${text}'`);
  if (url.hostname === '') throw new UserError(`--redis names no host: '${text}'`);
  return url;
}

/**
 * A connected client, or the reason there is none. No reconnects and no
 * offline queue: a Redis out of reach fails the first command, not hangs it.
 */
async function connectTo(url: URL, cluster: boolean): Promise<RedisClient> {
  const common = { connectTimeout: CONNECT_TIMEOUT_MS, maxRetriesPerRequest: 0 };
  let client: RedisClient;
  if (cluster) {
    // The Cluster client reports an unreachable node as 'Connection is closed.': the seed is
    // first reached alone, so that the line says why (ECONNREFUSED, ENOTFOUND, ...).
    (await connectTo(url, false)).disconnect();
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    client = new Cluster([{ host, port: url.port === '' ? 6379 : Number(url.port) }], {
      lazyConnect: true,
      enableOfflineQueue: false,
      clusterRetryStrategy: () => null,
      redisOptions: {
        ...common,
        username: url.username === '' ? undefined : decodeURIComponent(url.username),
        password: url.password === '' ? undefined : decodeURIComponent(url.password),
        tls: url.protocol === 'rediss:' ? {} : undefined,
      },
    });
  } else {
    client = new Redis(url.href, { ...common, lazyConnect: true, enableOfflineQueue: false, retryStrategy: () => null });
  }
  // connect() rejects with a general message ('Connection is closed.'); the 'error' event says why
  // (ECONNREFUSED, a DNS failure, ...). An unheard 'error' event would be printed by ioredis.
  let cause: unknown;
  const onError = (error: unknown) => {
    cause = error instanceof Error && 'lastNodeError' in error ? (error as { lastNodeError: unknown }).lastNodeError ?? error : error;
  };
  client.on('error', onError);
  client.on('node error', onError);
  try {
    await client.connect();
  } catch (error) {
    client.disconnect();
    throw cause ?? error;
  }
  client.off('error', onError);
  client.off('node error', onError);
  client.on('error', () => undefined);
  return client;
}

/** One line for a Redis failure, with a hint when the client and the server disagree on Cluster. */
function why(error: unknown, cluster: boolean): string {
  const message = (error instanceof Error ? error.message : String(error)).split('\n')[0]!;
  if (!cluster && /^MOVED |^CLUSTERDOWN/.test(message)) return `${message} (a Redis Cluster: add --cluster)`;
  if (cluster && /cluster support disabled/i.test(message)) return `${message} (not a Redis Cluster: leave out --cluster)`;
  return message === '' ? 'no answer' : message;
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done);
  });
}

async function status(values: Values, positionals: string[]): Promise<number> {
  if (positionals.length > 0) throw new UserError(`unexpected argument '${positionals[0]}'`);
  const url = parseRedisUrl(stringFlag(values, 'redis') ?? DEFAULT_REDIS);
  const instance = stringFlag(values, 'instance') ?? DEFAULT_INSTANCE;
  // As shardKeys requires: a brace would move the Cluster hash tag.
  if (instance === '' || /[{}]/.test(instance)) throw new UserError(`--instance must be a non-empty name without braces, got '${instance}'`);
  const shardCount = numberFlag(values, 'shards', `a whole number from 1 to ${MAX_SHARDS}`, (n) => Number.isInteger(n) && n >= 1 && n <= MAX_SHARDS) ?? DEFAULT_SHARD_COUNT;
  const watchMs = numberFlag(values, 'watch', `a whole number of ms of at least ${MIN_WATCH_MS}`, (n) => Number.isInteger(n) && n >= MIN_WATCH_MS);
  const cluster = values.cluster === true;
  const json = values.json === true;

  let client: RedisClient;
  try {
    client = await connectTo(url, cluster);
  } catch (error) {
    process.stderr.write(`keel: cannot reach Redis${cluster ? ' Cluster' : ''} at ${shown(url)}: ${why(error, cluster)}\n`);
    return EXIT_FAILED;
  }
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal);
  const clear = watchMs !== undefined && !json && process.stdout.isTTY === true;
  try {
    for (let first = true; ; first = false) {
      const snapshot = await clusterStatus(client, instance, shardCount);
      if (json) process.stdout.write(watchMs === undefined ? `${JSON.stringify(snapshot, null, 2)}\n` : `${JSON.stringify(snapshot)}\n`);
      // On a terminal each reading replaces the last; into a file or pipe they follow one another.
      else process.stdout.write(`${clear ? '\x1b[H\x1b[2J' : first ? '' : '\n'}${formatClusterStatus(snapshot)}`);
      if (watchMs === undefined) return 0;
      await sleep(watchMs, stop.signal);
      if (stop.signal.aborted) return 0;
    }
  } catch (error) {
    process.stderr.write(`keel: reading the status of ${instance} from Redis at ${shown(url)} failed: ${why(error, cluster)}\n`);
    return EXIT_FAILED;
  } finally {
    process.off('SIGINT', onSignal);
    client.disconnect();
  }
}
