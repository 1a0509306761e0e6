/**
 * Datasets of live feature rows, one per warm instrument per sampling
 * instant, with the forward return each row's model should predict; and the
 * plain operations training needs on them: a chronological split, columns,
 * windows for sequence models, and frames as the live features publish them.
 * Where rows come from is training-data.ts.
 */
import { MID } from '../market/features.js';

const BPS = 10_000;

/** A file rows were read from, and the wall-clock time they cover (ISO 8601, UTC). */
export interface DataSource {
  readonly file: string;
  readonly from: string;
  readonly to: string;
}

export interface Dataset {
  /** The live schema's names, in schema order. */
  readonly features: readonly string[];
  readonly schema: { name: string; version: number };
  /** Symbol of each instrument index. */
  readonly symbols: readonly string[];
  readonly sampleMs: number;
  readonly horizonMs: number;
  readonly rows: number;
  /** rows x features, row-major: the live feature values. */
  readonly x: Float64Array;
  /** Which instrument each row belongs to. */
  readonly instrument: Int32Array;
  /** ms (simulated, or epoch ms of a recording); rows are in time order. */
  readonly time: Float64Array;
  /** The true regime at that moment (0 calm, 1 volatile) when the source knows it: the simulator does, a recording does not. */
  readonly regime?: Uint8Array;
  /** log(mid at t + horizon / mid at t) in basis points; NaN when the horizon runs past the end (callers drop those rows). */
  readonly forwardReturn: Float64Array;
  /** One line for model manifests: where the data came from. */
  readonly description: string;
  /** The files the rows came from, with the time each covers (none for the simulator). */
  readonly sources: readonly DataSource[];
}

/** A dataset whose source knew the true regime of every row: the simulator's. */
export type LabelledDataset = Dataset & { readonly regime: Uint8Array };

/** Rows [from, to) as a dataset of their own; forward returns that reach `horizonEnd` or later become NaN. */
function slice(d: Dataset, from: number, to: number, horizonEnd: number, note: string): Dataset {
  const width = d.features.length;
  const time = d.time.slice(from, to);
  const forwardReturn = d.forwardReturn.slice(from, to);
  for (let r = 0; r < time.length; r++) if (time[r]! + d.horizonMs >= horizonEnd) forwardReturn[r] = NaN;
  return {
    ...d,
    rows: to - from,
    x: d.x.slice(from * width, to * width),
    instrument: d.instrument.slice(from, to),
    time,
    regime: d.regime?.slice(from, to),
    forwardReturn,
    description: `${d.description}; ${note}`,
  };
}

/** The rows from `fromMs` (inclusive) to `toMs` (exclusive); forward returns reaching `toMs` or later become NaN. */
export function between(d: Dataset, fromMs: number, toMs: number, note = `rows from ${fromMs} to ${toMs} ms`): Dataset {
  let from = 0;
  while (from < d.rows && d.time[from]! < fromMs) from++;
  let to = from;
  while (to < d.rows && d.time[to]! < toMs) to++;
  return slice(d, from, to, toMs, note);
}

/**
 * Chronological split: the first `trainShare` of the rows (cut where the time
 * changes, so no sampling instant is split) for training, the later rest held
 * out. Training rows whose forward return would look into the held-out time
 * get NaN, so no held-out price leaks into training.
 */
export function splitByTime(d: Dataset, trainShare: number): { train: Dataset; test: Dataset } {
  if (!(trainShare > 0 && trainShare < 1)) throw new Error(`splitByTime: trainShare must be between 0 and 1, got ${trainShare}`);
  let cut = Math.floor(d.rows * trainShare);
  while (cut > 0 && cut < d.rows && d.time[cut] === d.time[cut - 1]) cut++;
  const cutTime = cut < d.rows ? d.time[cut]! : Infinity;
  const share = Math.round(trainShare * 100);
  return {
    train: slice(d, 0, cut, cutTime, `train: the first ${share}% of rows, before ${cutTime} ms`),
    test: slice(d, cut, d.rows, Infinity, `held out: the last ${100 - share}% of rows, from ${cutTime} ms`),
  };
}

/** Column index of each name; a missing name is an error that says which. */
function columns(d: Dataset, names: readonly string[]): number[] {
  return names.map((name) => {
    const column = d.features.indexOf(name);
    if (column < 0) throw new Error(`feature '${name}' is not in the dataset (${d.schema.name} v${d.schema.version}: ${d.features.join(', ')})`);
    return column;
  });
}

/** The named columns, row-major (rows x names), of every row or of the rows where `rowsMask` is non-zero. */
export function select(d: Dataset, names: readonly string[], rowsMask?: Uint8Array): Float64Array {
  if (rowsMask && rowsMask.length !== d.rows) throw new Error(`select: the mask has ${rowsMask.length} entries for ${d.rows} rows`);
  const cols = columns(d, names);
  const width = d.features.length;
  let kept = d.rows;
  if (rowsMask) kept = rowsMask.reduce((n, keep) => n + (keep !== 0 ? 1 : 0), 0);
  const out = new Float64Array(kept * cols.length);
  let o = 0;
  for (let r = 0; r < d.rows; r++) {
    if (rowsMask && rowsMask[r] === 0) continue;
    for (const c of cols) out[o++] = d.x[r * width + c]!;
  }
  return out;
}

export interface Windows {
  readonly samples: number;
  readonly window: number;
  readonly features: readonly string[];
  /** samples x window x features, oldest row first. */
  readonly x: Float32Array;
  /** Instrument, time, regime (0 when the dataset has none) and forward return of each window's last row: what the window predicts. */
  readonly instrument: Int32Array;
  readonly time: Float64Array;
  readonly regime: Uint8Array;
  readonly forwardReturn: Float64Array;
}

/**
 * Calls `emit(rows)` for every window: `window` rows of one instrument at
 * consecutive sampling instants, oldest first. `rows` is reused between calls.
 */
function eachWindow(d: Dataset, window: number, emit: (rows: Int32Array) => void): void {
  const n = d.symbols.length;
  const run = new Int32Array(n);
  const lastTime = new Float64Array(n);
  // The instrument's last `window` rows, a ring indexed by position in its run.
  const recent = new Int32Array(n * window);
  const rows = new Int32Array(window);
  for (let r = 0; r < d.rows; r++) {
    const i = d.instrument[r]!;
    run[i] = run[i]! > 0 && d.time[r] === lastTime[i]! + d.sampleMs ? run[i]! + 1 : 1;
    lastTime[i] = d.time[r]!;
    recent[i * window + ((run[i]! - 1) % window)] = r;
    if (run[i]! < window) continue;
    for (let k = 0; k < window; k++) rows[k] = recent[i * window + ((run[i]! - window + k) % window)]!;
    emit(rows);
  }
}

/** Sliding windows for a sequence model, in the order their last rows come; only consecutive samples of one instrument. */
export function windows(d: Dataset, names: readonly string[], window: number): Windows {
  if (!Number.isInteger(window) || window < 1) throw new Error(`windows: window must be a positive whole number, got ${window}`);
  const cols = columns(d, names);
  const width = d.features.length;
  let samples = 0;
  eachWindow(d, window, () => samples++);
  const x = new Float32Array(samples * window * cols.length);
  const instrument = new Int32Array(samples);
  const time = new Float64Array(samples);
  const regime = new Uint8Array(samples);
  const forwardReturn = new Float64Array(samples);
  let s = 0;
  let o = 0;
  eachWindow(d, window, (rows) => {
    for (const r of rows) for (const c of cols) x[o++] = d.x[r * width + c]!;
    const last = rows[window - 1]!;
    instrument[s] = d.instrument[last]!;
    time[s] = d.time[last]!;
    if (d.regime) regime[s] = d.regime[last]!;
    forwardReturn[s] = d.forwardReturn[last]!;
    s++;
  });
  return { samples, window, features: [...names], x, instrument, time, regime, forwardReturn };
}

/** The rows of one sampling instant as the live features frame of that instant: a value row per instrument, warm where the dataset has a row. */
export interface DatasetFrame {
  at: number;
  /** `instrument * features + feature`; rows of instruments without a row this instant are stale. */
  readonly values: Float64Array;
  readonly warm: Uint8Array;
  /** The dataset row of each instrument this instant, -1 when none. */
  readonly row: Int32Array;
}

/** Calls `visit` with each sampling instant's frame, in time order; the frame is reused between calls. */
export function eachFrame(d: Dataset, visit: (frame: DatasetFrame) => void): void {
  const width = d.features.length;
  const n = d.symbols.length;
  const frame: DatasetFrame = { at: NaN, values: new Float64Array(n * width), warm: new Uint8Array(n), row: new Int32Array(n).fill(-1) };
  let r = 0;
  while (r < d.rows) {
    frame.at = d.time[r]!;
    frame.warm.fill(0);
    frame.row.fill(-1);
    for (; r < d.rows && d.time[r] === frame.at; r++) {
      const i = d.instrument[r]!;
      frame.values.set(d.x.subarray(r * width, (r + 1) * width), i * width);
      frame.warm[i] = 1;
      frame.row[i] = r;
    }
    visit(frame);
  }
}

/**
 * The same rows with forward returns over `horizonMs` (a multiple of the
 * sampling period), from the rows' own mids: log(mid at t + horizon / mid at
 * t) in basis points, NaN where the instrument has no row at t + horizon.
 */
export function withHorizon(d: Dataset, horizonMs: number): Dataset {
  if (!Number.isInteger(horizonMs) || horizonMs <= 0 || horizonMs % d.sampleMs !== 0) {
    throw new Error(`a horizon must be a positive multiple of the ${d.sampleMs} ms sampling period, got ${horizonMs} ms`);
  }
  const width = d.features.length;
  const mid = MID;
  const n = d.symbols.length;
  const rowAt = new Map<number, number>();
  for (let r = 0; r < d.rows; r++) rowAt.set((d.time[r]! / d.sampleMs) * n + d.instrument[r]!, r);
  const ahead = horizonMs / d.sampleMs;
  const forwardReturn = new Float64Array(d.rows).fill(NaN);
  for (let r = 0; r < d.rows; r++) {
    const later = rowAt.get((d.time[r]! / d.sampleMs + ahead) * n + d.instrument[r]!);
    if (later !== undefined) forwardReturn[r] = Math.log(d.x[later * width + mid]! / d.x[r * width + mid]!) * BPS;
  }
  return { ...d, horizonMs, forwardReturn };
}

/**
 * Datasets of several files as one, rows in time order (the earlier file's
 * first at equal times) and instruments by symbol. The true regime survives
 * only when every part has it. Two rows of one instrument at one instant
 * (the same market recorded twice) are refused.
 */
export function mergeDatasets(parts: readonly Dataset[]): Dataset {
  if (parts.length === 0) throw new Error('no data to merge');
  if (parts.length === 1) return parts[0]!;
  const first = parts[0]!;
  for (const p of parts) {
    if (p.features.join() !== first.features.join() || p.sampleMs !== first.sampleMs || p.horizonMs !== first.horizonMs) {
      throw new Error(`${p.description} has other features or sampling than ${first.description}`);
    }
  }
  const symbols = [...new Set(parts.flatMap((p) => p.symbols))];
  const index = new Map(symbols.map((s, i) => [s, i]));
  const order: { part: number; row: number }[] = [];
  parts.forEach((p, part) => {
    for (let row = 0; row < p.rows; row++) order.push({ part, row });
  });
  order.sort((a, b) => parts[a.part]!.time[a.row]! - parts[b.part]!.time[b.row]! || a.part - b.part || a.row - b.row);
  const width = first.features.length;
  const rows = order.length;
  const x = new Float64Array(rows * width);
  const instrument = new Int32Array(rows);
  const time = new Float64Array(rows);
  const labelled = parts.every((p) => p.regime);
  const regime = new Uint8Array(rows);
  const forwardReturn = new Float64Array(rows);
  const seen = new Set<string>();
  order.forEach(({ part, row }, r) => {
    const p = parts[part]!;
    const symbol = p.symbols[p.instrument[row]!]!;
    const key = `${symbol}@${p.time[row]}`;
    if (seen.has(key)) throw new Error(`two files hold ${symbol} at ${new Date(p.time[row]!).toISOString()}: the same market recorded twice? (${p.description})`);
    seen.add(key);
    x.set(p.x.subarray(row * width, (row + 1) * width), r * width);
    instrument[r] = index.get(symbol)!;
    time[r] = p.time[row]!;
    if (labelled) regime[r] = p.regime![row]!;
    forwardReturn[r] = p.forwardReturn[row]!;
  });
  return {
    ...first,
    symbols,
    rows,
    x,
    instrument,
    time,
    regime: labelled ? regime : undefined,
    forwardReturn,
    description: parts.map((p) => p.description).join('; '),
    sources: parts.flatMap((p) => p.sources),
  };
}
