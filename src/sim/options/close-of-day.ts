/**
 * What the simulated broker does to option positions at a trading day's
 * close, as IB does, without an execution report: only positions and cash
 * change.
 *
 * - On the expiry day, OCC's exercise by exception (options/settlement.ts):
 *   a long option at least $0.01 in the money is exercised, a short one
 *   assigned, anything else expires; physically, 100 shares a contract at
 *   the strike. Long contracts under a contrary instruction (lapse,
 *   exercise.ts) expire instead, in the money or not.
 * - At the close of the trading day before an ex-dividend date, a short
 *   call in the money by more than the dividend is assigned early: its
 *   holder exercises to collect the dividend, which is worth more than the
 *   call's time value left (a rule of thumb; IB's assignments come from
 *   OCC's random allocation, not modelled).
 *
 * Pure: the day, the positions and the underlying's close in, the changes
 * out; and the next close to wait for, 13:00 New York on early-close days.
 */
import type { OptionContract } from '../../journal/records.js';
import { isBusinessDay } from '../../options/calendar.js';
import { expiryMs } from '../../options/expiry.js';
import { centsInTheMoney, settleExpiry } from '../../options/settlement.js';
import { sessionDate } from '../../trading/trading-day.js';

/** A cash dividend of the underlying: who holds it at the close before `exDate` (YYYYMMDD) is paid `amount` a share. */
export interface Dividend {
  readonly exDate: string;
  readonly amount: number;
}

/** An option position: `contracts` signed, negative when short. */
export interface HeldOption {
  readonly symbol: string;
  readonly contracts: number;
  readonly option: OptionContract;
}

/** One position settled: all its `contracts` go, and `shares` of the underlying come (+) or go (−) at the strike. */
export interface CloseOfDayChange {
  readonly symbol: string;
  readonly contracts: number;
  readonly shares: number;
  readonly outcome: 'exercised' | 'assigned' | 'expired' | 'assigned early';
  readonly reason: string;
}

export interface CloseOfDayInput {
  /** The trading day closing, YYYYMMDD. */
  readonly date: string;
  /** Option positions on one underlying. */
  readonly held: readonly HeldOption[];
  /** The underlying's closing price. */
  readonly close: number;
  readonly dividends: readonly Dividend[];
  /** Wall-clock ms of the close. */
  readonly at: number;
  /** Long contracts not to exercise (contrary instructions), by OSI symbol: up to the position lapses. */
  readonly doNotExercise?: ReadonlyMap<string, number>;
}

const MS_PER_DAY = 86_400_000;

function addDays(date: string, days: number): string {
  const ms = Date.UTC(Number(date.slice(0, 4)), Number(date.slice(4, 6)) - 1, Number(date.slice(6, 8))) + days * MS_PER_DAY;
  return new Date(ms).toISOString().slice(0, 10).replaceAll('-', '');
}

/** The trading day before `date`. */
export function previousBusinessDay(date: string): string {
  let day = addDays(date, -1);
  while (!isBusinessDay(day)) day = addDays(day, -1);
  return day;
}

/** The first trading day whose close comes after `wallMs`, and that close (epoch ms). */
export function nextClose(wallMs: number): { readonly date: string; readonly at: number } {
  for (let day = sessionDate(wallMs).replaceAll('-', ''); ; day = addDays(day, 1)) {
    if (!isBusinessDay(day)) continue;
    const at = expiryMs(day);
    if (at > wallMs) return { date: day, at };
  }
}

/** The changes the close of `date` brings: settlement of the day's expiry, then early assignment before an ex-dividend date. */
export function closeOfDay(input: CloseOfDayInput): CloseOfDayChange[] {
  const { date, held, close, at } = input;
  const expiring = held.filter((h) => h.option.expiry === date && h.contracts !== 0);
  const lapsing = (h: HeldOption) => Math.min(input.doNotExercise?.get(h.symbol) ?? 0, Math.max(h.contracts, 0));
  // settleExpiry's instruction covers a whole position: the lapsing part of one is settled on its own.
  const settle = (parts: readonly (readonly [HeldOption, number])[], lapse: boolean) =>
    settleExpiry({
      positions: new Map(parts.map(([h, contracts]) => [h.symbol, contracts])),
      contracts: new Map(parts.map(([h]) => [h.symbol, h.option])),
      expiry: date,
      closes: new Map(parts.map(([h]) => [h.option.underlying, close])),
      ...(lapse ? { doNotExercise: new Set(parts.map(([h]) => h.symbol)) } : {}),
      at,
    });
  const changes: CloseOfDayChange[] = [
    ...settle(expiring.map((h) => [h, h.contracts - lapsing(h)] as const), false),
    ...settle(expiring.filter((h) => lapsing(h) > 0).map((h) => [h, lapsing(h)] as const), true),
  ].map((r) => ({ symbol: r.symbol, contracts: r.contracts, shares: r.shares, outcome: r.outcome, reason: r.reason }));
  const dividend = input.dividends.find((d) => previousBusinessDay(d.exDate) === date);
  if (!dividend) return changes;
  const dividendCents = Math.round(dividend.amount * 100);
  for (const h of held) {
    if (h.option.expiry === date || h.contracts >= 0 || h.option.right !== 'C') continue;
    const itm = centsInTheMoney(h.option, close);
    if (itm <= dividendCents) continue;
    const shares = h.contracts * h.option.multiplier;
    changes.push({
      symbol: h.symbol,
      contracts: h.contracts,
      shares,
      outcome: 'assigned early',
      reason: `${(itm / 100).toFixed(2)} in the money at ${close}, more than the ${dividend.amount} dividend going ex on ${dividend.exDate}: assigned, ${-shares} ${h.option.underlying} sold at ${h.option.strike}`,
    });
  }
  return changes;
}
