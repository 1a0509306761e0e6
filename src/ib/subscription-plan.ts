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
 *
 * A wide universe is staged: requests leave through the pacer (45 a
 * second), so thousands of lines take minutes. `due` hands out at most as
 * many as the caller lets wait in the pacer, and `progress` says how far
 * staging is and how long the rest will take (`progressLine` in words).
 * Each sweep's passes are linear in the feeds and allocate nothing per feed.
 */
import { BUDGET_RETRY_MS, NOT_NOW_CODES, REFUSAL_CODES } from './codes.js';
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
  /** When the request left through the pacer (NaN while it waits there, or before it is requested). */
  askedAt: number;
  rerequests: number;
}

export interface Budgets {
  readonly marketDataLines: number;
  readonly depthSlots: number;
  readonly tickByTickSlots: number;
}

/** IB allows one tick-by-tick request per instrument per 15 s. */
export const TICK_BY_TICK_SPACING_MS = 15_000;
/** "Not now", and 309: every depth slot is taken. */
const BUDGET_CODES = new Set([...NOT_NOW_CODES, 309]);
const KINDS: readonly FeedKind[] = ['quotes', 'depth', 'ticks'];
/** A note per kind and budget, made once: waiting feeds are noted at every sweep. */
const waitingForSlot = (kind: FeedKind, budget: number) => `waiting for a ${kind} slot (${budget} in use)`;
/**
 * Request ids start far above any order id: IB reports errors for both in
 * one id field, and a cancelled order's 202 must never look like a refused feed.
 */
export const FIRST_REQUEST_ID = 1_000_000_000;

/** How far one kind of feed is staged. */
export interface KindProgress {
  readonly wanted: number;
  readonly budget: number;
  readonly live: number;
  /** Sent to IB, no data yet. */
  readonly asked: number;
  /** Requested but still waiting in the pacer. */
  readonly queued: number;
  /** Within the budget, not requested yet: still to be sent. */
  readonly toStage: number;
  /** Waiting because the budget is spent. */
  readonly beyondBudget: number;
  readonly refused: number;
}

export type StagingProgress = Readonly<Record<FeedKind, KindProgress>>;

export class SubscriptionPlan {
  readonly feeds: Feed[];
  /** Bumped on every change of a feed's status, request or note: whoever lists the feeds lists them again. */
  version = 0;
  private readonly byReqId = new Map<number, Feed>();
  private readonly lastTickByTickAt = new Map<string, number>();
  private readonly budget: Readonly<Record<FeedKind, number>>;
  private readonly waitingNotes: Readonly<Record<FeedKind, string>>;
  private nextReqId: number;

  constructor(
    wanted: readonly WantedFeed[],
    budgets: Budgets,
    firstReqId = FIRST_REQUEST_ID,
  ) {
    this.nextReqId = firstReqId;
    this.budget = { quotes: budgets.marketDataLines, depth: budgets.depthSlots, ticks: budgets.tickByTickSlots };
    this.waitingNotes = { quotes: waitingForSlot('quotes', budgets.marketDataLines), depth: waitingForSlot('depth', budgets.depthSlots), ticks: waitingForSlot('ticks', budgets.tickByTickSlots) };
    // Every field written in one order, optional ones too: one object shape for all feeds keeps the sweeps over thousands fast.
    this.feeds = wanted
      .map(
        (w): Feed => ({
          symbol: w.symbol,
          instrument: w.instrument,
          kind: w.kind,
          priority: w.priority,
          rows: w.rows,
          smart: w.smart,
          tickType: w.tickType,
          status: 'waiting',
          reqId: undefined,
          route: undefined,
          note: 'not requested yet',
          notBefore: 0,
          requestedAt: 0,
          askedAt: NaN,
          rerequests: 0,
        }),
      )
      .sort((a, b) => a.priority - b.priority);
  }

  feed(reqId: number): Feed | undefined {
    return this.byReqId.get(reqId);
  }

  /**
   * The feeds to request now, in priority order, at most `limit` of them
   * (what may wait in the pacer), each given a fresh request id and marked
   * requested. The rest stay waiting, with the reason noted.
   */
  due(now: number, limit = Infinity): Feed[] {
    const inUse: Record<FeedKind, number> = { quotes: 0, depth: 0, ticks: 0 };
    for (const f of this.feeds) if (f.status === 'requested' || f.status === 'live') inUse[f.kind]++;
    const due: Feed[] = [];
    for (const f of this.feeds) {
      if (due.length >= limit) break;
      if (f.status !== 'waiting') continue;
      if (now < f.notBefore) continue;
      if (inUse[f.kind] >= this.budget[f.kind]) {
        this.note(f, this.waitingNotes[f.kind]);
        continue;
      }
      if (f.kind === 'ticks') {
        const last = this.lastTickByTickAt.get(f.symbol);
        if (last !== undefined && now - last < TICK_BY_TICK_SPACING_MS) {
          this.note(f, 'waiting: one tick-by-tick request per instrument per 15 s');
          continue;
        }
        this.lastTickByTickAt.set(f.symbol, now);
      }
      inUse[f.kind]++;
      f.reqId = this.nextReqId++;
      f.status = 'requested';
      f.requestedAt = now;
      f.askedAt = NaN;
      f.note = 'requested';
      f.route = { instrument: f.instrument, lastAt: now, updates: 0 };
      this.byReqId.set(f.reqId, f);
      this.version++;
      due.push(f);
    }
    return due;
  }

  /** The request left through the pacer: IB has been asked. */
  asked(feed: Feed, now: number): void {
    feed.askedAt = now;
    this.version++;
  }

  /** Data arrived for a request: its feed is live. */
  live(feed: Feed): void {
    if (feed.status === 'requested') {
      feed.status = 'live';
      feed.note = 'live';
      this.version++;
    }
  }

  /** Every earlier request is void (new connection, or 1101): all wanted feeds wait to be requested again. */
  voidAll(): void {
    this.byReqId.clear();
    this.version++;
    for (const f of this.feeds) {
      if (f.status === 'refused') continue;
      f.status = 'waiting';
      f.reqId = undefined;
      f.route = undefined;
      f.askedAt = NaN;
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
    this.version++;
    f.reqId = undefined;
    f.route = undefined;
    f.askedAt = NaN;
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
   * Live feeds that have said nothing for `silenceMs` (quote lines:
   * `quotesSilenceMs`, as a quiet name's quote may rest for long) while
   * another feed spoke within it: a dead subscription, not a quiet market.
   */
  silent(now: number, silenceMs: number, quotesSilenceMs = silenceMs): Feed[] {
    const quiet = (f: Feed) => (f.kind === 'quotes' ? quotesSilenceMs : silenceMs);
    const active = this.feeds.some((f) => f.route && now - f.route.lastAt < quiet(f) && f.route.updates > 0);
    if (!active) return [];
    return this.feeds.filter((f) => (f.status === 'live' || f.status === 'requested') && f.route && now - f.route.lastAt >= quiet(f));
  }

  /** Withdraws a feed's request so it is asked again; returns the request id to cancel. */
  rerequest(feed: Feed): number | undefined {
    const old = feed.reqId;
    if (old !== undefined) this.byReqId.delete(old);
    feed.status = 'waiting';
    feed.reqId = undefined;
    feed.route = undefined;
    feed.askedAt = NaN;
    feed.rerequests++;
    feed.note = 'silent: requested again';
    this.version++;
    return old;
  }

  counts(): Record<FeedStatus, number> {
    return countsOf(this.progress());
  }

  /** How far staging is, per kind. */
  progress(): StagingProgress {
    const tally = () => ({ wanted: 0, live: 0, asked: 0, queued: 0, waiting: 0, refused: 0 });
    const t = { quotes: tally(), depth: tally(), ticks: tally() };
    for (const f of this.feeds) {
      const k = t[f.kind];
      k.wanted++;
      if (f.status === 'live') k.live++;
      else if (f.status === 'refused') k.refused++;
      else if (f.status === 'waiting') k.waiting++;
      else if (f.askedAt === f.askedAt) k.asked++;
      else k.queued++;
    }
    const of = (kind: FeedKind): KindProgress => {
      const k = t[kind];
      const budget = this.budget[kind];
      const toStage = Math.min(k.waiting, Math.max(0, budget - k.live - k.asked - k.queued));
      return { wanted: k.wanted, budget, live: k.live, asked: k.asked, queued: k.queued, toStage, beyondBudget: k.waiting - toStage, refused: k.refused };
    };
    return { quotes: of('quotes'), depth: of('depth'), ticks: of('ticks') };
  }

  private note(f: Feed, note: string): void {
    if (f.note === note) return;
    f.note = note;
    this.version++;
  }
}

/** Feeds by status, from a staging progress. */
export function countsOf(p: StagingProgress): Record<FeedStatus, number> {
  const counts: Record<FeedStatus, number> = { waiting: 0, requested: 0, live: 0, refused: 0 };
  for (const kind of KINDS) {
    const k = p[kind];
    counts.waiting += k.toStage + k.beyondBudget;
    counts.requested += k.asked + k.queued;
    counts.live += k.live;
    counts.refused += k.refused;
  }
  return counts;
}

/** Requests still to leave through the pacer before every feed within its budget has been asked for. */
export function requestsToGo(p: StagingProgress): number {
  return KINDS.reduce((n, kind) => n + p[kind].queued + p[kind].toStage, 0);
}


const count = (n: number) => n.toLocaleString('en-US');
const NOUNS: Readonly<Record<FeedKind, string>> = { quotes: 'quote lines', depth: 'depth', ticks: 'tick-by-tick' };

/**
 * Staging in one line: what is live of what is wanted per kind, what is
 * still to be sent and when that will be done at `requestsPerSecond`, and
 * what waits beyond a budget or was refused, e.g.
 * `subscribed 1,350 / 5,000 quote lines, 3 / 3 depth, 3 / 3 tick-by-tick; 3,650 requests to go at 40/s, ETA 92 s`.
 */
export function progressLine(p: StagingProgress, requestsPerSecond: number): string {
  if (!(requestsPerSecond > 0)) throw new RangeError(`requests per second must be positive, got ${requestsPerSecond}`);
  const kinds = KINDS.filter((kind) => p[kind].wanted > 0);
  const parts = [`subscribed ${kinds.map((kind) => `${count(p[kind].live)} / ${count(p[kind].wanted)} ${NOUNS[kind]}`).join(', ')}`];
  const toGo = requestsToGo(p);
  if (toGo > 0) parts.push(`${count(toGo)} requests to go at ${count(requestsPerSecond)}/s, ETA ${count(Math.ceil(toGo / requestsPerSecond))} s`);
  const asked = kinds.reduce((n, kind) => n + p[kind].asked, 0);
  if (asked > 0) parts.push(`${count(asked)} asked, awaiting data`);
  for (const kind of kinds) {
    const { beyondBudget, budget, refused } = p[kind];
    if (beyondBudget > 0) parts.push(`${count(beyondBudget)} ${NOUNS[kind]} wait beyond the budget of ${count(budget)}`);
    if (refused > 0) parts.push(`${count(refused)} ${NOUNS[kind]} refused by IB`);
  }
  return parts.join('; ');
}

/** The most instruments one universe may hold (the simulator's limit too). */
export const MAX_INSTRUMENTS = 100_000;
const RANGE = /^([A-Za-z.]*)(\d+)\.\.([A-Za-z.]*)(\d+)$/;

/**
 * The symbols of a range of numbered names, `SYN0001..SYN4996`: one prefix,
 * numbers written as the first one is (its zero padding), first to last
 * inclusive. A RangeError says what is wrong with a bad one.
 */
export function symbolRange(text: string): string[] {
  const m = RANGE.exec(text.trim());
  if (!m) throw new RangeError(`expected a range of numbered symbols like SYN0001..SYN4996, got '${text}'`);
  const [, prefix, from, lastPrefix, to] = m as unknown as [string, string, string, string, string];
  if (prefix !== lastPrefix) throw new RangeError(`both ends of '${text}' must have the same prefix ('${prefix}' and '${lastPrefix}')`);
  const first = Number(from);
  const last = Number(to);
  const name = (n: number) => `${prefix}${String(n).padStart(from.length, '0')}`;
  if (name(last) !== `${prefix}${to}`) throw new RangeError(`in '${text}' the last symbol must be written like the first, as ${name(last)}`);
  if (last < first) throw new RangeError(`'${text}' runs backwards: ${name(last)} comes before ${name(first)}`);
  if (last - first + 1 > MAX_INSTRUMENTS) throw new RangeError(`'${text}' names ${last - first + 1} symbols; at most ${MAX_INSTRUMENTS} instruments`);
  return Array.from({ length: last - first + 1 }, (_, k) => name(first + k));
}

/** One feed as the status lists it. */
export interface FeedListing {
  readonly symbol: string;
  readonly kind: string;
  readonly status: string;
  readonly reqId: number | undefined;
  readonly note: string;
  readonly rerequests: number;
}

/** What the manager reports at every sweep (retained), for the inspector and tests. */
export interface SubscriptionsStatus {
  readonly counts: Record<Feed['status'], number>;
  /** How far staging is, per kind of feed. */
  readonly progress: StagingProgress;
  /** Every feed; listed when first read after a change (thousands of them: not at every sweep). */
  readonly feeds: readonly FeedListing[];
  readonly pacerWaiting: number;
  readonly requestsSent: number;
}

/** A feed quiet this long while others tick: requested again, and a condition for feature health until data flows. */
export interface FeedSilence {
  readonly symbol: string;
  readonly kind: FeedKind;
  readonly silentForMs: number;
}
