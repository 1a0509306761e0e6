/**
 * The regime of every instrument of the universe, by the online Statistical
 * Jump Model: one O(K) update per warm instrument per features frame, no
 * look-ahead, on typed arrays. The regime actor's data plane.
 *
 * State 0 is the calm regime (the model's states are sorted by its stated
 * rule when it is fitted); -1 means no regime yet (not warm since the model
 * last saw it, or a non-finite input).
 *
 * The published regime is the model's state held steady: a change needs the
 * model to name the new state, with at least `minConfidence` posterior, on
 * `confirmFrames` frames in a row. One noisy frame then never shows as a
 * switch and back (the model's own switch cost bounds how often its state
 * changes, not how briefly).
 */
import { restoreArrays, type EngineState, type Restorable, type StateArray } from '../engine-state.js';
import { OnlineJumpModel, type JumpModelFile } from './sjm.js';
import type { FeatureFrame } from '../market/features.js';

/** When the published regime may change; the model's manifest carries them. */
export interface RegimeStability {
  /** The model's posterior of the new state must be at least this, from 0 to 1. */
  readonly minConfidence: number;
  /** Frames in a row the model must name the new state (with that confidence); 1 follows the model. */
  readonly confirmFrames: number;
}

/** The model as it is: every change of its state is published at once. */
export const FOLLOW_THE_MODEL: RegimeStability = { minConfidence: 0, confirmFrames: 1 };

/** One frame's regimes. Reused: read it synchronously. */
export interface RegimeFrame {
  readonly model: string;
  readonly intervalMs: number;
  readonly labels: readonly string[];
  readonly symbols: readonly string[];
  readonly k: number;
  at: number;
  /** Published regime per instrument, -1 when none. */
  readonly state: Int32Array;
  /** `instrument * k + state`: the model's probability of each state on this frame (NaN when none). */
  readonly probabilities: Float64Array;
  /** Regime changes seen since start, all instruments together. */
  switches: number;
}

export interface RegimeTrackerOptions {
  /** `name@version`, for the frame. */
  readonly model: string;
  readonly intervalMs: number;
  /** A name per state, calm first. */
  readonly labels: readonly string[];
  /** Column of each model input in the feature rows, in the model's order. */
  readonly columns: Int32Array;
  /** Features per instrument in a frame. */
  readonly width: number;
  /** Default: follow the model. */
  readonly stability?: RegimeStability;
}

export class RegimeTracker implements Restorable {
  readonly frame: RegimeFrame;
  private readonly online: OnlineJumpModel;
  /** Scratch: one instrument's inputs, written whole before each update. */
  private readonly x: Float64Array;
  private readonly wasWarm: Uint8Array;
  /** The published regime survives a non-finite frame (published as -1): a change across it is still a switch. */
  private readonly lastState: Int32Array;
  /** The state the model names against the published one, -1 when none, and for how many frames in a row. */
  private readonly pending: Int32Array;
  private readonly pendingFrames: Int32Array;
  private readonly stability: RegimeStability;

  constructor(
    model: JumpModelFile,
    symbols: readonly string[],
    private readonly options: RegimeTrackerOptions,
  ) {
    if (options.labels.length !== model.k) throw new Error(`regime labels name ${options.labels.length} states; the model has ${model.k}`);
    if (options.columns.length !== model.features.length) throw new Error(`${options.columns.length} input columns for a model of ${model.features.length} features`);
    this.online = new OnlineJumpModel(model, symbols.length);
    const k = model.k;
    this.frame = {
      model: options.model,
      intervalMs: options.intervalMs,
      labels: options.labels,
      symbols,
      k,
      at: NaN,
      state: new Int32Array(symbols.length).fill(-1),
      probabilities: new Float64Array(symbols.length * k).fill(NaN),
      switches: 0,
    };
    this.x = new Float64Array(options.columns.length);
    this.wasWarm = new Uint8Array(symbols.length);
    this.lastState = new Int32Array(symbols.length).fill(-1);
    this.pending = new Int32Array(symbols.length).fill(-1);
    this.pendingFrames = new Int32Array(symbols.length);
    this.stability = options.stability ?? FOLLOW_THE_MODEL;
    checkStability(this.stability);
  }

  /** The model's recursion, then the tracker's and the frame's (`x` is scratch): for a shard checkpoint. */
  saveState(): EngineState {
    const arrays = this.stateArrays();
    // One stream of the model per instrument: every array is a row per instrument.
    return { arrays, numbers: [this.frame.at, this.frame.switches], rows: arrays.map(() => true) };
  }

  loadState(state: EngineState): void {
    restoreArrays('RegimeTracker', this.stateArrays(), state, 2);
    this.frame.at = state.numbers[0]!;
    this.frame.switches = state.numbers[1]!;
  }

  private stateArrays(): StateArray[] {
    return [...this.online.saveState().arrays, this.wasWarm, this.lastState, this.pending, this.pendingFrames, this.frame.state, this.frame.probabilities];
  }

  /** Steps every instrument on `f`; `onSwitch` hears each change of the published regime. Returns the frame. */
  step(f: Pick<FeatureFrame, 'at' | 'values' | 'warm'>, onSwitch?: (instrument: number, from: number, to: number) => void): RegimeFrame {
    const { frame, online, x, wasWarm, lastState } = this;
    const { columns, width } = this.options;
    const k = frame.k;
    for (let i = 0; i < frame.symbols.length; i++) {
      if (!f.warm[i]) {
        // A gap in the data: the recursion starts afresh when the instrument is warm again.
        if (wasWarm[i]) online.reset(i);
        wasWarm[i] = 0;
        lastState[i] = -1;
        this.pending[i] = -1;
        frame.state[i] = -1;
        frame.probabilities.fill(NaN, i * k, i * k + k);
        continue;
      }
      wasWarm[i] = 1;
      for (let c = 0; c < columns.length; c++) x[c] = f.values[i * width + columns[c]!]!;
      const modelState = online.update(i, x);
      if (modelState < 0) {
        frame.state[i] = -1;
        frame.probabilities.fill(NaN, i * k, i * k + k);
        continue;
      }
      const p = online.probabilities(i);
      frame.probabilities.set(p, i * k);
      const before = lastState[i]!;
      const state = this.settle(i, before, modelState, p[modelState]!);
      frame.state[i] = state;
      lastState[i] = state;
      if (before >= 0 && before !== state) {
        frame.switches++;
        onSwitch?.(i, before, state);
      }
    }
    frame.at = f.at;
    return frame;
  }

  /** The regime to publish for instrument `i`, shown as `shown`, when the model names `modelState` with `confidence`. */
  private settle(i: number, shown: number, modelState: number, confidence: number): number {
    const { pending, pendingFrames } = this;
    if (shown < 0 || modelState === shown || confidence < this.stability.minConfidence) {
      pending[i] = -1;
      return shown < 0 ? modelState : shown;
    }
    if (pending[i] !== modelState) {
      pending[i] = modelState;
      pendingFrames[i] = 0;
    }
    if (++pendingFrames[i]! < this.stability.confirmFrames) return shown;
    pending[i] = -1;
    return modelState;
  }
}

function checkStability({ minConfidence, confirmFrames }: RegimeStability): void {
  if (!(minConfidence >= 0 && minConfidence <= 1)) throw new RangeError(`regime minConfidence must be from 0 to 1, got ${minConfidence}`);
  if (!Number.isInteger(confirmFrames) || confirmFrames < 1) throw new RangeError(`regime confirmFrames must be a whole number of at least 1, got ${confirmFrames}`);
}
