/**
 * The tiered ensemble: for each feature frame, every warm instrument is
 * routed to a tier, and each tier's members run once for all of their
 * instruments as one batch in the workers. An instrument's prediction is
 * the mean of its tier's members that answered. The main thread only packs
 * typed arrays and reads results: it never waits on inference.
 *
 * Sequence models (window > 1) read the last `window` frames of an
 * instrument, kept in a ring per instrument; an instrument enters their
 * batch once it has been warm for that many frames in a row.
 */
import type { Logger } from 'pino';
import type { FeatureFrame, FeatureSchema } from '../market/features.js';
import type { InferenceResult } from './inference/pool.js';
import type { ModelRegistry, ServingModel } from './registry.js';
import { Tiers, type TierConfig, type UnavailableModel } from './tiers.js';

/** One frame's predictions. A fresh object per frame: consumers may keep it. */
export interface PredictionFrame {
  /** Monotonic time of the features frame the predictions are for, and of their arrival. */
  readonly frameAt: number;
  readonly at: number;
  readonly symbols: readonly string[];
  /** The ensemble's prediction per instrument; NaN when none (not warm, or every member faulted). */
  readonly value: Float64Array;
  /** Tier that served each instrument ('' when none). */
  readonly tier: readonly string[];
  /** Model ids (name@version) that answered for each instrument, joined with '+'. */
  readonly models: readonly string[];
  /** Slowest member batch from send to result, ms (the frame's latency), and its time inside onnxruntime. */
  readonly latencyMs: number;
  readonly inferenceMs: number;
  /** A member batch that failed: which model and why. Its instruments fall back to the other members. */
  readonly faults: readonly string[];
}

export interface PredictorOptions {
  readonly tiers: TierConfig;
  /** Frames of history kept per instrument for sequence models (the registry refuses a longer window). */
  readonly historyFrames: number;
}

/** A stable pseudo-random share per instrument, so a shadow sees the same instruments every frame. */
export const shadowShare = (instrument: number) => (Math.imul(instrument + 1, 2654435761) >>> 0) / 2 ** 32;

/** What packing a model's rows needs, made once per model: its standardisation as multiply-adds, and a buffer to pack into. */
interface Packing {
  readonly mean: Float64Array;
  readonly scale: Float64Array;
  /** A buffer no batch holds: the last one the workers handed back (none while every one is out). */
  free: ArrayBuffer | undefined;
}

export class TieredPredictor {
  readonly tiers: Tiers;
  private readonly width: number;
  private readonly history: Float64Array;
  /** Next ring row per instrument, and consecutive warm frames. */
  private readonly head: Int32Array;
  private readonly streak: Int32Array;
  private readonly volatilityColumn: number;
  private readonly packings = new WeakMap<ServingModel, Packing>();
  // Scratch of combine(), which runs whole between two awaits.
  private readonly sum: Float64Array;
  private readonly count: Int32Array;
  /** `a+b` for model-id lists seen before: an instrument's list is the same string every frame, not a new one. */
  private readonly joined = new Map<string, Map<string, string>>();

  constructor(
    private readonly registry: ModelRegistry,
    schema: FeatureSchema,
    private readonly symbols: readonly string[],
    private readonly options: PredictorOptions,
    log: Logger,
    private readonly now: () => number,
  ) {
    this.width = schema.features.length;
    this.history = new Float64Array(symbols.length * options.historyFrames * this.width);
    this.head = new Int32Array(symbols.length);
    this.streak = new Int32Array(symbols.length);
    this.sum = new Float64Array(symbols.length);
    this.count = new Int32Array(symbols.length);
    const hv = options.tiers.highVol;
    this.volatilityColumn = hv ? schema.features.indexOf(hv.feature) : -1;
    if (hv && this.volatilityColumn < 0) throw new Error(`high-volatility tier reads ${hv.feature}, which the live features do not have (live: ${schema.features.join(', ')})`);
    this.tiers = new Tiers(options.tiers, symbols, registry, log);
  }

  async start(): Promise<void> {
    await this.tiers.start();
  }

  /**
   * Takes a frame synchronously (it is reused by its publisher) and resolves
   * with its predictions. A frame not predicted must still be observed, or
   * a sequence model's window would skip it.
   */
  predict(frame: FeatureFrame): Promise<PredictionFrame> {
    const n = this.symbols.length;
    const frameAt = frame.at;
    this.observe(frame);
    const tier: string[] = new Array<string>(n).fill('');
    const byTier = new Map<string, number[]>();
    for (let i = 0; i < n; i++) {
      if (!frame.warm[i]) continue;
      const vol = this.volatilityColumn >= 0 ? frame.values[i * this.width + this.volatilityColumn]! : NaN;
      const t = this.tiers.route(i, vol);
      tier[i] = t;
      let list = byTier.get(t);
      if (!list) byTier.set(t, (list = []));
      list.push(i);
    }
    // Every batch is packed now, from this frame, with the live model of the moment.
    const runs: Promise<MemberResult>[] = [];
    for (const [t, instruments] of byTier) {
      for (const slot of this.tiers.members(t)) {
        if (!this.registry.has(slot)) continue;
        runs.push(this.runMember(slot, this.registry.live(slot), instruments, false));
        const shadow = this.registry.shadowOf(slot);
        if (shadow) {
          const share = instruments.filter((i) => shadowShare(i) < shadow.stats.share);
          if (share.length > 0) runs.push(this.runMember(slot, shadow.model, share, true));
        }
      }
    }
    return Promise.all(runs).then((results) => this.combine(frameAt, tier, results));
  }

  /** Adds a frame to every instrument's history. */
  observe(frame: FeatureFrame): void {
    const w = this.width;
    const depth = this.options.historyFrames;
    const { history } = this;
    const values = frame.values;
    for (let i = 0; i < this.symbols.length; i++) {
      if (!frame.warm[i]) {
        this.streak[i] = 0;
        continue;
      }
      const row = this.head[i]!;
      // A plain loop: a subarray view per instrument per frame is garbage at thousands of instruments.
      const from = i * w;
      const to = (i * depth + row) * w;
      for (let c = 0; c < w; c++) history[to + c] = values[from + c]!;
      this.head[i] = (row + 1) % depth;
      this.streak[i] = Math.min(this.streak[i]! + 1, depth);
    }
  }

  private async runMember(slot: string, model: ServingModel, instruments: readonly number[], shadow: boolean): Promise<MemberResult> {
    const { input, ready } = this.pack(model, instruments);
    const member = { slot, model, instruments: ready, shadow };
    if (ready.length === 0) {
      this.giveBack(model, input);
      return { ...member, values: undefined };
    }
    try {
      const result = await this.registry.run(model, input, ready.length);
      if (result.input) this.giveBack(model, result.input);
      return { ...member, values: result.outputs[model.manifest.outputs[0]!]!, result };
    } catch (err) {
      return { ...member, values: undefined, fault: `${model.id}: ${(err as Error).message}` };
    }
  }

  /**
   * The model's input rows, one per instrument with a full window: its
   * columns, oldest frame first, standardised as its manifest says. A row
   * with a non-finite value is dropped: it would make onnxruntime's whole
   * batch non-finite, so that instrument sits this frame out alone.
   */
  private pack(model: ServingModel, instruments: readonly number[]): { input: Float32Array; ready: number[] } {
    const cols = model.columns;
    const f = cols.length;
    const win = model.window;
    const depth = this.options.historyFrames;
    const packing = this.packingOf(model);
    const { mean, scale } = packing;
    const bytes = instruments.length * win * f * Float32Array.BYTES_PER_ELEMENT;
    // The buffer the workers last handed back; a new one only when it is out with a batch, or too small.
    const buffer = packing.free !== undefined && packing.free.byteLength >= bytes ? packing.free : new ArrayBuffer(bytes);
    packing.free = undefined;
    const out = new Float32Array(buffer);
    const { history, head, streak, width } = this;
    const ready: number[] = [];
    let o = 0;
    for (let n = 0; n < instruments.length; n++) {
      const i = instruments[n]!;
      if (streak[i]! < win) continue;
      const start = o;
      let finite = true;
      for (let step = win; step >= 1 && finite; step--) {
        const base = (i * depth + ((head[i]! - step + depth) % depth)) * width;
        for (let c = 0; c < f; c++) {
          const x = history[base + cols[c]!]!;
          // x - x is 0 for a finite x only: NaN and ±Infinity give NaN.
          if (x - x !== 0) {
            finite = false;
            break;
          }
          out[o++] = (x - mean[c]!) * scale[c]!;
        }
      }
      if (finite) ready.push(i);
      else o = start;
    }
    // Exactly the rows packed (level-1 instruments drop out here); the pool moves the whole buffer to a worker and back.
    return { input: out.subarray(0, o), ready };
  }

  /** A buffer back from the workers (or never sent) becomes the one the model's next batch is packed into. */
  private giveBack(model: ServingModel, input: Float32Array): void {
    const packing = this.packingOf(model);
    if (packing.free === undefined || packing.free.byteLength < input.buffer.byteLength) packing.free = input.buffer as ArrayBuffer;
  }

  private packingOf(model: ServingModel): Packing {
    let packing = this.packings.get(model);
    if (!packing) {
      const f = model.columns.length;
      const std = model.manifest.input.standardize;
      packing = {
        mean: Float64Array.from({ length: f }, (_, c) => (std ? std.mean[c]! : 0)),
        scale: Float64Array.from({ length: f }, (_, c) => (std ? 1 / std.std[c]! : 1)),
        free: undefined,
      };
      this.packings.set(model, packing);
    }
    return packing;
  }

  private combine(frameAt: number, tier: string[], results: MemberResult[]): PredictionFrame {
    const n = this.symbols.length;
    const { sum, count } = this;
    sum.fill(0);
    count.fill(0);
    const models = new Array<string>(n).fill('');
    const faults: string[] = [];
    let latencyMs = 0;
    let inferenceMs = 0;
    for (const r of results) {
      // A shadow serves nothing: its faults and latency are its report's, not the frame's.
      if (r.shadow) continue;
      if (r.fault) faults.push(r.fault);
      if (r.result) {
        latencyMs = Math.max(latencyMs, r.result.totalMs);
        inferenceMs = Math.max(inferenceMs, r.result.inferenceMs);
      }
      if (!r.values) continue;
      const { values, instruments } = r;
      const id = r.model.id;
      for (let k = 0; k < instruments.length; k++) {
        const i = instruments[k]!;
        sum[i] = sum[i]! + values[k]!;
        count[i]!++;
        models[i] = this.join(models[i]!, id);
      }
    }
    for (const r of results) if (r.shadow) this.scoreShadow(r, results.find((l) => !l.shadow && l.slot === r.slot));
    const value = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      value[i] = count[i]! > 0 ? sum[i]! / count[i]! : NaN;
      if (count[i] === 0) tier[i] = '';
    }
    return { frameAt, at: this.now(), symbols: this.symbols, value, tier, models, latencyMs, inferenceMs, faults };
  }

  /** `list+id`, the same string object each time for the same pair. */
  private join(list: string, id: string): string {
    if (list === '') return id;
    // Every swap brings new ids: forget old lists now and then rather than keep them forever.
    if (this.joined.size > 1_000) this.joined.clear();
    let byId = this.joined.get(list);
    if (!byId) this.joined.set(list, (byId = new Map()));
    let both = byId.get(id);
    if (both === undefined) byId.set(id, (both = `${list}+${id}`));
    return both;
  }

  /** Compares a shadow's answers with its slot's live member on the same instruments of the same frame. */
  private scoreShadow(shadow: MemberResult, live: MemberResult | undefined): void {
    const current = this.registry.shadowOf(shadow.slot);
    // Promoted or replaced while this frame ran: its report has moved on.
    if (current?.model !== shadow.model) return;
    const stats = current.stats;
    if (shadow.fault) {
      stats.faults++;
      stats.lastFault = shadow.fault;
      return;
    }
    if (!live?.values || !shadow.values) return;
    stats.batches++;
    stats.sumLiveMs += live.result!.totalMs;
    stats.sumCandidateMs += shadow.result!.totalMs;
    const liveAt = new Map<number, number>();
    live.instruments.forEach((i, k) => liveAt.set(i, k));
    shadow.instruments.forEach((i, k) => {
      const at = liveAt.get(i);
      if (at === undefined) return;
      const a = live.values![at]!;
      const b = shadow.values![k]!;
      stats.rows++;
      if (Math.sign(a) === Math.sign(b)) stats.sameSign++;
      stats.sumAbsDiff += Math.abs(a - b);
    });
  }
}

interface MemberResult {
  readonly slot: string;
  readonly model: ServingModel;
  readonly instruments: readonly number[];
  readonly values: Float32Array | undefined;
  readonly result?: InferenceResult;
  readonly fault?: string;
  readonly shadow: boolean;
}

/** The registry and the serving counters: the `predictor` service, read by the health rollup and the inspector. */
export interface PredictorStatus {
  readonly registry: ModelRegistry;
  readonly predictor: TieredPredictor;
  readonly intervalMs: number;
  frames: number;
  skipped: number;
  late: number;
  /**
   * What is wrong now: each model refused at start (its tier serves without
   * it), then the faults of the last frame. Empty when every model serves and
   * answered.
   */
  faults: readonly string[];
  /** Models refused at start: their tiers are degraded for as long as this runs. */
  readonly unavailable: readonly UnavailableModel[];
  lastAt: number;
}

/** A refused model as one fault line: `base/1 not serving: models/x/manifest.json: checksum mismatch: ...`. */
export const unavailableFault = (u: UnavailableModel): string => `${u.slot} not serving: ${u.manifest}: ${u.reason}`;
