/**
 * The option strategy: from the predictor's view of the underlying, buy a
 * short-dated call (a rise predicted) or put (a fall) and close it on a
 * take-profit, a stop, a time stop, or before the expiry's close. Long
 * premium only: what it can lose is what it paid. Every choice is a
 * setting with a default a trader would recognise, and every action
 * carries its reason in words, as the stock policy's targets do.
 *
 * Entries: the prediction beyond `entryBps`, the regime allowed, no option
 * of the underlying held or working, `cooldownMs` since the last entry,
 * at least `minMinutesToExpiry` left; the contract is the streamed one of
 * the chosen expiry whose |delta| is nearest `delta` (or, with
 * `strikeOffset`, that many strikes out of the money from the one nearest
 * the underlying), bought at its ask.
 *
 * With `structure: 'vertical'` it buys a debit vertical instead, as one
 * combo: the contract chosen so, and the one `verticalWidth` streamed
 * strikes further out of the money sold, at the net of the touches (the
 * bought leg's ask less the sold leg's bid). What it can lose is that net
 * debit.
 *
 * Exits, judged at the bid (what a sale gets now): the bid up
 * `takeProfitPct` or down `stopLossPct` from the average price paid, held
 * `maxHoldMinutes`, or less than `exitBeforeCloseMinutes` to the expiry
 * unless `holdThroughExpiry` (then exercise by exception settles it).
 * Sold at the bid. A vertical held (a long and a short of one expiry and
 * right, as many contracts each) is judged and sold back as one combo, at
 * its net bid (the long leg's bid less the short leg's ask) against the
 * net it paid.
 *
 * Pure: the chain's streamed rows, the held options and the time in,
 * actions out; the paper trader sends them through the risk gate.
 */
import { z } from 'zod';
import { horizonSetting } from '../models/horizon.js';
import type { OptionContract } from '../journal/records.js';
import type { ChainRow } from '../options/chain-view.js';

export const optionPolicySettings = z
  .object({
    /** Trade options at all (needs an option_chain for the underlying). */
    enabled: z.boolean().default(false),
    underlying: z.string().min(1).default('SPY'),
    /** Which horizon's predictions of the underlying it reads ('10s', '5m', ...): one the predictor serves. */
    horizon: horizonSetting.prefault('10s'),
    /** Predicted return of the underlying over the horizon, bps, beyond which a call (or put) is bought. */
    entryBps: z.number().positive().default(2),
    /** The expiry by position among the chain's band expiries: 0 is the nearest (0DTE on an expiry day). */
    expiry: z.number().int().min(0).default(0),
    /** The target |delta| of the contract bought. */
    delta: z.number().gt(0).lt(1).default(0.4),
    /** Instead of a delta: this many strikes out of the money from the strike nearest the underlying (0 at the money). */
    strikeOffset: z.number().int().min(0).optional(),
    contracts: z.number().int().positive().default(1),
    /** single: buy the chosen call or put; vertical: buy it and sell the one `verticalWidth` strikes further out of the money, as one combo. */
    structure: z.enum(['single', 'vertical']).default('single'),
    /** A vertical's width: how many of the expiry's streamed strikes further out of the money its sold leg is. */
    verticalWidth: z.number().int().positive().default(1),
    /** No entry with less than this left to the expiry. */
    minMinutesToExpiry: z.number().min(0).default(60),
    takeProfitPct: z.number().positive().default(50),
    stopLossPct: z.number().positive().max(100).default(30),
    maxHoldMinutes: z.number().positive().default(30),
    /** Close this long before the expiry's 16:00 close, unless held through it. */
    exitBeforeCloseMinutes: z.number().min(0).default(15),
    holdThroughExpiry: z.boolean().default(false),
    /** Least time between two entries. */
    cooldownMs: z.number().int().min(0).default(60_000),
    /** Regime labels in which no option is bought (exits go on). */
    blockedRegimes: z.array(z.string()).default([]),
  })
  .strict();

export type OptionPolicySettings = z.infer<typeof optionPolicySettings>;

/** An option of the underlying held now. */
export interface HeldOption {
  readonly symbol: string;
  readonly contract: OptionContract;
  readonly quantity: number;
  readonly averagePrice: number;
  /** Wall-clock ms of the fill that opened it. */
  readonly openedAt: number;
}

export interface OptionPolicyInput {
  /** Wall-clock ms. */
  readonly now: number;
  /** The underlying's predicted return, bps (NaN when none). */
  readonly prediction: number;
  /** The underlying's regime label, or undefined when none is known. */
  readonly regime: string | undefined;
  /** The underlying's price. */
  readonly spot: number;
  /** The chain's streamed contracts, with quotes and keel's greeks. */
  readonly rows: readonly ChainRow[];
  /** The band's expiries, nearest first, and each one's expiry moment (wall ms). */
  readonly expiries: readonly { readonly expiry: string; readonly at: number }[];
  readonly held: readonly HeldOption[];
  /** An order of the underlying's options is in flight or working: nothing new until it is done. */
  readonly busy: boolean;
  /** Wall-clock ms of the last entry (-Infinity before any). */
  readonly lastEntryAt: number;
}

/** `limitPrice` a share: a vertical's is the net (a debit to enter, a credit to exit). */
export type OptionAction =
  /** Buy `row` (and, for a vertical, sell `sold` as many contracts, as one combo). */
  | { readonly kind: 'enter'; readonly row: ChainRow; readonly sold?: ChainRow; readonly contracts: number; readonly limitPrice: number; readonly reason: string }
  /** Sell `held` back (and, for a vertical, buy `sold` back, as one combo). */
  | { readonly kind: 'exit'; readonly held: HeldOption; readonly sold?: HeldOption; readonly limitPrice: number; readonly reason: string };

/** What is held as the strategy trades it: an option, or a vertical (`held` long, `sold` short, as many contracts each). */
interface Holding {
  readonly held: HeldOption;
  readonly sold?: HeldOption;
}

const MINUTE = 60_000;
const pct = (x: number) => `${x >= 0 ? '+' : ''}${x.toFixed(0)} %`;
const bps = (x: number) => `${x > 0 ? '+' : ''}${x.toFixed(2)} bps`;

/** The exits due now; else at most one entry; else nothing. */
export function decideOptions(s: OptionPolicySettings, input: OptionPolicyInput): OptionAction[] {
  if (input.busy) return [];
  const exits: OptionAction[] = [];
  for (const holding of holdings(input.held)) {
    const bid = netBid(input, holding);
    const reason = exitReason(s, input, holding, bid);
    if (reason !== undefined && bid > 0) exits.push({ kind: 'exit', ...holding, limitPrice: bid, reason });
  }
  if (exits.length > 0 || input.held.length > 0) return exits;
  const entry = entryOf(s, input);
  return entry ? [entry] : [];
}

/** Longs paired with a short of their expiry and right, as many contracts: verticals; the rest on their own. */
function holdings(held: readonly HeldOption[]): Holding[] {
  const paired = new Set<HeldOption>();
  const out: Holding[] = [];
  for (const h of held) {
    if (h.quantity <= 0) continue;
    const sold = held.find((o) => !paired.has(o) && o.quantity === -h.quantity && o.contract.expiry === h.contract.expiry && o.contract.right === h.contract.right);
    if (sold) paired.add(sold);
    out.push({ held: h, sold });
  }
  for (const h of held) if (h.quantity <= 0 && !paired.has(h)) out.push({ held: h });
  return out;
}

/** What selling the holding back gets now, a share: its bid, or a vertical's net bid (the long's bid less the short's ask); NaN unquoted. */
function netBid(input: OptionPolicyInput, { held, sold }: Holding): number {
  const row = (h: HeldOption) => input.rows.find((r) => r.conId === h.contract.conId);
  const bid = row(held)?.bid ?? NaN;
  if (!sold) return bid;
  return round(bid - (row(sold)?.ask ?? NaN));
}

/** Net prices are differences of quotes: rounded, so floating-point noise is neither shown nor sent. */
const round = (x: number) => Math.round(x * 1e4) / 1e4;

function exitReason(s: OptionPolicySettings, input: OptionPolicyInput, { held, sold }: Holding, bid: number): string | undefined {
  const expiryAt = input.expiries.find((e) => e.expiry === held.contract.expiry)?.at ?? NaN;
  const left = (expiryAt - input.now) / MINUTE;
  if (!s.holdThroughExpiry && left < s.exitBeforeCloseMinutes) return `${left.toFixed(0)} min to the expiry's close (exit ${s.exitBeforeCloseMinutes} min before)`;
  const paid = sold ? round(held.averagePrice - sold.averagePrice) : held.averagePrice;
  const what = sold ? 'net bid' : 'bid';
  if (bid > 0 && paid > 0) {
    const change = ((bid - paid) / paid) * 100;
    if (change >= s.takeProfitPct) return `take profit: ${what} ${bid} is ${pct(change)} on ${paid} paid (target ${pct(s.takeProfitPct)})`;
    if (change <= -s.stopLossPct) return `stop: ${what} ${bid} is ${pct(change)} on ${paid} paid (stop ${pct(-s.stopLossPct)})`;
  }
  const heldFor = (input.now - held.openedAt) / MINUTE;
  if (heldFor >= s.maxHoldMinutes) return `time stop: held ${heldFor.toFixed(0)} min (at most ${s.maxHoldMinutes})`;
  return undefined;
}

function entryOf(s: OptionPolicySettings, input: OptionPolicyInput): OptionAction | undefined {
  const p = input.prediction;
  if (!(Math.abs(p) >= s.entryBps)) return undefined;
  if (input.regime !== undefined && s.blockedRegimes.includes(input.regime)) return undefined;
  if (input.now - input.lastEntryAt < s.cooldownMs) return undefined;
  const expiry = input.expiries[s.expiry];
  if (!expiry || (expiry.at - input.now) / MINUTE < s.minMinutesToExpiry) return undefined;
  const right = p > 0 ? 'C' : 'P';
  const candidates = input.rows.filter((r) => r.expiry === expiry.expiry && r.right === right && r.ask > 0 && r.line === 'live' && Number.isFinite(r.keel.delta));
  if (candidates.length === 0) return undefined;
  let row: ChainRow | undefined;
  let how: string;
  if (s.strikeOffset !== undefined) {
    const strikes = [...new Set(candidates.map((r) => r.strike))].sort((a, b) => a - b);
    const atm = strikes.reduce((best, k) => (Math.abs(k - input.spot) < Math.abs(best - input.spot) ? k : best), strikes[0]!);
    const target = strikes[strikes.indexOf(atm) + (right === 'C' ? s.strikeOffset : -s.strikeOffset)];
    row = candidates.find((r) => r.strike === target);
    how = `${s.strikeOffset} strikes out of the money`;
  } else {
    row = candidates.reduce((best, r) => (Math.abs(Math.abs(r.keel.delta) - s.delta) < Math.abs(Math.abs(best.keel.delta) - s.delta) ? r : best));
    how = `delta nearest ${s.delta}`;
  }
  if (!row) return undefined;
  const call = right === 'C' ? 'call' : 'put';
  const why = `${s.underlying} predicted ${bps(p)} (entry ${s.entryBps} bps)`;
  const chosen = `${how}, Δ ${row.keel.delta.toFixed(2)}`;
  if (s.structure === 'single') return { kind: 'enter', row, contracts: s.contracts, limitPrice: row.ask, reason: `${why}: buy the ${call} with ${chosen}, at the ask` };
  // Further out of the money: higher strikes for calls, lower for puts; it must have a bid to be sold at.
  const outward = candidates.filter((r) => r.bid > 0 && (right === 'C' ? r.strike > row.strike : r.strike < row.strike)).sort((a, b) => Math.abs(a.strike - row.strike) - Math.abs(b.strike - row.strike));
  const sold = outward[s.verticalWidth - 1];
  if (!sold) return undefined;
  const debit = round(row.ask - sold.bid);
  const reason = `${why}: buy the ${row.strike}/${sold.strike} ${call} vertical (bought: the ${call} with ${chosen}; sold: ${s.verticalWidth} strike${s.verticalWidth > 1 ? 's' : ''} further out) at the touches' net debit ${debit}`;
  return { kind: 'enter', row, sold, contracts: s.contracts, limitPrice: debit, reason };
}
