/**
 * A combo (BAG) order against its legs' quotes, as the simulated broker
 * fills it: all legs at once at a net price, or not at all.
 *
 * IB's convention: a BAG BUY's limit is the net paid per combo (negative for
 * a credit), a SELL's the net received. Buying the combo does each leg's own
 * action, selling it does the opposite of each. The combo's ask is what
 * buying it costs at the legs' touches (buy legs at their ask, sell legs at
 * their bid, times the ratio), its bid what selling it brings (buy legs
 * sold at their bid, sell legs bought back at their ask). The size is the
 * smallest shown on the side each leg trades, over its ratio.
 *
 * Pure: quotes in, the fill out.
 */
import type { OptionQuote } from './chain.js';

export interface ComboLegQuote {
  /** The leg's own action when the combo is bought. */
  readonly action: 'BUY' | 'SELL';
  readonly ratio: number;
  readonly quote: OptionQuote;
  /** A per-leg limit (orderComboLegs), in the direction the leg trades in this order: the most it pays buying, the least it takes selling. */
  readonly limit?: number | undefined;
}

/** What taking the combo now would do: each leg's side and price, and the net per combo. */
export interface ComboTouch {
  readonly legs: readonly { readonly buy: boolean; readonly price: number }[];
  /** Per combo, in the order's direction: paid when buying, received when selling. */
  readonly net: number;
  /** Whole combos the legs' shown sizes allow. */
  readonly size: number;
}

/** The combo taken at the legs' touches in `action`'s direction; undefined when a side it needs shows no price or size. */
export function comboTouch(action: 'BUY' | 'SELL', legs: readonly ComboLegQuote[]): ComboTouch | undefined {
  let paidCents = 0;
  let size = Infinity;
  const taken = [];
  for (const leg of legs) {
    const buy = (leg.action === 'BUY') === (action === 'BUY');
    const price = buy ? leg.quote.ask : leg.quote.bid;
    const shown = buy ? leg.quote.askSize : leg.quote.bidSize;
    if (!(price > 0) || !(shown > 0)) return undefined;
    paidCents += (buy ? 1 : -1) * Math.round(price * 100) * leg.ratio;
    size = Math.min(size, Math.floor(shown / leg.ratio));
    taken.push({ buy, price });
  }
  if (size === 0) return undefined;
  return { legs: taken, net: (action === 'BUY' ? paidCents : -paidCents) / 100, size };
}

/**
 * Whether the touch reaches the order: a BUY pays at most its limit net, a
 * SELL takes at least its limit (undefined: a market order); and each leg
 * with a price of its own is at or better than it.
 */
export function comboReaches(action: 'BUY' | 'SELL', limit: number | undefined, legs: readonly ComboLegQuote[], touch: ComboTouch): boolean {
  if (limit !== undefined && (action === 'BUY' ? touch.net > limit + 1e-9 : touch.net < limit - 1e-9)) return false;
  return legs.every((leg, i) => {
    const { buy, price } = touch.legs[i]!;
    return leg.limit === undefined || (buy ? price <= leg.limit + 1e-9 : price >= leg.limit - 1e-9);
  });
}
