/**
 * The instruments keel follows, index = instrument id in every batch, book,
 * frame and prediction downstream. Provided by subscriptions (or by a
 * replay's recording) as the `instruments` service.
 */
export interface Universe {
  readonly symbols: readonly string[];
  /** Per instrument, whether keel keeps its book (a depth feed): the ones whose data age matters. */
  readonly booked: readonly boolean[];
  /**
   * Per instrument, when its depth was last asked of IB (monotonic ms,
   * updated in place; NaN: not asked): a book still being staged is not
   * stale yet. Absent when the data is not asked of anyone (a replay).
   */
  readonly depthAskedAt?: Float64Array;
}
