/**
 * Pre-trade limits for option orders (OPT) and combos of them (BAG),
 * judged by the risk gate after its state rules. A combo is judged as a
 * whole: all its legs filled together (combos × ratio contracts each), so a
 * vertical's short leg is covered by its long leg, and one option's order
 * is judged as a combo of one leg. Greeks are the portfolio's in one
 * underlying, in the units a trader watches:
 *   delta   shares-equivalent (the underlying's shares count 1 each)
 *   gamma   shares-equivalent per $1 move of the underlying
 *   vega    dollars per volatility point
 *   theta   dollars per calendar day
 * An order is judged by what the portfolio's greeks would be once it
 * filled: a limit refuses it only if it leaves that greek beyond the limit
 * and further from zero than it was, so an order that brings a greek back
 * towards its limit always passes. Each refusal names the limit, the value
 * and the limit.
 *
 * In the order they are judged: contracts per order (all legs), no short
 * options (unless covered or `allowShortOptions`: a short call by shares
 * held or a long call of the order's legs, a short put by a long put of
 * its legs, the long expiring no earlier than the short), contracts per
 * expiry (every leg that opens, in its own expiry), premium at risk (what
 * the long options paid, all of which can be lost: a combo's bought legs
 * at their touch), then delta, gamma, vega and theta of all legs together.
 */
import { z } from 'zod';
import { amount, figure } from './limits.js';
import { touch } from './combo.js';
import type { Decision } from './risk-gate.js';

export const optionLimits = z
  .object({
    /** |contracts| of one order. */
    maxContractsPerOrder: z.number().int().positive().default(10),
    /** Contracts held and working in one expiry, all strikes and rights, once the order fills. */
    maxContractsPerExpiry: z.number().int().positive().default(50),
    /** Premium paid for the long options held and bought, account currency: the most they can lose. */
    maxPremiumAtRisk: z.number().positive().default(10_000),
    /** |portfolio delta| in shares of the underlying. */
    maxDelta: z.number().positive().default(1_000),
    /** |portfolio gamma| in shares of delta per $1 of the underlying. */
    maxGamma: z.number().positive().default(500),
    /** |portfolio vega| in dollars per volatility point. */
    maxVega: z.number().positive().default(2_000),
    /** |portfolio theta| in dollars per day. */
    maxTheta: z.number().positive().default(2_000),
    /** Short options beyond what shares cover (a short call against 100 shares a contract is covered). */
    allowShortOptions: z.boolean().default(false),
  })
  .strict();

export type OptionLimits = z.infer<typeof optionLimits>;

/** Greeks in the units above: per share of one option (IB's units), or the portfolio's in dollars and shares. */
export interface Greeks {
  readonly delta: number;
  readonly gamma: number;
  readonly vega: number;
  readonly theta: number;
}

/** What the gate knows of the portfolio in an option order's underlying. */
export interface Holdings {
  readonly underlying: string;
  /** The portfolio's greeks in the underlying before the order, shares and dollars, working orders counted as filled. */
  readonly portfolio: Greeks;
  /** Premium paid for the long options held and working, account currency. */
  readonly premiumAtRisk: number;
  /** Shares of the underlying held: what covers short calls. */
  readonly sharesHeld: number;
}

/** What the gate needs to know about an option order beyond any order's intent. */
export interface OptionRisk extends Holdings {
  readonly expiry: string;
  readonly right: 'C' | 'P';
  readonly multiplier: number;
  /** One share's greeks now, IB's units (delta and gamma per $1, vega per volatility point, theta per day). */
  readonly greeks: Greeks;
  /** |contracts| held and working in this expiry before the order. */
  readonly contractsInExpiry: number;
}

/** One leg of a combo as the gate judges it: the option, its ratio, its quote and greeks now, and what is held of it. */
export interface ComboLegRisk {
  readonly symbol: string;
  readonly expiry: string;
  readonly right: 'C' | 'P';
  readonly multiplier: number;
  /** Contracts per combo, signed as when the combo is bought. */
  readonly ratio: number;
  readonly greeks: Greeks;
  /** Its bid and ask now, a share: a leg is judged at the touch it trades at. */
  readonly bid: number;
  readonly ask: number;
  /** Contracts of it held, and in working orders. */
  readonly position: number;
  readonly working: number;
}

/** What the gate needs to know about a combo order: its legs, and the portfolio in their underlying. */
export interface ComboRisk extends Holdings {
  readonly legs: readonly ComboLegRisk[];
  /** |contracts| held and working, by expiry, before the order. */
  readonly contractsByExpiry: ReadonlyMap<string, number>;
}

/** One option's order as a combo of one leg at its price: both are judged by the same rules. */
export function singleOption(symbol: string, risk: OptionRisk, price: number, position: number, working: number): ComboRisk {
  const { expiry, right, multiplier, greeks } = risk;
  return { ...risk, legs: [{ symbol, expiry, right, multiplier, ratio: 1, greeks, bid: price, ask: price, position, working }], contractsByExpiry: new Map([[expiry, risk.contractsInExpiry]]) };
}

const GREEKS = [
  ['delta', 'maxDelta', 'shares'],
  ['gamma', 'maxGamma', 'shares per $1'],
  ['vega', 'maxVega', '$ per vol point'],
  ['theta', 'maxTheta', '$ per day'],
] as const;

const refuse = (reason: string): Decision => ({ ok: false, reason });
const OK: Decision = { ok: true };

/** A leg's contracts in an order of `combos`, and its projected position before and after (working orders counted as filled). */
function change(leg: ComboLegRisk, combos: number) {
  const contracts = combos * leg.ratio;
  const before = leg.position + leg.working;
  const projected = before + contracts;
  return { contracts, before, projected, opens: Math.abs(projected) > Math.abs(before) };
}

/** The portfolio's greek once `combos` of the combo filled. */
const after = (combo: ComboRisk, greek: keyof Greeks, combos: number) => combo.legs.reduce((sum, l) => sum + combos * l.ratio * l.multiplier * l.greeks[greek], combo.portfolio[greek]);

/** Does the order bring every greek closer to zero (or leave it)? What REDUCING lets through. */
export function reducesGreeks(combo: ComboRisk, combos: number): boolean {
  return GREEKS.every(([g]) => Math.abs(after(combo, g, combos)) <= Math.abs(combo.portfolio[g]));
}

/**
 * Shares' worth of short options of one right left uncovered: longs cover
 * shorts expiring no later than they do (shares held, for calls, cover
 * any), latest expiry first. `positions` in shares, signed, once filled.
 */
function uncovered(positions: readonly { expiry: string; shares: number }[], cover: number): number {
  let pool = cover;
  let short = 0;
  for (const { shares } of [...positions].sort((a, b) => b.expiry.localeCompare(a.expiry) || b.shares - a.shares)) {
    if (shares >= 0) {
      pool += shares;
      continue;
    }
    const covered = Math.min(pool, -shares);
    pool -= covered;
    short += -shares - covered;
  }
  return short;
}

/** Why the order opens options of `right` short without cover, or undefined when it does not. */
function shortProblem(combo: ComboRisk, combos: number, right: 'C' | 'P', what: string): string | undefined {
  const legs = combo.legs.filter((l) => l.right === right).map((l) => ({ ...change(l, combos), expiry: l.expiry, multiplier: l.multiplier }));
  if (!legs.some((l) => l.projected < 0 && l.opens)) return undefined;
  const shares = right === 'C' ? combo.sharesHeld : 0;
  const left = uncovered(legs.map((l) => ({ expiry: l.expiry, shares: l.projected * l.multiplier })), shares);
  if (left <= 0) return undefined;
  const shorts = legs.filter((l) => l.projected < 0);
  const contracts = shorts.reduce((n, l) => n - l.projected, 0);
  const calls = right === 'C' ? 'calls' : 'puts';
  const toCover = right === 'C' ? `, ${figure(shorts.reduce((n, l) => n - l.projected * l.multiplier, 0))} shares to cover, ${figure(shares)} held` : '';
  const longs = legs.some((l) => l.projected > 0) ? `, ${figure(left)} shares' worth not covered by the long ${calls} expiring no earlier` : '';
  return `no short options: ${what} leaves ${figure(contracts)} ${calls} short${toCover}${longs} (allowShortOptions is false)`;
}

/**
 * `combos` signed (an option order's contracts), at a net `price` a share
 * (an option's limit); `name` the order's symbol. OK, or the first limit it
 * breaks, named.
 */
export function checkOptionLimits(limits: OptionLimits, combo: ComboRisk, name: string, combos: number, price: number): Decision {
  const side = combos > 0 ? 'buy' : 'sell';
  const what = `${name} ${side} ${figure(Math.abs(combos))}`;
  const finite = (g: Greeks) => GREEKS.every(([k]) => Number.isFinite(g[k]));
  if (!combo.legs.every((l) => finite(l.greeks)) || !finite(combo.portfolio)) {
    return refuse(`option greeks: ${what}: the option's or the portfolio's greeks are not all numbers; never trade an option that cannot be judged`);
  }
  const contracts = combo.legs.reduce((n, l) => n + Math.abs(combos * l.ratio), 0);
  if (contracts > limits.maxContractsPerOrder) return refuse(`max contracts per order: ${figure(contracts)} > ${figure(limits.maxContractsPerOrder)} (${what})`);

  if (!limits.allowShortOptions) {
    const problem = shortProblem(combo, combos, 'C', what) ?? shortProblem(combo, combos, 'P', what);
    if (problem !== undefined) return refuse(problem);
  }
  const opened = new Map<string, number>();
  for (const l of combo.legs) if (change(l, combos).opens) opened.set(l.expiry, (opened.get(l.expiry) ?? 0) + Math.abs(combos * l.ratio));
  for (const [expiry, n] of opened) {
    const total = (combo.contractsByExpiry.get(expiry) ?? 0) + n;
    if (total > limits.maxContractsPerExpiry) return refuse(`max contracts per expiry: ${figure(total)} > ${figure(limits.maxContractsPerExpiry)} (${expiry}, ${what})`);
  }
  let premium = combo.premiumAtRisk;
  let buys = false;
  for (const l of combo.legs) {
    const { contracts: n, projected } = change(l, combos);
    if (n <= 0 || projected <= 0) continue;
    buys = true;
    premium += Math.min(n, projected) * l.multiplier * touch(l, n);
  }
  if (buys && premium > limits.maxPremiumAtRisk) return refuse(`max premium at risk: ${amount(premium)} > ${figure(limits.maxPremiumAtRisk)} (${what} at ${amount(price)})`);
  for (const [greek, limit, unit] of GREEKS) {
    const was = combo.portfolio[greek];
    const will = after(combo, greek, combos);
    if (Math.abs(will) > limits[limit] && Math.abs(will) > Math.abs(was)) {
      return refuse(`max ${greek}: ${amount(Math.abs(will))} > ${figure(limits[limit])} ${unit} (${combo.underlying} ${greek} ${amount(was)} before ${what})`);
    }
  }
  return OK;
}
