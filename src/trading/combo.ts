/**
 * Combo orders (IB's BAG): several options bought and sold together as
 * one order, all legs at once at a net price or not at all. A leg's
 * `ratio` is its contracts per combo, signed as when the combo is bought;
 * selling the combo trades every leg the other way. The net price a share
 * is Σ ratio × leg price: a debit positive, a credit negative (IB's
 * convention for BAG limit prices).
 */
import type { OptionContract } from '../journal/records.js';

/** An option's bid and ask, per share. */
export interface Quote {
  readonly bid: number;
  readonly ask: number;
}

/** Where `contracts` (signed) of an option trade now: bought at the ask, sold at the bid. */
export const touch = (quote: Quote, contracts: number): number => (contracts > 0 ? quote.ask : quote.bid);

/** The net price a share of one combo at its legs' touches, the combo bought (`side` +1) or sold (−1). */
export function netTouch(legs: readonly { readonly ratio: number; readonly quote: Quote }[], side: number): number {
  return legs.reduce((net, l) => net + l.ratio * touch(l.quote, side * l.ratio), 0);
}

/** The net of the legs' mids, a share: NaN when a leg has no sound quote. */
export function netMid(legs: readonly { readonly ratio: number; readonly quote: Quote }[]): number {
  return legs.reduce((net, { ratio, quote: q }) => net + ratio * (q.bid >= 0 && q.ask >= q.bid ? (q.bid + q.ask) / 2 : NaN), 0);
}

/** A combo's name in the journal and the log, its legs in a trader's words: `SPY +1 20260105 580C -1 20260105 585C`. */
export function comboName(legs: readonly { readonly option: OptionContract; readonly ratio: number }[]): string {
  const underlying = legs[0]?.option.underlying ?? '?';
  return [underlying, ...legs.map(({ option: o, ratio }) => `${ratio > 0 ? '+' : ''}${ratio} ${o.expiry} ${o.strike}${o.right}`)].join(' ');
}
