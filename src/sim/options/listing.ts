/**
 * The simulator's SPY option listing for one trading day: which expiries
 * exist, which strikes each has, and the contracts' conIds and OSI symbols.
 *
 * Expiries: the next four business days (0–3 DTE; today counts until its
 * 16:00 New York expiry moment), then the Fridays of the next five weeks
 * (a holiday Friday moves to Thursday, as the exchanges do) and the third
 * Fridays of the next three months. Exchange holidays are skipped (the NYSE
 * calendar for 2025–2027 is below; outside it only weekends are).
 *
 * Strikes are real per-expiry lists: $1 near the money, in a band that
 * widens with time to expiry, $5 further out, and for monthlies $10 in the
 * far wings. So the union lists of reqSecDefOptParams name pairs that do not
 * exist, as IB's do.
 *
 * conIds are a function of the contract alone (expiry day, strike, right), so
 * they are stable across days, restarts and seeds.
 */
import { isBusinessDay } from '../../options/calendar.js';
import { expiryMs } from '../../options/expiry.js';
import { sessionDate } from '../../trading/trading-day.js';

export type OptionRight = 'C' | 'P';

/** Shares per SPY option contract. */
export const OPTION_MULTIPLIER = 100;
export type ExpiryKind = 'daily' | 'weekly' | 'monthly';

export interface OptionContract {
  readonly conId: number;
  /** YYYYMMDD. */
  readonly expiry: string;
  /** Epoch ms of the expiry moment: 16:00 New York on the expiry date. */
  readonly expiryMs: number;
  readonly strike: number;
  readonly right: OptionRight;
  /** OSI: root padded to 6, yymmdd, C/P, strike × 1000 in 8 digits. */
  readonly localSymbol: string;
}

export interface ListedExpiry {
  /** YYYYMMDD. */
  readonly date: string;
  readonly expiryMs: number;
  readonly kind: ExpiryKind;
  /** Ascending. */
  readonly strikes: readonly number[];
  /** By strike ascending, the call before the put. */
  readonly contracts: readonly OptionContract[];
}


const MS_PER_DAY = 86_400_000;
const DAILIES = 4;
const WEEKLIES = 5;
const MONTHLIES = 3;
/** conIds: 500,000,000 + (day number mod 5,000) × 40,000 + strike in dimes × 2 + (put ? 1 : 0). */
const CONID_BASE = 500_000_000;
const CONID_DAY_SLOT = 40_000;

/** A calendar date as days since 1970-01-01. */
function dayNumber(date: string): number {
  return Date.UTC(Number(date.slice(0, 4)), Number(date.slice(4, 6)) - 1, Number(date.slice(6, 8))) / MS_PER_DAY;
}

function dateOf(day: number): string {
  return new Date(day * MS_PER_DAY).toISOString().slice(0, 10).replaceAll('-', '');
}

function weekday(day: number): number {
  return new Date(day * MS_PER_DAY).getUTCDay();
}


/** The business day on or before `day` (a holiday Friday's expiry moves to Thursday). */
function onOrBefore(day: number): number {
  while (!isBusinessDay(dateOf(day))) day--;
  return day;
}


/** The third Friday of the month of `day`, as a day number. */
function thirdFriday(year: number, month0: number): number {
  const first = Date.UTC(year, month0, 1) / MS_PER_DAY;
  return first + ((5 - weekday(first) + 7) % 7) + 14;
}

export function osiSymbol(root: string, expiry: string, right: OptionRight, strike: number): string {
  return `${root.padEnd(6, ' ')}${expiry.slice(2)}${right}${String(Math.round(strike * 1000)).padStart(8, '0')}`;
}

export function optionConId(expiry: string, strike: number, right: OptionRight): number {
  return CONID_BASE + (dayNumber(expiry) % 5_000) * CONID_DAY_SLOT + Math.round(strike * 10) * 2 + (right === 'P' ? 1 : 0);
}

/** Multiples of `step` in [low, high]. */
function grid(low: number, high: number, step: number): number[] {
  const out: number[] = [];
  for (let k = Math.ceil(low / step) * step; k <= high + 1e-9; k += step) out.push(Math.round(k * 100) / 100);
  return out;
}

/**
 * The strikes of one expiry around `center` (the underlying's reference
 * price), `days` calendar days out: the $1 band widens like √days, the $5
 * wings reach further on longer expiries.
 */
export function strikesFor(center: number, days: number, kind: ExpiryKind): number[] {
  const root = Math.sqrt(days + 1);
  const oneDown = kind === 'daily' ? 0.08 + 0.015 * root : 0.05 + 0.01 * root;
  const oneUp = kind === 'daily' ? 0.04 + 0.01 * root : 0.03 + 0.006 * root;
  const fiveDown = kind === 'monthly' ? 0.5 : kind === 'weekly' ? 0.6 : 0.72;
  const fiveUp = kind === 'monthly' ? 1.3 : kind === 'weekly' ? 1.22 : 1.15;
  const strikes = new Set<number>([
    ...grid(center * (1 - oneDown), center * (1 + oneUp), 1),
    ...grid(center * fiveDown, center * fiveUp, 5),
    ...(kind === 'monthly' ? grid(center * 0.3, center * 0.5, 10) : []),
  ]);
  return [...strikes].sort((a, b) => a - b);
}

/** The day's listing of `root` options (SPY), strikes around `reference`, as of `nowMs` (epoch ms). */
export class OptionListing {
  /** The New York date the listing is for, YYYY-MM-DD. */
  readonly day: string;
  readonly expiries: readonly ListedExpiry[];
  /** Union lists, as reqSecDefOptParams gives them. */
  readonly allExpiries: readonly string[];
  readonly allStrikes: readonly number[];
  readonly contracts: readonly OptionContract[];
  /** Business days from the listing's day on (YYYYMMDD), a week past the last daily. */
  readonly businessDays: readonly string[];
  private readonly byConId = new Map<number, OptionContract>();
  private readonly byLocalSymbol = new Map<string, OptionContract>();
  private readonly byDate = new Map<string, ListedExpiry>();

  constructor(
    readonly root: string,
    readonly reference: number,
    nowMs: number,
  ) {
    this.day = sessionDate(nowMs);
    const today = dayNumber(this.day.replaceAll('-', ''));
    const dates = new Map<string, ExpiryKind>();
    // Dailies: today while its expiry moment is ahead, then the next business days.
    for (let day = today, n = 0; n < DAILIES; day++) {
      const date = dateOf(day);
      if (!isBusinessDay(date) || (day === today && nowMs >= expiryMs(date))) continue;
      dates.set(date, 'daily');
      n++;
    }
    const lastDaily = dayNumber([...dates.keys()].at(-1)!);
    for (let week = 0, friday = today + ((5 - weekday(today) + 7) % 7); week < WEEKLIES; week++, friday += 7) {
      const day = onOrBefore(friday);
      if (day > lastDaily) dates.set(dateOf(day), 'weekly');
    }
    const year = Number(this.day.slice(0, 4));
    const month0 = Number(this.day.slice(5, 7)) - 1;
    for (let m = 0, added = 0; added < MONTHLIES; m++) {
      const day = onOrBefore(thirdFriday(year, month0 + m));
      if (day <= today) continue;
      added++;
      if (day > lastDaily) dates.set(dateOf(day), 'monthly');
    }
    const center = Math.round(reference);
    this.expiries = [...dates.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([date, kind]) => {
        const at = expiryMs(date);
        const strikes = strikesFor(center, dayNumber(date) - today, kind);
        const contracts = strikes.flatMap((strike) =>
          (['C', 'P'] as const).map((right) => ({
            conId: optionConId(date, strike, right),
            expiry: date,
            expiryMs: at,
            strike,
            right,
            localSymbol: osiSymbol(root, date, right, strike),
          })),
        );
        return { date, expiryMs: at, kind, strikes, contracts };
      });
    this.contracts = this.expiries.flatMap((e) => e.contracts);
    for (const e of this.expiries) this.byDate.set(e.date, e);
    for (const c of this.contracts) {
      this.byConId.set(c.conId, c);
      this.byLocalSymbol.set(c.localSymbol, c);
    }
    this.allExpiries = this.expiries.map((e) => e.date);
    const days: string[] = [];
    for (let day = today; day <= lastDaily + 7; day++) if (isBusinessDay(dateOf(day))) days.push(dateOf(day));
    this.businessDays = days;
    this.allStrikes = [...new Set(this.expiries.flatMap((e) => e.strikes))].sort((a, b) => a - b);
  }

  byId(conId: number): OptionContract | undefined {
    return this.byConId.get(conId);
  }

  bySymbol(localSymbol: string): OptionContract | undefined {
    return this.byLocalSymbol.get(localSymbol);
  }

  expiry(date: string): ListedExpiry | undefined {
    return this.byDate.get(date);
  }

  /**
   * The contracts a request names by expiry (YYYYMMDD, or YYYYMM for the
   * month), strike and right, any of them unset (undefined).
   */
  select(expiry: string | undefined, strike: number | undefined, right: OptionRight | undefined): OptionContract[] {
    const expiries = expiry === undefined ? this.expiries : this.expiries.filter((e) => (expiry.length === 6 ? e.date.startsWith(expiry) : e.date === expiry));
    return expiries.flatMap((e) =>
      e.contracts.filter((c) => (strike === undefined || Math.abs(c.strike - strike) < 1e-6) && (right === undefined || c.right === right)),
    );
  }
}
