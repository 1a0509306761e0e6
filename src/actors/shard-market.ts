/**
 * shard_market: a trading node's market data from the data node's shard
 * tapes, not from IB: the books (every touched book's levels, as the data
 * node's books stood) and the prints of its instruments, published on
 * `book` and `trades` and provided as `books` and `instruments`, so the
 * paper trader's book-mode fills and price collar work as in one process
 * while the IB session, and every market-data line, stays the data node's.
 *
 * It tails each shard's input stream (stream-tail.ts: no consumer group, it
 * takes nothing from the workers), starting with the newest entries so the
 * books fill at once. Redis unreachable leaves the books as they were;
 * the shard_reader's conditions halt trading meanwhile.
 */
import { z } from 'zod';
import { closeRedis, connectRedis, scaleoutSettings } from '../scaleout/connect.js';
import { decodeTape, type TapeEntry } from '../scaleout/market-tape.js';
import { shardKeys, shardOf } from '../scaleout/shards.js';
import { StreamTail } from '../scaleout/stream-tail.js';
import { TapeBooks } from '../scaleout/tape-books.js';
import { serviceLogic } from '../supervision/service.js';
import { BOOK_TOPIC, TRADES_TOPIC } from '../topics.js';

export const shardMarketSettings = z
  .object({
    ...scaleoutSettings,
    /** The instruments this node trades: each must be in the data node's universe. */
    instruments: z.array(z.string().min(1)).min(1),
    /** Levels kept per side (the data node's books may keep more: the best ones are kept). */
    rows: z.number().int().min(1).max(100).default(10),
    /** Entries read back at start, per shard, to fill the books (ticks of 100 ms). */
    backfill: z.number().int().min(1).default(50),
    pollMs: z.number().int().positive().default(20),
  })
  .strict();

export type ShardMarketSettings = z.infer<typeof shardMarketSettings>;

export const shardMarketLogic = serviceLogic<ShardMarketSettings>(async (ctx) => {
  const { bus, clock, log, settings, instance } = ctx;
  const symbols = settings.instruments;
  const indexOf = new Map(symbols.map((s, i) => [s, i]));
  const shards = [...new Set(symbols.map((s) => shardOf(s, settings.shards)))].sort((a, b) => a - b);
  const keys = shards.map((shard) => shardKeys(instance, shard, settings.shards).input);
  const tape = new TapeBooks(symbols.length, settings.rows);
  const books = tape.books!;
  const client = await connectRedis(settings.redis, `keel:${instance}:market`);
  // Per shard, the tape's instrument numbers in ours (the list changes only with the data node's universe).
  const maps = new Map<number, { symbols: readonly string[]; index: Int32Array }>();
  const apply = (entry: TapeEntry) => {
    let map = maps.get(entry.shard);
    if (!map || map.symbols.length !== entry.symbols.length || map.symbols.some((s, i) => s !== entry.symbols[i])) {
      map = { symbols: entry.symbols, index: Int32Array.from(entry.symbols, (s) => indexOf.get(s) ?? -1) };
      maps.set(entry.shard, map);
    }
    const shift = clock.now() - clock.wallNow();
    for (const segment of entry.segments) {
      if (segment.kind === 'book') {
        const books = tape.onBook(segment, map.index, shift);
        if (books) bus.publish(BOOK_TOPIC, books);
      } else if (segment.kind === 'trades') {
        const trades = tape.onTrades(segment, map.index, shift);
        if (trades) bus.publish(TRADES_TOPIC, trades);
      }
    }
  };
  let outage = false;
  const tail = new StreamTail({
    client,
    clock,
    keys,
    pollMs: settings.pollMs,
    onEntry: (_, body) => apply(decodeTape(body)),
    onSkipped: (stream, id, reason) => log.error({ stream, id }, `market entry skipped: ${reason}`),
    onPoll: (failure) => {
      if (failure === undefined && outage) log.info('shard tapes readable again');
      if (failure !== undefined && !outage) log.error({ redis: settings.redis.url }, `shard tapes unreadable: ${failure}`);
      outage = failure !== undefined;
    },
  });
  await tail.start(settings.backfill);
  if (!books.books.some((b) => b.twoSided())) log.warn({ shards: shards.length }, 'no two-sided book on the shard tapes yet: is the data node running?');
  ctx.provide('instruments', { symbols, booked: symbols.map(() => true) });
  ctx.provide('books', books);
  log.info({ instruments: symbols.length, shards: shards.length, redis: settings.redis.url }, `books of ${symbols.length} instruments from ${shards.length} shard tapes`);
  return {
    async stop() {
      await tail.stop();
      closeRedis(client);
    },
  };
});
