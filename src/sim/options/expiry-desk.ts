/**
 * The simulator broker's expiry business, as OCC and IB run it: at each
 * trading day's close every account's option positions settle
 * (close-of-day.ts: exercise by exception, and early assignment before an
 * ex-dividend date), a lapse instruction lets a long position expire, and
 * an exercise request delivers at once. An option goes at no price and
 * shares come or go at the strike, free of commission; positions and
 * values go to whoever follows them, and no execution is reported. The
 * premium is realized on the option rather than carried into the shares'
 * cost.
 */
import type { Clock } from '../../clock.js';
import type { OptionContract } from '../../journal/records.js';
import type { Account, Accounts, Holding } from '../account.js';
import type { SimContract } from '../instruments.js';
import { closeOfDay, nextClose, type Dividend } from './close-of-day.js';
import { decideExercise, type ExerciseDecision } from './exercise.js';

export interface ExpiryDeskOptions {
  readonly accounts: Accounts;
  readonly clock: Clock;
  readonly dividends: readonly Dividend[];
  /** The stock contract of an underlying. */
  readonly stockOf: (symbol: string) => SimContract;
  /** An underlying's price now, a share. */
  readonly priceOf: (stock: SimContract) => number;
}

export class ExpiryDesk {
  /** The next trading day's close, once an option has been traded: positions settle then. */
  private close: { readonly date: string; readonly at: number } | undefined;
  /** Lapse instructions for the coming close: contracts per option, per account. */
  private readonly lapses = new Map<Account, Map<string, number>>();

  constructor(private readonly options: ExpiryDeskOptions) {}

  /** From the first option traded on: stock-only runs do no time-zone work. */
  watch(): void {
    this.close ??= nextClose(this.options.clock.wallNow());
  }

  /** Settles every close passed by now, oldest first; `beforeSettling(date)` runs first (the day's option orders are cancelled). */
  onPump(beforeSettling: (date: string) => void): void {
    if (!this.close) return;
    const wall = this.options.clock.wallNow();
    while (wall >= this.close.at) {
      beforeSettling(this.close.date);
      this.closeDay(this.close.date, this.close.at);
      this.close = nextClose(this.close.at);
    }
  }

  /** An exercise request: refused, kept as a lapse for the close, or delivered at once. */
  exercise(account: Account, option: SimContract, action: number, quantity: number): ExerciseDecision {
    const decision = decideExercise({
      symbol: option.localSymbol, option: journalOption(option), action, quantity,
      held: account.holdings.get(option.conId)?.position ?? 0, at: this.options.clock.wallNow(),
    });
    if (decision.kind === 'exercise') this.deliver(account, option, decision.contracts, decision.shares);
    if (decision.kind === 'lapse') {
      let lapsing = this.lapses.get(account);
      if (!lapsing) this.lapses.set(account, (lapsing = new Map()));
      lapsing.set(option.localSymbol, decision.contracts);
    }
    return decision;
  }

  private closeDay(date: string, at: number): void {
    for (const account of this.options.accounts.all()) {
      const byUnderlying = new Map<string, Holding[]>();
      for (const h of account.holdings.values()) {
        if (h.contract.secType !== 'OPT' || h.position === 0) continue;
        let list = byUnderlying.get(h.contract.symbol);
        if (!list) byUnderlying.set(h.contract.symbol, (list = []));
        list.push(h);
      }
      for (const [symbol, held] of byUnderlying) this.settle(account, symbol, held, date, at);
    }
    // Instructions are taken on the expiry day only: all of them were for this close.
    this.lapses.clear();
  }

  private settle(account: Account, underlying: string, held: readonly Holding[], date: string, at: number): void {
    const changes = closeOfDay({
      date,
      held: held.map((h) => ({ symbol: h.contract.localSymbol, contracts: h.position, option: journalOption(h.contract) })),
      close: this.options.priceOf(this.options.stockOf(underlying)),
      dividends: this.options.dividends,
      at,
      doNotExercise: this.lapses.get(account) ?? new Map(),
    });
    for (const change of changes) this.deliver(account, held.find((h) => h.contract.localSymbol === change.symbol)!.contract, change.contracts, change.shares);
  }

  /** An exercise, assignment or expiry: `contracts` of the option go at no price, `shares` of the underlying come (+) or go (−) at the strike. */
  private deliver(account: Account, option: SimContract, contracts: number, shares: number): void {
    const { accounts, stockOf } = this.options;
    account.book(option, -contracts, 0, 0);
    accounts.changed(account, option);
    if (shares === 0) return;
    const stock = stockOf(option.symbol);
    account.book(stock, shares, option.strike, 0);
    accounts.changed(account, stock);
  }
}

/** A listed option as keel's journal describes it: what the pure settlement code takes. */
export function journalOption(c: SimContract): OptionContract {
  return { conId: c.conId, underlying: c.symbol, expiry: c.expiry, strike: c.strike, right: c.right === 'P' ? 'P' : 'C', multiplier: c.multiplier };
}
