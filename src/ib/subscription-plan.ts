/**
 * Which market-data requests keel wants, which are live, and which wait:
 * the pure bookkeeping of the subscription manager, with time passed in.
 *
 * IB's budgets: market-data lines, depth slots (3 by default) and
 * tick-by-tick slots, plus one tick-by-tick request per instrument per 15 s.
 * A feed beyond a budget waits, in priority order, and is visible as
 * waiting. A new data epoch (new connection, or 1101) voids every request:
 * everything wanted is requested again. A feed that stays silent while
 * others tick is requested again too.
 */
import type { Route } from './depth-feed.js';

export type FeedKind = 'quotes' | 'depth' | 'ticks';
export type TickType = 'Last' | 'AllLast' | 'BidAsk' | 'MidPoint';

export interface WantedFeed {
  readonly symbol: string;
  /** The instrument's index in keel's universe. */
  readonly instrument: number;
  readonly kind: FeedKind;
  /** Lower is more urgent. */
  readonly priority: number;
  readonly rows?: number;
  readonly smart?: boolean;
  readonly tickType?: TickType;
}

export type FeedStatus = 'waiting' | 'requested' | 'live' | 'refused';

export interface Feed extends WantedFeed {
  status: FeedStatus;
  reqId: number | undefined;
  route: Route | undefined;
  /** Why it waits or was refused, in words. */
  note: string;
  /** Not requested again before this time (after IB refused it for a budget). */
  notBefore: number;
  requestedAt: number;
  rerequests: number;
}

export interface Budgets {
  readonly marketDataLines: number;
  readonly depthSlots: number;
  readonly tickByTickSlots: number;
}

/** IB allows one tick-by-tick request per instrument per 15 s. */
export const TICK_BY_TICK_SPACING_MS = 15_000;
/** Codes that mean "not now": another client holds the slot, or an id clashed. */
const BUDGET_CODES = new Set([101, 309, 322, 10190]);
/** Codes that mean "never": no such contract, no market-data permission, a request IB rejects. */
const REFUSAL_CODES = new Set([200, 321, 354, 10089, 10090, 10091, 10168, 10189]);
const BUDGET_RETRY_MS = 15_000;
/**
 * Request ids start far above any order id: IB reports errors for both in
 * one id field, and a cancelled order's 202 must never look like a refused feed.
 */
export const FIRST_REQUEST_ID = 1_000_000_000;

export class SubscriptionPlan {
  readonly feeds: Feed[];
  private readonly byReqId = new Map<number, Feed>();
  private readonly lastTickByTickAt = new Map<string, number>();
  private nextReqId: number;

  constructor(
    wanted: readonly WantedFeed[],
    private readonly budgets: Budgets,
    firstReqId = FIRST_REQUEST_ID,
  ) {
    this.nextReqId = firstReqId;
    this.feeds = wanted
      .map((w) => ({ ...w, status: 'waiting' as FeedStatus, reqId: undefined, route: undefined, note: 'not requested yet', notBefore: 0, requestedAt: 0, rerequests: 0 }))
      .sort((a, b) => a.priority - b.priority);
  }

  feed(reqId: number): Feed | undefined {
    return this.byReqId.get(reqId);
  }

  /**
   * The feeds to request now, in priority order, each given a fresh request
   * id and marked requested. The rest stay waiting, with the reason noted.
   */
  due(now: number): Feed[] {
    const inUse: Record<FeedKind, number> = { quotes: 0, depth: 0, ticks: 0 };
    for (const f of this.feeds) if (f.status === 'requested' || f.status === 'live') inUse[f.kind]++;
    const budget: Record<FeedKind, number> = { quotes: this.budgets.marketDataLines, depth: this.budgets.depthSlots, ticks: this.budgets.tickByTickSlots };
    const due: Feed[] = [];
    for (const f of this.feeds) {
      if (f.status !== 'waiting') continue;
      if (now < f.notBefore) continue;
      if (inUse[f.kind] >= budget[f.kind]) {
        f.note = `waiting for a ${f.kind} slot (${budget[f.kind]} in use)`;
        continue;
      }
      if (f.kind === 'ticks') {
        const last = this.lastTickByTickAt.get(f.symbol);
        if (last !== undefined && now - last < TICK_BY_TICK_SPACING_MS) {
          f.note = 'waiting: one tick-by-tick request per instrument per 15 s';
          continue;
        }
        this.lastTickByTickAt.set(f.symbol, now);
      }
      inUse[f.kind]++;
      f.reqId = this.nextReqId++;
      f.status = 'requested';
      f.requestedAt = now;
      f.note = 'requested';
      f.route = { instrument: f.instrument, lastAt: now, updates: 0 };
      this.byReqId.set(f.reqId, f);
      due.push(f);
    }
    return due;
  }

  /** Data arrived for a request: its feed is live. */
  live(feed: Feed): void {
    if (feed.status === 'requested') {
      feed.status = 'live';
      feed.note = 'live';
    }
  }

  /** Every earlier request is void (new connection, or 1101): all wanted feeds wait to be requested again. */
  voidAll(): void {
    this.byReqId.clear();
    for (const f of this.feeds) {
      if (f.status === 'refused') continue;
      f.status = 'waiting';
      f.reqId = undefined;
      f.route = undefined;
      f.note = 'to be requested again (new data epoch)';
    }
  }

  /**
   * IB answered a request with an error. A budget code (101, 309, 322,
   * 10190): wait and retry. A refusal (200, 354, ...): the feed is refused
   * for good. Any other code is a warning about a feed that goes on; it is
   * left as it is. Returns the feed when it changed.
   */
  refused(reqId: number, code: number, message: string, now: number): Feed | undefined {
    const f = this.byReqId.get(reqId);
    if (!f || (!BUDGET_CODES.has(code) && !REFUSAL_CODES.has(code))) return undefined;
    this.byReqId.delete(reqId);
    f.reqId = undefined;
    f.route = undefined;
    if (BUDGET_CODES.has(code)) {
      f.status = 'waiting';
      f.notBefore = now + BUDGET_RETRY_MS;
      f.note = `IB refused (${code}: ${message}); retrying`;
    } else {
      f.status = 'refused';
      f.note = `IB refused (${code}: ${message})`;
    }
    return f;
  }

  /**
   * Live feeds that have said nothing for `silenceMs` while another feed
   * spoke within it: a dead subscription, not a quiet market.
   */
  silent(now: number, silenceMs: number): Feed[] {
    const active = this.feeds.some((f) => f.route && now - f.route.lastAt < silenceMs && f.route.updates > 0);
    if (!active) return [];
    return this.feeds.filter((f) => (f.status === 'live' || f.status === 'requested') && f.route && now - f.route.lastAt >= silenceMs);
  }

  /** Withdraws a feed's request so it is asked again; returns the request id to cancel. */
  rerequest(feed: Feed): number | undefined {
    const old = feed.reqId;
    if (old !== undefined) this.byReqId.delete(old);
    feed.status = 'waiting';
    feed.reqId = undefined;
    feed.route = undefined;
    feed.rerequests++;
    feed.note = 'silent: requested again';
    return old;
  }

  counts(): Record<FeedStatus, number> {
    const counts: Record<FeedStatus, number> = { waiting: 0, requested: 0, live: 0, refused: 0 };
    for (const f of this.feeds) counts[f.status]++;
    return counts;
  }
}
