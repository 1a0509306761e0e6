/**
 * Per-shard leases with fencing. A worker owns a shard while its lease key
 * holds its token; the token is `<worker>#<epoch>`, where the epoch is a
 * per-shard counter raised on every acquisition. Every fenced script
 * (fenced.ts) compares the whole token, so an older holder is refused even
 * when the same worker id acquired the shard again since.
 *
 * The epoch survives the lease's expiry (its key has no TTL). A Redis that
 * lost its data (restarted without persistence, or a replica promoted
 * before it saw the last INCR) starts the epoch again from its clock in
 * milliseconds, so tokens issued before the loss are not issued again.
 */
import { runScript, type LuaScript, type RedisClient } from './scripts.js';
import type { ShardKeys } from './shards.js';

export interface Lease {
  readonly keys: ShardKeys;
  readonly worker: string;
  readonly epoch: number;
  /** The lease key's value while this lease holds: `<worker>#<epoch>`. */
  readonly token: string;
}

const ACQUIRE: LuaScript = {
  name: 'keelLeaseAcquire',
  numberOfKeys: 2,
  lua: `
-- KEYS[1] lease, KEYS[2] epoch; ARGV[1] worker id, ARGV[2] ttl ms.
-- The next epoch; a missing counter (data lost) starts from the server clock.
local epoch = redis.call('GET', KEYS[2])
if epoch then
  epoch = tonumber(epoch) + 1
else
  local now = redis.call('TIME')
  epoch = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
end
local token = ARGV[1] .. '#' .. string.format('%d', epoch)
if not redis.call('SET', KEYS[1], token, 'NX', 'PX', ARGV[2]) then
  return false -- held by someone (maybe us, under an older epoch)
end
redis.call('SET', KEYS[2], string.format('%d', epoch))
return token
`,
};

const RENEW: LuaScript = {
  name: 'keelLeaseRenew',
  numberOfKeys: 1,
  lua: `
-- KEYS[1] lease; ARGV[1] token, ARGV[2] ttl ms. Only the holder extends it.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`,
};

const RELEASE: LuaScript = {
  name: 'keelLeaseRelease',
  numberOfKeys: 1,
  lua: `
-- KEYS[1] lease; ARGV[1] token. Only the holder deletes it.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
`,
};

function checkTtl(ttlMs: number): void {
  if (!Number.isInteger(ttlMs) || ttlMs < 1) throw new Error(`lease ttl must be a positive integer of ms, got ${ttlMs}`);
}

/** Takes the shard's lease for `ttlMs` if nobody holds it; null if somebody does. */
export async function acquireLease(client: RedisClient, keys: ShardKeys, worker: string, ttlMs: number): Promise<Lease | null> {
  if (worker === '') throw new Error(`acquireLease ${keys.lease}: the worker id is empty`);
  checkTtl(ttlMs);
  const token = await runScript(client, ACQUIRE, [keys.lease, keys.epoch], [worker, ttlMs]);
  if (token === null) return null;
  if (typeof token !== 'string') throw new Error(`acquireLease ${keys.lease}: unexpected reply ${String(token)}`);
  return { keys, worker, token, epoch: Number(token.slice(token.lastIndexOf('#') + 1)) };
}

/** Extends the lease to `ttlMs` from now; false if it is no longer ours (expired, or taken). */
export async function renewLease(client: RedisClient, lease: Lease, ttlMs: number): Promise<boolean> {
  checkTtl(ttlMs);
  return (await runScript(client, RENEW, [lease.keys.lease], [lease.token, ttlMs])) === 1;
}

/** Gives the shard up at once (a clean stop); false if it was no longer ours. */
export async function releaseLease(client: RedisClient, lease: Lease): Promise<boolean> {
  return (await runScript(client, RELEASE, [lease.keys.lease], [lease.token])) === 1;
}
