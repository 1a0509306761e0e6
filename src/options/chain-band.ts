/**
 * The band of an option chain keel streams: which contracts get a
 * market-data line, and when the band moves with the underlying. Pure
 * logic on numbers, time passed in.
 *
 * A band is a range of expiries (by position in the listing: `0..1` is the
 * two nearest), a number of strikes each side of the at-the-money strike
 * (by position in each expiry's own strike list, so $1 and $5 spacings are
 * both `atm ± 10`), and the rights. It is centred per expiry on the strike
 * nearest the underlying, and moved only when the underlying leaves an
 * inner zone around that strike (`hysteresis` strike gaps; above 0.5, so a
 * price sitting between two strikes does not flip the band back and forth)
 * and not sooner than `cooldownMs` after the last move (NautilusTrader: 0.6
 * gaps and 5 s). The band never holds more contracts than the allowance it
 * is given: strikes nearest the money are kept first, the front expiry
 * before the next, calls and puts together.
 */

export type OptionRightCode = 'C' | 'P';

/** One expiry of the listing: its date and its own strikes, ascending. */
export interface ListedStrikes {
  /** YYYYMMDD. */
  readonly expiry: string;
  readonly strikes: readonly number[];
}

export interface BandSpec {
  /** Positions in the listing's expiries (nearest first), inclusive. */
  readonly expiries: { readonly from: number; readonly to: number };
  /** Strikes each side of the at-the-money one. */
  readonly strikesEachSide: number;
  readonly rights: readonly OptionRightCode[];
  /** Strike gaps the underlying may move from the centre strike before the band follows (≥ 0.5). */
  readonly hysteresis: number;
  readonly cooldownMs: number;
}

export interface BandContract {
  readonly expiry: string;
  readonly strike: number;
  readonly right: OptionRightCode;
}

/** `0..1` (or `2`) as an inclusive range of positions. */
export function parseExpiryRange(text: string): { from: number; to: number } {
  const m = /^\s*(\d+)\s*(?:\.\.\s*(\d+)\s*)?$/.exec(text);
  if (!m) throw new Error(`expiries must be a position or a range such as 0..1, got '${text}'`);
  const from = Number(m[1]);
  const to = m[2] === undefined ? from : Number(m[2]);
  if (to < from) throw new Error(`expiries ${text}: the range runs backwards`);
  return { from, to };
}

/** `atm ± 10` (also `atm +- 10`, `atm +/- 10`) or a plain number as strikes each side. */
export function parseStrikeBand(text: string | number): number {
  if (typeof text === 'number') return text;
  const m = /^\s*atm\s*(?:±|\+-|\+\/-)\s*(\d+)\s*$/i.exec(text);
  if (!m) throw new Error(`strikes must read 'atm ± N' (N strikes each side of the money), got '${text}'`);
  return Number(m[1]);
}

/** Index of the strike nearest `spot` (the lower on a tie); -1 for an empty list. */
export function nearestStrike(strikes: readonly number[], spot: number): number {
  if (strikes.length === 0) return -1;
  let lo = 0;
  let hi = strikes.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (strikes[mid]! < spot) lo = mid + 1;
    else hi = mid;
  }
  // lo: the first strike ≥ spot (or the last).
  if (lo > 0 && spot - strikes[lo - 1]! <= strikes[lo]! - spot) return lo - 1;
  return lo;
}

/** The spacing of strikes at index i: towards the side the price is on, else the nearer neighbour's. */
export function strikeGap(strikes: readonly number[], i: number, spot: number): number {
  const up = i + 1 < strikes.length ? strikes[i + 1]! - strikes[i]! : NaN;
  const down = i > 0 ? strikes[i]! - strikes[i - 1]! : NaN;
  if (spot >= strikes[i]!) return Number.isNaN(up) ? down : up;
  return Number.isNaN(down) ? up : down;
}

/** Why the band moved, or did not. */
export type BandDecision = 'centred' | 'recentred' | 'inside' | 'cooling' | 'no-price';

export class ChainBand {
  /** The contracts to stream, nearest the money first. */
  contracts: readonly BandContract[] = [];
  /** Per chosen expiry, the strike the band is centred on. */
  readonly centres = new Map<string, number>();
  /** Monotonic time of the last centring (NaN: never). */
  centredAt = NaN;
  recentres = 0;
  private listed: readonly ListedStrikes[] = [];
  private allowance = 0;

  constructor(readonly spec: BandSpec) {
    if (!(spec.hysteresis >= 0.5)) throw new RangeError(`hysteresis must be at least 0.5 strike gaps, got ${spec.hysteresis}`);
  }

  /** The expiries the band spans, nearest first. */
  get expiries(): readonly ListedStrikes[] {
    return this.listed;
  }

  /**
   * A new listing (the day's chain) or allowance: the band is chosen again
   * around `spot`, whatever the cooldown. Expiries in `listed` must be
   * ascending; those out of the spec's range are ignored.
   */
  list(listed: readonly ListedStrikes[], allowance: number, spot: number, now: number): BandDecision {
    this.listed = listed.slice(this.spec.expiries.from, this.spec.expiries.to + 1).filter((e) => e.strikes.length > 0);
    this.allowance = Math.max(0, Math.floor(allowance));
    this.centres.clear();
    this.contracts = [];
    return this.update(spot, now);
  }

  /** The underlying moved: re-centre when it left the inner zone and the cooldown is over. */
  update(spot: number, now: number): BandDecision {
    if (!(spot > 0)) return 'no-price';
    const first = this.centres.size === 0;
    if (!first) {
      if (!this.outside(spot)) return 'inside';
      if (now - this.centredAt < this.spec.cooldownMs) return 'cooling';
    }
    for (const e of this.listed) this.centres.set(e.expiry, e.strikes[nearestStrike(e.strikes, spot)]!);
    this.contracts = this.choose();
    this.centredAt = now;
    if (!first) this.recentres++;
    return first ? 'centred' : 'recentred';
  }

  /** True when the underlying is beyond the hysteresis of some expiry's centre strike. */
  outside(spot: number): boolean {
    for (const e of this.listed) {
      const centre = this.centres.get(e.expiry);
      if (centre === undefined) return true;
      const i = nearestStrike(e.strikes, centre);
      const gap = strikeGap(e.strikes, i, spot);
      const nearest = e.strikes[nearestStrike(e.strikes, spot)]!;
      // Past the zone, and a nearer strike exists to move to (at the end of the list there is none).
      if (Math.abs(spot - centre) > this.spec.hysteresis * gap && nearest !== centre) return true;
    }
    return false;
  }

  /** Rings of strikes outward from each centre, front expiry first, within the allowance. */
  private choose(): BandContract[] {
    const out: BandContract[] = [];
    const rights = this.spec.rights;
    const centreIndex = this.listed.map((e) => nearestStrike(e.strikes, this.centres.get(e.expiry)!));
    for (let d = 0; d <= this.spec.strikesEachSide; d++) {
      for (let x = 0; x < this.listed.length; x++) {
        const e = this.listed[x]!;
        const c = centreIndex[x]!;
        const at = d === 0 ? [c] : [c - d, c + d];
        for (const i of at) {
          if (i < 0 || i >= e.strikes.length) continue;
          if (out.length + rights.length > this.allowance) return out;
          for (const right of rights) out.push({ expiry: e.expiry, strike: e.strikes[i]!, right });
        }
      }
    }
    return out;
  }
}
