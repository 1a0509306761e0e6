/**
 * Drift: how far live data has moved from what a model learned on, and how
 * wrong the model has been since. Plain typed arrays, one instance per
 * model, fed once per prediction frame:
 *
 *   population stability (PSI) of each input and of the prediction, per
 *   instrument, over a sliding window of frames, against the quantile bins
 *   the manifest recorded at training;
 *
 *   the live error once the horizon has passed: the prediction made at t
 *   against the mid's realised log return from t to t + horizon, as a
 *   rolling RMSE and hit rate, next to the zero forecast's RMSE over the
 *   same predictions.
 */
import { dieboldMariano } from './metrics.js';

/** Quantile bins of one variable: `edges` cut the line into edges.length + 1 bins, `shares` of the training rows fell in each. */
export interface Reference {
  readonly edges: number[];
  readonly shares: number[];
}

/** Bins of deciles by default: fewer when values repeat (a tick-grid spread has a handful). */
export const REFERENCE_BINS = 10;
/** A bin never counts as emptier than this share, so ln(a/e) stays finite. */
const FLOOR = 1e-4;

/** The bin of `v`: the number of edges at or below it. */
export function binOf(edges: readonly number[], v: number): number {
  let lo = 0;
  let hi = edges.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (v >= edges[mid]!) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Edges closer than this share of the 10-90 % range merge. */
const MIN_GAP = 0.05;

/**
 * Quantile bins of finite `values`, and the share of them in each bin (by
 * `binOf`, as live data will be binned). Edges closer than 5 % of the
 * 10-90 % range to each other or to the extremes merge: a one-tick spread in basis points takes a slightly
 * different value at every price level, and bins that split it would call
 * a price move drift.
 */
export function referenceOf(values: ArrayLike<number>, bins = REFERENCE_BINS): Reference {
  const finite = Float64Array.from(Array.prototype.filter.call(values, Number.isFinite) as number[]).sort();
  if (finite.length === 0) throw new Error('a reference needs at least one finite value');
  const at = (q: number) => finite[Math.min(finite.length - 1, Math.floor(q * finite.length))]!;
  const gap = MIN_GAP * (at(0.9) - at(0.1));
  const edges: number[] = [];
  for (let q = 1; q < bins; q++) {
    const e = at(q / bins);
    // The lowest and highest values bound the first and last bins: an edge inside their cluster would split it too.
    const max = finite.at(-1)!;
    if (e > (edges.at(-1) ?? finite[0]!) + gap && (e < max - gap || e === max)) edges.push(e);
  }
  const counts = new Array<number>(edges.length + 1).fill(0);
  for (const v of finite) counts[binOf(edges, v)]!++;
  return { edges, shares: counts.map((c) => c / finite.length) };
}

/** PSI = Σ (actual − expected) · ln(actual / expected) over the bins; `counts` of `total` observations. */
export function psi(reference: Reference, counts: ArrayLike<number>, total: number): number {
  if (total <= 0) return NaN;
  let sum = 0;
  for (let b = 0; b < reference.shares.length; b++) {
    const e = Math.max(reference.shares[b]!, FLOOR);
    const a = Math.max(counts[b]! / total, FLOOR);
    sum += (a - e) * Math.log(a / e);
  }
  return sum;
}

/** A slot of the window holding no observation. */
const NONE = 255;

/**
 * Per instrument, the bins of its last `window` observations (a row of
 * every variable: the inputs, then the prediction), and their PSI against
 * that instrument's references. A non-finite value takes its slot but is
 * not counted: the window is the instrument's last `window` rows.
 *
 * A row's bins sit side by side (`(instrument * window + slot) * variables
 * + variable`), so observing an instrument touches one stretch of memory
 * rather than a cache line per variable (bench drift: the monitor's cost per
 * frame of 5,000 instruments went from 2.8 to 2.5 ms).
 */
export class StabilityWindow {
  readonly variables: number;
  private readonly ring: Uint8Array;
  /** `(instrument * variables + variable) * maxBins + bin`. */
  private readonly counts: Int32Array;
  /** Finite observations in the window, per instrument and variable. */
  private readonly filled: Int32Array;
  /** The slot the instrument's next row goes to. */
  private readonly next: Int32Array;
  private readonly maxBins: number;

  readonly instruments: number;

  constructor(
    /** Per instrument, one reference per variable (instruments may share one list). */
    private readonly references: readonly (readonly Reference[])[],
    readonly window: number,
  ) {
    if (!Number.isInteger(window) || window < 1) throw new RangeError(`a drift window must be a whole number of frames of at least 1, got ${window}`);
    const instruments = references.length;
    this.instruments = instruments;
    this.variables = references[0]?.length ?? 0;
    if (references.some((r) => r.length !== this.variables)) throw new RangeError('every instrument needs a reference per variable');
    this.maxBins = Math.max(...references.flatMap((list) => list.map((r) => r.shares.length)));
    if (this.maxBins > NONE) throw new RangeError(`at most ${NONE} bins`);
    this.ring = new Uint8Array(instruments * window * this.variables).fill(NONE);
    this.counts = new Int32Array(instruments * this.variables * this.maxBins);
    this.filled = new Int32Array(instruments * this.variables);
    this.next = new Int32Array(instruments);
  }

  /** One row of `instrument`: `values[variable]` for every variable; the oldest row slides out. */
  observe(instrument: number, values: ArrayLike<number>): void {
    const { variables, maxBins, ring, counts, filled } = this;
    const at = (instrument * this.window + this.next[instrument]!) * variables;
    const references = this.references[instrument]!;
    for (let v = 0; v < variables; v++) {
      const k = instrument * variables + v;
      const old = ring[at + v]!;
      if (old !== NONE) {
        counts[k * maxBins + old]!--;
        filled[k]!--;
      }
      const value = values[v]!;
      if (Number.isFinite(value)) {
        const bin = binOf(references[v]!.edges, value);
        ring[at + v] = bin;
        counts[k * maxBins + bin]!++;
        filled[k]!++;
      } else ring[at + v] = NONE;
    }
    const next = this.next[instrument]! + 1;
    this.next[instrument] = next === this.window ? 0 : next;
  }

  /** Finite observations of `variable` for `instrument` in the window. */
  count(instrument: number, variable: number): number {
    return this.filled[instrument * this.variables + variable]!;
  }

  /** The PSI of `variable` for `instrument` over its window (NaN before any observation). */
  psi(instrument: number, variable: number): number {
    const k = instrument * this.variables + variable;
    return psi(this.references[instrument]![variable]!, this.counts.subarray(k * this.maxBins, (k + 1) * this.maxBins), this.filled[k]!);
  }
}

/** A model's live error over the predictions resolved in its last `windowFrames` frames (all instruments). */
export interface LiveErrorStats {
  /** Predictions resolved in the window, and the frames that resolved any. */
  readonly n: number;
  readonly frames: number;
  readonly rmse: number;
  /** The zero forecast's RMSE on the same realised returns. */
  readonly zeroRmse: number;
  /** Share of resolved predictions with a non-zero realised return whose sign the prediction had. */
  readonly hitRate: number;
  /**
   * Diebold–Mariano statistic of the model's squared errors against the
   * zero forecast's, frame by frame: above about 2.33 the model is worse
   * than predicting nothing with 99 % confidence.
   */
  readonly dmVsZero: number;
}

/** Two models scored on the same realised returns: the challenger's squared errors against the champion's. */
export interface PairedErrorStats {
  readonly n: number;
  readonly frames: number;
  readonly rmse: readonly [number, number];
  /** Diebold–Mariano statistic of stream b's squared errors minus stream a's: below about −2.33 b is better with 99 % confidence. */
  readonly dm: number;
}

/**
 * Predictions waiting for their horizon, then scored against the realised
 * return, summed per frame in a ring of `windowFrames`. With several
 * `streams` (a champion and its challenger), a prediction of each is
 * queued together and only when all are finite, so every stream is scored
 * on the same returns. At most `pendingPerInstrument` wait per instrument:
 * one is kept every `keepEvery` frames, so a 15-minute horizon does not
 * hold 900 per instrument.
 */
export class LiveError {
  /** `instrument * pending + slot`: when due, the mid then; `(… ) * streams + s`: each stream's prediction. */
  private readonly dueAt: Float64Array;
  private readonly mid: Float64Array;
  private readonly prediction: Float64Array;
  private readonly head: Int32Array;
  private readonly size: Int32Array;
  private readonly pending: number;
  /** Per frame of the ring: predictions resolved, each stream's squared errors, the zero forecast's, calls, each stream's hits. */
  private readonly count: Int32Array;
  private readonly squares: Float64Array;
  private readonly zeroSquares: Float64Array;
  private readonly calls: Int32Array;
  private readonly hits: Int32Array;
  /** Scratch: the window's loss differentials. */
  private readonly differential: Float64Array;
  private frames = 0;
  /** Autocorrelation the DM statistic allows for: predictions resolved within a horizon of each other overlap. */
  private readonly lag: number;

  constructor(
    readonly instruments: number,
    readonly horizonMs: number,
    frameMs: number,
    readonly windowFrames: number,
    private readonly keepEvery: number,
    pendingPerInstrument: number,
    readonly streams = 1,
  ) {
    this.pending = pendingPerInstrument;
    const n = instruments * pendingPerInstrument;
    this.dueAt = new Float64Array(n);
    this.mid = new Float64Array(n);
    this.prediction = new Float64Array(n * streams);
    this.head = new Int32Array(instruments);
    this.size = new Int32Array(instruments);
    this.count = new Int32Array(windowFrames);
    this.squares = new Float64Array(windowFrames * streams);
    this.zeroSquares = new Float64Array(windowFrames);
    this.calls = new Int32Array(windowFrames);
    this.hits = new Int32Array(windowFrames * streams);
    this.differential = new Float64Array(windowFrames);
    this.lag = Math.min(Math.ceil(horizonMs / frameMs), Math.floor(windowFrames / 4));
  }

  /**
   * One frame at `at`, arrays by instrument: each prediction due by now is
   * scored against `mid` (the instrument's mid now; a prediction whose first
   * frame at or past its due time has no mid is dropped unscored), then on
   * every `keepEvery`-th frame the instrument's predictions (one array per
   * stream), when all are finite, are queued with the mid they were made from.
   */
  observe(at: number, mid: ArrayLike<number>, ...predictions: ArrayLike<number>[]): void {
    const k = this.streams;
    if (predictions.length !== k) throw new RangeError(`${k} prediction streams, got ${predictions.length}`);
    const keep = this.frames % this.keepEvery === 0;
    const f = this.frames++ % this.windowFrames;
    this.count[f] = 0;
    this.zeroSquares[f] = 0;
    this.calls[f] = 0;
    this.squares.fill(0, f * k, f * k + k);
    this.hits.fill(0, f * k, f * k + k);
    for (let i = 0; i < this.instruments; i++) {
      const base = i * this.pending;
      const now = mid[i]!;
      while (this.size[i]! > 0) {
        const slot = base + this.head[i]!;
        if (this.dueAt[slot]! > at) break;
        if (now > 0) {
          const y = Math.log(now / this.mid[slot]!) * 10_000;
          this.count[f]!++;
          this.zeroSquares[f]! += y * y;
          if (y !== 0) this.calls[f]!++;
          for (let s = 0; s < k; s++) {
            const p = this.prediction[slot * k + s]!;
            this.squares[f * k + s]! += (p - y) ** 2;
            if (y !== 0 && Math.sign(p) === Math.sign(y)) this.hits[f * k + s]!++;
          }
        }
        this.head[i] = (this.head[i]! + 1) % this.pending;
        this.size[i]!--;
      }
      if (!keep || !(now > 0) || this.size[i] === this.pending) continue;
      if (predictions.some((p) => !Number.isFinite(p[i]!))) continue;
      const slot = base + ((this.head[i]! + this.size[i]!) % this.pending);
      this.dueAt[slot] = at + this.horizonMs;
      this.mid[slot] = now;
      for (let s = 0; s < k; s++) this.prediction[slot * k + s] = predictions[s]![i]!;
      this.size[i]!++;
    }
  }

  /** Walks the window's frames with resolved predictions, oldest first. */
  private eachFrame(visit: (f: number) => void): number {
    const frames = Math.min(this.frames, this.windowFrames);
    let used = 0;
    for (let j = 0; j < frames; j++) {
      const f = (this.frames - frames + j) % this.windowFrames;
      if (this.count[f] === 0) continue;
      visit(f);
      used++;
    }
    return used;
  }

  /** Stream `s` against the zero forecast. */
  stats(s = 0): LiveErrorStats {
    const k = this.streams;
    let n = 0;
    let sq = 0;
    let zero = 0;
    let calls = 0;
    let hits = 0;
    let used = 0;
    this.eachFrame((f) => {
      const c = this.count[f]!;
      n += c;
      sq += this.squares[f * k + s]!;
      zero += this.zeroSquares[f]!;
      calls += this.calls[f]!;
      hits += this.hits[f * k + s]!;
      this.differential[used++] = (this.squares[f * k + s]! - this.zeroSquares[f]!) / c;
    });
    return {
      n,
      frames: used,
      rmse: n > 0 ? Math.sqrt(sq / n) : NaN,
      zeroRmse: n > 0 ? Math.sqrt(zero / n) : NaN,
      hitRate: calls > 0 ? hits / calls : NaN,
      dmVsZero: dieboldMariano(this.differential, used, this.lag),
    };
  }

  /** Stream `b` against stream `a` on the same resolved predictions. */
  versus(a: number, b: number): PairedErrorStats {
    const k = this.streams;
    let n = 0;
    let sa = 0;
    let sb = 0;
    let used = 0;
    this.eachFrame((f) => {
      n += this.count[f]!;
      sa += this.squares[f * k + a]!;
      sb += this.squares[f * k + b]!;
      this.differential[used++] = (this.squares[f * k + b]! - this.squares[f * k + a]!) / this.count[f]!;
    });
    return { n, frames: used, rmse: [n > 0 ? Math.sqrt(sa / n) : NaN, n > 0 ? Math.sqrt(sb / n) : NaN], dm: dieboldMariano(this.differential, used, this.lag) };
  }
}
