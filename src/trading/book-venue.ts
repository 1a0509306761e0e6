/**
 * The book venue (`book` mode): paper fills against keel's live L2 book.
 *
 * Fill model
 * - An order reaches the market `latencyMs` after submit (a cancel before
 *   then stops it on the way). On arrival it is `working`, and its marketable
 *   part walks the opposite side of the book level by level, one fill per
 *   level at that level's price, up to the limit (any price for MKT). A
 *   market order never rests: what the book cannot fill is cancelled.
 * - A limit remainder rests with a queue-position estimate: the displayed
 *   size at its price on its side when it arrived (0 when it sets a new
 *   level). Prints at its price eat that queue before they fill it; prints
 *   through its price fill it at once, at its limit. Several resting orders
 *   on one instrument share a print by price, then time priority.
 * - After each book batch, a resting order is filled at its limit when the
 *   opposite side shows new liquidity at prices reaching it (the other side
 *   crossed into us), and its queue ahead shrinks with the displayed size at
 *   its price (cancels ahead of us).
 * - Commission: IB fixed pricing, order total = max(minimum, per share ×
 *   filled), charged fill by fill (the minimum on the first, later fills
 *   only what exceeds it), rounded to 4 decimals. IB's 1 %-of-value cap and
 *   exchange / regulatory fees are not modelled.
 * - Its fills take the same path as the ib venue's: the trader checks each
 *   (executions.ts: finite positive price and size, the order's symbol and
 *   side, never past the order's quantity, commission >= 0) before anything
 *   is journaled, and refuses one that fails, halting the gate. The book
 *   itself never holds a NaN or non-positive price (order-book.ts rejects
 *   them), so a refusal here means a bug, and it is treated as one.
 *
 * Limits
 * - The book is the live feed's, never depleted by our fills. So a resting
 *   order remembers how much opposite liquidity within its limit it has
 *   already been credited with (`credited`), and only displayed size beyond
 *   that fills it again. Liquidity that leaves and comes back at the same
 *   price fills us again; a changed size is read as a new order.
 * - Our own orders are invisible to the feed: nobody else's order queues
 *   behind ours, and a print through our price may be one we would in truth
 *   have changed (we would have traded first, at a different price).
 * - The queue estimate assumes FIFO at a price and that size leaving a level
 *   left from ahead of us (optimistic: cancels behind us count as ahead).
 *   A price deeper than a full side's displayed rows has an unknown queue:
 *   Infinity until the level comes into view.
 *
 * Data plane: `onBooks` / `onTrades` run per batch at market data rates;
 * with nothing resting they return after one comparison, and their loops
 * allocate nothing unless they fill.
 */
import type { Clock } from '../clock.js';
import type { TradeBatch } from '../ib/trade-feed.js';
import type { OrderBooks } from '../market/books.js';
import { ASK, BID, type OrderBook } from '../market/order-book.js';
import type { OrderState } from '../journal/records.js';
import type { OrderTicket, Venue, VenueEvent, VenueListener } from './venue.js';

export interface BookVenueOptions {
  readonly clock: Clock;
  /** Instrument index by symbol (the order of the `instruments` universe; books are indexed the same way). */
  readonly instrumentOf: (symbol: string) => number | undefined;
  /** The live books (the `books` service); undefined while l2_microstructure is not running. */
  readonly books: () => OrderBooks | undefined;
  /** From submit to the order reaching the market, ms of the clock. */
  readonly latencyMs: number;
  /** Commission per share, e.g. 0.005. */
  readonly feePerShare: number;
  /** Minimum commission per order, e.g. 1.0: charged on the first fill; later fills pay only what exceeds it. */
  readonly minFeePerOrder: number;
  readonly onEvent: VenueListener;
}

export interface RestingOrder {
  readonly ref: string;
  readonly symbol: string;
  readonly remaining: number;
  readonly limitPrice: number;
  readonly queueAhead: number;
}

/** Prices within this are one price: limits may be computed (mid + tick) while book prices are parsed. */
const EPS = 1e-8;

const IN_FLIGHT = 0;
const RESTING = 1;
const DONE = 2;

interface PaperOrder {
  readonly ref: string;
  readonly symbol: string;
  readonly instrument: number;
  /** +1 buys, -1 sells. */
  readonly side: 1 | -1;
  readonly market: boolean;
  /** NaN for a market order. */
  readonly limit: number;
  /** Unsigned, like `filled`. */
  remaining: number;
  filled: number;
  commissionPaid: number;
  fills: number;
  queueAhead: number;
  /** Opposite displayed size within our limit we have already filled against (or seen filled by an order ahead). */
  credited: number;
  state: number;
  timer: unknown;
}

export class BookVenue implements Venue {
  /** Stocks only, for now. */
  readonly tradesOptions = false;

  /** Orders in flight or resting, by ref; done orders are forgotten. */
  private readonly live = new Map<string, PaperOrder>();
  /** Resting orders per instrument, in priority order (best price, then oldest). */
  private readonly restingOn: (PaperOrder[] | undefined)[] = [];
  private restingTotal = 0;
  /** > 0 while a sweep iterates the resting lists: removals then wait for `compact`. */
  private sweeping = 0;
  private needsCompaction = false;
  private closed = false;

  constructor(private readonly options: BookVenueOptions) {}

  submit(ticket: OrderTicket): void {
    // A ref names one order in the journal: a second live order under it would make every later event ambiguous.
    if (this.live.has(ticket.ref)) throw new Error(`book venue: order ref ${ticket.ref} is already live`);
    const reason = this.invalid(ticket);
    const instrument = this.options.instrumentOf(ticket.symbol);
    if (reason !== undefined || instrument === undefined) {
      this.status(ticket.ref, 'rejected', reason ?? `unknown symbol ${ticket.symbol}`);
      return;
    }
    const order: PaperOrder = {
      ref: ticket.ref,
      symbol: ticket.symbol,
      instrument,
      side: ticket.quantity > 0 ? 1 : -1,
      market: ticket.orderType === 'MKT',
      limit: ticket.orderType === 'MKT' ? NaN : ticket.limitPrice,
      remaining: Math.abs(ticket.quantity),
      filled: 0,
      commissionPaid: 0,
      fills: 0,
      queueAhead: 0,
      credited: 0,
      state: IN_FLIGHT,
      timer: undefined,
    };
    this.live.set(order.ref, order);
    order.timer = this.options.clock.setTimeout(() => this.arrive(order), this.options.latencyMs);
  }

  cancel(ref: string): void {
    const order = this.live.get(ref);
    if (order === undefined) return;
    if (order.state === IN_FLIGHT) this.options.clock.clearTimeout(order.timer);
    this.finish(order);
    this.status(ref, 'cancelled', 'cancelled by request');
  }

  /** After each applied book batch: resting orders the opposite side now reaches are filled. */
  onBooks(books: OrderBooks): void {
    if (this.restingTotal === 0 || this.closed) return;
    this.sweeping++;
    try {
      for (let t = 0; t < books.touchedCount; t++) {
        const instrument = books.touched[t]!;
        const list = this.restingOn[instrument];
        if (list === undefined || list.length === 0) continue;
        const book = books.books[instrument];
        if (book !== undefined) this.recheck(list, book);
      }
    } finally {
      this.endSweep();
    }
  }

  /** After each trade batch: prints at or through a resting order's price fill it, after the queue ahead. */
  onTrades(batch: TradeBatch): void {
    if (this.restingTotal === 0 || this.closed) return;
    this.sweeping++;
    try {
      for (let row = 0; row < batch.count; row++) {
        const list = this.restingOn[batch.instrument[row]!];
        if (list === undefined || list.length === 0) continue;
        const price = batch.price[row]!;
        const size = batch.size[row]!;
        if (price > 0 && size > 0) this.matchPrint(list, price, size);
      }
    } finally {
      this.endSweep();
    }
  }

  /** Orders resting now (for the inspector and tests), in priority order per instrument. */
  resting(): readonly RestingOrder[] {
    const out: RestingOrder[] = [];
    for (const list of this.restingOn) {
      if (list === undefined) continue;
      for (const o of list) {
        if (o.state === RESTING) out.push({ ref: o.ref, symbol: o.symbol, remaining: o.remaining, limitPrice: o.limit, queueAhead: o.queueAhead });
      }
    }
    return out;
  }

  close(): void {
    this.closed = true;
    for (const order of this.live.values()) {
      if (order.state === IN_FLIGHT) this.options.clock.clearTimeout(order.timer);
    }
  }

  private invalid(ticket: OrderTicket): string | undefined {
    if (this.closed) return 'the book venue is closed';
    if (!Number.isInteger(ticket.quantity) || ticket.quantity === 0) return `quantity ${ticket.quantity} is not a non-zero whole number`;
    if (ticket.orderType !== 'LMT' && ticket.orderType !== 'MKT') return `order type ${String(ticket.orderType)} is not LMT or MKT`;
    if (ticket.orderType === 'LMT' && !(Number.isFinite(ticket.limitPrice) && ticket.limitPrice > 0)) {
      return `limit price ${ticket.limitPrice} is not a finite positive number`;
    }
    return undefined;
  }

  /** The order reaches the market: take what the book offers, then rest (LMT) or cancel the rest (MKT). */
  private arrive(order: PaperOrder): void {
    if (order.state !== IN_FLIGHT || this.closed) return;
    order.timer = undefined;
    this.status(order.ref, 'working');
    // The listener may have cancelled it already.
    if (order.state !== IN_FLIGHT) return;
    const book = this.options.books()?.book(order.instrument);
    const opposite = order.side > 0 ? ASK : BID;
    if (book !== undefined) {
      const base = opposite * book.maxRows;
      const levels = book.count[opposite]!;
      for (let i = 0; i < levels && order.remaining > 0 && order.state === IN_FLIGHT; i++) {
        const price = book.price[base + i]!;
        if (!order.market && !reaches(order.side, price, order.limit)) break;
        const size = book.size[base + i]!;
        if (size > 0) this.fill(order, Math.min(size, order.remaining), price);
      }
    }
    if (order.state !== IN_FLIGHT) return;
    if (order.market) {
      this.finish(order);
      this.status(order.ref, 'cancelled', order.filled > 0 ? 'market order: no more liquidity in the book' : 'no liquidity');
      return;
    }
    // Everything within our limit was taken by the walk: only liquidity beyond that fills us later.
    order.credited = book === undefined ? 0 : reachable(book, opposite, order.side, order.limit);
    const shown = book === undefined ? 0 : displayedAt(book, order.side > 0 ? BID : ASK, order.side, order.limit);
    order.queueAhead = Number.isNaN(shown) ? Infinity : shown;
    this.rest(order);
  }

  /** Book batch for one instrument with resting orders. */
  private recheck(list: PaperOrder[], book: OrderBook): void {
    // New opposite liquidity taken by orders ahead in this pass: one display fills once.
    let takenByBuys = 0;
    let takenBySells = 0;
    for (let i = 0; i < list.length; i++) {
      const o = list[i]!;
      if (o.state !== RESTING) continue;
      const shown = displayedAt(book, o.side > 0 ? BID : ASK, o.side, o.limit);
      // The queue only shrinks: size added at our price joins behind us.
      if (!Number.isNaN(shown) && shown < o.queueAhead) o.queueAhead = shown;
      const reach = reachable(book, o.side > 0 ? ASK : BID, o.side, o.limit);
      const fresh = reach - o.credited - (o.side > 0 ? takenByBuys : takenBySells);
      o.credited = reach;
      if (fresh <= 0) continue;
      const q = Math.min(fresh, o.remaining);
      if (o.side > 0) takenByBuys += q;
      else takenBySells += q;
      // The other side crossed into a resting order: it trades at the resting order's price.
      this.fill(o, q, o.limit);
    }
  }

  /** One print against one instrument's resting orders (priority order). */
  private matchPrint(list: PaperOrder[], price: number, size: number): void {
    // A print has a buyer and a seller: our bids share its size, and so do our offers.
    let buyLeft = size;
    let sellLeft = size;
    // Print volume that went to the displayed queue at the print's price: it was ahead of every order of ours there.
    let buyQueueEaten = 0;
    let sellQueueEaten = 0;
    for (let i = 0; i < list.length; i++) {
      const o = list[i]!;
      if (o.state !== RESTING) continue;
      let left = o.side > 0 ? buyLeft : sellLeft;
      // > 0: the print is through our price; 0: at it; < 0: it does not reach us.
      const through = o.side * (o.limit - price);
      if (through < -EPS) continue;
      if (through > EPS) {
        // Whoever traded there would have met us first, at our price.
        const q = Math.min(left, o.remaining);
        left -= q;
        if (q > 0) this.fill(o, q, o.limit);
      } else {
        // Even a print used up before us ate queue ahead of us (the same displayed queue).
        const eatenBefore = o.side > 0 ? buyQueueEaten : sellQueueEaten;
        const ahead = Math.max(0, o.queueAhead - eatenBefore);
        const eat = Math.min(left, ahead);
        left -= eat;
        o.queueAhead = ahead - eat;
        if (o.side > 0) buyQueueEaten += eat;
        else sellQueueEaten += eat;
        if (left > 0) {
          const q = Math.min(left, o.remaining);
          left -= q;
          this.fill(o, q, o.limit);
        }
      }
      if (o.side > 0) buyLeft = left;
      else sellLeft = left;
    }
  }

  private fill(order: PaperOrder, quantity: number, price: number): void {
    const { feePerShare, minFeePerOrder } = this.options;
    order.remaining -= quantity;
    order.filled += quantity;
    const total = Math.max(minFeePerOrder, feePerShare * order.filled);
    // IB fixed pricing is per order: each fill pays what the order's total grew by.
    const commission = Math.max(0, round4(total - order.commissionPaid));
    order.commissionPaid = round4(order.commissionPaid + commission);
    order.fills++;
    if (order.remaining <= 0) this.finish(order);
    this.emit({
      kind: 'fill',
      ref: order.ref,
      execId: `book.${order.ref}.${order.fills}`,
      symbol: order.symbol,
      quantity: order.side * quantity,
      price,
      commission,
      at: this.options.clock.wallNow(),
    });
  }

  private rest(order: PaperOrder): void {
    order.state = RESTING;
    const list = (this.restingOn[order.instrument] ??= []);
    // Price priority among our orders of one side, then time (append after equals).
    let at = list.length;
    for (let i = 0; i < list.length; i++) {
      const other = list[i]!;
      if (other.side === order.side && other.state === RESTING && order.side * (order.limit - other.limit) > EPS) {
        at = i;
        break;
      }
    }
    list.splice(at, 0, order);
    this.restingTotal++;
  }

  /** The order is done (filled, cancelled): forget it and take it off its instrument's list. */
  private finish(order: PaperOrder): void {
    const wasResting = order.state === RESTING;
    order.state = DONE;
    this.live.delete(order.ref);
    if (!wasResting) return;
    this.restingTotal--;
    if (this.sweeping > 0) {
      this.needsCompaction = true;
      return;
    }
    const list = this.restingOn[order.instrument]!;
    const i = list.indexOf(order);
    if (i >= 0) list.splice(i, 1);
  }

  private endSweep(): void {
    this.sweeping--;
    if (this.sweeping > 0 || !this.needsCompaction) return;
    this.needsCompaction = false;
    for (const list of this.restingOn) {
      if (list === undefined) continue;
      let w = 0;
      for (let r = 0; r < list.length; r++) if (list[r]!.state === RESTING) list[w++] = list[r]!;
      list.length = w;
    }
  }

  private status(ref: string, state: OrderState, reason?: string): void {
    const at = this.options.clock.wallNow();
    this.emit(reason === undefined ? { kind: 'status', ref, state, at } : { kind: 'status', ref, state, reason, at });
  }

  private emit(event: VenueEvent): void {
    this.options.onEvent(event);
  }
}

/** True when `price` on the opposite side is good enough for an order of `side` limited at `limit`. */
function reaches(side: 1 | -1, price: number, limit: number): boolean {
  return side > 0 ? price <= limit + EPS : price >= limit - EPS;
}

/** Displayed size on `bookSide` at prices an order of `side` limited at `limit` would take. */
function reachable(book: OrderBook, bookSide: number, side: 1 | -1, limit: number): number {
  const base = bookSide * book.maxRows;
  const levels = book.count[bookSide]!;
  let total = 0;
  for (let i = 0; i < levels; i++) {
    if (!reaches(side, book.price[base + i]!, limit)) break;
    total += book.size[base + i]!;
  }
  return total;
}

/**
 * Displayed size at `price` on `bookSide` (our own side, for an order of `side`):
 * 0 when no level shows that price, NaN when it lies beyond a full side's rows (unknown).
 */
function displayedAt(book: OrderBook, bookSide: number, side: 1 | -1, price: number): number {
  const base = bookSide * book.maxRows;
  const levels = book.count[bookSide]!;
  for (let i = 0; i < levels; i++) {
    const level = book.price[base + i]!;
    if (Math.abs(level - price) <= EPS) return book.size[base + i]!;
    // Levels run best first: once one is worse than our price, ours is not shown.
    if (side * (price - level) > EPS) return 0;
  }
  return book.rowCount[bookSide] === book.maxRows ? NaN : 0;
}

function round4(x: number): number {
  return Math.round(x * 1e4) / 1e4;
}
