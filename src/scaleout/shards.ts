/**
 * Instrument shards: the unit a shard worker owns (see SCALEOUT-NOTES.md).
 *
 * The shard count is fixed for a deployment (default 128): an instrument's
 * shard is `fnv1a32(utf8(symbol)) mod count`, FNV-1a 32-bit (offset basis
 * 0x811c9dc5, prime 0x01000193) over the symbol's UTF-8 bytes. It depends on
 * nothing but the symbol and the count, so every process and every version
 * of keel agrees on it; changing the count moves most instruments, which is
 * a migration, never a restart.
 *
 * Keys of shard 7 of 128 under instance `paper`:
 *
 *   keel:paper:md:{s007}      stream: the shard's market data, written by the data node
 *   keel:paper:out:{s007}     stream: the shard worker's outputs
 *   keel:paper:lease:{s007}   string: `<worker>#<epoch>`, the current owner, with a TTL
 *   keel:paper:epoch:{s007}   counter: the fencing epoch, raised on every acquisition
 *   keel:paper:ckpt:{s007}    hash: the shard worker's checkpoint (field -> msgpack)
 *   keel:paper:seq:{s007}     string: the last tick whose output is committed
 *
 * and of the whole instance (one key, so one slot):
 *
 *   keel:paper:workers        sorted set: live shard workers by last heartbeat (membership.ts)
 *
 * The `{sNNN}` hash tag (digits as many as the highest shard needs) is the
 * only brace pair in a key, so in a Redis Cluster all of a shard's keys live
 * in one slot and one Lua script may touch them together.
 */

export const DEFAULT_SHARD_COUNT = 128;

const FNV_OFFSET_BASIS = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** FNV-1a, 32 bits, of the string's UTF-8 bytes, as an unsigned integer. */
export function fnv1a32(text: string): number {
  let hash = FNV_OFFSET_BASIS;
  for (const byte of Buffer.from(text, 'utf8')) hash = Math.imul(hash ^ byte, FNV_PRIME);
  return hash >>> 0;
}

function checkCount(shardCount: number): void {
  if (!Number.isInteger(shardCount) || shardCount < 1) throw new Error(`shard count must be a positive integer, got ${shardCount}`);
}

/** The shard an instrument belongs to, in [0, shardCount). */
export function shardOf(symbol: string, shardCount = DEFAULT_SHARD_COUNT): number {
  checkCount(shardCount);
  if (symbol === '') throw new Error('shardOf: the symbol is empty');
  return fnv1a32(symbol) % shardCount;
}

function checkInstance(instance: string, what: string): void {
  // A brace in the instance would make Redis Cluster hash on the wrong part of the key.
  if (instance === '' || /[{}]/.test(instance)) throw new Error(`${what}: instance must be non-empty and without braces, got '${instance}'`);
}

/** The instance's membership set of live shard workers. */
export function workersKey(instance: string): string {
  checkInstance(instance, 'workers key');
  return `keel:${instance}:workers`;
}

export interface ShardKeys {
  readonly shard: number;
  /** `{sNNN}`: the Cluster hash tag every key below carries. */
  readonly tag: string;
  readonly input: string;
  readonly output: string;
  readonly lease: string;
  readonly epoch: string;
  readonly checkpoint: string;
  readonly committed: string;
}

/** The Redis keys of one shard of an instance (its config `instance`). */
export function shardKeys(instance: string, shard: number, shardCount = DEFAULT_SHARD_COUNT): ShardKeys {
  checkCount(shardCount);
  checkInstance(instance, 'shard keys');
  if (!Number.isInteger(shard) || shard < 0 || shard >= shardCount) throw new Error(`shard keys: shard must be an integer in [0, ${shardCount}), got ${shard}`);
  const tag = `{s${String(shard).padStart(String(shardCount - 1).length, '0')}}`;
  const base = `keel:${instance}`;
  return {
    shard,
    tag,
    input: `${base}:md:${tag}`,
    output: `${base}:out:${tag}`,
    lease: `${base}:lease:${tag}`,
    epoch: `${base}:epoch:${tag}`,
    checkpoint: `${base}:ckpt:${tag}`,
    committed: `${base}:seq:${tag}`,
  };
}
