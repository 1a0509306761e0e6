/**
 * The simulated broker: every client's orders, matched against the
 * simulator's own market, with the lifecycle TWS reports for them.
 *
 * An order is acknowledged at once (openOrder, orderStatus PreSubmitted) and
 * reaches the market `ackDelayMs` later (Submitted). Its marketable part then
 * walks the book, one execution per level taken. What is left works: a BUY
 * limit fills against later trades the market prints at or below its limit,
 * a SELL limit at or above, a market order at any price, each up to the
 * printed size and at the printed price. Working orders are not in the book:
 * the market's own traders never see them and they never trade with each
 * other.
 *
 * Like TWS, the broker outlives connections: orders, executions and positions
 * stay when a client disconnects, and news of an order goes to whichever
 * session has its client id at the time. Commissions follow IB's fixed
 * pricing for US stocks; the money and holdings are kept in account.ts.
 */
import type { Clock } from '../clock.js';
import { Accounts, type Holding } from './account.js';
import type { Instrument, InstrumentUniverse } from './instruments.js';
import { ASK, BID, type InstrumentBook } from './market.js';
import type { MarketData } from './market-data.js';
import {
  commissionReport,
  execDetails,
  execDetailsEnd,
  openOrder,
  openOrderEnd,
  orderStatus,
  parseCancelOrder,
  parsePlaceOrder,
  UNSOLICITED,
  type PlacedOrder,
  type SimExecution,
  type SimOrderView,
} from './order-messages.js';
import { NO_ID, type Session } from './session.js';

/**
 * Execution reports TWS should never send, which keel must refuse (a fault):
 * - `price-not-a-number`: the price field reads `abc`;
 * - `wrong-symbol`: 1,000,000 shares of TSLA, a contract the order is not for;
 * - `overfill`: one share more than the order has left.
 */
export const BAD_EXECUTION_KINDS = ['price-not-a-number', 'wrong-symbol', 'overfill'] as const;
export type BadExecutionKind = (typeof BAD_EXECUTION_KINDS)[number];

/** The contract a `wrong-symbol` report names: not in the simulator's universe, and no order's. */
const WRONG_CONTRACT = { symbol: 'TSLA', conId: 76792991, primaryExch: 'NASDAQ', longName: 'TESLA INC', industry: 'Consumer, Cyclical', openPrice: 250, synthetic: false } as const;

/** IB fixed pricing for US stocks: per share, with a minimum per order. */
export const COMMISSION_PER_SHARE = 0.005;
export const MIN_COMMISSION_PER_ORDER = 1;

export type OrderStatus = 'Inactive' | 'PreSubmitted' | 'Submitted' | 'Filled' | 'Cancelled';

/** An order as the broker keeps it: what TWS reports about it, and the book it trades on. */
export interface Order extends SimOrderView {
  status: OrderStatus;
  readonly instrument: Instrument;
  readonly book: InstrumentBook;
  /** Sum of price × shares over the fills, in ticks: the average fill price without rounding drift. */
  filledTicks: number;
  executionCount: number;
}

/** One fill, with what it cost and what it realized. */
export interface Execution extends SimExecution {
  readonly instrument: Instrument;
  readonly commission: number;
  /** Undefined when the fill only opened or added to a position. */
  readonly realizedPnl: number | undefined;
}

export interface BrokerOptions {
  readonly clock: Clock;
  readonly marketData: MarketData;
  readonly instruments: InstrumentUniverse;
  readonly accounts: readonly string[];
  /** The simulator's live sessions: news of an order goes to the one with its client id. */
  readonly sessions: ReadonlySet<Session>;
  /** From an order's arrival to its reaching the market, in ms of the clock. */
  readonly ackDelayMs?: number;
  /** The lowest id nextValidId hands out. */
  readonly firstOrderId?: number;
}

const WORKING: readonly OrderStatus[] = ['Inactive', 'PreSubmitted', 'Submitted'];

export class Broker {
  readonly accounts: Accounts;
  private readonly orders = new Map<string, Order>();
  /** Submitted orders with something left, per instrument index, oldest first: time priority. */
  private readonly working = new Map<number, Order[]>();
  private readonly highestOrderId = new Map<number, number>();
  private readonly fills: Execution[] = [];
  private nextPermId = 1_000_000_001;
  /** The second the broker opened, in hex: the middle of every execution id, as in TWS's. */
  private readonly sessionStamp: string;
  /** Set while an order takes from the book: the trades it prints itself must not fill working orders. */
  private taking = false;
  /**
   * Faults: openOrder / orderStatus reach the client this late while
   * executions go at once (TWS can report a fill before its order), and
   * every execution report is sent twice.
   */
  orderNewsDelayMs = 0;
  duplicateExecutions = false;
  /**
   * Fault, armed until the next execution: that execution's reports are
   * followed by one bad report about the same order (see
   * BAD_EXECUTION_KINDS), under an execId of its own, with a commission
   * report for it. The broker's own record stays true: the bad report is
   * not in `executions`, and no account is booked for it.
   */
  badExecution: BadExecutionKind | undefined = undefined;
  /** Bad reports sent so far (their execIds count from 1). */
  badExecutionsSent = 0;

  constructor(private readonly options: BrokerOptions) {
    this.accounts = new Accounts(options.accounts, options.marketData.market, options.clock);
    this.sessionStamp = Math.floor(options.clock.wallNow() / 1000).toString(16).padStart(8, '0');
  }

  /** Every execution so far, oldest first. */
  get executions(): readonly Execution[] {
    return this.fills;
  }

  /** Every order ever placed, oldest first. */
  allOrders(): readonly Readonly<Order>[] {
    return [...this.orders.values()];
  }

  /** Orders that can still fill or be cancelled. */
  workingOrders(): readonly Readonly<Order>[] {
    return [...this.orders.values()].filter((o) => WORKING.includes(o.status));
  }

  positionOf(account: string, symbol: string): Readonly<Holding> | undefined {
    const instrument = this.options.instruments.find(0, symbol, 'STK');
    return instrument && this.accounts.get(account)?.holdings.get(instrument.index);
  }

  /** nextValidId: past every id this client id has used, as TWS answers it. */
  nextValidId(clientId: number): number {
    return Math.max(this.options.firstOrderId ?? 1, (this.highestOrderId.get(clientId) ?? 0) + 1);
  }

  placeOrder(session: Session, fields: readonly string[]): void {
    let placed: PlacedOrder;
    try {
      placed = parsePlaceOrder(fields, session.serverVersion);
    } catch (err) {
      const id = /^\d+$/.test(fields[1] ?? '') ? Number(fields[1]) : NO_ID;
      return invalid(session, id, (err as Error).message);
    }
    const id = placed.orderId;
    const clientId = session.clientId ?? 0;
    this.highestOrderId.set(clientId, Math.max(id, this.highestOrderId.get(clientId) ?? 0));
    if (this.orders.has(orderKey(clientId, id))) return session.error(id, 103, 'Duplicate order id');
    const instrument = this.options.instruments.find(placed.conId, placed.symbol, placed.secType);
    if (!instrument) return session.error(id, 200, 'No security definition has been found for the request');
    const orderType = placed.orderType.toUpperCase();
    if (orderType !== 'MKT' && orderType !== 'LMT') {
      return session.error(id, 387, `Unsupported order type for this exchange and security type: the simulator takes MKT and LMT orders, not ${placed.orderType}`);
    }
    if (orderType === 'LMT') {
      const limit = placed.lmtPrice;
      if (limit === undefined || limit <= 0) return invalid(session, id, 'a limit order needs a limit price above 0');
      if (!onTick(limit)) return session.error(id, 110, 'The price does not conform to the minimum price variation for this contract.');
    }
    if (!Number.isInteger(placed.totalQuantity)) return invalid(session, id, `fractional quantities are not simulated, got ${placed.totalQuantity}`);
    const account = this.accounts.forOrder(placed.account);
    if (!account) return invalid(session, id, `unknown account ${JSON.stringify(placed.account)}`);

    const order: Order = {
      ...placed,
      orderType,
      account: account.code,
      permId: this.nextPermId++,
      clientId,
      // Sent with transmit off, TWS keeps the order without sending it on: it stays Inactive until cancelled.
      status: placed.transmit ? 'PreSubmitted' : 'Inactive',
      filled: 0,
      remaining: placed.totalQuantity,
      avgFillPrice: 0,
      lastFillPrice: 0,
      commission: undefined,
      instrument,
      book: this.options.marketData.market.book(instrument),
      filledTicks: 0,
      executionCount: 0,
    };
    this.orders.set(orderKey(clientId, id), order);
    this.report(order, true);
    if (!placed.transmit) return;
    // The book must live while an order works on it, whether or not anyone watches its data.
    this.options.marketData.market.watch(order.book, this.options.clock.now());
    this.options.clock.setTimeout(() => this.submit(order), this.options.ackDelayMs ?? 5);
  }

  /** The order reaches the market: it takes what it can at once, and the rest works. */
  private submit(order: Order): void {
    if (order.status !== 'PreSubmitted') return; // cancelled before it got there
    order.status = 'Submitted';
    this.report(order, true);
    const side = order.action === 'BUY' ? ASK : BID;
    const limitTicks = order.orderType === 'LMT' ? Math.round(order.lmtPrice! * 100) : undefined;
    this.taking = true;
    try {
      order.book.take(side, order.remaining, limitTicks, (priceTicks, size) => this.fill(order, priceTicks, size));
    } finally {
      this.taking = false;
    }
    if (order.status !== 'Submitted') return;
    let list = this.working.get(order.book.index);
    if (!list) this.working.set(order.book.index, (list = []));
    list.push(order);
  }

  /** A trade the market printed: working orders it reaches fill at its price, oldest first, up to its size. */
  onTrade(book: InstrumentBook, priceTicks: number, size: number): void {
    if (this.taking) return;
    const list = this.working.get(book.index);
    if (!list) return;
    let left = size;
    for (const order of [...list]) {
      if (left === 0) break;
      if (!reaches(order, priceTicks)) continue;
      const shares = Math.min(left, order.remaining);
      left -= shares;
      this.fill(order, priceTicks, shares);
    }
  }

  /** One execution: execDetails and its commission report, then the order's new status, then the account. */
  private fill(order: Order, priceTicks: number, shares: number): void {
    const price = priceTicks / 100;
    order.filled += shares;
    order.remaining -= shares;
    order.filledTicks += priceTicks * shares;
    order.avgFillPrice = order.filledTicks / order.filled / 100;
    order.lastFillPrice = price;
    // The order as a whole pays max(minimum, per share): the minimum comes with the first fill, later fills pay only what exceeds it.
    const chargedBefore = order.commission ?? 0;
    order.commission = round4(Math.max(MIN_COMMISSION_PER_ORDER, COMMISSION_PER_SHARE * order.filled));
    const commission = round4(order.commission - chargedBefore);
    const account = this.accounts.get(order.account)!;
    const realizedPnl = account.book(order.instrument, order.action === 'BUY' ? shares : -shares, price, commission);
    const execution: Execution = {
      execId: `${order.permId.toString(16).padStart(8, '0')}.${this.sessionStamp}.${(++order.executionCount).toString(16).padStart(2, '0')}.01`,
      orderId: order.orderId,
      clientId: order.clientId,
      permId: order.permId,
      time: new Date(this.options.clock.wallNow()),
      account: order.account,
      exchange: order.instrument.primaryExch === 'ARCA' ? 'ARCA' : 'ISLAND',
      side: order.action === 'BUY' ? 'BOT' : 'SLD',
      shares,
      price,
      cumQty: order.filled,
      avgPrice: order.avgFillPrice,
      orderRef: order.orderRef,
      instrument: order.instrument,
      commission,
      realizedPnl,
    };
    this.fills.push(execution);
    const session = this.sessionOf(order.clientId);
    for (let copies = this.duplicateExecutions ? 2 : 1; copies > 0; copies--) {
      session?.send(execDetails(session.serverVersion, UNSOLICITED, execution, order.instrument));
      session?.send(commissionReport(execution.execId, commission, 'USD', realizedPnl));
    }
    if (this.badExecution !== undefined && session) this.sendBadExecution(this.badExecution, order, execution, session);
    if (order.remaining === 0) {
      order.status = 'Filled';
      this.stopWorking(order);
    }
    this.report(order, order.status === 'Filled');
    this.accounts.changed(account, order.instrument);
  }

  /** The fault's one bad report, after a real execution of the same order; disarms the fault. */
  private sendBadExecution(kind: BadExecutionKind, order: Order, real: Execution, session: Session): void {
    this.badExecution = undefined;
    const execId = `${order.permId.toString(16).padStart(8, '0')}.${this.sessionStamp}.b${++this.badExecutionsSent}.01`;
    let instrument: Instrument = order.instrument;
    let shares = real.shares;
    let price = real.price;
    if (kind === 'wrong-symbol') {
      instrument = { ...WRONG_CONTRACT, index: -1 };
      shares = 1_000_000;
      price = WRONG_CONTRACT.openPrice;
    } else if (kind === 'overfill') {
      shares = order.remaining + 1;
    }
    const report: SimExecution = { ...real, execId, shares, price, cumQty: order.filled + shares };
    const fields = execDetails(session.serverVersion, UNSOLICITED, report, instrument);
    if (kind === 'price-not-a-number') {
      // execId, time, account, exchange, side, shares, price: the price is six fields after the execId.
      const at = fields.indexOf(execId) + 6;
      if (fields[at] !== price) throw new Error(`the simulator's execDetails layout moved: no price six fields after the execId (found ${String(fields[at])})`);
      fields[at] = 'abc';
    }
    session.send(fields);
    session.send(commissionReport(execId, MIN_COMMISSION_PER_ORDER, 'USD'));
  }

  cancelOrder(session: Session, fields: readonly string[]): void {
    let orderId: number;
    try {
      ({ orderId } = parseCancelOrder(fields, session.serverVersion));
    } catch (err) {
      return invalid(session, NO_ID, (err as Error).message);
    }
    const order = this.orders.get(orderKey(session.clientId ?? 0, orderId));
    if (!order || !WORKING.includes(order.status)) {
      return session.error(orderId, 10147, `OrderId ${orderId} that needs to be cancelled is not found.`);
    }
    order.status = 'Cancelled';
    this.stopWorking(order);
    this.report(order, false);
    session.error(orderId, 202, 'Order Canceled - reason:');
  }

  /** reqOpenOrders (`all` false: this client's) and reqAllOpenOrders (every client's): each working order, then the end. */
  openOrders(session: Session, all: boolean): void {
    for (const order of this.workingOrders()) {
      if (all || order.clientId === session.clientId) this.report(order, true, session);
    }
    session.send(openOrderEnd());
  }

  /** reqExecutions: `7, 3, reqId, clientId, acctCode, time, symbol, secType, exchange, side`; every execution the filter lets through, then the end. */
  reqExecutions(session: Session, fields: readonly string[]): void {
    const reqId = Number(fields[2]);
    const [clientId = '', account = '', time = '', symbol = '', secType = '', , side = ''] = fields.slice(3);
    const since = time === '' ? 0 : filterTime(time);
    if (since === undefined) return invalid(session, reqId, `the execution filter's time must be yyyymmdd-hh:mm:ss, got ${JSON.stringify(time)}`);
    const sideCode = ({ BUY: 'BOT', SELL: 'SLD' } as Record<string, string>)[side.toUpperCase()] ?? side.toUpperCase();
    for (const e of this.fills) {
      if (Number(clientId) > 0 && e.clientId !== Number(clientId)) continue;
      if (account !== '' && e.account !== account) continue;
      // Compared in whole seconds, the resolution of the time the client sees.
      if (Math.floor(e.time.getTime() / 1000) * 1000 < since) continue;
      if (symbol !== '' && e.instrument.symbol !== symbol.toUpperCase()) continue;
      if (secType !== '' && secType.toUpperCase() !== 'STK') continue;
      if (sideCode !== '' && e.side !== sideCode) continue;
      session.send(execDetails(session.serverVersion, reqId, e, e.instrument));
      session.send(commissionReport(e.execId, e.commission, 'USD', e.realizedPnl));
    }
    session.send(execDetailsEnd(reqId));
  }

  /** A session closed: its orders stay, but it follows no account any more. */
  dropSession(session: Session): void {
    this.accounts.dropSession(session);
  }

  /** Where an order stands, to its client: openOrder too when its status changed. */
  private report(order: Order, statusChanged: boolean, session = this.sessionOf(order.clientId)): void {
    if (!session) return;
    // Encoded now: the late news is the order as it was.
    const news = statusChanged ? [openOrder(session.serverVersion, order, order.instrument)] : [];
    news.push(orderStatus(session.serverVersion, order));
    const send = () => news.forEach((m) => session.send(m));
    if (this.orderNewsDelayMs > 0) this.options.clock.setTimeout(send, this.orderNewsDelayMs);
    else send();
  }

  private stopWorking(order: Order): void {
    const list = this.working.get(order.book.index);
    const at = list?.indexOf(order) ?? -1;
    if (at >= 0) list!.splice(at, 1);
  }

  /** The session with this client id now: at most one, as TWS refuses a second (326). */
  private sessionOf(clientId: number): Session | undefined {
    for (const session of this.options.sessions) if (session.clientId === clientId && session.open) return session;
    return undefined;
  }
}

function orderKey(clientId: number, orderId: number): string {
  return `${clientId}:${orderId}`;
}

/** Error 321, TWS's answer to a request it cannot validate; `cause` says what was wrong. */
function invalid(session: Session, id: number, cause: string): void {
  session.error(id, 321, `Error validating request:-'bO' : cause - ${cause}`);
}

/** Whether a trade at this price reaches a working order. */
function reaches(order: Order, priceTicks: number): boolean {
  if (order.orderType === 'MKT') return true;
  const limitTicks = Math.round(order.lmtPrice! * 100);
  return order.action === 'BUY' ? priceTicks <= limitTicks : priceTicks >= limitTicks;
}

/** Stocks trade in whole cents. */
function onTick(price: number): boolean {
  return Math.abs(price * 100 - Math.round(price * 100)) < 1e-6;
}

function round4(value: number): number {
  return Math.round(value * 10_000) / 10_000;
}

/** An execution filter's time, `yyyymmdd-hh:mm:ss` or `yyyymmdd hh:mm:ss` (seconds optional), in UTC like the executions' own. */
function filterTime(text: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})[- ](\d{2}):(\d{2})(?::(\d{2}))?(?: UTC)?$/.exec(text.trim());
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s] = m.map(Number) as [number, number, number, number, number, number, number];
  return Date.UTC(y, mo - 1, d, h, mi, Number.isNaN(s) ? 0 : s);
}
