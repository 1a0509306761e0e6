/**
 * The option venue (`book` mode): paper fills against an option's quoted
 * bid and ask and the sizes displayed with them, as the option chain
 * streams them (options.chain).
 *
 * Fill model
 * - An order reaches the market `latencyMs` after submit (a cancel before
 *   then stops it on the way) and is `working`. A buy whose limit reaches
 *   the ask (a market buy at any ask) takes the ask, up to the size shown
 *   there; a sell likewise at the bid. What is left rests at its limit (a
 *   market order never rests: the rest is cancelled).
 * - An order that rested without reaching the quote fills at its limit when
 *   a later quote reaches it (a buy when the ask comes down to its limit, a
 *   sell when the bid comes up to it), up to the size shown; the rest of an
 *   order that crossed goes on taking the quote as new size shows there. Quotes are the feed's, never depleted by our
 *   fills: an order is not filled again by the quote it already took (same
 *   price and size); a new price or size is new liquidity.
 * - Commission and fees: IBKR's option schedule (option-commissions.ts),
 *   the order's minimum once across its fills.
 * - A contract without a two-sided quote (outside the streamed band, or not
 *   quoted yet) is rejected, naming it: never a fill at a guessed price.
 *
 * Not modelled: prints trading through a resting order (the chain carries
 * no option prints yet), queue position at the bid or ask (a resting order
 * at the touch fills only when the quote moves through it or to it with a
 * new size).
 */
import type { Clock } from '../clock.js';
import type { OrderState } from '../journal/records.js';
import { OptionOrderCost, type OptionCommissionSchedule } from './option-commissions.js';
import type { OrderTicket, Venue, VenueListener } from './venue.js';

/** An option's quote now: per share, sizes in contracts. */
export interface OptionQuote {
  readonly bid: number;
  readonly ask: number;
  readonly bidSize: number;
  readonly askSize: number;
}

export interface OptionVenueOptions {
  readonly clock: Clock;
  /** The quote of an option by its symbol (OSI), or undefined when none is streamed. */
  readonly quoteOf: (symbol: string) => OptionQuote | undefined;
  /** Shares per contract of an option. */
  readonly multiplierOf: (symbol: string) => number;
  readonly latencyMs: number;
  readonly commissions: OptionCommissionSchedule;
  readonly onEvent: VenueListener;
}

/** Prices within this are one price: limits may be computed while quotes are parsed. */
const EPS = 1e-8;

interface OptionOrder {
  readonly ref: string;
  readonly symbol: string;
  readonly side: 1 | -1;
  readonly market: boolean;
  readonly limit: number;
  remaining: number;
  readonly cost: OptionOrderCost;
  fills: number;
  /** The quote (price and size) last taken from: the same quote again is no new liquidity. */
  takenPrice: number;
  takenSize: number;
  arrived: boolean;
  /** Rested without reaching the quote on arrival: a quote that comes to it later fills it at its own limit. */
  passive: boolean;
  timer: unknown;
}

const twoSided = (q: OptionQuote | undefined): q is OptionQuote => q !== undefined && q.bid >= 0 && q.ask > 0 && q.ask >= q.bid;

export class OptionVenue implements Venue {
  readonly tradesOptions = true;

  private readonly live = new Map<string, OptionOrder>();
  private closed = false;

  constructor(private readonly options: OptionVenueOptions) {}

  submit(ticket: OrderTicket): void {
    if (this.live.has(ticket.ref)) throw new Error(`option venue: order ref ${ticket.ref} is already live`);
    const market = ticket.orderType === 'MKT';
    if (!Number.isInteger(ticket.quantity) || ticket.quantity === 0) return this.status(ticket.ref, 'rejected', `quantity ${ticket.quantity} is not a whole number of contracts`);
    if (!market && !(ticket.limitPrice > 0)) return this.status(ticket.ref, 'rejected', `limit price ${ticket.limitPrice} is not a positive number`);
    if (!twoSided(this.options.quoteOf(ticket.symbol))) return this.status(ticket.ref, 'rejected', `no two-sided quote for ${ticket.symbol}: it is not in the streamed band (or not quoted yet)`);
    const order: OptionOrder = {
      ref: ticket.ref,
      symbol: ticket.symbol,
      side: ticket.quantity > 0 ? 1 : -1,
      market,
      limit: market ? NaN : ticket.limitPrice,
      remaining: Math.abs(ticket.quantity),
      cost: new OptionOrderCost(this.options.commissions),
      fills: 0,
      takenPrice: NaN,
      takenSize: NaN,
      arrived: false,
      passive: false,
      timer: undefined,
    };
    this.live.set(order.ref, order);
    order.timer = this.options.clock.setTimeout(() => this.arrive(order), this.options.latencyMs);
  }

  cancel(ref: string): void {
    const order = this.live.get(ref);
    if (!order) return;
    this.options.clock.clearTimeout(order.timer);
    this.live.delete(ref);
    this.status(ref, 'cancelled', order.arrived ? 'cancelled by request' : 'cancelled before it reached the market');
  }

  /** The chain was re-quoted: resting orders fill where the quote now reaches them. */
  onQuotes(): void {
    for (const order of this.live.values()) if (order.arrived) this.take(order, false);
  }

  /** Orders resting now (for tests and the inspector). */
  resting(): { ref: string; symbol: string; remaining: number; limit: number }[] {
    return [...this.live.values()].filter((o) => o.arrived).map((o) => ({ ref: o.ref, symbol: o.symbol, remaining: o.remaining * o.side, limit: o.limit }));
  }

  close(): void {
    this.closed = true;
    for (const order of this.live.values()) this.options.clock.clearTimeout(order.timer);
    this.live.clear();
  }

  private arrive(order: OptionOrder): void {
    if (this.closed || !this.live.has(order.ref)) return;
    order.arrived = true;
    this.status(order.ref, 'working');
    this.take(order, true);
    if (order.market && this.live.has(order.ref)) {
      this.live.delete(order.ref);
      this.status(order.ref, 'cancelled', `market order: ${order.remaining} contracts found no size at the touch`);
    }
  }

  /** Fills what the quote on the other side offers within the limit, once per quote. */
  private take(order: OptionOrder, arriving: boolean): void {
    const quote = this.options.quoteOf(order.symbol);
    if (!twoSided(quote)) return;
    const price = order.side > 0 ? quote.ask : quote.bid;
    const size = order.side > 0 ? quote.askSize : quote.bidSize;
    const reaches = order.market || (order.side > 0 ? price <= order.limit + EPS : price >= order.limit - EPS);
    if (arriving) order.passive = !reaches;
    if (!reaches || !(size > 0) || (price === order.takenPrice && size === order.takenSize)) return;
    order.takenPrice = price;
    order.takenSize = size;
    // A passive order was resting first: the quote came to it, and it fills at its own limit. An aggressive one takes the quote.
    const at = order.passive ? order.limit : price;
    const contracts = Math.min(order.remaining, Math.floor(size));
    if (contracts <= 0) return;
    order.remaining -= contracts;
    order.fills++;
    const quantity = contracts * order.side;
    const { clock, onEvent } = this.options;
    onEvent({
      kind: 'fill',
      ref: order.ref,
      execId: `${order.ref}.o${order.fills}`,
      symbol: order.symbol,
      quantity,
      price: at,
      commission: order.cost.fill(quantity, at, this.options.multiplierOf(order.symbol)),
      at: clock.wallNow(),
    });
    if (order.remaining === 0) this.live.delete(order.ref);
  }

  private status(ref: string, state: OrderState, reason?: string): void {
    this.options.onEvent({ kind: 'status', ref, state, reason, at: this.options.clock.wallNow() });
  }
}
