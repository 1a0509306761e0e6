/**
 * The statistical jump model (Bemporad, Breschi, Piga, Boyd 2018; Nystrup,
 * Lindström, Madsen 2020): k regimes, each a centroid in standardised
 * feature space, fitted by minimising
 *
 *   Σ_t ½‖z_t − μ_{s_t}‖² + λ·(number of switches)
 *
 * so a regime persists unless the data pay λ for a switch. Coordinate
 * descent from k-means++ starts alternates the best path for fixed centroids
 * (dynamic programming, `stateStep`) and the best centroids for a fixed path
 * (means of the rows in each state).
 *
 * Offline, `predictStates` decodes the best path given the whole series.
 * Online, `OnlineJumpModel` decides from the rows seen so far (Nystrup,
 * Kolm, Lindström 2020), never looking ahead. With `continuous: true` each
 * row gets a probability vector instead of one state (sjm-continuous.ts).
 *
 * States are numbered by ascending centroid of one feature (`sortBy`, the
 * first feature unless told): with a volatility feature, state 0 is the calm
 * regime. The rule is written into the model file as `stateOrder`.
 */
import { readFileSync } from 'node:fs';
import { restoreArrays, type EngineState, type Restorable } from '../engine-state.js';
import { Random } from '../random.js';
import { argmin, candidateForward, candidateStep, simplexGrid, type SimplexGrid } from './sjm-continuous.js';

export const JUMP_MODEL_FORMAT = 'keel.sjm';
export const JUMP_MODEL_VERSION = 1;

/** Standardised values beyond ±3 deviations are clipped, as in the jumpmodels reference code. */
const DEFAULT_CLIP = 3;
const DEFAULT_GRID_STEP = 0.05;
/** A descent stops when the objective improves by less than this share of itself. */
const TOLERANCE = 1e-8;
/** The continuous DP keeps a G × G switch-cost matrix: 2000 candidates is 32 MB. */
const MAX_GRID_CANDIDATES = 2000;
const MAX_SEED = 4_294_967_295;

/** A fitted model as stored on disk (JSON). */
export interface JumpModelFile {
  readonly format: typeof JUMP_MODEL_FORMAT;
  readonly version: typeof JUMP_MODEL_VERSION;
  /** Feature names in input order. */
  readonly features: readonly string[];
  readonly k: number;
  /** Cost of one switch, in the units of the loss ½‖z − μ‖². */
  readonly lambda: number;
  readonly continuous: boolean;
  /** Step of the probability grid; only in a continuous model. */
  readonly gridStep?: number;
  /** Mean and (population) deviation of each feature over the training rows: z = (x − mean) / std. */
  readonly mean: readonly number[];
  readonly std: readonly number[];
  /** z is clipped to ±clip, so one outlier cannot drag a centroid or force a switch. */
  readonly clip: number;
  /** k rows, one value per feature, in standardised units. */
  readonly centroids: readonly (readonly number[])[];
  /** How the states are numbered, in words. */
  readonly stateOrder: string;
  readonly training: { readonly rows: number; readonly objective: number; readonly iterations: number; readonly seed: number };
}

export interface JumpModelOptions {
  /** Number of states, at least 2. */
  readonly k: number;
  /** Cost of one switch; around 10 to 100 for standardised features. Larger means fewer switches. */
  readonly lambda: number;
  /** k-means++ starts; the fit with the lowest objective is kept (default 10). */
  readonly nInit?: number;
  /** Descent iterations per start (default 100). */
  readonly maxIter?: number;
  /** The same seed, data and options give the same model, bit for bit (default 1). */
  readonly seed?: number;
  /** Standardised values are clipped to ±clip (default 3). */
  readonly clip?: number;
  /** Fit the continuous model: a probability vector per row (default false). */
  readonly continuous?: boolean;
  /** Step of the continuous model's probability grid; 1 / gridStep must be whole (default 0.05). */
  readonly gridStep?: number;
  /** Feature whose centroid numbers the states, ascending (default: the first feature). */
  readonly sortBy?: string;
}

export interface JumpModelFit {
  readonly model: JumpModelFile;
  /** The fitted model's state for each training row (its offline prediction). */
  readonly states: Int32Array;
  /** The best start's objective (the loss plus λ per switch; for the continuous model, its own). */
  readonly objective: number;
  /** Descent iterations of the best start. */
  readonly iterations: number;
}

export interface JumpModelPrediction {
  readonly states: Int32Array;
  /** rows × k: one-hot for the discrete model, the decoded probability vectors for the continuous one. */
  readonly probabilities: Float64Array;
}

/** Bad data, options or model file: the message says what and where. */
export class JumpModelError extends Error {
  override name = 'JumpModelError';
}

/**
 * Fits a jump model to `rows` rows of `features.length` values, row-major in
 * `data`. Refuses NaN or infinite values, a constant feature (its deviation
 * is 0, so it cannot be standardised) and fewer than 2 rows per state.
 */
export function fitJumpModel(data: Float64Array, rows: number, features: readonly string[], options: JumpModelOptions): JumpModelFit {
  const { k, lambda } = options;
  const nInit = options.nInit ?? 10;
  const maxIter = options.maxIter ?? 100;
  const seed = options.seed ?? 1;
  const clip = options.clip ?? DEFAULT_CLIP;
  const continuous = options.continuous ?? false;
  const gridStep = options.gridStep ?? DEFAULT_GRID_STEP;
  const sortBy = options.sortBy ?? features[0];

  if (!Number.isInteger(k) || k < 2) throw new JumpModelError(`k must be a whole number of at least 2, got ${k}`);
  if (!(Number.isFinite(lambda) && lambda >= 0)) throw new JumpModelError(`lambda must be a number of at least 0, got ${lambda}`);
  if (!Number.isInteger(nInit) || nInit < 1) throw new JumpModelError(`nInit must be a whole number of at least 1, got ${nInit}`);
  if (!Number.isInteger(maxIter) || maxIter < 1) throw new JumpModelError(`maxIter must be a whole number of at least 1, got ${maxIter}`);
  if (!Number.isInteger(seed) || seed < 0 || seed > MAX_SEED) throw new JumpModelError(`seed must be a whole number from 0 to ${MAX_SEED}, got ${seed}`);
  if (!(Number.isFinite(clip) && clip > 0)) throw new JumpModelError(`clip must be a number above 0, got ${clip}`);
  const gridProblem = continuous ? gridStepProblem(k, gridStep) : undefined;
  if (gridProblem) throw new JumpModelError(`gridStep must be ${gridProblem}, got ${gridStep}`);
  if (features.length === 0 || new Set(features).size !== features.length) {
    throw new JumpModelError(`features must be distinct names, at least one, got [${features.join(', ')}]`);
  }
  const sortColumn = features.indexOf(sortBy ?? '');
  if (sortColumn < 0) throw new JumpModelError(`sortBy '${sortBy}' is not one of the features (${features.join(', ')})`);
  checkRows(data, rows, features);
  if (rows < 2 * k) throw new JumpModelError(`fitting k = ${k} states needs at least ${2 * k} rows (2 per state), got ${rows}`);

  const F = features.length;
  const { mean, std } = moments(data, rows, features);
  const z = standardise(data, rows, mean, std, clip);
  const grid = simplexGrid(k, continuous ? Math.round(1 / gridStep) : 1);
  const assign = continuous ? (loss: Float64Array) => candidateStep(grid, loss, rows, lambda) : (loss: Float64Array) => stateStep(loss, rows, k, lambda);

  const random = new Random(seed);
  let best: Descent | undefined;
  for (let start = 0; start < nInit; start++) {
    const run = descend(z, rows, F, grid, lambda, kMeansPlusPlus(z, rows, F, k, random), maxIter, assign);
    if (!best || run.objective < best.objective) best = run;
  }
  const { centroids, objective, iterations } = best!;

  // Number the states by ascending centroid of the sort feature (ties keep the fitted order).
  const order = Array.from({ length: k }, (_, j) => j).sort((a, b) => centroids[a * F + sortColumn]! - centroids[b * F + sortColumn]! || a - b);
  const model: JumpModelFile = {
    format: JUMP_MODEL_FORMAT,
    version: JUMP_MODEL_VERSION,
    features: [...features],
    k,
    lambda,
    continuous,
    ...(continuous ? { gridStep } : {}),
    mean: Array.from(mean),
    std: Array.from(std),
    clip,
    centroids: order.map((j) => Array.from(centroids.subarray(j * F, (j + 1) * F))),
    stateOrder: `ascending centroid of '${sortBy}': state 0 has the lowest`,
    training: { rows, objective, iterations, seed },
  };
  // The training states are the sorted model's own decoding, so they equal predictStates on the same rows.
  const { states } = predict(model, data, rows);
  return { model, states, objective, iterations };
}

/**
 * The state path minimising Σ_t loss[t, s_t] + λ·(number of switches) for a
 * T × K loss matrix, in O(T·K): V[0] = L[0]; V[t,k] = L[t,k] +
 * min(V[t−1,k], min_j V[t−1,j] + λ); backtrack from argmin V[T−1].
 * Staying wins ties; otherwise the lowest state does.
 */
export function stateStep(loss: Float64Array, T: number, K: number, lambda: number): Int32Array {
  const path = new Int32Array(T);
  if (T === 0) return path;
  const from = new Int32Array(T * K);
  // Starting from zeros makes the first row's values its own losses: V[0] = L[0].
  let previous = new Float64Array(K);
  let next = new Float64Array(K);
  for (let t = 0; t < T; t++) {
    const best = argmin(previous, 0, K);
    const switchValue = previous[best]! + lambda;
    for (let k = 0; k < K; k++) {
      const stay = previous[k]!;
      const stays = stay <= switchValue;
      next[k] = loss[t * K + k]! + (stays ? stay : switchValue);
      from[t * K + k] = stays ? k : best;
    }
    [previous, next] = [next, previous];
  }
  path[T - 1] = argmin(previous, 0, K);
  for (let t = T - 1; t > 0; t--) path[t - 1] = from[t * K + path[t]!]!;
  return path;
}

/** The offline state of each row, decoded with the whole series in view (it looks ahead). */
export function predictStates(model: JumpModelFile, data: Float64Array, rows: number): Int32Array {
  return predict(model, data, rows).states;
}

/**
 * Offline decoding: the best path given all rows. A continuous model's state
 * is the most likely state of its probability vector (the lowest on ties).
 */
export function predict(model: JumpModelFile, data: Float64Array, rows: number): JumpModelPrediction {
  const { k } = model;
  const loss = stateLosses(model, data, rows);
  const grid = gridOf(model);
  const path = model.continuous ? candidateStep(grid, loss, rows, model.lambda) : stateStep(loss, rows, k, model.lambda);
  const states = new Int32Array(rows);
  const probabilities = new Float64Array(rows * k);
  for (let t = 0; t < rows; t++) {
    probabilities.set(grid.probabilities.subarray(path[t]! * k, (path[t]! + 1) * k), t * k);
    states[t] = argmax(probabilities, t * k, k);
  }
  return { states, probabilities };
}

/** L[t, j] = ½‖z_t − μ_j‖² for each row and state (T × k), z standardised and clipped as the model says. */
export function stateLosses(model: JumpModelFile, data: Float64Array, rows: number): Float64Array {
  checkRows(data, rows, model.features);
  const z = standardise(data, rows, model.mean, model.std, model.clip);
  const loss = new Float64Array(rows * model.k);
  lossesInto(z, rows, model.features.length, Float64Array.from(model.centroids.flat()), model.k, loss);
  return loss;
}

/**
 * Regimes decided row by row from the rows seen so far (no look-ahead), for
 * many streams (e.g. instruments) at once. Each stream keeps one value per
 * state (per grid candidate for the continuous model) in one shared array:
 * the cost of the best path ending there, minus the best of them. So min V
 * is 0 and the switch option is simply λ: V ← L_t + min(V, λ), then subtract
 * min V; the state is argmin V. `update` allocates nothing.
 *
 * A row with a NaN or infinite value is skipped: `update` returns −1 and the
 * stream's values and state stay as they were, so a bad frame never changes
 * the regime.
 *
 * Probabilities of the discrete model are softmax(−V): the loss is the
 * Gaussian negative log-likelihood (unit variance in standardised units, up to
 * a constant) and λ acts as a negative log switch probability, so exp(−V_k)
 * weighs the best path ending in state k, the max-product (Viterbi) analogue
 * of the filtered posterior. A heuristic, not a calibrated probability. The
 * continuous model's probabilities are its own output: the best candidate's
 * vector. Before a stream's first row the state is −1 and the probabilities
 * are uniform.
 */
export class OnlineJumpModel implements Restorable {
  readonly k: number;
  private readonly grid: SimplexGrid;
  /** Values per stream: k, or the number of grid candidates. */
  private readonly width: number;
  private readonly values: Float64Array;
  /** Per stream, the index (state or candidate) of the smallest value; −1 before the first row. */
  private readonly best: Int32Array;
  private readonly centroids: Float64Array;
  // Scratch, reused by every update.
  private readonly z: Float64Array;
  private readonly loss: Float64Array;
  private readonly next: Float64Array;
  private readonly out: Float64Array;

  constructor(
    private readonly model: JumpModelFile,
    readonly streams: number,
  ) {
    if (!Number.isInteger(streams) || streams < 1) throw new RangeError(`streams must be a whole number of at least 1, got ${streams}`);
    this.k = model.k;
    this.grid = gridOf(model);
    this.width = model.continuous ? this.grid.size : model.k;
    this.values = new Float64Array(streams * this.width);
    this.best = new Int32Array(streams).fill(-1);
    this.centroids = Float64Array.from(model.centroids.flat());
    this.z = new Float64Array(model.features.length);
    this.loss = new Float64Array(model.k);
    this.next = new Float64Array(this.width);
    this.out = new Float64Array(model.k);
  }

  /** Feeds one row (the model's features in order, from x[offset]); returns the stream's state, or −1 for a skipped row. */
  update(stream: number, x: ArrayLike<number>, offset = 0): number {
    this.checkStream(stream);
    const { mean, std, clip, lambda } = this.model;
    const F = this.z.length;
    if (x.length < offset + F) throw new RangeError(`a row needs ${F} values from offset ${offset}, got ${x.length - offset}`);
    for (let f = 0; f < F; f++) {
      const value = x[offset + f]!;
      if (!Number.isFinite(value)) return -1;
      this.z[f] = clamp((value - mean[f]!) / std[f]!, clip);
    }
    lossesInto(this.z, 1, F, this.centroids, this.k, this.loss);

    const o = stream * this.width;
    const { values, width } = this;
    if (this.model.continuous) {
      candidateForward(this.grid, lambda, this.loss, 0, values, o, this.next);
      values.set(this.next, o);
    } else {
      for (let j = 0; j < width; j++) values[o + j] = this.loss[j]! + Math.min(values[o + j]!, lambda);
    }
    const best = argmin(values, o, width);
    const least = values[o + best]!;
    for (let i = 0; i < width; i++) values[o + i] = values[o + i]! - least;
    this.best[stream] = best;
    return this.state(stream);
  }

  /** The stream's current state; −1 before its first row. */
  state(stream: number): number {
    this.checkStream(stream);
    const best = this.best[stream]!;
    return best < 0 ? -1 : argmax(this.grid.probabilities, best * this.k, this.k);
  }

  /** The stream's state probabilities (length k, summing to 1), in a buffer the next call overwrites: copy it to keep it. */
  probabilities(stream: number): Float64Array {
    this.checkStream(stream);
    const { k, out } = this;
    const best = this.best[stream]!;
    if (best < 0) {
      out.fill(1 / k);
    } else if (this.model.continuous) {
      out.set(this.grid.probabilities.subarray(best * k, (best + 1) * k));
    } else {
      // min V is 0, so the largest term is exp(0) = 1 and the sum cannot overflow.
      let total = 0;
      for (let j = 0; j < k; j++) {
        const weight = Math.exp(-this.values[stream * k + j]!);
        out[j] = weight;
        total += weight;
      }
      for (let j = 0; j < k; j++) out[j] = out[j]! / total;
    }
    return out;
  }

  /** The streams' values and best indices (the scratch is written before it is read by every call): for a shard checkpoint. */
  saveState(): EngineState {
    return { arrays: [this.values, this.best], numbers: [] };
  }

  loadState(state: EngineState): void {
    restoreArrays('OnlineJumpModel', [this.values, this.best], state, 0);
  }

  /** Forgets the stream's history, as if it had seen no rows. */
  reset(stream: number): void {
    this.checkStream(stream);
    this.values.fill(0, stream * this.width, (stream + 1) * this.width);
    this.best[stream] = -1;
  }

  private checkStream(stream: number): void {
    if (!Number.isInteger(stream) || stream < 0 || stream >= this.streams) throw new RangeError(`stream must be a whole number from 0 to ${this.streams - 1}, got ${stream}`);
  }
}

/** Checks a model file's parsed JSON; the error names the source and the bad key. */
export function parseJumpModel(json: unknown, source: string): JumpModelFile {
  function fail(key: string, expected: string, got: unknown): never {
    throw new JumpModelError(`${source}: '${key}' must be ${expected}, got ${describe(got)}`);
  }
  function numberAt(value: unknown, key: string, expected: string, ok: (n: number) => boolean): number {
    if (typeof value !== 'number' || !Number.isFinite(value) || !ok(value)) fail(key, expected, value);
    return value;
  }
  function numbersAt(value: unknown, key: string, length: number, positive = false): number[] {
    const expected = `a list of ${length} ${positive ? 'numbers above 0' : 'numbers'}, one per feature`;
    if (!Array.isArray(value) || value.length !== length) fail(key, expected, value);
    return value.map((v, i) => numberAt(v, `${key}[${i}]`, positive ? 'a number above 0' : 'a number', (n) => !positive || n > 0));
  }

  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new JumpModelError(`${source}: a jump model file is a JSON object, got ${describe(json)}`);
  }
  const m = json as Record<string, unknown>;
  if (m.format !== JUMP_MODEL_FORMAT) fail('format', `'${JUMP_MODEL_FORMAT}'`, m.format);
  if (m.version !== JUMP_MODEL_VERSION) fail('version', String(JUMP_MODEL_VERSION), m.version);
  const features = m.features;
  if (!Array.isArray(features) || features.length === 0 || !features.every((f) => typeof f === 'string' && f.length > 0) || new Set(features).size !== features.length) {
    fail('features', 'a list of distinct feature names, at least one', features);
  }
  const names = features as string[];
  const F = names.length;
  const k = numberAt(m.k, 'k', 'a whole number of at least 2', (n) => Number.isInteger(n) && n >= 2);
  const lambda = numberAt(m.lambda, 'lambda', 'a number of at least 0', (n) => n >= 0);
  if (typeof m.continuous !== 'boolean') fail('continuous', 'true or false', m.continuous);
  const continuous = m.continuous;
  let gridStep: number | undefined;
  if (continuous) {
    gridStep = numberAt(m.gridStep, 'gridStep', 'a number', () => true);
    const problem = gridStepProblem(k, gridStep);
    if (problem) fail('gridStep', problem, gridStep);
  }
  const mean = numbersAt(m.mean, 'mean', F);
  const std = numbersAt(m.std, 'std', F, true);
  const clip = numberAt(m.clip, 'clip', 'a number above 0', (n) => n > 0);
  if (!Array.isArray(m.centroids) || m.centroids.length !== k) fail('centroids', `a list of ${k} centroids (k)`, m.centroids);
  const centroids = (m.centroids as unknown[]).map((row, j) => numbersAt(row, `centroids[${j}]`, F));
  if (typeof m.stateOrder !== 'string') fail('stateOrder', 'a description of the state numbering', m.stateOrder);
  const t = m.training;
  if (typeof t !== 'object' || t === null) fail('training', 'an object with rows, objective, iterations and seed', t);
  const training = t as Record<string, unknown>;
  return {
    format: JUMP_MODEL_FORMAT,
    version: JUMP_MODEL_VERSION,
    features: names,
    k,
    lambda,
    continuous,
    ...(gridStep === undefined ? {} : { gridStep }),
    mean,
    std,
    clip,
    centroids,
    stateOrder: m.stateOrder,
    training: {
      rows: numberAt(training.rows, 'training.rows', 'a whole number', (n) => Number.isInteger(n) && n >= 0),
      objective: numberAt(training.objective, 'training.objective', 'a number', () => true),
      iterations: numberAt(training.iterations, 'training.iterations', 'a whole number', (n) => Number.isInteger(n) && n >= 0),
      seed: numberAt(training.seed, 'training.seed', `a whole number from 0 to ${MAX_SEED}`, (n) => Number.isInteger(n) && n >= 0 && n <= MAX_SEED),
    },
  };
}

/** Reads and checks a model file written by `keel sjm fit`. */
export function readJumpModel(path: string): JumpModelFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new JumpModelError(`${path}: cannot read the file: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    // Not JSON.parse's message: it quotes the file.
    throw new JumpModelError(`${path}: not valid JSON`);
  }
  return parseJumpModel(json, path);
}

// ---------------------------------------------------------------------------
// Fitting

/** One descent from one start. */
interface Descent {
  readonly centroids: Float64Array;
  readonly objective: number;
  readonly iterations: number;
}

/**
 * Alternates the centroid step and the state step until the path stops
 * changing or the objective stops improving. `assign` is the state step: it
 * maps a T × k loss matrix to one grid candidate per row (for the discrete
 * model the grid is the k corners, so a candidate is a state).
 */
function descend(
  z: Float64Array,
  T: number,
  F: number,
  grid: SimplexGrid,
  lambda: number,
  centroids: Float64Array,
  maxIter: number,
  assign: (loss: Float64Array) => Int32Array,
): Descent {
  const loss = new Float64Array(T * grid.k);
  lossesInto(z, T, F, centroids, grid.k, loss);
  let path = assign(loss);
  let objective = pathObjective(grid, lambda, loss, path);
  let iterations = 0;
  while (iterations < maxIter) {
    iterations++;
    centroidStep(z, T, F, grid, path, centroids);
    lossesInto(z, T, F, centroids, grid.k, loss);
    const next = assign(loss);
    const nextObjective = pathObjective(grid, lambda, loss, next);
    const settled = sameValues(next, path) || objective - nextObjective <= TOLERANCE * Math.abs(objective);
    path = next;
    objective = nextObjective;
    if (settled) break;
  }
  return { centroids, objective, iterations };
}

/** k-means++: the first centroid is a random row, each next one a row drawn with weight (distance to the nearest chosen)². */
function kMeansPlusPlus(z: Float64Array, T: number, F: number, k: number, random: Random): Float64Array {
  const centroids = new Float64Array(k * F);
  const nearest = new Float64Array(T).fill(Infinity);
  for (let j = 0; j < k; j++) {
    const row = j === 0 ? Math.floor(random.next() * T) : drawRow(nearest, random);
    centroids.set(z.subarray(row * F, (row + 1) * F), j * F);
    for (let t = 0; t < T; t++) {
      let d = 0;
      for (let f = 0; f < F; f++) d += (z[t * F + f]! - centroids[j * F + f]!) ** 2;
      if (d < nearest[t]!) nearest[t] = d;
    }
  }
  return centroids;
}

/** A row index drawn with probability proportional to its weight; uniform when every weight is 0. */
function drawRow(weights: Float64Array, random: Random): number {
  let total = 0;
  for (const w of weights) total += w;
  if (total === 0) return Math.floor(random.next() * weights.length);
  let target = random.next() * total;
  let lastWeighted = 0;
  for (let t = 0; t < weights.length; t++) {
    if (weights[t]! > 0) lastWeighted = t;
    target -= weights[t]!;
    if (target < 0) return t;
  }
  return lastWeighted; // rounding left a sliver of target
}

/** Each centroid becomes the probability-weighted mean of the rows (the plain mean of its rows when discrete); a state with no weight keeps its centroid. */
function centroidStep(z: Float64Array, T: number, F: number, grid: SimplexGrid, path: Int32Array, centroids: Float64Array): void {
  const { k, probabilities } = grid;
  const sums = new Float64Array(k * F);
  const weights = new Float64Array(k);
  for (let t = 0; t < T; t++) {
    for (let j = 0; j < k; j++) {
      const w = probabilities[path[t]! * k + j]!;
      if (w === 0) continue;
      weights[j] = weights[j]! + w;
      for (let f = 0; f < F; f++) sums[j * F + f] = sums[j * F + f]! + w * z[t * F + f]!;
    }
  }
  for (let j = 0; j < k; j++) {
    if (weights[j] === 0) continue;
    for (let f = 0; f < F; f++) centroids[j * F + f] = sums[j * F + f]! / weights[j]!;
  }
}

/** Σ_t Σ_j p_tj·L[t,j] + λ·Σ_t switchCost(p_{t−1}, p_t); for the discrete model, the loss of the path plus λ per switch. */
function pathObjective(grid: SimplexGrid, lambda: number, loss: Float64Array, path: Int32Array): number {
  const { k, size, probabilities, jumpCost } = grid;
  let total = 0;
  for (let t = 0; t < path.length; t++) {
    const c = path[t]!;
    for (let j = 0; j < k; j++) total += probabilities[c * k + j]! * loss[t * k + j]!;
    if (t > 0) total += lambda * jumpCost[path[t - 1]! * size + c]!;
  }
  return total;
}

// ---------------------------------------------------------------------------
// Shared arithmetic

/** Mean and population deviation per feature; a constant feature is refused. */
function moments(data: Float64Array, rows: number, features: readonly string[]): { mean: Float64Array; std: Float64Array } {
  const F = features.length;
  const mean = new Float64Array(F);
  const std = new Float64Array(F);
  for (let f = 0; f < F; f++) {
    let sum = 0;
    for (let t = 0; t < rows; t++) sum += data[t * F + f]!;
    const m = sum / rows;
    let squares = 0;
    for (let t = 0; t < rows; t++) squares += (data[t * F + f]! - m) ** 2;
    const s = Math.sqrt(squares / rows);
    if (s === 0) throw new JumpModelError(`feature '${features[f]}' is constant (${m}) over the ${rows} training rows, so it cannot be standardised; drop it`);
    mean[f] = m;
    std[f] = s;
  }
  return { mean, std };
}

function standardise(data: Float64Array, rows: number, mean: ArrayLike<number>, std: ArrayLike<number>, clip: number): Float64Array {
  const F = mean.length;
  const z = new Float64Array(rows * F);
  for (let t = 0; t < rows; t++) {
    for (let f = 0; f < F; f++) z[t * F + f] = clamp((data[t * F + f]! - mean[f]!) / std[f]!, clip);
  }
  return z;
}

/** loss[t·k + j] = ½‖z_t − μ_j‖². */
function lossesInto(z: Float64Array, T: number, F: number, centroids: Float64Array, k: number, loss: Float64Array): void {
  for (let t = 0; t < T; t++) {
    for (let j = 0; j < k; j++) {
      let d = 0;
      for (let f = 0; f < F; f++) d += (z[t * F + f]! - centroids[j * F + f]!) ** 2;
      loss[t * k + j] = d / 2;
    }
  }
}

/** Refuses data of the wrong length and any NaN or infinite value, naming the row (from 1) and the feature. */
function checkRows(data: Float64Array, rows: number, features: readonly string[]): void {
  const F = features.length;
  if (!Number.isInteger(rows) || rows < 0 || data.length !== rows * F) {
    throw new JumpModelError(`data has ${data.length} values, expected rows × features = ${rows} × ${F}`);
  }
  for (let t = 0; t < rows; t++) {
    for (let f = 0; f < F; f++) {
      const value = data[t * F + f]!;
      if (!Number.isFinite(value)) throw new JumpModelError(`row ${t + 1} of ${rows}, feature '${features[f]}': ${value} is not a finite number`);
    }
  }
}

/** The model's candidates: the k corners for the discrete model, the probability grid for the continuous one. */
function gridOf(model: JumpModelFile): SimplexGrid {
  return simplexGrid(model.k, model.continuous ? Math.round(1 / model.gridStep!) : 1);
}

/** What is wrong with a grid step for k states, or undefined when it is usable. */
function gridStepProblem(k: number, step: number): string | undefined {
  const divisions = Math.round(1 / step);
  if (!(step > 0 && step <= 1) || Math.abs(divisions * step - 1) > 1e-9) return 'a step that divides 1 into whole steps (e.g. 0.05, 0.1, 0.25)';
  // C(divisions + k − 1, k − 1) points on the simplex.
  let size = 1;
  for (let i = 1; i < k; i++) size = (size * (divisions + i)) / i;
  if (size > MAX_GRID_CANDIDATES) return `coarser: k = ${k} with step ${step} gives ${size} grid points, at most ${MAX_GRID_CANDIDATES} are allowed`;
  return undefined;
}

function sameValues(a: Int32Array, b: Int32Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Index of the largest of values[offset .. offset + n), the first on ties. */
function argmax(values: Float64Array, offset: number, n: number): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (values[offset + i]! > values[offset + best]!) best = i;
  return best;
}

function clamp(value: number, limit: number): number {
  return value > limit ? limit : value < -limit ? -limit : value;
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = typeof value === 'number' ? String(value) : JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
