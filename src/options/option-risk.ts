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
import type { OptionContract } from '../journal/records.js';
import type { Ledger } from '../trading/ledger.js';
import type { Greeks, OptionRisk } from '../trading/option-limits.js';
import type { OptionChainView } from './chain-view.js';

/** One share's greeks of each listed contract, by conId. */
function listedGreeks(view: OptionChainView): Map<number, Greeks> {
  const out = new Map<number, Greeks>();
  const l = view.listed;
  if (!l) return out;
  for (let i = 0; i < l.count; i++) out.set(l.conId[i]!, { delta: l.delta[i]!, gamma: l.gamma[i]!, vega: l.vega[i]!, theta: l.theta[i]! });
  return out;
}

/** The risk of an order for `option`, or why it cannot be judged. */
export function optionRisk(option: OptionContract, view: OptionChainView, ledger: Ledger): OptionRisk | string {
  if (view.underlying !== option.underlying) return `the option chain is ${view.underlying}'s, not ${option.underlying}'s`;
  const greeks = listedGreeks(view);
  const own = greeks.get(option.conId);
  if (!own || !Number.isFinite(own.delta)) return `the option chain does not price conId ${option.conId} (${option.expiry} ${option.strike} ${option.right}) yet`;
  const shares = ledger.positions.get(option.underlying)?.quantity ?? 0;
  const portfolio = { delta: shares + ledger.workingQuantity(option.underlying), gamma: 0, vega: 0, theta: 0 };
  let contractsInExpiry = 0;
  let premiumAtRisk = 0;
  for (const [symbol, held] of ledger.options) {
    if (held.underlying !== option.underlying) continue;
    const position = ledger.positions.get(symbol);
    const contracts = (position?.quantity ?? 0) + ledger.workingQuantity(symbol);
    if (contracts === 0) continue;
    const g = greeks.get(held.conId) ?? { delta: NaN, gamma: NaN, vega: NaN, theta: NaN };
    const shareCount = contracts * held.multiplier;
    portfolio.delta += shareCount * g.delta;
    portfolio.gamma += shareCount * g.gamma;
    portfolio.vega += shareCount * g.vega;
    portfolio.theta += shareCount * g.theta;
    if (held.expiry === option.expiry) contractsInExpiry += Math.abs(contracts);
    if (position && position.quantity > 0) premiumAtRisk += position.quantity * position.averagePrice * held.multiplier;
  }
  for (const order of ledger.workingOrders()) {
    const held = ledger.options.get(order.symbol);
    const open = order.quantity - order.filled;
    if (held?.underlying === option.underlying && open > 0) premiumAtRisk += open * order.limitPrice * held.multiplier;
  }
  return { underlying: option.underlying, expiry: option.expiry, right: option.right, multiplier: option.multiplier, greeks: own, portfolio, contractsInExpiry, premiumAtRisk, sharesHeld: shares };
}
