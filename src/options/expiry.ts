/**
 * Time to expiry. An option's clock runs to its expiry moment: the close
 * of the expiry date, New York time (16:00, or 13:00 on NYSE's early-close
 * days: calendar.ts; the expiry-day cut-off is not verified against IB, so
 * a time can be given), in calendar time, in years of 365 days, as IB
 * reports its greeks (theta per calendar day).
 */
import { TRADING_TIME_ZONE } from '../trading/trading-day.js';
import { closeOf } from './calendar.js';

export const MS_PER_YEAR = 365 * 86_400_000;

/** An expiry that cannot be read. */
export class ExpiryError extends Error {}

// Made on first use: a formatter with a time zone costs ~30 ms to build.
let wallParts: Intl.DateTimeFormat | undefined;

/** New York's offset from UTC at `ms` (epoch ms), in ms: -4 h in summer, -5 h in winter. */
function newYorkOffsetMs(ms: number): number {
  wallParts ??= new Intl.DateTimeFormat('en-US', {
    timeZone: TRADING_TIME_ZONE,
    hourCycle: 'h23',
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
    hour: 'numeric',
    minute: 'numeric',
    second: 'numeric',
  });
  const at: Record<string, number> = {};
  for (const part of wallParts.formatToParts(ms)) if (part.type !== 'literal') at[part.type] = Number(part.value);
  const wall = Date.UTC(at.year!, at.month! - 1, at.day!, at.hour!, at.minute!, at.second!);
  return wall - (ms - (((ms % 1000) + 1000) % 1000));
}

/** The epoch ms of a New York wall-clock time (daylight saving time included). */
export function newYorkTimeMs(year: number, month: number, day: number, hour = 0, minute = 0, second = 0, ms = 0): number {
  const asUtc = Date.UTC(year, month - 1, day, hour, minute, second, ms);
  // Two passes: the offset at the first guess may be on the other side of a DST change.
  const guess = asUtc - newYorkOffsetMs(asUtc);
  return asUtc - newYorkOffsetMs(guess);
}

/**
 * The expiry moment of `text`, `YYYYMMDD` (that day's close, New York) or
 * `YYYYMMDDTHH:MM` (that New York time), as epoch ms.
 */
export function expiryMs(text: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})(?:[T ](\d{2}):(\d{2}))?$/.exec(text.trim());
  if (!m) throw new ExpiryError(`expiry must be YYYYMMDD or YYYYMMDDTHH:MM (New York time), got '${text}'`);
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const [hour, minute] = m[4] === undefined ? closeOf(`${m[1]}${m[2]}${m[3]}`) : [Number(m[4]), Number(m[5])];
  const probe = new Date(Date.UTC(year, month - 1, day));
  if (probe.getUTCFullYear() !== year || probe.getUTCMonth() !== month - 1 || probe.getUTCDate() !== day) {
    throw new ExpiryError(`expiry '${text}' is not a date`);
  }
  if (hour > 23 || minute > 59) throw new ExpiryError(`expiry '${text}' has no such time of day`);
  return newYorkTimeMs(year, month, day, hour, minute);
}

/** Years (of 365 days) from `nowMs` to `expiryAtMs`; negative once expired. */
export function yearsToExpiry(expiryAtMs: number, nowMs: number): number {
  return (expiryAtMs - nowMs) / MS_PER_YEAR;
}
