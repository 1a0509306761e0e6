/**
 * A snapshot of an instance's scale-out state, read from Redis alone (for
 * `keel cluster status`): the live workers, and per shard its owner and
 * epoch, the lease's remaining TTL, its input stream's length, lag and
 * pending entries for the `workers` group, and how old the newest input and
 * output entries are.
 *
 * Every command touches one key, or keys of one shard (one `{sNNN}` slot),
 * and the commands of different shards are separate awaited calls, a few at
 * a time: no MULTI or pipeline across shards, so the same code works on a
 * plain Redis and on a Redis Cluster. Shards are found by EXISTS on their
 * md and out keys (SCAN would have to visit every Cluster master), and every
 * shard's lease is read, so a worker's shards are all it holds.
 *
 * Ages are measured with Redis's clock (TIME, read first): stream ids and
 * heartbeat scores are Redis server milliseconds too. The reads are not one
 * snapshot; a shard changing while it is read can show, say, a lease owner
 * whose TTL has run out by the time PTTL is asked.
 */
import { WORKER_GROUP } from './fenced.js';
import type { RedisClient } from './scripts.js';
import { DEFAULT_SHARD_COUNT, shardKeys, workersKey, type ShardKeys } from './shards.js';

export interface ShardStatus {
  shard: number;
  /** The lease holder's worker id; null when nobody holds the lease. */
  owner: string | null;
  /** The epoch of the lease holder's token; null without a holder (or a token not `<worker>#<epoch>`). */
  epoch: number | null;
  /** The lease's remaining time; null without a holder, or for a lease without a TTL. */
  leaseTtlMs: number | null;
  /** XLEN of the input (md) stream. */
  inputLength: number;
  /** XINFO GROUPS lag of group `workers`: entries not yet delivered; null if no group or the lag is unknown. */
  lag: number | null;
  /** Entries delivered to the group and not acknowledged yet. */
  pending: number;
  /** Redis time minus the newest input entry's id ms; null for an empty or missing stream. */
  lastInputAgeMs: number | null;
  /** Redis time minus the newest output entry's id ms; null for an empty or missing stream. */
  lastOutputAgeMs: number | null;
  /** XLEN of the output stream. */
  outputLength: number;
}

export interface WorkerStatus {
  worker: string;
  /** Redis time minus its last heartbeat. */
  heartbeatAgeMs: number;
  /** The shards whose lease it holds, ascending (a shard without streams too). */
  shards: number[];
}

export interface ClusterStatus {
  instance: string;
  shardCount: number;
  /** Redis TIME in ms when the status was read. */
  at: number;
  /** Every worker of the membership set, by id (a dead one, until the next heartbeat drops it, with its age). */
  workers: WorkerStatus[];
  /** Only shards whose input or output stream exists, ascending. */
  shards: ShardStatus[];
  /** Of those shards, the ones nobody holds the lease of. */
  unowned: number[];
}

/** Shards read at a time. */
const PARALLEL = 16;

/** Runs `fn` on every item, at most `limit` at a time, and keeps the order. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return results;
}

/** A stream id's milliseconds (`<ms>-<n>`). */
function idMs(id: string): number {
  return Number(id.slice(0, id.indexOf('-')));
}

/** How long ago, by Redis's clock, the newest entry of a stream was added; null when it has none. */
async function newestAge(client: RedisClient, key: string, at: number): Promise<number | null> {
  const newest = (await client.xrevrange(key, '+', '-', 'COUNT', 1)) as [string, string[]][];
  const id = newest[0]?.[0];
  return id === undefined ? null : Math.max(0, at - idMs(String(id)));
}

/** The `workers` group's lag and pending count on a stream: lag null without the group, or when Redis cannot tell. */
async function groupInfo(client: RedisClient, key: string): Promise<{ lag: number | null; pending: number }> {
  let groups: unknown[];
  try {
    groups = (await client.xinfo('GROUPS', key)) as unknown[];
  } catch (error) {
    // The stream vanished (trimmed to nothing and deleted) between EXISTS and here.
    if (error instanceof Error && /no such key/i.test(error.message)) return { lag: null, pending: 0 };
    throw error;
  }
  for (const group of groups) {
    const fields = new Map<string, unknown>();
    const flat = group as unknown[];
    for (let i = 0; i + 1 < flat.length; i += 2) fields.set(String(flat[i]), flat[i + 1]);
    if (String(fields.get('name')) !== WORKER_GROUP) continue;
    const lag = fields.get('lag');
    return { lag: lag === null || lag === undefined ? null : Number(lag), pending: Number(fields.get('pending') ?? 0) };
  }
  return { lag: null, pending: 0 };
}

/** `<worker>#<epoch>` to its parts; a value of another shape is all owner, no epoch. */
function parseToken(token: string): { owner: string; epoch: number | null } {
  const hash = token.lastIndexOf('#');
  const epoch = hash > 0 ? Number(token.slice(hash + 1)) : NaN;
  return Number.isSafeInteger(epoch) && token.slice(hash + 1) !== '' ? { owner: token.slice(0, hash), epoch } : { owner: token, epoch: null };
}

/** One shard's lease holder, and its status (null when neither of its streams exists). */
async function shardStatus(client: RedisClient, keys: ShardKeys, at: number): Promise<{ owner: string | null; status: ShardStatus | null }> {
  const [hasInput, hasOutput, token] = await Promise.all([client.exists(keys.input), client.exists(keys.output), client.get(keys.lease)]);
  const holder = token === null ? null : parseToken(token);
  if (hasInput === 0 && hasOutput === 0) return { owner: holder?.owner ?? null, status: null };
  const [ttl, inputLength, outputLength, group, lastInputAgeMs, lastOutputAgeMs] = await Promise.all([
    holder ? client.pttl(keys.lease) : -2,
    hasInput ? client.xlen(keys.input) : 0,
    hasOutput ? client.xlen(keys.output) : 0,
    hasInput ? groupInfo(client, keys.input) : { lag: null, pending: 0 },
    hasInput ? newestAge(client, keys.input, at) : null,
    hasOutput ? newestAge(client, keys.output, at) : null,
  ]);
  const status: ShardStatus = {
    shard: keys.shard,
    owner: holder?.owner ?? null,
    epoch: holder?.epoch ?? null,
    // -2: the lease expired between GET and PTTL; -1: a lease without a TTL.
    leaseTtlMs: holder && ttl >= 0 ? ttl : null,
    inputLength,
    lag: group.lag,
    pending: group.pending,
    lastInputAgeMs,
    lastOutputAgeMs,
    outputLength,
  };
  return { owner: status.owner, status };
}

/** Redis's clock in ms. */
async function redisTime(client: RedisClient): Promise<number> {
  const [seconds, micros] = (await client.time()).map(Number);
  return seconds! * 1000 + Math.floor(micros! / 1000);
}

/** The scale-out state of `instance`'s shards [0, shardCount) and its workers. */
export async function clusterStatus(client: RedisClient, instance: string, shardCount = DEFAULT_SHARD_COUNT): Promise<ClusterStatus> {
  const all = Array.from({ length: shardCount }, (_, shard) => shardKeys(instance, shard, shardCount));
  const key = workersKey(instance);
  const at = await redisTime(client);
  const [flat, found] = await Promise.all([client.zrange(key, '0', '-1', 'WITHSCORES'), mapLimit(all, PARALLEL, (keys) => shardStatus(client, keys, at))]);
  const shards = found.flatMap((f) => (f.status === null ? [] : [f.status]));
  // Every lease counts, a shard without streams too (a worker that has not created them yet).
  const held = new Map<string, number[]>();
  found.forEach((f, shard) => {
    if (f.owner !== null) held.set(f.owner, [...(held.get(f.owner) ?? []), shard]);
  });
  const workers: WorkerStatus[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const worker = flat[i]!;
    workers.push({ worker, heartbeatAgeMs: Math.max(0, at - Number(flat[i + 1])), shards: held.get(worker) ?? [] });
  }
  workers.sort((a, b) => (a.worker < b.worker ? -1 : a.worker > b.worker ? 1 : 0));
  return { instance, shardCount, at, workers, shards, unowned: shards.filter((s) => s.owner === null).map((s) => s.shard) };
}

/** An age or duration for people: `120 ms`, `3.2 s`, `4.5 min`, `2.0 h`, `3.1 d`; `-` for none. */
export function humanMs(ms: number | null): string {
  if (ms === null) return '-';
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${(ms / 60_000).toFixed(1)} min`;
  if (ms < 86_400_000) return `${(ms / 3_600_000).toFixed(1)} h`;
  return `${(ms / 86_400_000).toFixed(1)} d`;
}

/** Ascending numbers as ranges: [3, 4, 5, 9] -> `3-5,9`; `-` for none. */
export function shardRanges(shards: readonly number[]): string {
  const sorted = [...shards].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(j === i ? String(sorted[i]) : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.length === 0 ? '-' : parts.join(',');
}

/** Rows as aligned columns, two spaces apart; `right` marks the columns aligned right (numbers). */
function table(rows: readonly string[][], right: readonly boolean[]): string[] {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 && !right[c] ? cell : right[c] ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join('  '));
}

const count = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;

/** A status as a header line, a table of workers and a table of shards. */
export function formatClusterStatus(s: ClusterStatus): string {
  const live = new Set(s.workers.map((w) => w.worker));
  const lines = [
    `instance ${s.instance} at ${new Date(s.at).toISOString()} (Redis time): ${count(s.workers.length, 'worker')} live, ` +
      `${count(s.shards.length, 'shard')} active of ${s.shardCount}, ${s.unowned.length} unowned${s.unowned.length > 0 ? ` (${shardRanges(s.unowned)})` : ''}`,
    '',
  ];
  if (s.workers.length === 0) lines.push('no live workers');
  else {
    const rows = [['WORKER', 'HEARTBEAT', 'SHARDS', 'LIST'], ...s.workers.map((w) => [w.worker, humanMs(w.heartbeatAgeMs), String(w.shards.length), shardRanges(w.shards)])];
    lines.push(...table(rows, [false, true, true, false]));
  }
  lines.push('');
  if (s.shards.length === 0) lines.push(`no shard streams under keel:${s.instance}: (shards 0-${s.shardCount - 1})`);
  else {
    const rows = [
      ['SHARD', 'OWNER', 'EPOCH', 'LEASE TTL', 'INPUT', 'LAG', 'PENDING', 'INPUT AGE', 'OUTPUT', 'OUTPUT AGE'],
      ...s.shards.map((sh) => [
        String(sh.shard),
        sh.owner === null ? '(unowned)' : live.has(sh.owner) ? sh.owner : `${sh.owner} (no heartbeat)`,
        sh.epoch === null ? '-' : String(sh.epoch),
        humanMs(sh.leaseTtlMs),
        String(sh.inputLength),
        sh.lag === null ? '-' : String(sh.lag),
        String(sh.pending),
        humanMs(sh.lastInputAgeMs),
        String(sh.outputLength),
        humanMs(sh.lastOutputAgeMs),
      ]),
    ];
    lines.push(...table(rows, [true, false, true, true, true, true, true, true, true, true]));
  }
  return `${lines.join('\n')}\n`;
}
