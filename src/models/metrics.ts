/** Held-out scores for regression models, shared by keel's trainers and model-building scripts. */

export interface RegressionMetrics {
  readonly rmse: number;
  readonly mae: number;
  /** 1 − SSres / SStot; when y is constant, 1 for a perfect prediction and 0 otherwise (as scikit-learn does). */
  readonly r2: number;
  /** Share of rows with y ≠ 0 where the prediction has y's sign (a prediction of 0 is a miss); NaN if every y is 0. */
  readonly directionalAccuracy: number;
  /** Pearson correlation; NaN when either side is constant. */
  readonly correlation: number;
}

export function regressionMetrics(pred: ArrayLike<number>, y: ArrayLike<number>): RegressionMetrics {
  const n = y.length;
  if (n === 0 || pred.length !== n) throw new Error(`metrics: ${pred.length} predictions for ${n} targets`);
  let predMean = 0;
  let yMean = 0;
  for (let i = 0; i < n; i++) {
    predMean += pred[i]!;
    yMean += y[i]!;
  }
  predMean /= n;
  yMean /= n;

  let squares = 0;
  let absolutes = 0;
  let yVariance = 0;
  let predVariance = 0;
  let covariance = 0;
  let moving = 0;
  let signsAgree = 0;
  for (let i = 0; i < n; i++) {
    const p = pred[i]!;
    const t = y[i]!;
    squares += (p - t) ** 2;
    absolutes += Math.abs(p - t);
    yVariance += (t - yMean) ** 2;
    predVariance += (p - predMean) ** 2;
    covariance += (p - predMean) * (t - yMean);
    if (t !== 0) {
      moving++;
      if (Math.sign(p) === Math.sign(t)) signsAgree++;
    }
  }
  return {
    rmse: Math.sqrt(squares / n),
    mae: absolutes / n,
    r2: yVariance > 0 ? 1 - squares / yVariance : squares === 0 ? 1 : 0,
    directionalAccuracy: moving > 0 ? signsAgree / moving : NaN,
    correlation: yVariance > 0 && predVariance > 0 ? covariance / Math.sqrt(yVariance * predVariance) : NaN,
  };
}

/**
 * The Diebold–Mariano statistic of loss differentials `d` (model A's loss
 * minus model B's, one per period, the first `count` of them): their mean
 * over its standard error, with a Newey–West (Bartlett) long-run variance
 * over `lag` periods, since forecasts whose horizons overlap have
 * correlated errors. Large and positive: A loses more than B. NaN with
 * fewer than two periods or no variance.
 */
export function dieboldMariano(d: ArrayLike<number>, count: number, lag: number): number {
  if (count < 2) return NaN;
  let mean = 0;
  for (let t = 0; t < count; t++) mean += d[t]!;
  mean /= count;
  const autocovariance = (k: number) => {
    let s = 0;
    for (let t = k; t < count; t++) s += (d[t]! - mean) * (d[t - k]! - mean);
    return s / count;
  };
  let variance = autocovariance(0);
  const L = Math.min(lag, count - 1);
  for (let k = 1; k <= L; k++) variance += 2 * (1 - k / (L + 1)) * autocovariance(k);
  if (!(variance > 0)) return NaN;
  return mean / Math.sqrt(variance / count);
}

/** The standard normal's quantile at `p` (0 < p < 1), by Acklam's rational approximation (relative error below 1.2e-9). */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`a probability between 0 and 1, got ${p}`);
  const a = [-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716, 2.506628277459239];
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572];
  const c = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const low = 0.02425;
  if (p < low) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  }
  if (p > 1 - low) return -normalQuantile(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) / (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1);
}
