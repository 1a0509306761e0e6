/**
 * option_chain: an underlying's option chain as data. It discovers the
 * day's chain (the underlying's conId by contract details, the expiries by
 * reqSecDefOptParams, then one contract-details request per expiry of the
 * band: IB answers a whole expiry at once), keeps it for the session day,
 * streams a band of contracts around the money (src/options/chain-band.ts)
 * on lines subscriptions gives it within the budget it owns (the
 * `optionLines` service: one owner of every market-data request and of the
 * pacer), moves the band with the underlying (hysteresis and a cooldown),
 * and prices every streamed contract itself (ChainPricing, one batch per
 * pricing, in IB's units): the IV of each mid, an SSVI slice per expiry
 * fitted to the out-of-the-money mids (src/options/smile-fit.ts: a penny
 * quote's own IV is too coarse), and BSM greeks at the slice's volatility,
 * with
 * IB's own model greeks (message 21, tick 13) kept beside keel's and the
 * difference. The chain goes out on `options.chain` every `publishMs`.
 *
 * Every other listed contract of the band's expiries is priced at its
 * expiry's slice too (`listed`, typed arrays). Not yet: expiries beyond the
 * band have no slice (nor prices). The chain's features (ATM IV, 25-delta
 * risk reversal and butterfly, term slope, put/call ratios, net greeks:
 * src/options/chain-features.ts) go out with it, computed from the band.
 */
import { EventName, SecType, TickType, type ContractDetails, type IBApi } from '../ib/api.js';
import { z } from 'zod';
import { listenTo } from '../ib/link.js';
import type { OptionLineContract } from '../ib/option-lines.js';
import { PRIORITY } from '../ib/pacer.js';
import { ChainBand, parseExpiryRange, parseStrikeBand, type ListedStrikes } from '../options/chain-band.js';
import { computeChainFeatures, newChainFeatures } from '../options/chain-features.js';
import { ChainPricing } from '../options/chain-pricing.js';
import { nanGreeks, type ChainRow, type ListedPricing, type OptionChainView } from '../options/chain-view.js';
import { expiryMs, MS_PER_YEAR } from '../options/expiry.js';
import { ivReason } from '../options/implied-vol.js';
import { newSlice, SmileFit, sliceVariance, type SmileSlice } from '../options/smile-fit.js';
import type { ComponentContext } from '../supervision/component.js';
import { PermanentFailure } from '../supervision/permanent.js';
import { serviceLogic } from '../supervision/service.js';
import { OPTIONS_CHAIN_TOPIC } from '../topics.js';
import { sessionDate } from '../trading/trading-day.js';

export const optionChainSettings = z
  .object({
    /** The underlying: one of subscriptions' instruments (its quotes price the chain). */
    underlying: z.string().min(1).default('SPY'),
    exchange: z.string().default('SMART'),
    currency: z.string().default('USD'),
    /** Positions in the listed expiries, nearest first: `0..1` is today's (0DTE) and the next. */
    expiries: z
      .string()
      .default('0..1')
      .transform((text, ctx) => {
        try {
          return parseExpiryRange(text);
        } catch (err) {
          ctx.addIssue({ code: 'custom', message: (err as Error).message, input: text });
          return z.NEVER;
        }
      }),
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

interface Listing {
  readonly day: string;
  readonly expiries: readonly string[];
  /** Per band expiry: its strikes and contracts. */
  readonly strikes: ListedStrikes[];
  readonly contracts: Map<string, OptionLineContract>;
}

/** The day's chain per underlying: kept across restarts of the component, asked for again on a new session day. */
const listings = new Map<string, Listing>();

const keyOf = (expiry: string, strike: number, right: string) => `${expiry}:${strike}:${right}`;

export const optionChainLogic = serviceLogic<OptionChainSettings>(async (ctx: ComponentContext<OptionChainSettings>) => {
  const { settings, clock, log, bus } = ctx;
  const link = ctx.need('ibLink');
  const lines = ctx.need('optionLines');
  const underlyingIndex = lines.quotes.symbols.indexOf(settings.underlying);
  if (underlyingIndex < 0) {
    throw new PermanentFailure(`option_chain: ${settings.underlying} is not among subscriptions' instruments: add it to components.subscriptions.settings.instruments (its quotes price the chain)`);
  }
  const allowance = Math.min(lines.allowance, settings.maxLines ?? Infinity);
  const band = new ChainBand({
    expiries: settings.expiries,
    strikesEachSide: settings.strikes,
    rights: settings.rights,
    hysteresis: settings.hysteresis,
    cooldownMs: settings.cooldownMs,
  });
  const capacity = Math.max(1, allowance);
  const pricing = new ChainPricing(capacity);
  const bid = new Float64Array(capacity).fill(NaN);
  const ask = new Float64Array(capacity).fill(NaN);
  const expiryAt = new Float64Array(capacity);
  const midIv = new Float64Array(capacity);
  /** Per row, its expiry's slot in `slices`. */
  const slot = new Int32Array(capacity);
  const fit = new SmileFit(capacity);
  let slices: SmileSlice[] = [];
  let sliceExpiries: string[] = [];
  const rowOf = new Map<number, number>();
  const view: OptionChainView = {
    underlying: settings.underlying,
    phase: 'discovering',
    spot: NaN,
    pricedAt: NaN,
    quotedAt: NaN,
    listing: { day: '', expiries: 0, contracts: 0 },
    centres: {},
    smiles: {},
    recentres: 0,
    lines: lines.counts(),
    rows: [],
    listed: undefined,
    features: newChainFeatures(),
    maxDiff: { iv: NaN, price: NaN },
  };
  let listing: Listing | undefined;
  let stopped = false;
  // Each incarnation its own ids: a late answer to a restarted one's request is nobody's.
  let nextReference = FIRST_REFERENCE_ID + (ctx.incarnation % 1_000) * 10_000;

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

  const discover = async (day: string): Promise<Listing> => {
    const cached = listings.get(settings.underlying);
    if (cached?.day === day) return cached;
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
    const chosen = live.slice(settings.expiries.from, settings.expiries.to + 1);
    const contracts = new Map<string, OptionLineContract>();
    const strikes: ListedStrikes[] = [];
    for (const expiry of chosen) {
      const found: OptionLineContract[] = [];
      await askReference(`option contracts ${underlying} ${expiry}`, (ib, id) => ib.reqContractDetails(id, { symbol: underlying, secType: SecType.OPT, lastTradeDateOrContractMonth: expiry, exchange, currency }), {
        onDetails: (d) => {
          const c = d.contract;
          const right = String(c.right ?? '').startsWith('C') ? 'C' : String(c.right ?? '').startsWith('P') ? 'P' : undefined;
          if (!c.conId || c.strike === undefined || !right || (c.tradingClass !== undefined && c.tradingClass !== underlying)) return;
          found.push({ conId: c.conId, localSymbol: c.localSymbol ?? '', expiry, strike: c.strike, right });
        },
      });
      for (const c of found) contracts.set(keyOf(expiry, c.strike, c.right), c);
      strikes.push({ expiry, strikes: [...new Set(found.map((c) => c.strike))].sort((a, b) => a - b) });
    }
    const result: Listing = { day, expiries: live, strikes, contracts };
    listings.set(underlying, result);
    log.info({ day, expiries: live.length, band: chosen, contracts: contracts.size }, `${underlying} option chain discovered: ${live.length} expiries, ${contracts.size} contracts in the band's expiries`);
    return result;
  };

  let discovering = false;
  let retryTimer: unknown;
  const startDiscovery = () => {
    if (discovering || stopped) return;
    discovering = true;
    view.phase = 'discovering';
    const day = sessionDate(clock.wallNow());
    discover(day).then(
      (found) =>
        ctx.scope(() => {
          discovering = false;
          if (stopped) return;
          listing = found;
          view.listing = { day: found.day, expiries: found.expiries.length, contracts: found.contracts.size };
          listAll(found);
          // Without the underlying's price yet, the band is chosen at the first tick that has it.
          if (band.list(found.strikes, allowance, spotNow(), clock.now()) !== 'no-price') bandChanged();
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

  // ---- every listed contract of the band's expiries ----

  let all: ChainPricing | undefined;
  let allExpiryAt = new Float64Array(0);
  const listAll = (found: Listing) => {
    const n = found.contracts.size;
    all = new ChainPricing(Math.max(1, n));
    allExpiryAt = new Float64Array(n);
    const expiries = found.strikes.map((e) => e.expiry);
    const expiry = new Int8Array(n);
    const conId = new Float64Array(n);
    for (const c of found.contracts.values()) {
      const i = all.add(c.right === 'C' ? 1 : -1, c.strike, 0);
      allExpiryAt[i] = expiryMs(c.expiry);
      expiry[i] = expiries.indexOf(c.expiry);
      conId[i] = c.conId;
    }
    const p = all;
    view.listed = { count: p.count, expiries, expiry, conId, strike: p.strike, right: p.right, years: p.years, vol: p.vol, price: p.price, delta: p.delta, gamma: p.gamma, vega: p.vega, theta: p.theta } satisfies ListedPricing;
  };

  /** The listed contracts at their expiries' fitted smiles. */
  const priceAll = (S: number, now: number) => {
    const listed = view.listed;
    if (!all || !listed) return;
    const { rate, dividendYield } = settings;
    for (let i = 0; i < all.count; i++) {
      const T = (allExpiryAt[i]! - now) / MS_PER_YEAR;
      all.years[i] = T;
      const slice = slices[sliceExpiries.indexOf(listed.expiries[listed.expiry[i]!]!)];
      if (slice && slice.points > 0 && T > 0) {
        const k = Math.log(all.strike[i]! / S) - (rate - dividendYield) * T;
        all.vol[i] = Math.sqrt(sliceVariance(k, slice.theta, slice.rho, slice.phi) / T);
      } else {
        all.vol[i] = NaN;
      }
    }
    all.greeks(S, rate, dividendYield);
  };

  // ---- the band and its lines ----

  const spotNow = () => {
    const b = lines.quotes.bid[underlyingIndex]!;
    const a = lines.quotes.ask[underlyingIndex]!;
    return b > 0 && a >= b ? (b + a) / 2 : NaN;
  };

  const bandChanged = () => {
    if (!listing) return;
    const wanted: OptionLineContract[] = [];
    for (const b of band.contracts) {
      const c = listing.contracts.get(keyOf(b.expiry, b.strike, b.right));
      if (c) wanted.push(c);
    }
    const old = new Map(view.rows.map((r, i) => [r.conId, i]));
    const oldBid = bid.slice(0, view.rows.length);
    const oldAsk = ask.slice(0, view.rows.length);
    const oldRows = view.rows;
    pricing.count = 0;
    rowOf.clear();
    sliceExpiries = band.expiries.map((e) => e.expiry);
    slices = sliceExpiries.map(() => newSlice());
    view.smiles = Object.fromEntries(sliceExpiries.map((e, i) => [e, slices[i]!]));
    view.rows = wanted.map((c, i) => {
      pricing.add(c.right === 'C' ? 1 : -1, c.strike, 0);
      expiryAt[i] = expiryMs(c.expiry);
      slot[i] = sliceExpiries.indexOf(c.expiry);
      rowOf.set(c.conId, i);
      const was = old.get(c.conId);
      // A contract still in the band keeps its quotes and IB's greeks.
      bid[i] = was === undefined ? NaN : oldBid[was]!;
      ask[i] = was === undefined ? NaN : oldAsk[was]!;
      if (was !== undefined) return oldRows[was]!;
      return { conId: c.conId, localSymbol: c.localSymbol, expiry: c.expiry, strike: c.strike, right: c.right, line: 'waiting', bid: NaN, ask: NaN, volume: NaN, openInterest: NaN, years: NaN, keel: nanGreeks(), midIv: NaN, ivReason: 'no quote yet', ib: { ...nanGreeks(), underlying: NaN }, diff: nanGreeks() } satisfies ChainRow;
    });
    view.centres = Object.fromEntries(band.centres);
    view.recentres = band.recentres;
    lines.want(wanted, settings.genericTicks);
    log.info({ centres: view.centres, contracts: wanted.length, allowance }, band.recentres === 0 ? 'option band centred' : 'option band re-centred');
  };

  // ---- ticks ----

  const rowFor = (reqId: number): number => {
    const c = lines.contractOf(reqId);
    return c === undefined ? -1 : (rowOf.get(c.conId) ?? -1);
  };
  const onTickPrice = (reqId: number, field: number, value: number) => {
    const i = rowFor(reqId);
    if (i < 0) return;
    if (field === TickType.BID || field === TickType.DELAYED_BID) bid[i] = value;
    else if (field === TickType.ASK || field === TickType.DELAYED_ASK) ask[i] = value;
    else return;
    view.quotedAt = clock.wallNow();
  };
  const onTickSize = (reqId: number, field: number | undefined, value: number | undefined) => {
    const i = rowFor(reqId);
    if (i < 0 || value === undefined) return;
    const row = view.rows[i]!;
    if (field === TickType.VOLUME || field === TickType.DELAYED_VOLUME) row.volume = value;
    else if (field === TickType.OPTION_CALL_OPEN_INTEREST || field === TickType.OPTION_PUT_OPEN_INTEREST) row.openInterest = value;
  };
  const onComputation = (reqId: number, tickType: number, _attrib: number | undefined, iv?: number, delta?: number, price?: number, _pv?: number, gamma?: number, vega?: number, theta?: number, und?: number) => {
    if (tickType !== TickType.MODEL_OPTION && tickType !== TickType.DELAYED_MODEL_OPTION) return;
    const i = rowFor(reqId);
    if (i < 0) return;
    const ib = view.rows[i]!.ib;
    // IB's "not computed" (-1, -2) decodes as undefined.
    ib.iv = iv ?? NaN;
    ib.delta = delta ?? NaN;
    ib.price = price ?? NaN;
    ib.gamma = gamma ?? NaN;
    ib.vega = vega ?? NaN;
    ib.theta = theta ?? NaN;
    ib.underlying = und ?? NaN;
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

  const price = (S: number) => {
    const now = clock.wallNow();
    const n = pricing.count;
    for (let i = 0; i < n; i++) {
      pricing.years[i] = (expiryAt[i]! - now) / MS_PER_YEAR;
      const b = bid[i]!;
      const a = ask[i]!;
      pricing.quote[i] = b >= 0 && a > 0 && a >= b ? (b + a) / 2 : NaN;
    }
    const { rate, dividendYield } = settings;
    pricing.impliedVols(S, rate, dividendYield);
    for (let i = 0; i < n; i++) midIv[i] = pricing.vol[i] = pricing.iv[i]!;
    // Vegas at the mids' IVs weigh the quotes in the fit.
    pricing.greeks(S, rate, dividendYield);
    for (let s = 0; s < slices.length; s++) {
      fit.clear();
      for (let i = 0; i < n; i++) {
        if (slot[i] !== s) continue;
        const T = pricing.years[i]!;
        const k = Math.log(pricing.strike[i]! / S) - (rate - dividendYield) * T;
        // Calls and puts both: each quote's penny rounding is its own, so two quotes per strike halve the noise.
        fit.add(k, midIv[i]!, T, pricing.vega[i]!);
      }
      if (!fit.fit(slices[s]!)) slices[s]!.points = 0;
    }
    for (let i = 0; i < n; i++) {
      const slice = slices[slot[i]!];
      const T = pricing.years[i]!;
      if (slice && slice.points > 0 && T > 0) {
        const k = Math.log(pricing.strike[i]! / S) - (rate - dividendYield) * T;
        pricing.vol[i] = Math.sqrt(sliceVariance(k, slice.theta, slice.rho, slice.phi) / T);
      } else {
        pricing.vol[i] = midIv[i]!;
      }
    }
    pricing.greeks(S, rate, dividendYield);
    let maxIv = 0;
    let maxPrice = 0;
    for (let i = 0; i < n; i++) {
      const row = view.rows[i]!;
      row.bid = bid[i]!;
      row.ask = ask[i]!;
      row.years = pricing.years[i]!;
      const k = row.keel;
      const quoted = pricing.quote[i] === pricing.quote[i];
      row.midIv = midIv[i]!;
      row.ivReason = !quoted ? 'no two-sided quote yet' : ivReason(pricing.ivCode[i]!);
      k.iv = pricing.vol[i]!;
      const valid = k.iv === k.iv;
      k.price = valid ? pricing.price[i]! : NaN;
      k.delta = valid ? pricing.delta[i]! : NaN;
      k.gamma = valid ? pricing.gamma[i]! : NaN;
      k.vega = valid ? pricing.vega[i]! : NaN;
      k.theta = valid ? pricing.theta[i]! : NaN;
      const d = row.diff;
      d.iv = k.iv - row.ib.iv;
      d.price = k.price - row.ib.price;
      d.delta = k.delta - row.ib.delta;
      d.gamma = k.gamma - row.ib.gamma;
      d.vega = k.vega - row.ib.vega;
      d.theta = k.theta - row.ib.theta;
      if (Math.abs(d.iv) > maxIv) maxIv = Math.abs(d.iv);
      if (Math.abs(d.price) > maxPrice) maxPrice = Math.abs(d.price);
    }
    view.maxDiff.iv = maxIv;
    view.maxDiff.price = maxPrice;
    priceAll(S, now);
    computeChainFeatures(view.rows, sliceExpiries, S, rate, dividendYield, view.features, view.smiles);
  };

  const tick = () => {
    if (stopped) return;
    // A new subscriptions incarnation brings new lines (only reachable under one_for_one): start over with them.
    if (ctx.services.current('optionLines') !== lines) throw new Error('the option lines were replaced: option_chain restarts to use the new ones');
    if (listing && listing.day !== sessionDate(clock.wallNow())) {
      // A new session day: a new listing.
      listing = undefined;
      startDiscovery();
    }
    const S = spotNow();
    if (listing) {
      if (band.centres.size === 0) {
        if (band.list(listing.strikes, allowance, S, clock.now()) !== 'no-price') bandChanged();
      } else if (band.update(S, clock.now()) === 'recentred') {
        bandChanged();
      }
      view.phase = S === S ? 'streaming' : 'waiting-for-underlying';
    }
    view.lines = lines.counts();
    for (const row of view.rows) row.line = lines.statusOf(row.conId) ?? 'waiting';
    if (S === S && view.rows.length > 0) {
      price(S);
      view.spot = S;
      view.pricedAt = clock.wallNow();
    }
    bus.retain(OPTIONS_CHAIN_TOPIC, view);
    timer = clock.setTimeout(() => ctx.scope(tick), settings.publishMs);
  };
  let timer: unknown = clock.setTimeout(() => ctx.scope(tick), 0);
  startDiscovery();
  log.info({ underlying: settings.underlying, allowance, expiries: settings.expiries, strikesEachSide: settings.strikes }, 'option chain started');

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
});
