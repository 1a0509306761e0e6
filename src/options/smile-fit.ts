/**
 * One expiry's smile fitted to quoted implied volatilities: an SSVI slice
 * (Gatheral & Jacquier 2014) in total implied variance w = σ²T at log
 * forward moneyness k = ln(K/F),
 *   w(k) = θ/2 · [1 + ρφk + √((φk + ρ)² + 1 − ρ²)],
 * θ the at-the-money total variance, ρ the skew, φ the curvature. A single
 * quote's IV is as good as its penny rounding (a tenth of a vol point and
 * more on a cheap 0DTE option); the slice through all of an expiry's
 * quotes averages that away and gives a volatility at every strike, quoted
 * or not.
 *
 * Least squares in w, each point weighted so that the residual counts as
 * the price error it makes (vega / (2σT), squared): θ has a closed form
 * for given (ρ, φ), and (ρ, ln φ) are found by a pattern search. Plain
 * numbers and typed arrays; nothing allocated per fit.
 */

export interface SmileSlice {
  theta: number;
  rho: number;
  phi: number;
  /** Root mean square of the price errors the fit leaves at the quotes, in dollars; NaN before a fit. */
  rmsPrice: number;
  /** Points the fit used. */
  points: number;
}

export const newSlice = (): SmileSlice => ({ theta: NaN, rho: NaN, phi: NaN, rmsPrice: NaN, points: 0 });

/** w(k) of a slice. */
export function sliceVariance(k: number, theta: number, rho: number, phi: number): number {
  const pk = phi * k;
  return 0.5 * theta * (1 + rho * pk + Math.sqrt((pk + rho) * (pk + rho) + 1 - rho * rho));
}

const RHO_LIMIT = 0.999;

export class SmileFit {
  count = 0;
  private readonly k: Float64Array;
  private readonly w: Float64Array;
  private readonly weight: Float64Array;

  constructor(readonly capacity: number) {
    this.k = new Float64Array(capacity);
    this.w = new Float64Array(capacity);
    this.weight = new Float64Array(capacity);
  }

  clear(): void {
    this.count = 0;
  }

  /**
   * A quote: log forward moneyness, its IV, years to expiry and its vega
   * (per volatility point); ignored unless all are finite and positive.
   */
  add(k: number, iv: number, years: number, vega: number): void {
    if (this.count >= this.capacity || !(iv > 0 && years > 0 && vega > 0) || !Number.isFinite(k + iv + years + vega)) return;
    const i = this.count++;
    this.k[i] = k;
    this.w[i] = iv * iv * years;
    // dσ = dw / (2σT); a price error is vega·dσ (vega per point × 100 per unit of σ).
    const perW = (vega * 100) / (2 * iv * years);
    this.weight[i] = perW * perW;
  }

  /** Fits the slice; false (and `out` untouched) with fewer than three quotes. */
  fit(out: SmileSlice): boolean {
    const n = this.count;
    if (n < 3) return false;
    let meanW = 0;
    for (let i = 0; i < n; i++) meanW += this.w[i]!;
    meanW /= n;
    let rho = -0.5;
    let logPhi = Math.log(1 / Math.sqrt(meanW));
    let best = this.error(rho, Math.exp(logPhi));
    let stepRho = 0.4;
    let stepPhi = 1.5;
    for (let iter = 0; iter < 400 && (stepRho > 1e-5 || stepPhi > 1e-5); iter++) {
      let moved = false;
      for (let d = 0; d < 4; d++) {
        const r = d === 0 ? rho + stepRho : d === 1 ? rho - stepRho : rho;
        const lp = d === 2 ? logPhi + stepPhi : d === 3 ? logPhi - stepPhi : logPhi;
        if (Math.abs(r) > RHO_LIMIT) continue;
        const e = this.error(r, Math.exp(lp));
        if (e < best) {
          best = e;
          rho = r;
          logPhi = lp;
          moved = true;
        }
      }
      if (!moved) {
        stepRho /= 2;
        stepPhi /= 2;
      }
    }
    const phi = Math.exp(logPhi);
    out.theta = this.thetaFor(rho, phi);
    out.rho = rho;
    out.phi = phi;
    out.points = n;
    // Each weighted squared residual is a squared price error.
    out.rmsPrice = Math.sqrt(best / n);
    return true;
  }

  /** The weighted least-squares θ for given (ρ, φ). */
  private thetaFor(rho: number, phi: number): number {
    let num = 0;
    let den = 0;
    for (let i = 0; i < this.count; i++) {
      const g = sliceVariance(this.k[i]!, 1, rho, phi);
      num += this.weight[i]! * g * this.w[i]!;
      den += this.weight[i]! * g * g;
    }
    return den > 0 ? num / den : NaN;
  }

  private error(rho: number, phi: number): number {
    const theta = this.thetaFor(rho, phi);
    if (!(theta > 0)) return Infinity;
    let e = 0;
    for (let i = 0; i < this.count; i++) {
      const d = sliceVariance(this.k[i]!, theta, rho, phi) - this.w[i]!;
      e += this.weight[i]! * d * d;
    }
    return e;
  }
}
