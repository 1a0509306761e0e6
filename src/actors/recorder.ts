/**
 * recorder: writes what the books and the features received (`depth`,
 * `trades`, `depth.reset`), and what an option chain was priced from
 * (`options.listing`, `options.input`), to a recording file for `keel
 * replay`, one new file per start so a restart never overwrites what was
 * recorded. A chain already streaming when it starts is recorded from
 * then on: its listing at once, its inputs as they come. Rows are
 * copied into a typed-array chunk as batches arrive; full chunks, and what
 * is buffered every `flushMs`, are written behind the data plane's back.
 */
import { join } from 'node:path';
import { z } from 'zod';
import { makeDirectory } from '../files.js';
import type { DepthBatch, DepthReset } from '../ib/depth-feed.js';
import type { TradeBatch } from '../ib/trade-feed.js';
import type { ChainInputBatch, ChainListing } from '../options/chain-input.js';
import { DEPTH_ROW, RECORDING_FORMAT, RECORDING_VERSION, RecordingWriter, RESET_ROW, TRADE_ROW } from '../replay/recording.js';
import { pathFailure } from '../supervision/permanent.js';
import { serviceLogic } from '../supervision/service.js';
import { DEPTH_RESET_TOPIC, DEPTH_TOPIC, OPTIONS_INPUT_TOPIC, OPTIONS_LISTING_TOPIC, TRADES_TOPIC } from '../topics.js';

export const recorderSettings = z
  .object({
    /** Where recordings go: `<instance>-<start time>.keelrec`. */
    dir: z.string().min(1).default('var/recordings'),
    /** Rows per chunk: a full chunk is written at once. */
    chunkRows: z.number().int().min(64).max(65_536).default(8_192),
    /** What is buffered is written at least this often, so a crash loses at most this much. */
    flushMs: z.number().int().positive().default(1_000),
  })
  .strict();

export type RecorderSettings = z.infer<typeof recorderSettings>;

export const recorderLogic = serviceLogic<RecorderSettings>(async (ctx) => {
  const { bus, clock, log, settings } = ctx;
  const { symbols: instruments, booked } = ctx.need('instruments');
  const engine = ctx.need('featureEngine');
  const { instance } = ctx;
  // Not a recursive mkdir (it never returns under /proc); a directory that cannot be made is permanent.
  await makeDirectory(settings.dir).catch((error: unknown) => {
    throw pathFailure(error, { doing: `cannot create the recordings directory ${settings.dir}`, setting: `components.${ctx.id}.settings.dir`, want: 'a directory keel can create and write' });
  });
  const wallAt = clock.wallNow();
  const path = join(settings.dir, `${instance}-${new Date(wallAt).toISOString().replace(/[:.]/g, '-')}.keelrec`);
  const writer = await RecordingWriter.create(
    path,
    {
      format: RECORDING_FORMAT,
      version: RECORDING_VERSION,
      instruments,
      booked,
      featureSchema: engine.schema,
      wallAt,
      monotonicAt: clock.now(),
      source: `keel ${instance}`,
    },
    settings.chunkRows,
    (err) => ctx.fail(new Error(`recording to ${path} failed: ${err.message}`)),
  );

  const onDepth = (b: DepthBatch) => {
    for (let i = 0; i < b.count; i++) writer.add(DEPTH_ROW, b.instrument[i]!, b.position[i]!, b.operation[i]!, b.side[i]!, b.smart[i]!, b.price[i]!, b.size[i]!, b.receivedAt[i]!);
  };
  const onTrades = (b: TradeBatch) => {
    for (let i = 0; i < b.count; i++) writer.add(TRADE_ROW, b.instrument[i]!, 0, 0, 0, 0, b.price[i]!, b.size[i]!, b.receivedAt[i]!);
  };
  const onReset = ({ instrument }: DepthReset) => writer.add(RESET_ROW, instrument, 0, 0, 0, 0, NaN, NaN, clock.now());
  // A chain's rows name its underlying by its index among the instruments (the chain's underlying is one of them).
  const underlyings = new Map(instruments.map((symbol, i) => [symbol, i]));
  const onListing = (listing: ChainListing) => {
    if (underlyings.has(listing.underlying)) writer.addListing({ listing, at: clock.now() });
  };
  const onInputs = (b: ChainInputBatch) => {
    const underlying = underlyings.get(b.underlying);
    if (underlying === undefined) return;
    for (let i = 0; i < b.count; i++) writer.addOption(underlying, b.conId[i]!, b.field[i]!, b.value[i]!, b.at[i]!);
  };
  const listed = bus.latest(OPTIONS_LISTING_TOPIC);
  if (listed) onListing(listed);
  const unsubscribe = [
    bus.subscribe(DEPTH_TOPIC, onDepth),
    bus.subscribe(TRADES_TOPIC, onTrades),
    bus.subscribe(DEPTH_RESET_TOPIC, onReset),
    bus.subscribe(OPTIONS_LISTING_TOPIC, onListing),
    bus.subscribe(OPTIONS_INPUT_TOPIC, onInputs),
  ];
  const tick = () => {
    writer.flush();
    timer = clock.setTimeout(tick, settings.flushMs);
  };
  let timer = clock.setTimeout(tick, settings.flushMs);
  log.info({ path, instruments: instruments.length }, `recording to ${path}`);

  return {
    async stop() {
      clock.clearTimeout(timer);
      for (const u of unsubscribe) u();
      await writer.close();
      log.info({ path, rows: writer.rows, bytes: writer.bytes }, `recorded ${writer.rows} rows (${(writer.bytes / 2 ** 20).toFixed(1)} MB) to ${path}`);
    },
  };
});
