/**
 * feature_health: judges every feature vector the features publish on their
 * fastest clock, sweeps at 10 Hz for data that stopped coming (and, from the
 * gaps between its own checks, for event-loop stalls that make old data look
 * new), and listens for feeds subscriptions found silent. What must stop
 * trading is published (retained) on `feature.health` the moment it changes,
 * in the same call stack as the reading that showed it; the risk gate acts
 * on it there.
 *
 * Where an option chain is published (`options.chain`), it judges that too
 * (src/options/chain-health.ts: no chain, stale, a crossed quote, a mid
 * without IV) on every publication and every sweep, and publishes what
 * stops option trading on `options.health`.
 */
import { z } from 'zod';
import { FeatureHealth, DEFAULT_THRESHOLDS, STATUSES, HEALTHY } from '../market/feature-health.js';
import type { FeatureFrame } from '../market/features.js';
import { serviceLogic } from '../supervision/service.js';
import { ChainHealth } from '../options/chain-health.js';
import { FEATURE_HEALTH_TOPIC, FEATURES_TOPIC, FEED_SILENT_TOPIC, OPTIONS_CHAIN_TOPIC, OPTIONS_HEALTH_TOPIC } from '../topics.js';

const rate = z.number().min(0).max(1);
const points = z.number().min(0).max(100);
const t = DEFAULT_THRESHOLDS;

export const featureHealthSettings = z
  .object({
    /** Features no model uses: scored and reported, never a reason to halt. */
    advisory: z.array(z.string()).default([]),
    /** Market data older than this halts trading. */
    maxDataAgeMs: z.number().int().positive().default(5_000),
    sweepMs: z.number().int().positive().default(100),
    /** The option chain, where one is published: quotes older than this stop option trading. */
    options: z
      .object({
        maxQuoteAgeMs: z.number().int().positive().default(5_000),
        /** A quoted mid without an implied volatility for this long stops option trading (a quote lagging a move for a moment does not). */
        noIvGraceMs: z.number().int().min(0).default(2_000),
      })
      .strict()
      .prefault({}),
    thresholds: z
      .object({
        window: z.number().int().min(1).max(10_000).default(t.window),
        zeroRateWarning: rate.default(t.zeroRateWarning),
        zeroRateCritical: rate.default(t.zeroRateCritical),
        maxConsecutiveZeros: z.number().int().min(0).default(t.maxConsecutiveZeros),
        maxNanRate: rate.default(t.maxNanRate),
        penalties: z
          .object({
            zeroRateWarning: points.default(t.penalties.zeroRateWarning),
            zeroRateCritical: points.default(t.penalties.zeroRateCritical),
            consecutiveZeros: points.default(t.penalties.consecutiveZeros),
            nanRate: points.default(t.penalties.nanRate),
          })
          .strict()
          .default(t.penalties),
        healthyAt: points.default(t.healthyAt),
        warningAt: points.default(t.warningAt),
      })
      .strict()
      .default(t),
  })
  .strict();

export type FeatureHealthSettings = z.infer<typeof featureHealthSettings>;

export const featureHealthLogic = serviceLogic<FeatureHealthSettings>(async (ctx) => {
  const { bus, clock, log, settings } = ctx;
  const engine = ctx.need('featureEngine');
  const { symbols, booked } = ctx.need('instruments');
  const health = new FeatureHealth(symbols, engine.schema, { ...settings, booked });
  let published: ReadonlyMap<string, string> | undefined;
  const since = clock.now();

  const publish = () => {
    if (health.problems === published) return;
    const before = published ?? new Map<string, string>();
    published = health.problems;
    for (const [key, reason] of health.problems) if (!before.has(key)) log.error({ condition: key }, reason);
    for (const key of before.keys()) if (!health.problems.has(key)) log.info({ condition: key }, `cleared: ${key}`);
    bus.retain(FEATURE_HEALTH_TOPIC, health);
  };

  const onFrame = (frame: FeatureFrame) => {
    if (!frame.base) return;
    health.observe(frame.values, frame.warm, frame.at);
    for (let n = 0; n < health.changedCount; n++) {
      const k = health.changed[n]!;
      const status = health.status[k]!;
      const line = { feature: health.nameOf(k), status: STATUSES[status], score: health.scores[k] };
      const message = status === HEALTHY ? `${health.nameOf(k)} is HEALTHY again` : `${health.nameOf(k)} is ${STATUSES[status]} (${health.explain(k)})`;
      // No model reads an advisory feature, nor trades an instrument without a book: detail, not news.
      if (health.isAdvisory(k)) log.debug(line, message);
      else if (status === HEALTHY) log.info(line, message);
      else log.warn(line, message);
    }
    publish();
  };

  const chain = new ChainHealth(settings.options);
  let chainPublished: ReadonlyMap<string, string> | undefined;
  const judgeChain = () => {
    const problems = chain.judge(bus.latest(OPTIONS_CHAIN_TOPIC), clock.now());
    if (problems === chainPublished) return;
    const before = chainPublished ?? new Map<string, string>();
    chainPublished = problems;
    for (const [key, reason] of problems) if (!before.has(key)) log.error({ condition: key }, reason);
    for (const key of before.keys()) if (!problems.has(key)) log.info({ condition: key }, `cleared: ${key}`);
    bus.retain(OPTIONS_HEALTH_TOPIC, chain);
  };

  let timer: unknown;
  const sweep = () => {
    // Looked up each time: a restarted subscriptions provides a new one.
    health.sweep(engine.lastDataAt, since, clock.now(), ctx.services.current('instruments')?.depthAskedAt);
    publish();
    judgeChain();
    timer = clock.setTimeout(sweep, settings.sweepMs);
  };
  const unsubscribe = [
    bus.subscribe(FEATURES_TOPIC, onFrame),
    bus.subscribe(FEED_SILENT_TOPIC, ({ symbol, kind, silentForMs }) => {
      health.feedSilent(symbol, clock.now(), { kind, silentForMs, wallAt: clock.wallNow() });
      publish();
    }),
    bus.subscribe(OPTIONS_CHAIN_TOPIC, judgeChain),
  ];
  // Swept and retained from the start: a gate that (re)starts reads the current set before the first frame, and stalls are measured from here.
  sweep();
  log.info({ advisory: settings.advisory, maxDataAgeMs: settings.maxDataAgeMs }, 'feature health watching');
  return {
    stop() {
      clock.clearTimeout(timer);
      for (const u of unsubscribe) u();
    },
  };
});
