/**
 * The TWS wire-protocol simulator: a TCP server on loopback that the
 * unmodified @stoqey/ib client connects to as if it were TWS or IB Gateway.
 *
 * It speaks server version 193 (or any from 176): the handshake, startApi,
 * contract details, current time, market data, depth and tick-by-tick from
 * its seeded market (market-data.ts), orders matched against that market with
 * their executions, positions and account (broker.ts; SPY options and
 * combos too, settled at their expiry's close, with exercise and lapse
 * instructions), and IB's limits: 50
 * client messages a second (100, then disconnect), market-data lines (101),
 * depth (309), ticker ids (322) and client ids (326). SPY's option chain
 * (options/chain.ts) answers reqSecDefOptParams, contract details, market
 * data and calculations for OPT on the same connection and line budget.
 * Faults are injected
 * through `faults`: among them what `keel doctor` checks, such as the
 * accounts TWS is logged in to, market-data permissions, a farm's state,
 * the depth limit and TWS's clock.
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { systemClock, type Clock } from '../clock.js';
import { Broker } from './broker.js';
import { InstrumentUniverse, type Instrument } from './instruments.js';
import { IB_LIMITS, MarketData, type MarketDataLimits, type TickByTickType } from './market-data.js';
import { Faults } from './faults.js';
import { OptionChain } from './options/chain.js';
import type { Dividend } from './options/close-of-day.js';
import * as optionMessages from './options/messages.js';
import { NO_ID, Session } from './session.js';
import { MessageReader, WireError, type Field, type Greeting } from './wire.js';

/** Message ids, client to server (encoder.js OUT_MSG_ID). */
export const OUT = {
  REQ_MKT_DATA: 1,
  CANCEL_MKT_DATA: 2,
  PLACE_ORDER: 3,
  CANCEL_ORDER: 4,
  REQ_OPEN_ORDERS: 5,
  REQ_ACCOUNT_DATA: 6,
  REQ_EXECUTIONS: 7,
  REQ_IDS: 8,
  REQ_CONTRACT_DATA: 9,
  REQ_MKT_DEPTH: 10,
  CANCEL_MKT_DEPTH: 11,
  REQ_AUTO_OPEN_ORDERS: 15,
  REQ_ALL_OPEN_ORDERS: 16,
  REQ_MANAGED_ACCTS: 17,
  EXERCISE_OPTIONS: 21,
  REQ_CURRENT_TIME: 49,
  REQ_MARKET_DATA_TYPE: 59,
  REQ_POSITIONS: 61,
  CANCEL_POSITIONS: 64,
  START_API: 71,
  REQ_TICK_BY_TICK_DATA: 97,
  CANCEL_TICK_BY_TICK_DATA: 98,
} as const;
/** Message ids, server to client (decoder.js IN_MSG_ID). */
export const IN = { NEXT_VALID_ID: 9, CONTRACT_DATA: 10, MANAGED_ACCTS: 15, CURRENT_TIME: 49, CONTRACT_DATA_END: 52 } as const;

export const SERVER_VERSION = 193;
/** The lowest server version whose message layouts the simulator writes. */
export const MIN_SERVER_VERSION = 176;
/** Where the contract (C12) starts in market-data requests, by message. */
const CONTRACT_AT = { mktData: 3, depth: 3, tickByTick: 2 } as const;

export interface SimulatorOptions {
  readonly serverVersion?: number;
  readonly accounts?: readonly string[];
  /** The lowest nextValidId; a client id that has used ids gets one past the highest. */
  readonly firstOrderId?: number;
  /** From an order's arrival to its reaching the market (PreSubmitted to Submitted), in ms; default 5. */
  readonly ackDelayMs?: number;
  /** Synthetic instruments beyond SPY, QQQ, AAPL and MSFT. */
  readonly syntheticInstruments?: number;
  /** Seed of the market: the same seed and clock give the same market. */
  readonly seed?: number;
  /** Market events per second for each watched instrument. */
  readonly updatesPerSecond?: number;
  /** Market events per second for each watched synthetic instrument (default: updatesPerSecond). */
  readonly syntheticUpdatesPerSecond?: number;
  readonly limits?: Partial<MarketDataLimits>;
  /** How often the market is advanced, in ms. */
  readonly pumpMs?: number;
  /** Step of the option chain's quotes, in ms (default 100). */
  readonly optionQuoteMs?: number;
  /** Least time between two rounds of option computations (message 21) on one line, in ms (default 250). */
  readonly optionComputationMs?: number;
  /** SPY's cash dividends: short calls deep enough in the money are assigned at the close before each ex-date (default none). */
  readonly dividends?: readonly Dividend[];
  readonly clock?: Clock;
  readonly log?: Logger;
}

export class TwsSimulator {
  readonly serverVersion: number;
  readonly marketData: MarketData;
  readonly faults: Faults;
  readonly instruments: InstrumentUniverse;
  /** SPY's option chain. */
  readonly options: OptionChain;
  /** Orders, executions, positions and accounts; they outlive sessions, as in TWS. */
  readonly broker: Broker;
  private readonly clock: Clock;
  private readonly log: Logger | undefined;
  private readonly pumpMs: number;
  private pumpTimer: unknown;
  private server: Server | undefined;
  readonly sessions = new Set<Session>();
  /** Client ids refused with 326 as if in use (a fault). */
  readonly rejectedClientIds = new Set<number>();
  /** Outgoing delay for every session, in ms (a fault). */
  delayMs = 0;
  /** TWS's clock runs this far ahead of the simulator's (behind when negative), in ms (a fault). */
  clockOffsetMs = 0;
  /** The market data farm is broken (2103) until it is back (2104): new sessions are told so (a fault). */
  marketFarmBroken = false;

  constructor(options: SimulatorOptions = {}) {
    this.serverVersion = options.serverVersion ?? SERVER_VERSION;
    if (this.serverVersion < MIN_SERVER_VERSION || this.serverVersion > SERVER_VERSION) {
      throw new RangeError(`server version must be from ${MIN_SERVER_VERSION} to ${SERVER_VERSION}, got ${this.serverVersion}`);
    }
    this.instruments = new InstrumentUniverse(options.syntheticInstruments ?? 0);
    this.clock = options.clock ?? systemClock;
    this.log = options.log;
    this.pumpMs = options.pumpMs ?? 10;
    this.marketData = new MarketData(
      { seed: options.seed ?? 1, updatesPerSecond: options.updatesPerSecond ?? 20, syntheticUpdatesPerSecond: options.syntheticUpdatesPerSecond },
      { ...IB_LIMITS, ...options.limits },
      this.clock,
    );
    this.faults = new Faults(this, this.clock, this.log);
    this.options = new OptionChain(
      { seed: options.seed ?? 1, quoteMs: options.optionQuoteMs, computationMs: options.optionComputationMs },
      {
        clock: this.clock,
        marketData: this.marketData,
        underlying: this.instruments.find(0, 'SPY', 'STK')!,
        connectivityLost: () => this.marketData.paused && !this.marketFarmBroken,
        log: this.log,
      },
    );
    this.marketData.onResume = () => this.options.resend();
    this.broker = new Broker({
      clock: this.clock,
      marketData: this.marketData,
      instruments: this.instruments,
      chain: this.options,
      dividends: options.dividends ?? [],
      accounts: options.accounts ?? ['DU1234567'],
      sessions: this.sessions,
      ackDelayMs: options.ackDelayMs ?? 5,
      firstOrderId: options.firstOrderId ?? 1,
    });
    this.marketData.onTrade = (book, priceTicks, size) => this.broker.onTrade(book, priceTicks, size);
    this.options.onPrint = (conId, price, size) => this.broker.onOptionPrint(conId, price, size);
  }

  /** Listens on 127.0.0.1; port 0 picks a free one. Resolves with the port. */
  async listen(port = 0): Promise<number> {
    const server = createServer((socket) => this.accept(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    const address = server.address();
    if (typeof address !== 'object' || address === null) throw new Error('simulator has no TCP address');
    this.log?.info({ port: address.port, serverVersion: this.serverVersion }, 'TWS simulator listening');
    this.pumpTimer = this.clock.setTimeout(this.pump, this.pumpMs);
    return address.port;
  }

  async close(): Promise<void> {
    this.clock.clearTimeout(this.pumpTimer);
    this.faults.clear();
    for (const session of this.sessions) session.socket.destroy();
    this.sessions.clear();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Client ids of the sessions that have started the API. */
  get clientIds(): number[] {
    return [...this.sessions].flatMap((s) => (s.clientId === undefined ? [] : [s.clientId]));
  }

  /** Advances the market to now; everything it says to one session goes out in one write. */
  private readonly pump = (): void => {
    for (const session of this.sessions) session.socket.cork();
    try {
      const now = this.clock.now();
      this.marketData.market.advanceTo(now);
      this.options.advanceTo(now);
      this.broker.onPump();
    } finally {
      for (const session of this.sessions) session.socket.uncork();
      this.pumpTimer = this.clock.setTimeout(this.pump, this.pumpMs);
    }
  };

  private accept(socket: Socket): void {
    const session = new Session(socket, this.clock);
    session.delayMs = this.delayMs;
    this.sessions.add(session);
    socket.setNoDelay(true);
    const reader = new MessageReader(
      (greeting) => this.greet(session, greeting),
      (fields) => this.handle(session, fields),
    );
    socket.on('data', (chunk) => {
      try {
        reader.push(chunk);
      } catch (err) {
        // TWS drops a connection that sends what it cannot parse.
        this.log?.warn({ err: (err as Error).message }, 'closing a connection that sent bad framing');
        socket.destroy();
        if (!(err instanceof WireError)) throw err;
      }
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      session.dispose();
      this.sessions.delete(session);
      this.marketData.dropSession(session);
      this.options.dropSession(session);
      this.broker.dropSession(session);
    });
  }

  private greet(session: Session, greeting: Greeting): void {
    const version = Math.min(this.serverVersion, greeting.maxVersion);
    session.serverVersion = version;
    session.send([version, connectionTime(this.twsNow())]);
  }

  private handle(session: Session, fields: string[]): void {
    if (!session.admit()) {
      session.error(NO_ID, 100, 'Max rate of messages per second has been exceeded:max=50');
      session.close();
      this.log?.warn({ clientId: session.clientId }, 'client sent more than 50 messages in a second: disconnecting it, as IB does');
      return;
    }
    const id = Number(fields[0]);
    switch (id) {
      case OUT.START_API:
        return this.startApi(session, Number(fields[2]));
      case OUT.REQ_CURRENT_TIME:
        return session.send([IN.CURRENT_TIME, 1, Math.floor(this.twsNow() / 1000)]);
      case OUT.REQ_MANAGED_ACCTS:
        return this.managedAccounts(session);
      case OUT.REQ_MARKET_DATA_TYPE:
        session.marketDataType = Number(fields[2]);
        session.marketDataTypeRequested = true;
        return;
      case OUT.REQ_IDS:
        return session.send([IN.NEXT_VALID_ID, 1, this.broker.nextValidId(session.clientId ?? 0)]);
      case OUT.REQ_CONTRACT_DATA:
        if (this.isOption(fields, 3)) return this.options.contractDetails(session, fields);
        return this.contractDetails(session, fields);
      case OUT.REQ_MKT_DATA:
        if (this.isOption(fields, CONTRACT_AT.mktData)) return this.options.reqMktData(session, fields);
        return this.quotes(session, fields);
      case optionMessages.REQ_SEC_DEF_OPT_PARAMS:
        return this.options.secDefOptParams(session, fields);
      case optionMessages.REQ_CALC_IMPLIED_VOLAT:
      case optionMessages.REQ_CALC_OPTION_PRICE:
        if (!this.isOption(fields, 3)) return session.error(Number(fields[2]), 321, "Error validating request.-'bZ' : cause - Calculations are for options only");
        return this.options.calculate(session, fields, id === optionMessages.REQ_CALC_IMPLIED_VOLAT ? 'impliedVol' : 'price');
      case optionMessages.CANCEL_CALC_IMPLIED_VOLAT:
      case optionMessages.CANCEL_CALC_OPTION_PRICE:
        return; // each calculation is answered once, at once: nothing to cancel
      case OUT.REQ_MKT_DEPTH: {
        const rows = Math.max(1, Math.min(Number(fields[15]) || 1, 10));
        return this.subscribe(session, fields, CONTRACT_AT.depth, { kind: 'depth', rows, smart: fields[16] === '1' });
      }
      case OUT.REQ_TICK_BY_TICK_DATA: {
        const type = fields[14] as TickByTickType;
        if (!['Last', 'AllLast', 'BidAsk', 'MidPoint'].includes(type)) {
          return session.error(Number(fields[1]), 10189, `Failed to request tick-by-tick data: unknown tick type ${type}`);
        }
        return this.subscribe(session, fields, CONTRACT_AT.tickByTick, { kind: 'ticks', type });
      }
      case OUT.CANCEL_MKT_DATA:
        this.options.cancel(session, Number(fields[2]));
        return this.marketData.cancel(session, Number(fields[2]));
      case OUT.CANCEL_MKT_DEPTH:
        return this.marketData.cancel(session, Number(fields[2]));
      case OUT.CANCEL_TICK_BY_TICK_DATA:
        return this.marketData.cancel(session, Number(fields[1]));
      case OUT.PLACE_ORDER:
        return this.broker.placeOrder(session, fields);
      case OUT.CANCEL_ORDER:
        return this.broker.cancelOrder(session, fields);
      case OUT.EXERCISE_OPTIONS:
        return this.broker.exerciseOptions(session, fields);
      case OUT.REQ_OPEN_ORDERS:
      case OUT.REQ_AUTO_OPEN_ORDERS:
        return this.broker.openOrders(session, false);
      case OUT.REQ_ALL_OPEN_ORDERS:
        return this.broker.openOrders(session, true);
      case OUT.REQ_EXECUTIONS:
        return this.broker.reqExecutions(session, fields);
      case OUT.REQ_POSITIONS:
        return this.broker.accounts.reqPositions(session);
      case OUT.CANCEL_POSITIONS:
        return this.broker.accounts.cancelPositions(session);
      case OUT.REQ_ACCOUNT_DATA:
        return this.broker.accounts.reqAccountUpdates(session, fields);
      default:
        this.log?.debug({ messageId: id }, 'message not simulated');
    }
  }

  /** Whether a request's contract (C12 from `at`) is an option: secType OPT, or a bare conId or local symbol of the chain. */
  private isOption(fields: readonly string[], at: number): boolean {
    const secType = (fields[at + 2] ?? '').toUpperCase();
    if (secType === 'OPT') return true;
    if (secType !== '') return false;
    const conId = Number(fields[at] || 0);
    if (conId > 0) return this.options.listing.byId(conId) !== undefined;
    return (fields[at + 10] ?? '') !== '' && this.options.listing.bySymbol(fields[at + 10]!) !== undefined;
  }

  /** REQ_MKT_DATA for a stock; on SPY, generic ticks 100/101/104/106 come from the option chain. */
  private quotes(session: Session, fields: string[]): void {
    const reqId = Number(fields[CONTRACT_AT.mktData - 1]);
    const instrument = this.instrumentIn(session, reqId, fields, CONTRACT_AT.mktData);
    if (!instrument) return;
    const had = this.marketData.has(session, reqId);
    this.marketData.subscribe(session, reqId, instrument, { kind: 'quotes' });
    const genericAt = fields[15] === '1' ? 19 : 16;
    if (!had && instrument.symbol === 'SPY' && this.marketData.has(session, reqId)) this.options.underlyingTicks(session, reqId, fields[genericAt] ?? '');
  }

  /** The instrument a request's contract (C12 from `at`) names, or error 200. */
  private instrumentIn(session: Session, reqId: number, fields: string[], at: number): Instrument | undefined {
    const instrument = this.instruments.find(Number(fields[at] || 0), fields[at + 1] ?? '', fields[at + 2] ?? '');
    if (!instrument) session.error(reqId, 200, 'No security definition has been found for the request');
    return instrument;
  }

  private subscribe(session: Session, fields: string[], contractAt: number, request: Parameters<MarketData['subscribe']>[3]): void {
    const reqId = Number(fields[contractAt - 1]);
    const instrument = this.instrumentIn(session, reqId, fields, contractAt);
    if (instrument) this.marketData.subscribe(session, reqId, instrument, request);
  }

  /** REQ_CONTRACT_DATA: `9, 8, reqId, conId, symbol, secType, ...` */
  private contractDetails(session: Session, fields: string[]): void {
    const reqId = Number(fields[2]);
    const instrument = this.instrumentIn(session, reqId, fields, 3);
    if (!instrument) return;
    session.send(contractData(session.serverVersion, reqId, instrument));
    session.send([IN.CONTRACT_DATA_END, 1, reqId]);
  }

  private startApi(session: Session, clientId: number): void {
    if (this.clientIds.includes(clientId) || this.rejectedClientIds.has(clientId)) {
      session.error(NO_ID, 326, 'Unable to connect as the client id is already in use. Retry with a unique client id.');
      session.close();
      return;
    }
    session.clientId = clientId;
    this.managedAccounts(session);
    session.send([IN.NEXT_VALID_ID, 1, this.broker.nextValidId(clientId)]);
    if (this.marketFarmBroken) session.error(NO_ID, 2103, 'Market data farm connection is broken:usfarm');
    else session.error(NO_ID, 2104, 'Market data farm connection is OK:usfarm');
    session.error(NO_ID, 2106, 'HMDS data farm connection is OK:ushmds');
    session.error(NO_ID, 2158, 'Sec-def data farm connection is OK:secdefnj');
  }

  private managedAccounts(session: Session): void {
    session.send([IN.MANAGED_ACCTS, 1, this.broker.accounts.codes.join(',')]);
  }

  /** Wall time by TWS's clock. */
  private twsNow(): number {
    return this.clock.wallNow() + this.clockOffsetMs;
  }
}

/** CONTRACT_DATA for a stock, field by field as decoder.js reads it (no version field from 164). */
function contractData(version: number, reqId: number, i: Instrument): Field[] {
  return [
    IN.CONTRACT_DATA, reqId, i.symbol, 'STK', '',
    ...(version >= 182 ? [''] : []), // lastTradeDate
    0, '', 'SMART', 'USD', i.symbol, i.symbol, i.symbol, i.conId, 0.01, '',
    'ACTIVETIM,AD,ADJUST,ALERT,ALGO,LMT,MKT,STP,STPLMT,TRAIL', `SMART,${i.primaryExch}`, 1, 0, i.longName, i.primaryExch,
    '', i.industry, '', '', 'US/Eastern',
    '20260105:0400-20260105:2000', '20260105:0930-20260105:1600',
    '', '', 0, // evRule, evMultiplier, no secIds
    1, '', '', '26', '', 'COMMON', // aggGroup, underSymbol, underSecType, marketRuleIds, realExpirationDate, stockType
    1, 1, 100, // minSize, sizeIncrement, suggestedSizeIncrement
    ...(version >= 186 ? [0] : []), // no ineligibility reasons
  ];
}

/** TWS's connection time, e.g. `20260105 14:30:00 UTC`. */
function connectionTime(epochMs: number): string {
  const iso = new Date(epochMs).toISOString();
  return `${iso.slice(0, 10).replaceAll('-', '')} ${iso.slice(11, 19)} UTC`;
}
