/**
 * What an option fill costs at IBKR Pro (tiered, smart-routed, up to 10,000
 * contracts a month), with the pass-through fees, as a configurable
 * schedule: the figures change over time (defaults as IBKR's US options
 * page gave them: $0.65 a contract at a premium of $0.10 or more, $0.50
 * from $0.05, $0.25 below; $1.00 the order at least; ORF $0.02685 and OCC
 * $0.02 a contract; FINRA TAF $0.00279 a contract sold; SEC fee 0.000008
 * of the value sold). No commission on exercise or assignment.
 *
 * The order's minimum is charged across its fills: each fill pays what the
 * order's commission so far grows by (the first pays the minimum), so a
 * partly filled order never pays the minimum twice. Fees are per fill.
 */
import { z } from 'zod';

export const optionCommissionSchedule = z
  .object({
    /** Per contract by premium per share: the first tier whose `fromPremium` the premium reaches, from the highest. */
    tiers: z
      .array(z.object({ fromPremium: z.number().min(0), perContract: z.number().min(0) }).strict())
      .min(1)
      .default([
        { fromPremium: 0.1, perContract: 0.65 },
        { fromPremium: 0.05, perContract: 0.5 },
        { fromPremium: 0, perContract: 0.25 },
      ]),
    minPerOrder: z.number().min(0).default(1),
    /** Options Regulatory Fee, per contract bought or sold. */
    orfPerContract: z.number().min(0).default(0.02685),
    /** OCC clearing, per contract bought or sold. */
    occPerContract: z.number().min(0).default(0.02),
    /** FINRA Trading Activity Fee, per contract sold. */
    tafPerContractSold: z.number().min(0).default(0.00279),
    /** SEC transaction fee, a share of the value sold (premium × multiplier × contracts). */
    secFeeRate: z.number().min(0).default(0.000008),
  })
  .strict();

export type OptionCommissionSchedule = z.infer<typeof optionCommissionSchedule>;

/** The commission rate per contract at a premium (per share). */
export function perContract(schedule: OptionCommissionSchedule, premium: number): number {
  let best: { fromPremium: number; perContract: number } | undefined;
  for (const tier of schedule.tiers) if (premium >= tier.fromPremium && (!best || tier.fromPremium > best.fromPremium)) best = tier;
  return best?.perContract ?? schedule.tiers[0]!.perContract;
}

/** One order's commission across its fills: call `fill` per fill, in order; it returns that fill's commission and fees. */
export class OptionOrderCost {
  /** The commission at the per-contract rates so far, before the minimum. */
  private rated = 0;
  private charged = 0;

  constructor(private readonly schedule: OptionCommissionSchedule) {}

  /** A fill of `contracts` (signed) at `premium` a share: what it costs, rounded to the cent as IB shows it. */
  fill(contracts: number, premium: number, multiplier: number): number {
    const s = this.schedule;
    const n = Math.abs(contracts);
    this.rated += n * perContract(s, premium);
    const total = Math.max(s.minPerOrder, this.rated);
    const commission = total - this.charged;
    this.charged = total;
    let fees = n * (s.orfPerContract + s.occPerContract);
    if (contracts < 0) fees += n * s.tafPerContractSold + n * premium * multiplier * s.secFeeRate;
    return Math.round((commission + fees) * 100) / 100;
  }
}
