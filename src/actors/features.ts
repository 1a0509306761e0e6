/**
 * features: the microstructure features of every instrument, updated from
 * each book batch (`book`), trade batch (`trades`) and read of level-1
 * quotes for the instruments without a book (`quotes.tops`), sampled on the
 * configured clocks into feature frames on `features`, one frame per
 * interval per tick with every instrument's vector and whether it is warm.
 * The engine (latest values, data times) is the `featureEngine` service.
 */
import { z } from 'zod';
import { DEFAULT_FEATURE_OPTIONS, FeatureEngine, featureFrames } from '../market/features.js';
import { serviceLogic } from '../supervision/service.js';
import { BOOK_TOPIC, DEPTH_RESET_TOPIC, FEATURES_TOPIC, QUOTE_TOPS_TOPIC, TRADES_TOPIC } from '../topics.js';

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

export const featuresLogic = serviceLogic<FeaturesSettings>(async (ctx) => {
  const { bus, clock, log, settings } = ctx;
  const { symbols } = ctx.need('instruments');
  ctx.need('books');
  const baseMs = settings.samplesMs[0]!;
  const engine = new FeatureEngine(symbols.length, { baseMs, ...settings });
  const frames = featureFrames(engine, symbols, settings.samplesMs);

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
    bus.subscribe(BOOK_TOPIC, (books) => engine.onBook(books)),
    bus.subscribe(TRADES_TOPIC, (batch) => engine.onTrades(batch)),
    bus.subscribe(QUOTE_TOPS_TOPIC, (quotes) => engine.onQuotes(quotes)),
    bus.subscribe(DEPTH_RESET_TOPIC, ({ instrument }) => engine.reset(instrument)),
  ];
  ctx.provide('featureEngine', engine);
  log.info({ schema: `${engine.schema.name} v${engine.schema.version}`, features: engine.schema.features.length, samplesMs: settings.samplesMs }, 'features ready');
  return {
    stop() {
      clock.clearTimeout(timer);
      for (const u of unsubscribe) u();
    },
  };
});
