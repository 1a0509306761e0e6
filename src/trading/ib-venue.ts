/**
 * The `ib` venue: the trader's orders go to TWS / Gateway (use a paper
 * account) through the link's pacer, and what TWS says about them comes back
 * as venue events.
 *
 * One small state machine per order, driven by openOrder, orderStatus,
 * execDetails, commissionReport and order errors:
 *
 *   sent ──► working ──► cancel-requested ──► cancelled
 *     └──► rejected         (fills move the ledger, not this machine)
 *
 * A state is only ever left forwards, so the duplicate and late messages TWS
 * sends (orderStatus repeats itself; a Submitted can trail a Cancelled) change
 * nothing. Our client order id travels as `orderRef`, IB's `permId` is the
 * broker's identity. An execution is reported once per execId, however often
 * TWS repeats it; a fill whose order is not known yet (it can arrive before
 * openOrder, or belong to an order of an earlier session) waits in a buffer
 * until openOrder names its orderRef. A commission waits for its fill.
 *
 * An option ticket (its symbol an OSI symbol `optionOf` knows) goes as an
 * OPT contract: the underlying, expiry, strike, right, multiplier and
 * conId. What comes back about it is keyed by its OSI local symbol
 * (`instrumentOf`), as the journal knows it, through the same path as a
 * stock's.
 *
 * Reports are passed on as TWS sent them, numbers that are not numbers
 * included (a price field `abc` reads as NaN): the trader checks every
 * fill and commission before anything is journaled, and refuses what does
 * not add up. A position reported during reconciliation goes to
 * `reconcile`, which judges it the same way.
 *
 * Nothing is placed with a TWS session whose managed accounts have not been
 * checked (`checkAccounts`, again after every new connection: TWS may have
 * logged in to another account meanwhile), and nothing at all, cancels
 * included, is sent to one whose accounts keel refuses (src/ib/accounts.ts).
 */
import { EventName, OptionExerciseAction, OptionType, OrderAction, OrderType, SecType, type Contract, type Execution, type CommissionReport, type Order, type OrderState as IbOrderState } from '../ib/api.js';
import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import { RepeatMerger } from '../log.js';
import { accountRefusal, requestManagedAccounts } from '../ib/accounts.js';
import { listenTo, type IbLink } from '../ib/link.js';
import { PRIORITY } from '../ib/pacer.js';
import type { OptionContract, OrderState } from '../journal/records.js';
import type { ComboTicket, OrderTicket, Venue, VenueListener } from './venue.js';

/** Where an order stands at the broker, as far as this session knows. */
type Stage = 'sent' | 'working' | 'cancel-requested' | 'cancelled' | 'rejected';

const RANK: Record<Stage, number> = { sent: 0, working: 1, 'cancel-requested': 2, cancelled: 3, rejected: 3 };

interface TrackedOrder {
  readonly ref: string;
  readonly orderId: number;
  stage: Stage;
  permId: number | undefined;
}

/** IB order statuses, as our states; PendingCancel and Filled move nothing here. */
function stageOf(status: string): Stage | undefined {
  switch (status) {
    case 'PendingSubmit':
    case 'ApiPending':
    case 'PreSubmitted':
    case 'Submitted':
      return 'working';
    case 'Cancelled':
    case 'ApiCancelled':
      return 'cancelled';
    case 'Inactive':
      return 'rejected';
    default:
      return undefined;
  }
}

/** Codes that are news about an order but not its end: warnings and information. */
function isWarning(code: number): boolean {
  return code === 399 || code === 404 || code === 10147 || (code >= 2100 && code < 2200);
}

/** What the broker holds, for reconciliation. */
export interface BrokerSnapshot {
  readonly openOrders: readonly { orderId: number; ref: string; permId: number; status: string; symbol: string }[];
  /** Signed shares (an option's: contracts) per symbol, an option's its OSI symbol. */
  readonly positions: ReadonlyMap<string, number>;
  /** Executions the broker reported for the request (duplicates of known ones included). */
  readonly executions: number;
}

/**
 * The name the journal knows a contract by: a stock's symbol, an option's
 * OSI local symbol. IB puts the underlying in an option's `symbol`, so
 * keying by it would add SPY option contracts to SPY's shares.
 */
export function instrumentOf(contract: Contract): string {
  return contract.secType === SecType.OPT ? (contract.localSymbol ?? '') : (contract.symbol ?? '');
}

/**
 * What reqPositions reported, by account and symbol. It is a subscription:
 * after the first list, TWS reports each change as the position it now is,
 * so a later report replaces the earlier one, and a fill during the snapshot
 * is counted once, as its execution is.
 */
export class PositionReports {
  private readonly latest = new Map<string, { symbol: string; position: number }>();

  report(account: string, symbol: string, position: number): void {
    this.latest.set(`${account}\u0000${symbol}`, { symbol, position });
  }

  /** Signed shares per symbol over every account; a position that is not a number stays NaN: reconciliation names it. */
  totals(): Map<string, number> {
    const totals = new Map<string, number>();
    for (const { symbol, position } of this.latest.values()) totals.set(symbol, (totals.get(symbol) ?? 0) + position);
    return totals;
  }
}

const UNCHECKED = 'the managed accounts of this TWS session are not checked yet';

/** Request ids for execution reports, far from the subscriptions' (1e9 up). */
const FIRST_EXECUTIONS_REQUEST = 900_000_000;

export interface IbVenueOptions {
  readonly link: IbLink;
  readonly clock: Clock;
  readonly log: Logger;
  readonly onEvent: VenueListener;
  /** Executions already in the ledger: never reported again. */
  readonly knownExecution: (execId: string) => boolean;
  /** Orders of earlier sessions that may still work: ref by IB order id. */
  readonly earlierOrders: ReadonlyMap<number, string>;
  /** The option a ticket's symbol names (the journal's), or undefined for a stock; without it the venue trades stocks only. */
  readonly optionOf?: (symbol: string) => OptionContract | undefined;
  readonly snapshotTimeoutMs?: number;
}

/** The contract IB is sent for a ticket: a stock by symbol, an option by its full description and conId. */
function contractFor(symbol: string, option: OptionContract | undefined): Contract {
  if (!option) return { symbol, secType: SecType.STK, exchange: 'SMART', currency: 'USD' };
  return {
    ...(option.conId > 0 ? { conId: option.conId } : {}),
    symbol: option.underlying,
    secType: SecType.OPT,
    lastTradeDateOrContractMonth: option.expiry,
    strike: option.strike,
    right: option.right === 'C' ? OptionType.Call : OptionType.Put,
    multiplier: option.multiplier,
    exchange: 'SMART',
    currency: 'USD',
  };
}

export class IbVenue implements Venue {
  readonly tradesOptions: boolean;

  private readonly orders = new Map<number, TrackedOrder>();
  private readonly byRef = new Map<string, TrackedOrder>();
  private readonly reportedExecs = new Set<string>();
  /** Fills whose order is unknown yet, by IB order id. */
  private readonly waitingFills = new Map<number, { execId: string; fill: () => void }[]>();
  /** Commissions whose fill has not been reported yet, by execId. */
  private readonly waitingCommissions = new Map<string, number>();
  duplicateExecutions = 0;
  private nextRequest = FIRST_EXECUTIONS_REQUEST;
  private snapshotting: { openOrders: BrokerSnapshot['openOrders'][number][]; positions: PositionReports; executions: number; reqId: number } | undefined;
  private readonly stopListening: () => void;
  /** Why no order may be placed with this session's accounts (unchecked, or refused); undefined once they are checked and good. */
  private accountsHold: string | undefined = UNCHECKED;
  /** The hold is a refusal: not even a cancel goes out. */
  private accountsRefused = false;
  /** The session's managed accounts, once checked: a contrary instruction names the first. */
  private accounts: string[] = [];
  /** Connections made since this venue began: an answer from an earlier one says nothing about the accounts of this one. */
  private connections = 0;

  /** TWS's notes about orders: a flood of one is one line and a count. */
  private readonly notes: RepeatMerger;

  constructor(private readonly options: IbVenueOptions) {
    this.notes = new RepeatMerger(options.log, options.clock);
    this.tradesOptions = options.optionOf !== undefined;
    for (const [orderId, ref] of options.earlierOrders) this.track(ref, orderId, 'working');
    this.stopListening = listenTo(options.link.api, [
      [EventName.openOrder, this.onOpenOrder],
      [EventName.orderStatus, this.onOrderStatus],
      [EventName.execDetails, this.onExecDetails],
      [EventName.commissionReport, this.onCommission],
      [EventName.error, this.onError],
      [EventName.position, this.onPosition],
      [EventName.connected, this.onConnected],
    ]);
  }

  submit(ticket: OrderTicket): void {
    this.place(ticket, contractFor(ticket.symbol, this.options.optionOf?.(ticket.symbol)));
  }

  /**
   * A combo goes as IB's BAG: the underlying's symbol, one leg per option
   * by conId with its ratio and side, bought or sold as a whole at the net
   * limit (a debit positive, a credit negative). Its executions come back
   * per leg, each with the leg's own contract.
   */
  readonly submitCombo = (ticket: ComboTicket): void => {
    const underlying = ticket.legs[0]?.option.underlying ?? '';
    const comboLegs = ticket.legs.map((leg) => ({
      conId: leg.option.conId,
      ratio: Math.abs(leg.ratio),
      action: leg.ratio > 0 ? OrderAction.BUY : OrderAction.SELL,
      exchange: 'SMART',
    }));
    this.place(ticket, { symbol: underlying, secType: SecType.BAG, exchange: 'SMART', currency: 'USD', comboLegs });
  };

  private place(ticket: OrderTicket, contract: Contract): void {
    const orderId = ticket.brokerOrderId;
    if (orderId === undefined) throw new Error(`order ${ticket.ref} has no IB order id: ib mode reserves one before it is journaled`);
    const order = this.track(ticket.ref, orderId, 'sent');
    if (this.accountsHold !== undefined) return this.move(order, 'rejected', `not sent: ${this.accountsHold}`);
    const sent = this.options.link.send(PRIORITY.orders, `place ${orderId} (${ticket.ref})`, (api) =>
      api.placeOrder(orderId, contract, {
        action: ticket.quantity > 0 ? OrderAction.BUY : OrderAction.SELL,
        orderType: ticket.orderType === 'MKT' ? OrderType.MKT : OrderType.LMT,
        totalQuantity: Math.abs(ticket.quantity),
        ...(ticket.orderType === 'LMT' ? { lmtPrice: ticket.limitPrice } : {}),
        orderRef: ticket.ref,
        transmit: true,
      }),
    );
    // Not sent, and never will be: the link is down. The order is recorded; it is rejected, not retried, so it cannot go twice.
    if (!sent) this.move(order, 'rejected', 'the IB link was not ready: the order was not sent');
  }

  /** The contrary instruction to TWS: let `contracts` of the option lapse at its expiry instead of being exercised (override: even in the money). */
  readonly lapse = (option: OptionContract, symbol: string, contracts: number): void => {
    const account = this.accounts[0];
    if (this.accountsHold !== undefined || account === undefined) {
      this.notes.line('warn', { symbol }, `do-not-exercise for ${symbol} not sent: ${this.accountsHold ?? 'no account'}; it is journaled, and reconciliation will read the broker's outcome`);
      return;
    }
    const reqId = this.nextRequest++;
    const sent = this.options.link.send(PRIORITY.orders, `lapse ${symbol}`, (api) =>
      api.exerciseOptions(reqId, { ...contractFor(symbol, option), localSymbol: symbol }, OptionExerciseAction.LAPSE, contracts, account, 1),
    );
    if (!sent) this.notes.line('warn', { symbol }, `do-not-exercise for ${symbol} not sent: the IB link was not ready`);
  };

  cancel(ref: string): void {
    const order = this.byRef.get(ref);
    if (!order || RANK[order.stage] >= RANK['cancel-requested']) return;
    if (this.accountsRefused) {
      this.notes.line('warn', { ref }, `cancel of ${ref} not sent: ${this.accountsHold}`);
      return;
    }
    this.move(order, 'cancel-requested', 'cancel sent to IB');
    this.options.link.send(PRIORITY.orders, `cancel ${order.orderId} (${ref})`, (api) => api.cancelOrder(order.orderId));
  }

  /**
   * Asks TWS which accounts this session trades and judges them
   * (accountRefusal): orders may go to them only when it says nothing
   * against them. Rejects when TWS does not answer, or connects again
   * before it does.
   */
  async checkAccounts(allowLiveAccount: boolean, setting: string): Promise<{ accounts: string[]; refusal: string | undefined }> {
    const { link, clock } = this.options;
    const connection = this.connections;
    const accounts = await requestManagedAccounts(link.api, clock, this.options.snapshotTimeoutMs ?? 10_000, (request) =>
      link.send(PRIORITY.control, 'managed accounts', request),
    );
    if (connection !== this.connections) throw new Error('TWS connected again while its managed accounts were being checked');
    const refusal = accountRefusal(accounts, allowLiveAccount, setting);
    this.accounts = accounts;
    this.accountsHold = refusal;
    this.accountsRefused = refusal !== undefined;
    return { accounts, refusal };
  }

  /**
   * Asks TWS for open orders, executions since `sinceWallMs` and positions,
   * and resolves once each has ended. Executions flow through the usual
   * path, so any the ledger misses are reported as fills on the way.
   */
  snapshot(sinceWallMs: number): Promise<BrokerSnapshot> {
    const { link, clock } = this.options;
    const reqId = this.nextRequest++;
    const state = (this.snapshotting = { openOrders: [], positions: new PositionReports(), executions: 0, reqId });
    return new Promise<BrokerSnapshot>((resolve, reject) => {
      const ends = new Set(['orders', 'executions', 'positions']);
      let stopEnds: () => void = () => {};
      const timer = clock.setTimeout(() => {
        stopEnds();
        this.snapshotting = undefined;
        link.send(PRIORITY.control, 'cancel positions', (api) => api.cancelPositions());
        reject(new Error(`the broker did not finish reporting ${[...ends].join(', ')} within ${this.options.snapshotTimeoutMs ?? 10_000} ms`));
      }, this.options.snapshotTimeoutMs ?? 10_000);
      const done = (what: string) => {
        ends.delete(what);
        if (ends.size > 0) return;
        clock.clearTimeout(timer);
        stopEnds();
        this.snapshotting = undefined;
        // reqPositions is a subscription: the changes it went on sending until here are in the totals; no more are needed.
        link.send(PRIORITY.control, 'cancel positions', (api) => api.cancelPositions());
        resolve({ openOrders: state.openOrders, positions: state.positions.totals(), executions: state.executions });
      };
      stopEnds = listenTo(link.api, [
        [EventName.openOrderEnd, () => done('orders')],
        [EventName.execDetailsEnd, (id: number) => id === reqId && done('executions')],
        [EventName.positionEnd, () => done('positions')],
      ]);
      const since = new Date(Math.max(0, sinceWallMs)).toISOString();
      // IB's filter time: yyyymmdd-hh:mm:ss in UTC.
      const time = `${since.slice(0, 4)}${since.slice(5, 7)}${since.slice(8, 10)}-${since.slice(11, 19)}`;
      const sent =
        link.send(PRIORITY.control, 'open orders', (api) => api.reqOpenOrders()) &&
        link.send(PRIORITY.control, 'positions', (api) => api.reqPositions()) &&
        link.send(PRIORITY.control, 'executions', (api) => api.reqExecutions(reqId, { time }));
      if (!sent) {
        clock.clearTimeout(timer);
        stopEnds();
        this.snapshotting = undefined;
        reject(new Error('the IB link is not ready'));
      }
    });
  }

  close(): void {
    this.stopListening();
    this.notes.flush();
  }

  /** Orders tracked in this session (for tests and the inspector). */
  stageOf(ref: string): Stage | undefined {
    return this.byRef.get(ref)?.stage;
  }

  private track(ref: string, orderId: number, stage: Stage): TrackedOrder {
    const order: TrackedOrder = { ref, orderId, stage, permId: undefined };
    this.orders.set(orderId, order);
    this.byRef.set(ref, order);
    return order;
  }

  /** Moves forwards only; tells the trader about states it records. */
  private move(order: TrackedOrder, stage: Stage, reason?: string): void {
    if (RANK[stage] <= RANK[order.stage]) return;
    order.stage = stage;
    if (stage === 'sent') return;
    const state: OrderState = stage;
    this.options.onEvent({ kind: 'status', ref: order.ref, state, permId: order.permId, reason, at: this.options.clock.wallNow() });
  }

  private readonly onConnected = (): void => {
    this.connections++;
    // Refused stays refused (no cancel either) until a check of the new session says otherwise.
    if (!this.accountsRefused) this.accountsHold = UNCHECKED;
  };

  private readonly onOpenOrder = (orderId: number, contract: Contract, order: Order, orderState: IbOrderState): void => {
    const ref = order.orderRef ?? '';
    if (this.snapshotting) {
      this.snapshotting.openOrders.push({ orderId, ref, permId: order.permId ?? 0, status: String(orderState.status ?? ''), symbol: instrumentOf(contract) });
    }
    let tracked = this.orders.get(orderId);
    // An order of ours this session does not track yet: placed by an earlier one (it reached TWS, the journal knows its ref).
    if (!tracked && ref !== '') tracked = this.track(ref, orderId, 'sent');
    if (!tracked) return;
    tracked.permId = order.permId ?? tracked.permId;
    this.releaseFills(orderId);
    const stage = stageOf(String(orderState.status ?? ''));
    if (stage) this.move(tracked, stage);
  };

  private readonly onOrderStatus = (orderId: number, status: string, _filled: number, _remaining: number, _avg: number, permId?: number): void => {
    const tracked = this.orders.get(orderId);
    if (!tracked) return;
    tracked.permId = permId || tracked.permId;
    const stage = stageOf(status);
    if (stage) this.move(tracked, stage);
  };

  private readonly onExecDetails = (reqId: number, contract: Contract, execution: Execution): void => {
    if (this.snapshotting && reqId === this.snapshotting.reqId) this.snapshotting.executions++;
    const execId = execution.execId ?? '';
    if (execId === '' || this.reportedExecs.has(execId) || this.options.knownExecution(execId)) {
      this.duplicateExecutions++;
      return;
    }
    const orderId = execution.orderId ?? -1;
    const fill = () => {
      if (this.reportedExecs.has(execId)) return;
      this.reportedExecs.add(execId);
      const ref = execution.orderRef || this.orders.get(orderId)?.ref || '';
      const shares = execution.shares ?? 0;
      this.options.onEvent({
        kind: 'fill',
        ref,
        execId,
        symbol: instrumentOf(contract),
        quantity: execution.side === 'SLD' ? -shares : shares,
        price: execution.price ?? NaN,
        commission: 0,
        at: this.options.clock.wallNow(),
      });
      const commission = this.waitingCommissions.get(execId);
      if (commission !== undefined) {
        this.waitingCommissions.delete(execId);
        this.options.onEvent({ kind: 'commission', execId, commission, at: this.options.clock.wallNow() });
      }
    };
    // With its orderRef the fill is ours whatever this session knows; without, it waits for openOrder.
    if (execution.orderRef || this.orders.has(orderId)) return fill();
    let waiting = this.waitingFills.get(orderId);
    if (!waiting) this.waitingFills.set(orderId, (waiting = []));
    if (!waiting.some((w) => w.execId === execId)) waiting.push({ execId, fill });
    this.options.log.warn({ orderId, execId }, 'a fill arrived before its order: held until openOrder names it');
  };

  private readonly onCommission = (report: CommissionReport): void => {
    const execId = report.execId ?? '';
    // Unset (TWS's max double reads as undefined): no news yet. Anything else, NaN or below 0 included, is the trader's to judge.
    const commission = report.commission;
    if (commission === undefined) return;
    // A known execution's commission too: the fill may have been journaled just before a crash and its commission not.
    if (this.reportedExecs.has(execId) || this.options.knownExecution(execId)) this.options.onEvent({ kind: 'commission', execId, commission, at: this.options.clock.wallNow() });
    else this.waitingCommissions.set(execId, commission);
  };

  private readonly onError = (error: Error, code: number, reqId: number): void => {
    const tracked = this.orders.get(reqId);
    if (!tracked || isWarning(code)) return;
    if (code === 202) this.move(tracked, 'cancelled', error.message);
    else if (tracked.stage === 'sent') this.move(tracked, 'rejected', `IB ${code}: ${error.message}`);
    else this.notes.line('warn', { ref: tracked.ref, code }, `IB ${code} about order ${tracked.ref}: ${error.message}`);
  };

  private readonly onPosition = (account: string, contract: Contract, pos: number | undefined): void => {
    this.snapshotting?.positions.report(account, instrumentOf(contract), pos ?? NaN);
  };

  private releaseFills(orderId: number): void {
    const waiting = this.waitingFills.get(orderId);
    if (!waiting) return;
    this.waitingFills.delete(orderId);
    for (const w of waiting) w.fill();
  }
}
