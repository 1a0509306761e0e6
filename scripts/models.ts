/**
 * `npm run models`: builds keel's demo models from simulator data with a
 * fixed seed, each with a manifest and held-out metrics against a naive
 * baseline, into models/. Run it again and every file comes out the same,
 * byte for byte; `--check` rebuilds into a temp dir and fails if anything
 * differs from what is committed.
 *
 *   regime-sjm     the Statistical Jump Model of the regime actor
 *   gbdt-base      histogram GBDT, 10 s forward return, every instrument
 *   lstm-base      LSTM over the last 10 frames, the same target
 *   gbdt-highvol   the GBDT specialist, trained on high-volatility rows only
 */
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { trainGbdt, predictGbdt, gbdtToOnnx } from '../src/models/gbdt.js';
import { lstmToOnnx, predictLstm, trainLstm, type LstmModel } from '../src/models/lstm.js';
import { sha256, type Manifest } from '../src/models/manifest.js';
import { regressionMetrics } from '../src/models/metrics.js';
import { fitJumpModel, OnlineJumpModel, type JumpModelFile } from '../src/models/sjm.js';
import { select, simulateDataset, splitByTime, windows, type Dataset } from '../src/models/training-data.js';

const HELP = `npm run models [-- --out DIR] [-- --check]

Builds the demo models from a seeded simulation (4 instruments, 6 simulated
hours, one row per instrument per second) and writes each model file with its
manifest (inputs, sha256, training data, held-out metrics, golden rows) to
models/ (or --out DIR). --check builds into a temp dir and exits 1 if any file
differs from models/.`;

const SEED = 20_261_121;
const DATA = { seed: SEED, instruments: 4, seconds: 6 * 3600, sampleMs: 1_000, horizonMs: 10_000 };
const TRAIN_SHARE = 0.75;
const TARGET = 'log return of the mid over the next 10 s, basis points';
const SCRIPT = 'npm run models (scripts/models.ts)';

/**
 * What the book, the flow and the last seconds say about the next ones; no
 * price level. Past returns carry the calm regime's mean reversion.
 */
const FLOW = ['imbalance_l1', 'depth_imbalance_5', 'depth_imbalance_10', 'ofi', 'trade_flow_imbalance', 'trade_intensity', 'spread_bps', 'depth_slope', 'rv_1s', 'ret_1s', 'ret_10s'];
/**
 * The simulator's regimes differ most in how often it trades and how wide
 * its spread is; rv_1s helps, the slower volatilities hardly separate them.
 */
const REGIME = ['trade_intensity', 'spread_bps', 'rv_1s'];
const VOLATILITY = 'rv_1s';
const WINDOW = 10;
/** The specialist's share of training rows: the most volatile quarter. */
const HIGH_VOL_QUANTILE = 0.75;
const GOLDEN_ROWS = 8;

const { values: flags } = parseArgs({ options: { out: { type: 'string' }, check: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } });
if (flags.help) {
  console.log(HELP);
  process.exit(0);
}
const out = flags.check ? mkdtempSync(join(tmpdir(), 'keel-models-')) : (flags.out ?? 'models');
const started = performance.now();
const step = (what: string) => console.error(`[${((performance.now() - started) / 1000).toFixed(1)} s] ${what}`);

step(`simulating ${DATA.instruments} instruments x ${DATA.seconds / 3600} h (seed ${SEED})`);
let lastShown = -1;
const data = simulateDataset({
  ...DATA,
  onProgress(done, total) {
    const pct = Math.floor((100 * done) / total);
    if (pct % 10 === 0 && pct !== lastShown) step(`  simulated ${pct} %`);
    lastShown = pct;
  },
});
const { train, test } = splitByTime(data, TRAIN_SHARE);
step(`${data.rows} rows: ${train.rows} to train, ${test.rows} held out (the later ${Math.round((1 - TRAIN_SHARE) * 100)} %)`);

const built: { name: string; manifest: Manifest }[] = [];

// --- regime: the jump model, judged on the simulator's true regime ---------
{
  step('regime-sjm: fitting the jump model');
  const fit = fitJumpModel(select(train, REGIME), train.rows, REGIME, { k: 2, lambda: 50, nInit: 10, seed: SEED, clip: 5, sortBy: 'trade_intensity' });
  const accuracy = (states: ArrayLike<number>, truth: Uint8Array) => Array.from(truth).filter((t, i) => states[i] === t).length / truth.length;
  const heldOut = onlineStates(fit.model, test, REGIME);
  const majority = mean(Array.from(train.regime)) >= 0.5 ? 1 : 0;
  const metrics = { accuracy: accuracy(heldOut, test.regime), switchesPerHour: switchesPerHour(heldOut, test) };
  const baseline = { accuracy: accuracy(new Uint8Array(test.rows).fill(majority), test.regime), switchesPerHour: switchesPerHour(test.regime, test) };
  const bytes = new TextEncoder().encode(JSON.stringify(fit.model, null, 1) + '\n');
  write('regime-sjm', 'model.json', bytes, {
    kind: 'sjm',
    features: REGIME,
    window: 1,
    outputs: ['state'],
    target: 'market regime: 0 calm, 1 volatile (states sorted by trade_intensity ascending); judged against the simulator\'s own regime',
    rows: train.rows,
    metrics: { heldOutRows: test.rows, model: metrics, baseline: { accuracy: baseline.accuracy, switchesPerHour: baseline.switchesPerHour }, baselineName: `always the training majority (${majority === 0 ? 'calm' : 'volatile'}); its switches/h are the true regime's` },
  });
}

// --- base GBDT ---------------------------------------------------------------
const gbdtOptions = { trees: 120, maxDepth: 4, learningRate: 0.05, bins: 64, minLeafRows: 100, l2: 1, subsample: 0.8, seed: SEED };
{
  step('gbdt-base: training');
  const { x, y, rows } = supervised(train, FLOW);
  const model = trainGbdt(x, y, rows, FLOW.length, gbdtOptions);
  const held = supervised(test, FLOW);
  const predict = (input: Float32Array, n: number) => predictGbdt(model, input, n);
  writeRegressor('gbdt-base', gbdtToOnnx(model, { docString: `keel demo GBDT: ${TARGET}` }), FLOW, 1, undefined, rows, held, predict(held.x, held.rows), predict);
}

// --- high-volatility specialist ----------------------------------------------
{
  const threshold = quantile(select(train, [VOLATILITY]), HIGH_VOL_QUANTILE);
  step(`gbdt-highvol: training on rows with ${VOLATILITY} > ${threshold.toFixed(3)}`);
  const hot = (d: Dataset) => Uint8Array.from(select(d, [VOLATILITY]), (v) => (v > threshold ? 1 : 0));
  const { x, y, rows } = supervised(train, FLOW, hot(train));
  const model = trainGbdt(x, y, rows, FLOW.length, gbdtOptions);
  const held = supervised(test, FLOW, hot(test));
  const predict = (input: Float32Array, n: number) => predictGbdt(model, input, n);
  writeRegressor('gbdt-highvol', gbdtToOnnx(model, { docString: `keel demo GBDT specialist above ${VOLATILITY} ${threshold}` }), FLOW, 1, undefined, rows, held, predict(held.x, held.rows), predict, {
    note: `trained and judged on rows with ${VOLATILITY} > ${threshold} (the top ${Math.round((1 - HIGH_VOL_QUANTILE) * 100)} % of training rows); set predictor.highVol.above to it`,
  });
}

// --- base LSTM ---------------------------------------------------------------
{
  step(`lstm-base: training on windows of ${WINDOW} frames`);
  const trainW = windows(train, FLOW, WINDOW);
  const keep = finiteTargets(trainW.forwardReturn);
  const { mean: mu, std: sd } = columnStats(trainW.x, FLOW.length);
  const x = standardize(pick(trainW.x, keep, WINDOW * FLOW.length), mu, sd);
  const y = Float64Array.from(keep, (i) => trainW.forwardReturn[i]!);
  const yScale = Math.sqrt(mean(Array.from(y, (v) => v * v)));
  const fitted = trainLstm(x, y.map((v) => v / yScale), keep.length, { window: WINDOW, inputSize: FLOW.length, hiddenSize: 12, epochs: 6, batchSize: 64, learningRate: 0.003, seed: SEED, clipNorm: 1 });
  // Trained on a unit-scale target; the shipped head answers in basis points.
  const model: LstmModel = { ...fitted, headW: fitted.headW.map((w) => w * yScale), headB: fitted.headB * yScale };
  const testW = windows(test, FLOW, WINDOW);
  const held = finiteTargets(testW.forwardReturn);
  const heldX = standardize(pick(testW.x, held, WINDOW * FLOW.length), mu, sd);
  const heldY = Float64Array.from(held, (i) => testW.forwardReturn[i]!);
  const predict = (input: Float32Array, n: number) => predictLstm(model, standardize(input, mu, sd), n);
  writeRegressor(
    'lstm-base',
    lstmToOnnx(model, { docString: `keel demo LSTM: ${TARGET}` }),
    FLOW,
    WINDOW,
    { mean: mu, std: sd },
    keep.length,
    { x: pick(testW.x, held, WINDOW * FLOW.length), y: heldY, rows: held.length },
    predictLstm(model, heldX, held.length),
    predict,
  );
}

writeFileSync(join(out, 'README.md'), readme());
step(`done: ${built.map((b) => b.name).join(', ')} in ${out}`);

if (flags.check) {
  const differ = compareTrees('models', out);
  rmSync(out, { recursive: true, force: true });
  if (differ.length > 0) {
    console.error(`models/ differs from a fresh build: ${differ.join(', ')}`);
    process.exit(1);
  }
  console.error('models/ is exactly what the script builds');
}

// ------------------------------------------------------------------------------

function onlineStates(model: JumpModelFile, d: Dataset, names: string[]): Int32Array {
  const online = new OnlineJumpModel(model, d.symbols.length);
  const x = select(d, names);
  const states = new Int32Array(d.rows);
  for (let r = 0; r < d.rows; r++) states[r] = online.update(d.instrument[r]!, x, r * names.length);
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
  return { x: Float32Array.from(select(d, names, keep)), y, rows: y.length };
}

function writeRegressor(
  name: string,
  bytes: Uint8Array,
  features: string[],
  window: number,
  scale: { mean: number[]; std: number[] } | undefined,
  trainRows: number,
  held: { x: Float32Array; y: Float64Array; rows: number },
  heldPred: Float64Array,
  predictRaw: (input: Float32Array, rows: number) => Float64Array,
  extra: { note?: string } = {},
) {
  const model = regressionMetrics(heldPred, held.y);
  const zero = regressionMetrics(new Float64Array(held.rows), held.y);
  step(`  ${name}: held-out rmse ${model.rmse.toFixed(4)} vs ${zero.rmse.toFixed(4)} (zero), r2 ${model.r2.toFixed(4)}, direction ${(100 * model.directionalAccuracy).toFixed(1)} %, corr ${model.correlation.toFixed(3)}`);
  // Golden rows: raw held-out inputs (keel standardises them as the manifest says) and what this model answers.
  const per = features.length * window;
  const goldenX = held.x.slice(0, GOLDEN_ROWS * per);
  write(name, 'model.onnx', bytes, {
    kind: 'onnx',
    features,
    window,
    standardize: scale,
    outputs: ['prediction'],
    target: extra.note ? `${TARGET}; ${extra.note}` : TARGET,
    rows: trainRows,
    // A zero forecast calls no direction and has no correlation: only its errors are comparable.
    metrics: { heldOutRows: held.rows, model: { ...model }, baseline: { rmse: zero.rmse, mae: zero.mae, r2: zero.r2 }, baselineName: 'zero: the mid does not move (a random walk)' },
    golden: { input: Array.from(goldenX), output: Array.from(predictRaw(goldenX, GOLDEN_ROWS), (v) => Math.fround(v)) },
  });
}

function write(
  name: string,
  file: string,
  bytes: Uint8Array,
  spec: {
    kind: 'onnx' | 'sjm';
    features: string[];
    window: number;
    standardize?: { mean: number[]; std: number[] };
    outputs: string[];
    target: string;
    rows: number;
    metrics: Manifest['metrics'];
    golden?: Manifest['golden'];
  },
) {
  const dir = join(out, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, file), bytes);
  const manifest: Manifest = {
    format: 'keel.model-manifest',
    name,
    version: `seed-${SEED}`,
    kind: spec.kind,
    file,
    sha256: sha256(bytes),
    featureSchema: { name: data.schema.name, version: data.schema.version },
    input: { name: 'input', features: spec.features, window: spec.window, ...(spec.standardize ? { standardize: spec.standardize } : {}) },
    outputs: spec.outputs,
    target: spec.target,
    training: { data: data.description, rows: spec.rows, seed: SEED, script: SCRIPT },
    metrics: spec.metrics,
    ...(spec.golden ? { golden: spec.golden } : {}),
  };
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  built.push({ name, manifest });
}

function readme(): string {
  const fmt = (v: number) => (Math.abs(v) >= 100 ? v.toFixed(1) : v.toPrecision(4));
  const lines = [
    '# keel demo models',
    '',
    `Built by \`${SCRIPT}\` from ${data.description}; the first ${Math.round(TRAIN_SHARE * 100)} % of the simulated time trains, the rest is held out. Rebuilding gives these files byte for byte (\`npm run models -- --check\`).`,
    '',
    '| model | inputs | held-out rows | metric | model | baseline |',
    '|---|---|---|---|---|---|',
  ];
  for (const { name, manifest } of built) {
    const m = manifest.metrics;
    for (const key of Object.keys(m.model)) {
      const baseline = m.baseline[key];
      lines.push(`| ${name} | ${manifest.input.window > 1 ? `${manifest.input.window} x ` : ''}${manifest.input.features.length} | ${m.heldOutRows} | ${key} | ${fmt(m.model[key]!)} | ${baseline === undefined ? '—' : fmt(baseline)} |`);
    }
  }
  lines.push('', 'Baselines:', ...built.map(({ name, manifest }) => `- ${name}: ${manifest.metrics.baselineName}`), '');
  return lines.join('\n');
}

function compareTrees(a: string, b: string): string[] {
  const files = (dir: string) => readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.includes('.')).sort();
  const names = new Set([...files(a), ...files(b)]);
  return [...names].filter((f) => {
    try {
      return !readFileSync(join(a, f)).equals(readFileSync(join(b, f)));
    } catch {
      return true;
    }
  });
}

function pick(src: Float32Array, rows: readonly number[], width: number): Float32Array {
  const outArr = new Float32Array(rows.length * width);
  rows.forEach((r, k) => {
    for (let c = 0; c < width; c++) outArr[k * width + c] = src[r * width + c]!;
  });
  return outArr;
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
