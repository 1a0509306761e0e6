/**
 * The tiered ensemble, at every horizon served: for each feature frame,
 * every warm instrument is routed to a tier of each horizon, and each tier's
 * members run once for all of their instruments as one batch. An
 * instrument's prediction at a horizon is the mean of that horizon's tier
 * members that answered. Horizons share the frame history and the pool; a
 * trader reads the horizon its policy names.
 *
 * Where each batch runs is chosen per frame from what it costs, as the pool
 * measured it on the model's earlier batches: batches whose estimated time
 * adds up to no more than `inThreadMaxMs` run on the main thread, where a
 * few rows take tens of microseconds and the trip to a worker would take
 * longer; the rest go to the workers, which pack their rows themselves from
 * the frame history in shared memory. So the main thread never packs nor
 * waits on a large batch, and a small one never crosses threads. Both
 * places pack and run the same way: a batch gives the same predictions on
 * either.
 *
 * Sequence models (window > 1) read the last `window` frames of an
 * instrument (FrameHistory); an instrument enters their batch once it has
 * been warm for that many frames in a row.
 */
import type { Logger } from 'pino';
import type { EngineState, Restorable } from '../engine-state.js';
import type { FeatureFrame, FeatureSchema } from '../market/features.js';
import { FrameHistory } from './inference/history.js';
import type { FrameMonitor } from './monitor.js';
import type { DaemonMonitor } from './monitor-thread.js';
import type { FrameResult, Where } from './inference/pool.js';
import type { ModelRegistry, ServingModel } from './registry.js';
import { horizonLabel } from './horizon.js';
import { tierOf, Tiers, type TierConfig, type UnavailableModel } from './tiers.js';

/** One horizon's predictions in a frame. */
export interface HorizonPredictions {
  /** How far ahead they look, ms: the horizon their models were trained for. */
  readonly horizonMs: number;
  /** The ensemble's prediction per instrument, bps; NaN when none (not warm, or every member faulted). */
  readonly value: Float64Array;
  /** Tier that served each instrument ('' when none). */
  readonly tier: readonly string[];
  /** Model ids (name@version) that answered for each instrument, joined with '+'. */
  readonly models: readonly string[];
}

/** One frame's predictions. A fresh object per frame: consumers may keep it. */
export interface PredictionFrame {
  /** Monotonic time of the features frame the predictions are for, and of their arrival. */
  readonly frameAt: number;
  readonly at: number;
  readonly symbols: readonly string[];
  /** Every horizon served, shortest first; the same list every frame. */
  readonly horizons: readonly HorizonPredictions[];
  /** Slowest member batch from send to result, ms (the frame's latency), and its time inside onnxruntime. */
  readonly latencyMs: number;
  readonly inferenceMs: number;
  /** A member batch that failed: which model and why. Its instruments fall back to the other members. */
  readonly faults: readonly string[];
}

/** A frame's predictions at `horizonMs`, or undefined when that horizon is not served. */
export const predictionsAt = (frame: PredictionFrame, horizonMs: number): HorizonPredictions | undefined => frame.horizons.find((h) => h.horizonMs === horizonMs);

/** The horizons a frame carries, in words: "10s, 5m". */
export const servedHorizons = (frame: PredictionFrame): string => frame.horizons.map((h) => horizonLabel(h.horizonMs)).join(', ') || 'none';

/** A horizon and the tiers that serve it. */
export interface HorizonTiers {
  readonly horizonMs: number;
  readonly tiers: TierConfig;
}

export interface PredictorOptions {
  /** The horizons served, each with its tiers; at least one. */
  readonly horizons: readonly HorizonTiers[];
  /** Frames of history kept per instrument for sequence models (the registry refuses a longer window). */
  readonly historyFrames: number;
  /**
   * A frame's batches run on the main thread while their estimated time adds
   * up to no more than this, ms; the rest go to the workers. Infinity runs
   * everything here (as does a pool without workers).
   */
  readonly inThreadMaxMs?: number;
  /** Watches each model's drift and live error; a model beyond its bound serves no instrument until it recovers. */
  readonly monitor?: FrameMonitor;
}

/**
 * 1 ms: a frame of a few instruments through three small models costs 0.1 to
 * 0.3 ms on the main thread, while the trip to a worker and back alone took
 * 0.15 ms at the median and 1.5 to 5 ms at p99 on two busy cores (bench
 * models, round trips): below a millisecond the main thread answers sooner,
 * and a millisecond is a fifth of the event loop's 5 ms p99 budget. With 0.2
 * ms, the third model of such a frame went to a worker and the frame waited
 * for it (bench pipeline).
 */
export const DEFAULT_IN_THREAD_MAX_MS = 1;

/** The monitor's figures for a model beyond its bound, in words. */
function describeBound(monitor: FrameMonitor, id: string): string {
  const live = monitor.liveError(id);
  return live ? `RMSE ${live.rmse.toFixed(3)} against the zero forecast's ${live.zeroRmse.toFixed(3)} over ${live.n} predictions, Diebold-Mariano ${live.dmVsZero.toFixed(2)}` : 'no figures';
}

const NO_INSTRUMENTS = new Int32Array(0);

/** A stable pseudo-random share per instrument, so a shadow sees the same instruments every frame. */
export const shadowShare = (instrument: number) => (Math.imul(instrument + 1, 2654435761) >>> 0) / 2 ** 32;

/** Batches and rows run on one side, and the largest batch. */
export interface PathCount {
  batches: number;
  rows: number;
  maxRows: number;
}

/** A horizon's tiers, and the feature column its specialist routes on (-1 without one). */
export interface ServedHorizon {
  readonly horizonMs: number;
  readonly tiers: Tiers;
  readonly volatilityColumn: number;
}

export class TieredPredictor implements Restorable {
  /** Shortest first, as the frames list them. */
  readonly horizons: readonly ServedHorizon[];
  /** Every frame's features, in shared memory for the workers to pack from. */
  readonly history: FrameHistory;
  /** Where batches ran, shadows included: on the main thread, in the workers. */
  readonly paths: { readonly here: PathCount; readonly workers: PathCount } = { here: { batches: 0, rows: 0, maxRows: 0 }, workers: { batches: 0, rows: 0, maxRows: 0 } };
  private readonly width: number;
  private readonly inThreadMaxMs: number;
  // Scratch of average(), which runs whole between two awaits.
  private readonly sum: Float64Array;
  private readonly count: Int32Array;
  /** `a+b` for model-id lists seen before: an instrument's list is the same string every frame, not a new one. */
  private readonly joined = new Map<string, Map<string, string>>();
  readonly monitor: FrameMonitor | undefined;

  constructor(
    private readonly registry: ModelRegistry,
    schema: FeatureSchema,
    private readonly symbols: readonly string[],
    options: PredictorOptions,
    log: Logger,
    private readonly now: () => number,
  ) {
    this.width = schema.features.length;
    this.history = new FrameHistory(symbols.length, this.width, options.historyFrames);
    this.sum = new Float64Array(symbols.length);
    this.count = new Int32Array(symbols.length);
    this.inThreadMaxMs = options.inThreadMaxMs ?? DEFAULT_IN_THREAD_MAX_MS;
    if (!(this.inThreadMaxMs >= 0)) throw new Error(`inThreadMaxMs must be 0 or more, not ${options.inThreadMaxMs}`);
    if (options.horizons.length === 0) throw new Error('a predictor serves at least one horizon');
    const sorted = [...options.horizons].sort((x, y) => x.horizonMs - y.horizonMs);
    this.horizons = sorted.map(({ horizonMs, tiers }, k) => {
      const label = horizonLabel(horizonMs);
      if (k > 0 && sorted[k - 1]!.horizonMs === horizonMs) throw new Error(`horizon ${label} is configured twice`);
      const hv = tiers.highVol;
      const volatilityColumn = hv ? schema.features.indexOf(hv.feature) : -1;
      if (hv && volatilityColumn < 0) throw new Error(`the ${label} high-volatility tier reads ${hv.feature}, which the live features do not have (live: ${schema.features.join(', ')})`);
      return { horizonMs, tiers: new Tiers(horizonMs, tiers, symbols, registry, log), volatilityColumn };
    });
    this.monitor = options.monitor;
  }

  /** The start-tier models refused, at every horizon: their tiers serve without them. */
  get unavailable(): UnavailableModel[] {
    return this.horizons.flatMap((h) => h.tiers.unavailable);
  }

  /**
   * Loads the start tiers of every horizon, then makes sure a worker is
   * ready if a frame of the whole universe could cost more than the main
   * thread may spend (the golden runs measured the models): a tier's
   * members all on every instrument. A daemon whose batches all run here
   * starts no worker at all.
   */
  async start(): Promise<void> {
    for (const h of this.horizons) await h.tiers.start();
    const { pool } = this.registry;
    if (pool.maxWorkers === 0 || this.inThreadMaxMs === Infinity) return;
    const byTier = new Map<string, number>();
    for (const slot of this.registry.slotNames()) {
      const t = tierOf(slot) ?? slot;
      byTier.set(t, (byTier.get(t) ?? 0) + pool.costOf(this.registry.live(slot).key, this.symbols.length));
    }
    if (Math.max(0, ...byTier.values()) > this.inThreadMaxMs) await pool.grow(1);
  }

  /**
   * Takes a frame synchronously (it is reused by its publisher) and resolves
   * with its predictions. A frame not predicted must still be observed, or
   * a sequence model's window would skip it.
   */
  predict(frame: FeatureFrame): Promise<PredictionFrame> {
    const frameAt = frame.at;
    this.observe(frame);
    const copy = this.monitor?.copy(frame);
    // Every batch is made now, from this frame, with the live model of the moment; the cheap ones run here.
    const { pool } = this.registry;
    let budget = pool.maxWorkers === 0 ? Infinity : this.inThreadMaxMs;
    const runs: Promise<MemberResult>[] = [];
    const plan = (horizon: number, slot: string, model: ServingModel, instruments: readonly number[], shadow: boolean) => {
      const ready = this.ready(instruments, model.window);
      const cost = pool.costOf(model.key, ready.length);
      const here = cost <= budget;
      if (here) budget -= cost;
      runs.push(this.runMember(horizon, slot, model, ready, shadow, here ? 'here' : 'worker'));
    };
    const tiers = this.horizons.map((served, h) => {
      const { tier, byTier } = this.route(served, frame);
      for (const [t, instruments] of byTier) {
        for (const slot of served.tiers.members(t)) {
          if (!this.registry.has(slot)) continue;
          plan(h, slot, this.registry.live(slot), instruments, false);
          const shadow = this.registry.shadowOf(slot);
          if (shadow) {
            const share = instruments.filter((i) => shadowShare(i) < shadow.stats.share);
            if (share.length > 0) plan(h, slot, shadow.model, share, true);
          }
        }
      }
      return tier;
    });
    return Promise.all(runs).then((results) => {
      if (copy) this.monitor!.observe(copy, results);
      return this.combine(frameAt, tiers, results);
    });
  }

  /** Each warm instrument's tier at one horizon ('' when not warm), and the instruments of each tier. */
  private route(served: ServedHorizon, frame: FeatureFrame): { tier: string[]; byTier: Map<string, number[]> } {
    const n = this.symbols.length;
    const tier: string[] = new Array<string>(n).fill('');
    const byTier = new Map<string, number[]>();
    for (let i = 0; i < n; i++) {
      if (!frame.warm[i]) continue;
      const vol = served.volatilityColumn >= 0 ? frame.values[i * this.width + served.volatilityColumn]! : NaN;
      const t = served.tiers.route(i, vol);
      tier[i] = t;
      let list = byTier.get(t);
      if (!list) byTier.set(t, (list = []));
      list.push(i);
    }
    return { tier, byTier };
  }

  /**
   * The history is the state later predictions depend on (sum and count are
   * scratch of combine, the joined ids a cache). Left out: `paths` and the
   * shadows' scores, counters for reports; and the models the registry and
   * the tiers have loaded, which a process loads for itself: until a
   * sector's models have, its instruments route to the base tier, as after
   * any start.
   */
  saveState(): EngineState {
    return this.history.saveState();
  }

  loadState(state: EngineState): void {
    this.history.loadState(state);
  }

  /** Adds a frame to every instrument's history. */
  observe(frame: FeatureFrame): void {
    this.history.observe(frame.values, frame.warm);
  }

  /** The instruments warm for the model's whole window. */
  private ready(instruments: readonly number[], window: number): Int32Array {
    const { streak } = this.history;
    let k = 0;
    for (const i of instruments) if (streak[i]! >= window) k++;
    const ready = new Int32Array(k);
    k = 0;
    for (const i of instruments) if (streak[i]! >= window) ready[k++] = i;
    return ready;
  }

  private async runMember(horizon: number, slot: string, model: ServingModel, instruments: Int32Array, shadow: boolean, where: Where): Promise<MemberResult> {
    const member = { horizon, slot, model, shadow };
    if (instruments.length === 0) return { ...member, instruments, values: undefined };
    try {
      const result = await this.registry.runFrame(model, this.history, instruments, where);
      const path = result.worker < 0 ? this.paths.here : this.paths.workers;
      path.batches++;
      path.rows += result.rows.length;
      path.maxRows = Math.max(path.maxRows, result.rows.length);
      return { ...member, instruments: result.rows, values: result.outputs[model.manifest.outputs[0]!], result };
    } catch (err) {
      // No rows answered: and a worker's run took `instruments` over (its buffer is detached now).
      return { ...member, instruments: NO_INSTRUMENTS, values: undefined, fault: `${model.id}: ${(err as Error).message}` };
    }
  }

  private combine(frameAt: number, tiers: string[][], results: MemberResult[]): PredictionFrame {
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
    }
    const horizons = this.horizons.map((_, h) => this.average(h, tiers[h]!, results, faults));
    for (const r of results) if (r.shadow) this.scoreShadow(r, results.find((l) => !l.shadow && l.slot === r.slot));
    return { frameAt, at: this.now(), symbols: this.symbols, horizons, latencyMs, inferenceMs, faults };
  }

  /** The ensemble of horizon `horizon` (its index): per instrument, the mean of the answers of its tier's members. */
  private average(horizon: number, tier: string[], results: readonly MemberResult[], faults: string[]): HorizonPredictions {
    const n = this.symbols.length;
    const { sum, count } = this;
    sum.fill(0);
    count.fill(0);
    const models = new Array<string>(n).fill('');
    for (const r of results) {
      if (r.horizon !== horizon || r.shadow || !r.values) continue;
      const { values, instruments } = r;
      const id = r.model.id;
      // Still run and watched, so its recovery is seen; its answers wait until then.
      if (this.monitor?.beyondBound(id)) {
        faults.push(`${id}: live error beyond its bound (${describeBound(this.monitor, id)}): its instruments fall back to the other members of their tier`);
        continue;
      }
      for (let k = 0; k < instruments.length; k++) {
        const i = instruments[k]!;
        sum[i] = sum[i]! + values[k]!;
        count[i]!++;
        models[i] = this.join(models[i]!, id);
      }
    }
    const value = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      value[i] = count[i]! > 0 ? sum[i]! / count[i]! : NaN;
      if (count[i] === 0) tier[i] = '';
    }
    return { horizonMs: this.horizons[horizon]!.horizonMs, value, tier, models };
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
  /** Index of its horizon in `horizons`. */
  readonly horizon: number;
  readonly slot: string;
  readonly model: ServingModel;
  /** The instruments of the batch's rows: row k of `values` is instruments[k]'s. */
  readonly instruments: Int32Array;
  readonly values: Float32Array | undefined;
  readonly result?: FrameResult;
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
  /**
   * The drift monitor (on a thread of its own for a large universe): the
   * frames it was too far behind to watch, and a promise that it has
   * watched every frame answered so far (a replay waits for it, so the
   * verdicts reach the same frames however fast the machine is).
   */
  readonly monitor: Pick<DaemonMonitor, 'skipped' | 'caughtUp'>;
}

/** A refused model as one fault line: `base/1 not serving: models/x/manifest.json: checksum mismatch: ...`. */
export const unavailableFault = (u: UnavailableModel): string => `${u.slot} not serving: ${u.manifest}: ${u.reason}`;
