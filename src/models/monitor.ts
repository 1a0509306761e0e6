/**
 * Watches every model the predictor runs (live members and shadows) for
 * drift, frame by frame, with drift.ts: the PSI of its inputs and of its
 * predictions per instrument against its manifest's reference bins, and its
 * live error once its horizon has passed, next to the zero forecast's on the
 * same predictions and to its held-out figures.
 *
 * A model is beyond its bound when, over at least `minErrorFrames` frames
 * of resolved predictions, its live RMSE exceeds `maxErrorRatio` times the
 * zero forecast's and a Diebold–Mariano test says it is worse than
 * predicting nothing with `confidence`; it is back within once the test
 * falls below half its critical value (an instrument's drift likewise ends
 * below half the alert), so a figure near its line does not flap. The predictor then serves its
 * instruments from the other members of their tier.
 */
import { MID, type FeatureFrame } from '../market/features.js';
import { LiveError, StabilityWindow, type LiveErrorStats, type PairedErrorStats, type Reference } from './drift.js';
import type { Manifest } from './manifest.js';
import { normalQuantile } from './metrics.js';

export interface MonitorSettings {
  /** Frames each instrument's PSI looks back over. */
  readonly windowFrames: number;
  /** PSI above this, of any input or of the prediction, is drift. */
  readonly psiAlert: number;
  /** Frames the live error looks back over. */
  readonly errorWindowFrames: number;
  /** Fewest frames with resolved predictions before the live error is judged. */
  readonly minErrorFrames: number;
  /** Live RMSE above this multiple of the zero forecast's... */
  readonly maxErrorRatio: number;
  /** ...with this confidence (a one-sided Diebold–Mariano test of squared errors) is beyond the bound. */
  readonly confidence: number;
  /** At most this many predictions wait for their horizon per instrument (long horizons keep every k-th frame). */
  readonly pendingPerInstrument: number;
}

/** Each frame refreshes the PSI of every PSI_SLICES-th instrument. */
const PSI_SLICES = 10;

export const DEFAULT_MONITOR: MonitorSettings = { windowFrames: 600, psiAlert: 2.5, errorWindowFrames: 900, minErrorFrames: 300, maxErrorRatio: 1, confidence: 0.99, pendingPerInstrument: 60 };

/** One model's drift now. */
export interface ModelDrift {
  readonly id: string;
  readonly slot: string;
  readonly shadow: boolean;
  readonly horizonMs: number | undefined;
  /** Per instrument: the largest PSI of its inputs (NaN until a quarter of the window is seen), and which input. */
  readonly inputPsi: Float64Array;
  readonly inputOf: readonly string[];
  /** Per instrument: the PSI of the predictions. */
  readonly predictionPsi: Float64Array;
  /** Instruments whose input or prediction PSI is above the alert. */
  readonly drifted: readonly string[];
  readonly live: LiveErrorStats;
  readonly heldOut: { readonly rmse: number; readonly zeroRmse: number; readonly hitRate: number };
  readonly beyondBound: boolean;
}

/** A slot's live model and its shadow, scored on the same realised returns. */
export interface ChallengerScore {
  readonly slot: string;
  readonly champion: string;
  readonly challenger: string;
  /** Stream 0 the champion, 1 the challenger; dm below about −2.33: the challenger is better with 99 % confidence. */
  readonly paired: PairedErrorStats;
}

/** Every watched model's drift at a moment: the predictor's `models.drift` state. */
export interface DriftReport {
  /** Monotonic ms of the last frame it covers. */
  readonly at: number;
  readonly symbols: readonly string[];
  readonly models: readonly ModelDrift[];
  readonly challengers: readonly ChallengerScore[];
}

/** A step in a model's life worth an operator's attention: the `models.event` stream, logged and journaled. */
export interface ModelEvent {
  readonly at: number;
  /** name@version. */
  readonly model: string;
  readonly kind: 'drift' | 'drift-cleared' | 'beyond-bound' | 'within-bound' | 'trained' | 'training-failed' | 'shadowing' | 'promoted' | 'rejected' | 'rolled-back' | 'swapped';
  /** What happened, with the figures, in words. */
  readonly reason: string;
}

/** What the monitor reads of a model: a ServingModel is one. */
export interface WatchedModel {
  readonly id: string;
  /** Unique per load: a model loaded again is watched afresh. */
  readonly key: string;
  /** The frame columns of its inputs, in the manifest's order. */
  readonly columns: Int32Array;
  readonly manifest: Pick<Manifest, 'input' | 'reference' | 'horizonMs' | 'metrics'>;
}

/** One member's answers on a frame: row k of `values` is instrument `instruments[k]`'s; no values when it failed. */
export interface WatchedMember {
  readonly slot: string;
  readonly model: WatchedModel;
  readonly shadow: boolean;
  readonly instruments: Int32Array;
  readonly values: Float32Array | undefined;
}

/**
 * What the predictor needs of a monitor: a ModelMonitor on the caller's
 * thread, or, for a large universe, one on a thread of its own
 * (monitor-thread.ts), its verdicts a frame or so late.
 */
export interface FrameMonitor {
  /** Copies what the monitor needs of `frame` before its batches run (its publisher reuses it). */
  copy(frame: FeatureFrame): FrameCopy;
  /** Every member's answers for the frame `copy` holds; the copy is the monitor's again. */
  observe(copy: FrameCopy, members: readonly WatchedMember[]): void;
  beyondBound(id: string): boolean;
  liveError(id: string): LiveErrorStats | undefined;
  challenger(slot: string): ChallengerScore | undefined;
  challengers(): ChallengerScore[];
}

/** The monitor's answers after a frame: the live error of each model with a horizon, those beyond their bound, the challengers' scores. */
export interface MonitorVerdicts {
  readonly live: readonly (readonly [string, LiveErrorStats])[];
  readonly benched: readonly string[];
  readonly challengers: readonly ChallengerScore[];
}

/** A frame's values and mids, kept while its batches run (the publisher reuses its frame). */
export interface FrameCopy {
  at: number;
  readonly values: Float64Array;
  readonly mid: Float64Array;
}

/** `frame`'s values and mids into `into`, or into a new copy. */
export function copyFrame(frame: FeatureFrame, width: number, into?: FrameCopy): FrameCopy {
  const n = frame.warm.length;
  const c = into ?? { at: 0, values: new Float64Array(n * width), mid: new Float64Array(n) };
  c.at = frame.at;
  c.values.set(frame.values);
  for (let i = 0; i < n; i++) c.mid[i] = frame.warm[i] ? frame.values[i * width + MID]! : NaN;
  return c;
}

class Watch {
  readonly stability: StabilityWindow | undefined;
  readonly error: LiveError | undefined;
  readonly prediction: Float64Array;
  /** Scratch: an instrument's inputs and prediction, as the stability window takes them. */
  readonly row: Float64Array;
  readonly inputs: readonly string[];
  /** Per instrument: drifting now (in at psiAlert, out below half of it, so a PSI near the line does not flap). */
  readonly drifting: Uint8Array;
  /** Per instrument, as of its last refresh: the largest input PSI and its input, the prediction's PSI (NaN until a quarter of the window is seen). */
  readonly inputPsi: Float64Array;
  readonly inputOf: string[];
  readonly predictionPsi: Float64Array;
  /** Beyond its bound now (in past the test's critical value, out below half of it). */
  benched = false;
  lastSeen = 0;

  constructor(
    readonly model: WatchedModel,
    readonly slot: string,
    readonly shadow: boolean,
    symbols: readonly string[],
    frameMs: number,
    settings: MonitorSettings,
  ) {
    const { manifest } = model;
    this.inputs = manifest.input.features;
    const ref = manifest.reference;
    if (ref) {
      // An instrument trained on is held against its own bins, any other against the pooled ones.
      const listOf = (r: { inputs: Reference[]; prediction?: Reference }) => (ref.prediction ? [...r.inputs, r.prediction ?? ref.prediction] : r.inputs);
      const pooled = listOf(ref);
      this.stability = new StabilityWindow(
        symbols.map((s) => {
          const own = ref.symbols?.[s];
          return own ? listOf(own) : pooled;
        }),
        settings.windowFrames,
      );
    }
    if (manifest.horizonMs !== undefined) {
      const frames = Math.max(1, Math.round(manifest.horizonMs / frameMs));
      const keepEvery = Math.max(1, Math.ceil(frames / settings.pendingPerInstrument));
      this.error = new LiveError(symbols.length, manifest.horizonMs, frameMs, settings.errorWindowFrames, keepEvery, settings.pendingPerInstrument);
    }
    this.prediction = new Float64Array(symbols.length);
    this.row = new Float64Array(this.stability?.variables ?? 0);
    this.drifting = new Uint8Array(symbols.length);
    this.inputPsi = new Float64Array(symbols.length).fill(NaN);
    this.inputOf = new Array<string>(symbols.length).fill('');
    this.predictionPsi = new Float64Array(symbols.length).fill(NaN);
  }
}

/** A champion and its challenger's predictions on the same instruments, waiting for their horizon together. */
interface Pair {
  readonly slot: string;
  readonly champion: WatchedModel;
  readonly challenger: WatchedModel;
  readonly error: LiveError;
  lastSeen: number;
}

/** The monitor itself, on the thread that calls it. */
export class ModelMonitor implements FrameMonitor {
  private readonly watches = new Map<string, Watch>();
  /** By slot. */
  private readonly pairs = new Map<string, Pair>();
  private readonly free: FrameCopy[] = [];
  private frames = 0;
  /** The one-sided critical value of the bound's test. */
  private readonly z: number;

  constructor(
    private readonly symbols: readonly string[],
    private readonly width: number,
    private readonly frameMs: number,
    readonly settings: MonitorSettings = DEFAULT_MONITOR,
  ) {
    this.z = normalQuantile(settings.confidence);
  }

  copy(frame: FeatureFrame): FrameCopy {
    return copyFrame(frame, this.width, this.free.pop());
  }

  observe(copy: FrameCopy, members: readonly WatchedMember[]): void {
    this.watch(copy, members);
    this.free.push(copy);
  }

  /** Every member's answers for the frame `copy` holds, which stays the caller's. */
  watch(copy: FrameCopy, members: readonly WatchedMember[]): void {
    this.frames++;
    for (const m of members) {
      let w = this.watches.get(m.model.id);
      if (!w || w.model.key !== m.model.key) this.watches.set(m.model.id, (w = new Watch(m.model, m.slot, m.shadow, this.symbols, this.frameMs, this.settings)));
      w.lastSeen = this.frames;
      w.prediction.fill(NaN);
      if (m.values) m.instruments.forEach((i, k) => (w.prediction[i] = m.values![k]!));
      const { stability } = w;
      if (stability) {
        const inputs = m.model.columns;
        const { row } = w;
        for (let k = 0; k < m.instruments.length; k++) {
          const i = m.instruments[k]!;
          for (let f = 0; f < inputs.length; f++) row[f] = copy.values[i * this.width + inputs[f]!]!;
          if (row.length > inputs.length) row[inputs.length] = w.prediction[i]!;
          stability.observe(i, row);
        }
      }
      if (w.error) {
        w.error.observe(copy.at, copy.mid, w.prediction);
        w.benched = this.judge(w.error.stats(), w.benched);
      }
      this.refresh(w);
    }
    for (const m of members) {
      if (!m.shadow) continue;
      const live = members.find((l) => !l.shadow && l.slot === m.slot);
      const horizonMs = live?.model.manifest.horizonMs;
      if (!live || horizonMs === undefined) continue;
      let pair = this.pairs.get(m.slot);
      if (!pair || pair.champion.key !== live.model.key || pair.challenger.key !== m.model.key) {
        const keepEvery = Math.max(1, Math.ceil(Math.round(horizonMs / this.frameMs) / this.settings.pendingPerInstrument));
        const error = new LiveError(this.symbols.length, horizonMs, this.frameMs, this.settings.errorWindowFrames, keepEvery, this.settings.pendingPerInstrument, 2);
        this.pairs.set(m.slot, (pair = { slot: m.slot, champion: live.model, challenger: m.model, error, lastSeen: 0 }));
      }
      pair.lastSeen = this.frames;
      pair.error.observe(copy.at, copy.mid, this.watches.get(live.model.id)!.prediction, this.watches.get(m.model.id)!.prediction);
    }
    // A model no member ran for a window's worth of frames (swapped out, shadow ended) is forgotten.
    for (const [id, w] of this.watches) if (this.frames - w.lastSeen > this.settings.windowFrames) this.watches.delete(id);
    for (const [slot, p] of this.pairs) if (p.lastSeen < this.frames) this.pairs.delete(slot);
  }

  /** The slot's champion and challenger on the same returns, while the challenger shadows it. */
  challenger(slot: string): ChallengerScore | undefined {
    const p = this.pairs.get(slot);
    return p && { slot, champion: p.champion.id, challenger: p.challenger.id, paired: p.error.versus(0, 1) };
  }

  /** The live error of the model `id` now, if it is watched and has a horizon. */
  liveError(id: string): LiveErrorStats | undefined {
    return this.watches.get(id)?.error?.stats();
  }

  /** Whether the model `id` is beyond its bound now. */
  beyondBound(id: string): boolean {
    return this.watches.get(id)?.benched ?? false;
  }

  /** Beyond the bound on `live`, for a model that was (`was`) or was not: out again only once the test is below half its critical value. */
  private judge(live: LiveErrorStats, was: boolean): boolean {
    const { minErrorFrames, maxErrorRatio } = this.settings;
    if (live.frames < minErrorFrames) return false;
    if (was) return live.rmse > maxErrorRatio * live.zeroRmse && live.dmVsZero >= this.z / 2;
    return live.rmse > maxErrorRatio * live.zeroRmse && live.dmVsZero > this.z;
  }

  /** Every slot's challenger now. */
  challengers(): ChallengerScore[] {
    return [...this.pairs.keys()].map((slot) => this.challenger(slot)!);
  }

  /** What the predictor and the referee read, all at once: for a monitor on another thread to send after each frame. */
  verdicts(): MonitorVerdicts {
    const live: [string, LiveErrorStats][] = [];
    const benched: string[] = [];
    for (const [id, w] of this.watches) {
      if (w.error) live.push([id, w.error.stats()]);
      if (w.benched) benched.push(id);
    }
    return { live, benched, challengers: this.challengers() };
  }

  /** Every watched model's drift now (PSI as of the last refresh of each instrument, at most `PSI_SLICES` frames ago). */
  report(): ModelDrift[] {
    return [...this.watches.values()].map((w) => {
      const drifted: string[] = [];
      w.drifting.forEach((d, i) => d && drifted.push(this.symbols[i]!));
      const live = w.error?.stats() ?? { n: 0, frames: 0, rmse: NaN, zeroRmse: NaN, hitRate: NaN, dmVsZero: NaN };
      const m = w.model.manifest.metrics;
      const heldOut = { rmse: m.model.rmse ?? NaN, zeroRmse: m.baseline.rmse ?? NaN, hitRate: m.model.directionalAccuracy ?? NaN };
      return { id: w.model.id, slot: w.slot, shadow: w.shadow, horizonMs: w.model.manifest.horizonMs, inputPsi: w.inputPsi.slice(), inputOf: [...w.inputOf], predictionPsi: w.predictionPsi.slice(), drifted, live, heldOut, beyondBound: w.benched };
    });
  }

  /**
   * Recomputes the PSI of one slice of the instruments (every `PSI_SLICES`th,
   * turn by turn): all of them at once cost 11 ms of the event loop at 5,000
   * instruments (bench drift), a tenth of them a frame costs a tenth of that.
   */
  private refresh(w: Watch): void {
    const s = w.stability;
    if (!s) return;
    const n = this.symbols.length;
    const enough = Math.max(1, Math.floor(this.settings.windowFrames / 4));
    const inputs = w.inputs.length;
    for (let i = this.frames % PSI_SLICES; i < n; i += PSI_SLICES) {
      let worst = NaN;
      let feature = '';
      for (let f = 0; f < inputs; f++) {
        if (s.count(i, f) < enough) continue;
        const p = s.psi(i, f);
        if (!(p <= worst)) {
          worst = p;
          feature = w.inputs[f]!;
        }
      }
      w.inputPsi[i] = worst;
      w.inputOf[i] = feature;
      w.predictionPsi[i] = s.variables > inputs && s.count(i, inputs) >= enough ? s.psi(i, inputs) : NaN;
      const psi = Math.max(worst, Number.isNaN(w.predictionPsi[i]!) ? -Infinity : w.predictionPsi[i]!);
      const line = w.drifting[i] ? this.settings.psiAlert / 2 : this.settings.psiAlert;
      w.drifting[i] = psi > line ? 1 : 0;
    }
  }
}
