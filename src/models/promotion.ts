/**
 * When a challenger takes a slot, and when a new champion gives it back:
 * pure rules over the monitor's paired scores (monitor.ts).
 *
 *   promote   after at least `minFrames` frames of predictions resolved on
 *             the same returns, the challenger's squared errors are lower
 *             than the champion's by a one-sided Diebold–Mariano test at
 *             `confidence`
 *   reject    the challenger is worse at that confidence, or `maxFrames`
 *             passed without it proving better
 *   roll back a promoted model that goes beyond its bound (worse than the
 *             zero forecast at the monitor's confidence) within
 *             `probationFrames` of its promotion gives the slot back to
 *             the model it replaced
 */
import type { PairedErrorStats } from './drift.js';
import { normalQuantile } from './metrics.js';

export interface PromotionSettings {
  readonly minFrames: number;
  readonly maxFrames: number;
  readonly confidence: number;
  readonly probationFrames: number;
}

export const DEFAULT_PROMOTION: PromotionSettings = { minFrames: 600, maxFrames: 3_600, confidence: 0.99, probationFrames: 3_600 };

export interface Verdict {
  readonly kind: 'wait' | 'promote' | 'reject';
  /** Why, with the figures. */
  readonly reason: string;
}

/** The verdict on a challenger that has shadowed for `framesShadowed` frames, `paired` its scores against the champion. */
export function judgeChallenger(paired: PairedErrorStats, framesShadowed: number, settings: PromotionSettings): Verdict {
  const z = normalQuantile(settings.confidence);
  const [champion, challenger] = paired.rmse;
  const figures = `RMSE ${challenger.toFixed(3)} against the champion's ${champion.toFixed(3)} on ${paired.n} predictions over ${paired.frames} frames, Diebold-Mariano ${paired.dm.toFixed(2)}`;
  const confidence = `${Math.round(settings.confidence * 100)} %`;
  if (paired.frames >= settings.minFrames && paired.dm < -z) return { kind: 'promote', reason: `better with ${confidence} confidence: ${figures}` };
  if (paired.frames >= settings.minFrames && paired.dm > z) return { kind: 'reject', reason: `worse with ${confidence} confidence: ${figures}` };
  if (framesShadowed >= settings.maxFrames) return { kind: 'reject', reason: `not better with ${confidence} confidence after ${framesShadowed} frames: ${figures}` };
  return { kind: 'wait', reason: figures };
}
