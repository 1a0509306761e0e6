/**
 * features: the microstructure features of every instrument, updated from
 * each book batch (`book`), trade batch (`trades`) and read of level-1
 * quotes for the instruments without a book (`quotes.tops`), sampled on the
 * configured clocks into feature frames on `features`, one frame per
 * interval per tick with every instrument's vector and whether it is warm.
 * The engine (latest values, data times) is retained on `features.engine`.
 */
import { z } from 'zod';
import { DEPTH_RESET_TOPIC, requireInstruments } from './subscriptions.js';
import { QUOTE_TOPS_TOPIC, type QuoteBoard } from '../ib/quote-board.js';
import { TRADES_TOPIC, type TradeBatch } from '../ib/trade-feed.js';
import { BOOK_TOPIC, type OrderBooks } from '../market/books.js';
import { DEFAULT_FEATURE_OPTIONS, FeatureEngine, type FeatureSchema } from '../market/features.js';
import { serviceLogic } from '../supervision/service.js';

const ms = z.number().int().positive();

export const featuresSettings = z
  .object({
    /** Sampling clocks for the models, ms; the first is the fastest and the base of the others. */
    samplesMs: z.array(ms).min(1).default([100, 1_000]),
    volHalfLivesMs: z.array(ms).min(1).default([...DEFAULT_FEATURE_OPTIONS.volHalfLivesMs]),
    returnHorizonsMs: z.array(ms).min(1).default([...DEFAULT_FEATURE_OPTIONS.returnHorizonsMs]),
    flowHalfLifeMs: ms.default(DEFAULT_FEATURE_OPTIONS.flowHalfLifeMs),
  })
  .strict()
  .superRefine((s, ctx) => {
    const base = s.samplesMs[0]!;
    s.samplesMs.forEach((v, i) => {
      if (v % base !== 0 || v < base) ctx.addIssue({ code: 'custom', path: ['samplesMs', i], message: `must be a multiple of the first sampling clock (${base} ms)` });
    });
    s.returnHorizonsMs.forEach((v, i) => {
      if (v % base !== 0) ctx.addIssue({ code: 'custom', path: ['returnHorizonsMs', i], message: `must be a multiple of the first sampling clock (${base} ms)` });
    });
  });

export type FeaturesSettings = z.infer<typeof featuresSettings>;

export const FEATURES_TOPIC = 'features';
export const FEATURES_ENGINE_TOPIC = 'features.engine';

/** One sampling of every instrument's features. Reused: read it synchronously. */
export interface FeatureFrame {
  readonly intervalMs: number;
  /** Monotonic and wall-clock time of the sampling. */
  at: number;
  wallAt: number;
  readonly schema: FeatureSchema;
  readonly symbols: readonly string[];
  /** `instrument * schema.features.length + feature`. */
  readonly values: Float64Array;
  /** 1 when the instrument is warm (two-sided, history for every horizon). */
  readonly warm: Uint8Array;
  /** True on the fastest clock: the frames feature health judges. */
  readonly base: boolean;
}

export const featuresLogic = serviceLogic<FeaturesSettings>(async (ctx) => {
  const { bus, clock, log, settings } = ctx;
  const symbols = requireInstruments(ctx);
  if (!bus.latest<OrderBooks>(BOOK_TOPIC)) throw new Error('features needs the order books: is l2_microstructure configured and listed in dependsOn?');
  const baseMs = settings.samplesMs[0]!;
  const engine = new FeatureEngine(symbols.length, { baseMs, ...settings });
  const frames: FeatureFrame[] = settings.samplesMs.map((intervalMs, i) => ({
    intervalMs,
    at: NaN,
    wallAt: NaN,
    schema: engine.schema,
    symbols,
    values: new Float64Array(engine.values.length),
    warm: new Uint8Array(symbols.length),
    base: i === 0,
  }));

  let ticks = 0;
  let next = clock.now() + baseMs;
  const tick = () => {
    const now = clock.now();
    engine.tick(now);
    ticks++;
    for (const frame of frames) {
      if (ticks % (frame.intervalMs / baseMs) !== 0) continue;
      frame.at = now;
      frame.wallAt = clock.wallNow();
      engine.copyTo(frame.values, frame.warm, now);
      bus.publish(FEATURES_TOPIC, frame);
    }
    // On the grid, not drifting: a late tick does not push the next one back.
    next = Math.max(next + baseMs, now + 1);
    timer = clock.setTimeout(tick, next - now);
  };
  let timer = clock.setTimeout(tick, baseMs);
  const unsubscribe = [
    bus.subscribe<OrderBooks>(BOOK_TOPIC, (books) => engine.onBook(books)),
    bus.subscribe<TradeBatch>(TRADES_TOPIC, (batch) => engine.onTrades(batch)),
    bus.subscribe<QuoteBoard>(QUOTE_TOPS_TOPIC, (quotes) => engine.onQuotes(quotes)),
    bus.subscribe<{ instrument: number }>(DEPTH_RESET_TOPIC, ({ instrument }) => engine.reset(instrument)),
  ];
  bus.retain(FEATURES_ENGINE_TOPIC, engine);
  log.info({ schema: `${engine.schema.name} v${engine.schema.version}`, features: engine.schema.features.length, samplesMs: settings.samplesMs }, 'features ready');
  return {
    stop() {
      clock.clearTimeout(timer);
      for (const u of unsubscribe) u();
    },
  };
});
