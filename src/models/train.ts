/**
 * keel's model recipe, on any dataset (the simulator's, or recordings'):
 *
 *   regime-sjm            the jump model of the regime actor, with the rule
 *                         its published regime follows
 *   gbdt-base-<h>         histogram GBDT, forward return over horizon h
 *   gbdt-highvol-<h>      the GBDT specialist, on high-volatility rows only
 *   lstm-base-<h>         LSTM over the last 10 frames, for horizons up to a
 *                         minute (its window sees 10 s)
 *
 * Each model is trained on the first part of the data by time and judged on
 * the held-out tail against a naive baseline; its manifest names the data
 * (files and time range), the metrics, the horizon and golden rows. The
 * same dataset and settings give the same files byte for byte.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { trainGbdt, predictGbdt, gbdtToOnnx } from './gbdt.js';
import { lstmToOnnx, predictLstm, trainLstm, type LstmModel } from './lstm.js';
import { referenceOf, type Reference } from './drift.js';
import { sha256, type Manifest } from './manifest.js';
import { regressionMetrics } from './metrics.js';
import { FOLLOW_THE_MODEL, RegimeTracker, type RegimeStability } from './regime-tracker.js';
import { fitJumpModel, type JumpModelFile } from './sjm.js';
import { eachFrame, select, splitByTime, windows, withHorizon, type Dataset } from './dataset.js';
import { horizonLabel } from './horizon.js';

/**
 * What the book, the flow and the last seconds say about the next ones; no
 * price level. Past returns carry the calm regime's mean reversion.
 */
export const FLOW = ['imbalance_l1', 'depth_imbalance_5', 'depth_imbalance_10', 'ofi', 'trade_flow_imbalance', 'trade_intensity', 'spread_bps', 'depth_slope', 'rv_1s', 'ret_1s', 'ret_10s'];
/**
 * The simulator's regimes differ most in how often it trades and how wide
 * its spread is; rv_1s helps, the slower volatilities hardly separate them.
 */
export const REGIME = ['trade_intensity', 'spread_bps', 'rv_1s'];
/** Chosen on the simulator at 50 updates/s: 50 held the model in one state through whole true regimes, 5 flipped it every few seconds. */
const REGIME_LAMBDA = 15;
/** The published regime's rule: a noisy frame or two never shows as a switch and back. */
export const REGIME_RULE: RegimeStability = { minConfidence: 0.7, confirmFrames: 5 };
const VOLATILITY = 'rv_1s';
const WINDOW = 10;
/** The LSTM sees WINDOW frames: past a minute ahead it would judge a horizon from a sliver of it. */
const LSTM_MAX_HORIZON_MS = 60_000;
/** The specialist's share of training rows: the most volatile quarter. */
const HIGH_VOL_QUANTILE = 0.75;
const GOLDEN_ROWS = 8;
/** Fewer training rows than this cannot fit a model worth serving; the run says so (and still trains when it can). */
export const USEFUL_TRAIN_ROWS = 5_000;
/** Below this many rows a model is not trained at all. */
const MIN_TRAIN_ROWS = 200;
const MIN_HELD_OUT_ROWS = 50;

export interface TrainSettings {
  readonly seed: number;
  /** Forward-return horizons, each a multiple of the data's sampling period. */
  readonly horizonsMs: readonly number[];
  /** The later share of the data held out, by time. */
  readonly heldOutShare: number;
  /** The manifests' version of every model built. */
  readonly version: string;
  /** How the models were built, for their manifests: the command. */
  readonly script: string;
  /** Build only these models (by name, e.g. gbdt-base-10s); all when absent. */
  readonly only?: readonly string[];
  readonly progress: (line: string) => void;
}

export interface BuiltModel {
  readonly name: string;
  readonly manifest: Manifest;
}

export interface TrainReport {
  readonly built: readonly BuiltModel[];
  /** Models not trained, and why. */
  readonly skipped: readonly { readonly name: string; readonly reason: string }[];
  /** What makes the models weak: too little data, no true regime to judge by. */
  readonly warnings: readonly string[];
}

/** Trains every model of the recipe on `data` into `out` (a directory per model). */
export function trainModels(data: Dataset, out: string, settings: TrainSettings): TrainReport {
  const built: BuiltModel[] = [];
  const skipped: { name: string; reason: string }[] = [];
  const warnings: string[] = [];
  const { progress, seed } = settings;

  const write = (name: string, file: string, bytes: Uint8Array, spec: Omit<Manifest, 'format' | 'name' | 'version' | 'file' | 'sha256' | 'featureSchema' | 'training'> & { trainRows: number; data: Dataset }) => {
    const dir = join(out, name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, file), bytes);
    const { trainRows, data: from, ...rest } = spec;
    const manifest: Manifest = {
      format: 'keel.model-manifest',
      name,
      version: settings.version,
      kind: rest.kind,
      file,
      sha256: sha256(bytes),
      featureSchema: { name: from.schema.name, version: from.schema.version },
      input: rest.input,
      outputs: rest.outputs,
      target: rest.target,
      ...(rest.horizonMs !== undefined ? { horizonMs: rest.horizonMs } : {}),
      training: { data: from.description, rows: trainRows, seed, script: settings.script, ...(from.sources.length > 0 ? { sources: [...from.sources] } : {}) },
      metrics: rest.metrics,
      ...(rest.regime ? { regime: rest.regime } : {}),
      ...(rest.reference ? { reference: rest.reference } : {}),
      ...(rest.golden ? { golden: rest.golden } : {}),
    };
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
    built.push({ name, manifest });
  };
  /** True when `name` is asked for and there is enough to train it at all; says so when there is too little to trust it. */
  const enough = (name: string, trainRows: number, heldOutRows: number): boolean => {
    if (settings.only && !settings.only.includes(name)) return false;
    if (trainRows < MIN_TRAIN_ROWS || heldOutRows < MIN_HELD_OUT_ROWS) {
      skipped.push({ name, reason: `too little data: ${trainRows} training and ${heldOutRows} held-out rows (at least ${MIN_TRAIN_ROWS} and ${MIN_HELD_OUT_ROWS})` });
      progress(`  ${name}: not trained, ${skipped.at(-1)!.reason}`);
      return false;
    }
    if (trainRows < USEFUL_TRAIN_ROWS) warnings.push(`${name}: only ${trainRows} training rows (${USEFUL_TRAIN_ROWS} or more make a model worth serving); its held-out figures are on ${heldOutRows} rows`);
    return true;
  };

  const { train, test } = splitByTime(data, 1 - settings.heldOutShare);
  progress(`${data.rows} rows: ${train.rows} to train, ${test.rows} held out (the later ${Math.round(settings.heldOutShare * 100)} %)`);

  // --- regime: the jump model, judged on the true regime when the data has it --------
  if (enough('regime-sjm', train.rows, test.rows)) {
    progress('regime-sjm: fitting the jump model');
    const fit = fitJumpModel(select(train, REGIME), train.rows, REGIME, { k: 2, lambda: REGIME_LAMBDA, nInit: 10, seed, clip: 5, sortBy: 'trade_intensity' });
    const published = publishedStates(fit.model, test, REGIME_RULE);
    const followed = publishedStates(fit.model, test, FOLLOW_THE_MODEL);
    const volatileShare = published.reduce((n, s) => n + (s === 1 ? 1 : 0), 0) / test.rows;
    let metrics: Manifest['metrics'];
    if (train.regime && test.regime) {
      const truth = test.regime;
      const accuracy = (states: ArrayLike<number>) => Array.from(truth).filter((t, i) => states[i] === t).length / truth.length;
      const majority = mean(train.regime) >= 0.5 ? 1 : 0;
      metrics = {
        heldOutRows: test.rows,
        model: { accuracy: accuracy(published), switchesPerHour: switchesPerHour(published, test), modelAccuracy: accuracy(followed), modelSwitchesPerHour: switchesPerHour(followed, test), volatileShare },
        baseline: { accuracy: accuracy(new Uint8Array(test.rows).fill(majority)), switchesPerHour: switchesPerHour(truth, test), volatileShare: mean(truth) },
        baselineName: `always the training majority (${majority === 0 ? 'calm' : 'volatile'}); its switches/h and volatile share are the true regime's. accuracy and switchesPerHour are the published regime's (the manifest's rule), model* the jump model's own states`,
      };
      progress(`  regime-sjm: held-out agreement ${metrics.model.accuracy!.toFixed(3)}, ${metrics.model.switchesPerHour!.toFixed(1)} switches/h against ${metrics.baseline.switchesPerHour!.toFixed(1)} true`);
    } else {
      metrics = {
        heldOutRows: test.rows,
        model: { switchesPerHour: switchesPerHour(published, test), modelSwitchesPerHour: switchesPerHour(followed, test), volatileShare },
        baseline: {},
        baselineName: 'none: recorded data has no true regime to judge by; switchesPerHour is the published regime\'s (the manifest\'s rule), model* the jump model\'s own',
      };
      warnings.push('regime-sjm: the data has no true regime, so its held-out figures are switches per hour and the volatile share only');
      progress(`  regime-sjm: held-out ${metrics.model.switchesPerHour!.toFixed(1)} switches/h, volatile ${(100 * volatileShare).toFixed(0)} % of the time`);
    }
    write('regime-sjm', 'model.json', new TextEncoder().encode(JSON.stringify(fit.model, null, 1) + '\n'), {
      kind: 'sjm',
      input: { name: 'input', features: REGIME, window: 1 },
      outputs: ['state'],
      target: `market regime: 0 calm, 1 volatile (states sorted by trade_intensity ascending)${train.regime ? '; judged against the true regime' : ''}`,
      regime: REGIME_RULE,
      reference: reference(train, REGIME),
      metrics,
      trainRows: train.rows,
      data,
    });
  }

  for (const horizonMs of settings.horizonsMs) {
    const h = horizonLabel(horizonMs);
    const target = `log return of the mid over the next ${horizonMs % 60_000 === 0 ? `${horizonMs / 60_000} min` : `${horizonMs / 1000} s`}, basis points`;
    const split = splitByTime(withHorizon(data, horizonMs), 1 - settings.heldOutShare);
    const regressor = { data, train: split.train, target, horizonMs, write, enough, warn: (w: string) => warnings.push(w), progress };
    trainGbdtModel(`gbdt-base-${h}`, split, regressor, seed);
    trainGbdtModel(`gbdt-highvol-${h}`, split, regressor, seed, HIGH_VOL_QUANTILE);
    if (horizonMs <= LSTM_MAX_HORIZON_MS) trainLstmModel(`lstm-base-${h}`, split, regressor, seed);
    else if (!settings.only || settings.only.includes(`lstm-base-${h}`)) skipped.push({ name: `lstm-base-${h}`, reason: `an LSTM over ${WINDOW} one-second frames is for horizons up to ${LSTM_MAX_HORIZON_MS / 1000} s` });
  }
  return { built, skipped, warnings };
}

interface Regressor {
  readonly data: Dataset;
  /** The training rows: the inputs' reference bins. */
  readonly train: Dataset;
  readonly target: string;
  readonly horizonMs: number;
  readonly write: (name: string, file: string, bytes: Uint8Array, spec: Omit<Manifest, 'format' | 'name' | 'version' | 'file' | 'sha256' | 'featureSchema' | 'training'> & { trainRows: number; data: Dataset }) => void;
  readonly enough: (name: string, trainRows: number, heldOutRows: number) => boolean;
  readonly warn: (warning: string) => void;
  readonly progress: (line: string) => void;
}

const gbdtOptions = (seed: number) => ({ trees: 120, maxDepth: 4, learningRate: 0.05, bins: 64, minLeafRows: 100, l2: 1, subsample: 0.8, seed });

/** The GBDT on every row, or (with `hotQuantile`) the specialist on rows whose volatility is above that quantile of training rows. */
function trainGbdtModel(name: string, { train, test }: { train: Dataset; test: Dataset }, r: Regressor, seed: number, hotQuantile?: number): void {
  let mask: (d: Dataset) => Uint8Array | undefined = () => undefined;
  let note: string | undefined;
  if (hotQuantile !== undefined) {
    const threshold = quantile(select(train, [VOLATILITY]), hotQuantile);
    mask = (d) => Uint8Array.from(select(d, [VOLATILITY]), (v) => (v > threshold ? 1 : 0));
    note = `trained and judged on rows with ${VOLATILITY} > ${threshold} (the top ${Math.round((1 - hotQuantile) * 100)} % of training rows); set its horizon's highVol.above (predictor.settings.horizons) to it`;
  }
  const fit = supervised(train, FLOW, mask(train));
  const held = supervised(test, FLOW, mask(test));
  if (!r.enough(name, fit.rows, held.rows)) return;
  r.progress(`${name}: training`);
  const model = trainGbdt(fit.x, fit.y, fit.rows, FLOW.length, gbdtOptions(seed));
  const predict = (input: Float32Array, n: number) => predictGbdt(model, input, n);
  const doc = `keel GBDT${hotQuantile !== undefined ? ' specialist' : ''}: ${r.target}`;
  writeRegressor(name, gbdtToOnnx(model, { docString: doc }), FLOW, 1, undefined, fit.rows, held, predict(held.x, held.rows), predict, r, note);
}

function trainLstmModel(name: string, { train, test }: { train: Dataset; test: Dataset }, r: Regressor, seed: number): void {
  const trainW = windows(train, FLOW, WINDOW);
  const keep = finiteTargets(trainW.forwardReturn);
  const testW = windows(test, FLOW, WINDOW);
  const held = finiteTargets(testW.forwardReturn);
  if (!r.enough(name, keep.length, held.length)) return;
  r.progress(`${name}: training on windows of ${WINDOW} frames`);
  const { mean: mu, std: sd } = columnStats(trainW.x, FLOW.length);
  const x = standardize(pick(trainW.x, keep, WINDOW * FLOW.length), mu, sd);
  const y = Float64Array.from(keep, (i) => trainW.forwardReturn[i]!);
  const yScale = Math.sqrt(mean(Array.from(y, (v) => v * v))) || 1;
  const fitted = trainLstm(x, y.map((v) => v / yScale), keep.length, { window: WINDOW, inputSize: FLOW.length, hiddenSize: 12, epochs: 6, batchSize: 64, learningRate: 0.003, seed, clipNorm: 1 });
  // Trained on a unit-scale target; the shipped head answers in basis points.
  const model: LstmModel = { ...fitted, headW: fitted.headW.map((w) => w * yScale), headB: fitted.headB * yScale };
  const heldX = standardize(pick(testW.x, held, WINDOW * FLOW.length), mu, sd);
  const heldY = Float64Array.from(held, (i) => testW.forwardReturn[i]!);
  const predict = (input: Float32Array, n: number) => predictLstm(model, standardize(input, mu, sd), n);
  writeRegressor(
    name,
    lstmToOnnx(model, { docString: `keel LSTM: ${r.target}` }),
    FLOW,
    WINDOW,
    { mean: mu, std: sd },
    keep.length,
    { x: pick(testW.x, held, WINDOW * FLOW.length), y: heldY, rows: held.length, instrument: Int32Array.from(held, (i) => testW.instrument[i]!) },
    predictLstm(model, heldX, held.length),
    predict,
    r,
  );
}

function writeRegressor(
  name: string,
  bytes: Uint8Array,
  features: string[],
  window: number,
  scale: { mean: number[]; std: number[] } | undefined,
  trainRows: number,
  held: { x: Float32Array; y: Float64Array; rows: number; instrument: Int32Array },
  heldPred: Float64Array,
  predictRaw: (input: Float32Array, rows: number) => Float64Array,
  r: Regressor,
  note?: string,
): void {
  const model = regressionMetrics(heldPred, held.y);
  const zero = regressionMetrics(new Float64Array(held.rows), held.y);
  if (!(model.rmse < zero.rmse)) r.warn(`${name}: held-out RMSE ${model.rmse.toFixed(3)} is no better than the zero forecast's ${zero.rmse.toFixed(3)}: what it learned does not hold out of sample; do not serve it`);
  r.progress(`  ${name}: held-out rmse ${model.rmse.toFixed(4)} vs ${zero.rmse.toFixed(4)} (zero), r2 ${model.r2.toFixed(4)}, direction ${(100 * model.directionalAccuracy).toFixed(1)} %, corr ${model.correlation.toFixed(3)}`);
  // Golden rows: raw held-out inputs (keel standardises them as the manifest says) and what this model answers.
  const per = features.length * window;
  const golden = Math.min(GOLDEN_ROWS, held.rows);
  const goldenX = held.x.slice(0, golden * per);
  r.write(name, 'model.onnx', bytes, {
    kind: 'onnx',
    input: { name: 'input', features, window, ...(scale ? { standardize: scale } : {}) },
    outputs: ['prediction'],
    target: note ? `${r.target}; ${note}` : r.target,
    horizonMs: r.horizonMs,
    reference: reference(r.train, features, { instrument: held.instrument, predicted: heldPred }),
    trainRows,
    data: r.data,
    // A zero forecast calls no direction and has no correlation: only its errors are comparable.
    metrics: { heldOutRows: held.rows, model: { ...model }, baseline: { rmse: zero.rmse, mae: zero.mae, r2: zero.r2 }, baselineName: 'zero: the mid does not move (a random walk)' },
    golden: { input: Array.from(goldenX), output: Array.from(predictRaw(goldenX, golden), (v) => Math.fround(v)) },
  });
}

/** Instruments with their own reference bins, at most: the ones with the most training rows. */
const MAX_REFERENCE_SYMBOLS = 100;

/**
 * Each feature's quantile bins over the rows of `d`, pooled and per
 * instrument, and the bins of the held-out predictions (`held.predicted`,
 * one per row of instrument `held.rows.instrument`) when given.
 */
function reference(d: Dataset, features: readonly string[], held?: { instrument: Int32Array; predicted: Float64Array }): NonNullable<Manifest['reference']> {
  const bins = (mask?: Uint8Array) => features.map((f) => referenceOf(select(d, [f], mask)));
  const rowsOf = new Int32Array(d.symbols.length);
  for (let r = 0; r < d.rows; r++) rowsOf[d.instrument[r]!]!++;
  const chosen = d.symbols
    .map((symbol, i) => ({ symbol, i, rows: rowsOf[i]! }))
    .filter((s) => s.rows > 0)
    .sort((a, b) => b.rows - a.rows || a.i - b.i)
    .slice(0, MAX_REFERENCE_SYMBOLS)
    .sort((a, b) => a.i - b.i);
  const symbols: Record<string, { inputs: Reference[]; prediction?: Reference }> = {};
  for (const { symbol, i } of chosen) {
    const predicted = held?.predicted.filter((_, k) => held.instrument[k] === i);
    symbols[symbol] = { inputs: bins(Uint8Array.from(d.instrument, (v) => (v === i ? 1 : 0))), ...(predicted && predicted.length > 0 ? { prediction: referenceOf(predicted) } : {}) };
  }
  return { inputs: bins(), ...(held ? { prediction: referenceOf(held.predicted) } : {}), symbols };
}

/** The regime published for each row by a tracker with `rule`, fed the dataset's frames as the live features frames. */
function publishedStates(model: JumpModelFile, d: Dataset, rule: RegimeStability): Int32Array {
  const columns = Int32Array.from(REGIME, (name) => d.features.indexOf(name));
  const tracker = new RegimeTracker(model, d.symbols, { model: 'regime-sjm', intervalMs: d.sampleMs, labels: ['calm', 'volatile'], columns, width: d.features.length, stability: rule });
  const states = new Int32Array(d.rows);
  eachFrame(d, (frame) => {
    const published = tracker.step(frame);
    frame.row.forEach((r, i) => r >= 0 && (states[r] = published.state[i]!));
  });
  return states;
}

function switchesPerHour(states: ArrayLike<number>, d: Dataset): number {
  const last = new Map<number, number>();
  let switches = 0;
  for (let r = 0; r < d.rows; r++) {
    const i = d.instrument[r]!;
    const before = last.get(i);
    if (before !== undefined && before !== states[r]) switches++;
    last.set(i, states[r]!);
  }
  const hours = ((d.time[d.rows - 1]! - d.time[0]!) / 3_600_000) * d.symbols.length;
  return switches / hours;
}

/** Rows with a known forward return (and in `mask`, when given), as float32 model inputs. */
function supervised(d: Dataset, names: string[], mask?: Uint8Array) {
  const keep = Uint8Array.from(d.forwardReturn, (y, r) => (Number.isFinite(y) && (!mask || mask[r]) ? 1 : 0));
  const y = d.forwardReturn.filter((_, r) => keep[r] === 1);
  return { x: Float32Array.from(select(d, names, keep)), y, rows: y.length, instrument: d.instrument.filter((_, r) => keep[r] === 1) };
}

function pick(src: Float32Array, rows: readonly number[], width: number): Float32Array {
  const out = new Float32Array(rows.length * width);
  rows.forEach((r, k) => {
    for (let c = 0; c < width; c++) out[k * width + c] = src[r * width + c]!;
  });
  return out;
}

function finiteTargets(y: Float64Array): number[] {
  const keep: number[] = [];
  y.forEach((v, i) => Number.isFinite(v) && keep.push(i));
  return keep;
}

function columnStats(x: Float32Array, width: number): { mean: number[]; std: number[] } {
  const n = x.length / width;
  const mu = new Array<number>(width).fill(0);
  const sq = new Array<number>(width).fill(0);
  for (let r = 0; r < n; r++) for (let c = 0; c < width; c++) mu[c]! += x[r * width + c]! / n;
  for (let r = 0; r < n; r++) for (let c = 0; c < width; c++) sq[c]! += (x[r * width + c]! - mu[c]!) ** 2 / n;
  return { mean: mu.map(Math.fround), std: sq.map((v) => Math.fround(Math.sqrt(v) || 1)) };
}

function standardize(x: Float32Array, mu: number[], sd: number[]): Float32Array {
  const width = mu.length;
  return x.map((v, i) => (v - mu[i % width]!) / sd[i % width]!);
}

function quantile(values: Float64Array, q: number): number {
  const sorted = Float64Array.from(values).sort();
  return Math.fround(sorted[Math.floor(q * (sorted.length - 1))]!);
}

function mean(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]!;
  return s / v.length;
}

/** models/README.md: every model's data, horizon and held-out metrics against its baseline. */
export function modelsReadme(title: string, intro: string, report: TrainReport): string {
  const fmt = (v: number) => (Math.abs(v) >= 100 ? v.toFixed(1) : v.toPrecision(4));
  const lines = [`# ${title}`, '', intro, '', '| model | horizon | inputs | held-out rows | metric | model | baseline |', '|---|---|---|---|---|---|---|'];
  for (const { name, manifest } of report.built) {
    const m = manifest.metrics;
    const horizon = manifest.horizonMs === undefined ? '—' : horizonLabel(manifest.horizonMs);
    const inputs = `${manifest.input.window > 1 ? `${manifest.input.window} x ` : ''}${manifest.input.features.length}`;
    for (const key of Object.keys(m.model)) {
      const baseline = m.baseline[key];
      lines.push(`| ${name} | ${horizon} | ${inputs} | ${m.heldOutRows} | ${key} | ${fmt(m.model[key]!)} | ${baseline === undefined ? '—' : fmt(baseline)} |`);
    }
  }
  lines.push('', 'Baselines:', ...report.built.map(({ name, manifest }) => `- ${name}: ${manifest.metrics.baselineName}`));
  if (report.skipped.length > 0) lines.push('', 'Not built:', ...report.skipped.map((s) => `- ${s.name}: ${s.reason}`));
  if (report.warnings.length > 0) lines.push('', 'Warnings:', ...report.warnings.map((w) => `- ${w}`));
  lines.push('');
  return lines.join('\n');
}
