/**
 * An option chain priced by keel, whatever its data comes from (IB live,
 * or a recording replayed: chain-input.ts). Given the day's listing, it
 * keeps a band of contracts around the money (chain-band.ts: hysteresis
 * and a cooldown), takes each streamed contract's quotes, sizes, prints and
 * IB's model computation as inputs, and on every `price` prices the band in one
 * batch (ChainPricing, IB's units): the IV of each mid, an SSVI slice per
 * expiry fitted to the mids (smile-fit.ts: a penny quote's own IV is too
 * coarse), BSM greeks at the slice's volatility, IB's own greeks beside
 * keel's and the difference. Every other listed contract is priced too
 * (`listed`): at its expiry's fitted slice, or, for an expiry the band does
 * not stream, at the surface extended from the fitted slices (surface.ts).
 * The chain's features (chain-features.ts) are computed from the band. The
 * result is `view` (chain-view.ts), re-priced in place.
 *
 * A contract enters the band with no quote: it is priced once its inputs
 * come. A source that cannot stream what the band asks for (a recording
 * holds only the lines that were streamed when it was made) leaves those
 * rows unquoted, and the chain prices what it has.
 *
 */
import type { OptionLineContract } from '../ib/option-lines.js';
import { ChainBand, type OptionRightCode } from './chain-band.js';
import { computeChainFeatures, newChainFeatures } from './chain-features.js';
import { CHAIN_INPUT, type ChainListing } from './chain-input.js';
import { ChainPricing } from './chain-pricing.js';
import { nanGreeks, type ChainRow, type ListedPricing, type OptionChainView } from './chain-view.js';
import { expiryMs, MS_PER_YEAR } from './expiry.js';
import { ivReason } from './implied-vol.js';
import { newSlice, SmileFit, sliceVariance, type SmileSlice } from './smile-fit.js';
import { FittedSlices, surfaceSlice } from './surface.js';

export interface OptionChainSpec {
  readonly underlying: string;
  /** Positions in the listed expiries, nearest first. */
  readonly expiries: { readonly from: number; readonly to: number };
  /** Strikes each side of the money. */
  readonly strikes: number;
  readonly rights: readonly OptionRightCode[];
  readonly hysteresis: number;
  readonly cooldownMs: number;
  /** At most this many lines, below the listing's allowance. */
  readonly maxLines?: number | undefined;
  readonly rate: number;
  readonly dividendYield: number;
}

/** A listed contract's key: one per expiry, strike and right. */
export const contractKey = (expiry: string, strike: number, right: string) => `${expiry}:${strike}:${right}`;

export class OptionChain {
  readonly view: OptionChainView;
  private readonly band: ChainBand;
  private listing: ChainListing | undefined;
  private contracts = new Map<string, OptionLineContract>();
  /** The lines the band may use: the listing's allowance, at most `maxLines`. */
  private lines = 0;
  private underlyingBid = NaN;
  private underlyingAsk = NaN;

  // The band, row i one contract: made at the allowance's size when a listing comes.
  private pricing = new ChainPricing(1);
  private bid = new Float64Array(1);
  private ask = new Float64Array(1);
  private expiryAt = new Float64Array(1);
  private midIv = new Float64Array(1);
  /** Per row, its expiry's slot in `slices`. */
  private slot = new Int32Array(1);
  private fit = new SmileFit(1);
  private slices: SmileSlice[] = [];
  private sliceExpiries: string[] = [];
  private readonly rowOf = new Map<number, number>();

  // Every listed contract, and per listed expiry its time and slice (fitted, or from the surface).
  private all: ChainPricing | undefined;
  private allExpiryAt = new Float64Array(0);
  private expiryAt0 = new Float64Array(0);
  private expiryTheta = new Float64Array(0);
  private expiryRho = new Float64Array(0);
  private expiryPhi = new Float64Array(0);
  private fitted = new FittedSlices(1);
  private readonly extended = { theta: NaN, rho: NaN, phi: NaN };

  constructor(private readonly spec: OptionChainSpec) {
    // A listing's strikes are its band expiries' only (the spec's range already taken): the band spans all of them.
    const expiries = { from: 0, to: spec.expiries.to - spec.expiries.from };
    this.band = new ChainBand({ expiries, strikesEachSide: spec.strikes, rights: spec.rights, hysteresis: spec.hysteresis, cooldownMs: spec.cooldownMs });
    this.view = {
      underlying: spec.underlying,
      phase: 'discovering',
      spot: NaN,
      pricedAt: NaN,
      quotedAt: NaN,
      quotedMonotonic: NaN,
      listing: { day: '', expiries: 0, contracts: 0 },
      centres: {},
      smiles: {},
      recentres: 0,
      lines: { allowance: 0, wanted: 0, waiting: 0, requested: 0, live: 0, refused: 0 },
      rows: [],
      listed: undefined,
      features: newChainFeatures(),
      maxDiff: { iv: NaN, price: NaN },
    };
  }

  /** The listing in use (undefined while the day's is being discovered). */
  get listed(): ChainListing | undefined {
    return this.listing;
  }

  /** The lines the band may use: the listing's allowance, at most `maxLines`. */
  get allowance(): number {
    return this.lines;
  }

  /** The underlying's mid from its last quote (NaN without a two-sided one). */
  get spot(): number {
    const b = this.underlyingBid;
    const a = this.underlyingAsk;
    return b > 0 && a >= b ? (b + a) / 2 : NaN;
  }

  /** Whether a contract is in the band (its inputs count). */
  streams(conId: number): boolean {
    return this.rowOf.has(conId);
  }

  /** The day's listing: every contract of its band's expiries is listed; the band is chosen again at the next pricing. */
  list(listing: ChainListing): void {
    this.listing = listing;
    this.contracts = new Map(listing.contracts.map((c) => [contractKey(c.expiry, c.strike, c.right), c]));
    const allowance = Math.min(listing.allowance, this.spec.maxLines ?? Infinity);
    const capacity = Math.max(1, allowance);
    if (capacity !== this.pricing.capacity) this.allocate(capacity);
    this.lines = allowance;
    // No price here: the band is centred by the next `price`, whatever the cooldown.
    this.band.list(listing.strikes, allowance, NaN, 0);
    this.view.listing = { day: listing.day, expiries: listing.expiries.length, contracts: listing.contracts.length };
    this.listAll(listing);
  }

  /** A new session day: the listing is stale until the next `list`. */
  forget(): void {
    this.listing = undefined;
    this.view.phase = 'discovering';
  }

  /**
   * One input (chain-input.ts) at wall time `wallAt`, monotonic time `at`.
   * Returns false for a contract not in the band (nothing changed), true
   * otherwise.
   */
  input(conId: number, field: number, value: number, wallAt: number, at: number): boolean {
    if (field === CHAIN_INPUT.UNDERLYING_BID) this.underlyingBid = value;
    else if (field === CHAIN_INPUT.UNDERLYING_ASK) this.underlyingAsk = value;
    if (field === CHAIN_INPUT.UNDERLYING_BID || field === CHAIN_INPUT.UNDERLYING_ASK || field === CHAIN_INPUT.PRICED) return true;
    const i = this.rowOf.get(conId);
    if (i === undefined) return false;
    const row = this.view.rows[i]!;
    switch (field) {
      case CHAIN_INPUT.BID:
        this.bid[i] = value;
        this.quoted(wallAt, at);
        break;
      case CHAIN_INPUT.ASK:
        this.ask[i] = value;
        this.quoted(wallAt, at);
        break;
      case CHAIN_INPUT.BID_SIZE:
        row.bidSize = value;
        break;
      case CHAIN_INPUT.ASK_SIZE:
        row.askSize = value;
        break;
      case CHAIN_INPUT.LAST:
        row.last = value;
        row.prints++;
        break;
      case CHAIN_INPUT.LAST_BEFORE_LINE:
        row.last = value;
        break;
      case CHAIN_INPUT.LAST_SIZE:
        row.lastSize = value;
        break;
      case CHAIN_INPUT.VOLUME:
        row.volume = value;
        break;
      case CHAIN_INPUT.OPEN_INTEREST:
        row.openInterest = value;
        break;
      case CHAIN_INPUT.IB_IV:
        row.ib.iv = value;
        break;
      case CHAIN_INPUT.IB_DELTA:
        row.ib.delta = value;
        break;
      case CHAIN_INPUT.IB_PRICE:
        row.ib.price = value;
        break;
      case CHAIN_INPUT.IB_GAMMA:
        row.ib.gamma = value;
        break;
      case CHAIN_INPUT.IB_VEGA:
        row.ib.vega = value;
        break;
      case CHAIN_INPUT.IB_THETA:
        row.ib.theta = value;
        break;
      case CHAIN_INPUT.IB_UNDERLYING:
        row.ib.underlying = value;
        break;
    }
    return true;
  }

  /**
   * Moves the band when the underlying left it (monotonic `now` for the
   * cooldown), then prices the band and the listing at wall time `wallNow`.
   * Returns the band's contracts, nearest the money first, when the band
   * moved (stream these now), else undefined.
   */
  price(now: number, wallNow: number): OptionLineContract[] | undefined {
    const S = this.spot;
    let moved: OptionLineContract[] | undefined;
    if (this.listing) {
      const decision = this.band.update(S, now);
      if (decision === 'centred' || decision === 'recentred') moved = this.bandChanged();
      this.view.phase = S === S ? 'streaming' : 'waiting-for-underlying';
    }
    if (S === S && this.view.rows.length > 0) {
      this.priceBand(S, wallNow);
      this.view.spot = S;
      this.view.pricedAt = wallNow;
    }
    return moved;
  }

  private quoted(wallAt: number, at: number): void {
    this.view.quotedAt = wallAt;
    this.view.quotedMonotonic = at;
  }

  private allocate(capacity: number): void {
    this.pricing = new ChainPricing(capacity);
    this.bid = new Float64Array(capacity).fill(NaN);
    this.ask = new Float64Array(capacity).fill(NaN);
    this.expiryAt = new Float64Array(capacity);
    this.midIv = new Float64Array(capacity);
    this.slot = new Int32Array(capacity);
    this.fit = new SmileFit(capacity);
    // Rows index the arrays: a band of another size starts empty.
    this.rowOf.clear();
    this.view.rows = [];
  }

  private listAll(listing: ChainListing): void {
    const n = listing.contracts.length;
    const all = (this.all = new ChainPricing(Math.max(1, n)));
    this.allExpiryAt = new Float64Array(n);
    const expiries = [...new Set(listing.contracts.map((c) => c.expiry))].sort();
    const m = expiries.length;
    this.expiryAt0 = Float64Array.from(expiries, expiryMs);
    this.expiryTheta = new Float64Array(m);
    this.expiryRho = new Float64Array(m);
    this.expiryPhi = new Float64Array(m);
    this.fitted = new FittedSlices(Math.max(1, m));
    const expiry = new Int8Array(n);
    const conId = new Float64Array(n);
    for (const c of listing.contracts) {
      const i = all.add(c.right === 'C' ? 1 : -1, c.strike, 0);
      this.allExpiryAt[i] = expiryMs(c.expiry);
      expiry[i] = expiries.indexOf(c.expiry);
      conId[i] = c.conId;
    }
    const fromQuotes = new Uint8Array(m);
    this.view.listed = { count: all.count, expiries, fromQuotes, expiry, conId, strike: all.strike, right: all.right, years: all.years, vol: all.vol, price: all.price, delta: all.delta, gamma: all.gamma, vega: all.vega, theta: all.theta } satisfies ListedPricing;
  }

  /** The listed contracts at their expiries' slices: fitted where the band streams the expiry, else the surface's. */
  private priceAll(S: number, now: number): void {
    const { all, view, slices, sliceExpiries, fitted, extended } = this;
    const listed = view.listed;
    if (!all || !listed) return;
    const { rate, dividendYield } = this.spec;
    // The band's expiries are nearest first, so the fits go in in order of time.
    fitted.count = 0;
    for (let s = 0; s < slices.length; s++) fitted.add((expiryMs(sliceExpiries[s]!) - now) / MS_PER_YEAR, slices[s]!);
    for (let e = 0; e < listed.expiries.length; e++) {
      const own = slices[sliceExpiries.indexOf(listed.expiries[e]!)];
      const fit = own !== undefined && own.points > 0;
      listed.fromQuotes[e] = fit ? 1 : 0;
      if (!fit) surfaceSlice(fitted, (this.expiryAt0[e]! - now) / MS_PER_YEAR, extended);
      this.expiryTheta[e] = fit ? own.theta : extended.theta;
      this.expiryRho[e] = fit ? own.rho : extended.rho;
      this.expiryPhi[e] = fit ? own.phi : extended.phi;
    }
    for (let i = 0; i < all.count; i++) {
      const T = (this.allExpiryAt[i]! - now) / MS_PER_YEAR;
      all.years[i] = T;
      const e = listed.expiry[i]!;
      const k = Math.log(all.strike[i]! / S) - (rate - dividendYield) * T;
      // NaN parameters (nothing fitted yet) give NaN: no price rather than a guess.
      all.vol[i] = T > 0 ? Math.sqrt(sliceVariance(k, this.expiryTheta[e]!, this.expiryRho[e]!, this.expiryPhi[e]!) / T) : NaN;
    }
    all.greeks(S, rate, dividendYield);
  }

  private bandChanged(): OptionLineContract[] {
    const { view, pricing, bid, ask } = this;
    const wanted: OptionLineContract[] = [];
    for (const b of this.band.contracts) {
      const c = this.contracts.get(contractKey(b.expiry, b.strike, b.right));
      if (c) wanted.push(c);
    }
    const old = new Map(view.rows.map((r, i) => [r.conId, i]));
    const oldBid = bid.slice(0, view.rows.length);
    const oldAsk = ask.slice(0, view.rows.length);
    const oldRows = view.rows;
    pricing.count = 0;
    this.rowOf.clear();
    this.sliceExpiries = this.band.expiries.map((e) => e.expiry);
    this.slices = this.sliceExpiries.map(() => newSlice());
    view.smiles = Object.fromEntries(this.sliceExpiries.map((e, i) => [e, this.slices[i]!]));
    view.rows = wanted.map((c, i) => {
      pricing.add(c.right === 'C' ? 1 : -1, c.strike, 0);
      this.expiryAt[i] = expiryMs(c.expiry);
      this.slot[i] = this.sliceExpiries.indexOf(c.expiry);
      this.rowOf.set(c.conId, i);
      const was = old.get(c.conId);
      // A contract still in the band keeps its quotes and IB's greeks.
      bid[i] = was === undefined ? NaN : oldBid[was]!;
      ask[i] = was === undefined ? NaN : oldAsk[was]!;
      if (was !== undefined) return oldRows[was]!;
      return { conId: c.conId, localSymbol: c.localSymbol, expiry: c.expiry, strike: c.strike, right: c.right, multiplier: c.multiplier ?? NaN, line: 'waiting', bid: NaN, ask: NaN, bidSize: NaN, askSize: NaN, volume: NaN, openInterest: NaN, last: NaN, lastSize: NaN, prints: 0, years: NaN, keel: nanGreeks(), midIv: NaN, ivReason: 'no quote yet', ib: { ...nanGreeks(), underlying: NaN }, diff: nanGreeks() } satisfies ChainRow;
    });
    view.centres = Object.fromEntries(this.band.centres);
    view.recentres = this.band.recentres;
    return wanted;
  }

  private priceBand(S: number, now: number): void {
    const { view, pricing, bid, ask, midIv, slot, fit, slices } = this;
    const n = pricing.count;
    for (let i = 0; i < n; i++) {
      pricing.years[i] = (this.expiryAt[i]! - now) / MS_PER_YEAR;
      const b = bid[i]!;
      const a = ask[i]!;
      pricing.quote[i] = b >= 0 && a > 0 && a >= b ? (b + a) / 2 : NaN;
    }
    const { rate, dividendYield } = this.spec;
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
    this.priceAll(S, now);
    computeChainFeatures(view.rows, this.sliceExpiries, S, rate, dividendYield, view.features, view.smiles);
  }
}
