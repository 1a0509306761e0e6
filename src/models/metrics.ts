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
