/**
 * subscriptions: the one place that asks IB for market data. It keeps the
 * plan of what keel wants (subscription-plan.ts) under IB's budgets, sends
 * every request through the link's pacer, requests everything again when
 * the data epoch changes (new connection, 1101), and re-requests a feed that
 * goes silent while others tick, telling feature health (`feed.silent`).
 *
 * A wide universe is staged: at most a second's worth of requests waits in
 * the pacer at a time, so orders and cancels never queue behind thousands
 * of them, and while staging takes long a progress line is logged every
 * `progressMs` ("subscribed 1,350 / 5,000 quote lines, ... ETA 91 s").
 * Everything downstream runs on what is live meanwhile.
 *
 * Data flows straight from the client's events into the data plane: depth
 * into the DepthFeed (typed-array batches on `depth`), prints into the
 * TradeFeed (batches on `trades`), quotes and tick-by-tick into the
 * QuoteBoard. For an instrument without a book the
 * quotes are its top of book (`quotes.tops`), and without tick-by-tick
 * prints its volume ticks are its prints. No XState event per tick.
 */
import { EventName, SecType, type Contract, type IBApi } from '../ib/api.js';
import { z } from 'zod';
import { DepthFeed } from '../ib/depth-feed.js';
import { listenTo } from '../ib/link.js';
import { OptionLinePlan, type OptionLine, type OptionLines } from '../ib/option-lines.js';
import { PRIORITY } from '../ib/pacer.js';
import { QuoteBoard } from '../ib/quote-board.js';
import { TradeFeed } from '../ib/trade-feed.js';
import {
  countsOf,
  MAX_INSTRUMENTS,
  progressLine,
  requestsToGo,
  SubscriptionPlan,
  symbolRange,
  type Feed,
  type FeedListing,
  type FeedKind,
  type StagingProgress,
  type SubscriptionsStatus,
  type WantedFeed,
} from '../ib/subscription-plan.js';
import type { ComponentContext } from '../supervision/component.js';
import { serviceLogic } from '../supervision/service.js';
import { BOOK_RESYNC_TOPIC, DEPTH_RESET_TOPIC, FEED_SILENT_TOPIC, IB_STATUS_TOPIC, QUOTE_TOPS_TOPIC, SUBSCRIPTIONS_STATUS_TOPIC } from '../topics.js';
import { RepeatMerger } from '../log.js';

const feedSettings = {
  exchange: z.string().default('SMART'),
  currency: z.string().default('USD'),
  primaryExch: z.string().optional(),
  quotes: z.boolean().default(true),
  depth: z
    .union([z.literal(false), z.object({ rows: z.number().int().min(1).max(10).default(10), smart: z.boolean().default(false) }).strict()])
    .default(false),
  ticks: z.enum(['Last', 'AllLast', 'BidAsk', 'MidPoint']).optional(),
};

/** One instrument (`symbol`), or a range of numbered ones with the same feeds (`symbols: SYN0001..SYN4996`). */
const instrumentEntry = z
  .object({
    symbol: z.string().min(1).optional(),
    symbols: z.string().optional(),
    ...feedSettings,
  })
  .strict();

type InstrumentEntry = z.output<typeof instrumentEntry>;
export type InstrumentSettings = Omit<InstrumentEntry, 'symbol' | 'symbols'> & { readonly symbol: string };

const symbolsOf = (entry: InstrumentEntry): string[] => (entry.symbols === undefined ? [entry.symbol!] : symbolRange(entry.symbols));

/** An entry's instruments, each with the entry's feeds. */
function expand(entry: InstrumentEntry): InstrumentSettings[] {
  const { exchange, currency, primaryExch, quotes, depth, ticks } = entry;
  return symbolsOf(entry).map((symbol) => ({ symbol, exchange, currency, primaryExch, quotes, depth, ticks }));
}

/** Every entry names one instrument or a good range, no symbol twice, at most MAX_INSTRUMENTS in all. */
function checkInstruments(entries: readonly InstrumentEntry[], ctx: z.RefinementCtx): void {
  const firstAt = new Map<string, number>();
  entries.forEach((entry, i) => {
    const key = entry.symbols === undefined ? 'symbol' : 'symbols';
    const problem = (message: string) => ctx.addIssue({ code: 'custom', path: [i, key], message, input: entry[key] });
    if (entry.symbol === undefined && entry.symbols === undefined) {
      ctx.addIssue({ code: 'custom', path: [i, 'symbol'], message: 'give symbol (one instrument) or symbols (a range such as SYN0001..SYN4996)', input: undefined });
      return;
    }
    if (entry.symbol !== undefined && entry.symbols !== undefined) return problem(`give symbol or symbols, not both (symbol is ${entry.symbol})`);
    let symbols: string[];
    try {
      symbols = symbolsOf(entry);
    } catch (err) {
      return problem((err as Error).message);
    }
    for (const symbol of symbols) {
      const at = firstAt.get(symbol);
      if (at !== undefined) return problem(`${symbol} is listed twice (also in instruments[${at}])`);
      firstAt.set(symbol, i);
    }
  });
  if (firstAt.size > MAX_INSTRUMENTS) ctx.addIssue({ code: 'custom', path: [], message: `${firstAt.size} instruments; at most ${MAX_INSTRUMENTS}` });
}

const DEFAULT_INSTRUMENTS: InstrumentSettings[] = [{ symbol: 'SPY', exchange: 'SMART', currency: 'USD', quotes: true, depth: { rows: 10, smart: false } }];

export const subscriptionsSettings = z
  .object({
    instruments: z
      .array(instrumentEntry)
      .superRefine(checkInstruments)
      .transform((entries) => entries.flatMap(expand))
      .default(DEFAULT_INSTRUMENTS),
    budgets: z
      .object({
        /**
         * IB allows 100 lines by default; keel leaves a few for other tools on the same account. An account
         * entitled to more (by commissions, equity or Quote Booster packs) sets its own number here.
         */
        marketDataLines: z.number().int().min(0).default(95),
        depthSlots: z.number().int().min(0).default(3),
        tickByTickSlots: z.number().int().min(0).default(3),
      })
      .strict()
      .default({ marketDataLines: 95, depthSlots: 3, tickByTickSlots: 3 }),
    /** How often the plan is swept: requests sent, silence checked, status published. */
    sweepMs: z.number().int().positive().default(100),
    /** A feed quiet this long while others tick is dead and requested again. */
    silenceMs: z.number().int().positive().default(5_000),
    /** The same for quote lines (default: silenceMs): a quiet name's quote may rest far longer than a liquid book. */
    quotesSilenceMs: z.number().int().positive().optional(),
    /** While staging takes longer than this, its progress is logged this often. */
    progressMs: z.number().int().positive().default(5_000),
  })
  .strict();

export type SubscriptionsSettings = z.infer<typeof subscriptionsSettings>;

const DEPTH_RESET = 317;

/** Lower ranks are requested first: depth (scarcest and most useful), then tick-by-tick, then quotes. */
const KIND_RANK: Readonly<Record<FeedKind, number>> = { depth: 0, ticks: 1, quotes: 2 };

/** Every feed the instruments want, ranked by kind, then in config order. */
export function wantedFeeds(instruments: readonly InstrumentSettings[]): WantedFeed[] {
  const priority = (kind: FeedKind, instrument: number) => KIND_RANK[kind] * MAX_INSTRUMENTS + instrument;
  return instruments.flatMap((s, instrument) => {
    const feeds: WantedFeed[] = [];
    if (s.depth) feeds.push({ symbol: s.symbol, instrument, kind: 'depth', priority: priority('depth', instrument), rows: s.depth.rows, smart: s.depth.smart });
    if (s.ticks) feeds.push({ symbol: s.symbol, instrument, kind: 'ticks', priority: priority('ticks', instrument), tickType: s.ticks });
    if (s.quotes) feeds.push({ symbol: s.symbol, instrument, kind: 'quotes', priority: priority('quotes', instrument) });
    return feeds;
  });
}

export function contractOf(s: InstrumentSettings): Contract {
  return { symbol: s.symbol, secType: SecType.STK, exchange: s.exchange, currency: s.currency, primaryExch: s.primaryExch };
}

export const subscriptionsLogic = serviceLogic<SubscriptionsSettings>(async (ctx: ComponentContext<SubscriptionsSettings>) => {
  const { settings, bus, clock, log } = ctx;
  // Refusals are TWS's words: a flood of one is one line and a count.
  const refusals = new RepeatMerger(log, clock);
  const link = ctx.need('ibLink');
  const api = link.api;
  const { instruments } = settings;
  const symbols = instruments.map((i) => i.symbol);
  const booked = instruments.map((i) => i.depth !== false);
  const plan = new SubscriptionPlan(wantedFeeds(instruments), settings.budgets);
  const depth = new DepthFeed(bus, clock);
  const trades = new TradeFeed(bus, clock);
  const quotes = new QuoteBoard(symbols, booked.map((b) => !b));
  // Without tick-by-tick prints, an instrument's prints are the volume its quote line reports.
  const printsFromVolume = Uint8Array.from(instruments, (i) => (i.ticks === 'Last' || i.ticks === 'AllLast' ? 0 : 1));
  const depthAskedAt = new Float64Array(instruments.length).fill(NaN);
  ctx.provide('instruments', { symbols, booked, depthAskedAt });
  // Option lines share the market-data budget: what the stock quote lines leave.
  const stockQuoteLines = plan.feeds.filter((f) => f.kind === 'quotes').length;
  const options = new OptionLinePlan(Math.max(0, settings.budgets.marketDataLines - stockQuoteLines));
  let epoch = -1;
  let stopped = false;

  const touch = (reqId: number): number => {
    const route = plan.feed(reqId)?.route;
    if (!route) {
      options.data(reqId);
      return -1;
    }
    route.lastAt = clock.now();
    route.updates++;
    return route.instrument;
  };
  // The top of book of instruments without a book goes out once per socket read, as depth batches do.
  let quoteTopsQueued = false;
  const publishQuoteTops = () => {
    quoteTopsQueued = false;
    quotes.changedAt = clock.now();
    try {
      bus.publish(QUOTE_TOPS_TOPIC, quotes);
    } finally {
      quotes.clearChanges();
    }
  };
  const quotesRead = () => {
    if (quoteTopsQueued || quotes.changedCount === 0) return;
    quoteTopsQueued = true;
    queueMicrotask(publishQuoteTops);
  };
  const onTickPrice = (reqId: number, field: number, value: number) => {
    quotes.price(touch(reqId), field, value);
    quotesRead();
  };
  const onTickSize = (reqId: number, field: number | undefined, value: number | undefined) => {
    const instrument = touch(reqId);
    const traded = quotes.size(instrument, field ?? -1, value ?? NaN);
    if (traded > 0 && printsFromVolume[instrument] === 1) trades.trade(instrument, quotes.last[instrument]!, traded);
    quotesRead();
  };
  const onLast = (reqId: number, _type: number, _time: number, price: number, size: number) => {
    const instrument = touch(reqId);
    quotes.trade(instrument, price, size);
    trades.trade(instrument, price, size);
  };
  const onBidAsk = (reqId: number, _time: number, bid: number, ask: number, bidSize: number, askSize: number) => {
    quotes.top(touch(reqId), bid, ask, bidSize, askSize);
    quotesRead();
  };
  const onMid = (reqId: number) => touch(reqId);
  // Rows that came before the reset in the stream are applied before it.
  const resetBook = (instrument: number) => {
    depth.flush();
    bus.publish(DEPTH_RESET_TOPIC, { instrument });
  };
  const onError = (error: Error, code: number, reqId: number) => {
    if (code === DEPTH_RESET) {
      const route = plan.feed(reqId)?.route;
      if (route) resetBook(route.instrument);
      return;
    }
    const line = options.refused(reqId, code, error.message, clock.now());
    if (line) {
      refusals.line('warn', { localSymbol: line.contract.localSymbol, code, status: line.status }, `IB refused an option line for ${line.contract.localSymbol}: ${error.message}`);
      return;
    }
    const feed = plan.refused(reqId, code, error.message, clock.now());
    if (!feed) return;
    depth.unroute(reqId);
    if (feed.kind === 'depth') depthAskedAt[feed.instrument] = NaN;
    refusals.line('warn', { symbol: feed.symbol, kind: feed.kind, code, status: feed.status }, `IB refused ${feed.kind} for ${feed.symbol}: ${error.message}`);
  };
  const stopListening = listenTo(api, [
    [EventName.updateMktDepth, depth.onDepth],
    [EventName.updateMktDepthL2, depth.onDepthL2],
    [EventName.tickPrice, onTickPrice],
    [EventName.tickSize, onTickSize],
    [EventName.tickByTickAllLast, onLast],
    [EventName.tickByTickBidAsk, onBidAsk],
    [EventName.tickByTickMidPoint, onMid],
    [EventName.error, onError],
  ]);

  const request = (feed: Feed) => {
    const reqId = feed.reqId!;
    const contract = contractOf(instruments[feed.instrument]!);
    if (feed.kind === 'depth') depth.route(reqId, feed.route!);
    link.send(PRIORITY.subscriptions, `${feed.kind} ${feed.symbol}`, (ib: IBApi) => {
      // Voided while it waited in the pacer (new data epoch, silence, stop): a request nobody would track.
      if (stopped || plan.feed(reqId) !== feed) return;
      const now = clock.now();
      plan.asked(feed, now);
      // Silence is counted from when IB was asked, not from when the request joined the queue.
      feed.route!.lastAt = now;
      if (feed.kind === 'depth') {
        depthAskedAt[feed.instrument] = now;
        // A new subscription starts from an empty book: whatever keel held is from a void request.
        resetBook(feed.instrument);
        ib.reqMktDepth(reqId, contract, feed.rows ?? 10, feed.smart ?? false, []);
      }
      else if (feed.kind === 'ticks') ib.reqTickByTickData(reqId, contract, feed.tickType as never, 0, false);
      else ib.reqMktData(reqId, contract, '', false, false);
    });
  };
  const cancel = (feed: Feed, reqId: number) => {
    depth.unroute(reqId);
    link.send(PRIORITY.subscriptions, `cancel ${feed.kind} ${feed.symbol}`, (ib: IBApi) => {
      if (feed.kind === 'depth') ib.cancelMktDepth(reqId, feed.smart ?? false);
      else if (feed.kind === 'ticks') ib.cancelTickByTickData(reqId);
      else ib.cancelMktData(reqId);
    });
  };

  const requestOption = (line: OptionLine) => {
    const reqId = line.reqId!;
    const { conId, localSymbol } = line.contract;
    const genericTicks = options.genericTicks;
    link.send(PRIORITY.subscriptions, `option ${localSymbol}`, (ib: IBApi) => {
      // Dropped or voided while it waited in the pacer.
      if (stopped || options.line(reqId) !== line) return;
      line.asked = true;
      ib.reqMktData(reqId, { conId, secType: SecType.OPT, exchange: 'SMART', currency: 'USD' }, genericTicks, false, false);
    });
  };
  const cancelOption = (reqId: number, localSymbol: string) => {
    link.send(PRIORITY.subscriptions, `cancel option ${localSymbol}`, (ib: IBApi) => ib.cancelMktData(reqId));
  };
  const optionLines: OptionLines = {
    allowance: options.allowance,
    quotes,
    want(contracts, genericTicks = '') {
      options.genericTicks = genericTicks;
      // Cancels first: the pacer keeps their order, so IB frees the lines before new ones are asked for.
      for (const line of options.want(contracts)) if (link.ready) cancelOption(line.reqId!, line.contract.localSymbol);
      sweepSoon();
    },
    contractOf: (reqId) => options.line(reqId)?.contract,
    counts: () => options.counts(),
    statusOf: (conId) => options.lineOf(conId)?.status,
  };
  ctx.provide('optionLines', optionLines);

  // The pacer's sustained rate (its burst aside): what an ETA can count on.
  const requestsPerSecond = link.pacer.perSecond - link.pacer.burst;
  /** While requests are still to leave: since when, and when progress was last logged. */
  let staging: { since: number; reportedAt: number } | undefined;
  const reportProgress = (progress: StagingProgress, now: number) => {
    // Staging lasts while requests are still to leave; a feed asked and quiet does not hold it open.
    if (requestsToGo(progress) > 0) {
      staging ??= { since: now, reportedAt: now };
      if (now - staging.reportedAt < settings.progressMs) return;
      staging.reportedAt = now;
      log.info({ pacerWaiting: link.pacer.waiting, requestsSent: link.pacer.sent }, progressLine(progress, requestsPerSecond));
    } else if (staging) {
      const seconds = (now - staging.since) / 1000;
      log.info({ seconds }, `subscriptions staged in ${seconds.toFixed(1)} s: ${progressLine(progress, requestsPerSecond)}`);
      staging = undefined;
    }
  };

  let listing: { version: number; feeds: readonly FeedListing[] } | undefined;
  const listFeeds = () => {
    if (listing?.version !== plan.version) {
      listing = { version: plan.version, feeds: plan.feeds.map((f) => ({ symbol: f.symbol, kind: f.kind, status: f.status, reqId: f.reqId, note: f.note, rerequests: f.rerequests })) };
    }
    return listing.feeds;
  };

  const sweep = () => {
    // A new ib_connection incarnation brings a new link: start over with it (only reachable under one_for_one).
    if (ctx.services.current('ibLink') !== link) throw new Error('the IB link was replaced: subscriptions restarts to use the new one');
    const now = clock.now();
    const status = bus.latest(IB_STATUS_TOPIC);
    if (link.ready && status && status.dataEpoch !== epoch) {
      if (epoch >= 0) log.info({ dataEpoch: status.dataEpoch, reason: status.reason }, 'market data void (reconnect or 1101): requesting every subscription again');
      epoch = status.dataEpoch;
      for (const f of plan.feeds) if (f.reqId !== undefined) depth.unroute(f.reqId);
      plan.voidAll();
      options.voidAll();
    }
    if (link.ready) {
      for (const feed of plan.feeds) if (feed.route && feed.route.updates > 0) plan.live(feed);
      for (const feed of plan.silent(now, settings.silenceMs, settings.quotesSilenceMs)) {
        const silentForMs = now - feed.route!.lastAt;
        const old = plan.rerequest(feed);
        if (old !== undefined) cancel(feed, old);
        log.warn({ symbol: feed.symbol, kind: feed.kind, silentForMs }, `${feed.kind} feed for ${feed.symbol} went silent: requesting it again`);
        bus.publish(FEED_SILENT_TOPIC, { symbol: feed.symbol, kind: feed.kind, silentForMs });
      }
      // At most a second's worth waits in the pacer: the rest stays in the plan, where a new epoch voids it for free.
      for (const feed of plan.due(now, Math.max(0, link.pacer.perSecond - link.pacer.waiting))) request(feed);
      // Option lines after the stocks' requests, in the room a second of the pacer leaves.
      for (const line of options.due(now, Math.max(0, link.pacer.perSecond - link.pacer.waiting))) requestOption(line);
    }
    const progress = plan.progress();
    if (link.ready) reportProgress(progress, now);
    const report: SubscriptionsStatus = {
      counts: countsOf(progress),
      progress,
      get feeds() {
        return listFeeds();
      },
      pacerWaiting: link.pacer.waiting,
      requestsSent: link.pacer.sent,
    };
    bus.retain(SUBSCRIPTIONS_STATUS_TOPIC, report);
    timer = clock.setTimeout(sweep, settings.sweepMs);
  };
  let timer: unknown;
  const sweepSoon = () => {
    clock.clearTimeout(timer);
    // In this component's scope: the status that asks for it is published from ib_connection's.
    timer = clock.setTimeout(() => ctx.scope(sweep), 0);
  };
  // Not inline: the status is published from inside ib_connection's transition.
  const unsubscribeStatus = bus.subscribe(IB_STATUS_TOPIC, sweepSoon);
  // A book that no longer matches TWS's gets a fresh snapshot: its depth is asked for again, which resets it.
  const unsubscribeResync = bus.subscribe(BOOK_RESYNC_TOPIC, ({ instrument, symbol }) => {
    const feed = plan.feeds.find((f) => f.instrument === instrument && f.kind === 'depth' && f.reqId !== undefined);
    if (!feed) return;
    const old = plan.rerequest(feed);
    if (old !== undefined) cancel(feed, old);
    log.warn({ symbol }, `${symbol} book out of sync: requesting its depth again`);
    sweepSoon();
  });
  sweepSoon();
  log.info({ instruments: instruments.length, feeds: plan.feeds.length, budgets: settings.budgets }, 'subscription manager started');

  return {
    stop() {
      stopped = true;
      clock.clearTimeout(timer);
      unsubscribeStatus();
      unsubscribeResync();
      // Only what IB was asked for: requests still in the pacer are dropped there.
      for (const feed of plan.feeds) if (feed.reqId !== undefined && feed.askedAt === feed.askedAt && link.ready) cancel(feed, feed.reqId);
      if (link.ready) for (const line of options.heldLines()) cancelOption(line.reqId!, line.contract.localSymbol);
      stopListening();
      depth.flush();
      trades.flush();
      refusals.flush();
    },
  };
});
