/**
 * The simulated accounts: cash, and per contract (stock or option) the
 * position, its average cost and the P&L realized on it; and how TWS
 * reports them, as positions (reqPositions) and account updates
 * (reqAccountUpdates).
 *
 * Average cost is IB's: per unit held (a share, or an option contract of
 * 100 shares), commissions included. Buying 100 shares at 10.00 for 1.00 of
 * commission costs 10.01 a share; one option contract at 2.50 for 1.05
 * costs 251.05. Unrealized P&L is counted from there. A trade that reduces a position realizes (price - average cost) per
 * share closed, less its own commission; the rest of the position keeps its
 * average cost. Cash moves by every trade's value and every commission, so
 * net liquidation is always starting cash + realized + unrealized P&L.
 *
 * Margin follows Reg T intraday rules for stocks: 25% of the gross position
 * value, which makes buying power four times the available funds (options
 * are margined the same way here: not modelled further).
 */
import type { Clock } from '../clock.js';
import type { SimContract } from './instruments.js';
import { accountDownloadEnd, accountUpdateTime, accountValue, portfolioValue, position, positionEnd } from './order-messages.js';
import { NO_ID, type Session } from './session.js';

export const STARTING_CASH = 1_000_000;
const INITIAL_MARGIN = 0.25;

/** One contract in one account. */
export interface Holding {
  readonly contract: SimContract;
  /** Shares or option contracts; negative when short. */
  position: number;
  /** Per unit (price × multiplier), commissions included; 0 when flat. */
  averageCost: number;
  realizedPnl: number;
}

/** Account values as reqAccountUpdates names them, in USD. */
export interface AccountValues {
  NetLiquidation: number;
  TotalCashValue: number;
  AvailableFunds: number;
  BuyingPower: number;
  RealizedPnL: number;
  UnrealizedPnL: number;
}

export class Account {
  cash: number;
  /** By conId; a holding stays once opened, flat or not, as TWS lists positions closed today. */
  readonly holdings = new Map<number, Holding>();

  constructor(
    readonly code: string,
    startingCash: number,
  ) {
    this.cash = startingCash;
  }

  /**
   * Books `units` (shares or contracts; negative: sold) at `price` a share
   * with its commission. Returns the P&L it realized, or undefined when it
   * only opened or added to the position.
   */
  book(contract: SimContract, units: number, price: number, commission: number): number | undefined {
    let holding = this.holdings.get(contract.conId);
    if (!holding) this.holdings.set(contract.conId, (holding = { contract, position: 0, averageCost: 0, realizedPnl: 0 }));
    const unitPrice = price * contract.multiplier;
    this.cash -= units * unitPrice + commission;
    const before = holding.position;
    holding.position = before + units;
    if (before === 0 || Math.sign(before) === Math.sign(units)) {
      // Opening or adding: the commission is part of what the units cost (or, short, comes off what they raised).
      holding.averageCost = (before * holding.averageCost + units * unitPrice + commission) / holding.position;
      return undefined;
    }
    // Reducing: the commission is split between the units that close and any that open the other way.
    const closed = Math.min(Math.abs(units), Math.abs(before));
    const closingCommission = (commission * closed) / Math.abs(units);
    const realized = (unitPrice - holding.averageCost) * closed * Math.sign(before) - closingCommission;
    holding.realizedPnl += realized;
    if (holding.position === 0) holding.averageCost = 0;
    else if (Math.sign(holding.position) !== Math.sign(before)) holding.averageCost = unitPrice + (commission - closingCommission) / holding.position;
    return realized;
  }

  /** What the account is worth with each contract marked at `mark(contract)` a share. */
  values(mark: (contract: SimContract) => number): AccountValues {
    let marketValue = 0;
    let grossValue = 0;
    let unrealized = 0;
    let realized = 0;
    for (const h of this.holdings.values()) {
      const price = mark(h.contract) * h.contract.multiplier;
      marketValue += h.position * price;
      grossValue += Math.abs(h.position * price);
      unrealized += (price - h.averageCost) * h.position;
      realized += h.realizedPnl;
    }
    const netLiquidation = this.cash + marketValue;
    const availableFunds = netLiquidation - INITIAL_MARGIN * grossValue;
    return {
      NetLiquidation: netLiquidation,
      TotalCashValue: this.cash,
      AvailableFunds: availableFunds,
      BuyingPower: availableFunds / INITIAL_MARGIN,
      RealizedPnL: realized,
      UnrealizedPnL: unrealized,
    };
  }
}

/** Every account of the simulator, and the sessions following their positions and values. */
export class Accounts {
  private readonly byCode = new Map<string, Account>();
  /** The accounts TWS is logged in to (managedAccounts), the first taking the orders that name none. */
  private managed: Account[];
  /** Sessions that asked for positions (reqPositions) and not yet cancelled. */
  private readonly positionFollowers = new Set<Session>();
  /** Sessions subscribed to account updates, and to which account: TWS allows one at a time. */
  private readonly updateFollowers = new Map<Session, Account>();

  constructor(
    codes: readonly string[],
    /** The price a contract is marked at, a share: its book's or its quote's middle. */
    readonly markPrice: (contract: SimContract) => number,
    private readonly clock: Clock,
    private readonly startingCash = STARTING_CASH,
  ) {
    this.managed = codes.map((code) => this.open(code));
  }

  /** Any account the simulator has had, logged in to or not. */
  get(code: string): Account | undefined {
    return this.byCode.get(code);
  }

  /** Every account the simulator has had, logged in to or not: positions settle in each. */
  all(): IterableIterator<Account> {
    return this.byCode.values();
  }

  /** The ids of the accounts TWS is logged in to, as managedAccounts lists them. */
  get codes(): string[] {
    return this.managed.map((a) => a.code);
  }

  /** TWS logs in to these accounts: a new one opens with the starting cash, one seen before keeps its book. */
  login(codes: readonly string[]): void {
    this.managed = codes.map((code) => this.byCode.get(code) ?? this.open(code));
  }

  /** The logged-in account an order names, or the first one when it names none (as TWS does for a single account). */
  forOrder(code: string): Account | undefined {
    return code === '' ? this.managed[0] : this.managed.find((a) => a.code === code);
  }

  /** reqPositions: every holding of every account logged in to, then the end; changes follow until cancelPositions. */
  reqPositions(session: Session): void {
    this.positionFollowers.add(session);
    for (const account of this.managed) {
      for (const h of account.holdings.values()) session.send(position(session.serverVersion, account.code, h.contract, h.position, h.averageCost));
    }
    session.send(positionEnd());
  }

  cancelPositions(session: Session): void {
    this.positionFollowers.delete(session);
  }

  /** reqAccountUpdates: `6, 2, subscribe, acctCode`. Subscribing sends the whole account, then changes after each fill. */
  reqAccountUpdates(session: Session, fields: readonly string[]): void {
    if (fields[2] !== '1') {
      this.updateFollowers.delete(session);
      return;
    }
    const code = fields[3] ?? '';
    const account = this.forOrder(code);
    if (!account) return session.error(NO_ID, 321, `Error validating request:-'bK' : cause - unknown account ${JSON.stringify(code)}`);
    this.updateFollowers.set(session, account);
    this.sendValues(session, account);
    for (const h of account.holdings.values()) this.sendHolding(session, account, h);
    session.send(accountUpdateTime(this.timeOfDay()));
    session.send(accountDownloadEnd(account.code));
  }

  /** A session closed: it follows nothing any more. */
  dropSession(session: Session): void {
    this.positionFollowers.delete(session);
    this.updateFollowers.delete(session);
  }

  /** After a fill, an exercise or an assignment: the new position, holding and values to whoever follows them. */
  changed(account: Account, contract: SimContract): void {
    const holding = account.holdings.get(contract.conId);
    if (!holding) return;
    for (const session of this.positionFollowers) {
      session.send(position(session.serverVersion, account.code, contract, holding.position, holding.averageCost));
    }
    for (const [session, followed] of this.updateFollowers) {
      if (followed !== account) continue;
      this.sendHolding(session, account, holding);
      this.sendValues(session, account);
      session.send(accountUpdateTime(this.timeOfDay()));
    }
  }

  private open(code: string): Account {
    const account = new Account(code, this.startingCash);
    this.byCode.set(code, account);
    return account;
  }

  private sendValues(session: Session, account: Account): void {
    const values = account.values(this.markPrice);
    for (const [key, value] of Object.entries(values)) session.send(accountValue(key, value.toFixed(2), 'USD', account.code));
  }

  private sendHolding(session: Session, account: Account, h: Holding): void {
    const price = this.markPrice(h.contract);
    const value = h.position * price * h.contract.multiplier;
    const unrealized = value - h.averageCost * h.position;
    session.send(portfolioValue(session.serverVersion, h.contract, h.position, price, value, h.averageCost, unrealized, h.realizedPnl, account.code));
  }

  /** TWS stamps account updates with the time of day, `HH:mm` (the simulator keeps UTC). */
  private timeOfDay(): string {
    return new Date(this.clock.wallNow()).toISOString().slice(11, 16);
  }
}
