/**
 * The simulator's SPY option chain: the day's listing (listing.ts) quoted
 * from an SSVI surface (surface.ts) over the simulated SPY, and served as
 * TWS serves it: reqSecDefOptParams (75/76), contract details for OPT,
 * market data on option lines (TICK_PRICE/TICK_SIZE, message 21 for ticks
 * 10–13, generic ticks 100/101/104/106), delayed data (58, ticks 66–74 and
 * 80–83), calculateImpliedVolatility/calculateOptionPrice (tick 53), and
 * IB's answers: 200, 321, 354, 10090, 10167, 10197, 101 (lines shared with
 * the stocks through MarketData.claimLine).
 *
 * State moves in fixed steps of `quoteMs` on the simulator's clock, from
 * the first option request on: SPY is read from the simulated book, the
 * at-the-money volatility mean-reverts in business time and moves against
 * SPY's return (negative spot–vol correlation), and every contract with a
 * line is re-quoted: theo from the surface (Black–Scholes–Merton, floored at
 * intrinsic value since SPY options are American), a spread that widens
 * with price and vega, sizes that peak at the money, and prints as Poisson
 * events, most near the money. A seed and the clock's readings give the same
 * chain. Lines are sent what changed; message 21 at most every
 * `computationMs` per line.
 *
 * Not modelled: a real 15-minute delay (delayed lines carry the current
 * values under the delayed tick types), American greeks (message 21 is
 * European BSM at the surface volatility), dividends as discrete payments
 * in the quotes (a continuous yield). Exercise and assignment are the
 * broker's (close-of-day.ts); `tradedQuote` keeps the contracts it trades
 * quoted.
 */
import type { Logger } from 'pino';
import { TickType } from '../../ib/api.js';
import type { Clock } from '../../clock.js';
import { bsmGreeks, newGreeks, type Right } from '../../options/bsm.js';
import { MS_PER_YEAR } from '../../options/expiry.js';
import { impliedVolCode } from '../../options/implied-vol.js';
import { Random } from '../../random.js';
import { sessionDate } from '../../trading/trading-day.js';
import type { Instrument } from '../instruments.js';
import { refuseCompeting, type MarketData, type Permission } from '../market-data.js';
import { NO_ID, type Session } from '../session.js';
import type { Field } from '../wire.js';
import { OptionListing, type OptionContract } from './listing.js';
import * as m from './messages.js';
import { atmTotalVariance, BusinessClock, SPY_SSVI, surfaceVol, type SsviParams } from './surface.js';

/** SPY's carry as the simulator prices it: a rate and a continuous dividend yield. */
export const SPY_RATE = 0.045;
export const SPY_DIVIDEND_YIELD = 0.012;

/** The at-the-money volatility process, in business time (see surface.ts). */
export const ATM_VOL = {
  start: 0.13,
  longRun: 0.13,
  /** Mean reversion per business year: a shock halves in about five weeks. */
  kappa: 5,
  /** Volatility of the volatility, per √(business year): about two points a day. */
  volOfVol: 0.3,
  /** Change in volatility per unit of SPY's log return: −1.2 makes a 1 % drop add 1.2 points. */
  spotBeta: -1.2,
  min: 0.04,
  max: 1.5,
} as const;

/** Half-spread = max(half a tick, α + β·theo + κ·vega), rounded out to the cent. */
const SPREAD = { alpha: 0.003, beta: 0.0015, kappa: 0.01 } as const;
/** Prints per second at the money (fewer away from it) and the wings' floor. */
const PRINT_RATE = 0.4;
const PRINT_RATE_FLOOR = 0.005;
/** Chance per step that sizes change though the price does not. */
const SIZE_CHANGE = 0.05;
/** Background option volume of the whole chain, contracts per second since the chain started (calls, puts). */
const BACKGROUND_VOLUME = [400, 520] as const;

/** Tick types (live; the delayed ones are 65 higher for prices and sizes, 70 for computations). */
const { BID_SIZE, BID, ASK, ASK_SIZE, LAST, LAST_SIZE, VOLUME } = TickType;
const DELAYED_TICKS: Record<number, number> = {
  [BID_SIZE]: TickType.DELAYED_BID_SIZE,
  [BID]: TickType.DELAYED_BID,
  [ASK]: TickType.DELAYED_ASK,
  [ASK_SIZE]: TickType.DELAYED_ASK_SIZE,
  [LAST]: TickType.DELAYED_LAST,
  [LAST_SIZE]: TickType.DELAYED_LAST_SIZE,
  [VOLUME]: TickType.DELAYED_VOLUME,
};
const TICK_PRICE = 1;
const TICK_SIZE = 2;
/** Generic tick types the chain answers, and the tick types that carry them. */
const {
  OPTION_CALL_OPEN_INTEREST: CALL_OPEN_INTEREST,
  OPTION_PUT_OPEN_INTEREST: PUT_OPEN_INTEREST,
  OPTION_CALL_VOLUME: CALL_VOLUME,
  OPTION_PUT_VOLUME: PUT_VOLUME,
  OPTION_HISTORICAL_VOL: HISTORICAL_VOL,
  OPTION_IMPLIED_VOL: IMPLIED_VOL_30D,
} = TickType;
const GENERIC = { volume: 100, openInterest: 101, historicalVol: 104, impliedVol: 106 } as const;

/** FNV-1a of a number mixed with the seed, for per-contract streams and open interest. */
function mix(seed: number, n: number): number {
  let h = 0x811c9dc5 ^ seed;
  for (let i = 0; i < 4; i++) h = Math.imul(h ^ ((n >>> (8 * i)) & 0xff), 0x01000193);
  return h >>> 0;
}

const cents = (x: number) => Math.round(x * 100) / 100;

/** A contract's touch as of the last step: prices a share, sizes in contracts. */
export interface OptionQuote {
  readonly bid: number;
  readonly ask: number;
  readonly bidSize: number;
  readonly askSize: number;
}

/** A contract being quoted: its state as of the last step. */
class ContractQuote implements OptionQuote {
  readonly right: Right;
  readonly random: Random;
  /** Calendar and business years to expiry, spot, surface volatility and BSM price and greeks at the last step. */
  years = 0;
  businessYears = 0;
  spot = NaN;
  vol = NaN;
  readonly model = newGreeks();
  bid = 0;
  ask = 0;
  bidSize = 0;
  askSize = 0;
  last = NaN;
  lastSize = 0;
  volume = 0;
  prints = 0;
  readonly lines = new Set<OptionLine>();

  constructor(
    readonly contract: OptionContract,
    seed: number,
    readonly openInterest: number,
  ) {
    this.right = contract.right === 'C' ? 1 : -1;
    this.random = new Random(mix(seed ^ 0x5eed0971, contract.conId));
  }
}

interface OptionLine {
  readonly session: Session;
  readonly reqId: number;
  readonly quote: ContractQuote;
  readonly generics: ReadonlySet<number>;
  /** The market data type said in 58 (1 live, 3 or 4 delayed); delayed lines use the delayed tick types. */
  readonly dataType: number;
  /** False when the account lacks SPY's own data (10090): nothing that needs the underlying is computed. */
  readonly underlyingKnown: boolean;
  sentBid: number;
  sentAsk: number;
  sentBidSize: number;
  sentAskSize: number;
  sentPrints: number;
  /** Clock reading of the last message 21, and what it was computed from: the spot, the ATM vol, the bid, the ask, the prints. */
  computedAt: number;
  computedSpot: number;
  computedVol: number;
  computedBid: number;
  computedAsk: number;
  computedPrints: number;
}

interface UnderlyingLine {
  readonly session: Session;
  readonly reqId: number;
  readonly generics: ReadonlySet<number>;
  sent: string;
}

export interface OptionChainOptions {
  readonly seed: number;
  /** Step of the chain's state, ms (default 100). */
  readonly quoteMs?: number;
  /** Least time between two rounds of message 21 on one line, ms (default 250). */
  readonly computationMs?: number;
  readonly ssvi?: SsviParams;
}

export interface OptionChainDeps {
  readonly clock: Clock;
  readonly marketData: MarketData;
  readonly underlying: Instrument;
  /** True while TWS has lost IB (1100): option lines are paused as the stock feeds are. */
  readonly connectivityLost: () => boolean;
  readonly log?: Logger | undefined;
}

export class OptionChain {
  readonly quoteMs: number;
  readonly computationMs: number;
  readonly ssvi: SsviParams;
  /** Faults: the options farm (usopt) is broken; quotes stop without a word; bids and asks are crossed; OPRA permission. */
  farmBroken = false;
  stale = false;
  crossed = false;
  permission: Permission = 'live';
  /** Each print as it happens: the contract, its price and size (the broker fills resting orders on it). */
  onPrint: (conId: number, price: number, size: number) => void = () => {};
  private readonly seed: number;
  private readonly clock: Clock;
  private readonly marketData: MarketData;
  private readonly underlying: Instrument;
  private readonly connectivityLost: () => boolean;
  private readonly log: Logger | undefined;
  /** Made on first use: building it starts a time-zone formatter, which start-up should not pay for. */
  private listingNow: OptionListing | undefined;
  private readonly business = new BusinessClock();
  /** Business years from `anchorWall` to each expiry moment, by expiry date. */
  private readonly expiryBusiness = new Map<string, number>();
  private readonly openInterests = new Map<number, number>();
  private aggregateOpenInterest: [number, number] | undefined;
  private running = false;
  private startedAt = 0;
  private nextStepAt = 0;
  /** The clock's monotonic and wall readings at the last advance: the steps since are dated between them and now. */
  private advancedAt = 0;
  private advancedWall = 0;
  private steps = 0;
  private anchorWall = 0;
  private lastWall = 0;
  private anchorYears = 0;
  private spot = NaN;
  /** Mutable: the step changes its level in place. */
  private readonly atm: { vol: number; longRunVol: number; kappa: number };
  private realizedVariance: number;
  private readonly random: Random;
  private readonly quotes = new Map<number, ContractQuote>();
  /** Contracts the broker trades or holds: quoted whether or not a line watches them. */
  private readonly traded = new Set<number>();
  private readonly lines = new Map<Session, Map<number, OptionLine>>();
  private readonly underlyingLines = new Map<Session, Map<number, UnderlyingLine>>();
  private readonly greeks = newGreeks();
  private readonly computation = m.newComputation();

  constructor(options: OptionChainOptions, deps: OptionChainDeps) {
    this.seed = options.seed;
    this.quoteMs = options.quoteMs ?? 100;
    this.computationMs = options.computationMs ?? 250;
    this.ssvi = options.ssvi ?? SPY_SSVI;
    this.clock = deps.clock;
    this.marketData = deps.marketData;
    this.underlying = deps.underlying;
    this.connectivityLost = deps.connectivityLost;
    this.log = deps.log;
    this.random = new Random(mix(this.seed, 0x0c4a1));
    this.atm = { vol: ATM_VOL.start, longRunVol: ATM_VOL.longRun, kappa: ATM_VOL.kappa };
    this.realizedVariance = ATM_VOL.longRun * ATM_VOL.longRun;
  }

  /**
   * The day's listing, made again when New York's date changes: checked on
   * every use by wall time (sessionDate keeps its answer for the hour), since
   * a market clock running fast turns the day in seconds.
   */
  get listing(): OptionListing {
    const wall = this.clock.wallNow();
    if (sessionDate(wall) !== this.listingNow?.day) {
      const previous = this.listingNow;
      this.listingNow = new OptionListing('SPY', this.underlying.openPrice, wall);
      this.aggregateOpenInterest = undefined;
      if (previous) this.log?.info({ day: this.listingNow.day, contracts: this.listingNow.contracts.length }, 'option chain listed for a new day');
    }
    return this.listingNow;
  }

  /** At-the-money volatility now (business time) and SPY as the chain last saw it. */
  get state(): { readonly atmVol: number; readonly spot: number; readonly running: boolean } {
    return { atmVol: this.atm.vol, spot: this.spot, running: this.running };
  }

  /** The surface's calendar-time volatility for a listed contract now (NaN when expired or unknown). */
  surfaceVol(conId: number): number {
    const c = this.listing.byId(conId);
    if (!c || !this.running) return NaN;
    const wall = this.clock.wallNow();
    const tau = this.business.years(wall, c.expiryMs);
    return surfaceVol(this.ssvi, this.atm, this.spot, c.strike, (c.expiryMs - wall) / MS_PER_YEAR, tau, SPY_RATE, SPY_DIVIDEND_YIELD);
  }

  /** A contract's quote as of the last step, for status and tests. */
  quoteOf(conId: number): { bid: number; ask: number; bidSize: number; askSize: number; last: number; volume: number; vol: number; spot: number; years: number } | undefined {
    const q = this.quotes.get(conId);
    return q && { bid: q.bid, ask: q.ask, bidSize: q.bidSize, askSize: q.askSize, last: q.last, volume: q.volume, vol: q.vol, spot: q.spot, years: q.years };
  }

  /**
   * The live quote the broker fills an order on (a listed contract; undefined
   * otherwise): from now on it is quoted every step, lines or not.
   */
  tradedQuote(conId: number): OptionQuote | undefined {
    const contract = this.listing.byId(conId);
    if (!contract) return undefined;
    this.start();
    this.traded.add(conId);
    return this.watch(contract);
  }

  /** Option lines of a session, for status. */
  linesOf(session: Session): { reqId: number; localSymbol: string }[] {
    return [...(this.lines.get(session)?.values() ?? [])].map((l) => ({ reqId: l.reqId, localSymbol: l.quote.contract.localSymbol }));
  }

  // ---- requests ----

  /** reqSecDefOptParams: `78, reqId, symbol, futFopExchange, secType, conId`. */
  secDefOptParams(session: Session, fields: readonly string[]): void {
    const reqId = Number(fields[1]);
    const symbol = (fields[2] ?? '').toUpperCase();
    const conId = Number(fields[5] || 0);
    if (symbol === this.underlying.symbol && (conId === 0 || conId === this.underlying.conId)) {
      const listing = this.listing;
      for (const exchange of m.OPTION_EXCHANGES) {
        session.send(m.secDefOptParams(reqId, exchange, this.underlying.conId, listing.allExpiries, listing.allStrikes));
      }
    } else if (!/^[A-Z]{1,5}$/.test(symbol)) {
      return session.error(reqId, 200, 'No security definition has been found for the request');
    }
    // Other stocks have no simulated chain: the end alone, as for a name without options.
    session.send([m.SECURITY_DEFINITION_OPTION_PARAMETER_END, reqId]);
  }

  /** Contract details for OPT: by conId or local symbol one contract, else every contract the expiry, strike and right given select. */
  contractDetails(session: Session, fields: readonly string[]): void {
    const reqId = Number(fields[2]);
    const f = m.contractFields(fields, 3);
    const listing = this.listing;
    let found: OptionContract[];
    if (f.conId > 0) found = listing.byId(f.conId) ? [listing.byId(f.conId)!] : [];
    else if (f.localSymbol !== '') found = listing.bySymbol(f.localSymbol) ? [listing.bySymbol(f.localSymbol)!] : [];
    else if (f.symbol === this.underlying.symbol) found = listing.select(f.expiry, f.strike, f.right);
    else found = [];
    if (found.length === 0) return session.error(reqId, 200, 'No security definition has been found for the request');
    const today = listing.day.replaceAll('-', '');
    for (const c of found) {
      session.send(m.optionContractData(session.serverVersion, reqId, c, listing.expiry(c.expiry)!, this.underlying, today, listing.businessDays));
    }
    session.send([m.CONTRACT_DATA_END, 1, reqId]);
  }

  /** reqMktData for an option: `1, 11, reqId, C12, deltaNeutral..., genericTicks, snapshot, regulatorySnapshot, ""`. */
  reqMktData(session: Session, fields: readonly string[]): void {
    const reqId = Number(fields[2]);
    const contract = this.resolve(session, reqId, m.contractFields(fields, 3));
    if (!contract) return;
    const genericAt = fields[15] === '1' ? 19 : 16;
    const generics = new Set((fields[genericAt] ?? '').split(',').filter((t) => t.trim() !== '').map(Number));
    const snapshot = fields[genericAt + 1] === '1';
    if (snapshot && generics.size > 0) {
      return session.error(reqId, 321, "Error validating request.-'bW' : cause - Snapshot market data subscription is not applicable to generic ticks");
    }
    if (this.marketData.competingLiveSession) return refuseCompeting(session, reqId);
    const delayed = this.permission === 'delayed' && session.marketDataType >= 3;
    if (this.permission !== 'live' && !delayed) {
      return session.error(reqId, 354, `Requested market data is not subscribed.${this.permission === 'delayed' ? ' Delayed market data is available.' : ''}SPY OPRA/TOP/ALL`);
    }
    this.start();
    const quote = this.watch(contract);
    const underlyingKnown = !this.marketData.restricted.has(this.underlying.index);
    const dataType = delayed ? session.marketDataType : 1;
    const line: OptionLine = {
      session, reqId, quote, generics, dataType, underlyingKnown,
      sentBid: NaN, sentAsk: NaN, sentBidSize: NaN, sentAskSize: NaN, sentPrints: -1,
      computedAt: -Infinity, computedSpot: NaN, computedVol: NaN, computedBid: NaN, computedAsk: NaN, computedPrints: -1,
    };
    // A snapshot holds no line; a stream takes one of the budget it shares with the stocks.
    if (!snapshot && !this.marketData.claimLine(session, reqId, () => this.removeLine(line))) return this.unwatchIfIdle(quote);
    this.tellFarm(session);
    if (delayed) session.error(reqId, 10167, 'Requested market data is not subscribed. Displaying delayed market data.');
    if (!underlyingKnown) {
      session.error(reqId, 10090, 'Part of requested market data is not subscribed. Subscription-independent ticks are still active.Delayed market data is not available.SPY ARCA/TOP/ALL');
    }
    if (delayed || session.marketDataTypeRequested) session.send([m.MARKET_DATA_TYPE, 1, reqId, dataType]);
    if (snapshot) {
      if (!this.paused) this.publish(line, true);
      session.send([m.TICK_SNAPSHOT_END, 1, reqId]);
      return this.unwatchIfIdle(quote);
    }
    let mine = this.lines.get(session);
    if (!mine) this.lines.set(session, (mine = new Map()));
    mine.set(reqId, line);
    quote.lines.add(line);
    if (!this.paused && !this.stale) this.publish(line, true);
    this.sendOptionGenerics(line);
  }

  /** calculateImpliedVolatility (54) and calculateOptionPrice (55): `id, 2, reqId, C12, price or volatility, underPrice, options`. */
  calculate(session: Session, fields: readonly string[], what: 'impliedVol' | 'price'): void {
    const reqId = Number(fields[2]);
    const contract = this.resolve(session, reqId, m.contractFields(fields, 3));
    if (!contract) return;
    const value = Number(fields[15]);
    const S = Number(fields[16]);
    const T = (contract.expiryMs - this.clock.wallNow()) / MS_PER_YEAR;
    const right: Right = contract.right === 'C' ? 1 : -1;
    const c = m.newComputation();
    c.undPrice = S > 0 ? S : NaN;
    c.pvDividend = S > 0 && T > 0 ? S * -Math.expm1(-SPY_DIVIDEND_YIELD * T) : NaN;
    let sigma = NaN;
    if (what === 'impliedVol') {
      c.optPrice = Number.isFinite(value) ? value : NaN;
      const code = impliedVolCode(right, value, S, contract.strike, T, SPY_RATE, SPY_DIVIDEND_YIELD);
      if (code > 0) sigma = code;
    } else if (value > 0) {
      sigma = value;
    }
    if (sigma > 0 && S > 0 && T > 0) {
      bsmGreeks(right, S, contract.strike, T, SPY_RATE, SPY_DIVIDEND_YIELD, sigma, this.greeks);
      this.fill(c, sigma, this.greeks);
      if (what === 'impliedVol') c.optPrice = value;
    }
    session.send(m.optionComputation(reqId, m.CUST_OPTION_COMPUTATION, c));
  }

  /** Generic ticks 100/101/104/106 on a SPY stock line (the server has started its quotes): chain volume, open interest, HV and IV. */
  underlyingTicks(session: Session, reqId: number, genericList: string): void {
    const generics = new Set(genericList.split(',').map(Number).filter((g) => Object.values(GENERIC).includes(g as never)));
    if (generics.size === 0) return;
    this.start();
    const line: UnderlyingLine = { session, reqId, generics, sent: '' };
    let mine = this.underlyingLines.get(session);
    if (!mine) this.underlyingLines.set(session, (mine = new Map()));
    mine.set(reqId, line);
    this.sendUnderlyingTicks(line);
  }

  /** A cancelled stock line: its generic ticks stop too (option lines are released through MarketData). */
  cancel(session: Session, reqId: number): void {
    this.underlyingLines.get(session)?.delete(reqId);
  }

  dropSession(session: Session): void {
    for (const line of [...(this.lines.get(session)?.values() ?? [])]) this.removeLine(line);
    this.lines.delete(session);
    this.underlyingLines.delete(session);
  }

  // ---- faults ----

  /** The options farm breaks: every client hears 2103 usopt, option lines go quiet until `restore`. */
  breakFarm(sessions: Iterable<Session>): void {
    this.farmBroken = true;
    for (const s of sessions) {
      s.error(NO_ID, 2103, 'Market data farm connection is broken:usopt');
      s.toldOptionsFarm = true;
    }
  }

  restoreFarm(sessions: Iterable<Session>): void {
    this.farmBroken = false;
    for (const s of sessions) {
      s.error(NO_ID, 2104, 'Market data farm connection is OK:usopt');
      s.toldOptionsFarm = true;
    }
    this.resend();
  }

  /** After an outage every line is sent its state afresh. */
  resend(): void {
    for (const lines of this.lines.values()) {
      for (const line of lines.values()) {
        line.sentBid = line.sentAsk = line.sentBidSize = line.sentAskSize = NaN;
        line.sentPrints = line.computedPrints = -1;
        line.computedSpot = NaN;
      }
    }
  }

  // ---- the clock ----

  /**
   * Runs the chain's steps up to `nowMs` (the clock's monotonic time). Each
   * step's wall time is interpolated between the last advance and now: wall
   * time may run faster than monotonic time (a market clock), so it cannot
   * be had by subtracting a monotonic interval.
   */
  advanceTo(nowMs: number): void {
    if (!this.running) return;
    const wallNow = this.clock.wallNow();
    const from = this.advancedAt;
    const fromWall = this.advancedWall;
    const rate = nowMs > from ? (wallNow - fromWall) / (nowMs - from) : 0;
    while (this.nextStepAt <= nowMs) {
      this.step(this.nextStepAt, rate > 0 ? fromWall + (this.nextStepAt - from) * rate : wallNow);
      this.nextStepAt += this.quoteMs;
    }
    this.advancedAt = nowMs;
    this.advancedWall = wallNow;
  }

  private get paused(): boolean {
    return this.farmBroken || this.connectivityLost();
  }

  /** Starts the chain's clock; the first request that needs its quotes does it. */
  start(): void {
    if (this.running) return;
    this.running = true;
    const now = this.clock.now();
    const book = this.marketData.market.book(this.underlying);
    this.marketData.market.watch(book, now);
    this.spot = this.spotNow();
    this.anchorWall = this.lastWall = this.advancedWall = this.clock.wallNow();
    this.startedAt = this.advancedAt = now;
    this.nextStepAt = now + this.quoteMs;
    this.log?.info({ spot: this.spot, atmVol: this.atm.vol }, 'option chain running');
  }

  private spotNow(): number {
    const book = this.marketData.market.book(this.underlying);
    return (book.bestBid() + book.bestAsk()) / 200;
  }

  private step(mono: number, wall: number): void {
    this.steps++;
    const S = this.spotNow();
    const dt = this.business.years(this.lastWall, wall);
    this.lastWall = wall;
    const ret = Math.log(S / this.spot);
    this.spot = S;
    const shock = this.random.normal();
    if (dt > 0) {
      const v = this.atm.vol + this.atm.kappa * (this.atm.longRunVol - this.atm.vol) * dt + ATM_VOL.spotBeta * ret + ATM_VOL.volOfVol * Math.sqrt(dt) * shock;
      this.atm.vol = Math.min(ATM_VOL.max, Math.max(ATM_VOL.min, v));
      this.realizedVariance = 0.999 * this.realizedVariance + 0.001 * ((ret * ret) / dt);
    }
    this.anchorYears += dt;
    for (const quote of this.quotes.values()) this.requote(quote, wall);
    if (this.paused) return;
    if (!this.stale) {
      for (const lines of this.lines.values()) {
        for (const line of lines.values()) {
          this.publish(line, mono - line.computedAt >= this.computationMs);
        }
      }
    }
    if (this.steps % Math.max(1, Math.round(1000 / this.quoteMs)) === 0) {
      for (const lines of this.underlyingLines.values()) for (const line of lines.values()) this.sendUnderlyingTicks(line);
    }
  }

  private watch(contract: OptionContract): ContractQuote {
    let quote = this.quotes.get(contract.conId);
    if (!quote) {
      quote = new ContractQuote(contract, this.seed, this.openInterest(contract));
      this.quotes.set(contract.conId, quote);
      this.requote(quote, this.lastWall);
    }
    return quote;
  }

  private unwatchIfIdle(quote: ContractQuote): void {
    if (quote.lines.size === 0 && !this.traded.has(quote.contract.conId)) this.quotes.delete(quote.contract.conId);
  }

  private removeLine(line: OptionLine): void {
    this.lines.get(line.session)?.delete(line.reqId);
    line.quote.lines.delete(line);
    this.unwatchIfIdle(line.quote);
  }

  /** Business years from the last step to an expiry moment. */
  private businessYearsTo(contract: OptionContract): number {
    let toExpiry = this.expiryBusiness.get(contract.expiry);
    if (toExpiry === undefined) {
      toExpiry = this.business.years(this.anchorWall, contract.expiryMs);
      this.expiryBusiness.set(contract.expiry, toExpiry);
    }
    return toExpiry - this.anchorYears;
  }

  /** New theo, quote, sizes and perhaps a print for one contract, at the chain's current spot and volatility. */
  private requote(q: ContractQuote, wall: number): void {
    const c = q.contract;
    const S = this.spot;
    const T = (c.expiryMs - wall) / MS_PER_YEAR;
    const tau = this.businessYearsTo(c);
    q.years = T;
    q.businessYears = tau;
    q.spot = S;
    q.vol = surfaceVol(this.ssvi, this.atm, S, c.strike, T, tau, SPY_RATE, SPY_DIVIDEND_YIELD);
    const intrinsic = Math.max(q.right * (S - c.strike), 0);
    let theo = intrinsic;
    let vega = 0;
    let z = Infinity;
    if (q.vol > 0) {
      bsmGreeks(q.right, S, c.strike, T, SPY_RATE, SPY_DIVIDEND_YIELD, q.vol, q.model);
      theo = Math.max(q.model.price, intrinsic); // American: never below exercise value
      vega = q.model.vega;
      z = (Math.log(c.strike / S) - (SPY_RATE - SPY_DIVIDEND_YIELD) * T) / (q.vol * Math.sqrt(T));
    } else {
      q.model.price = q.model.delta = q.model.gamma = q.model.vega = q.model.theta = NaN;
    }
    const half = Math.max(0.005, SPREAD.alpha + SPREAD.beta * theo + SPREAD.kappa * vega);
    let bid = Math.max(0, Math.floor((theo - half) * 100 + 1e-9) / 100);
    if (intrinsic > 0) bid = Math.max(bid, Math.floor(intrinsic * 100 + 1e-9) / 100);
    const ask = cents(Math.max(Math.ceil((theo + half) * 100 - 1e-9) / 100, bid + 0.01, 0.01));
    bid = cents(bid);
    const r = q.random;
    const peak = Math.exp(-0.5 * z * z);
    if (bid !== q.bid || ask !== q.ask || q.bidSize === 0 || r.next() < SIZE_CHANGE) {
      q.bidSize = bid > 0 ? 1 + Math.floor((4 + 400 * peak) * (0.5 + r.next())) : 0;
      q.askSize = 1 + Math.floor((4 + 400 * peak) * (0.5 + r.next()));
    }
    q.bid = bid;
    q.ask = ask;
    if (r.next() < (PRINT_RATE * peak + PRINT_RATE_FLOOR) * (this.quoteMs / 1000)) {
      const atBid = bid > 0 && r.next() < 0.5;
      q.last = atBid ? bid : ask;
      q.lastSize = r.size(6);
      q.volume += q.lastSize;
      q.prints++;
      this.onPrint(c.conId, q.last, q.lastSize);
    }
  }

  /** What a line has not been sent yet: quotes, sizes, prints, and (when `compute`) message 21. */
  private publish(line: OptionLine, compute: boolean): void {
    const q = line.quote;
    const bid = this.crossed ? q.ask : q.bid;
    const ask = this.crossed ? q.bid : q.ask;
    const bidSize = this.crossed ? q.askSize : q.bidSize;
    const askSize = this.crossed ? q.bidSize : q.askSize;
    if (bid !== line.sentBid || bidSize !== line.sentBidSize) {
      this.price(line, BID, bid, bidSize, BID_SIZE);
      line.sentBid = bid;
      line.sentBidSize = bidSize;
    }
    if (ask !== line.sentAsk || askSize !== line.sentAskSize) {
      this.price(line, ASK, ask, askSize, ASK_SIZE);
      line.sentAsk = ask;
      line.sentAskSize = askSize;
    }
    const printed = q.prints !== line.sentPrints;
    if (printed && q.prints > 0) {
      this.price(line, LAST, q.last, q.lastSize, LAST_SIZE);
      this.size(line, VOLUME, q.volume);
      if (line.generics.has(GENERIC.volume)) line.session.send([TICK_SIZE, 6, line.reqId, q.right === 1 ? CALL_VOLUME : PUT_VOLUME, q.volume]);
    }
    line.sentPrints = q.prints;
    if (!compute) return;
    if (q.spot === line.computedSpot && this.atm.vol === line.computedVol && bid === line.computedBid && ask === line.computedAsk && q.prints === line.computedPrints) return;
    line.computedSpot = q.spot;
    line.computedVol = this.atm.vol;
    line.computedBid = bid;
    line.computedAsk = ask;
    line.computedPrints = q.prints;
    line.computedAt = this.clock.now();
    const offset = line.dataType === 1 ? 0 : m.DELAYED_OPTION_OFFSET;
    const c = this.computation;
    this.computeAt(line, bid, c);
    line.session.send(m.optionComputation(line.reqId, m.BID_OPTION + offset, c));
    this.computeAt(line, ask, c);
    line.session.send(m.optionComputation(line.reqId, m.ASK_OPTION + offset, c));
    if (q.prints > 0) {
      this.computeAt(line, q.last, c);
      line.session.send(m.optionComputation(line.reqId, m.LAST_OPTION + offset, c));
    }
    this.modelAt(line, c);
    line.session.send(m.optionComputation(line.reqId, m.MODEL_OPTION + offset, c));
  }

  /** A bid, ask or last price, then its size: the client drops the size a bid price carries. */
  private price(line: OptionLine, type: number, px: number, size: number, sizeType: number): void {
    const delayed = line.dataType !== 1;
    line.session.send([TICK_PRICE, 6, line.reqId, delayed ? DELAYED_TICKS[type] : type, px, size, 0]);
    this.size(line, sizeType, size);
  }

  private size(line: OptionLine, type: number, size: number): void {
    line.session.send([TICK_SIZE, 6, line.reqId, line.dataType !== 1 ? DELAYED_TICKS[type] : type, size]);
  }

  /** Message 21 for a quoted price: its implied volatility and the greeks there; −1/−2 where there is none. */
  private computeAt(line: OptionLine, px: number, c: m.Computation): void {
    const q = line.quote;
    c.impliedVol = c.delta = c.gamma = c.vega = c.theta = NaN;
    c.optPrice = px;
    c.undPrice = line.underlyingKnown ? q.spot : NaN;
    c.pvDividend = line.underlyingKnown && q.years > 0 ? q.spot * -Math.expm1(-SPY_DIVIDEND_YIELD * q.years) : NaN;
    if (!line.underlyingKnown || !(px > 0) || !(q.years > 0)) return;
    const iv = impliedVolCode(q.right, px, q.spot, q.contract.strike, q.years, SPY_RATE, SPY_DIVIDEND_YIELD);
    if (!(iv > 0)) return;
    bsmGreeks(q.right, q.spot, q.contract.strike, q.years, SPY_RATE, SPY_DIVIDEND_YIELD, iv, this.greeks);
    this.fill(c, iv, this.greeks);
    c.optPrice = px;
  }

  /** Message 21 tick 13: the surface's volatility and BSM there. */
  private modelAt(line: OptionLine, c: m.Computation): void {
    const q = line.quote;
    c.impliedVol = c.delta = c.optPrice = c.pvDividend = c.gamma = c.vega = c.theta = c.undPrice = NaN;
    if (!line.underlyingKnown || !(q.vol > 0)) return;
    this.fill(c, q.vol, q.model);
    c.undPrice = q.spot;
    c.pvDividend = q.spot * -Math.expm1(-SPY_DIVIDEND_YIELD * q.years);
  }

  private fill(c: m.Computation, vol: number, g: { price: number; delta: number; gamma: number; vega: number; theta: number }): void {
    c.impliedVol = vol;
    c.optPrice = g.price;
    c.delta = g.delta;
    c.gamma = g.gamma;
    c.vega = g.vega;
    c.theta = g.theta;
  }

  /**
   * Generic ticks when an option line starts: its own volume (29/30, then
   * with every print) and open interest (27/28), SPY's historical (23) and
   * 30-day implied volatility (24).
   */
  private sendOptionGenerics(line: OptionLine): void {
    if (line.generics.size === 0 || this.paused || this.stale) return;
    const q = line.quote;
    const call = q.right === 1;
    if (line.generics.has(GENERIC.volume)) line.session.send([TICK_SIZE, 6, line.reqId, call ? CALL_VOLUME : PUT_VOLUME, q.volume]);
    if (line.generics.has(GENERIC.openInterest)) line.session.send([TICK_SIZE, 6, line.reqId, call ? CALL_OPEN_INTEREST : PUT_OPEN_INTEREST, q.openInterest]);
    if (line.generics.has(GENERIC.historicalVol)) line.session.send([m.TICK_GENERIC, 6, line.reqId, HISTORICAL_VOL, round6(Math.sqrt(this.realizedVariance))]);
    if (line.generics.has(GENERIC.impliedVol)) line.session.send([m.TICK_GENERIC, 6, line.reqId, IMPLIED_VOL_30D, round6(this.impliedVol30())]);
  }

  private sendUnderlyingTicks(line: UnderlyingLine): void {
    if (this.paused || !this.marketData.has(line.session, line.reqId)) return;
    const out: Field[][] = [];
    const g = line.generics;
    if (g.has(GENERIC.volume)) {
      const [calls, puts] = this.chainVolume();
      out.push([TICK_SIZE, 6, line.reqId, CALL_VOLUME, calls], [TICK_SIZE, 6, line.reqId, PUT_VOLUME, puts]);
    }
    if (g.has(GENERIC.openInterest)) {
      const [calls, puts] = this.chainOpenInterest();
      out.push([TICK_SIZE, 6, line.reqId, CALL_OPEN_INTEREST, calls], [TICK_SIZE, 6, line.reqId, PUT_OPEN_INTEREST, puts]);
    }
    if (g.has(GENERIC.historicalVol)) out.push([m.TICK_GENERIC, 6, line.reqId, HISTORICAL_VOL, round6(Math.sqrt(this.realizedVariance))]);
    if (g.has(GENERIC.impliedVol)) out.push([m.TICK_GENERIC, 6, line.reqId, IMPLIED_VOL_30D, round6(this.impliedVol30())]);
    const key = out.map((f) => f.join(',')).join(';');
    if (key === line.sent) return;
    line.sent = key;
    for (const fields of out) line.session.send(fields);
  }

  /** The surface's at-the-money volatility 30 calendar days out. */
  private impliedVol30(): number {
    const T = 30 / 365;
    const wall = this.lastWall;
    const tau = this.business.years(wall, wall + 30 * 86_400_000);
    return Math.sqrt(atmTotalVariance(tau, this.atm) / T);
  }

  /** Calls and puts traded today on the chain: the quoted contracts' prints and a steady background. */
  private chainVolume(): [number, number] {
    const seconds = (this.clock.now() - this.startedAt) / 1000;
    let calls = Math.floor(BACKGROUND_VOLUME[0] * seconds);
    let puts = Math.floor(BACKGROUND_VOLUME[1] * seconds);
    for (const q of this.quotes.values()) {
      if (q.right === 1) calls += q.volume;
      else puts += q.volume;
    }
    return [calls, puts];
  }

  private chainOpenInterest(): [number, number] {
    if (!this.aggregateOpenInterest) {
      let calls = 0;
      let puts = 0;
      for (const c of this.listing.contracts) {
        if (c.right === 'C') calls += this.openInterest(c);
        else puts += this.openInterest(c);
      }
      this.aggregateOpenInterest = [calls, puts];
    }
    return this.aggregateOpenInterest;
  }

  /** Open interest: fixed for the day, largest at the money and on near expiries, from the seed and the contract. */
  private openInterest(c: OptionContract): number {
    let oi = this.openInterests.get(c.conId);
    if (oi === undefined) {
      const u = mix(this.seed ^ 0x01, c.conId) / 4294967296;
      const years = Math.max((c.expiryMs - this.clock.wallNow()) / MS_PER_YEAR, 1 / 365);
      const z = Math.log(c.strike / this.underlying.openPrice) / (0.15 * Math.sqrt(years));
      oi = Math.round((50 + 30_000 * Math.exp(-0.5 * z * z)) * (0.3 + 1.4 * u));
      this.openInterests.set(c.conId, oi);
    }
    return oi;
  }

  /** The first time a session asks for option data TWS says how its options farm is (2104 or 2103 usopt). */
  private tellFarm(session: Session): void {
    if (session.toldOptionsFarm) return;
    session.toldOptionsFarm = true;
    if (this.farmBroken) session.error(NO_ID, 2103, 'Market data farm connection is broken:usopt');
    else session.error(NO_ID, 2104, 'Market data farm connection is OK:usopt');
  }

  /**
   * The contract a market-data or calculate request names: by conId, by
   * local symbol, or by expiry, strike and right (321 when one is missing);
   * 200 when no such contract is listed.
   */
  private resolve(session: Session, reqId: number, f: m.ContractFields): OptionContract | undefined {
    const listing = this.listing;
    let contract: OptionContract | undefined;
    if (f.conId > 0) contract = listing.byId(f.conId);
    else if (f.localSymbol !== '') contract = listing.bySymbol(f.localSymbol);
    else if (f.expiry === undefined || f.expiry.length !== 8 || f.strike === undefined || f.right === undefined) {
      session.error(reqId, 321, "Error validating request.-'bZ' : cause - Incomplete option contract: the expiry (YYYYMMDD), strike and right, or the conId or local symbol, are needed");
      return undefined;
    } else if (f.symbol === this.underlying.symbol) {
      contract = listing.select(f.expiry, f.strike, f.right)[0];
    }
    if (!contract) session.error(reqId, 200, 'No security definition has been found for the request');
    return contract;
  }
}

const round6 = (x: number) => Math.round(x * 1e6) / 1e6;
