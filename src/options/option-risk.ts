/**
 * What the risk gate needs to judge an option order (trading/option-limits.ts):
 * the option's greeks now and the portfolio's in its underlying, from the
 * option chain keel prices (every listed contract: chain-view.ts) and the
 * ledger (positions and working orders, counted as filled). Pure: a view
 * and a ledger in, the risk out, or why there is none.
 *
 * Portfolio greeks in a trader's units: delta in shares (the underlying's
 * shares count one each), gamma in shares per $1, vega in dollars per
 * volatility point, theta in dollars per day. A held option the chain does
 * not price makes them NaN: the gate then refuses, never guesses.
 */
import type { ComboLeg, OptionContract } from '../journal/records.js';
import { openOf, type Ledger } from '../trading/ledger.js';
import type { ComboLegRisk, ComboRisk, Greeks, OptionRisk } from '../trading/option-limits.js';
import type { OptionChainView } from './chain-view.js';

/** One share's greeks of each listed contract, by conId. */
function listedGreeks(view: OptionChainView): Map<number, Greeks> {
  const out = new Map<number, Greeks>();
  const l = view.listed;
  if (!l) return out;
  for (let i = 0; i < l.count; i++) out.set(l.conId[i]!, { delta: l.delta[i]!, gamma: l.gamma[i]!, vega: l.vega[i]!, theta: l.theta[i]! });
  return out;
}

/** The portfolio's exposure in one underlying: its greeks, its contracts per expiry and the premium its long options paid. */
export interface UnderlyingRisk {
  readonly portfolio: Greeks;
  /** |contracts| held and working, by expiry. */
  readonly contractsByExpiry: ReadonlyMap<string, number>;
  readonly premiumAtRisk: number;
  readonly sharesHeld: number;
}

/** What the ledger holds in `underlying`, working orders counted as filled, valued at the chain's greeks (NaN for an option it does not price). */
export function underlyingRisk(underlying: string, view: OptionChainView, ledger: Ledger): UnderlyingRisk {
  const greeks = listedGreeks(view);
  const shares = ledger.positions.get(underlying)?.quantity ?? 0;
  const portfolio = { delta: shares + ledger.workingQuantity(underlying), gamma: 0, vega: 0, theta: 0 };
  const contractsByExpiry = new Map<string, number>();
  let premiumAtRisk = 0;
  for (const [symbol, held] of ledger.options) {
    if (held.underlying !== underlying) continue;
    const position = ledger.positions.get(symbol);
    const contracts = (position?.quantity ?? 0) + ledger.workingQuantity(symbol);
    if (contracts === 0) continue;
    const g = greeks.get(held.conId) ?? { delta: NaN, gamma: NaN, vega: NaN, theta: NaN };
    const shareCount = contracts * held.multiplier;
    portfolio.delta += shareCount * g.delta;
    portfolio.gamma += shareCount * g.gamma;
    portfolio.vega += shareCount * g.vega;
    portfolio.theta += shareCount * g.theta;
    contractsByExpiry.set(held.expiry, (contractsByExpiry.get(held.expiry) ?? 0) + Math.abs(contracts));
    if (position && position.quantity > 0) premiumAtRisk += position.quantity * position.averagePrice * held.multiplier;
  }
  // Working buys at the price they were judged at (a combo's bought legs at their touch then).
  for (const order of ledger.workingOrders()) {
    for (const { symbol, open, price } of openOf(order)) {
      const held = ledger.options.get(symbol);
      if (held?.underlying === underlying && open > 0) premiumAtRisk += open * price * held.multiplier;
    }
  }
  return { portfolio, contractsByExpiry, premiumAtRisk, sharesHeld: shares };
}

/** The option's greeks in the chain, or why the chain cannot judge it. */
function greeksOf(option: OptionContract, view: OptionChainView, greeks: Map<number, Greeks>): Greeks | string {
  if (view.underlying !== option.underlying) return `the option chain is ${view.underlying}'s, not ${option.underlying}'s`;
  const own = greeks.get(option.conId);
  if (!own || !Number.isFinite(own.delta)) return `the option chain does not price conId ${option.conId} (${option.expiry} ${option.strike} ${option.right}) yet`;
  return own;
}

/** The risk of an order for `option`, or why it cannot be judged. */
export function optionRisk(option: OptionContract, view: OptionChainView, ledger: Ledger): OptionRisk | string {
  const own = greeksOf(option, view, listedGreeks(view));
  if (typeof own === 'string') return own;
  const held = underlyingRisk(option.underlying, view, ledger);
  return {
    underlying: option.underlying,
    expiry: option.expiry,
    right: option.right,
    multiplier: option.multiplier,
    greeks: own,
    portfolio: held.portfolio,
    contractsInExpiry: held.contractsByExpiry.get(option.expiry) ?? 0,
    premiumAtRisk: held.premiumAtRisk,
    sharesHeld: held.sharesHeld,
  };
}

/** The risk of a combo of these legs (one underlying): each leg's greeks and quote now and what is held of it, or why it cannot be judged. */
export function comboRisk(legs: readonly Omit<ComboLeg, 'price'>[], view: OptionChainView, ledger: Ledger): ComboRisk | string {
  const underlying = legs[0]?.option.underlying;
  if (underlying === undefined) return 'a combo without legs';
  if (legs.some((l) => l.option.underlying !== underlying)) return `a combo's legs must share one underlying (${legs.map((l) => l.option.underlying).join(', ')})`;
  const greeks = listedGreeks(view);
  const rows = new Map(view.rows.map((r) => [r.conId, r]));
  const judged: ComboLegRisk[] = [];
  for (const { symbol, option, ratio } of legs) {
    const own = greeksOf(option, view, greeks);
    if (typeof own === 'string') return own;
    const row = rows.get(option.conId);
    if (!row) return `conId ${option.conId} (${option.expiry} ${option.strike} ${option.right}) is not in the streamed band: no quote to judge the leg at`;
    const { expiry, right, multiplier } = option;
    judged.push({ symbol, expiry, right, multiplier, ratio, greeks: own, bid: row.bid, ask: row.ask, position: ledger.positions.get(symbol)?.quantity ?? 0, working: ledger.workingQuantity(symbol) });
  }
  const { portfolio, contractsByExpiry, premiumAtRisk, sharesHeld } = underlyingRisk(underlying, view, ledger);
  return { underlying, legs: judged, portfolio, contractsByExpiry, premiumAtRisk, sharesHeld };
}
