/**
 * The trading policy: from each instrument's prediction (the models'
 * forward return over the policy's horizon, bps), its regime and its spread
 * to a target position in shares. It only asks: the trader turns a target into orders and the risk
 * gate decides whether they go.
 *
 * Per instrument, with `side` the side the policy is on (the position's, or
 * that of an entry it asked for that has not filled yet):
 *
 *   flat     |prediction| > entryBps opens on the prediction's side, unless
 *            the spread is wider than maxSpreadBps (or unknown) or the
 *            regime's multiplier is 0
 *   on side  the prediction on the same side and |prediction| >= exitBps holds;
 *            on the other side beyond entryBps flips (only closes if the spread
 *            blocks the new entry); anything else closes
 *
 * Hysteresis is the gap between entryBps and exitBps: an entry needs a strong
 * prediction, holding only one that has not faded or turned. An entry
 * ordered but not yet filled counts as held, so a prediction dipping just
 * below entryBps does not cancel it; once the position moves some other way
 * (say the gate forced it flat), a fresh entry needs a fresh strong
 * prediction.
 *
 * Size is `shares` times the regime's multiplier (`regimes[label]`, 1 when
 * the label is not listed), rounded down to whole shares: never more than
 * the multiplier allows. A held position follows its regime's size: it
 * shrinks at once (after the minimum hold), grows only on a prediction
 * strong enough to open with a spread narrow enough to open into. A
 * multiplier of 0 closes.
 *
 * Minimum hold: after a position changes (as seen in `positions`; the first
 * sight of one counts as a change), the
 * policy does not ask to close, flip or shrink it for `minHoldMs`; until then
 * the target is the position itself. It may still ask to add to it. The gate
 * forcing a position down (reduce-only, a halt) is not the policy's and is
 * not held back.
 *
 * Bad data never moves a position: a prediction that is not a number, or an
 * unknown regime when regime multipliers are configured, leaves the target
 * at the current position (an unfilled entry is dropped). A position that is
 * not a number gives a NaN target, which means "no target, do nothing". A
 * spread that is not a number is treated as too wide: it blocks entries,
 * not exits.
 *
 * Batch API on typed arrays; nothing is allocated per call in steady state
 * (regime multipliers are rebuilt only when the label list changes). Each
 * target's reason is kept as a code and figures, and put into words only
 * when `reason()` asks.
 */
import { z } from 'zod';
import { horizonSetting } from '../models/horizon.js';

export const policySettings = z
  .object({
    /** Which horizon's predictions it reads ('10s', '5m', ...): one the predictor serves. */
    horizon: horizonSetting.prefault('10s'),
    /** |prediction| above this, bps, opens a position or flips one. */
    entryBps: z.number().positive().default(1.0),
    /** |prediction| below this, bps, or on the other side, closes. Below entryBps: the gap is the hysteresis. */
    exitBps: z.number().min(0).default(0.2),
    /** Position size per instrument, shares, before the regime's multiplier. */
    shares: z.number().int().positive().default(100),
    /** No entry while the spread is wider than this, bps. */
    maxSpreadBps: z.number().positive().default(5),
    /** A position is held at least this long after it last changed before the policy closes, flips or shrinks it. */
    minHoldMs: z.number().int().min(0).default(10_000),
    /** Size multiplier per regime label, e.g. {volatile: 0.5}; a label not listed is 1, 0 is flat in that regime. */
    regimes: z.record(z.string(), z.number().min(0).max(1)).default({}),
  })
  .strict()
  .refine((s) => s.exitBps <= s.entryBps, { message: 'exitBps must not be above entryBps (the gap between them is the hysteresis)', path: ['exitBps'] });

export type PolicySettings = z.infer<typeof policySettings>;

export interface PolicyInput {
  /** Monotonic ms. */
  readonly now: number;
  /** Predicted forward return over the policy's horizon per instrument, bps; NaN when none. */
  readonly predictions: Float64Array;
  /** Regime state per instrument (-1 when none), or undefined when there is no regime frame. */
  readonly regime: Int32Array | undefined;
  readonly regimeLabels: readonly string[];
  /** Spread per instrument, bps; NaN when unknown. */
  readonly spreadBps: Float64Array;
  /** Current position per instrument, shares, signed. */
  readonly positions: Float64Array;
}

/** Why a target is what it is; put into words by `reason()`. */
const WHY = {
  none: 0,
  positionUnknown: 1,
  noPrediction: 2,
  regimeUnknown: 3,
  weak: 4,
  regimeFlat: 5,
  wideSpread: 6,
  open: 7,
  add: 8,
  hold: 9,
  shrink: 10,
  faded: 11,
  against: 12,
  flip: 13,
  flipBlockedBySpread: 14,
  minHold: 15,
} as const;
type Why = (typeof WHY)[keyof typeof WHY];

const bps = (x: number) => `${x > 0 ? '+' : ''}${x.toFixed(2)} bps`;
const sideName = (x: number) => (x > 0 ? 'long' : 'short');

export class TradingPolicy {
  readonly settings: PolicySettings;
  readonly symbols: readonly string[];
  /** The last target asked per instrument (NaN before any). */
  readonly targets: Float64Array;
  private readonly targetAt: Float64Array;
  /** The position last seen, and when it last changed (monotonic ms). */
  private readonly seen: Float64Array;
  private readonly changedAt: Float64Array;
  /** The reason of each target: a code, what min hold held back, and the figures it names. */
  private readonly why: Uint8Array;
  private readonly blocked: Uint8Array;
  private readonly whyPrediction: Float64Array;
  private readonly whySpread: Float64Array;
  private readonly whyPosition: Float64Array;
  private readonly whyHeldMs: Float64Array;
  private readonly whyMultiplier: Float64Array;
  private readonly whyRegime: Int32Array;
  private whyLabels: readonly string[] = [];
  /** Size multiplier per regime state, for `labelsSeen`. */
  private multipliers = new Float64Array(0);
  private labelsSeen: readonly string[] | undefined;
  private readonly regimesConfigured: boolean;

  constructor(settings: PolicySettings, symbols: readonly string[]) {
    this.settings = settings;
    this.symbols = symbols;
    const n = symbols.length;
    this.targets = new Float64Array(n).fill(NaN);
    this.targetAt = new Float64Array(n).fill(-Infinity);
    this.seen = new Float64Array(n).fill(NaN);
    this.changedAt = new Float64Array(n).fill(-Infinity);
    this.why = new Uint8Array(n);
    this.blocked = new Uint8Array(n);
    this.whyPrediction = new Float64Array(n).fill(NaN);
    this.whySpread = new Float64Array(n).fill(NaN);
    this.whyPosition = new Float64Array(n).fill(NaN);
    this.whyHeldMs = new Float64Array(n);
    this.whyMultiplier = new Float64Array(n).fill(1);
    this.whyRegime = new Int32Array(n).fill(-1);
    this.regimesConfigured = Object.keys(settings.regimes).length > 0;
  }

  /**
   * Writes the target position of every instrument into `targets` (shares,
   * signed; NaN: no target, do nothing). Returns how many targets differ
   * from the last call's.
   */
  decide(input: PolicyInput, targets: Float64Array): number {
    const n = this.symbols.length;
    const { now, predictions, regime, spreadBps, positions } = input;
    if (predictions.length < n || spreadBps.length < n || positions.length < n || targets.length < n || (regime !== undefined && regime.length < n)) {
      throw new RangeError(`the policy needs ${n} instruments in every array`);
    }
    if (this.regimesConfigured && input.regimeLabels !== this.labelsSeen) this.learnLabels(input.regimeLabels);
    const { entryBps, exitBps, shares, maxSpreadBps, minHoldMs } = this.settings;
    let changed = 0;
    for (let i = 0; i < n; i++) {
      const position = positions[i]!;
      const prediction = predictions[i]!;
      const spread = spreadBps[i]!;
      this.whyPrediction[i] = prediction;
      this.whySpread[i] = spread;
      this.whyPosition[i] = position;
      this.whyMultiplier[i] = 1;
      this.whyRegime[i] = -1;
      this.blocked[i] = WHY.none;
      let target: number;
      let why: Why;
      if (!Number.isFinite(position)) {
        target = NaN;
        why = WHY.positionUnknown;
      } else {
        if (position !== this.seen[i]) {
          this.seen[i] = position;
          this.changedAt[i] = now;
        }
        let multiplier = 1;
        if (this.regimesConfigured) {
          const state = regime === undefined ? -1 : regime[i]!;
          multiplier = state >= 0 && state < this.multipliers.length ? this.multipliers[state]! : NaN;
          this.whyRegime[i] = state;
          this.whyMultiplier[i] = multiplier;
        }
        if (!Number.isFinite(prediction)) {
          target = position;
          why = WHY.noPrediction;
        } else if (multiplier !== multiplier) {
          target = position;
          why = WHY.regimeUnknown;
        } else {
          const size = Math.floor(shares * multiplier + 1e-9);
          const last = this.targets[i]!;
          const lastSide = last === last ? Math.sign(last) : 0;
          // An entry asked for and not filled yet: the position is flat and has not moved since.
          const pending = position === 0 && lastSide !== 0 && this.changedAt[i]! <= this.targetAt[i]!;
          const side = position !== 0 ? Math.sign(position) : pending ? lastSide : 0;
          const strong = Math.abs(prediction) > entryBps;
          const narrow = spread <= maxSpreadBps;
          const predicted = Math.sign(prediction);
          if (side === 0) {
            why = !strong ? WHY.weak : size === 0 ? WHY.regimeFlat : !narrow ? WHY.wideSpread : WHY.open;
            target = why === WHY.open ? predicted * size : 0;
          } else if (predicted === side && Math.abs(prediction) >= exitBps) {
            // What the policy has on this side: the unfilled part of its last target counts.
            const have = lastSide === side ? Math.max(Math.abs(last), Math.abs(position)) : Math.abs(position);
            why = size === 0 ? WHY.regimeFlat : size < have ? WHY.shrink : size > have && strong && narrow ? WHY.add : WHY.hold;
            target = why === WHY.regimeFlat ? 0 : why === WHY.hold ? side * have : side * size;
          } else if (predicted === -side && strong) {
            why = size === 0 ? WHY.regimeFlat : !narrow ? WHY.flipBlockedBySpread : WHY.flip;
            target = why === WHY.flip ? predicted * size : 0;
          } else {
            why = predicted === side ? WHY.faded : WHY.against;
            target = 0;
          }
          // Minimum hold: a position is not closed, flipped or shrunk soon after it changed.
          const heldMs = now - this.changedAt[i]!;
          this.whyHeldMs[i] = heldMs;
          if (position !== 0 && heldMs < minHoldMs && (Math.sign(target) !== Math.sign(position) || Math.abs(target) < Math.abs(position))) {
            this.blocked[i] = why;
            target = position;
            why = WHY.minHold;
          }
        }
      }
      // Never -0: a target is a share count.
      if (target === 0) target = 0;
      const last = this.targets[i]!;
      if (target !== last && !(target !== target && last !== last)) {
        this.targets[i] = target;
        this.targetAt[i] = now;
        changed++;
      }
      this.why[i] = why;
      targets[i] = target;
    }
    return changed;
  }

  /** Why the last target of an instrument is what it is, in words (for the order's `reason`). */
  reason(instrument: number): string {
    const i = instrument;
    const target = this.targets[i];
    if (target === undefined) return `no instrument ${i}`;
    const { entryBps, exitBps, maxSpreadBps, minHoldMs } = this.settings;
    const prediction = this.whyPrediction[i]!;
    const position = this.whyPosition[i]!;
    const p = bps(prediction);
    const spread = this.whySpread[i]!;
    const spreadWords = spread === spread ? `spread ${spread.toFixed(2)} bps > ${maxSpreadBps}` : 'spread unknown';
    const state = this.whyRegime[i]!;
    const multiplier = this.whyMultiplier[i]!;
    const regime = state >= 0 ? `regime ${this.whyLabels[state] ?? state} x${multiplier}` : '';
    const inRegime = regime && multiplier !== 1 ? ` (${regime})` : '';
    const why = this.why[i] as Why;
    switch (why) {
      case WHY.none:
        return 'no decision yet';
      case WHY.positionUnknown:
        return `position unknown (${position}): no target`;
      case WHY.noPrediction:
        return `no prediction: keep ${position}`;
      case WHY.regimeUnknown:
        return `regime unknown: keep ${position}`;
      case WHY.weak:
        return `flat: prediction ${p} within entry ${entryBps}`;
      case WHY.regimeFlat:
        return `flat in ${regime}`;
      case WHY.wideSpread:
        return `flat: prediction ${p} beyond entry ${entryBps}, but ${spreadWords}`;
      case WHY.open:
        return `open ${sideName(target)} ${Math.abs(target)}: prediction ${p} beyond entry ${entryBps}${inRegime}`;
      case WHY.add:
        return `add to ${sideName(target)} ${Math.abs(target)}: prediction ${p} beyond entry ${entryBps}${inRegime}`;
      case WHY.hold:
        return `hold ${sideName(target)} ${Math.abs(target)}: prediction ${p} not below exit ${exitBps}`;
      case WHY.shrink:
        return `shrink ${sideName(target)} to ${Math.abs(target)}: ${regime}`;
      case WHY.faded:
        return `${position === 0 ? 'drop the entry' : 'close'}: prediction ${p} below exit ${exitBps}`;
      case WHY.against:
        return `${position === 0 ? 'drop the entry' : 'close'}: prediction ${p} against it`;
      case WHY.flip:
        return `flip to ${sideName(target)} ${Math.abs(target)}: prediction ${p} beyond entry ${entryBps}${inRegime}`;
      case WHY.flipBlockedBySpread:
        return `close: prediction ${p} beyond entry ${entryBps} the other way, but ${spreadWords} blocks the flip`;
      case WHY.minHold: {
        const wanted = this.blocked[i] === WHY.flip || this.blocked[i] === WHY.flipBlockedBySpread ? 'flip' : this.blocked[i] === WHY.shrink ? 'shrink' : 'close';
        return `keep ${sideName(position)} ${Math.abs(position)}: would ${wanted}, but held ${(Math.floor(this.whyHeldMs[i]! / 100) / 10).toFixed(1)} s < min hold ${minHoldMs / 1000} s`;
      }
    }
  }

  private learnLabels(labels: readonly string[]): void {
    this.labelsSeen = labels;
    this.whyLabels = labels;
    this.multipliers = new Float64Array(labels.length);
    for (let s = 0; s < labels.length; s++) this.multipliers[s] = this.settings.regimes[labels[s]!] ?? 1;
  }
}
