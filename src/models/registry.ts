/**
 * The model registry: every ONNX model the predictor serves, by slot (a
 * role at a horizon such as `10s/base/0` or `5m/high_vol/0`), each with its live model,
 * the one before it for rollback, and optionally a shadow candidate.
 *
 * A candidate is loaded into the pool (the main thread and every worker)
 * and validated before it can serve:
 * manifest against the live feature schema, file checksum, golden inputs
 * giving finite outputs of the right shape (and the values the manifest
 * recorded), and a latency budget. Only then does it replace the live model,
 * in one assignment: the predictor reads a slot's live model once per batch,
 * so a batch never mixes versions and no batch is lost. A refused candidate
 * is unloaded and the live model keeps serving; a model refused for an empty
 * slot leaves it empty (the tiers serve without it, see tiers.ts).
 *
 * A tier averages its members, so a slot keeps its role: a model swapped,
 * promoted or rolled back into it must be of the live model's family (read
 * from its ONNX operators) and read the same features in the same order
 * over the same window, and no other member of its tier may serve the same
 * model (by name or by file), or the average would count it twice. A slot
 * of a horizon takes only a model trained for that horizon (the manifest's
 * horizonMs; a manifest without one is taken where it is put).
 */
import type { Logger } from 'pino';
import type { FeatureSchema } from '../market/features.js';
import type { FrameHistory } from './inference/history.js';
import { InferenceError, type FrameResult, type InferencePool, type InferenceResult, type Packing, type Where } from './inference/pool.js';
import { horizonLabel } from './horizon.js';
import { inputColumns, loadModelSource, ModelRefused, type Manifest } from './manifest.js';
import { modelFamily } from './onnx/family.js';
import { horizonOfSlot, tierOf } from './tiers.js';

/** A model loaded in the workers and validated, ready to serve. */
export interface ServingModel {
  readonly id: string;
  readonly manifest: Manifest;
  readonly manifestPath: string;
  /** What its ONNX operators make it: 'tree-ensemble', 'lstm', ... (see onnx/family.ts). */
  readonly family: string;
  /** The pool's key for this load (unique per load, so a reload never collides). */
  readonly key: string;
  /** Live-schema column of each input feature, in input order. */
  readonly columns: Int32Array;
  readonly window: number;
  /** How its rows are packed from the live features: its columns, standardisation and window. */
  readonly packing: Packing;
}

export interface ShadowStats {
  readonly candidate: string;
  readonly share: number;
  batches: number;
  rows: number;
  /** Rows where candidate and live predict the same sign. */
  sameSign: number;
  sumAbsDiff: number;
  sumLiveMs: number;
  sumCandidateMs: number;
  /** Candidate batches that failed (timeout, non-finite, ...), and the last reason. */
  faults: number;
  lastFault?: string;
}

export interface ShadowReport {
  readonly candidate: string;
  readonly live: string;
  readonly share: number;
  readonly batches: number;
  readonly rows: number;
  readonly signAgreement: number;
  readonly meanAbsDiff: number;
  readonly liveMeanMs: number;
  readonly candidateMeanMs: number;
  readonly faults: number;
  readonly lastFault?: string;
}

interface Slot {
  live: ServingModel;
  previous?: ServingModel;
  shadow?: { model: ServingModel; stats: ShadowStats };
}

export interface RegistryOptions {
  /** A golden run slower than this refuses the candidate, ms. */
  readonly latencyBudgetMs: number;
  /** Longest input window (frames) the predictor keeps history for. */
  readonly maxWindow: number;
  /** Golden outputs must match the manifest's within this. */
  readonly goldenTolerance?: number;
}

export type SwapEvent = { readonly slot: string; readonly action: 'install' | 'swap' | 'rollback' | 'promote' | 'shadow' | 'unshadow' | 'refused'; readonly from?: string; readonly to?: string; readonly reason?: string };

/** Timed golden runs after the first (see goldenRun). */
const GOLDEN_TIMED_RUNS = 3;

/** Loads ever made in this process: pool keys stay unique even across registries sharing a pool. */
let loads = 0;

export class ModelRegistry {
  private readonly slots = new Map<string, Slot>();
  /** Runs in flight per pool key: a retired model is unloaded only once its last run is back. */
  private readonly inFlight = new Map<string, number>();
  private readonly retired = new Set<string>();
  private readonly listeners: ((event: SwapEvent) => void)[] = [];

  constructor(
    /** Where the models run; the predictor asks it what a batch costs. */
    readonly pool: InferencePool,
    private readonly schema: FeatureSchema,
    private readonly log: Logger,
    private readonly options: RegistryOptions,
  ) {}

  onSwap(listener: (event: SwapEvent) => void): void {
    this.listeners.push(listener);
  }

  slotNames(): string[] {
    return [...this.slots.keys()];
  }

  has(slot: string): boolean {
    return this.slots.has(slot);
  }

  /** The model a new batch of this slot must use. */
  live(slot: string): ServingModel {
    return this.slotOrThrow(slot).live;
  }

  previous(slot: string): ServingModel | undefined {
    return this.slots.get(slot)?.previous;
  }

  shadowOf(slot: string): { model: ServingModel; stats: ShadowStats } | undefined {
    return this.slots.get(slot)?.shadow;
  }

  /** Loads and validates a model for a slot of `horizonMs` (any, when undefined); it serves nothing until installed, swapped in or shadowed. */
  async load(manifestPath: string, horizonMs?: number): Promise<ServingModel> {
    const source = await loadModelSource(manifestPath);
    const { manifest } = source;
    if (manifest.kind !== 'onnx') throw new ModelRefused(manifestPath, `is a ${manifest.kind} model; the predictor serves onnx models`);
    if (horizonMs !== undefined && manifest.horizonMs !== undefined && manifest.horizonMs !== horizonMs) {
      throw new ModelRefused(manifestPath, `forecasts ${horizonLabel(manifest.horizonMs)} ahead; this slot serves the ${horizonLabel(horizonMs)} horizon`);
    }
    const columns = inputColumns(manifest, this.schema, manifestPath);
    if (manifest.input.window > this.options.maxWindow) {
      throw new ModelRefused(manifestPath, `reads a window of ${manifest.input.window} frames; the predictor keeps ${this.options.maxWindow}`);
    }
    const id = `${manifest.name}@${manifest.version}`;
    const key = `${id}#${++loads}`;
    const std = manifest.input.standardize;
    const packing: Packing = {
      columns,
      mean: Float64Array.from(columns, (_, c) => (std ? std.mean[c]! : 0)),
      scale: Float64Array.from(columns, (_, c) => (std ? 1 / std.std[c]! : 1)),
      window: manifest.input.window,
    };
    let info;
    try {
      info = await this.pool.load(key, source.bytes, packing);
    } catch (err) {
      // onnxruntime refusing the file stays so; a pool closing or a worker dying meanwhile may not.
      const passing = err instanceof InferenceError && err.kind !== 'load';
      throw new ModelRefused(manifestPath, `onnxruntime cannot load ${manifest.file}: ${(err as Error).message}`, passing);
    }
    try {
      const model: ServingModel = { id, manifest, manifestPath, family: familyOf(source.bytes, manifestPath), key, columns, window: manifest.input.window, packing };
      if (!info.inputNames.includes(manifest.input.name)) throw new ModelRefused(manifestPath, `the file's inputs are ${info.inputNames.join(', ')}; the manifest names ${manifest.input.name}`);
      const missing = manifest.outputs.filter((o) => !info.outputNames.includes(o));
      if (missing.length > 0) throw new ModelRefused(manifestPath, `the file has no output ${missing.join(', ')} (it has ${info.outputNames.join(', ')})`);
      await this.goldenRun(model);
      return model;
    } catch (err) {
      await this.pool.unload(key);
      throw err;
    }
  }

  /**
   * Runs the manifest's golden inputs: finite outputs of the right shape, the
   * recorded values, within the latency budget. On the main thread (a handful
   * of rows), 1 + GOLDEN_TIMED_RUNS times: onnxruntime sets up on a session's
   * first run; the fastest of the others is the model's time (a busy machine
   * may deschedule the thread in any one run), and they tell the pool what
   * the model costs before any frame decides where to run it.
   */
  private async goldenRun(model: ServingModel): Promise<void> {
    const { manifest, manifestPath } = model;
    const golden = manifest.golden;
    if (!golden) throw new ModelRefused(manifestPath, 'the manifest has no golden inputs: keel cannot check the file before it serves');
    const perRow = manifest.input.features.length * model.window;
    const rows = golden.input.length / perRow;
    const f = manifest.input.features.length;
    const std = manifest.input.standardize;
    // Golden rows are raw features: keel scales them as it scales live rows.
    const input = Float32Array.from(golden.input, (x, i) => (std ? (x - std.mean[i % f]!) / std.std[i % f]! : x));
    let fastest = Infinity;
    try {
      for (let k = 0; k <= GOLDEN_TIMED_RUNS; k++) {
        const run = await this.run(model, input, rows, 'here');
        this.check(model, run, rows);
        if (k > 0) fastest = Math.min(fastest, run.totalMs);
      }
    } catch (err) {
      if (err instanceof ModelRefused) throw err;
      const kind = err instanceof InferenceError ? ` (${err.kind})` : '';
      // On the main thread onnxruntime's refusal or non-finite answers are the file's; only a closing pool may pass.
      const passing = err instanceof InferenceError && err.kind === 'closed';
      throw new ModelRefused(manifestPath, `golden inputs failed${kind}: ${(err as Error).message}`, passing);
    }
    if (fastest > this.options.latencyBudgetMs) {
      throw new ModelRefused(manifestPath, `golden batch took ${fastest.toFixed(1)} ms, over the ${this.options.latencyBudgetMs} ms budget`, true);
    }
  }

  /** The golden run's answer against the manifest's recorded outputs. */
  private check(model: ServingModel, result: InferenceResult, rows: number): void {
    const { manifest, manifestPath } = model;
    const golden = manifest.golden!;
    const out = result.outputs[manifest.outputs[0]!]!;
    if (out.length !== rows) throw new ModelRefused(manifestPath, `golden inputs gave ${out.length} values for ${rows} rows: ${manifest.outputs[0]} must be [N, 1]`);
    if (golden.output.length !== rows) throw new ModelRefused(manifestPath, `golden has ${rows} input rows but ${golden.output.length} outputs`);
    const tolerance = this.options.goldenTolerance ?? 1e-4;
    for (let i = 0; i < rows; i++) {
      if (Math.abs(out[i]! - golden.output[i]!) > tolerance * Math.max(1, Math.abs(golden.output[i]!))) {
        throw new ModelRefused(manifestPath, `golden row ${i} gave ${out[i]}, the manifest recorded ${golden.output[i]}: the file is not the model the manifest describes`);
      }
    }
  }

  /** Puts a first model into an empty slot. */
  async install(slot: string, manifestPath: string): Promise<ServingModel> {
    if (this.slots.has(slot)) throw new Error(`slot ${slot} already serves ${this.live(slot).id}; swap instead`);
    const model = await this.refusing(slot, manifestPath);
    if (this.slots.has(slot)) {
      this.retire(model);
      throw new Error(`slot ${slot} was filled while ${model.id} loaded; swap instead`);
    }
    this.slots.set(slot, { live: model });
    this.emit({ slot, action: 'install', to: model.id });
    return model;
  }

  /** Validates a candidate, then makes it live in one step; the old live model is kept for rollback. */
  async swap(slot: string, manifestPath: string): Promise<{ from: string; to: string }> {
    const s = this.slotOrThrow(slot);
    const model = this.stillThere(slot, s, await this.refusing(slot, manifestPath));
    // Judged once loaded, with nothing awaited before it goes live: the family is read from the file, and a
    // sibling slot may have changed while it loaded.
    const misfit = this.misfit(slot, s, model);
    if (misfit) {
      this.retire(model);
      throw this.refused(slot, manifestPath, new ModelRefused(manifestPath, misfit));
    }
    return this.makeLive(slot, s, model, 'swap');
  }

  /** Back to the model before the last swap; the one rolled back from becomes the new "previous". */
  rollback(slot: string): { from: string; to: string } {
    const s = this.slotOrThrow(slot);
    if (!s.previous) throw new Error(`slot ${slot} has no previous model to roll back to`);
    const misfit = this.misfit(slot, s, s.previous);
    if (misfit) throw new Error(misfit);
    const from = s.live;
    s.live = s.previous;
    s.previous = from;
    this.emit({ slot, action: 'rollback', from: from.id, to: s.live.id });
    return { from: from.id, to: s.live.id };
  }

  /** Runs a candidate beside the live model on `share` of the instruments; nothing it says is served. */
  async shadow(slot: string, manifestPath: string, share: number): Promise<ServingModel> {
    if (!(share > 0 && share <= 1)) throw new Error(`shadow share must be in (0, 1], got ${share}`);
    const s = this.slotOrThrow(slot);
    const model = this.stillThere(slot, s, await this.refusing(slot, manifestPath));
    if (s.shadow) this.retire(s.shadow.model);
    s.shadow = { model, stats: { candidate: model.id, share, batches: 0, rows: 0, sameSign: 0, sumAbsDiff: 0, sumLiveMs: 0, sumCandidateMs: 0, faults: 0 } };
    this.emit({ slot, action: 'shadow', from: s.live.id, to: model.id });
    return model;
  }

  shadowReport(slot: string): ShadowReport | undefined {
    const s = this.slots.get(slot);
    if (!s?.shadow) return undefined;
    const st = s.shadow.stats;
    return {
      candidate: st.candidate,
      live: s.live.id,
      share: st.share,
      batches: st.batches,
      rows: st.rows,
      signAgreement: st.rows ? st.sameSign / st.rows : NaN,
      meanAbsDiff: st.rows ? st.sumAbsDiff / st.rows : NaN,
      liveMeanMs: st.batches ? st.sumLiveMs / st.batches : NaN,
      candidateMeanMs: st.batches ? st.sumCandidateMs / st.batches : NaN,
      faults: st.faults,
      ...(st.lastFault ? { lastFault: st.lastFault } : {}),
    };
  }

  /** Ends the slot's shadow (a rejected or vetoed challenger) and unloads it; `reason` goes with the event. */
  endShadow(slot: string, reason?: string): void {
    const s = this.slotOrThrow(slot);
    if (!s.shadow) throw new Error(`slot ${slot} has no shadow candidate to end`);
    const { model } = s.shadow;
    s.shadow = undefined;
    this.retire(model);
    this.emit({ slot, action: 'unshadow', from: model.id, to: s.live.id, ...(reason ? { reason } : {}) });
  }

  /** Makes the shadow candidate live (the live model is kept for rollback). */
  promote(slot: string): { from: string; to: string } {
    const s = this.slotOrThrow(slot);
    if (!s.shadow) throw new Error(`slot ${slot} has no shadow candidate to promote`);
    const { model } = s.shadow;
    // Any model may shadow (a comparison serves nothing); only one that fits the slot may serve.
    const misfit = this.misfit(slot, s, model);
    if (misfit) throw new Error(misfit);
    s.shadow = undefined;
    return this.makeLive(slot, s, model, 'promote');
  }

  /** One assignment: the next batch uses `model`; the live one becomes the rollback target, the old target is retired. */
  private makeLive(slot: string, s: Slot, model: ServingModel, action: 'swap' | 'promote'): { from: string; to: string } {
    const from = s.live;
    if (s.previous) this.retire(s.previous);
    s.previous = from;
    s.live = model;
    this.emit({ slot, action, from: from.id, to: model.id });
    return { from: from.id, to: model.id };
  }

  /** Drops a slot and unloads its models (for sector models leaving the LRU cache). */
  evict(slot: string): void {
    const s = this.slots.get(slot);
    if (!s) return;
    this.slots.delete(slot);
    for (const m of [s.live, s.previous, s.shadow?.model]) if (m) this.retire(m);
  }

  /**
   * Runs a batch of packed rows on a model; the registry counts it so a model
   * retired meanwhile is unloaded only after its last run returns.
   */
  run(model: ServingModel, input: Float32Array, rows: number, where: Where = 'worker'): Promise<InferenceResult> {
    const dims = model.window > 1 ? [rows, model.window, model.columns.length] : [rows, model.columns.length];
    return this.counted(model, this.pool.run(model.key, input, dims, where));
  }

  /** Runs a model on the history's latest frame for `instruments`, packed where it runs (see InferencePool.runFrame). */
  runFrame(model: ServingModel, history: FrameHistory, instruments: Int32Array, where: Where): Promise<FrameResult> {
    return this.counted(model, this.pool.runFrame(model.key, history, instruments, where));
  }

  private async counted<T>(model: ServingModel, run: Promise<T>): Promise<T> {
    this.inFlight.set(model.key, (this.inFlight.get(model.key) ?? 0) + 1);
    try {
      return await run;
    } finally {
      const left = this.inFlight.get(model.key)! - 1;
      if (left > 0) this.inFlight.set(model.key, left);
      else {
        this.inFlight.delete(model.key);
        if (this.retired.delete(model.key)) void this.unload(model.key);
      }
    }
  }

  private async refusing(slot: string, manifestPath: string): Promise<ServingModel> {
    try {
      return await this.load(manifestPath, horizonOfSlot(slot));
    } catch (err) {
      throw this.refused(slot, manifestPath, err as Error);
    }
  }

  /** Logs and reports a refused candidate; returns the error to throw. */
  private refused(slot: string, manifestPath: string, err: Error): Error {
    const reason = err.message;
    // Say what serves instead only when something does: a first install has no live model (its caller says what happens then).
    const live = this.slots.get(slot)?.live;
    if (live) this.log.warn({ slot, manifest: manifestPath, reason, live: live.id }, `model candidate refused; ${live.id} keeps serving ${slot}`);
    this.emit({ slot, action: 'refused', reason });
    return err;
  }

  /**
   * Why `model` may not serve `slot` in place of its live model, or
   * undefined when it may (see the top of this file).
   */
  private misfit(slot: string, s: Slot, model: ServingModel): string | undefined {
    const { live } = s;
    const want = live.manifest.input.features;
    const have = model.manifest.input.features;
    const at = firstDifference(want, have);
    if (model.family !== live.family || model.window !== live.window || at >= 0) {
      const features = at < 0 ? `the same ${have.length} features in the same order` : `${have.length} features, input ${at + 1} being ${have[at] ?? 'none'} where ${live.id} reads ${want[at] ?? 'none'}`;
      return (
        `slot ${slot} serves ${live.id} (family ${live.family}, input ${frames(live.window)} x ${want.length} features); ` +
        `${model.id} is family ${model.family}, input ${frames(model.window)} x ${features}: only a model of the same family reading the same inputs may take its place`
      );
    }
    const tier = tierOf(slot);
    if (tier === undefined) return undefined;
    for (const [other, o] of this.slots) {
      if (other === slot || tierOf(other) !== tier) continue;
      const same = o.live.manifest.name === model.manifest.name ? 'name' : o.live.manifest.sha256 === model.manifest.sha256 ? 'file' : undefined;
      if (same) return `tier ${tier} would average one model twice: ${other} already serves ${o.live.id} (the same ${same} as ${model.id})`;
    }
    return undefined;
  }

  /** A slot evicted while its candidate loaded: the candidate is unloaded, never orphaned in the workers. */
  private stillThere(slot: string, s: Slot, model: ServingModel): ServingModel {
    if (this.slots.get(slot) === s) return model;
    this.retire(model);
    throw new Error(`slot ${slot} was evicted while ${model.id} loaded`);
  }

  private retire(model: ServingModel): void {
    if (this.inFlight.has(model.key)) this.retired.add(model.key);
    else void this.unload(model.key);
  }

  private async unload(key: string): Promise<void> {
    try {
      await this.pool.unload(key);
    } catch (err) {
      this.log.warn({ model: key, err: (err as Error).message }, 'unloading a retired model failed');
    }
  }

  private slotOrThrow(slot: string): Slot {
    const s = this.slots.get(slot);
    if (!s) throw new Error(`no model in slot ${slot} (slots: ${[...this.slots.keys()].join(', ') || 'none'})`);
    return s;
  }

  private emit(event: SwapEvent): void {
    if (event.action !== 'refused') this.log.info({ ...event }, `model ${event.action}: ${event.slot} ${event.from ?? ''} -> ${event.to ?? ''}`);
    for (const l of this.listeners) l(event);
  }
}

/** The family of a model file onnxruntime has loaded; a file whose graph cannot be read for it is refused. */
function familyOf(bytes: Uint8Array, manifestPath: string): string {
  try {
    return modelFamily(bytes);
  } catch (err) {
    throw new ModelRefused(manifestPath, `cannot read the operators of its ONNX graph: ${(err as Error).message}`);
  }
}

const frames = (n: number) => `${n} frame${n === 1 ? '' : 's'}`;

/** The first index where two lists differ (one running out counts), or -1. */
function firstDifference(a: readonly string[], b: readonly string[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) if (a[i] !== b[i]) return i;
  return -1;
}
