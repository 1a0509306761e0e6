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
import type { ModelRegistry } from './registry.js';

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

/** What the referee asks of the registry for a slot, and why. */
export interface RefereeCall {
  readonly slot: string;
  readonly action: 'promote' | 'reject' | 'rollback';
  /** The model the call is about: the challenger promoted or rejected, the champion rolled back. */
  readonly model: string;
  readonly reason: string;
}

/** The monitor's answers the referee needs. */
export interface RefereeView {
  challenger(slot: string): { readonly challenger: string; readonly paired: PairedErrorStats } | undefined;
  beyondBound(id: string): boolean;
  liveError(id: string): { readonly rmse: number; readonly zeroRmse: number; readonly n: number; readonly dmVsZero: number } | undefined;
}

/**
 * Follows each slot through its registry events (a shadow starts its
 * contest, a promotion its probation; an operator's shadow, promote or
 * veto counts the same) and, frame by frame, says what the rules above
 * decide. A challenger is judged once per `minFrames` frames of its shadow
 * only, so a test repeated every frame cannot promote a coin flip. Frames
 * are what the monitor watched: steps may skip some (a monitor behind), and
 * a judgement falls on the first step at or past its frame.
 */
export class Referee {
  /** Per slot: the frame its challenger started shadowing, and the frame of its next judgement. */
  private readonly contests = new Map<string, { readonly since: number; next: number }>();
  /** Per slot: the promoted model on probation, and since when. */
  private readonly probation = new Map<string, { readonly model: string; readonly since: number }>();
  /** The frame of the last step: registry events between two steps count from it. */
  private frame = 0;

  constructor(readonly settings: PromotionSettings = DEFAULT_PROMOTION) {}

  /** A registry event, since the last step. */
  onSwap(event: { readonly slot: string; readonly action: string; readonly to?: string }): void {
    const { slot } = event;
    const frame = this.frame;
    if (event.action === 'shadow') this.contests.set(slot, { since: frame, next: frame + this.settings.minFrames });
    if (event.action === 'promote' && event.to) this.probation.set(slot, { model: event.to, since: frame });
    if (event.action === 'promote' || event.action === 'unshadow') this.contests.delete(slot);
    // A swap or a rollback ends what was on probation: the slot holds another model now.
    if (event.action === 'swap' || event.action === 'rollback') this.probation.delete(slot);
  }

  /** What to do at frame `frame`. */
  step(frame: number, view: RefereeView): RefereeCall[] {
    this.frame = frame;
    const calls: RefereeCall[] = [];
    for (const [slot, contest] of this.contests) {
      if (frame < contest.next) continue;
      const shadowed = frame - contest.since;
      while (contest.next <= frame) contest.next += this.settings.minFrames;
      const score = view.challenger(slot);
      if (!score) continue;
      const verdict = judgeChallenger(score.paired, shadowed, this.settings);
      if (verdict.kind !== 'wait') calls.push({ slot, action: verdict.kind, model: score.challenger, reason: verdict.reason });
    }
    for (const [slot, p] of this.probation) {
      if (frame - p.since > this.settings.probationFrames) {
        this.probation.delete(slot);
        continue;
      }
      if (!view.beyondBound(p.model)) continue;
      const e = view.liveError(p.model)!;
      calls.push({
        slot,
        action: 'rollback',
        model: p.model,
        reason: `${p.model} went beyond its bound ${frame - p.since} frames after its promotion: live RMSE ${e.rmse.toFixed(3)} against the zero forecast's ${e.zeroRmse.toFixed(3)} over ${e.n} predictions, Diebold-Mariano ${e.dmVsZero.toFixed(2)}`,
      });
    }
    return calls;
  }
}

/** Carries a referee's call out on the registry. */
export function carryOut(call: RefereeCall, registry: Pick<ModelRegistry, 'promote' | 'endShadow' | 'rollback'>): void {
  if (call.action === 'promote') registry.promote(call.slot);
  else if (call.action === 'reject') registry.endShadow(call.slot, call.reason);
  else registry.rollback(call.slot);
}
