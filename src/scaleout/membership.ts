/**
 * The live shard workers: a sorted set, worker id -> the Redis server time
 * (ms) of its last heartbeat. An entry older than the TTL is dead, and is
 * dropped by the next heartbeat of anyone.
 *
 * Why one sorted set rather than a key per worker with a PX TTL: listing
 * per-worker keys takes SCAN, which on a Cluster must visit every master and
 * is not a snapshot; the set is one key (one slot), read in one call. Why
 * the server's clock: every worker, on any machine, is judged by the same
 * clock, so skew between machines cannot make a live worker look dead.
 */
import { runScript, type LuaScript, type RedisClient } from './scripts.js';

const HEARTBEAT: LuaScript = {
  name: 'keelWorkersHeartbeat',
  numberOfKeys: 1,
  lua: `
-- KEYS[1] workers; ARGV[1] worker id, ARGV[2] ttl ms. Returns the live worker ids.
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - ttl)
-- The set vanishes with its last worker.
redis.call('PEXPIRE', KEYS[1], ttl)
return redis.call('ZRANGE', KEYS[1], 0, -1)
`,
};

const LIVE: LuaScript = {
  name: 'keelWorkersLive',
  numberOfKeys: 1,
  lua: `
-- KEYS[1] workers; ARGV[1] ttl ms. Read only: the dead are skipped, not removed.
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. (now - tonumber(ARGV[1])), '+inf')
`,
};

function checkTtl(ttlMs: number): void {
  if (!Number.isInteger(ttlMs) || ttlMs < 1) throw new Error(`membership ttl must be a positive integer of ms, got ${ttlMs}`);
}

function toIds(reply: unknown): string[] {
  return (reply as string[]).map(String).sort();
}

/** Marks `worker` alive now and returns every live worker id, sorted. */
export async function heartbeat(client: RedisClient, key: string, worker: string, ttlMs: number): Promise<string[]> {
  if (worker === '') throw new Error(`heartbeat ${key}: the worker id is empty`);
  checkTtl(ttlMs);
  return toIds(await runScript(client, HEARTBEAT, [key], [worker, ttlMs]));
}

/** The live worker ids, sorted, without heartbeating. */
export async function liveWorkers(client: RedisClient, key: string, ttlMs: number): Promise<string[]> {
  checkTtl(ttlMs);
  return toIds(await runScript(client, LIVE, [key], [ttlMs]));
}

/** Leaves at once (a clean stop), rather than after the TTL. */
export async function leave(client: RedisClient, key: string, worker: string): Promise<void> {
  await client.zrem(key, worker);
}
