/**
 * The regime of every instrument of the universe, by the online Statistical
 * Jump Model: one O(K) update per warm instrument per features frame, no
 * look-ahead, on typed arrays. The regime actor's data plane.
 *
 * State 0 is the calm regime (the model's states are sorted by its stated
 * rule when it is fitted); -1 means no regime yet (not warm since the model
 * last saw it, or a non-finite input).
 */
import { restoreArrays, type EngineState, type Restorable, type StateArray } from '../engine-state.js';
import { OnlineJumpModel, type JumpModelFile } from './sjm.js';
import type { FeatureFrame } from '../market/features.js';

/** One frame's regimes. Reused: read it synchronously. */
export interface RegimeFrame {
  readonly model: string;
  readonly intervalMs: number;
  readonly labels: readonly string[];
  readonly symbols: readonly string[];
  readonly k: number;
  at: number;
  /** State per instrument, -1 when none. */
  readonly state: Int32Array;
  /** `instrument * k + state`: the probability of each state (NaN when none). */
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
}

export class RegimeTracker implements Restorable {
  readonly frame: RegimeFrame;
  private readonly online: OnlineJumpModel;
  /** Scratch: one instrument's inputs, written whole before each update. */
  private readonly x: Float64Array;
  private readonly wasWarm: Uint8Array;
  /** The model's state survives a non-finite frame (published as -1): a change across it is still a switch. */
  private readonly lastState: Int32Array;

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
    return [...this.online.saveState().arrays, this.wasWarm, this.lastState, this.frame.state, this.frame.probabilities];
  }

  /** Steps every instrument on `f`; `onSwitch` hears each change of regime. Returns the frame. */
  step(f: FeatureFrame, onSwitch?: (instrument: number, from: number, to: number) => void): RegimeFrame {
    const { frame, online, x, wasWarm, lastState } = this;
    const { columns, width } = this.options;
    const k = frame.k;
    for (let i = 0; i < frame.symbols.length; i++) {
      if (!f.warm[i]) {
        // A gap in the data: the recursion starts afresh when the instrument is warm again.
        if (wasWarm[i]) online.reset(i);
        wasWarm[i] = 0;
        lastState[i] = -1;
        frame.state[i] = -1;
        frame.probabilities.fill(NaN, i * k, i * k + k);
        continue;
      }
      wasWarm[i] = 1;
      for (let c = 0; c < columns.length; c++) x[c] = f.values[i * width + columns[c]!]!;
      const before = lastState[i]!;
      const state = online.update(i, x);
      frame.state[i] = state;
      if (state < 0) frame.probabilities.fill(NaN, i * k, i * k + k);
      else {
        frame.probabilities.set(online.probabilities(i), i * k);
        lastState[i] = state;
        if (before >= 0 && before !== state) {
          frame.switches++;
          onSwitch?.(i, before, state);
        }
      }
    }
    frame.at = f.at;
    return frame;
  }
}
