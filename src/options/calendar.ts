/**
 * NYSE's calendar for 2025-2027, as the exchange published it: full-day
 * closures, and the days it closes at 13:00 New York (the day after
 * Thanksgiving, Christmas Eve and July 3 when they are trading days). SPY's
 * options expire at the close: 16:00, or 13:00 on those days. Dates outside
 * 2025-2027 are judged by the weekday alone: extend the tables with the
 * exchange's next calendar.
 */

/** NYSE full-day closures on weekdays, YYYYMMDD. */
const HOLIDAYS: ReadonlySet<string> = new Set([
  '20250101', '20250109', '20250120', '20250217', '20250418', '20250526', '20250619', '20250704', '20250901', '20251127', '20251225',
  '20260101', '20260119', '20260216', '20260403', '20260525', '20260619', '20260703', '20260907', '20261126', '20261225',
  '20270101', '20270118', '20270215', '20270326', '20270531', '20270618', '20270705', '20270906', '20271125', '20271224',
]);

/** Days NYSE closes at 13:00 New York, YYYYMMDD. */
const EARLY_CLOSES: ReadonlySet<string> = new Set(['20250703', '20251128', '20251224', '20261127', '20261224', '20271126']);

/** A trading day: a weekday NYSE is open. */
export function isBusinessDay(date: string): boolean {
  const w = new Date(Date.UTC(Number(date.slice(0, 4)), Number(date.slice(4, 6)) - 1, Number(date.slice(6, 8)))).getUTCDay();
  return w !== 0 && w !== 6 && !HOLIDAYS.has(date);
}

/** The close of a trading day, New York time: [hour, minute]. */
export function closeOf(date: string): readonly [number, number] {
  return EARLY_CLOSES.has(date) ? [13, 0] : [16, 0];
}
