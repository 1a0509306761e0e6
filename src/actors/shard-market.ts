/**
 * shard_market: a trading node's market data from the data node's shard
 * tapes, not from IB: the books (every touched book's levels, as the data
 * node's books stood) and the prints of its instruments, published on
 * `book` and `trades` and provided as `books` and `instruments`, so the
 * paper trader's book-mode fills and price collar work as in one process
 * while the IB session, and every market-data line, stays the data node's.
 *
 * It reads each shard's input stream with plain XREAD (no consumer group:
 * it takes nothing from the workers), starting with the newest entries so
 * the books fill at once. Redis unreachable leaves the books as they were;
 * the shard_reader's conditions halt trading meanwhile.
 */
import { z } from 'zod';
import { closeRedis, openRedis, scaleoutSettings, whenReady } from '../scaleout/connect.js';
import { ENTRY_FIELD } from '../scaleout/fenced.js';
import { decodeTape, type TapeEntry } from '../scaleout/market-tape.js';
import { shardKeys, shardOf } from '../scaleout/shards.js';
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

type RawEntries = [Buffer, Buffer[]][];

export const shardMarketLogic = serviceLogic<ShardMarketSettings>(async (ctx) => {
  const { bus, clock, log, settings, instance } = ctx;
  const symbols = settings.instruments;
  const indexOf = new Map(symbols.map((s, i) => [s, i]));
  const shards = [...new Set(symbols.map((s) => shardOf(s, settings.shards)))].sort((a, b) => a - b);
  const keys = shards.map((shard) => shardKeys(instance, shard, settings.shards).input);
  const tape = new TapeBooks(symbols.length, settings.rows);
  const books = tape.books!;
  const client = openRedis(settings.redis, `keel:${instance}:market`);
  client.on('error', () => undefined);
  try {
    await whenReady(client, settings.redis);
  } catch (error) {
    closeRedis(client);
    throw error;
  }
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
  const take = (n: number, entries: RawEntries) => {
    for (const [id, fields] of entries) {
      lastIds[n] = id.toString();
      const at = fields.findIndex((f, i) => i % 2 === 0 && f.toString() === ENTRY_FIELD);
      try {
        if (at < 0) throw new Error('no batch field');
        apply(decodeTape(fields[at + 1]!));
      } catch (error) {
        log.error({ stream: keys[n], id: lastIds[n] }, `market entry skipped: ${(error as Error).message}`);
      }
    }
  };
  const lastIds = keys.map(() => '0-0');
  await Promise.all(
    keys.map(async (key, n) => {
      const newest = (await client.xrevrangeBuffer(key, '+', '-', 'COUNT', settings.backfill)) as unknown as RawEntries;
      take(n, newest.reverse());
    }),
  );
  if (!books.books.some((b) => b.twoSided())) log.warn({ shards: shards.length }, 'no two-sided book on the shard tapes yet: is the data node running?');

  let stopped = false;
  let reading: Promise<void> = Promise.resolve();
  let outage = false;
  const poll = () => {
    if (stopped) return;
    reading = Promise.all(keys.map((key, n) => client.xreadBuffer('COUNT', 1_000, 'STREAMS', key, lastIds[n]!) as Promise<[Buffer, RawEntries][] | null>))
      .then((replies) => {
        replies.forEach((reply, n) => take(n, reply?.[0]?.[1] ?? []));
        if (outage) log.info('shard tapes readable again');
        outage = false;
      })
      .catch((error: Error) => {
        if (!outage) log.error({ redis: settings.redis.url }, `shard tapes unreadable: ${error.message}`);
        outage = true;
      })
      .finally(() => {
        if (!stopped) timer = clock.setTimeout(poll, settings.pollMs);
      });
  };
  let timer = clock.setTimeout(poll, settings.pollMs);
  ctx.provide('instruments', { symbols, booked: symbols.map(() => true) });
  ctx.provide('books', books);
  log.info({ instruments: symbols.length, shards: shards.length, redis: settings.redis.url }, `books of ${symbols.length} instruments from ${shards.length} shard tapes`);
  return {
    async stop() {
      stopped = true;
      clock.clearTimeout(timer);
      await reading;
      closeRedis(client);
    },
  };
});
