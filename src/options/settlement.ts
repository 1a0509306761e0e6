/**
 * What happens to option positions at their expiry, as OCC's exercise by
 * exception has it for SPY (physically settled, 100 shares a contract):
 * at the close of the expiry day a long option at least $0.01 in the money
 * is exercised and a short one assigned; anything else expires worthless.
 * A long position may carry a contrary instruction (do not exercise, given
 * before 16:30 New York time): it then expires. Moneyness is judged in
 * whole cents, so 580.01 against a 580 strike is a cent in the money, not
 * a float's 0.00999.
 *
 * Pure: the positions, their contracts and the underlyings' closing prices
 * in, the settlement records out (records.ts), for the ledger to apply.
 */
import type { OptionContract, OptionSettlementRecord } from '../journal/records.js';
import { expiryMs } from './expiry.js';

export interface SettlementInput {
  /** Option positions: symbol (OSI) -> contracts, signed. */
  readonly positions: ReadonlyMap<string, number>;
  /** Every option by symbol. */
  readonly contracts: ReadonlyMap<string, OptionContract>;
  /** The expiry being settled, YYYYMMDD. */
  readonly expiry: string;
  /** Each underlying's closing price. */
  readonly closes: ReadonlyMap<string, number>;
  /** Long positions not to exercise (a contrary instruction). */
  readonly doNotExercise?: ReadonlySet<string>;
  /** Wall-clock ms of the settlement. */
  readonly at: number;
}

/** How far in the money, in whole cents (negative out of it). */
export function centsInTheMoney(option: OptionContract, close: number): number {
  const cents = Math.round(close * 100) - Math.round(option.strike * 100);
  return option.right === 'C' ? cents : -cents;
}

/** One record per open position of the expiry; an underlying without a closing price is an error, never a guess. */
export function settleExpiry(input: SettlementInput): OptionSettlementRecord[] {
  const records: OptionSettlementRecord[] = [];
  for (const [symbol, contracts] of input.positions) {
    const option = input.contracts.get(symbol);
    if (!option || option.expiry !== input.expiry || contracts === 0) continue;
    const close = input.closes.get(option.underlying);
    if (close === undefined || !(close > 0)) throw new Error(`cannot settle ${symbol}: no closing price for ${option.underlying}`);
    const itm = centsInTheMoney(option, close);
    const long = contracts > 0;
    const base = { type: 'option.settlement' as const, at: input.at, symbol, contracts, underlyingClose: close };
    const money = itm > 0 ? `${(itm / 100).toFixed(2)} in the money` : itm === 0 ? 'at the money' : `${(-itm / 100).toFixed(2)} out of the money`;
    if (itm < 1) {
      records.push({ ...base, outcome: 'expired', shares: 0, reason: `${money} at ${close}: expired worthless` });
    } else if (long && input.doNotExercise?.has(symbol)) {
      records.push({ ...base, outcome: 'expired', shares: 0, reason: `${money} at ${close}, not exercised by instruction: expired` });
    } else {
      // A call delivers shares to its holder, a put takes them: the writer is on the other side.
      const shares = contracts * option.multiplier * (option.right === 'C' ? 1 : -1);
      const what = long ? 'exercised' : 'assigned';
      records.push({ ...base, outcome: what, shares, reason: `${money} at ${close}: ${what}, ${Math.abs(shares)} ${option.underlying} ${shares > 0 ? 'bought' : 'sold'} at ${option.strike}` });
    }
  }
  return records;
}

export interface RecognitionInput {
  /** The journal's positions: symbol -> signed quantity (options in contracts, stocks in shares). */
  readonly ours: ReadonlyMap<string, number>;
  /** The broker's positions, the same way. */
  readonly theirs: ReadonlyMap<string, number>;
  /** Every option by symbol. */
  readonly contracts: ReadonlyMap<string, OptionContract>;
  /** Long positions told not to exercise: they may expire in the money. */
  readonly doNotExercise?: ReadonlySet<string>;
  /** Wall-clock ms of the reconciliation. */
  readonly at: number;
}

/** Past this many changed options of one underlying the combinations are not searched: left to the operator. */
const MAX_CHANGED = 12;

/**
 * The settlements that explain how the broker's positions differ from the
 * journal's when IB sends no event for them (ib mode): option positions that
 * went to zero after their expiry's close (exercised, assigned or expired),
 * and short positions that shrank before it (early assignment), with the
 * underlying's shares moved by exactly what those settlements deliver.
 *
 * Every option settled at one expiry was judged at one closing price, so a
 * combination that needs two (a 580 call exercised and a 575 call expired)
 * is no explanation. Only a single explanation is booked: none or several
 * leave the difference as a mismatch, for a person to look at.
 */
export function recogniseSettlements(input: RecognitionInput): OptionSettlementRecord[] {
  const changed = new Map<string, { symbol: string; option: OptionContract; contracts: number; expired: boolean }[]>();
  for (const [symbol, ours] of input.ours) {
    const option = input.contracts.get(symbol);
    const theirs = input.theirs.get(symbol) ?? 0;
    if (!option || ours === 0 || theirs === ours) continue;
    const expired = expiryMs(option.expiry) <= input.at;
    // After the close everything settles; before it only a writer can be assigned, and never more than was written.
    const settles = expired ? theirs === 0 : ours < 0 && theirs <= 0 && theirs > ours;
    if (!settles) continue;
    const list = changed.get(option.underlying) ?? [];
    list.push({ symbol, option, contracts: ours - theirs, expired });
    changed.set(option.underlying, list);
  }
  const records: OptionSettlementRecord[] = [];
  for (const [underlying, options] of changed) {
    if (options.length > MAX_CHANGED) continue;
    const delivered = (input.theirs.get(underlying) ?? 0) - (input.ours.get(underlying) ?? 0);
    const deliveries = options.map((o) => o.contracts * o.option.multiplier * (o.option.right === 'C' ? 1 : -1));
    let found: number | undefined;
    let count = 0;
    // Bit i set: option i delivered its shares; clear: it expired (only possible past its close).
    for (let mask = 0; mask < 1 << options.length; mask++) {
      let shares = 0;
      let possible = true;
      for (let i = 0; i < options.length; i++) {
        if (mask & (1 << i)) shares += deliveries[i]!;
        else if (!options[i]!.expired) possible = false;
      }
      if (!possible || shares !== delivered || !oneClosingPrice(options, mask, input.doNotExercise)) continue;
      found = mask;
      count++;
    }
    if (count !== 1) continue;
    options.forEach((o, i) => {
      const settles = (found! & (1 << i)) !== 0;
      const outcome = !settles ? 'expired' : o.contracts > 0 ? 'exercised' : 'assigned';
      const shares = settles ? deliveries[i]! : 0;
      const when = o.expired ? `after the ${o.option.expiry} close` : `before its ${o.option.expiry} expiry (early)`;
      const what = shares === 0 ? 'expired' : `${outcome}, ${Math.abs(shares)} ${underlying} ${shares > 0 ? 'bought' : 'sold'} at ${o.option.strike}`;
      records.push({ type: 'option.settlement', at: input.at, symbol: o.symbol, contracts: o.contracts, outcome, shares, reason: `recognised at reconciliation: the broker's positions show it ${what} ${when}` });
    });
  }
  return records;
}

/** Whether one closing price per expiry makes every expired option of `mask` at least a cent in the money and every other one not. */
function oneClosingPrice(options: readonly { symbol: string; option: OptionContract; expired: boolean }[], mask: number, doNotExercise?: ReadonlySet<string>): boolean {
  // Per expiry, the closing price in cents lies in [low, high].
  const bounds = new Map<string, { low: number; high: number }>();
  options.forEach(({ symbol, option, expired }, i) => {
    const inTheMoney = (mask & (1 << i)) !== 0;
    // An option told not to exercise says nothing about the price when it expires.
    if (!expired || (!inTheMoney && doNotExercise?.has(symbol))) return;
    const strike = Math.round(option.strike * 100);
    const b = bounds.get(option.expiry) ?? { low: 0, high: Infinity };
    if (option.right === 'C') {
      if (inTheMoney) b.low = Math.max(b.low, strike + 1);
      else b.high = Math.min(b.high, strike);
    } else if (inTheMoney) b.high = Math.min(b.high, strike - 1);
    else b.low = Math.max(b.low, strike);
    bounds.set(option.expiry, b);
  });
  return [...bounds.values()].every((b) => b.low <= b.high);
}

/** How long after the expiry's close a contrary instruction may still be given: until 16:30 New York on a full day. */
export const CONTRARY_CUTOFF_MS = 30 * 60_000;

/** Why `symbol` cannot be told not to exercise now, or undefined when it can. */
export function contraryInstructionProblem(symbol: string, option: OptionContract | undefined, contracts: number, now: number): string | undefined {
  if (!option) return `${symbol} is not an option the journal knows`;
  if (contracts <= 0) return `${symbol}: only a long position can be told not to exercise, and the journal holds ${contracts}`;
  const cutoff = expiryMs(option.expiry) + CONTRARY_CUTOFF_MS;
  if (now > cutoff) return `${symbol}: too late, instructions for the ${option.expiry} expiry closed at ${new Date(cutoff).toISOString()} (30 minutes after its close)`;
  return undefined;
}
