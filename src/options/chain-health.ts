/**
 * Whether an option chain can be traded on: the conditions that halt
 * option trading (and only option trading) until they clear, judged from
 * the chain keel publishes (chain-view.ts), key -> reason like every other
 * condition source of the risk gate.
 *
 * - no chain: one was published and is gone (option_chain stopped or is
 *   restarting), or it has not priced a quote yet;
 * - stale: no bid or ask on any streamed line for longer than
 *   `maxQuoteAgeMs` (the quotes stopped: a farm down, a lost session);
 * - crossed: a contract's bid above its ask;
 * - no IV: a contract with a two-sided quote whose mid has had no implied
 *   volatility (below intrinsic value, above the no-arbitrage bound) for
 *   `noIvGraceMs`: a deep in-the-money quote that lags a move of the
 *   underlying for a moment is not a broken chain, one that stays so is.
 * Ages are monotonic (the view's quotedMonotonic against clock.now()): the
 * feed's silence is real time even when the market's calendar runs fast.
 * Pure: a view and the time in, a map out; the map is only rebuilt when
 * the set of conditions changes, so a caller can tell a change by identity.
 */
import type { OptionChainView } from './chain-view.js';

export interface ChainHealthSettings {
  /** Quotes older than this make the chain stale. */
  readonly maxQuoteAgeMs: number;
  /** A quoted mid without IV for this long is a condition. */
  readonly noIvGraceMs: number;
}

const NONE: ReadonlyMap<string, string> = new Map();

export class ChainHealth {
  /** What halts option trading now; the same object while nothing changes. */
  problems: ReadonlyMap<string, string> = NONE;
  private seen = false;
  /** Since when each contract's quoted mid has had no IV (monotonic ms), by local symbol. */
  private readonly noIvSince = new Map<string, number>();

  constructor(private readonly settings: ChainHealthSettings) {}

  /** Judges the chain retained now (undefined when none is), at monotonic time `now`. */
  judge(view: OptionChainView | undefined, now: number): ReadonlyMap<string, string> {
    const found = new Map<string, string>();
    if (view === undefined) {
      if (this.seen) found.set('no chain', 'the option chain is not published (option_chain stopped or restarting): no option trading');
    } else {
      this.seen = true;
      this.judgeView(view, now, found);
    }
    if (!sameKeys(found, this.problems)) this.problems = found.size === 0 ? NONE : found;
    return this.problems;
  }

  private judgeView(view: OptionChainView, now: number, found: Map<string, string>): void {
    const name = view.underlying;
    if (view.quotedAt !== view.quotedAt) {
      found.set('no chain', `the ${name} option chain has no quote yet (${view.phase}): no option trading`);
      return;
    }
    const age = now - view.quotedMonotonic;
    if (age > this.settings.maxQuoteAgeMs) {
      // The time of the last quote, not an age: the reason is kept while the condition lasts and must stay true.
      const last = new Date(view.quotedAt).toISOString().slice(11, 19);
      found.set('stale', `the ${name} option chain is stale: no option quote since ${last} UTC (limit ${(this.settings.maxQuoteAgeMs / 1000).toFixed(1)} s)`);
    }
    const unsolved = new Set<string>();
    for (const row of view.rows) {
      const { bid, ask } = row;
      if (bid > 0 && ask > 0 && bid > ask) {
        found.set(`crossed ${row.localSymbol}`, `${row.localSymbol} quote is crossed: bid ${bid} > ask ${ask}`);
      } else if (bid >= 0 && ask > 0 && row.midIv !== row.midIv && row.ivReason !== undefined) {
        unsolved.add(row.localSymbol);
        const since = this.noIvSince.get(row.localSymbol) ?? now;
        this.noIvSince.set(row.localSymbol, since);
        if (now - since >= this.settings.noIvGraceMs) found.set(`no iv ${row.localSymbol}`, `${row.localSymbol} mid ${((bid + ask) / 2).toFixed(3)} has had no implied volatility for ${((now - since) / 1000).toFixed(1)} s: ${row.ivReason}`);
      }
    }
    for (const symbol of this.noIvSince.keys()) if (!unsolved.has(symbol)) this.noIvSince.delete(symbol);
  }
}

function sameKeys(a: ReadonlyMap<string, string>, b: ReadonlyMap<string, string>): boolean {
  if (a.size !== b.size) return false;
  for (const key of a.keys()) if (!b.has(key)) return false;
  return true;
}
