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
 *   order that crossed goes on taking the quote as new size shows there.
 *   Quotes are the feed's, never depleted by our fills: an order is not
 *   filled again by the quote it already took (same price and size); a new
 *   price or size is new liquidity.
 * - A resting order also fills at its limit when a new print (one after
 *   it reached the market) trades at or through it (a buy's print at or
 *   below its limit, a sell's at or above), up to the print's size. The
 *   chain is read as it publishes: of prints between two publications, the
 *   last stands for them all.
 * - Commission and fees: IBKR's option schedule (option-commissions.ts),
 *   the order's minimum once across its fills.
 * - A contract without a two-sided quote (outside the streamed band, or not
 *   quoted yet) is rejected, naming it: never a fill at a guessed price.
 * - A combo (`submitCombo`, combo.ts) fills all legs at once or not at
 *   all: when the net of its legs' touches (bought legs at the ask, sold
 *   ones at the bid) is at or better than its net limit, as many combos as
 *   the smallest size shown across the legs allows (each leg's size over
 *   its |ratio|), each leg at its own touch. Otherwise it rests and is
 *   judged again on every chain update, with the same rule of new
 *   liquidity (the same touches and sizes on every leg are not new). Each
 *   leg pays commission as an order of its own (its own minimum: IB's rule
 *   for a combo's minimum is not verified here).
 *
 * Not modelled: queue position at the bid or ask (a resting order at the
 * touch fills only when the quote moves through it or to it with a new
 * size, or a print reaches it).
 */
import type { Clock } from '../clock.js';
import type { OrderState } from '../journal/records.js';
import { netTouch, touch } from './combo.js';
import { OptionOrderCost, type OptionCommissionSchedule } from './option-commissions.js';
import type { ComboTicket, OrderTicket, Venue, VenueListener } from './venue.js';

/** An option's quote now: per share, sizes in contracts. */
export interface OptionQuote {
  readonly bid: number;
  readonly ask: number;
  readonly bidSize: number;
  readonly askSize: number;
  /** The last print's price and size, and a count of prints (one that grows is a new print); absent where prints are not reported. */
  readonly last?: number;
  readonly lastSize?: number;
  readonly prints?: number;
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

/** What single options and combos have in common on their way to the market and while they rest. */
interface LiveOrder {
  readonly ref: string;
  readonly symbol: string;
  readonly side: 1 | -1;
  readonly limit: number;
  /** Contracts, or combos. */
  remaining: number;
  fills: number;
  arrived: boolean;
  timer: unknown;
}

interface OptionOrder extends LiveOrder {
  readonly market: boolean;
  readonly cost: OptionOrderCost;
  /** The quote (price and size) last taken from: the same quote again is no new liquidity. */
  takenPrice: number;
  takenSize: number;
  /** Rested without reaching the quote on arrival: a quote that comes to it later fills it at its own limit. */
  passive: boolean;
  /** The quote's print count last seen: a higher one is a new print. */
  printsSeen: number;
}

interface ComboOrder extends LiveOrder {
  readonly legs: readonly { readonly symbol: string; readonly ratio: number; readonly cost: OptionOrderCost }[];
  /** The legs' touches and sizes last taken from: the same again is no new liquidity. */
  taken: string;
}

const twoSided = (q: OptionQuote | undefined): q is OptionQuote => q !== undefined && q.bid >= 0 && q.ask > 0 && q.ask >= q.bid;
/** The size shown where `contracts` (signed) trade: the ask's for a buy, the bid's for a sell. */
const sizeAt = (q: OptionQuote, contracts: number) => (contracts > 0 ? q.askSize : q.bidSize);
/** Does `price` reach a `side` order's limit (a buy's at or below it, a sell's at or above)? */
const reaches = (side: number, price: number, limit: number) => (side > 0 ? price <= limit + EPS : price >= limit - EPS);
const isCombo = (order: OptionOrder | ComboOrder): order is ComboOrder => 'legs' in order;

export class OptionVenue implements Venue {
  readonly tradesOptions = true;

  private readonly live = new Map<string, OptionOrder | ComboOrder>();
  private closed = false;

  constructor(private readonly options: OptionVenueOptions) {}

  submit(ticket: OrderTicket): void {
    const market = ticket.orderType === 'MKT';
    const problem = this.ticketProblem(ticket, 'contracts') ?? (!market && !(ticket.limitPrice > 0) ? `limit price ${ticket.limitPrice} is not a positive number` : undefined) ?? this.quoteProblem(ticket.symbol);
    if (problem !== undefined) return this.status(ticket.ref, 'rejected', problem);
    this.send({ ...this.liveOrder(ticket), market, limit: market ? NaN : ticket.limitPrice, cost: new OptionOrderCost(this.options.commissions), takenPrice: NaN, takenSize: NaN, passive: false, printsSeen: 0 });
  }

  /** A combo: all legs at once at its net limit or not at all (see above). */
  submitCombo(ticket: ComboTicket): void {
    const problem = this.ticketProblem(ticket, 'combos') ?? this.comboProblem(ticket);
    if (problem !== undefined) return this.status(ticket.ref, 'rejected', problem);
    const legs = ticket.legs.map((l) => ({ symbol: l.symbol, ratio: l.ratio, cost: new OptionOrderCost(this.options.commissions) }));
    this.send({ ...this.liveOrder(ticket), limit: ticket.limitPrice, legs, taken: '' });
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

  /** Why a ticket cannot be taken at all, or undefined; a ref already live is a bug of the caller's. */
  private ticketProblem(ticket: OrderTicket, unit: string): string | undefined {
    if (this.live.has(ticket.ref)) throw new Error(`option venue: order ref ${ticket.ref} is already live`);
    return Number.isInteger(ticket.quantity) && ticket.quantity !== 0 ? undefined : `quantity ${ticket.quantity} is not a whole number of ${unit}`;
  }

  private comboProblem({ orderType, limitPrice, legs }: ComboTicket): string | undefined {
    if (orderType !== 'LMT' || !Number.isFinite(limitPrice)) return `a combo needs a net limit price (${orderType} ${limitPrice})`;
    if (legs.length < 2) return `a combo of ${legs.length} leg is not a combo`;
    if (new Set(legs.map((l) => l.symbol)).size < legs.length) return 'a combo names one option in two legs';
    for (const { symbol, ratio } of legs) {
      if (!Number.isInteger(ratio) || ratio === 0) return `leg ${symbol}: ratio ${ratio} is not a non-zero whole number`;
      const unquoted = this.quoteProblem(symbol);
      if (unquoted !== undefined) return unquoted;
    }
    return undefined;
  }

  private quoteProblem(symbol: string): string | undefined {
    return twoSided(this.options.quoteOf(symbol)) ? undefined : `no two-sided quote for ${symbol}: it is not in the streamed band (or not quoted yet)`;
  }

  private liveOrder(ticket: OrderTicket): Omit<LiveOrder, 'limit'> {
    return { ref: ticket.ref, symbol: ticket.symbol, side: ticket.quantity > 0 ? 1 : -1, remaining: Math.abs(ticket.quantity), fills: 0, arrived: false, timer: undefined };
  }

  /** On its way: it reaches the market after the latency. */
  private send(order: OptionOrder | ComboOrder): void {
    this.live.set(order.ref, order);
    order.timer = this.options.clock.setTimeout(() => this.arrive(order), this.options.latencyMs);
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

  private arrive(order: OptionOrder | ComboOrder): void {
    if (this.closed || !this.live.has(order.ref)) return;
    order.arrived = true;
    this.status(order.ref, 'working');
    this.take(order, true);
    if (!isCombo(order) && order.market && this.live.has(order.ref)) {
      this.live.delete(order.ref);
      this.status(order.ref, 'cancelled', `market order: ${order.remaining} contracts found no size at the touch`);
    }
  }

  private take(order: OptionOrder | ComboOrder, arriving: boolean): void {
    if (isCombo(order)) this.takeCombo(order);
    else this.takeOption(order, arriving);
    if (order.remaining === 0) this.live.delete(order.ref);
  }

  /** Fills what the quote on the other side offers within the limit, once per quote, then what a new print offers a resting order. */
  private takeOption(order: OptionOrder, arriving: boolean): void {
    const quote = this.options.quoteOf(order.symbol);
    // Prints before the order reached the market are not its to fill on.
    if (arriving) order.printsSeen = quote?.prints ?? 0;
    else if (quote) this.takePrint(order, quote);
    if (!twoSided(quote)) return;
    const price = touch(quote, order.side);
    const size = sizeAt(quote, order.side);
    const marketable = order.market || reaches(order.side, price, order.limit);
    if (arriving) order.passive = !marketable;
    if (!marketable || !(size > 0) || (price === order.takenPrice && size === order.takenSize)) return;
    order.takenPrice = price;
    order.takenSize = size;
    const contracts = Math.min(order.remaining, Math.floor(size));
    if (contracts <= 0) return;
    order.remaining -= contracts;
    order.fills++;
    // A passive order was resting first: the quote came to it, and it fills at its own limit. An aggressive one takes the quote.
    this.fill(order.ref, `${order.ref}.o${order.fills}`, order.symbol, contracts * order.side, order.passive ? order.limit : price, order.cost);
  }

  /** A resting order's fill at its own limit on a new print at or through it, up to the print's size. */
  private takePrint(order: OptionOrder, quote: OptionQuote): void {
    const { prints = 0, last = NaN, lastSize = NaN } = quote;
    const fresh = prints > order.printsSeen;
    // A lower count is a count begun again (the contract left the band and came back): nothing new yet.
    order.printsSeen = prints;
    if (!fresh || order.market || !reaches(order.side, last, order.limit)) return;
    const contracts = Math.min(order.remaining, Math.floor(lastSize));
    if (!(contracts > 0)) return;
    order.remaining -= contracts;
    order.fills++;
    this.fill(order.ref, `${order.ref}.p${order.fills}`, order.symbol, contracts * order.side, order.limit, order.cost);
  }

  /** Fills every leg at once at its touch when the net reaches the limit, as many combos as every leg's shown size allows, once per set of quotes. */
  private takeCombo(order: ComboOrder): void {
    const quotes = order.legs.map((l) => this.options.quoteOf(l.symbol));
    if (!quotes.every(twoSided)) return;
    const legs = order.legs.map((l, i) => ({ ...l, quote: quotes[i]!, contracts: order.side * l.ratio }));
    if (!reaches(order.side, netTouch(legs, order.side), order.limit)) return;
    const shown = Math.min(...legs.map((l) => Math.floor(sizeAt(l.quote, l.contracts) / Math.abs(l.ratio))));
    const taken = legs.map((l) => `${touch(l.quote, l.contracts)}x${sizeAt(l.quote, l.contracts)}`).join(' ');
    if (!(shown > 0) || taken === order.taken) return;
    order.taken = taken;
    const combos = Math.min(order.remaining, shown);
    order.remaining -= combos;
    order.fills++;
    legs.forEach((l, i) => this.fill(order.ref, `${order.ref}.c${order.fills}.${i + 1}`, l.symbol, combos * l.contracts, touch(l.quote, l.contracts), l.cost));
  }

  private fill(ref: string, execId: string, symbol: string, quantity: number, price: number, cost: OptionOrderCost): void {
    const commission = cost.fill(quantity, price, this.options.multiplierOf(symbol));
    this.options.onEvent({ kind: 'fill', ref, execId, symbol, quantity, price, commission, at: this.options.clock.wallNow() });
  }

  private status(ref: string, state: OrderState, reason?: string): void {
    this.options.onEvent({ kind: 'status', ref, state, reason, at: this.options.clock.wallNow() });
  }
}
