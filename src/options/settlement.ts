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
