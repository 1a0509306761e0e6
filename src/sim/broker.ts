/**
 * The simulated broker: every client's orders, matched against the
 * simulator's own market, with the lifecycle TWS reports for them.
 *
 * Stocks and SPY options (secType OPT, checked against the day's listing:
 * an unknown contract is error 200). An option order fills against the
 * chain's own quote: a marketable limit takes the ask (a sell the bid) at
 * its price up to the size shown, a resting one fills at its limit when the
 * quote comes through it or the chain prints at or through it (up to the
 * print's size), and a quote it has taken (the same price and size) is not
 * taken again. 100 shares a contract, IBKR Pro's tiered option
 * commission (trading/option-commissions.ts). At each trading day's close
 * the day's option orders are cancelled and options/expiry-desk.ts settles
 * positions as IB does: exercised, assigned or expired on their expiry
 * day, short calls assigned early before an ex-dividend date; positions and
 * cash change and no execution is reported.
 *
 * Combos (secType BAG, SPY options only: options/combo.ts) fill all legs at
 * once at a net price, or not at all: on arrival and at each turn of the
 * pump while the legs' touches reach the net limit, up to the smallest size
 * shown over its ratio. Each leg is reported as IB does, an execution and a
 * commission report of its own with the leg's contract, and is held as its
 * own position; the order's status carries the net price.
 *
 * EXERCISE_OPTIONS (options/expiry-desk.ts): a lapse instruction lets long
 * contracts expire at the close even in the money; an exercise delivers the
 * shares at once. Neither is reported but in positions and account values.
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
import { expiryMs } from '../options/expiry.js';
import { optionCommissionSchedule, OptionOrderCost } from '../trading/option-commissions.js';
import { Accounts, type Holding } from './account.js';
import { stockContract, type InstrumentUniverse, type SimContract } from './instruments.js';
import { ASK, BID, type InstrumentBook } from './market.js';
import type { MarketData } from './market-data.js';
import type { OptionChain, OptionQuote } from './options/chain.js';
import type { Dividend } from './options/close-of-day.js';
import { comboReaches, comboTouch, type ComboLegQuote, type ComboTouch } from './options/combo.js';
import { ExpiryDesk } from './options/expiry-desk.js';
import { OPTION_MULTIPLIER, type OptionContract as ListedOption } from './options/listing.js';
import {
  commissionReport,
  execDetails,
  execDetailsEnd,
  openOrder,
  openOrderEnd,
  orderStatus,
  parseCancelOrder,
  parseExerciseOptions,
  parsePlaceOrder,
  UNSOLICITED,
  type ContractRef,
  type ExerciseRequest,
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
/** IBKR Pro's tiered option commission and fees, at keel's defaults. */
export const OPTION_COMMISSIONS = optionCommissionSchedule.parse({});

export type OrderStatus = 'Inactive' | 'PreSubmitted' | 'Submitted' | 'Filled' | 'Cancelled';

const NO_DEFINITION = 'No security definition has been found for the request';

/** A combo's leg as the broker fills it: its option, and what the order has done in it. */
interface ComboLeg extends ComboLegQuote {
  readonly contract: SimContract;
  /** Each leg pays the option schedule as an order of its own. */
  readonly cost: OptionOrderCost;
  filled: number;
  filledTicks: number;
}

/** Where an order fills: a stock's book, an option's quote (with what the order has taken from it), or a combo's legs' quotes. */
type OrderMarket =
  | { readonly kind: 'book'; readonly book: InstrumentBook }
  | {
      readonly kind: 'quote';
      readonly quote: OptionQuote;
      readonly cost: OptionOrderCost;
      /** A limit that rested without reaching the quote on arrival: it fills at its own price. */
      passive: boolean;
      takenPrice: number;
      takenSize: number;
    }
  | {
      readonly kind: 'combo';
      readonly legs: readonly ComboLeg[];
      /** The touch last taken (prices and size), not taken again. */
      taken: string;
    };

type Traded = Pick<Order, 'contract' | 'market'>;
/** Why an order or request is refused, as TWS's error code and text. */
interface Refusal {
  readonly code: number;
  readonly message: string;
}

/** An order as the broker keeps it: what TWS reports about it, and the market it trades on. */
export interface Order extends SimOrderView {
  status: OrderStatus;
  readonly contract: SimContract;
  readonly market: OrderMarket;
  /** Sum of price × shares over the fills, in ticks: the average fill price without rounding drift. */
  filledTicks: number;
  executionCount: number;
}

/** One fill, with what it cost and what it realized. */
export interface Execution extends SimExecution {
  readonly contract: SimContract;
  readonly commission: number;
  /** Undefined when the fill only opened or added to a position. */
  readonly realizedPnl: number | undefined;
}

export interface BrokerOptions {
  readonly clock: Clock;
  readonly marketData: MarketData;
  readonly instruments: InstrumentUniverse;
  /** SPY's option chain: the listing option orders are checked against, and the quotes they fill on. */
  readonly chain: OptionChain;
  /** The underlyings' cash dividends, for early assignment of short calls before their ex-dates. */
  readonly dividends?: readonly Dividend[];
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
  /** Submitted stock orders with something left, per instrument index, oldest first: time priority. */
  private readonly working = new Map<number, Order[]>();
  /** Submitted option and combo orders with something left, oldest first. */
  private readonly workingOptions: Order[] = [];
  /** Settles option positions at each close, and takes exercise instructions. */
  private readonly expiries: ExpiryDesk;
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
    this.accounts = new Accounts(options.accounts, (contract) => this.markPrice(contract), options.clock);
    this.expiries = new ExpiryDesk({
      accounts: this.accounts,
      clock: options.clock,
      dividends: options.dividends ?? [],
      stockOf: (symbol) => this.stockOf(symbol),
      priceOf: (stock) => this.markPrice(stock),
    });
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

  /** The holding of a stock by its symbol, or of an option by its OSI symbol. */
  positionOf(account: string, symbol: string): Readonly<Holding> | undefined {
    for (const h of this.accounts.get(account)?.holdings.values() ?? []) if (h.contract.localSymbol === symbol) return h;
    return undefined;
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
    const secType = placed.secType.toUpperCase();
    const traded = secType === 'BAG' ? this.comboTraded(placed) : secType === 'OPT' ? this.optionTraded(placed) : this.stockTraded(placed);
    if (!traded) return session.error(id, 200, NO_DEFINITION);
    if ('code' in traded) return session.error(id, traded.code, traded.message);
    const expired = optionsOf(traded).find((c) => this.options.clock.wallNow() >= expiryMs(c.expiry));
    if (expired) return session.error(id, 201, `Order rejected - reason:${expired.localSymbol} expired at the close of ${expired.expiry}`);
    const orderType = placed.orderType.toUpperCase();
    if (orderType !== 'MKT' && orderType !== 'LMT') {
      return session.error(id, 387, `Unsupported order type for this exchange and security type: the simulator takes MKT and LMT orders, not ${placed.orderType}`);
    }
    if (orderType === 'LMT') {
      const limit = placed.lmtPrice;
      // A combo's net limit is negative for a credit.
      if (limit === undefined || (limit <= 0 && secType !== 'BAG')) return invalid(session, id, 'a limit order needs a limit price above 0');
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
      ...traded,
      filledTicks: 0,
      executionCount: 0,
    };
    this.orders.set(orderKey(clientId, id), order);
    this.report(order, true);
    if (!placed.transmit) return;
    // The book must live while an order works on it, whether or not anyone watches its data.
    if (order.market.kind === 'book') this.options.marketData.market.watch(order.market.book, this.options.clock.now());
    // Option positions settle at a close: from the first option order on, the broker watches for it.
    else this.expiries.watch();
    this.options.clock.setTimeout(() => this.submit(order), this.options.ackDelayMs ?? 5);
  }

  /** A stock order's contract and book. */
  private stockTraded(placed: PlacedOrder): Traded | undefined {
    const instrument = this.options.instruments.find(placed.conId, placed.symbol, placed.secType);
    if (!instrument) return undefined;
    return { contract: stockContract(instrument), market: { kind: 'book', book: this.options.marketData.market.book(instrument) } };
  }

  /**
   * An option a request names, found in the day's listing by conId, local
   * symbol, or expiry, strike and right, and its live quote; undefined when
   * not listed or when a field the request names disagrees with the listing.
   */
  private listedOption(ref: ContractRef): { contract: SimContract; quote: OptionQuote } | undefined {
    const { listing } = this.options.chain;
    const expiry = ref.lastTradeDateOrContractMonth;
    const right = rightOf(ref.right);
    let listed: ListedOption | undefined;
    if (ref.conId > 0) listed = listing.byId(ref.conId);
    else if (ref.localSymbol !== '') listed = listing.bySymbol(ref.localSymbol);
    else if (/^\d{8}$/.test(expiry) && ref.strike !== undefined && right !== undefined) listed = listing.select(expiry, ref.strike, right)[0];
    if (!listed || !agreesWith(ref, listed, listing.root)) return undefined;
    const quote = this.options.chain.tradedQuote(listed.conId);
    if (!quote) return undefined;
    const contract: SimContract = {
      conId: listed.conId, symbol: listing.root, secType: 'OPT', expiry: listed.expiry, strike: listed.strike, right: listed.right,
      multiplier: OPTION_MULTIPLIER, localSymbol: listed.localSymbol, primaryExch: '',
    };
    return { contract, quote };
  }

  /** An option order's contract and quote. */
  private optionTraded(placed: PlacedOrder): Traded | undefined {
    const listed = this.listedOption(placed);
    if (!listed) return undefined;
    return { contract: listed.contract, market: { kind: 'quote', quote: listed.quote, cost: new OptionOrderCost(OPTION_COMMISSIONS), passive: false, takenPrice: NaN, takenSize: NaN } };
  }

  /**
   * A combo order's legs, each a listed option of the chain's root named by
   * conId (200 naming the leg when not); per-leg prices only on two legs
   * (10058, OPTIONS-NOTES.md §2).
   */
  private comboTraded(placed: PlacedOrder): Traded | Refusal | undefined {
    const root = this.options.chain.listing.root;
    if (placed.symbol.toUpperCase() !== root) return undefined;
    const { comboLegs, legPrices } = placed;
    if (comboLegs.length < 2) return invalidRequest(`a combo needs at least two legs, got ${comboLegs.length}`);
    if (legPrices.length > 0 && legPrices.length !== comboLegs.length) return invalidRequest(`orderComboLegs has ${legPrices.length} prices for ${comboLegs.length} legs`);
    // The code is IB's (OPTIONS-NOTES.md §2); the text is ours, IB's own wording not verified.
    if (comboLegs.length > 2 && legPrices.some((p) => p !== undefined)) {
      return { code: 10058, message: `Per-leg prices are supported only on two-leg combos; this one has ${comboLegs.length} legs` };
    }
    const legs: ComboLeg[] = [];
    for (const [i, leg] of comboLegs.entries()) {
      const listed = leg.conId > 0 ? this.listedOption(byConId(leg.conId)) : undefined;
      if (!listed) return { code: 200, message: `${NO_DEFINITION}: combo leg ${i + 1}, conId ${leg.conId}, is not a listed ${root} option` };
      legs.push({ ...listed, action: leg.action, ratio: leg.ratio, limit: legPrices[i], cost: new OptionOrderCost(OPTION_COMMISSIONS), filled: 0, filledTicks: 0 });
    }
    const contract: SimContract = { conId: 0, symbol: root, secType: 'BAG', expiry: '', strike: 0, right: '', multiplier: 1, localSymbol: '', primaryExch: '' };
    return { contract, market: { kind: 'combo', legs, taken: '' } };
  }

  /** The order reaches the market: it takes what it can at once, and the rest works. */
  private submit(order: Order): void {
    if (order.status !== 'PreSubmitted') return; // cancelled before it got there
    order.status = 'Submitted';
    this.report(order, true);
    const market = order.market;
    if (market.kind !== 'book') {
      if (market.kind === 'quote') this.takeQuote(order, market, true);
      else this.takeCombo(order, market);
      if (order.status === 'Submitted') this.workingOptions.push(order);
      return;
    }
    const side = order.action === 'BUY' ? ASK : BID;
    const limitTicks = order.orderType === 'LMT' ? Math.round(order.lmtPrice! * 100) : undefined;
    this.taking = true;
    try {
      market.book.take(side, order.remaining, limitTicks, (priceTicks, size) => this.fill(order, priceTicks, size));
    } finally {
      this.taking = false;
    }
    if (order.status !== 'Submitted') return;
    let list = this.working.get(market.book.index);
    if (!list) this.working.set(market.book.index, (list = []));
    list.push(order);
  }

  /**
   * An option order against its quote now: the far side, when the order's
   * limit reaches it, up to the size shown, unless the order took this very
   * quote (price and size) before.
   */
  private takeQuote(order: Order, market: Extract<OrderMarket, { kind: 'quote' }>, arriving: boolean): void {
    const buy = order.action === 'BUY';
    const price = buy ? market.quote.ask : market.quote.bid;
    const size = buy ? market.quote.askSize : market.quote.bidSize;
    const reached = price > 0 && size > 0 && (order.orderType === 'MKT' || (buy ? price <= order.lmtPrice! + 1e-9 : price >= order.lmtPrice! - 1e-9));
    if (!reached) {
      if (arriving && order.orderType === 'LMT') market.passive = true;
      return;
    }
    if (price === market.takenPrice && size === market.takenSize) return;
    market.takenPrice = price;
    market.takenSize = size;
    this.fill(order, Math.round((market.passive ? order.lmtPrice! : price) * 100), Math.min(size, order.remaining));
  }

  /** A combo against its legs' touches now: every leg at its own touch when the net reaches the limit, unless that touch was taken before. */
  private takeCombo(order: Order, market: Extract<OrderMarket, { kind: 'combo' }>): void {
    const touch = comboTouch(order.action, market.legs);
    if (!touch || !comboReaches(order.action, order.orderType === 'LMT' ? order.lmtPrice : undefined, market.legs, touch)) return;
    const taken = JSON.stringify(touch);
    if (taken === market.taken) return;
    market.taken = taken;
    this.fillCombo(order, market, touch, Math.min(touch.size, order.remaining));
  }

  /**
   * Each turn of the simulator's pump: working option orders against their
   * quotes as they are now, then the close of each trading day the wall
   * clock has passed (read every turn: a test's clock may run fast).
   */
  onPump(): void {
    for (const order of [...this.workingOptions]) {
      if (order.market.kind === 'quote') this.takeQuote(order, order.market, false);
      else if (order.market.kind === 'combo') this.takeCombo(order, order.market);
    }
    this.expiries.onPump((date) => this.cancelExpiring(date));
  }

  /** A trading day's close: option orders on the day's expiry (a combo: any leg's) are cancelled before the desk settles positions. */
  private cancelExpiring(date: string): void {
    for (const order of [...this.workingOptions]) {
      if (!optionsOf(order).some((c) => c.expiry === date)) continue;
      order.status = 'Cancelled';
      this.stopWorking(order);
      this.report(order, true);
    }
  }

  private stockOf(symbol: string): SimContract {
    return stockContract(this.options.instruments.find(0, symbol, 'STK')!);
  }

  /**
   * EXERCISE_OPTIONS: a lapse instruction is kept for the close, an exercise
   * delivers at once (options/exercise.ts). Refusals are error 322, TWS's
   * "Error processing request" (321 is kept for requests malformed on the
   * wire), naming what was wrong; IB's own codes for each case are not
   * verified.
   */
  exerciseOptions(session: Session, fields: readonly string[]): void {
    let request: ExerciseRequest;
    try {
      request = parseExerciseOptions(fields, session.serverVersion);
    } catch (err) {
      return invalid(session, /^\d+$/.test(fields[2] ?? '') ? Number(fields[2]) : NO_ID, (err as Error).message);
    }
    const { reqId } = request;
    const refuse = (cause: string) => session.error(reqId, 322, `Error processing request:-'bw' : cause - ${cause}`);
    const listed = this.listedOption(request.contract);
    if (!listed) return session.error(reqId, 200, NO_DEFINITION);
    const account = this.accounts.forOrder(request.account);
    if (!account) return refuse(`unknown account ${JSON.stringify(request.account)}`);
    const decision = this.expiries.exercise(account, listed.contract, request.action, request.quantity);
    if (decision.kind === 'refused') refuse(decision.reason);
  }

  /** The price a contract is marked at, a share: the middle of a stock's book or of an option's quote (0 once no longer listed). */
  private markPrice(contract: SimContract): number {
    if (contract.secType === 'OPT') {
      const quote = this.options.chain.tradedQuote(contract.conId);
      return quote ? (quote.bid + quote.ask) / 2 : 0;
    }
    const book = this.options.marketData.market.book(this.options.instruments.find(contract.conId, '', '')!);
    return (book.bestBid() + book.bestAsk()) / 200;
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

  /** The chain printed an option: resting limit orders on it that the print reaches fill at their limits, oldest first, up to its size. */
  onOptionPrint(conId: number, price: number, size: number): void {
    let left = size;
    const priceTicks = Math.round(price * 100);
    for (const order of [...this.workingOptions]) {
      if (left === 0) break;
      if (order.market.kind !== 'quote' || order.orderType !== 'LMT' || order.contract.conId !== conId || !reaches(order, priceTicks)) continue;
      const contracts = Math.min(left, order.remaining);
      left -= contracts;
      this.fill(order, Math.round(order.lmtPrice! * 100), contracts);
    }
  }

  /** One execution of `shares` (an option's: contracts) of a stock or option order, then the order's new status, then the account. */
  private fill(order: Order, priceTicks: number, shares: number): void {
    const price = priceTicks / 100;
    const units = order.action === 'BUY' ? shares : -shares;
    progress(order, priceTicks, shares);
    const chargedBefore = order.commission ?? 0;
    // The order as a whole pays max(minimum, per unit): the minimum comes with the first fill, later fills pay only what exceeds it.
    if (order.market.kind === 'quote') order.commission = round4(chargedBefore + order.market.cost.fill(units, price, order.contract.multiplier));
    else order.commission = round4(Math.max(MIN_COMMISSION_PER_ORDER, COMMISSION_PER_SHARE * order.filled));
    this.execute(order, order.contract, units, priceTicks, round4(order.commission - chargedBefore), order.filled, order.avgFillPrice);
    this.settled(order, [order.contract]);
  }

  /** `combos` of a combo at once: each leg at its touch, an execution of its own, then the order's status at the net price, then the account. */
  private fillCombo(order: Order, market: Extract<OrderMarket, { kind: 'combo' }>, touch: ComboTouch, combos: number): void {
    progress(order, Math.round(touch.net * 100), combos);
    for (const [i, leg] of market.legs.entries()) {
      const { buy, price } = touch.legs[i]!;
      const priceTicks = Math.round(price * 100);
      const units = (buy ? 1 : -1) * combos * leg.ratio;
      leg.filled += Math.abs(units);
      leg.filledTicks += priceTicks * Math.abs(units);
      const commission = leg.cost.fill(units, price, leg.contract.multiplier);
      order.commission = round4((order.commission ?? 0) + commission);
      this.execute(order, leg.contract, units, priceTicks, commission, leg.filled, leg.filledTicks / leg.filled / 100);
    }
    this.settled(order, market.legs.map((l) => l.contract));
  }

  /** Books one execution of `units` (signed) of `contract` and reports it: execDetails and its commission report (twice under the duplicate fault; a bad one after it when armed). */
  private execute(order: Order, contract: SimContract, units: number, priceTicks: number, commission: number, cumQty: number, avgPrice: number): void {
    const price = priceTicks / 100;
    const account = this.accounts.get(order.account)!;
    const realizedPnl = account.book(contract, units, price, commission);
    const execution: Execution = {
      execId: `${order.permId.toString(16).padStart(8, '0')}.${this.sessionStamp}.${(++order.executionCount).toString(16).padStart(2, '0')}.01`,
      orderId: order.orderId,
      clientId: order.clientId,
      permId: order.permId,
      time: new Date(this.options.clock.wallNow()),
      account: order.account,
      exchange: contract.secType === 'OPT' ? 'CBOE' : contract.primaryExch === 'ARCA' ? 'ARCA' : 'ISLAND',
      side: units > 0 ? 'BOT' : 'SLD',
      shares: Math.abs(units),
      price,
      cumQty,
      avgPrice,
      orderRef: order.orderRef,
      contract,
      commission,
      realizedPnl,
    };
    this.fills.push(execution);
    const session = this.sessionOf(order.clientId);
    for (let copies = this.duplicateExecutions ? 2 : 1; copies > 0; copies--) {
      session?.send(execDetails(session.serverVersion, UNSOLICITED, execution, contract));
      session?.send(commissionReport(execution.execId, commission, 'USD', realizedPnl));
    }
    if (this.badExecution !== undefined && session) this.sendBadExecution(this.badExecution, order, execution, session);
  }

  /** After an order's fills: its status to its client, then the changed positions and values to whoever follows them. */
  private settled(order: Order, contracts: readonly SimContract[]): void {
    if (order.remaining === 0) {
      order.status = 'Filled';
      this.stopWorking(order);
    }
    this.report(order, order.status === 'Filled');
    const account = this.accounts.get(order.account)!;
    for (const contract of contracts) this.accounts.changed(account, contract);
  }

  /** The fault's one bad report, after a real execution of the same order; disarms the fault. */
  private sendBadExecution(kind: BadExecutionKind, order: Order, real: Execution, session: Session): void {
    this.badExecution = undefined;
    const execId = `${order.permId.toString(16).padStart(8, '0')}.${this.sessionStamp}.b${++this.badExecutionsSent}.01`;
    let contract = order.contract;
    let shares = real.shares;
    let price = real.price;
    if (kind === 'wrong-symbol') {
      contract = stockContract({ ...WRONG_CONTRACT, index: -1 });
      shares = 1_000_000;
      price = WRONG_CONTRACT.openPrice;
    } else if (kind === 'overfill') {
      shares = order.remaining + 1;
    }
    const report: SimExecution = { ...real, execId, shares, price, cumQty: order.filled + shares };
    const fields = execDetails(session.serverVersion, UNSOLICITED, report, contract);
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
      if (symbol !== '' && e.contract.symbol !== symbol.toUpperCase()) continue;
      if (secType !== '' && secType.toUpperCase() !== e.contract.secType) continue;
      if (sideCode !== '' && e.side !== sideCode) continue;
      session.send(execDetails(session.serverVersion, reqId, e, e.contract));
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
    const news = statusChanged ? [openOrder(session.serverVersion, order, order.contract)] : [];
    news.push(orderStatus(session.serverVersion, order));
    const send = () => news.forEach((m) => session.send(m));
    if (this.orderNewsDelayMs > 0) this.options.clock.setTimeout(send, this.orderNewsDelayMs);
    else send();
  }

  private stopWorking(order: Order): void {
    const list = order.market.kind === 'book' ? this.working.get(order.market.book.index) : this.workingOptions;
    const at = list?.indexOf(order) ?? -1;
    if (at >= 0) list!.splice(at, 1);
  }

  /** The session with this client id now: at most one, as TWS refuses a second (326). */
  private sessionOf(clientId: number): Session | undefined {
    for (const session of this.options.sessions) if (session.clientId === clientId && session.open) return session;
    return undefined;
  }
}

/** An order's right as the client may write it: C, CALL, P or PUT. */
function rightOf(text: string): 'C' | 'P' | undefined {
  const right = text.toUpperCase();
  return right === 'C' || right === 'CALL' ? 'C' : right === 'P' || right === 'PUT' ? 'P' : undefined;
}

/** The options an order trades: an option order's one, a combo's legs'. */
function optionsOf({ contract, market }: Traded): SimContract[] {
  return market.kind === 'combo' ? market.legs.map((l) => l.contract) : market.kind === 'quote' ? [contract] : [];
}

/** A contract named by its conId alone, as a combo leg names it. */
function byConId(conId: number): ContractRef {
  return { conId, symbol: '', secType: 'OPT', lastTradeDateOrContractMonth: '', strike: undefined, right: '', multiplier: '', exchange: '', currency: '', localSymbol: '' };
}

/** An order's fill of `units` (shares, contracts or combos) at `priceTicks` each: what it has filled, what is left, its average and last price. */
function progress(order: Order, priceTicks: number, units: number): void {
  order.filled += units;
  order.remaining -= units;
  order.filledTicks += priceTicks * units;
  order.avgFillPrice = order.filledTicks / order.filled / 100;
  order.lastFillPrice = priceTicks / 100;
}

/** Whether every contract field a request names (a stock's are empty) is the listed option's. */
function agreesWith(placed: ContractRef, listed: ListedOption, root: string): boolean {
  return (
    [root, ''].includes(placed.symbol.toUpperCase()) &&
    [listed.expiry, ''].includes(placed.lastTradeDateOrContractMonth) &&
    (placed.strike === undefined || placed.strike === 0 || Math.abs(placed.strike - listed.strike) < 1e-6) &&
    (placed.right === '' || rightOf(placed.right) === listed.right) &&
    ['', String(OPTION_MULTIPLIER)].includes(placed.multiplier)
  );
}

/** An option of the broker's as options/settlement.ts knows options. */
function orderKey(clientId: number, orderId: number): string {
  return `${clientId}:${orderId}`;
}

/** Error 321, TWS's answer to a request it cannot validate; `cause` says what was wrong. */
function invalid(session: Session, id: number, cause: string): void {
  const { code, message } = invalidRequest(cause);
  session.error(id, code, message);
}

function invalidRequest(cause: string): Refusal {
  return { code: 321, message: `Error validating request:-'bO' : cause - ${cause}` };
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
