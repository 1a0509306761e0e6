/**
 * shard_publisher: the data node's side of the scale-out. Every book batch,
 * print, level-1 quote and book reset of the universe goes onto its
 * shard's tape (src/scaleout/market-tape.ts), and at every tick each shard
 * with an instrument gets one entry on its input stream (XADD, trimmed
 * MAXLEN ~), read by whichever shard worker holds the shard.
 *
 * Redis unreachable: the ticks it misses are not kept (they would arrive
 * late and out of order); the shards' outputs then stop, and the trading
 * node halts on their age. Logged once per outage.
 */
import { z } from 'zod';
import { serviceLogic } from '../supervision/service.js';
import { closeRedis, connectRedis, scaleoutSettings } from '../scaleout/connect.js';
import { ENTRY_FIELD } from '../scaleout/fenced.js';
import { TapeWriter } from '../scaleout/market-tape.js';
import { shardKeys } from '../scaleout/shards.js';
import { BOOK_TOPIC, DEPTH_RESET_TOPIC, QUOTE_TOPS_TOPIC, TRADES_TOPIC } from '../topics.js';

export const shardPublisherSettings = z
  .object({
    ...scaleoutSettings,
    /** One entry per shard this often: the shard workers' first sampling clock must equal it. */
    tickMs: z.number().int().positive().default(100),
    /** Entries kept (approximately) per input stream: how long a shard may go unowned without losing data (20,000 ticks of 100 ms: 33 min). */
    maxLen: z.number().int().positive().default(20_000),
  })
  .strict();

export type ShardPublisherSettings = z.infer<typeof shardPublisherSettings>;

export const shardPublisherLogic = serviceLogic<ShardPublisherSettings>(async (ctx) => {
  const { bus, clock, log, settings, instance } = ctx;
  const { symbols, booked, depthAskedAt } = ctx.need('instruments');
  ctx.need('books');
  const writer = new TapeWriter(symbols, booked, settings.shards, settings.tickMs);
  const keys = writer.shards.map((shard) => shardKeys(instance, shard, settings.shards).input);
  let down: string | undefined;
  const client = await connectRedis(settings.redis, `keel:${instance}:data`, (error) => {
    if (down === undefined) log.error({ redis: settings.redis.url }, `Redis unreachable: ${error.message}; ticks are dropped until it is back`);
    down = error.message;
  });
  // Tape time: this process's monotonic clock shifted to the epoch once, so it never steps back while we run.
  const toTape = clock.wallNow() - clock.now();
  const asked = new Float64Array(symbols.length);
  let inFlight = 0;
  let ticks = 0;
  let late = 0;

  const tick = () => {
    timer = clock.setTimeout(tick, settings.tickMs);
    // One tick in flight at a time: a Cluster client may retry one command (a redirection) behind a newer
    // one, and a stream must never hold tick k after k+1. The events wait in the drafts for the next tick.
    if (inFlight > 0) {
      late++;
      return;
    }
    for (let i = 0; i < symbols.length; i++) asked[i] = (depthAskedAt?.[i] ?? NaN) + toTape;
    const { entries } = writer.tick(clock.now() + toTape, asked);
    inFlight++;
    Promise.all(entries.map(({ shard, body }, n) => client.xadd(keys[n]!, 'MAXLEN', '~', settings.maxLen, '*', ENTRY_FIELD, body).then(() => shard)))
      .then(() => {
        ticks++;
        if (down !== undefined) log.info({ redis: settings.redis.url }, 'Redis reachable again: ticks published');
        down = undefined;
      })
      .catch((error: Error) => {
        if (down === undefined) log.error({ redis: settings.redis.url }, `tick not published: ${error.message}`);
        down = error.message;
      })
      .finally(() => inFlight--);
  };
  let timer = clock.setTimeout(tick, settings.tickMs);
  const unsubscribe = [
    bus.subscribe(BOOK_TOPIC, (books) => writer.onBook(books, toTape)),
    bus.subscribe(TRADES_TOPIC, (batch) => writer.onTrades(batch, toTape)),
    bus.subscribe(QUOTE_TOPS_TOPIC, (quotes) => writer.onQuotes(quotes, toTape)),
    bus.subscribe(DEPTH_RESET_TOPIC, ({ instrument }) => writer.onReset(instrument)),
  ];
  log.info({ shards: writer.shards.length, of: settings.shards, tickMs: settings.tickMs, redis: settings.redis.url }, `publishing ${symbols.length} instruments to ${writer.shards.length} shard streams`);
  return {
    async stop() {
      clock.clearTimeout(timer);
      for (const u of unsubscribe) u();
      // The last tick's writes finish before the connection goes.
      const deadline = Date.now() + 2_000;
      while (inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      log.info({ ticks, late }, 'shard publisher stopped');
      closeRedis(client);
    },
  };
});
