/** The fair share of shards per live worker: even within one shard, and few moves when a worker joins or leaves. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assignShards, shareOf } from '../../src/scaleout/assignment.js';

const SHARDS = 128;
const ids = (n: number, prefix = 'worker') => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

/** shard -> owner */
function owners(workers: string[]): Map<number, string> {
  const owner = new Map<number, string>();
  for (const [worker, shards] of assignShards(workers, SHARDS)) for (const shard of shards) owner.set(shard, worker);
  return owner;
}

/** The alternative: contiguous ranges by sorted id. */
function contiguous(workers: string[]): Map<number, string> {
  const sorted = [...workers].sort();
  const owner = new Map<number, string>();
  sorted.forEach((worker, i) => {
    for (let shard = Math.floor((i * SHARDS) / sorted.length); shard < Math.floor(((i + 1) * SHARDS) / sorted.length); shard++) owner.set(shard, worker);
  });
  return owner;
}

function moved(before: Map<number, string>, after: Map<number, string>): number[] {
  return [...before.keys()].filter((shard) => before.get(shard) !== after.get(shard));
}

test('every shard has exactly one owner and every share is within one shard of even, for 1 to 8 workers', () => {
  for (let n = 1; n <= 8; n++) {
    const shares = assignShards(ids(n), SHARDS);
    assert.deepEqual([...shares.keys()], ids(n).sort());
    const all = [...shares.values()].flat().sort((a, b) => a - b);
    assert.deepEqual(all, Array.from({ length: SHARDS }, (_, i) => i), `${n} workers: each shard once`);
    const sizes = [...shares.values()].map((s) => s.length);
    assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `${n} workers: sizes ${sizes.join(',')}`);
    assert.ok(Math.min(...sizes) === Math.floor(SHARDS / n), `${n} workers: sizes ${sizes.join(',')}`);
  }
});

test('the same answer whatever the order of the ids, and nothing for a worker that is not live', () => {
  const workers = ids(5, 'host');
  assert.deepEqual(assignShards([...workers].reverse(), SHARDS), assignShards(workers, SHARDS));
  assert.deepEqual(assignShards([...workers, workers[0]!], SHARDS), assignShards(workers, SHARDS));
  assert.deepEqual(shareOf('host-2', workers, SHARDS), assignShards(workers, SHARDS).get('host-2'));
  assert.deepEqual(shareOf('gone', workers, SHARDS), []);
  assert.deepEqual(assignShards([], SHARDS), new Map());
  assert.deepEqual([...assignShards(['a', 'b'], 1).values()].flat(), [0], 'fewer shards than workers');
  assert.throws(() => assignShards(['a'], 0), /shard count must be a positive integer, got 0/);
});

/**
 * The fewest moves possible are the joiner's share (join) or the leaver's
 * (leave). Measured over 128 shards, join from n to n+1 / leave from n to
 * n-1, moves beyond that minimum:
 *   n        1  2  3  4  5  6  7  8
 *   join     0  2  6  3  2  5  5  7
 *   leave    -  0  1  3  3  4  3  2
 * A contiguous split by sorted id, for comparison, moves 61 to 68 shards
 * on a join, about half (the test prints them).
 */
test('a join or a leave moves the minimum plus a few shards', () => {
  const extra = { join: [] as number[], leave: [] as number[] };
  const contiguousJoin: number[] = [];
  for (let n = 1; n <= 8; n++) {
    const workers = ids(n);
    const before = owners(workers);
    const joined = owners([...workers, 'worker-new']);
    const joinMoves = moved(before, joined);
    const joinerShare = shareOf('worker-new', [...workers, 'worker-new'], SHARDS).length;
    assert.ok(joinMoves.length >= joinerShare);
    extra.join.push(joinMoves.length - joinerShare);
    contiguousJoin.push(moved(contiguous(workers), contiguous([...workers, 'worker-new'])).length);
    if (n > 1) {
      const leaver = workers[0]!;
      const leaveMoves = moved(before, owners(workers.slice(1)));
      const leaverShare = shareOf(leaver, workers, SHARDS).length;
      // Every shard of the leaver moves, the rest only to even the shares out.
      for (const shard of shareOf(leaver, workers, SHARDS)) assert.ok(leaveMoves.includes(shard));
      extra.leave.push(leaveMoves.length - leaverShare);
    }
  }
  console.log(`moves beyond the minimum, 1..8 workers: join ${extra.join.join(' ')}; leave (from 2) ${extra.leave.join(' ')}`);
  console.log(`moves on a join, 1..8 workers, contiguous split: ${contiguousJoin.join(' ')}`);
  assert.deepEqual(extra, { join: [0, 2, 6, 3, 2, 5, 5, 7], leave: [0, 1, 3, 3, 4, 3, 2] });
});
