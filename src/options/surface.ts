/**
 * The volatility surface beyond the quoted expiries: an SSVI slice for any
 * time to expiry from the slices fitted to quotes (smile-fit.ts), so every
 * listed contract has a volatility, streamed or not.
 *
 * In the square-root SSVI form φ = η/√θ. Between two fitted expiries θ
 * (ATM total variance), ρ and η = φ√θ are linear in T; before the first
 * and after the last, the nearest fit's ATM volatility holds (θ in
 * proportion to T) with its ρ and η. θ that grows with T and η, ρ held or
 * interpolated keep the surface free of calendar arbitrage where the fits
 * are (Gatheral & Jacquier 2014). What it says between and beyond the
 * quotes is a model, not a market: no quote checks it.
 */
import type { SmileSlice } from './smile-fit.js';

/** Fitted slices, nearest expiry first; rows [0, count) hold slices with points > 0. */
export class FittedSlices {
  count = 0;
  readonly years: Float64Array;
  readonly theta: Float64Array;
  readonly rho: Float64Array;
  readonly eta: Float64Array;

  constructor(capacity: number) {
    this.years = new Float64Array(capacity);
    this.theta = new Float64Array(capacity);
    this.rho = new Float64Array(capacity);
    this.eta = new Float64Array(capacity);
  }

  /** A fitted slice at `years`, added in increasing order of years; one without points, or not after the last, is left out. */
  add(years: number, slice: SmileSlice): void {
    if (slice.points <= 0 || !(years > 0) || !(slice.theta > 0) || this.count >= this.years.length) return;
    if (this.count > 0 && years <= this.years[this.count - 1]!) return;
    const i = this.count++;
    this.years[i] = years;
    this.theta[i] = slice.theta;
    this.rho[i] = slice.rho;
    this.eta[i] = slice.phi * Math.sqrt(slice.theta);
  }
}

/** The surface's θ, ρ, φ at `years` (> 0) into `out`; false (and NaN) when nothing is fitted. */
export function surfaceSlice(fitted: FittedSlices, years: number, out: { theta: number; rho: number; phi: number }): boolean {
  const n = fitted.count;
  if (n === 0 || !(years > 0)) {
    out.theta = out.rho = out.phi = NaN;
    return false;
  }
  const { years: t, theta, rho, eta } = fitted;
  let th: number;
  let r: number;
  let e: number;
  if (years <= t[0]!) {
    th = (theta[0]! * years) / t[0]!;
    r = rho[0]!;
    e = eta[0]!;
  } else if (years >= t[n - 1]!) {
    th = (theta[n - 1]! * years) / t[n - 1]!;
    r = rho[n - 1]!;
    e = eta[n - 1]!;
  } else {
    let j = 1;
    while (t[j]! < years) j++;
    const w = (years - t[j - 1]!) / (t[j]! - t[j - 1]!);
    th = theta[j - 1]! + w * (theta[j]! - theta[j - 1]!);
    r = rho[j - 1]! + w * (rho[j]! - rho[j - 1]!);
    e = eta[j - 1]! + w * (eta[j]! - eta[j - 1]!);
  }
  out.theta = th;
  out.rho = r;
  out.phi = e / Math.sqrt(th);
  return true;
}
