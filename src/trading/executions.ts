/**
 * What an execution report must be before anything is journaled, and what
 * a broker's position must be before it is compared with the journal's.
 * One set of rules for every path a fill takes: the IB venue (execDetails,
 * commissionReport, reconciliation), the book venue, the ledger's own
 * guard on `record`, and replay (which sets aside what fails, as evidence).
 *
 * A fill counts only when it is finite and positive in price and size, for
 * the order's own contract (its symbol), on the order's side, and does not
 * take the order past its quantity (cumulative fills of a ref never exceed
 * |order quantity|). A commission is a finite amount >= 0.
 */

/** What the checks read of an order: its contract, side and size. */
export interface OrderFacts {
  readonly ref: string;
  readonly symbol: string;
  /** Signed, like the order's. */
  readonly quantity: number;
}

/** What the checks read of a fill. */
export interface FillFacts {
  readonly symbol: string;
  /** Signed: positive buys, negative sells. */
  readonly quantity: number;
  readonly price: number;
  readonly commission: number;
}

/** More shares than any account holds: a broker position beyond this is not believed. */
export const MAX_BROKER_POSITION = 1e9;

const positive = (x: number) => Number.isFinite(x) && x > 0;

/** Why this commission cannot count, or undefined when it can. */
export function commissionProblem(commission: number): string | undefined {
  return Number.isFinite(commission) && commission >= 0 ? undefined : `commission ${commission} is not a finite amount >= 0`;
}

/**
 * Why this fill's own numbers cannot count (size, price, commission), or
 * undefined when they can. Needs nothing but the fill.
 */
export function fillNumbersProblem(fill: FillFacts): string | undefined {
  if (!positive(Math.abs(fill.quantity))) return `size ${Math.abs(fill.quantity)} is not a finite number of shares above 0`;
  if (!positive(fill.price)) return `price ${fill.price} is not a finite number above 0`;
  return commissionProblem(fill.commission);
}

/**
 * Why this fill cannot count for this order, or undefined when it can.
 * `filled` is what the order has filled already (signed), in the ledger and
 * on its way there: two fills in flight together must not overfill it.
 */
export function fillProblem(fill: FillFacts, order: OrderFacts, filled: number): string | undefined {
  const numbers = fillNumbersProblem(fill);
  if (numbers !== undefined) return numbers;
  if (fill.symbol !== order.symbol) return `symbol ${fill.symbol === '' ? '(none)' : fill.symbol} is not the order's (${order.symbol})`;
  const side = (q: number) => (q > 0 ? 'buy' : 'sell');
  if (Math.sign(fill.quantity) !== Math.sign(order.quantity)) {
    return `a ${side(fill.quantity)} of ${Math.abs(fill.quantity)} for order ${order.ref}, a ${side(order.quantity)}`;
  }
  const after = Math.abs(filled + fill.quantity);
  if (after > Math.abs(order.quantity)) {
    return `${Math.abs(fill.quantity)} more would fill ${after} of order ${order.ref}'s ${Math.abs(order.quantity)} (${Math.abs(filled)} filled already)`;
  }
  return undefined;
}

/** Why a position the broker reported is not one to compare with, or undefined when it is. */
export function brokerPositionProblem(position: number): string | undefined {
  if (!Number.isFinite(position)) return 'not a finite number of shares';
  if (Math.abs(position) > MAX_BROKER_POSITION) return `beyond any account (more than ${MAX_BROKER_POSITION.toLocaleString('en-US')} shares)`;
  return undefined;
}
