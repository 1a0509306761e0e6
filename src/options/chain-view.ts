/**
 * The option chain as keel publishes it (`options.chain`): the streamed
 * band with every contract's quote, keel's implied volatility and greeks,
 * IB's own model greeks (message 21, tick 13) beside them, and how far
 * apart the two are. Greeks in IB's units: delta and gamma per $1, vega
 * per volatility point, theta per calendar day, volatilities as decimals.
 * NaN where there is nothing (no quote yet, no IV: `ivReason` says why).
 */
import type { OptionLineCounts, OptionLineStatus } from '../ib/option-lines.js';
import type { OptionRightCode } from './chain-band.js';
import type { ChainFeatures } from './chain-features.js';
import type { SmileSlice } from './smile-fit.js';

export interface Greeks5 {
  iv: number;
  price: number;
  delta: number;
  gamma: number;
  vega: number;
  theta: number;
}

export interface ChainRow {
  readonly conId: number;
  readonly localSymbol: string;
  /** YYYYMMDD. */
  readonly expiry: string;
  readonly strike: number;
  readonly right: OptionRightCode;
  /** Shares per contract, from the listing (NaN when the listing does not say). */
  readonly multiplier: number;
  /** Its market-data line: waiting, requested, live or refused. */
  line: OptionLineStatus;
  bid: number;
  ask: number;
  /** Contracts displayed at the bid and at the ask (NaN until reported). */
  bidSize: number;
  askSize: number;
  /** Calendar years to the expiry moment at the last pricing. */
  years: number;
  /** The session's volume (tick 8) and open interest (ticks 27/28, generic tick 101), NaN until reported. */
  volume: number;
  openInterest: number;
  /** The last print's price and size (NaN until reported), and how many prints came since the contract entered the band: a count that grows is a new print. */
  last: number;
  lastSize: number;
  prints: number;
  /** The implied volatility of the mid (NaN when it has none: `ivReason` says why). */
  midIv: number;
  /** Why the mid has no IV (a quote below intrinsic value, none yet, ...), or undefined. */
  ivReason: string | undefined;
  /**
   * Keel's: the volatility of its expiry's smile fitted to the band's
   * quotes (the mid's IV while there are too few quotes to fit), and BSM's
   * price and greeks there.
   */
  readonly keel: Greeks5;
  /** IB's model computation (message 21, tick 13), and the underlying it used. */
  readonly ib: Greeks5 & { underlying: number };
  /** keel − IB, field by field. */
  readonly diff: Greeks5;
}

/**
 * Every listed contract, streamed or not, priced at its expiry's smile:
 * fitted to the band's quotes where the band streams the expiry, else the
 * surface extended from those fits (surface.ts). Typed arrays, row i one
 * contract (NaN before any fit). Greeks in IB's units.
 */
export interface ListedPricing {
  count: number;
  /** The expiries rows point into (YYYYMMDD), nearest first. */
  expiries: readonly string[];
  /** Per expiry: 1 when its smile is fitted to its own quotes, 0 when it comes from the surface. */
  fromQuotes: Uint8Array;
  /** Per row: index into `expiries`. */
  expiry: Int8Array;
  conId: Float64Array;
  strike: Float64Array;
  /** +1 call, -1 put. */
  right: Int8Array;
  years: Float64Array;
  vol: Float64Array;
  price: Float64Array;
  delta: Float64Array;
  gamma: Float64Array;
  vega: Float64Array;
  theta: Float64Array;
}

export type ChainPhase = 'discovering' | 'waiting-for-underlying' | 'streaming';

export interface OptionChainView {
  readonly underlying: string;
  phase: ChainPhase;
  /** The underlying's mid the chain was last priced at. */
  spot: number;
  /** Wall-clock ms of the last pricing. */
  pricedAt: number;
  /** Wall-clock ms of the last bid or ask on any streamed line (NaN before the first): a chain whose quotes stopped is stale. */
  quotedAt: number;
  /** The same quote's monotonic clock reading (clock.now()): its age is measured by it, since wall time may run fast (a market clock). */
  quotedMonotonic: number;
  /** The day's listing: how many expiries and (for the band's expiries) contracts were discovered, and for which session date. */
  listing: { day: string; expiries: number; contracts: number };
  /** Per streamed expiry, the strike the band is centred on. */
  centres: Record<string, number>;
  recentres: number;
  lines: OptionLineCounts;
  /** Per streamed expiry, the SSVI slice fitted to its out-of-the-money quotes (theta, rho, phi, the price error left). */
  smiles: Record<string, SmileSlice>;
  /** The band, nearest the money first. */
  rows: ChainRow[];
  /** Every listed contract, priced from the fitted smiles and the surface between and beyond them (undefined before discovery). */
  listed: ListedPricing | undefined;
  /** The chain's features from the band (src/options/chain-features.ts: ATM IV, 25-delta RR and fly per expiry, term slope, put/call ratios, net greeks). */
  features: ChainFeatures;
  /** Largest |keel − IB| over the band: IV (decimal) and price. */
  maxDiff: { iv: number; price: number };
}

export const nanGreeks = (): Greeks5 => ({ iv: NaN, price: NaN, delta: NaN, gamma: NaN, vega: NaN, theta: NaN });
