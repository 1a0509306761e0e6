/**
 * Health of every feature of every instrument, judged on each emitted
 * feature vector over a window of recent emissions (so a feature recovers
 * once the bad readings leave the window), with the score of the production
 * system keel learns from:
 *
 *   start at 100; zero rate > 50 % -> -50, else > 30 % -> -25;
 *   more than 10 consecutive zeros -> -30; NaN/Inf rate > 1 % -> -20; floor 0.
 *   HEALTHY >= 80, WARNING >= 50, CRITICAL > 0, DISABLED = 0.
 *
 * Besides the scores it keeps the conditions that must stop trading, each
 * under a stable key with a reason in words: a CRITICAL or DISABLED feature
 * a model uses, a NaN or Inf in a model input right now, data older than the
 * limit, a feed reported silent, an event-loop stall longer than the data
 * age limit (see `checkLoop`). Advisory features (no model uses them) warn
 * and never stop trading. Only warm instruments (two-sided and with enough
 * history) are judged on their vectors; staleness for all that have a book.
 *
 * An instrument without a book (level-1 quotes only, as most of a wide
 * universe is) cannot be traded: its depth features are never there and
 * are not judged, the rest are judged as advisory, and neither its data
 * age nor a silent feed of it stops trading. A booked instrument's data age
 * counts from when its depth was asked of IB, when that is known: one still
 * staged, or waiting for a depth slot, is not stale.
 *
 * Everything per reading is typed-array arithmetic; the map of conditions is
 * rebuilt only when one appears or clears.
 */
import { checkArrays, restoreArrays, type EngineState, type Restorable, type StateArray } from '../engine-state.js';
import type { FeedSilence } from '../ib/subscription-plan.js';
import { DEPTH_FEATURES, type FeatureSchema } from './features.js';

export interface HealthThresholds {
  /** Emissions in the window the rates are taken over. */
  readonly window: number;
  readonly zeroRateWarning: number;
  readonly zeroRateCritical: number;
  readonly maxConsecutiveZeros: number;
  readonly maxNanRate: number;
  readonly penalties: { readonly zeroRateWarning: number; readonly zeroRateCritical: number; readonly consecutiveZeros: number; readonly nanRate: number };
  readonly healthyAt: number;
  readonly warningAt: number;
}

export const DEFAULT_THRESHOLDS: HealthThresholds = {
  window: 100,
  zeroRateWarning: 0.3,
  zeroRateCritical: 0.5,
  maxConsecutiveZeros: 10,
  maxNanRate: 0.01,
  penalties: { zeroRateWarning: 25, zeroRateCritical: 50, consecutiveZeros: 30, nanRate: 20 },
  healthyAt: 80,
  warningAt: 50,
};

export const STATUSES = ['HEALTHY', 'WARNING', 'CRITICAL', 'DISABLED'] as const;
export type FeatureStatus = (typeof STATUSES)[number];
export const HEALTHY = 0;
export const WARNING = 1;
export const CRITICAL = 2;
export const DISABLED = 3;

export function scoreOf(zeroRate: number, consecutiveZeros: number, nanRate: number, t: HealthThresholds = DEFAULT_THRESHOLDS): number {
  let score = 100;
  if (zeroRate > t.zeroRateCritical) score -= t.penalties.zeroRateCritical;
  else if (zeroRate > t.zeroRateWarning) score -= t.penalties.zeroRateWarning;
  if (consecutiveZeros > t.maxConsecutiveZeros) score -= t.penalties.consecutiveZeros;
  if (nanRate > t.maxNanRate) score -= t.penalties.nanRate;
  return Math.max(0, score);
}

/** HEALTHY, WARNING, CRITICAL or DISABLED as their index in STATUSES. */
export function statusOf(score: number, t: HealthThresholds = DEFAULT_THRESHOLDS): number {
  return score >= t.healthyAt ? HEALTHY : score >= t.warningAt ? WARNING : score > 0 ? CRITICAL : DISABLED;
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const timeOfDay = (wallMs: number) => `${new Date(wallMs).toISOString().slice(11, 19)} UTC`;
const strings = (list: unknown): list is string[] => Array.isArray(list) && list.every((s) => typeof s === 'string');

/** A saved FeatureHealth's words (see saveState), or nothing where they are not that. */
function parseWords(bytes: ArrayLike<number>): [string[]?, [string, string][]?] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(bytes as Uint8Array));
  } catch {
    return [];
  }
  if (!Array.isArray(parsed)) return [];
  const [silence, problems] = parsed as unknown[];
  const pairs = Array.isArray(problems) && problems.every((e) => strings(e) && e.length === 2);
  return [strings(silence) ? silence : undefined, pairs ? (problems as [string, string][]) : undefined];
}

const ZERO = 1;
const NOT_FINITE = 2;
/** Why a feature stops trading, as bits. */
const BAD_SCORE = 1;
const BAD_VALUE = 2;

export interface HealthOptions {
  readonly thresholds: HealthThresholds;
  /** Feature names no model uses: judged, reported, never a reason to stop trading. */
  readonly advisory: readonly string[];
  /** Data older than this stops trading. */
  readonly maxDataAgeMs: number;
  /** Per instrument, whether it has a book (default: all): only those can stop trading (see above). */
  readonly booked?: readonly boolean[];
}

export class FeatureHealth implements Restorable {
  readonly width: number;
  /** Score and status index per `instrument * width + feature`; NaN / -1 until judged. */
  readonly scores: Float64Array;
  readonly status: Int8Array;
  readonly zeroCount: Uint16Array;
  readonly badCount: Uint16Array;
  readonly consecutiveZeros: Uint32Array;
  /** When a NaN or Inf was last seen (NaN: never). */
  readonly lastBadAt: Float64Array;
  /** Indices whose status changed in the last `observe` (a first HEALTHY is not a change). */
  readonly changed: Int32Array;
  /** 1 for features no model uses, by feature column. */
  readonly advisory: Uint8Array;
  /** 1 for instruments with a book: the only ones whose readings can stop trading. */
  readonly booked: Uint8Array;
  changedCount = 0;
  /** What stops trading now, key -> reason. Replaced (not mutated) when it changes. */
  problems: ReadonlyMap<string, string> = new Map();

  private readonly window: Uint8Array;
  private readonly filled: Int32Array;
  private readonly windowPos: Int32Array;
  private readonly featureProblems: Uint8Array;
  private readonly stale: Float64Array;
  private readonly silentAt: Float64Array;
  /** Why each silent feed is a condition, in words fixed when it was reported. */
  private readonly silence: string[];
  /** When the last health check ran (a judged frame or a sweep); NaN before the first. */
  private checkedAt = NaN;
  /** The last stall longer than the age limit (0: none held), and when it ended. */
  private stallMs = 0;
  private stallEndedAt = NaN;
  /** 1 for the depth features, by column: not judged for an instrument without a book. */
  private readonly depthColumn: Uint8Array;
  private readonly indexOf = new Map<string, number>();
  private dirty = false;

  constructor(
    readonly symbols: readonly string[],
    readonly schema: FeatureSchema,
    readonly options: HealthOptions,
  ) {
    const names = schema.features;
    for (const name of options.advisory) {
      if (!names.includes(name)) throw new Error(`advisory feature '${name}' is not in the feature schema (${names.join(', ')})`);
    }
    this.width = names.length;
    const cells = symbols.length * this.width;
    this.scores = new Float64Array(cells).fill(NaN);
    this.status = new Int8Array(cells).fill(-1);
    this.zeroCount = new Uint16Array(cells);
    this.badCount = new Uint16Array(cells);
    this.consecutiveZeros = new Uint32Array(cells);
    this.lastBadAt = new Float64Array(cells).fill(NaN);
    this.changed = new Int32Array(cells);
    this.advisory = Uint8Array.from(names, (n) => (options.advisory.includes(n) ? 1 : 0));
    this.depthColumn = Uint8Array.from(names, (n) => (DEPTH_FEATURES.includes(n) ? 1 : 0));
    if (options.booked && options.booked.length !== symbols.length) throw new RangeError(`booked has ${options.booked.length} flags for ${symbols.length} instruments`);
    this.booked = Uint8Array.from(symbols, (_, i) => (options.booked?.[i] === false ? 0 : 1));
    symbols.forEach((symbol, i) => this.indexOf.set(symbol, i));
    this.window = new Uint8Array(cells * options.thresholds.window);
    this.filled = new Int32Array(symbols.length);
    this.windowPos = new Int32Array(symbols.length);
    this.featureProblems = new Uint8Array(cells);
    this.stale = new Float64Array(symbols.length);
    this.silentAt = new Float64Array(symbols.length).fill(NaN);
    this.silence = symbols.map(() => '');
  }

  /** Judges one emitted vector set: `values` is `instrument * width + feature`. */
  observe(values: Float64Array, warm: Uint8Array, now: number): void {
    const t = this.options.thresholds;
    const size = t.window;
    const w = this.width;
    this.changedCount = 0;
    this.checkLoop(now);
    for (let i = 0; i < this.symbols.length; i++) {
      if (warm[i] !== 1) continue;
      const booked = this.booked[i] === 1;
      const pos = this.windowPos[i]!;
      const full = this.filled[i] === size;
      if (!full) this.filled[i]!++;
      this.windowPos[i] = (pos + 1) % size;
      for (let f = 0; f < w; f++) {
        if (!booked && this.depthColumn[f] === 1) continue;
        const k = i * w + f;
        const x = values[k]!;
        const flag = x === 0 ? ZERO : x - x === 0 ? 0 : NOT_FINITE;
        const slot = k * size + pos;
        // Unfilled slots count as clean.
        const old = full ? this.window[slot]! : 0;
        this.window[slot] = flag;
        // A clean reading replacing a clean one, after a clean one, changes nothing: the usual case, kept cheap.
        if (flag === 0 && old === 0 && this.consecutiveZeros[k] === 0 && this.featureProblems[k] === 0 && this.status[k] !== -1) continue;
        if (old === ZERO) this.zeroCount[k]!--;
        else if (old === NOT_FINITE) this.badCount[k]!--;
        if (flag === ZERO) {
          this.zeroCount[k]!++;
          this.consecutiveZeros[k]!++;
        } else {
          this.consecutiveZeros[k] = 0;
          if (flag === NOT_FINITE) {
            this.badCount[k]!++;
            this.lastBadAt[k] = now;
          }
        }
        // Rates over the whole window, unfilled slots counted clean: one zero in a fresh window is not a 100 % zero rate.
        const score = scoreOf(this.zeroCount[k]! / size, this.consecutiveZeros[k]!, this.badCount[k]! / size, t);
        this.scores[k] = score;
        const status = statusOf(score, t);
        const was = this.status[k]!;
        if (status !== was) {
          this.status[k] = status;
          // A first judgment of HEALTHY is not news.
          if (was !== -1 || status !== HEALTHY) this.changed[this.changedCount++] = k;
        }
        if (this.advisory[f] === 1 || !booked) continue;
        const problem = (status >= CRITICAL ? BAD_SCORE : 0) | (flag === NOT_FINITE ? BAD_VALUE : 0);
        if (problem !== this.featureProblems[k]) {
          this.featureProblems[k] = problem;
          this.dirty = true;
        }
      }
    }
    if (this.dirty) this.rebuild();
  }

  /**
   * The 10 Hz sweep: data age for every booked instrument, and silent
   * feeds that have not come back. Before an instrument's first data
   * (`lastDataAt` NaN) its age counts from when its depth was asked of IB
   * (`depthAskedAt`, NaN: not yet, so not judged), or from `since` when
   * that is not known.
   */
  sweep(lastDataAt: Float64Array, since: number, now: number, depthAskedAt?: Float64Array): void {
    this.checkLoop(now);
    for (let i = 0; i < this.symbols.length; i++) {
      if (this.booked[i] === 0) continue;
      const last = lastDataAt[i]!;
      const from = last === last ? last : depthAskedAt ? depthAskedAt[i]! : since;
      const age = now - from;
      // NaN (depth not asked for yet) is not stale.
      const stale = age > this.options.maxDataAgeMs ? age : 0;
      // Only a change of state rebuilds: a stale age growing is the same condition.
      if ((stale === 0) !== (this.stale[i] === 0)) this.dirty = true;
      this.stale[i] = stale;
      const silentAt = this.silentAt[i]!;
      if (silentAt === silentAt && last > silentAt) {
        this.silentAt[i] = NaN;
        this.dirty = true;
      }
    }
    if (this.dirty) this.rebuild();
  }

  /**
   * subscriptions reported a feed of `symbol` silent (`found`: which, how
   * long, and the wall time): a condition until its data flows again
   * (booked instruments only). Its words are fixed here, in absolute terms,
   * as they are read long after.
   */
  feedSilent(symbol: string, now: number, found?: Omit<FeedSilence, 'symbol'> & { readonly wallAt: number }): void {
    const i = this.indexOf.get(symbol);
    if (i === undefined || this.booked[i] === 0) return;
    this.silentAt[i] = now;
    this.silence[i] = found
      ? `${symbol} ${found.kind} feed sent nothing for ${seconds(found.silentForMs)} while other feeds ticked; requested again at ${timeOfDay(found.wallAt)}, no data from it since`
      : `${symbol} feed sent nothing while other feeds ticked; requested again, no data from it since`;
    this.rebuild();
  }

  /**
   * Everything that moves (thresholds, flags and symbols are the
   * constructor's): for a shard checkpoint. The words go too, as UTF-8 JSON
   * in the last array: a silence's words are fixed when it is reported, and
   * the map as it stands, since its reasons are worded when a condition
   * appears (a stale age, a score) and not rebuilt as the numbers move on.
   * `dirty` is always false between calls: every reading ends rebuilding.
   */
  saveState(): EngineState {
    const words = new TextEncoder().encode(JSON.stringify([this.silence, [...this.problems]]));
    return { arrays: [...this.stateArrays(), words], numbers: [this.changedCount, this.checkedAt, this.stallMs, this.stallEndedAt] };
  }

  loadState(state: EngineState): void {
    const fixed = this.stateArrays();
    // The words are as long as they are: checked for being bytes (and the rest for fitting) before they are parsed.
    const into = [...fixed, new Uint8Array(state.arrays[fixed.length]?.length ?? 0)];
    checkArrays('FeatureHealth', into, state, 4);
    const [silence, problems] = parseWords(state.arrays[fixed.length]!);
    if (silence?.length !== this.symbols.length || !problems) {
      throw new Error(`FeatureHealth: state array ${fixed.length} is not the words of ${this.symbols.length} instruments' silences and of the problems`);
    }
    restoreArrays('FeatureHealth', into, state, 4);
    [this.changedCount, this.checkedAt, this.stallMs, this.stallEndedAt] = state.numbers as [number, number, number, number];
    silence.forEach((words, i) => (this.silence[i] = words));
    this.problems = new Map(problems);
    this.dirty = false;
  }

  private stateArrays(): StateArray[] {
    return [
      this.scores,
      this.status,
      this.zeroCount,
      this.badCount,
      this.consecutiveZeros,
      this.lastBadAt,
      this.changed,
      this.window,
      this.filled,
      this.windowPos,
      this.featureProblems,
      this.stale,
      this.silentAt,
    ];
  }

  /** Share of judged features that are HEALTHY, in percent (NaN: nothing judged yet). */
  qualityPct(): number {
    let judged = 0;
    let healthy = 0;
    for (const s of this.status) {
      if (s < 0) continue;
      judged++;
      if (s === HEALTHY) healthy++;
    }
    return judged === 0 ? NaN : (100 * healthy) / judged;
  }

  /** Why feature `k` has its score, in words. */
  explain(k: number): string {
    const pct = (n: number) => `${Math.round((100 * n) / this.options.thresholds.window)} %`;
    return `score ${this.scores[k]}: zero rate ${pct(this.zeroCount[k]!)}, ${this.consecutiveZeros[k]} consecutive zeros, NaN/Inf rate ${pct(this.badCount[k]!)}`;
  }

  /** Whether feature cell `k`'s ups and downs are detail (no model reads it, or its instrument has no book), not news. */
  isAdvisory(k: number): boolean {
    return this.advisory[k % this.width] === 1 || this.booked[Math.floor(k / this.width)] === 0;
  }

  nameOf(k: number): string {
    return `${this.symbols[Math.floor(k / this.width)]} ${this.schema.features[k % this.width]}`;
  }

  /**
   * Notes an event-loop stall: more than `maxDataAgeMs` between two health
   * checks (sweeps run at 10 Hz). TWS kept sending while the loop stood
   * still, and the backlog is read after it with a receive time of now (depth
   * carries no send time): it looks fresh and may be as old as the stall. So
   * the stall is a condition of its own, held until `maxDataAgeMs` after it
   * ended: by then data read only from the backlog is past the limit by its
   * own age, and the stale check takes over.
   */
  private checkLoop(now: number): void {
    const gap = now - this.checkedAt;
    this.checkedAt = now;
    if (gap > this.options.maxDataAgeMs) {
      this.stallMs = gap;
      this.stallEndedAt = now;
      this.dirty = true;
    } else if (this.stallMs > 0 && now - this.stallEndedAt > this.options.maxDataAgeMs) {
      this.stallMs = 0;
      this.dirty = true;
    }
  }

  private rebuild(): void {
    this.dirty = false;
    const problems = new Map<string, string>();
    if (this.stallMs > 0) {
      const limit = seconds(this.options.maxDataAgeMs);
      problems.set('stall', `event loop stalled ${seconds(this.stallMs)} (limit ${limit}): data read right after it may be that old, so none counts as fresh until ${limit} after it ended`);
    }
    for (let k = 0; k < this.featureProblems.length; k++) {
      const p = this.featureProblems[k]!;
      if (p === 0) continue;
      const name = this.nameOf(k);
      if (p & BAD_VALUE) problems.set(`nan ${name}`, `${name} is NaN or Inf in a model input`);
      if (p & BAD_SCORE) problems.set(`feature ${name}`, `${name} is ${STATUSES[this.status[k]!]} (${this.explain(k)})`);
    }
    for (let i = 0; i < this.symbols.length; i++) {
      const symbol = this.symbols[i]!;
      if (this.stale[i]! > 0) {
        problems.set(`stale ${symbol}`, `${symbol} market data is ${seconds(this.stale[i]!)} old (limit ${seconds(this.options.maxDataAgeMs)})`);
      }
      if (this.silentAt[i] === this.silentAt[i]) problems.set(`silent ${symbol}`, this.silence[i]!);
    }
    this.problems = problems;
  }
}
