/**
 * Options: a 0–3 DTE SPY-like chain priced on one core. Each pass moves the
 * spot a little and re-prices the whole chain:
 *
 *   greeks      ChainPricing.greeks: BSM price and four greeks per contract, typed arrays
 *   objects     the same through bsmGreeks, a fresh result object per contract
 *   iv          ChainPricing.impliedVols: Let's Be Rational per contract
 *   newton      the guarded Newton cross-check on the same quotes
 *
 * for a 1,000-contract chain (contracts per second), then the target: a
 * 2,400-contract chain re-priced (greeks) in under 1 ms, and with IVs too.
 * The variants alternate within each run; the median run is reported.
 */
import { bsmGreeks, bsmPrice, type Greeks, type Right } from '../src/options/bsm.js';
import { ChainPricing } from '../src/options/chain-pricing.js';
import { impliedVolNewton } from '../src/options/implied-vol.js';
import { fmt, median, type BenchOptions } from './stats.js';

const SPOT = 580;
const RATE = 0.045;
const DIVIDEND = 0.012;
/** Wall time per variant per run, ms. */
const BUDGET_MS = 300;

/** Four expiries (0.25 to 3.25 days), strikes in $1 steps around the money, calls and puts, a skewed smile. */
function chain(contracts: number): ChainPricing {
  const c = new ChainPricing(contracts);
  const perExpiry = Math.ceil(contracts / 8);
  for (let e = 0; e < 4 && c.count < contracts; e++) {
    for (let k = 0; k < perExpiry && c.count < contracts; k++) {
      for (const right of [1, -1] as Right[]) {
        if (c.count >= contracts) break;
        const strike = SPOT - perExpiry / 2 + k;
        const m = Math.log(strike / SPOT);
        const i = c.add(right, strike, (e + 0.25) / 365, 0.14 - 0.6 * m + 8 * m * m);
        c.quote[i] = bsmPrice(right, SPOT, strike, c.years[i]!, RATE, DIVIDEND, c.vol[i]!);
      }
    }
  }
  return c;
}

type Variant = 'greeks' | 'objects' | 'iv' | 'newton';

/** Contracts per second for a variant, and ms per whole-chain pass. */
function measure(variant: Variant, c: ChainPricing): { perSecond: number; msPerPass: number } {
  let sink = 0;
  const pass = (p: number) => {
    const spot = SPOT + (p % 11) * 0.01;
    if (variant === 'greeks') {
      c.greeks(spot, RATE, DIVIDEND);
      sink += c.delta[0]!;
    } else if (variant === 'iv') {
      c.impliedVols(SPOT, RATE, DIVIDEND);
      sink += c.iv[0]!;
    } else if (variant === 'objects') {
      const out: Greeks[] = [];
      for (let i = 0; i < c.count; i++) {
        out.push(bsmGreeks(c.right[i] as Right, spot, c.strike[i]!, c.years[i]!, RATE, DIVIDEND, c.vol[i]!, { price: 0, delta: 0, gamma: 0, vega: 0, theta: 0 }));
      }
      sink += out[0]!.delta;
    } else {
      for (let i = 0; i < c.count; i++) sink += impliedVolNewton(c.right[i] as Right, c.quote[i]!, SPOT, c.strike[i]!, c.years[i]!, RATE, DIVIDEND);
    }
  };
  let passes = 0;
  const started = performance.now();
  while (performance.now() - started < BUDGET_MS) pass(passes++);
  const ms = performance.now() - started;
  if (Number.isNaN(sink)) throw new Error(`${variant}: a NaN reached the sink: the benchmark is not measuring prices`);
  return { perSecond: (passes * c.count) / (ms / 1000), msPerPass: ms / passes };
}

export async function optionsBench({ runs, progress }: BenchOptions) {
  const small = chain(1_000);
  const full = chain(2_400);
  const variants: Variant[] = ['greeks', 'objects', 'iv', 'newton'];
  const rates: Record<Variant, number[]> = { greeks: [], objects: [], iv: [], newton: [] };
  const fullGreeks: number[] = [];
  const fullBoth: number[] = [];
  for (const v of variants) measure(v, small); // warm-up
  for (let run = 1; run <= runs; run++) {
    for (const v of variants) {
      const r = measure(v, small);
      rates[v].push(r.perSecond);
      progress(`options: run ${run}/${runs} ${v}: ${fmt(r.perSecond)} contracts/s`);
    }
    const g = measure('greeks', full).msPerPass;
    const iv = measure('iv', full).msPerPass;
    fullGreeks.push(g);
    fullBoth.push(g + iv);
    progress(`options: run ${run}/${runs} 2,400 contracts: greeks ${g.toFixed(3)} ms, with IVs ${(g + iv).toFixed(3)} ms`);
  }
  const m = Object.fromEntries(variants.map((v) => [v, median(rates[v])])) as Record<Variant, number>;
  const greeksMs = median(fullGreeks);
  const bothMs = median(fullBoth);
  const rows = [{ contracts: 1_000, greeksPerSecond: m.greeks, objectsPerSecond: m.objects, ivPerSecond: m.iv, newtonPerSecond: m.newton, chain2400GreeksMs: greeksMs, chain2400WithIvMs: bothMs }];
  const yes = (ms: number) => (ms < 1 ? 'yes' : 'no');
  const table = [
    '| 1,000-contract chain, one core | keel (typed arrays) | alternative | keel / alternative |',
    '|---|---|---|---|',
    `| greeks (price, delta, gamma, vega, theta) | ${fmt(m.greeks / 1e6, 2)} M contracts/s | ${fmt(m.objects / 1e6, 2)} M/s (an object per contract) | ${(m.greeks / m.objects).toFixed(2)}x |`,
    `| implied volatility | ${fmt(m.iv / 1e6, 2)} M contracts/s (Let's Be Rational) | ${fmt(m.newton / 1e6, 2)} M/s (guarded Newton) | ${(m.iv / m.newton).toFixed(2)}x |`,
    '',
    '| 2,400-contract chain, one core | ms per re-pricing | under 1 ms (target) |',
    '|---|---|---|',
    `| greeks | ${greeksMs.toFixed(3)} | ${yes(greeksMs)} |`,
    `| greeks and IVs | ${bothMs.toFixed(3)} | ${yes(bothMs)} |`,
  ].join('\n');
  return { rows, table };
}
