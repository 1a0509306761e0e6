/**
 * Market data from the simulated market to the sessions that asked for it:
 * quotes (reqMktData), depth (reqMktDepth, plain or smart) and tick-by-tick,
 * under IB's per-connection limits (101, 309, 10190, 322), and for
 * instruments with live permission only (a fault takes it away: 10167, 354).
 *
 * The market calls `depth` and `trade` with plain numbers; each is turned into
 * the messages of every feed on that instrument. A feed can be silenced (a
 * fault) and sessions can be paused (an outage) without the market stopping.
 *
 * Market-data lines are one budget per session: option lines (the option
 * chain, options/chain.ts) claim theirs here (`claimLine`), so stocks and
 * options share the 100 lines and the ticker ids, as at IB.
 */
import type { Clock } from '../clock.js';
import { TickType } from '../ib/api.js';
import type { Instrument } from './instruments.js';
import { ASK, BID, DELETE, INSERT, Market, ROWS, type InstrumentBook, type MarketListener, type MarketOptions, type Operation, type Side } from './market.js';
import type { Session } from './session.js';
import type { Field } from './wire.js';

/** Server-to-client message ids (decoder.js IN_MSG_ID). */
const TICK_PRICE = 1;
const TICK_SIZE = 2;
const MARKET_DEPTH = 12;
const MARKET_DEPTH_L2 = 13;
const TICK_BY_TICK = 99;

const { BID_SIZE, BID: BID_PRICE, ASK: ASK_PRICE, ASK_SIZE, LAST: LAST_PRICE, LAST_SIZE, VOLUME } = TickType;

/** Venues named on smart-depth rows; a price's venue never changes so rows aggregate cleanly. */
const VENUES = ['NSDQ', 'ARCA', 'BATS', 'EDGX'] as const;

export interface MarketDataLimits {
  /** Market-data lines per connection (IB: 100). */
  readonly marketDataLines: number;
  /** Depth subscriptions per connection (IB: 3). */
  readonly depthSubscriptions: number;
  /** Tick-by-tick subscriptions per connection. */
  readonly tickByTickSubscriptions: number;
}

export const IB_LIMITS: MarketDataLimits = { marketDataLines: 100, depthSubscriptions: 3, tickByTickSubscriptions: 3 };

/** An instrument's market-data permission: live (every one, unless a fault says otherwise), delayed only, or none. */
export type Permission = 'live' | 'delayed' | 'none';
export const PERMISSIONS: readonly Permission[] = ['live', 'delayed', 'none'];
/** reqMarketDataType from which a session takes delayed data where live is not permitted (3 delayed, 4 delayed frozen). */
const DELAYED = 3;

/** How a corrupted depth feed lies: every size 0, or every price NaN. */
export type DepthCorruption = 'zero-sizes' | 'nan-prices';

export type TickByTickType = 'Last' | 'AllLast' | 'BidAsk' | 'MidPoint';
const TICK_BY_TICK_CODES: Record<TickByTickType, number> = { Last: 1, AllLast: 2, BidAsk: 3, MidPoint: 4 };

type FeedRequest =
  | { readonly kind: 'quotes' }
  | { readonly kind: 'depth'; readonly rows: number; readonly smart: boolean }
  | { readonly kind: 'ticks'; readonly type: TickByTickType };

type Feed = FeedRequest & {
  readonly session: Session;
  readonly reqId: number;
  readonly book: InstrumentBook;
  silent: boolean;
};

const price = (ticks: number) => ticks / 100;

/**
 * A request for an instrument without live permission, answered as TWS
 * does: quotes for a session that takes delayed data (reqMarketDataType 3)
 * get 10167, which the simulator, having no delayed feed, follows with
 * nothing; every other request gets 354.
 */
function refuseUnpermitted(session: Session, reqId: number, request: FeedRequest, permission: Exclude<Permission, 'live'>): void {
  if (permission === 'delayed' && request.kind === 'quotes' && session.marketDataType >= DELAYED) {
    return session.error(reqId, 10167, 'Requested market data is not subscribed. Displaying delayed market data.');
  }
  session.error(reqId, 354, `Requested market data is not subscribed.${permission === 'delayed' ? ' Delayed market data is available.' : ''}`);
}

function duplicateId(session: Session, reqId: number): void {
  session.error(reqId, 322, `Error processing request: Duplicate ticker id ${reqId}`);
}

/** A paper account whose live account is logged in elsewhere gets no market data (10197). */
export function refuseCompeting(session: Session, reqId: number): void {
  session.error(reqId, 10197, 'No market data during competing live session');
}

export class MarketData implements MarketListener {
  readonly market: Market;
  /** While true (a connectivity or farm outage) nothing is sent; the market goes on. */
  paused = false;
  /** Called on every trade the market prints (resting simulated orders fill against them). */
  onTrade: (book: InstrumentBook, priceTicks: number, size: number) => void = () => {};
  private readonly feedsByInstrument = new Map<number, Feed[]>();
  private readonly feedsBySession = new Map<Session, Map<number, Feed>>();
  /** Feeds of each kind per session, kept as they come and go: counting them per request was quadratic at thousands of lines. */
  private readonly inUseBySession = new Map<Session, Record<FeedRequest['kind'], number>>();
  /** Instruments whose depth is sent corrupted (a fault). */
  private readonly corrupted = new Map<number, DepthCorruption>();
  /** Instruments without live permission (a fault), by index. */
  private readonly permissions = new Map<number, Exclude<Permission, 'live'>>();
  /** Messages written to sessions, for benchmarks and tests. */
  messagesSent = 0;
  /** The account's live session is in use elsewhere (a fault): every new request gets 10197 and no data. */
  competingLiveSession = false;
  /** Called when an outage ends, after the feeds here have been sent afresh. */
  onResume: () => void = () => {};
  /** Lines held by others (option lines), by session and ticker id, with what gives each back. */
  private readonly claimed = new Map<Session, Map<number, () => void>>();

  constructor(
    options: MarketOptions,
    /** IB's per-connection limits, for new requests (a fault can change them). */
    public limits: MarketDataLimits,
    private readonly clock: Clock,
  ) {
    this.market = new Market(options, this);
  }

  /** Starts a feed, or answers with IB's error when a limit or id rule forbids it. */
  subscribe(session: Session, reqId: number, instrument: Instrument, request: FeedRequest): void {
    const feeds = this.sessionFeeds(session);
    if (feeds.has(reqId) || this.claimed.get(session)?.has(reqId)) return duplicateId(session, reqId);
    if (this.competingLiveSession) return refuseCompeting(session, reqId);
    const permission = this.permissions.get(instrument.index);
    if (permission !== undefined) return refuseUnpermitted(session, reqId, request, permission);
    const inUse = this.inUse(session)[request.kind];
    if (request.kind === 'quotes' && inUse >= this.limits.marketDataLines) return this.refuseLine(session, reqId);
    if (request.kind === 'depth' && inUse >= this.limits.depthSubscriptions) {
      return session.error(reqId, 309, `Max number (${this.limits.depthSubscriptions}) of market depth requests has been reached`);
    }
    if (request.kind === 'ticks' && inUse >= this.limits.tickByTickSubscriptions) {
      return session.error(reqId, 10190, `Max number of tick-by-tick requests has been reached (${this.limits.tickByTickSubscriptions})`);
    }
    const book = this.market.book(instrument);
    const feed: Feed = { ...request, session, reqId, book, silent: false };
    feeds.set(reqId, feed);
    this.inUse(session)[request.kind]++;
    let list = this.feedsByInstrument.get(instrument.index);
    if (!list) this.feedsByInstrument.set(instrument.index, (list = []));
    list.push(feed);
    this.market.watch(book, this.clock.now());
    this.sendSnapshot(feed);
  }

  /**
   * Takes one market-data line of the session's budget for a feed kept
   * elsewhere (an option line), or answers 322 (ticker id in use) or 101 (no
   * line left) and returns false. `release` is called when the line is
   * cancelled or its session ends.
   */
  claimLine(session: Session, reqId: number, release: () => void): boolean {
    let claimed = this.claimed.get(session);
    if (this.sessionFeeds(session).has(reqId) || claimed?.has(reqId)) {
      duplicateId(session, reqId);
      return false;
    }
    if (this.inUse(session).quotes >= this.limits.marketDataLines) {
      this.refuseLine(session, reqId);
      return false;
    }
    if (!claimed) this.claimed.set(session, (claimed = new Map()));
    claimed.set(reqId, release);
    this.inUse(session).quotes++;
    return true;
  }

  /** Whether the session has a feed or a claimed line under this ticker id. */
  has(session: Session, reqId: number): boolean {
    return (this.feedsBySession.get(session)?.has(reqId) ?? false) || (this.claimed.get(session)?.has(reqId) ?? false);
  }

  /**
   * Ends an outage: every depth feed is told to empty its book (317, as TWS
   * does) and every feed gets a fresh snapshot, since what changed during
   * the pause was never sent.
   */
  resume(): void {
    this.paused = false;
    for (const feeds of this.feedsBySession.values()) {
      for (const feed of feeds.values()) {
        if (feed.kind === 'depth') {
          feed.session.error(feed.reqId, 317, 'Market depth data has been RESET. Please empty deep book contents before applying any new entries.');
        }
        this.sendSnapshot(feed);
      }
    }
    this.onResume();
  }

  cancel(session: Session, reqId: number): void {
    const feed = this.feedsBySession.get(session)?.get(reqId);
    if (feed) this.remove(feed);
    const release = this.claimed.get(session)?.get(reqId);
    if (release) {
      this.claimed.get(session)!.delete(reqId);
      this.inUse(session).quotes--;
      release();
    }
  }

  /** Forgets every feed of a session (it closed, or IB lost its data: 1101). */
  dropSession(session: Session): void {
    for (const feed of this.feedsBySession.get(session)?.values() ?? []) this.remove(feed);
    const claimed = this.claimed.get(session);
    this.claimed.delete(session);
    for (const release of claimed?.values() ?? []) release();
    this.feedsBySession.delete(session);
    this.inUseBySession.delete(session);
  }

  /** Stops sending data for every feed on an instrument, until it is requested again. */
  silence(index: number): number {
    const feeds = this.feedsByInstrument.get(index) ?? [];
    for (const feed of feeds) feed.silent = true;
    return feeds.length;
  }

  /** From now on the instrument's depth carries bad values (undefined: clean again); the market itself is unchanged. */
  corrupt(index: number, mode: DepthCorruption | undefined): void {
    if (mode) this.corrupted.set(index, mode);
    else this.corrupted.delete(index);
  }

  /** From now on requests for the instrument are answered as its permission says; feeds already running go on. */
  permit(index: number, permission: Permission): void {
    if (permission === 'live') this.permissions.delete(index);
    else this.permissions.set(index, permission);
  }

  /** Instruments without live permission, by index. */
  get restricted(): ReadonlyMap<number, Permission> {
    return this.permissions;
  }

  /** Live feeds of a session, for status and tests. */
  feedsOf(session: Session): { reqId: number; kind: string; symbol: string; silent: boolean }[] {
    return [...(this.feedsBySession.get(session)?.values() ?? [])].map((f) => ({
      reqId: f.reqId,
      kind: f.kind,
      symbol: f.book.instrument.symbol,
      silent: f.silent,
    }));
  }

  depth(index: number, side: Side, position: number, operation: Operation, priceTicks: number, size: number): void {
    const feeds = this.feedsByInstrument.get(index);
    if (!feeds) return;
    for (const feed of feeds) {
      if (feed.silent || this.paused) continue;
      if (feed.kind === 'depth') {
        if (position >= feed.rows) continue;
        this.sendDepth(feed, position, operation, side, priceTicks, size);
        // A delete pulls the next row up into view: the subscriber never had it, so insert it.
        if (operation === DELETE && feed.rows < ROWS) {
          const row = feed.rows - 1;
          this.sendDepth(feed, row, INSERT, side, feed.book.price[side][row]!, feed.book.size[side][row]!);
        }
      } else if (position === 0) {
        if (feed.kind === 'quotes') this.sendQuote(feed, side);
        else if (feed.type === 'BidAsk' || feed.type === 'MidPoint') this.sendTopTick(feed);
      }
    }
  }

  trade(index: number, priceTicks: number, size: number): void {
    const feeds = this.feedsByInstrument.get(index);
    if (feeds) {
      for (const feed of feeds) {
        if (feed.silent || this.paused) continue;
        if (feed.kind === 'quotes') this.sendLast(feed);
        else if (feed.kind === 'ticks' && (feed.type === 'Last' || feed.type === 'AllLast')) {
          this.send(feed, [TICK_BY_TICK, feed.reqId, TICK_BY_TICK_CODES[feed.type], this.epochSeconds(), price(priceTicks), size, 0, 'NSDQ', '']);
        }
      }
    }
    const book = this.market.bookAt(index);
    if (book) this.onTrade(book, priceTicks, size);
  }

  private sendSnapshot(feed: Feed): void {
    if (this.paused) return;
    const book = feed.book;
    if (feed.kind === 'depth') {
      for (let row = 0; row < feed.rows; row++) {
        for (const side of [ASK, BID] as const) this.sendDepth(feed, row, INSERT, side, book.price[side][row]!, book.size[side][row]!);
      }
    } else if (feed.kind === 'quotes') {
      this.sendQuote(feed, BID);
      this.sendQuote(feed, ASK);
      this.sendLast(feed);
    } else if (feed.type === 'BidAsk' || feed.type === 'MidPoint') {
      this.sendTopTick(feed);
    }
  }

  private sendDepth(feed: Feed & { kind: 'depth' }, position: number, operation: Operation, side: Side, priceTicks: number, size: number): void {
    const corrupt = this.corrupted.get(feed.book.index);
    const px = corrupt === 'nan-prices' ? NaN : price(priceTicks);
    const qty = corrupt === 'zero-sizes' ? 0 : size;
    if (feed.smart) {
      this.send(feed, [MARKET_DEPTH_L2, 1, feed.reqId, position, VENUES[priceTicks % VENUES.length], operation, side, px, qty, 1]);
    } else {
      this.send(feed, [MARKET_DEPTH, 1, feed.reqId, position, operation, side, px, qty]);
    }
  }

  /** A bid or ask price, always followed by its size (the client drops the size carried on a bid price). */
  private sendQuote(feed: Feed, side: Side): void {
    const px = feed.book.price[side][0]!;
    const size = feed.book.size[side][0]!;
    this.send(feed, [TICK_PRICE, 6, feed.reqId, side === BID ? BID_PRICE : ASK_PRICE, price(px), size, 0]);
    this.send(feed, [TICK_SIZE, 6, feed.reqId, side === BID ? BID_SIZE : ASK_SIZE, size]);
  }

  private sendLast(feed: Feed): void {
    const book = feed.book;
    this.send(feed, [TICK_PRICE, 6, feed.reqId, LAST_PRICE, price(book.lastPriceTicks), book.lastSize, 0]);
    this.send(feed, [TICK_SIZE, 6, feed.reqId, LAST_SIZE, book.lastSize]);
    this.send(feed, [TICK_SIZE, 6, feed.reqId, VOLUME, book.volume]);
  }

  private sendTopTick(feed: Feed & { kind: 'ticks' }): void {
    const b = feed.book;
    const time = this.epochSeconds();
    if (feed.type === 'MidPoint') {
      this.send(feed, [TICK_BY_TICK, feed.reqId, 4, time, price((b.bestBid() + b.bestAsk()) / 2)]);
    } else {
      this.send(feed, [TICK_BY_TICK, feed.reqId, 3, time, price(b.bestBid()), price(b.bestAsk()), b.size[BID][0], b.size[ASK][0], 0]);
    }
  }

  private send(feed: Feed, fields: readonly Field[]): void {
    this.messagesSent++;
    feed.session.send(fields);
  }

  private epochSeconds(): number {
    return Math.floor(this.clock.wallNow() / 1000);
  }

  private sessionFeeds(session: Session): Map<number, Feed> {
    let feeds = this.feedsBySession.get(session);
    if (!feeds) this.feedsBySession.set(session, (feeds = new Map()));
    return feeds;
  }

  private inUse(session: Session): Record<FeedRequest['kind'], number> {
    let counts = this.inUseBySession.get(session);
    if (!counts) this.inUseBySession.set(session, (counts = { quotes: 0, depth: 0, ticks: 0 }));
    return counts;
  }

  private refuseLine(session: Session, reqId: number): void {
    session.error(reqId, 101, `Max number of tickers has been reached (${this.limits.marketDataLines})`);
  }

  private remove(feed: Feed): void {
    if (this.feedsBySession.get(feed.session)?.delete(feed.reqId)) this.inUse(feed.session)[feed.kind]--;
    const list = this.feedsByInstrument.get(feed.book.index);
    if (!list) return;
    const at = list.indexOf(feed);
    if (at >= 0) list.splice(at, 1);
    if (list.length === 0) this.feedsByInstrument.delete(feed.book.index);
  }
}
