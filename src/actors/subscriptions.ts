/**
 * subscriptions: the one place that asks IB for market data. It keeps the
 * plan of what keel wants (subscription-plan.ts) under IB's budgets, sends
 * every request through the link's pacer, requests everything again when
 * the data epoch changes (new connection, 1101), and re-requests a feed that
 * goes silent while others tick, telling feature health (`feed.silent`).
 *
 * Data flows straight from the client's events into the data plane: depth
 * into the DepthFeed (typed-array batches on `depth`), prints into the
 * TradeFeed (batches on `trades`), quotes and tick-by-tick into the
 * QuoteBoard (retained on `quotes`). No XState event per tick.
 */
import { EventName, SecType, type Contract, type IBApi } from '@stoqey/ib';
import { z } from 'zod';
import { DepthFeed } from '../ib/depth-feed.js';
import { LINK_TOPIC, listenTo, STATUS_TOPIC, type IbLink, type IbStatus } from '../ib/link.js';
import { PRIORITY } from '../ib/pacer.js';
import { QuoteBoard, QUOTES_TOPIC } from '../ib/quote-board.js';
import { TradeFeed } from '../ib/trade-feed.js';
import { SubscriptionPlan, type Feed, type WantedFeed } from '../ib/subscription-plan.js';
import type { ComponentContext } from '../supervision/component.js';
import { serviceLogic } from '../supervision/service.js';

const instrumentSettings = z
  .object({
    symbol: z.string().min(1),
    exchange: z.string().default('SMART'),
    currency: z.string().default('USD'),
    primaryExch: z.string().optional(),
    quotes: z.boolean().default(true),
    depth: z
      .union([z.literal(false), z.object({ rows: z.number().int().min(1).max(10).default(10), smart: z.boolean().default(false) }).strict()])
      .default(false),
    ticks: z.enum(['Last', 'AllLast', 'BidAsk', 'MidPoint']).optional(),
  })
  .strict();

export const subscriptionsSettings = z
  .object({
    instruments: z.array(instrumentSettings).default([{ symbol: 'SPY', exchange: 'SMART', currency: 'USD', quotes: true, depth: { rows: 10, smart: false } }]),
    budgets: z
      .object({
        /** IB allows 100 by default; keel leaves a few for other tools on the same account. */
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
  })
  .strict();

export type SubscriptionsSettings = z.infer<typeof subscriptionsSettings>;
type InstrumentSettings = SubscriptionsSettings['instruments'][number];

export const SUBSCRIPTIONS_STATUS_TOPIC = 'subscriptions.status';
export const FEED_SILENT_TOPIC = 'feed.silent';
export const INSTRUMENTS_TOPIC = 'instruments';
/** Per instrument, whether keel keeps its book (a depth feed): the ones whose data age matters. */
export const BOOKED_INSTRUMENTS_TOPIC = 'instruments.booked';
/** 317: TWS says empty the book before applying new entries; consumers of `depth` do so on this topic. */
export const DEPTH_RESET_TOPIC = 'depth.reset';
const DEPTH_RESET = 317;

/** The instrument universe (index = instrument id), for the components downstream of subscriptions. */
export function requireInstruments(ctx: ComponentContext<unknown>): readonly string[] {
  const symbols = ctx.bus.latest<readonly string[]>(INSTRUMENTS_TOPIC);
  if (!symbols) throw new Error(`${ctx.id} needs the instrument universe: is subscriptions configured and listed in dependsOn?`);
  return symbols;
}

/** What the manager reports at every sweep (retained), for the inspector and tests. */
export interface SubscriptionsStatus {
  readonly counts: Record<Feed['status'], number>;
  readonly feeds: readonly { symbol: string; kind: string; status: string; reqId: number | undefined; note: string; rerequests: number }[];
  readonly pacerWaiting: number;
  readonly requestsSent: number;
}

/** Depth first (scarcest and most useful), then tick-by-tick, then quotes; config order within each. */
function wantedFeeds(instruments: readonly InstrumentSettings[]): WantedFeed[] {
  return instruments.flatMap((s, instrument) => {
    const feeds: WantedFeed[] = [];
    if (s.depth) feeds.push({ symbol: s.symbol, instrument, kind: 'depth', priority: instrument, rows: s.depth.rows, smart: s.depth.smart });
    if (s.ticks) feeds.push({ symbol: s.symbol, instrument, kind: 'ticks', priority: 100_000 + instrument, tickType: s.ticks });
    if (s.quotes) feeds.push({ symbol: s.symbol, instrument, kind: 'quotes', priority: 200_000 + instrument });
    return feeds;
  });
}

function contractOf(s: InstrumentSettings): Contract {
  return { symbol: s.symbol, secType: SecType.STK, exchange: s.exchange, currency: s.currency, primaryExch: s.primaryExch };
}

export const subscriptionsLogic = serviceLogic<SubscriptionsSettings>(async (ctx: ComponentContext<SubscriptionsSettings>) => {
  const { settings, bus, clock, log } = ctx;
  const link = bus.latest<IbLink>(LINK_TOPIC);
  if (!link) throw new Error('subscriptions needs the IB link: is ib_connection configured and listed in dependsOn?');
  const api = link.api;
  const plan = new SubscriptionPlan(wantedFeeds(settings.instruments), settings.budgets);
  const depth = new DepthFeed(bus, clock);
  const trades = new TradeFeed(bus, clock);
  const quotes = new QuoteBoard(settings.instruments.map((i) => i.symbol));
  bus.retain(INSTRUMENTS_TOPIC, settings.instruments.map((i) => i.symbol));
  bus.retain(BOOKED_INSTRUMENTS_TOPIC, settings.instruments.map((i) => i.depth !== false));
  bus.retain(QUOTES_TOPIC, quotes);
  let epoch = -1;

  const touch = (reqId: number): number => {
    const route = plan.feed(reqId)?.route;
    if (!route) return -1;
    route.lastAt = clock.now();
    route.updates++;
    return route.instrument;
  };
  const onTickPrice = (reqId: number, field: number, value: number) => quotes.price(touch(reqId), field, value);
  const onTickSize = (reqId: number, field: number | undefined, value: number | undefined) => quotes.size(touch(reqId), field ?? -1, value ?? NaN);
  const onLast = (reqId: number, _type: number, _time: number, price: number, size: number) => {
    const instrument = touch(reqId);
    quotes.trade(instrument, price, size);
    trades.trade(instrument, price, size);
  };
  const onBidAsk = (reqId: number, _time: number, bid: number, ask: number, bidSize: number, askSize: number) =>
    quotes.top(touch(reqId), bid, ask, bidSize, askSize);
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
    const feed = plan.refused(reqId, code, error.message, clock.now());
    if (!feed) return;
    depth.unroute(reqId);
    log.warn({ symbol: feed.symbol, kind: feed.kind, code, status: feed.status }, `IB refused ${feed.kind} for ${feed.symbol}: ${error.message}`);
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
    const contract = contractOf(settings.instruments[feed.instrument]!);
    if (feed.kind === 'depth') depth.route(reqId, feed.route!);
    link.send(PRIORITY.subscriptions, `${feed.kind} ${feed.symbol}`, (ib: IBApi) => {
      // Voided while it waited in the pacer (new data epoch, silence): a request nobody would track.
      if (plan.feed(reqId) !== feed) return;
      // Silence is counted from when IB was asked, not from when the request joined the queue.
      feed.route!.lastAt = clock.now();
      if (feed.kind === 'depth') {
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

  const sweep = () => {
    // A new ib_connection incarnation brings a new link: start over with it (only reachable under one_for_one).
    if (bus.latest<IbLink>(LINK_TOPIC) !== link) throw new Error('the IB link was replaced: subscriptions restarts to use the new one');
    const now = clock.now();
    const status = bus.latest<IbStatus>(STATUS_TOPIC);
    if (link.ready && status && status.dataEpoch !== epoch) {
      if (epoch >= 0) log.info({ dataEpoch: status.dataEpoch, reason: status.reason }, 'market data void (reconnect or 1101): requesting every subscription again');
      epoch = status.dataEpoch;
      for (const f of plan.feeds) if (f.reqId !== undefined) depth.unroute(f.reqId);
      plan.voidAll();
    }
    if (link.ready) {
      for (const feed of plan.feeds) if (feed.route && feed.route.updates > 0) plan.live(feed);
      for (const feed of plan.silent(now, settings.silenceMs)) {
        const silentForMs = now - feed.route!.lastAt;
        const old = plan.rerequest(feed);
        if (old !== undefined) cancel(feed, old);
        log.warn({ symbol: feed.symbol, kind: feed.kind, silentForMs }, `${feed.kind} feed for ${feed.symbol} went silent: requesting it again`);
        bus.publish(FEED_SILENT_TOPIC, { symbol: feed.symbol, kind: feed.kind, silentForMs });
      }
      for (const feed of plan.due(now)) request(feed);
    }
    const report: SubscriptionsStatus = {
      counts: plan.counts(),
      feeds: plan.feeds.map((f) => ({ symbol: f.symbol, kind: f.kind, status: f.status, reqId: f.reqId, note: f.note, rerequests: f.rerequests })),
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
  const unsubscribeStatus = bus.subscribe<IbStatus>(STATUS_TOPIC, sweepSoon);
  sweepSoon();
  log.info({ feeds: plan.feeds.length }, 'subscription manager started');

  return {
    stop() {
      clock.clearTimeout(timer);
      unsubscribeStatus();
      for (const feed of plan.feeds) if (feed.reqId !== undefined && link.ready) cancel(feed, feed.reqId);
      stopListening();
      depth.flush();
      trades.flush();
    },
  };
});
