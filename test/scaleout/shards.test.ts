/** Instrument shards: the hash is FNV-1a as published, pinned, and spreads symbols evenly. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Random } from '../../src/random.js';
import { DEFAULT_SHARD_COUNT, fnv1a32, shardKeys, shardOf } from '../../src/scaleout/shards.js';

test('fnv1a32 matches the published FNV-1a 32-bit test vectors', () => {
  assert.equal(fnv1a32(''), 0x811c9dc5);
  assert.equal(fnv1a32('a'), 0xe40c292c);
  assert.equal(fnv1a32('foobar'), 0xbf9cf968);
});

test('an instrument keeps its shard across processes and versions (pinned values)', () => {
  // Changing any of these moves instruments between shards: a migration, not a refactor.
  const pinned = { SPY: 125, QQQ: 114, AAPL: 11, MSFT: 115, 'BRK B': 100, ESZ6: 45 };
  for (const [symbol, shard] of Object.entries(pinned)) assert.equal(shardOf(symbol), shard, symbol);
  assert.equal(shardOf('SPY', 16), fnv1a32('SPY') % 16);
});

test('5,000 symbols spread over 128 shards within the stated tolerance', () => {
  // Ticker-like symbols of 1 to 5 letters from a fixed seed.
  const random = new Random(23);
  const symbols = new Set<string>();
  while (symbols.size < 5_000) {
    let s = '';
    for (let n = 1 + Math.floor(random.next() * 5); n > 0; n--) s += String.fromCharCode(65 + Math.floor(random.next() * 26));
    symbols.add(s);
  }
  const counts = new Array<number>(DEFAULT_SHARD_COUNT).fill(0);
  for (const s of symbols) counts[shardOf(s)]!++;
  const mean = symbols.size / DEFAULT_SHARD_COUNT;
  // Tolerance: every shard within ±50 % of the mean (39 symbols; a uniform hash's extremes
  // over 128 shards sit near ±40 %), and Pearson's chi-square below 182, the 0.999
  // quantile for 127 degrees of freedom: no worse than a uniform random assignment.
  for (const [shard, n] of counts.entries()) assert.ok(n >= 0.5 * mean && n <= 1.5 * mean, `shard ${shard} holds ${n} symbols, mean ${mean.toFixed(1)}`);
  const chiSquare = counts.reduce((sum, n) => sum + (n - mean) ** 2 / mean, 0);
  assert.ok(chiSquare < 182, `chi-square ${chiSquare.toFixed(1)} over 127 degrees of freedom`);
});

test('the keys of a shard share one Cluster hash tag under the instance prefix', () => {
  const keys = shardKeys('paper', 7);
  assert.deepEqual(keys, {
    shard: 7,
    tag: '{s007}',
    input: 'keel:paper:md:{s007}',
    output: 'keel:paper:out:{s007}',
    lease: 'keel:paper:lease:{s007}',
    epoch: 'keel:paper:epoch:{s007}',
    checkpoint: 'keel:paper:ckpt:{s007}',
    committed: 'keel:paper:seq:{s007}',
  });
  assert.equal(shardKeys('paper', 3, 10).tag, '{s3}');
  assert.equal(shardKeys('paper', 127).tag, '{s127}');
});

test('bad shard arguments are refused with what was wrong', () => {
  assert.throws(() => shardKeys('a{b}', 0), /instance must be non-empty and without braces, got 'a\{b\}'/);
  assert.throws(() => shardKeys('', 0), /instance must be non-empty/);
  assert.throws(() => shardKeys('paper', 128), /shard must be an integer in \[0, 128\), got 128/);
  assert.throws(() => shardOf('SPY', 0), /shard count must be a positive integer, got 0/);
  assert.throws(() => shardOf(''), /symbol is empty/);
});
