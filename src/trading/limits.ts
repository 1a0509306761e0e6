/**
 * Pre-trade limits: what the risk gate asks of every order it would let
 * through in ACTIVE or REDUCING, after its state rules. Each refusal names
 * the limit, the value and the limit, e.g.
 * `max order notional: 120,000.00 > 100,000 (SPY buy 1,200 at 100.00)`.
 *
 * In the order they are judged:
 *   quantity and price   a non-zero whole quantity, a finite positive price
 *                        (a combo's net price may be a credit: finite)
 *   price collar         |price - mid| / mid in bps; no mid, no order (an
 *                        option's: |price - mid| in dollars, `options.collar`;
 *                        a combo's net: the collar once per leg contract of a combo)
 *   max order notional   |quantity| x price (x multiplier), every order (a fat
 *                        finger is one whatever it does); a combo's, each leg's at its touch
 *   option limits        for an option or a combo, instead of position and exposure:
 *                        contracts, short options, premium, greeks (option-limits.ts)
 *   max position         |position + working + quantity| in shares
 *   max gross exposure   the portfolio's gross exposure once this order and
 *                        the instrument's working orders have filled
 *   max orders/second    a rolling 1 s window over accepted orders; beyond it
 *                        refused, never queued
 *
 * An order that shrinks the instrument's projected position (position plus
 * working orders) without flipping it is not judged by max position or max
 * gross exposure: it lowers both. It still meets the collar, the notional
 * and the rate.
 *
 * Gross exposure after the order is `gross - |position x mid| + |(position +
 * working + quantity) x mid|`, not `gross + notional`: the instrument's share
 * of the gross is replaced by what it will be, so a flip from +100 to -100
 * adds nothing, and working orders count as filled (they may all fill). It
 * is valued at the mid, as the portfolio marks positions; the collar keeps
 * the order's price within `collarBps` of it. Other instruments' working
 * orders are not in the intent and are not counted.
 *
 * The rate window is a ring of the last `maxOrdersPerSecond` acceptance
 * times: the order is refused while the oldest of them is less than 1 s old.
 * One comparison and one store per check, nothing allocated.
 */
import { z } from 'zod';
import { checkOptionLimits, optionLimits, singleOption, type ComboRisk } from './option-limits.js';
import { touch } from './combo.js';
import type { Decision, OrderIntent } from './risk-gate.js';

export const riskLimits = z
  .object({
    /** Shares per instrument: |position + working + order| after the order. */
    maxPosition: z.number().int().positive().default(500),
    /** One order's |quantity| x price, account currency. */
    maxOrderNotional: z.number().positive().default(500_000),
    /** Sum over instruments of |quantity x mid| once this order and its instrument's working orders have filled, account currency. */
    maxGrossExposure: z.number().positive().default(1_000_000),
    /** Orders the gate accepted in any rolling second; IB disconnects beyond 50 messages/s, cancels and data requests included. */
    maxOrdersPerSecond: z.number().int().positive().max(1000).default(10),
    /** The day's loss (a positive amount) beyond which the gate halts until an operator resumes it. */
    maxDailyLoss: z.number().positive().default(5_000),
    /** How far an order's price may be from the instrument's mid, bps. */
    collarBps: z.number().positive().default(50),
    /** Option orders (option-limits.ts): their greeks, contracts and premium; and their collar, in dollars from the option's mid (bps of a $0.50 premium are no use). */
    options: optionLimits.extend({ collar: z.number().positive().default(0.05) }).prefault({}),
  })
  .strict();

export type RiskLimits = z.infer<typeof riskLimits>;

const WINDOW_MS = 1000;

const twoDecimals = new Intl.NumberFormat('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const plain = new Intl.NumberFormat('en-US', { maximumFractionDigits: 4 });
/** A measured amount: `120,000.00`. */
export const amount = (x: number): string => (Number.isFinite(x) ? twoDecimals.format(x) : String(x));
/** A configured limit or a share count: `100,000`. */
export const figure = (x: number): string => (Number.isFinite(x) ? plain.format(x) : String(x));

const refuse = (reason: string): Decision => ({ ok: false, reason });
const OK: Decision = { ok: true };

/** Does an order of `quantity` shrink `projected` (position plus working) without flipping it? */
export function shrinks(projected: number, quantity: number): boolean {
  const after = projected + quantity;
  return projected !== 0 && Math.sign(after) !== -Math.sign(projected) && Math.abs(after) < Math.abs(projected);
}

/** An option order as a combo of one leg, or a combo's own risk: what the option limits judge; undefined for a stock. */
export function optionCombo(order: OrderIntent): ComboRisk | undefined {
  return order.combo ?? (order.option && singleOption(order.symbol, order.option, order.price, order.position, order.working));
}

export class PreTradeLimits {
  /** Monotonic times of the last `maxOrdersPerSecond` accepted orders, oldest at `next`. */
  private readonly accepted: Float64Array;
  private next = 0;

  constructor(readonly limits: RiskLimits) {
    this.accepted = new Float64Array(limits.maxOrdersPerSecond).fill(-Infinity);
  }

  /** Judges the order against every limit; when it passes, it counts as accepted at `now` (monotonic ms). */
  check(order: OrderIntent, now: number): Decision {
    const { symbol, quantity, position } = order;
    const limits = this.limits;
    if (!Number.isInteger(quantity) || quantity === 0) return refuse(`${symbol}: quantity ${quantity} is not a non-zero whole number`);
    const { price, working, mid } = order;
    const bag = order.secType === 'BAG';
    if (!Number.isFinite(price) || (price <= 0 && !bag)) return refuse(`${symbol}: price ${price} is not a finite ${bag ? '' : 'positive '}number`);
    if (!Number.isFinite(position)) return refuse(`${symbol}: position ${position} is not a number`);
    if (!Number.isFinite(working)) return refuse(`${symbol}: working quantity ${working} is not a number`);

    // A combo's net mid may be zero or a credit: it needs only to be a number.
    if (!Number.isFinite(mid) || (mid <= 0 && !bag)) return refuse(`price collar: no mid for ${symbol} (${mid}): never trade without one`);
    if (bag && !order.combo) return refuse(`${symbol}: a combo order without its legs' greeks and the portfolio's cannot be judged`);
    if (order.secType === 'OPT' && !order.option) return refuse(`${symbol}: an option order without its greeks and the portfolio's cannot be judged`);
    const combo = optionCombo(order);
    if (combo) {
      const contracts = combo.legs.reduce((n, l) => n + Math.abs(l.ratio), 0);
      const collar = limits.options.collar * contracts;
      const off = Math.abs(price - mid);
      if (off > collar) return refuse(`price collar: ${amount(off)} > ${figure(collar)} from the ${bag ? 'combo' : 'option'}'s mid (${symbol} ${amount(price)} vs mid ${amount(mid)})`);
    } else {
      const offBps = (Math.abs(price - mid) / mid) * 1e4;
      if (offBps > limits.collarBps) {
        return refuse(`price collar: ${amount(offBps)} bps > ${figure(limits.collarBps)} (${symbol} ${amount(price)} vs mid ${amount(mid)})`);
      }
    }

    const side = quantity > 0 ? 'buy' : 'sell';
    const notional = combo ? combo.legs.reduce((n, l) => n + Math.abs(quantity * l.ratio) * touch(l, quantity * l.ratio) * l.multiplier, 0) : Math.abs(quantity) * price;
    if (notional > limits.maxOrderNotional) {
      return refuse(`max order notional: ${amount(notional)} > ${figure(limits.maxOrderNotional)} (${symbol} ${side} ${figure(Math.abs(quantity))} at ${amount(price)})`);
    }

    const projected = position + working;
    if (combo) {
      // Contracts, premium and greeks instead of shares and exposure.
      const judged = checkOptionLimits(limits.options, combo, symbol, quantity, price);
      if (!judged.ok) return judged;
    } else if (!shrinks(projected, quantity)) {
      const after = projected + quantity;
      if (Math.abs(after) > limits.maxPosition) {
        return refuse(
          `max position: ${figure(Math.abs(after))} > ${figure(limits.maxPosition)} shares (${symbol} position ${figure(position)}, working ${figure(working)}, ${side} ${figure(Math.abs(quantity))})`,
        );
      }
      const gross = order.grossExposure;
      if (!Number.isFinite(gross) || gross < 0) return refuse(`max gross exposure: the portfolio's gross exposure is unknown (${gross})`);
      const exposure = Math.max(0, gross - Math.abs(position * mid)) + Math.abs(after * mid);
      if (exposure > limits.maxGrossExposure) {
        return refuse(`max gross exposure: ${amount(exposure)} > ${figure(limits.maxGrossExposure)} (after ${symbol} ${side} ${figure(Math.abs(quantity))} at mid ${amount(mid)})`);
      }
    }

    // Last, so that only an order every other limit accepts takes a place in the window.
    const n = this.accepted.length;
    if (now - this.accepted[this.next]! < WINDOW_MS) return refuse(`max orders per second: ${n + 1} > ${n}`);
    this.accepted[this.next] = now;
    this.next = this.next + 1 === n ? 0 : this.next + 1;
    return OK;
  }

  /** Orders accepted in the second up to `now`. */
  acceptedInWindow(now: number): number {
    let n = 0;
    for (const at of this.accepted) if (now - at < WINDOW_MS) n++;
    return n;
  }
}
