/**
 * option_chain: an underlying's option chain as data. The chain itself
 * (the band around the money, moved with hysteresis and a cooldown; keel's
 * IV, fitted smiles and greeks beside IB's; every listed contract of the
 * `surface` expiries priced off the fits; the chain's features) is OptionChain
 * (src/options/chain.ts); this component feeds it from one of two sources
 * and publishes its view on `options.chain`.
 *
 * `ib`: it discovers the day's chain (the underlying's conId by contract
 * details, the expiries by reqSecDefOptParams, then one contract-details
 * request per expiry of the band and the surface: IB answers a whole expiry
 * at once), keeps
 * it for the session day (until its nearest expiry's close: then the next
 * expiry is the 0DTE and the chain is discovered again), streams the band on lines subscriptions gives it
 * within the budget it owns (the `optionLines` service: one owner of every
 * market-data request and of the pacer), turns IB's ticks (bid, ask,
 * their sizes, prints, volume, open interest, and the model computation of
 * message 21, tick 13)
 * into the chain's inputs, and prices every `publishMs` at the
 * underlying's quote. The listing and every input it applied, the
 * pricings included, go out on `options.listing` and `options.input`: the
 * recorder writes them, so a replay prices the same chain at the same
 * instants from the same data.
 *
 * `recording`: `keel replay` plays those topics back; the chain prices at
 * each recorded pricing, on the replay's clock. Its band is its own: rows
 * the recording has no data for stay unquoted.
 */
import { EventName, SecType, TickType, type ContractDetails, type IBApi } from '../ib/api.js';
import { z } from 'zod';
import { listenTo } from '../ib/link.js';
import type { OptionLineContract } from '../ib/option-lines.js';
import { PRIORITY } from '../ib/pacer.js';
import { parseExpiryRange, parseStrikeBand, type ListedStrikes } from '../options/chain-band.js';
import { contractKey, OptionChain } from '../options/chain.js';
import { BatchPublisher } from '../ib/batch-publisher.js';
import { CHAIN_INPUT, ChainInputBatch, type ChainListing } from '../options/chain-input.js';
import { expiryMs } from '../options/expiry.js';
import type { ComponentContext } from '../supervision/component.js';
import { PermanentFailure } from '../supervision/permanent.js';
import { serviceLogic } from '../supervision/service.js';
import { OPTIONS_CHAIN_TOPIC, OPTIONS_INPUT_TOPIC, OPTIONS_LISTING_TOPIC } from '../topics.js';
import { sessionDate } from '../trading/trading-day.js';

/** Expiries by position in the listed ones, nearest first: `0..1`. */
const expiryRange = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((text, ctx) => {
      try {
        return parseExpiryRange(text);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message, input: text });
        return z.NEVER;
      }
    });

export const optionChainSettings = z
  .object({
    /**
     * Where the chain's data comes from: `ib` (discovery, lines and ticks
     * over the IB link), or `recording`: what `keel replay` plays back
     * (`options.listing`, `options.input`), set by the replay itself.
     */
    source: z.enum(['ib', 'recording']).default('ib'),
    /** The underlying: one of subscriptions' instruments (its quotes price the chain). */
    underlying: z.string().min(1).default('SPY'),
    exchange: z.string().default('SMART'),
    currency: z.string().default('USD'),
    /** The band's expiries, by position in the listed ones, nearest first: `0..1` is today's (0DTE) and the next. */
    expiries: expiryRange('0..1'),
    /** Expiries discovered and priced off the surface fitted to the band's quotes, streamed or not: `0..7`, the eight nearest. */
    surface: expiryRange('0..7'),
    /** Strikes each side of the money: `atm ± 10`. */
    strikes: z
      .union([z.number().int().min(0), z.string()])
      .default('atm ± 10')
      .transform((text, ctx) => {
        try {
          return parseStrikeBand(text);
        } catch (err) {
          ctx.addIssue({ code: 'custom', message: (err as Error).message, input: text });
          return z.NEVER;
        }
      }),
    rights: z.array(z.enum(['C', 'P'])).min(1).default(['C', 'P']),
    /** Strike gaps the underlying may move from the band's centre before the band follows (NautilusTrader: 0.6). */
    hysteresis: z.number().min(0.5).default(0.6),
    /** Least time between two moves of the band. */
    cooldownMs: z.number().int().min(0).default(5_000),
    /** At most this many option lines, below what the budget leaves (default: all it leaves). */
    maxLines: z.number().int().min(0).optional(),
    /** Generic ticks asked with each option line (100 volume, 101 open interest, 106 IV). */
    genericTicks: z.string().default(''),
    /** Carry: the risk-free rate and the underlying's continuous dividend yield. */
    rate: z.number().default(0.045),
    dividendYield: z.number().default(0.012),
    /** How often the band is checked against the underlying, re-priced and published. */
    publishMs: z.number().int().positive().default(250),
    /** A discovery request unanswered this long fails, and discovery is tried again after retryMs. */
    requestTimeoutMs: z.number().int().positive().default(15_000),
    retryMs: z.number().int().positive().default(5_000),
  })
  .strict();

export type OptionChainSettings = z.output<typeof optionChainSettings>;

/** The reference requests' ids: below the option lines' (1,500,000,000 up), above the stock feeds'. */
const FIRST_REFERENCE_ID = 1_400_000_000;

/** The day's chain per underlying: kept across restarts of the component, asked for again when it stops being current. */
const listings = new Map<string, ChainListing>();

/**
 * A listing serves its session day until its nearest expiry's close: then
 * the next expiry is the 0DTE, and a new listing moves the band to it.
 */
function isCurrent(listing: ChainListing, wallNow: number): boolean {
  return listing.day === sessionDate(wallNow) && expiryMs(listing.expiries[0]!) > wallNow;
}

type Context = ComponentContext<OptionChainSettings>;

export const optionChainLogic = serviceLogic<OptionChainSettings>(async (ctx: Context) => {
  const chain = new OptionChain(ctx.settings);
  const source = ctx.settings.source === 'ib' ? fromIb(ctx, chain) : fromRecording(ctx, chain);
  ctx.log.info({ underlying: ctx.settings.underlying, source: ctx.settings.source, expiries: ctx.settings.expiries, strikesEachSide: ctx.settings.strikes }, 'option chain started');
  return source;
});

/** The chain from IB: discovery, lines, ticks; priced every publishMs. */
function fromIb(ctx: Context, chain: OptionChain): { stop(): void } {
  const { settings, clock, log, bus } = ctx;
  const link = ctx.need('ibLink');
  const lines = ctx.need('optionLines');
  const underlyingIndex = lines.quotes.symbols.indexOf(settings.underlying);
  if (underlyingIndex < 0) {
    throw new PermanentFailure(`option_chain: ${settings.underlying} is not among subscriptions' instruments: add it to components.subscriptions.settings.instruments (its quotes price the chain)`);
  }
  const { view } = chain;
  let stopped = false;
  // Each incarnation its own ids: a late answer to a restarted one's request is nobody's.
  let nextReference = FIRST_REFERENCE_ID + (ctx.incarnation % 1_000) * 10_000;

  // ---- inputs: applied to the chain and published, in the order applied ----

  // Published once per socket read, as the stock feeds are (BatchPublisher), never per tick.
  const inputs = new BatchPublisher(bus, OPTIONS_INPUT_TOPIC, () => {
    const batch = new ChainInputBatch(256);
    batch.underlying = settings.underlying;
    return batch;
  });
  const apply = (conId: number, field: number, value: number, now = clock.now(), wallNow = clock.wallNow()) => {
    chain.input(conId, field, value, wallNow, now);
    const batch = inputs.open();
    batch.set(batch.count, conId, field, value, now);
    inputs.written();
  };

  // ---- discovery ----

  type Pending = { readonly onDetails?: (d: ContractDetails) => void; readonly onRow?: (exchange: string, tradingClass: string, expiries: string[], strikes: number[]) => void; resolve: () => void; reject: (e: Error) => void };
  const pending = new Map<number, Pending>();
  const askReference = (label: string, send: (ib: IBApi, reqId: number) => void, handlers: Omit<Pending, 'resolve' | 'reject'>): Promise<void> =>
    new Promise((resolve, reject) => {
      const reqId = nextReference++;
      const timer = clock.setTimeout(() => finish(new Error(`${label}: no answer in ${settings.requestTimeoutMs} ms`)), settings.requestTimeoutMs);
      const finish = (err?: Error) => {
        clock.clearTimeout(timer);
        pending.delete(reqId);
        if (err) reject(err);
        else resolve();
      };
      pending.set(reqId, { ...handlers, resolve: () => finish(), reject: finish });
      if (!link.send(PRIORITY.reference, label, (ib) => send(ib, reqId))) finish(new Error(`${label}: the IB link is not ready`));
    });

  const onContractDetails = (reqId: number, details: ContractDetails) => pending.get(reqId)?.onDetails?.(details);
  const onEnd = (reqId: number) => pending.get(reqId)?.resolve();
  const onOptionParameter = (reqId: number, exchange: string, _conId: number, tradingClass: string, _multiplier: string, expiries: string[], strikes: number[]) =>
    pending.get(reqId)?.onRow?.(exchange, tradingClass, expiries, strikes);

  const discover = async (wallNow: number): Promise<ChainListing> => {
    const cached = listings.get(settings.underlying);
    if (cached && isCurrent(cached, wallNow)) return { ...cached, allowance: lines.allowance };
    const day = sessionDate(wallNow);
    const { underlying, exchange, currency } = settings;
    let conId = 0;
    await askReference(`contract details ${underlying}`, (ib, id) => ib.reqContractDetails(id, { symbol: underlying, secType: SecType.STK, exchange, currency }), {
      onDetails: (d) => (conId ||= d.contract.conId ?? 0),
    });
    if (!conId) throw new Error(`no contract details for ${underlying}`);
    let expiries: string[] = [];
    await askReference(`option parameters ${underlying}`, (ib, id) => ib.reqSecDefOptParams(id, underlying, '', SecType.STK, conId), {
      onRow: (ex, tradingClass, exp) => {
        // SMART's row, of the underlying's own trading class (SPY, not a mini or a weekly class).
        if ((ex === 'SMART' || expiries.length === 0) && tradingClass === underlying) expiries = [...exp];
      },
    });
    const now = clock.wallNow();
    const live = [...new Set(expiries)].filter((e) => /^\d{8}$/.test(e) && expiryMs(e) > now).sort();
    if (live.length === 0) throw new Error(`no live expiries for ${underlying}`);
    const { expiries: band, surface } = settings;
    const chosen = live.slice(band.from, band.to + 1);
    const priced = live.slice(Math.min(band.from, surface.from), Math.max(band.to, surface.to) + 1);
    const contracts = new Map<string, OptionLineContract>();
    const strikes: ListedStrikes[] = [];
    for (const expiry of priced) {
      const found: OptionLineContract[] = [];
      await askReference(`option contracts ${underlying} ${expiry}`, (ib, id) => ib.reqContractDetails(id, { symbol: underlying, secType: SecType.OPT, lastTradeDateOrContractMonth: expiry, exchange, currency }), {
        onDetails: (d) => {
          const c = d.contract;
          const right = String(c.right ?? '').startsWith('C') ? 'C' : String(c.right ?? '').startsWith('P') ? 'P' : undefined;
          if (!c.conId || c.strike === undefined || !right || (c.tradingClass !== undefined && c.tradingClass !== underlying)) return;
          // The client decodes an empty multiplier as 0: then the details do not say, and the contract carries none.
          const said = c.multiplier !== undefined && c.multiplier > 0 ? { multiplier: c.multiplier } : {};
          found.push({ conId: c.conId, localSymbol: c.localSymbol ?? '', expiry, strike: c.strike, right, ...said });
        },
      });
      for (const c of found) contracts.set(contractKey(expiry, c.strike, c.right), c);
      if (chosen.includes(expiry)) strikes.push({ expiry, strikes: [...new Set(found.map((c) => c.strike))].sort((a, b) => a - b) });
    }
    const result: ChainListing = { underlying, day, expiries: live, strikes, contracts: [...contracts.values()], allowance: lines.allowance };
    listings.set(underlying, result);
    log.info({ day, expiries: live.length, band: chosen, priced: priced.length, contracts: contracts.size }, `${underlying} option chain discovered: ${live.length} expiries, ${contracts.size} contracts in the ${priced.length} nearest (the band streams ${chosen.length})`);
    return result;
  };

  let discovering = false;
  let retryTimer: unknown;
  const startDiscovery = () => {
    if (discovering || stopped) return;
    discovering = true;
    chain.forget();
    discover(clock.wallNow()).then(
      (found) =>
        ctx.scope(() => {
          discovering = false;
          if (stopped) return;
          chain.list(found);
          // Inputs applied before the listing are recorded before it.
          inputs.flush();
          bus.retain(OPTIONS_LISTING_TOPIC, found);
          // The band is chosen at a pricing: price now rather than at the next tick.
          clock.clearTimeout(timer);
          tick();
        }),
      (err: unknown) =>
        ctx.scope(() => {
          discovering = false;
          if (stopped) return;
          log.warn({ err: (err as Error).message, retryMs: settings.retryMs }, `${settings.underlying} option chain discovery failed: trying again`);
          retryTimer = clock.setTimeout(() => ctx.scope(startDiscovery), settings.retryMs);
        }),
    );
  };

  // ---- ticks ----

  /** The conId of an option line's request id when its contract is in the band, else 0. */
  const streamed = (reqId: number): number => {
    const c = lines.contractOf(reqId);
    return c !== undefined && chain.streams(c.conId) ? c.conId : 0;
  };
  /** Per contract, the request id of the line that last reported a print: a line's first is IB's report of the last trade before it. */
  const printedOn = new Map<number, number>();
  const onTickPrice = (reqId: number, field: number, value: number) => {
    const conId = streamed(reqId);
    if (!conId) return;
    if (field === TickType.BID || field === TickType.DELAYED_BID) apply(conId, CHAIN_INPUT.BID, value);
    else if (field === TickType.ASK || field === TickType.DELAYED_ASK) apply(conId, CHAIN_INPUT.ASK, value);
    else if (field === TickType.LAST || field === TickType.DELAYED_LAST) {
      const before = printedOn.get(conId) !== reqId;
      printedOn.set(conId, reqId);
      apply(conId, before ? CHAIN_INPUT.LAST_BEFORE_LINE : CHAIN_INPUT.LAST, value);
    }
  };
  const onTickSize = (reqId: number, field: number | undefined, value: number | undefined) => {
    const conId = streamed(reqId);
    if (!conId || value === undefined) return;
    if (field === TickType.BID_SIZE || field === TickType.DELAYED_BID_SIZE) apply(conId, CHAIN_INPUT.BID_SIZE, value);
    else if (field === TickType.ASK_SIZE || field === TickType.DELAYED_ASK_SIZE) apply(conId, CHAIN_INPUT.ASK_SIZE, value);
    else if (field === TickType.LAST_SIZE || field === TickType.DELAYED_LAST_SIZE) apply(conId, CHAIN_INPUT.LAST_SIZE, value);
    else if (field === TickType.VOLUME || field === TickType.DELAYED_VOLUME) apply(conId, CHAIN_INPUT.VOLUME, value);
    else if (field === TickType.OPTION_CALL_OPEN_INTEREST || field === TickType.OPTION_PUT_OPEN_INTEREST) apply(conId, CHAIN_INPUT.OPEN_INTEREST, value);
    else return;
  };
  const onComputation = (reqId: number, tickType: number, _attrib: number | undefined, iv?: number, delta?: number, price?: number, _pv?: number, gamma?: number, vega?: number, theta?: number, und?: number) => {
    if (tickType !== TickType.MODEL_OPTION && tickType !== TickType.DELAYED_MODEL_OPTION) return;
    const conId = streamed(reqId);
    if (!conId) return;
    // IB's "not computed" (-1, -2) decodes as undefined.
    apply(conId, CHAIN_INPUT.IB_IV, iv ?? NaN);
    apply(conId, CHAIN_INPUT.IB_DELTA, delta ?? NaN);
    apply(conId, CHAIN_INPUT.IB_PRICE, price ?? NaN);
    apply(conId, CHAIN_INPUT.IB_GAMMA, gamma ?? NaN);
    apply(conId, CHAIN_INPUT.IB_VEGA, vega ?? NaN);
    apply(conId, CHAIN_INPUT.IB_THETA, theta ?? NaN);
    apply(conId, CHAIN_INPUT.IB_UNDERLYING, und ?? NaN);
  };
  const onError = (err: Error, code: number, reqId: number) => {
    const p = pending.get(reqId);
    if (p && code !== 10167 && code !== 2104 && code !== 2106) p.reject(new Error(`IB ${code}: ${err.message}`));
  };
  const stopListening = listenTo(link.api, [
    [EventName.contractDetails, onContractDetails],
    [EventName.contractDetailsEnd, onEnd],
    [EventName.securityDefinitionOptionParameter, onOptionParameter],
    [EventName.securityDefinitionOptionParameterEnd, onEnd],
    [EventName.tickPrice, onTickPrice],
    [EventName.tickSize, onTickSize],
    [EventName.tickOptionComputation, onComputation],
    [EventName.error, onError],
  ]);

  // ---- pricing ----

  const tick = () => {
    if (stopped) return;
    // A new subscriptions incarnation brings new lines (only reachable under one_for_one): start over with them.
    if (ctx.services.current('optionLines') !== lines) throw new Error('the option lines were replaced: option_chain restarts to use the new ones');
    // A new session day, or the nearest expiry's close passed: a new listing.
    if (chain.listed && !isCurrent(chain.listed, clock.wallNow())) startDiscovery();
    // The underlying's quote at this pricing goes with it, and the pricing's instant: a replay prices at the same price, at the same time.
    const now = clock.now();
    const wallNow = clock.wallNow();
    apply(0, CHAIN_INPUT.UNDERLYING_BID, lines.quotes.bid[underlyingIndex]!, now, wallNow);
    apply(0, CHAIN_INPUT.UNDERLYING_ASK, lines.quotes.ask[underlyingIndex]!, now, wallNow);
    apply(0, CHAIN_INPUT.PRICED, wallNow, now, wallNow);
    const band = chain.price(now, wallNow);
    if (band) {
      lines.want(band, settings.genericTicks);
      log.info({ centres: view.centres, contracts: band.length, allowance: chain.allowance }, view.recentres === 0 ? 'option band centred' : 'option band re-centred');
    }
    view.lines = lines.counts();
    for (const row of view.rows) row.line = lines.statusOf(row.conId) ?? 'waiting';
    bus.retain(OPTIONS_CHAIN_TOPIC, view);
    timer = clock.setTimeout(() => ctx.scope(tick), settings.publishMs);
  };
  let timer: unknown = clock.setTimeout(() => ctx.scope(tick), 0);
  startDiscovery();

  return {
    stop() {
      stopped = true;
      clock.clearTimeout(timer);
      clock.clearTimeout(retryTimer);
      for (const p of pending.values()) p.reject(new Error('option_chain stopped'));
      stopListening();
      // Subscriptions cancels what it holds when it stops; while it runs, the band's lines go back.
      lines.want([]);
    },
  };
}

/**
 * The chain from a replayed recording: the recorded listing, every
 * recorded input applied in order, and a pricing at each recorded one. A
 * line counts as live once the recording has data for its contract.
 */
function fromRecording(ctx: Context, chain: OptionChain): { stop(): void } {
  const { settings, clock, log, bus } = ctx;
  const { view } = chain;
  const recorded = new Set<number>();
  const onListing = (listing: ChainListing) => {
    if (listing.underlying === settings.underlying) chain.list(listing);
  };
  const onInputs = (batch: ChainInputBatch) => {
    if (batch.underlying !== settings.underlying) return;
    const wallOffset = clock.wallNow() - clock.now();
    for (let i = 0; i < batch.count; i++) {
      const conId = batch.conId[i]!;
      const at = batch.at[i]!;
      if (batch.field[i] === CHAIN_INPUT.PRICED) price(at, batch.value[i]!);
      else if (chain.input(conId, batch.field[i]!, batch.value[i]!, at + wallOffset, at) && conId !== 0) recorded.add(conId);
    }
  };
  const price = (now: number, wallNow: number) => {
    const band = chain.price(now, wallNow);
    if (band) log.debug({ centres: view.centres, contracts: band.length }, view.recentres === 0 ? 'option band centred' : 'option band re-centred');
    let live = 0;
    for (const row of view.rows) {
      row.line = recorded.has(row.conId) ? 'live' : 'waiting';
      if (row.line === 'live') live++;
    }
    view.lines = { allowance: chain.allowance, wanted: view.rows.length, waiting: view.rows.length - live, requested: 0, live, refused: 0 };
    bus.retain(OPTIONS_CHAIN_TOPIC, view);
  };
  const unsubscribe = [bus.subscribe(OPTIONS_LISTING_TOPIC, onListing), bus.subscribe(OPTIONS_INPUT_TOPIC, onInputs)];
  return {
    stop() {
      for (const u of unsubscribe) u();
    },
  };
}
