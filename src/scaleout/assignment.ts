/**
 * Which worker should own which shard, from nothing but the live worker ids
 * and the shard count, so every worker computes the same answer on its own.
 *
 * Rendezvous (HRW) hashing with bounded loads: every (worker, shard) pair
 * gets a score; pairs are taken best score first, and a shard goes to the
 * worker of its best pair that still has room. Each worker has room for
 * floor(shards / workers); the remainder goes in a second pass the same
 * way, at most one extra shard per worker, so every share is within one
 * shard of even. Plain HRW moves only the shards of a worker that leaves
 * (or that a joiner scores best), but its shares vary by several shards;
 * the bound costs a few extra moves (measured in assignment.test.ts).
 */
import { fnv1a32 } from './shards.js';

/** murmur3's 32-bit finalizer: FNV-1a alone barely mixes the last characters, which are the shard number here. */
function mix(hash: number): number {
  hash = Math.imul(hash ^ (hash >>> 16), 0x85ebca6b);
  hash = Math.imul(hash ^ (hash >>> 13), 0xc2b2ae35);
  return (hash ^ (hash >>> 16)) >>> 0;
}

interface Pair {
  readonly worker: number;
  readonly shard: number;
  readonly score: number;
}

/** Every worker's share, worker -> its shards ascending; the ids are deduplicated and their order does not matter. */
export function assignShards(workers: readonly string[], shardCount: number): Map<string, number[]> {
  if (!Number.isInteger(shardCount) || shardCount < 1) throw new Error(`shard count must be a positive integer, got ${shardCount}`);
  const ids = [...new Set(workers)].sort();
  const shares = new Map(ids.map((id) => [id, [] as number[]]));
  if (ids.length === 0) return shares;
  const pairs: Pair[] = [];
  for (let worker = 0; worker < ids.length; worker++) {
    for (let shard = 0; shard < shardCount; shard++) pairs.push({ worker, shard, score: mix(fnv1a32(`${ids[worker]}/${shard}`)) });
  }
  // Ties (rare) fall to the lower worker, then the lower shard: still the same answer everywhere.
  pairs.sort((a, b) => b.score - a.score || a.worker - b.worker || a.shard - b.shard);

  const owner = new Array<number>(shardCount).fill(-1);
  const held = new Array<number>(ids.length).fill(0);
  const place = (room: number) => {
    for (const { worker, shard } of pairs) {
      if (owner[shard] === -1 && held[worker]! < room) {
        owner[shard] = worker;
        held[worker]!++;
      }
    }
  };
  const even = Math.floor(shardCount / ids.length);
  place(even);
  place(even + 1);
  for (let shard = 0; shard < shardCount; shard++) shares.get(ids[owner[shard]!]!)!.push(shard);
  return shares;
}

/** One worker's share (empty if it is not among the live workers). */
export function shareOf(worker: string, workers: readonly string[], shardCount: number): number[] {
  return assignShards(workers, shardCount).get(worker) ?? [];
}
