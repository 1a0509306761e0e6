/**
 * The day's P&L for the daily loss limit: the ledger's net P&L less what it
 * was when the trading day began (its opening P&L), so a position's gains
 * from yesterday do not count against (or for) today.
 *
 * The trading day is the exchange session's date in New York
 * (America/New_York, daylight saving time included): a US stock's session
 * date is the New York calendar date, and the day turns over at midnight
 * there, not at 19:00 or 20:00 as a UTC date would. The instruments' own
 * trading hours are not known to keel yet, so every instrument uses New
 * York.
 *
 * The first reading on a new date begins that day at the net P&L of the
 * moment, and says so (`onNewDay`) so that the caller journals it: a restart
 * later the same day starts from the journaled baseline (`DayRecord`)
 * instead of forgetting the day's losses.
 */

/** Where the trading day's date is taken. */
export const TRADING_TIME_ZONE = 'America/New_York';

// Made on first use: building a formatter with a time zone costs ~30 ms, which every start would pay at import.
let dateParts: Intl.DateTimeFormat | undefined;

const HOUR_MS = 3_600_000;
// New York is a whole number of hours from UTC, so its date turns only at a UTC hour: the
// gate asks on every check, and formatting costs microseconds, so the last hour's answer is kept.
let knownHour = NaN;
let knownDate = '';

/** The trading day `wallMs` (epoch ms) falls in: its New York calendar date, `YYYY-MM-DD`. */
export function sessionDate(wallMs: number): string {
  if (!Number.isFinite(wallMs)) throw new RangeError(`sessionDate: ${wallMs} is not a time`);
  const hour = Math.floor(wallMs / HOUR_MS);
  if (hour !== knownHour) {
    knownDate = formatDate(wallMs);
    knownHour = hour;
  }
  return knownDate;
}

function formatDate(wallMs: number): string {
  let year = '';
  let month = '';
  let day = '';
  dateParts ??= new Intl.DateTimeFormat('en-US', { timeZone: TRADING_TIME_ZONE, year: 'numeric', month: '2-digit', day: '2-digit' });
  for (const part of dateParts.formatToParts(wallMs)) {
    if (part.type === 'year') year = part.value;
    else if (part.type === 'month') month = part.value;
    else if (part.type === 'day') day = part.value;
  }
  return `${year}-${month}-${day}`;
}

/** When a trading day began: its date and the ledger's net P&L at that moment. */
export interface DayBaseline {
  /** `YYYY-MM-DD`, New York. */
  readonly day: string;
  /** The ledger's net P&L (realized + unrealized - fees since the journal began) when the day began. */
  readonly openingPnl: number;
}

export class TradingDay {
  private current: DayBaseline | undefined;

  /** `journaled`: the latest day the journal holds, if any; it counts only if a reading falls on its date. */
  constructor(journaled?: DayBaseline) {
    this.current = journaled;
  }

  /** The day under way (undefined before the first reading, unless one was journaled). */
  get baseline(): DayBaseline | undefined {
    return this.current;
  }

  /**
   * The P&L of the day `wallNow` falls in, given the ledger's net P&L now.
   * A reading on a date other than the baseline's begins that day at
   * `netPnl` and hands the new baseline to `onNewDay` (to be journaled). A
   * net P&L that is not a finite number begins nothing: it is passed on as
   * it is (the gate halts on it) and the next finite reading begins the day.
   */
  pnl(wallNow: number, netPnl: number, onNewDay?: (baseline: DayBaseline) => void): number {
    const today = sessionDate(wallNow);
    if (this.current?.day !== today) {
      if (!Number.isFinite(netPnl)) return netPnl;
      this.current = { day: today, openingPnl: netPnl };
      onNewDay?.(this.current);
    }
    return netPnl - this.current.openingPnl;
  }
}
