/**
 * Pre-trade limits for option orders (OPT, and each leg's share of a BAG),
 * judged by the risk gate after its state rules. Greeks are the
 * portfolio's in one underlying, in the units a trader watches:
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
 * In the order they are judged: contracts per order, no short options
 * (unless covered by shares, for calls, or `allowShortOptions`), contracts
 * per expiry, premium at risk (what the long options paid, all of which
 * can be lost), then delta, gamma, vega and theta.
 */
import { z } from 'zod';
import { amount, figure } from './limits.js';
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

/** What the gate needs to know about an option order beyond any order's intent. */
export interface OptionRisk {
  readonly underlying: string;
  readonly expiry: string;
  readonly right: 'C' | 'P';
  readonly multiplier: number;
  /** One share's greeks now, IB's units (delta and gamma per $1, vega per volatility point, theta per day). */
  readonly greeks: Greeks;
  /** The portfolio's greeks in the underlying before the order, shares and dollars, working orders counted as filled. */
  readonly portfolio: Greeks;
  /** |contracts| held and working in this expiry before the order. */
  readonly contractsInExpiry: number;
  /** Premium paid for the long options held and working, account currency. */
  readonly premiumAtRisk: number;
  /** Shares of the underlying held: what covers short calls. */
  readonly sharesHeld: number;
}

const GREEKS = [
  ['delta', 'maxDelta', 'shares'],
  ['gamma', 'maxGamma', 'shares per $1'],
  ['vega', 'maxVega', '$ per vol point'],
  ['theta', 'maxTheta', '$ per day'],
] as const;

const refuse = (reason: string): Decision => ({ ok: false, reason });
const OK: Decision = { ok: true };

/** The portfolio's greek once `contracts` of the option filled. */
const after = (risk: OptionRisk, greek: keyof Greeks, contracts: number) => risk.portfolio[greek] + contracts * risk.multiplier * risk.greeks[greek];

/** Does the order bring every greek closer to zero (or leave it)? What REDUCING lets through. */
export function reducesGreeks(risk: OptionRisk, contracts: number): boolean {
  return GREEKS.every(([g]) => Math.abs(after(risk, g, contracts)) <= Math.abs(risk.portfolio[g]));
}

/**
 * `contracts` signed, at `price` a share; `position` and `working` this
 * option's contracts held and in working orders. OK, or the first limit
 * it breaks.
 */
export function checkOptionLimits(limits: OptionLimits, risk: OptionRisk, symbol: string, contracts: number, price: number, position: number, working: number): Decision {
  const side = contracts > 0 ? 'buy' : 'sell';
  const what = `${symbol} ${side} ${figure(Math.abs(contracts))}`;
  if (!GREEKS.every(([g]) => Number.isFinite(risk.greeks[g]) && Number.isFinite(risk.portfolio[g]))) {
    return refuse(`option greeks: ${what}: the option's or the portfolio's greeks are not all numbers; never trade an option that cannot be judged`);
  }
  if (Math.abs(contracts) > limits.maxContractsPerOrder) return refuse(`max contracts per order: ${figure(Math.abs(contracts))} > ${figure(limits.maxContractsPerOrder)} (${what})`);

  const before = position + working;
  const projected = before + contracts;
  const opens = Math.abs(projected) > Math.abs(before);
  if (projected < 0 && opens && !limits.allowShortOptions) {
    const short = -projected * risk.multiplier;
    if (risk.right === 'P') return refuse(`no short options: ${what} leaves ${figure(-projected)} puts short (allowShortOptions is false)`);
    if (risk.sharesHeld < short) return refuse(`no short options: ${what} leaves ${figure(-projected)} calls short, ${figure(short)} shares to cover, ${figure(risk.sharesHeld)} held (allowShortOptions is false)`);
  }
  if (opens && risk.contractsInExpiry + Math.abs(contracts) > limits.maxContractsPerExpiry) {
    return refuse(`max contracts per expiry: ${figure(risk.contractsInExpiry + Math.abs(contracts))} > ${figure(limits.maxContractsPerExpiry)} (${risk.expiry}, ${what})`);
  }
  if (contracts > 0 && projected > 0) {
    const premium = risk.premiumAtRisk + Math.min(contracts, projected) * risk.multiplier * price;
    if (premium > limits.maxPremiumAtRisk) return refuse(`max premium at risk: ${amount(premium)} > ${figure(limits.maxPremiumAtRisk)} (${what} at ${amount(price)})`);
  }
  for (const [greek, limit, unit] of GREEKS) {
    const was = risk.portfolio[greek];
    const will = after(risk, greek, contracts);
    if (Math.abs(will) > limits[limit] && Math.abs(will) > Math.abs(was)) {
      return refuse(`max ${greek}: ${amount(Math.abs(will))} > ${figure(limits[limit])} ${unit} (${risk.underlying} ${greek} ${amount(was)} before ${what})`);
    }
  }
  return OK;
}
