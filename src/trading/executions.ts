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
 * |order quantity|). A combo's fills are its legs': each for one of its
 * legs, on that leg's side (the combo's side times the leg's ratio's), and
 * within quantity × ratio contracts of it. A commission is a finite amount >= 0.
 */

/** What the checks read of an order: its contract, side and size. */
export interface OrderFacts {
  readonly ref: string;
  readonly symbol: string;
  /** Signed, like the order's. */
  readonly quantity: number;
  /** A combo's legs: its fills are theirs. */
  readonly legs?: readonly { readonly symbol: string; readonly ratio: number }[];
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

/** What an order buys or sells of `symbol`, signed: its quantity, or a combo leg's quantity × ratio; undefined when the order does not trade it. */
export function orderedOf(order: OrderFacts, symbol: string): number | undefined {
  if (!order.legs) return symbol === order.symbol ? order.quantity : undefined;
  const leg = order.legs.find((l) => l.symbol === symbol);
  return leg && order.quantity * leg.ratio;
}

/**
 * Why this fill cannot count for this order, or undefined when it can.
 * `filled` is what the order has filled already of the fill's symbol
 * (signed; a combo's, of that leg), in the ledger and on its way there:
 * two fills in flight together must not overfill it.
 */
export function fillProblem(fill: FillFacts, order: OrderFacts, filled: number): string | undefined {
  const numbers = fillNumbersProblem(fill);
  if (numbers !== undefined) return numbers;
  const ordered = orderedOf(order, fill.symbol);
  const symbol = fill.symbol === '' ? '(none)' : fill.symbol;
  if (ordered === undefined) return order.legs ? `symbol ${symbol} is not one of the combo's legs (${order.legs.map((l) => l.symbol).join(', ')})` : `symbol ${symbol} is not the order's (${order.symbol})`;
  const side = (q: number) => (q > 0 ? 'buy' : 'sell');
  const of = order.legs ? ` of ${fill.symbol}` : '';
  if (Math.sign(fill.quantity) !== Math.sign(ordered)) {
    return `a ${side(fill.quantity)} of ${Math.abs(fill.quantity)} for order ${order.ref}, a ${side(ordered)}${of}`;
  }
  const after = Math.abs(filled + fill.quantity);
  if (after > Math.abs(ordered)) {
    return `${Math.abs(fill.quantity)} more would fill ${after}${of} of order ${order.ref}'s ${Math.abs(ordered)} (${Math.abs(filled)} filled already)`;
  }
  return undefined;
}

/** Why a position the broker reported is not one to compare with, or undefined when it is. */
export function brokerPositionProblem(position: number): string | undefined {
  if (!Number.isFinite(position)) return 'not a finite number of shares';
  if (Math.abs(position) > MAX_BROKER_POSITION) return `beyond any account (more than ${MAX_BROKER_POSITION.toLocaleString('en-US')} shares)`;
  return undefined;
}
