/**
 * paper_trader: turns predictions into orders through the risk gate, in one
 * of two modes: `book` fills against the live L2 book, `ib` sends to TWS /
 * Gateway (a paper account). It starts last and stops first, cancelling its
 * working orders on the way out.
 *
 * Before it trades it settles the past: in `ib` mode it asks the broker for
 * open orders, the executions since the last recorded fill and positions,
 * records what the journal missed, closes orders the broker no longer has,
 * and, on a mismatch it cannot settle, leaves the gate REDUCING or HALTED as
 * configured. It does the same after every reconnect, so fills made while the
 * link was down are never lost. In `book` mode the book venue does not
 * outlive a session: orders left working by an earlier one are closed.
 *
 * In `ib` mode, before it settles (at start and after every reconnect), it
 * asks TWS which accounts the session trades. One that is not a paper
 * account (ids start with D: src/ib/accounts.ts) is refused unless
 * `allowLiveAccount` is set. The refusal is a gate condition (`account`)
 * naming the account and the setting: it holds the gate HALTED, an
 * operator's resume is refused while it lasts, and it lifts once a later
 * session's accounts pass. The venue sends a refused account nothing, and
 * the journal is not reconciled against it.
 *
 * The daily loss limit counts from the trading day's opening P&L, journaled
 * (a `day` record) at the day's first reading, so a restart the same day
 * (New York date: src/trading/trading-day.ts) continues the day instead of
 * forgetting its losses. The day's P&L is reported to the gate when the
 * session starts trading, on every prediction frame (once the positions are
 * marked) and on every durable fill and commission, so a loss beyond the
 * limit halts at the fill that made it.
 *
 * Its states are its modes: settling (before the first order), trading,
 * reconciling (the IB link came back: no new decisions until the broker's
 * record is in the journal), stopping. The session itself (trader, venue,
 * ledger listeners) is plain TypeScript the machine drives; predictions
 * reach the trader by a bus subscription that lives while it trades.
 */
import { fromCallback, fromPromise, setup } from 'xstate';
import { z } from 'zod';
import { isPaperAccount } from '../ib/accounts.js';
import { horizonLabel } from '../models/horizon.js';
import { servedHorizons, type PredictionFrame } from '../models/predictor.js';
import type { ComponentContext } from '../supervision/component.js';
import { PermanentFailure } from '../supervision/permanent.js';
import { BookVenue } from '../trading/book-venue.js';
import type { ChainRow } from '../options/chain-view.js';
import { expiryMs } from '../options/expiry.js';
import { optionCommissionSchedule } from '../trading/option-commissions.js';
import { OptionVenue } from '../trading/option-venue.js';
import { OptionRouting } from '../trading/venue.js';
import { OptionDesk } from '../trading/option-desk.js';
import { optionPolicySettings } from '../trading/option-policy.js';
import { IbVenue } from '../trading/ib-venue.js';
import { policySettings, TradingPolicy } from '../trading/policy.js';
import { reconcileWhenQuiet } from '../trading/reconcile.js';
import { PaperTrader } from '../trading/trader.js';
import { sessionDate, TradingDay, type DayBaseline } from '../trading/trading-day.js';
import type { Venue } from '../trading/venue.js';
import { BOOK_TOPIC, IB_STATUS_TOPIC, OPTIONS_CHAIN_TOPIC, PORTFOLIO_TOPIC, PREDICTIONS_TOPIC, REGIME_TOPIC, TRADES_TOPIC } from '../topics.js';

export const paperTraderSettings = z
  .object({
    /** book: fills against the live L2 book; ib: orders go to TWS / Gateway (use a paper account). */
    mode: z.enum(['book', 'ib']).default('book'),
    policy: policySettings.prefault({}),
    /** The option strategy (src/trading/option-policy.ts): off unless enabled; needs an option_chain for its underlying. */
    options: optionPolicySettings.prefault({}),
    /**
     * ib mode: trade the account TWS is logged in to even when it is not a
     * paper account. Off, a live account is refused (checked at every start
     * and reconnect).
     */
    allowLiveAccount: z.boolean().default(false),
    /** A working order older than this is cancelled and placed again at the current price. */
    replaceAfterMs: z.number().int().positive().default(5_000),
    /** A prediction whose features are older than this when it arrives is not traded (the loop stalled in between). */
    maxPredictionAgeMs: z.number().int().positive().default(1_000),
    /** The book venue (book mode). */
    book: z
      .object({
        /** From the decision to the order reaching the market. */
        latencyMs: z.number().min(0).default(5),
        /** IB fixed pricing for US stocks. */
        feePerShare: z.number().min(0).default(0.005),
        minFeePerOrder: z.number().min(0).default(1),
        /** Options fill against the option chain's quotes (option-venue.ts) at IBKR's tiered option commissions and fees. */
        optionCommissions: optionCommissionSchedule.prefault({}),
      })
      .strict()
      .prefault({}),
    reconcile: z
      .object({
        /** Where a mismatch with the broker leaves the gate. */
        onMismatch: z.enum(['REDUCING', 'HALTED']).default('HALTED'),
        /** Executions are asked for from this long before the last recorded fill: clocks differ, duplicates are dropped by execId. */
        overlapMs: z.number().int().min(0).default(300_000),
        timeoutMs: z.number().int().positive().default(10_000),
        /** A mismatch while orders work or fills arrive is asked again this many times in all, this long apart: the two reports may straddle a fill. */
        attempts: z.number().int().min(1).default(3),
        retryMs: z.number().int().min(0).default(1_000),
        /**
         * ib mode: while options past their expiry's close are still held, reconcile this often (ms): IB
         * exercises, assigns and expires them without an event, so only its positions tell.
         */
        afterExpiryMs: z.number().int().positive().default(30_000),
      })
      .strict()
      .prefault({}),
    /** Longest the stop waits for its cancels and records to be durable. */
    stopTimeoutMs: z.number().int().positive().default(3_000),
  })
  .strict();

export type PaperTraderSettings = z.infer<typeof paperTraderSettings>;

/** The gate's condition source for the managed accounts' verdict. */
export const ACCOUNT_CONDITION = 'account';

/**
 * The first horizon the policy (or the option strategy) reads that is not
 * among `served` (ms): a mistake in the config, found when the config is
 * loaded (a predictor it depends on) or at the first frame (predictions
 * from elsewhere, as a cluster's trading node reads them).
 */
export function unservedHorizon(settings: PaperTraderSettings, served: readonly number[]): { readonly key: string; readonly horizonMs: number } | undefined {
  const reads = [{ key: 'policy.horizon', horizonMs: settings.policy.horizon }];
  if (settings.options.enabled) reads.push({ key: 'options.horizon', horizonMs: settings.options.horizon });
  return reads.find((r) => !served.includes(r.horizonMs));
}

/** The trader and its venue, wired to the ledger, the gate and the bus; what the machine starts, settles and stops. */
interface Session {
  readonly trader: PaperTrader;
  /** Settles the past with the venue: reconciliation with the broker (ib), or closing an earlier session's orders (book). */
  settle(): Promise<void>;
  /** Called on each prediction frame while trading. */
  decide(frame: PredictionFrame): void;
  /** Whether the journal still holds an option whose expiry's close has passed. */
  holdsExpiredOptions(): boolean;
  publishPortfolio(): void;
  /** Reports the day's P&L to the gate, beginning (and journaling) a new trading day on a new date. */
  reportDay(): void;
  stop(): Promise<void>;
}

function openSession(ctx: ComponentContext<PaperTraderSettings>): Session {
  const { bus, clock, log, settings } = ctx;
  const ledger = ctx.need('ledger');
  const gate = ctx.need('riskGate');
  const { symbols } = ctx.need('instruments');
  ctx.need('books');
  // Looked up at each use: books withdrawn while l2_microstructure restarts leave no market to trade on.
  const books = () => ctx.services.current('books');
  const link = settings.mode === 'ib' ? ctx.need('ibLink') : undefined;
  const trader = new PaperTrader({
    ledger,
    gate,
    policy: new TradingPolicy(settings.policy, symbols),
    clock,
    log,
    symbols,
    refPrefix: `${ctx.instance}.${clock.wallNow().toString(36)}`,
    orderIds: link?.orderIds,
    replaceAfterMs: settings.replaceAfterMs,
    maxPredictionAgeMs: settings.maxPredictionAgeMs,
    books,
    fail: ctx.fail,
  });
  const cleanups: (() => void)[] = [];
  // Always: options bought by hand must settle at their expiry too, strategy or not.
  const desk = new OptionDesk({ settings: settings.options, ledger, trader, clock, log, settlesExpiries: settings.mode === 'book' });
  cleanups.push(desk.stop);
  const publishPortfolio = () => bus.retain(PORTFOLIO_TOPIC, ledger.view(clock.wallNow()));
  const journaled = ledger.day;
  const day = new TradingDay(journaled && { day: journaled.day, openingPnl: journaled.openingPnl });
  const beginDay = (baseline: DayBaseline) => {
    log.info({ day: baseline.day, openingPnl: baseline.openingPnl }, `trading day ${baseline.day} begins (New York date): the daily loss counts from net P&L ${baseline.openingPnl.toFixed(2)}`);
    ledger.record({ type: 'day', at: clock.wallNow(), day: baseline.day, openingPnl: baseline.openingPnl }).catch((error: unknown) => {
      gate.halt(`the journal failed: ${(error as Error).message}`, 'journal');
      ctx.fail(error);
    });
  };
  const reportDay = () => gate.reportDailyPnl(day.pnl(clock.wallNow(), ledger.netPnl(), beginDay));
  if (journaled && journaled.day === sessionDate(clock.wallNow())) {
    log.info({ day: journaled.day, openingPnl: journaled.openingPnl, netPnl: ledger.netPnl() }, `trading day ${journaled.day} continues: the daily loss counts from the journaled net P&L ${journaled.openingPnl.toFixed(2)}`);
  }
  // Orders and fills are what a trader watches: one line each, once durable.
  cleanups.push(
    ledger.onEntry(({ record: r }) => {
      if (r.type === 'order') {
        log.info({ ref: r.ref, symbol: r.symbol, quantity: r.quantity, limitPrice: r.limitPrice, brokerOrderId: r.brokerOrderId }, `order ${r.ref}: ${r.quantity > 0 ? 'buy' : 'sell'} ${Math.abs(r.quantity)} ${r.symbol} at ${r.limitPrice} (${r.reason})`);
        return;
      }
      if (r.type === 'gate' || r.type === 'day') return;
      if (r.type === 'fill' || r.type === 'commission') reportDay();
      if (r.type === 'fill') {
        const position = ledger.positions.get(r.symbol)!;
        log.info({ ref: r.ref, execId: r.execId, symbol: r.symbol, quantity: r.quantity, price: r.price, position: position.quantity }, `fill ${r.ref}: ${r.quantity > 0 ? 'bought' : 'sold'} ${Math.abs(r.quantity)} ${r.symbol} at ${r.price}; position ${position.quantity}, realized ${position.realizedPnl.toFixed(2)}`);
      }
      publishPortfolio();
    }),
  );

  let venue: Venue;
  let settle: () => Promise<void>;
  if (link) {
    const ib = new IbVenue({
      link,
      clock,
      log,
      onEvent: (e) => trader.onEvent(e),
      knownExecution: (execId) => ledger.fills.has(execId),
      earlierOrders: new Map(ledger.workingOrders().flatMap((o) => (o.brokerOrderId === undefined ? [] : [[o.brokerOrderId, o.ref] as const]))),
      // The order is durable before it is sent: the ledger knows the option it is for.
      optionOf: (symbol) => ledger.options.get(symbol),
      snapshotTimeoutMs: settings.reconcile.timeoutMs,
    });
    venue = ib;
    /** Whether the session's accounts may be traded; the verdict, good or bad, goes to the gate. */
    const checkAccounts = async (): Promise<boolean> => {
      let verdict: Awaited<ReturnType<IbVenue['checkAccounts']>>;
      try {
        verdict = await ib.checkAccounts(settings.allowLiveAccount, `components.${ctx.id}.settings.allowLiveAccount`);
      } catch (error) {
        gate.report(ACCOUNT_CONDITION, new Map([['unknown', `${(error as Error).message}: no order until they are checked`]]));
        throw error;
      }
      const { accounts, refusal } = verdict;
      gate.report(ACCOUNT_CONDITION, new Map(refusal === undefined ? [] : [['refused', refusal]]));
      if (refusal !== undefined) {
        log.error({ accounts }, `refusing to trade: ${refusal}`);
        return false;
      }
      const live = accounts.filter((id) => !isPaperAccount(id));
      if (live.length > 0) log.warn({ accounts }, `trading live account ${live.join(', ')}: allowLiveAccount is set`);
      else log.info({ accounts }, `TWS trades paper account ${accounts.join(', ')}`);
      return true;
    };
    settle = async () => {
      // An account keel does not trade is not reconciled either: its orders and positions are not the journal's.
      if (!(await checkAccounts())) return;
      const result = await reconcileWhenQuiet({
        ledger,
        clock,
        snapshot: (since) => ib.snapshot(since),
        settled: async () => void (await trader.settled()),
        overlapMs: settings.reconcile.overlapMs,
        attempts: settings.reconcile.attempts,
        retryMs: settings.reconcile.retryMs,
        doNotExercise: () => ledger.doNotExercise,
      });
      for (const record of result.records) await ledger.record(record);
      for (const record of result.settlements) {
        await ledger.record(record);
        log.info({ symbol: record.symbol, outcome: record.outcome, contracts: record.contracts, shares: record.shares }, `${record.symbol}: ${record.reason}`);
      }
      const summary = { executions: result.executions, closed: result.records.length, settled: result.settlements.length, openAtBroker: result.openAtBroker, attempts: result.attempts, mismatches: result.mismatches };
      if (result.mismatches.length === 0) {
        log.info(summary, `reconciled with the broker: ${ledger.fills.size} fills, ${result.records.length} orders closed, no mismatch`);
        return;
      }
      const reason = `reconciliation: ${result.mismatches.join('; ')}`;
      log.error(summary, `the journal and the broker disagree: ${result.mismatches.join('; ')}`);
      if (settings.reconcile.onMismatch === 'HALTED') gate.halt(reason, 'paper_trader');
      else gate.reduceOnly(reason, 'paper_trader');
    };
  } else {
    const bookVenue = new BookVenue({
      clock,
      instrumentOf: (symbol) => {
        const i = symbols.indexOf(symbol);
        return i < 0 ? undefined : i;
      },
      books,
      latencyMs: settings.book.latencyMs,
      feePerShare: settings.book.feePerShare,
      minFeePerOrder: settings.book.minFeePerOrder,
      onEvent: (e) => trader.onEvent(e),
    });
    // Options fill against the option chain's quotes, as the chain publishes them.
    let quotes = new Map<string, ChainRow>();
    const optionVenue = new OptionVenue({
      clock,
      quoteOf: (symbol) => quotes.get(symbol),
      multiplierOf: (symbol) => ledger.multiplierOf(symbol),
      latencyMs: settings.book.latencyMs,
      commissions: settings.book.optionCommissions,
      onEvent: (e) => trader.onEvent(e),
    });
    venue = new OptionRouting(bookVenue, optionVenue, (symbol) => ledger.options.has(symbol));
    cleanups.push(bus.subscribe(BOOK_TOPIC, (changed) => bookVenue.onBooks(changed)));
    cleanups.push(bus.subscribe(TRADES_TOPIC, (batch) => bookVenue.onTrades(batch)));
    cleanups.push(
      bus.subscribe(OPTIONS_CHAIN_TOPIC, (chain) => {
        if (quotes.size !== chain.rows.length || chain.rows.some((r) => quotes.get(r.localSymbol) !== r)) quotes = new Map(chain.rows.map((r) => [r.localSymbol, r]));
        optionVenue.onQuotes();
        desk.onChain(chain);
      }),
    );
    settle = async () => {
      const left = ledger.workingOrders();
      for (const o of left) {
        await ledger.record({ type: 'order.status', at: clock.wallNow(), ref: o.ref, state: 'cancelled', reason: 'book mode: the book venue does not outlive the session that placed the order' });
      }
      if (left.length > 0) log.warn({ orders: left.length }, `closed ${left.length} orders an earlier session left working`);
    };
  }
  trader.venue = venue;
  cleanups.push(() => venue.close());
  cleanups.push(gate.onHalt(() => trader.cancelAll(`trading halted: ${gate.reason}`)));

  return {
    trader,
    settle,
    publishPortfolio,
    reportDay,
    holdsExpiredOptions() {
      const now = clock.wallNow();
      for (const [symbol, option] of ledger.options) if ((ledger.positions.get(symbol)?.quantity ?? 0) !== 0 && expiryMs(option.expiry) <= now) return true;
      return false;
    },
    decide(frame) {
      // A frame with no horizon at all (the cluster's, before any worker has predicted) says nothing yet.
      const unserved = frame.horizons.length > 0 && unservedHorizon(settings, frame.horizons.map((h) => h.horizonMs));
      if (unserved) {
        const { key, horizonMs } = unserved;
        const line = `${ctx.id}: ${key} is ${horizonLabel(horizonMs)}, but the predictions carry ${servedHorizons(frame)}: serve it in components.predictor.settings.horizons, or set components.${ctx.id}.settings.${key} to one of those`;
        return ctx.fail(new PermanentFailure(line));
      }
      trader.onFrame(frame, bus.latest(REGIME_TOPIC));
      desk.onFrame(frame, bus.latest(REGIME_TOPIC), bus.latest(OPTIONS_CHAIN_TOPIC));
      reportDay();
      publishPortfolio();
    },
    async stop() {
      const cancelled = trader.cancelAll('the paper trader is stopping');
      if (cancelled > 0) log.info({ orders: cancelled }, `cancelling ${cancelled} working orders on the way out`);
      // The broker's confirmations are recorded too, if they come in time.
      let timer: unknown;
      let stopWaiting = () => {};
      const confirmed = new Promise<void>((resolve) => {
        const check = () => ledger.workingOrders().length === 0 && resolve();
        stopWaiting = ledger.onEntry(check);
        check();
        timer = clock.setTimeout(resolve, settings.stopTimeoutMs);
      });
      await confirmed;
      stopWaiting();
      clock.clearTimeout(timer);
      await trader.settled();
      const left = ledger.workingOrders().length;
      if (left > 0) log.warn({ orders: left }, `${left} orders still working at the broker after ${settings.stopTimeoutMs} ms: the next start reconciles them`);
      for (const cleanup of cleanups.reverse()) cleanup();
    },
  };
}

interface Context {
  readonly ctx: ComponentContext<PaperTraderSettings>;
  readonly session: Session;
}

type Event = { type: 'ib.back' } | { type: 'expiry.passed' } | { type: 'shutdown' };

/**
 * While trading: every prediction frame to the trader, and (ib mode) what
 * calls for reconciliation: the link coming back, and options held past
 * their expiry's close.
 */
const follow = fromCallback<Event, Context>(({ input, sendBack }) =>
  input.ctx.scope(() => {
    const { bus } = input.ctx;
    const unsubscribe = [bus.subscribe(PREDICTIONS_TOPIC, (frame) => input.session.decide(frame))];
    if (input.ctx.settings.mode === 'ib') {
      let wasConnected = (bus.latest(IB_STATUS_TOPIC)?.state ?? 'connected') === 'connected';
      unsubscribe.push(
        bus.subscribe(IB_STATUS_TOPIC, (status) => {
          const connected = status.state === 'connected';
          if (connected && !wasConnected) sendBack({ type: 'ib.back' });
          wasConnected = connected;
        }),
      );
      const { clock, settings } = input.ctx;
      let askedAt = clock.now();
      unsubscribe.push(
        bus.subscribe(OPTIONS_CHAIN_TOPIC, () => {
          if (clock.now() - askedAt < settings.reconcile.afterExpiryMs || !input.session.holdsExpiredOptions()) return;
          askedAt = clock.now();
          sendBack({ type: 'expiry.passed' });
        }),
      );
    }
    return () => unsubscribe.forEach((u) => u());
  }),
);

export const paperTraderLogic = setup({
  types: {} as { context: Context; input: ComponentContext<PaperTraderSettings>; events: Event },
  actors: {
    follow,
    settle: fromPromise<void, Context>(({ input }) => input.ctx.scope(() => input.session.settle())),
    stop: fromPromise<void, Context>(({ input }) => input.ctx.scope(() => input.session.stop())),
  },
}).createMachine({
  id: 'paper_trader',
  context: ({ input }) => ({ ctx: input, session: openSession(input) }),
  initial: 'settling',
  on: { shutdown: '.stopping' },
  states: {
    settling: {
      // No onError: a start that cannot settle fails the component.
      invoke: {
        src: 'settle',
        input: ({ context }) => context,
        onDone: {
          target: 'trading',
          actions: ({ context: { ctx, session } }) => {
            // A restart into a day already beyond the limit halts before the first order.
            session.reportDay();
            session.publishPortfolio();
            ctx.provide('trader', session.trader);
            const { mode } = ctx.settings;
            ctx.log.info({ mode, working: ctx.need('ledger').workingOrders().length }, `paper trader running (${mode} mode)`);
          },
        },
      },
    },
    trading: {
      tags: ['ready'],
      invoke: { src: 'follow', input: ({ context }) => context },
      on: {
        'ib.back': { target: 'reconciling', actions: ({ context }) => context.ctx.log.info('the IB link is back: reconciling with the broker') },
        'expiry.passed': { target: 'reconciling', actions: ({ context }) => context.ctx.log.info('options held past their expiry: reconciling with the broker, which settles them without an event') },
      },
    },
    reconciling: {
      tags: ['ready'],
      invoke: {
        src: 'settle',
        input: ({ context }) => context,
        onDone: 'trading',
        onError: {
          target: 'trading',
          actions: ({ context, event }) => context.ctx.log.error({ err: event.error }, `reconciliation failed: ${(event.error as Error).message}`),
        },
      },
    },
    stopping: {
      invoke: { src: 'stop', input: ({ context }) => context, onDone: 'stopped' },
    },
    stopped: { type: 'final' },
  },
});
