/**
 * The `clock` section shared by keel's config and the simulator's: market
 * time that runs `speed` times as fast as real time from an anchor
 * (clock.ts, marketClock), so a test or a soak can cross an expiry in
 * seconds. Both instants are required: a process that anchored itself at its
 * own start would disagree with its peer, and would go back in market time
 * (reusing journal times and order refs) when restarted.
 *
 *   clock:
 *     speed: 600                              # market ms per real ms (default 1)
 *     marketStart: 2026-01-05T09:30:00-05:00  # what the market reads...
 *     realStart: 2026-12-03T16:00:00Z         # ...at this real instant
 *
 * No section: the system clock, market time = real time.
 */
import { z } from 'zod';
import { marketClock, systemClock, type Clock, type MarketAnchor } from '../clock.js';

/** ISO 8601 with a zone (Z or an offset): a bare local time would read differently on another machine. */
const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/i;

const instant = z
  .string({ error: 'expected an ISO 8601 time with Z or an offset, like 2026-01-05T09:30:00-05:00' })
  .transform((text, ctx) => {
    const ms = ISO_INSTANT.test(text.trim()) ? Date.parse(text.trim()) : NaN;
    if (Number.isNaN(ms)) {
      ctx.addIssue({ code: 'custom', message: 'expected an ISO 8601 time with Z or an offset, like 2026-01-05T09:30:00-05:00', input: text });
      return z.NEVER;
    }
    return ms;
  });

export const clockSettings = z
  .object({
    /** Market milliseconds per real millisecond. */
    speed: z.number({ error: 'expected a number above 0 (market time per real time)' }).positive('expected a number above 0 (market time per real time)').max(1e6).default(1),
    /** What the market's clock reads at `realStart`. */
    marketStart: instant,
    /** The real instant the anchor is taken at. */
    realStart: instant,
  })
  .strict() satisfies z.ZodType<MarketAnchor>;

export type ClockSettings = z.output<typeof clockSettings>;

/** The clock a config asks for: the system clock without a `clock` section. */
export function clockFrom(settings: ClockSettings | undefined): Clock {
  return settings === undefined ? systemClock : marketClock(settings);
}

/** The settings as a sentence for the start-up log. */
export function describeClock(settings: ClockSettings): string {
  const iso = (ms: number) => new Date(ms).toISOString();
  return `market clock: ${iso(settings.marketStart)} at ${iso(settings.realStart)} real time, running ${settings.speed}× real time`;
}
