/**
 * The option chain panel (protocol.ts ChainPanel) from the `options.chain`
 * state. The view is one object the chain re-prices in place every 250 ms:
 * everything is copied out here, NaN as null (JSON has no NaN), so what is
 * serialized later is this moment's chain, not a later one's.
 */
import type { ChainRow, OptionChainView } from '../options/chain-view.js';
import type { ChainExpiry, ChainPanel, ChainQuote, ChainStrike } from './protocol.js';

const finite = (x: number | undefined): number | null => (x !== undefined && Number.isFinite(x) ? x : null);

/** The smile is drawn this far beyond the band each side, as a share of the band's span: enough to show the wings' shape, not the fit's far extrapolation. */
const SMILE_MARGIN = 0.5;

function quote(row: ChainRow): ChainQuote {
  return {
    conId: row.conId,
    line: row.line,
    bid: finite(row.bid),
    ask: finite(row.ask),
    midIv: finite(row.midIv),
    ivReason: row.ivReason ?? null,
    iv: finite(row.keel.iv),
    delta: finite(row.keel.delta),
  };
}

/** The listed contracts' smile volatilities of one expiry between lo and hi, one per strike, ascending. */
function smileOf(view: OptionChainView, expiry: string, lo: number, hi: number): [number, number][] {
  const listed = view.listed;
  const e = listed ? listed.expiries.indexOf(expiry) : -1;
  if (!listed || e < 0) return [];
  const byStrike = new Map<number, number>();
  for (let i = 0; i < listed.count; i++) {
    const strike = listed.strike[i]!;
    const vol = listed.vol[i]!;
    // A call and a put of one strike share the smile's volatility: one point.
    if (listed.expiry[i] === e && strike >= lo && strike <= hi && Number.isFinite(vol) && !byStrike.has(strike)) byStrike.set(strike, vol);
  }
  return [...byStrike].sort((a, b) => a[0] - b[0]);
}

function expiryPanel(view: OptionChainView, expiry: string, rows: readonly ChainRow[]): ChainExpiry {
  const byStrike = new Map<number, { call: ChainQuote | null; put: ChainQuote | null }>();
  let years = NaN;
  for (const row of rows) {
    const at = byStrike.get(row.strike) ?? { call: null, put: null };
    if (row.right === 'C') at.call = quote(row);
    else at.put = quote(row);
    byStrike.set(row.strike, at);
    if (!Number.isFinite(years)) years = row.years;
  }
  const strikes: ChainStrike[] = [...byStrike].sort((a, b) => a[0] - b[0]).map(([strike, q]) => ({ strike, ...q }));
  const spot = view.spot;
  let atmStrike: number | null = null;
  if (Number.isFinite(spot)) for (const s of strikes) if (atmStrike === null || Math.abs(s.strike - spot) < Math.abs(atmStrike - spot)) atmStrike = s.strike;
  const lo = strikes[0]?.strike ?? NaN;
  const hi = strikes.at(-1)?.strike ?? NaN;
  const margin = (hi - lo) * SMILE_MARGIN;
  const features = view.features.expiries[expiry];
  const fit = view.smiles[expiry];
  return {
    expiry,
    years: finite(years),
    atmStrike,
    atmIv: finite(features?.atmIv),
    riskReversal25: finite(features?.riskReversal25),
    butterfly25: finite(features?.butterfly25),
    fitPoints: fit?.points ?? 0,
    fitRmsPrice: finite(fit?.rmsPrice),
    strikes,
    smile: fit && fit.points > 0 ? smileOf(view, expiry, lo - margin, hi + margin) : [],
  };
}

export function chainPanel(view: OptionChainView): ChainPanel {
  const byExpiry = new Map<string, ChainRow[]>();
  for (const row of view.rows) {
    const list = byExpiry.get(row.expiry) ?? [];
    list.push(row);
    byExpiry.set(row.expiry, list);
  }
  const net = view.features.net;
  return {
    underlying: view.underlying,
    phase: view.phase,
    spot: finite(view.spot),
    pricedAt: finite(view.pricedAt),
    quotedAt: finite(view.quotedAt),
    lines: { ...view.lines },
    expiries: [...byExpiry.keys()].sort().map((e) => expiryPanel(view, e, byExpiry.get(e)!)),
    net: { delta1Pct: finite(net.delta1Pct), gamma1Pct: finite(net.gamma1Pct), vega: finite(net.vega), theta: finite(net.theta) },
    maxDiff: { iv: finite(view.maxDiff.iv), price: finite(view.maxDiff.price) },
  };
}
