/**
 * Models: rows per second and memory per engine on 100,000 rows of real
 * inputs (the simulator's market through keel's feature pipeline), against
 * the production system's table, and how long the event loop waits while
 * inference runs flat out.
 *
 *   sjm online   OnlineJumpModel.update, row by row, one stream per instrument
 *   gbdt, lstm   the shipped ONNX files (models/gbdt-base-10s, models/lstm-base-10s)
 *                through the InferencePool with 1 and 2 workers, in batches of
 *                1,000 and of 100 rows, against a plain InferenceSession on the
 *                main thread with the same batches and session options
 *   loop delay   monitorEventLoopDelay (1 ms resolution) while two LSTM and
 *                two GBDT batches of 2,000 rows are kept in flight, in pools of
 *                2 and 1 workers and in-thread; while the real TieredPredictor
 *                (base tier: GBDT + LSTM) predicts frames of 500 and of 5,000
 *                instruments as fast as it goes (each batch on the main thread
 *                or in a worker as its measured cost says; the workers pack
 *                their batches from the shared frame history), at 5,000 also with
 *                the drift monitor on the main thread and on its own thread; and idle
 *   round trip   a 4-row batch, one at a time, to a worker and on the main
 *                thread: what a small batch saves by not crossing threads
 *
 * Memory is the process's RSS (worker threads are part of it) from just
 * before an engine is created to the end of its first 100,000 rows.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import pino from 'pino';
import { InferencePool } from '../src/models/inference/pool.js';
import { readModelSource, type ModelSource } from '../src/models/manifest.js';
import { DEFAULT_MONITOR, ModelMonitor } from '../src/models/monitor.js';
import { MonitorThread } from '../src/models/monitor-thread.js';
import { TieredPredictor } from '../src/models/predictor.js';
import { ModelRegistry } from '../src/models/registry.js';
import { OnlineJumpModel, parseJumpModel } from '../src/models/sjm.js';
import { select, windows, type Dataset } from '../src/models/dataset.js';
import { simulateDataset } from '../src/models/training-data.js';
import { fmt, median, percentile, type BenchOptions } from './stats.js';
import type { FeatureFrame } from '../src/market/features.js';

const ROWS = 100_000;
/** 7 simulated hours of 4 instruments at one row a second: 100,560 rows. */
const SIMULATED_SECONDS = 25_200;
const BATCHES = [1_000, 100];
const WORKERS = [1, 2];
/** Several ms of inference per batch: about 4.5 ms in-thread for either model. */
const LOAD_BATCH = 2_000;
const LOAD_MS = 3_000;
/** The daemon's default pool size. */
const LOAD_WORKERS = 2;
/** The predictor's main-thread work grows with the instruments: a daemon-sized universe and the issue's 5,000. */
const PREDICTOR_INSTRUMENTS = [500, 5_000];
/** The drift monitor's variants, at 5,000 instruments. */
const MONITORED: Watched[] = ['main thread', 'own thread'];
/** The production system's rows per second, per engine. */
const THEIRS: Readonly<Record<'sjm' | 'gbdt' | 'lstm', number>> = { sjm: 463_723, gbdt: 32_886, lstm: 50_694 };
const TARGET_TIMES = 10;
const LOOP_TARGET_MS = 5;
/** The predictor's default: a batch unanswered for this long is a fault, and fails the bench. */
const POOL_TIMEOUT_MS = 1_000;
/** As the pool's workers open their sessions (src/models/inference/worker.ts), so in-thread runs the same model the same way. */
const SESSION_OPTIONS: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all', executionMode: 'sequential' };

const manifestPath = (model: string) => fileURLToPath(new URL(`../models/${model}/manifest.json`, import.meta.url));
const mib = (bytes: number) => `${bytes < 0 ? '' : '+'}${fmt(bytes / 2 ** 20, 1)} MiB`;
const times = (ratio: number) => `${fmt(ratio, 1)}x`;

/** An ONNX model and ROWS rows of its input, as the predictor would feed it. */
interface OnnxEngine {
  readonly name: 'gbdt' | 'lstm';
  readonly source: ModelSource;
  /** ROWS rows, standardised as the manifest says. */
  readonly input: Float32Array;
  /** The shape of one row: [features], or [window, features] for a sequence model. */
  readonly row: readonly number[];
}

function onnxEngine(name: OnnxEngine['name'], model: string, d: Dataset): OnnxEngine {
  const source = readModelSource(manifestPath(model));
  const { features, window, standardize } = source.manifest.input;
  const F = features.length;
  const all = window > 1 ? windows(d, features, window).x : Float32Array.from(select(d, features));
  if (all.length < ROWS * window * F) throw new Error(`${model}: the dataset gives ${all.length / (window * F)} rows, the bench needs ${ROWS}`);
  const input = all.slice(0, ROWS * window * F);
  if (standardize) for (let i = 0; i < input.length; i++) input[i] = (input[i]! - standardize.mean[i % F]!) / standardize.std[i % F]!;
  return { name, source, input, row: window > 1 ? [window, F] : [F] };
}

/** The model's structure from the ONNX file itself. */
function onnxStructure(bytes: Uint8Array): string {
  const graph = onnxProto.onnx.ModelProto.decode(bytes).graph!;
  // int64 values decode as Long objects; String() reads both those and plain numbers.
  const attribute = (op: string, name: string) => graph.node!.find((n) => n.opType === op)?.attribute?.find((a) => a.name === name);
  const treeIds = attribute('TreeEnsembleRegressor', 'nodes_treeids')?.ints;
  if (treeIds) {
    const leaves = attribute('TreeEnsembleRegressor', 'target_treeids')!.ints!.length;
    return `${new Set(treeIds.map(String)).size} trees, ${fmt(treeIds.length)} nodes (${fmt(leaves)} leaves)`;
  }
  const hidden = attribute('LSTM', 'hidden_size');
  if (hidden) {
    const parameters = graph.initializer!.reduce((n, t) => n + t.floatData!.length, 0);
    return `1 LSTM layer, hidden size ${String(hidden.i)}, ${fmt(parameters)} parameters`;
  }
  throw new Error('neither a tree ensemble nor an LSTM');
}

/** Runs one batch and gives back the first output. */
type Run = (input: Float32Array, dims: readonly number[]) => Promise<Float32Array>;

function inPool(pool: InferencePool, e: OnnxEngine): Run {
  return async (input, dims) => (await pool.run(e.name, input, dims)).outputs[e.source.manifest.outputs[0]!]!;
}

function inThread(session: ort.InferenceSession): Run {
  return async (input, dims) => {
    const results = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', input, dims) });
    return results[session.outputNames[0]!]!.data as Float32Array;
  };
}

/** Rows [from, from + rows) as a fresh array, as the predictor packs one per batch (the pool takes it over). */
function batchOf(e: OnnxEngine, from: number, rows: number): [Float32Array, number[]] {
  const width = e.input.length / ROWS;
  return [e.input.slice(from * width, (from + rows) * width), [rows, ...e.row]];
}

/** ROWS rows in batches, `lanes` batches in flight at a time; rows per second. */
async function rowsPerSecond(run: Run, e: OnnxEngine, batch: number, lanes: number): Promise<number> {
  let next = 0;
  const lane = async () => {
    while (next < ROWS) {
      const from = next;
      const rows = Math.min(batch, ROWS - from);
      next += rows;
      const out = await run(...batchOf(e, from, rows));
      if (out.length !== rows) throw new Error(`${e.name}: ${out.length} outputs for ${rows} rows`);
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: lanes }, lane));
  return ROWS / ((performance.now() - started) / 1000);
}

interface Variant {
  readonly name: string;
  /** Batches in flight: two per worker, so a worker always has its next batch waiting. */
  readonly lanes: number;
  readonly run: Run;
  readonly rssBytes: number;
  close(): Promise<unknown>;
}

/** Opens the engine in-thread and in pools of 1 and 2 workers; each one's memory is measured over its opening and first ROWS rows. */
async function variantsOf(e: OnnxEngine, progress: (line: string) => void): Promise<Variant[]> {
  const openers = [
    async () => {
      const session = await ort.InferenceSession.create(e.source.bytes, SESSION_OPTIONS);
      return { name: 'in-thread', lanes: 1, run: inThread(session), close: () => session.release() };
    },
    ...WORKERS.map((workers) => async () => {
      const pool = await InferencePool.start({ workers, timeoutMs: POOL_TIMEOUT_MS });
      await pool.load(e.name, e.source.bytes);
      return { name: `pool, ${workers} worker${workers > 1 ? 's' : ''}`, lanes: 2 * workers, run: inPool(pool, e), close: () => pool.close() };
    }),
  ];
  const variants: Variant[] = [];
  for (const open of openers) {
    const before = process.memoryUsage().rss;
    const opened = await open();
    await rowsPerSecond(opened.run, e, BATCHES[0]!, opened.lanes); // warm-up, and the rows the memory is measured over
    const variant = { ...opened, rssBytes: process.memoryUsage().rss - before };
    progress(`models: ${e.name} ${variant.name}: RSS ${mib(variant.rssBytes)}`);
    variants.push(variant);
  }
  return variants;
}

/** SJM online over ROWS rows, one stream per instrument; rows per second. */
function sjmRowsPerSecond(sjm: OnlineJumpModel, rows: Float64Array, instrument: Int32Array, F: number): number {
  const started = performance.now();
  for (let r = 0; r < ROWS; r++) sjm.update(instrument[r]!, rows, r * F);
  return ROWS / ((performance.now() - started) / 1000);
}

interface Throughput {
  readonly engine: string;
  readonly variant: string;
  readonly batch: number;
  readonly rowsPerSecond: number;
  readonly theirs: number;
  readonly rssBytes: number;
}

interface Size {
  readonly engine: string;
  readonly model: string;
  readonly fileBytes: number;
  readonly structure: string;
}

/** Something kept busy while the event loop's delay is measured. */
interface Load {
  readonly name: string;
  /** Served by the workers, so the 5 ms target applies; idle and in-thread are there for contrast. */
  readonly inWorkers: boolean;
  /** Model rows per predictor frame, to count frames per second. */
  readonly rowsPerFrame?: number;
  /** Keeps busy until `until` (performance.now() time); answers with the rows it put through the models. */
  run(until: number): Promise<number>;
  /** The predictor's: median ms a predict() call held the main thread in the last run. */
  callMs?(): number;
  /** The predictor's: its batches in the last run, on the main thread / in the workers. */
  split?(): string;
  /** Stops what the load started besides the pools. */
  close?(): Promise<void>;
}

interface LoopDelay {
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly rowsPerSecond: number;
  readonly predictCallMs: number;
  readonly split: string;
}

async function loopDelay(load: Load): Promise<LoopDelay> {
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  const started = performance.now();
  const rows = await load.run(started + LOAD_MS);
  const seconds = (performance.now() - started) / 1000;
  histogram.disable();
  const predictCallMs = load.callMs?.() ?? NaN;
  return { p50Ms: histogram.percentile(50) / 1e6, p99Ms: histogram.percentile(99) / 1e6, maxMs: histogram.max / 1e6, rowsPerSecond: rows / seconds, predictCallMs, split: load.split?.() ?? '' };
}

const idle: Load = { name: 'idle', inWorkers: false, run: (until) => new Promise((resolve) => setTimeout(() => resolve(0), until - performance.now())) };

/** Two lanes, each keeping an LSTM and a GBDT batch of LOAD_BATCH rows in flight. */
function batchLoad(name: string, inWorkers: boolean, lstm: OnnxEngine, runLstm: Run, gbdt: OnnxEngine, runGbdt: Run): Load {
  const run = async (until: number) => {
    let batches = 0;
    const lane = async () => {
      while (performance.now() < until) {
        const from = (batches++ * LOAD_BATCH) % ROWS;
        await Promise.all([runLstm(...batchOf(lstm, from, LOAD_BATCH)), runGbdt(...batchOf(gbdt, from, LOAD_BATCH))]);
      }
    };
    await Promise.all([lane(), lane()]);
    return batches * 2 * LOAD_BATCH;
  };
  return { name: `LSTM + GBDT batches of ${fmt(LOAD_BATCH)}, ${name}`, inWorkers, run };
}

/** The daemon's predictor with the shipped base tier (GBDT + LSTM) on `instruments` instruments, fed the dataset's rows as frames. */
/** Where the predictor's drift monitor runs: none, on the main thread, on its own thread (as in the daemon). */
type Watched = 'unwatched' | 'main thread' | 'own thread';

async function predictorLoad(pool: InferencePool, d: Dataset, instruments: number, watched: Watched = 'unwatched'): Promise<Load> {
  const schema = { name: d.schema.name, version: d.schema.version, features: d.features };
  const symbols = Array.from({ length: instruments }, (_, i) => `SYM${i}`);
  const log = pino({ level: 'silent' });
  const registry = new ModelRegistry(pool, schema, log, { latencyBudgetMs: 1_000, maxWindow: 32 });
  const tiers = { base: [manifestPath('gbdt-base-10s'), manifestPath('lstm-base-10s')], sectors: {}, sectorCacheSize: 2 };
  const failures: Error[] = [];
  const thread = watched === 'own thread' ? await MonitorThread.start(symbols, d.features.length, 1_000, DEFAULT_MONITOR, (err) => void failures.push(err)) : undefined;
  const monitor = watched === 'main thread' ? new ModelMonitor(symbols, d.features.length, 1_000, DEFAULT_MONITOR) : thread;
  const predictor = new TieredPredictor(registry, schema, symbols, { horizons: [{ horizonMs: 10_000, tiers }], historyFrames: 32, ...(monitor ? { monitor } : {}) }, log, () => performance.now());
  await predictor.start();
  const width = d.features.length;
  const frame: FeatureFrame = {
    intervalMs: 1_000,
    at: 0,
    wallAt: 0,
    schema,
    symbols,
    values: new Float64Array(instruments * width),
    warm: new Uint8Array(instruments).fill(1),
    base: false,
  };
  let frames = 0;
  let callMs: number[] = [];
  // predict() reads the frame before it returns, so one frame object serves every call.
  const predictNext = async () => {
    const from = (frames++ * instruments) % (d.rows - instruments);
    frame.values.set(d.x.subarray(from * width, (from + instruments) * width));
    frame.at = performance.now();
    const prediction = predictor.predict(frame);
    callMs.push(performance.now() - frame.at);
    const p = await prediction;
    if (p.faults.length > 0) throw new Error(`predictor faults: ${p.faults.join('; ')}`);
    return p;
  };
  // The LSTM joins once every instrument has a full window of frames.
  for (let n = 0; n < 10; n++) await predictNext();
  if (!(await predictNext()).horizons[0]!.models[0]!.includes('lstm-base-10s')) throw new Error('the LSTM is not serving after its window filled');
  let split = '';
  // Two frames in flight, as the predictor actor allows by default.
  const run = async (until: number) => {
    const first = frames;
    const { here, workers } = predictor.paths;
    const before = [here.batches, workers.batches, thread?.skipped ?? 0];
    callMs = [];
    const lane = async () => {
      while (performance.now() < until) await predictNext();
    };
    await Promise.all([lane(), lane()]);
    split = `${fmt(here.batches - before[0]!)} / ${fmt(workers.batches - before[1]!)}`;
    if (thread) split += `; frames the monitor's thread skipped, being behind: ${fmt(thread.skipped - before[2]!)} of ${fmt(frames - first)}`;
    if (failures.length > 0) throw failures[0]!;
    return (frames - first) * 2 * instruments;
  };
  const close = async () => {
    await thread?.close();
  };
  return { name: `TieredPredictor, ${fmt(instruments)} instruments, pool of ${LOAD_WORKERS} workers${watched === 'unwatched' ? '' : `, drift monitor on the ${watched}`}`, inWorkers: true, rowsPerFrame: 2 * instruments, run, callMs: () => median(callMs), split: () => split, close };
}

export async function modelsBench({ runs, progress }: BenchOptions) {
  progress(`models: simulating ${fmt(SIMULATED_SECONDS)} s of 4 instruments for the inputs`);
  const d = simulateDataset({ seed: 1, instruments: 4, seconds: SIMULATED_SECONDS, sampleMs: 1_000, horizonMs: 10_000 });
  if (d.rows < ROWS) throw new Error(`the dataset has ${d.rows} rows, the bench needs ${ROWS}`);

  // SJM online: the regime actor's model on its own features.
  const sjmSource = readModelSource(manifestPath('regime-sjm'));
  const sjmFile = parseJumpModel(JSON.parse(Buffer.from(sjmSource.bytes).toString('utf8')), sjmSource.filePath);
  const sjmRows = select(d, sjmFile.features);
  const sjmBefore = process.memoryUsage().rss;
  const sjm = new OnlineJumpModel(sjmFile, d.symbols.length);
  sjmRowsPerSecond(sjm, sjmRows, d.instrument, sjmFile.features.length); // warm-up
  const sjmRssBytes = process.memoryUsage().rss - sjmBefore;
  const sjmRates: number[] = [];
  for (let run = 1; run <= runs; run++) {
    sjmRates.push(sjmRowsPerSecond(sjm, sjmRows, d.instrument, sjmFile.features.length));
    progress(`models: run ${run}/${runs} sjm online: ${fmt(sjmRates.at(-1)!)} rows/s`);
  }
  const throughput: Throughput[] = [{ engine: 'sjm', variant: 'online, in-thread', batch: 1, rowsPerSecond: median(sjmRates), theirs: THEIRS.sjm, rssBytes: sjmRssBytes }];
  const sizes: Size[] = [{ engine: 'sjm', model: 'regime-sjm', fileBytes: sjmSource.bytes.length, structure: `${sjmFile.k} states x ${sjmFile.features.length} features, λ ${sjmFile.lambda}` }];

  const engines = [onnxEngine('gbdt', 'gbdt-base-10s', d), onnxEngine('lstm', 'lstm-base-10s', d)];
  for (const e of engines) {
    sizes.push({ engine: e.name, model: e.source.manifest.name, fileBytes: e.source.bytes.length, structure: onnxStructure(e.source.bytes) });
    const variants = await variantsOf(e, progress);
    const rates = new Map(variants.flatMap((v) => BATCHES.map((batch) => [`${v.name}/${batch}`, [] as number[]])));
    for (let run = 1; run <= runs; run++) {
      for (const batch of BATCHES) {
        for (const v of variants) {
          const rate = await rowsPerSecond(v.run, e, batch, v.lanes);
          rates.get(`${v.name}/${batch}`)!.push(rate);
          progress(`models: run ${run}/${runs} ${e.name} ${v.name}, batch ${fmt(batch)}: ${fmt(rate)} rows/s`);
        }
      }
    }
    for (const batch of BATCHES) {
      for (const v of variants) {
        throughput.push({ engine: e.name, variant: v.name, batch, rowsPerSecond: median(rates.get(`${v.name}/${batch}`)!), theirs: THEIRS[e.name], rssBytes: v.rssBytes });
      }
    }
    await Promise.all(variants.map((v) => v.close()));
  }

  progress(`models: event-loop delay, ${LOAD_MS / 1000} s per load and run`);
  const [gbdt, lstm] = engines as [OnnxEngine, OnnxEngine];
  const pool = await InferencePool.start({ workers: LOAD_WORKERS, timeoutMs: POOL_TIMEOUT_MS });
  const onePool = await InferencePool.start({ workers: 1, timeoutMs: POOL_TIMEOUT_MS });
  const gbdtSession = await ort.InferenceSession.create(gbdt.source.bytes, SESSION_OPTIONS);
  const lstmSession = await ort.InferenceSession.create(lstm.source.bytes, SESSION_OPTIONS);
  let loads: Load[] = [];
  try {
    for (const p of [pool, onePool]) for (const e of engines) await p.load(e.name, e.source.bytes);
    const workers = batchLoad(`pool of ${LOAD_WORKERS} workers`, true, lstm, inPool(pool, lstm), gbdt, inPool(pool, gbdt));
    const inThreadLoad = batchLoad('in-thread', false, lstm, inThread(lstmSession), gbdt, inThread(gbdtSession));
    loads = [
      idle,
      workers,
      batchLoad('pool of 1 worker', true, lstm, inPool(onePool, lstm), gbdt, inPool(onePool, gbdt)),
      inThreadLoad,
      ...(await Promise.all(PREDICTOR_INSTRUMENTS.map((n) => predictorLoad(pool, d, n)))),
      ...(await Promise.all(MONITORED.map((where) => predictorLoad(pool, d, 5_000, where)))),
    ];
    const delays = new Map<Load, LoopDelay[]>(loads.map((load) => [load, []]));
    for (let run = 1; run <= runs; run++) {
      for (const load of loads) {
        const delay = await loopDelay(load);
        delays.get(load)!.push(delay);
        progress(`models: run ${run}/${runs} ${load.name}: loop delay p99 ${fmt(delay.p99Ms, 2)} ms, max ${fmt(delay.maxMs, 1)} ms, ${fmt(delay.rowsPerSecond)} rows/s`);
      }
    }
    const loop = loads.map((load) => {
      const all = delays.get(load)!;
      const of = (key: Exclude<keyof LoopDelay, 'split'>) => median(all.map((x) => x[key]));
      return { load, p50Ms: of('p50Ms'), p99Ms: of('p99Ms'), maxMs: of('maxMs'), rowsPerSecond: of('rowsPerSecond'), predictCallMs: of('predictCallMs'), split: all.at(-1)!.split };
    });
    const p99 = (load: Load) => loop.find((l) => l.load === load)!.p99Ms;
    progress('models: round trips of 4-row batches, to a worker and on the main thread');
    const trips = [];
    for (const e of engines) trips.push(await roundTrips(pool, e, runs));
    const rows = { throughput, loop: loop.map(({ load, ...delay }) => ({ load: load.name, ...delay })), sizes, trips, inThreadOverWorkersP99: p99(inThreadLoad) / p99(workers) };
    const contrast = `Loop delay p99 in-thread / in the pool of ${LOAD_WORKERS} workers: ${times(rows.inThreadOverWorkersP99)}.`;
    return { rows, table: [throughputTable(throughput), loopTable(loop), contrast, tripTable(trips), sizeTable(sizes)].join('\n\n') };
  } finally {
    await Promise.all([pool.close(), onePool.close(), gbdtSession.release(), lstmSession.release(), ...loads.map((l) => l.close?.())]);
  }
}

/** Runs of a small batch, one at a time. */
const TRIP_ROWS = 4;
const TRIPS_PER_BLOCK = 200;

interface Trips {
  readonly engine: string;
  readonly worker: { readonly p50Ms: number; readonly p99Ms: number };
  readonly here: { readonly p50Ms: number; readonly p99Ms: number };
  /** The pool's running mean of a worker run's time outside onnxruntime. */
  readonly hopMs: number;
}

/** `runs` blocks each of 4-row batches to a worker and on the main thread, alternating; from run() to the result. */
async function roundTrips(pool: InferencePool, e: OnnxEngine, runs: number): Promise<Trips> {
  const [input, dims] = batchOf(e, 0, TRIP_ROWS);
  const times = { worker: [] as number[], here: [] as number[] };
  for (let block = 0; block < 2 * runs + 1; block++) {
    for (const where of ['worker', 'here'] as const) {
      for (let k = 0; k < TRIPS_PER_BLOCK; k++) {
        // A worker run takes its input over: each run gets its own (copied before the clock starts).
        const batch = input.slice();
        const started = performance.now();
        await pool.run(e.name, batch, dims, where);
        // The first block warms both up.
        if (block > 0) times[where].push(performance.now() - started);
      }
    }
  }
  const spread = (xs: number[]) => ({ p50Ms: percentile(xs, 50), p99Ms: percentile(xs, 99) });
  return { engine: e.name, worker: spread(times.worker), here: spread(times.here), hopMs: pool.hopMs };
}

function tripTable(trips: readonly Trips[]): string {
  const us = (ms: number) => `${fmt(ms * 1000)} µs`;
  return [
    `| engine | ${TRIP_ROWS}-row batch, to a worker and back: p50 | p99 | on the main thread: p50 | p99 | worker p50 / main thread p50 | pool's hop estimate |`,
    '|---|---|---|---|---|---|---|',
    ...trips.map((t) => `| ${t.engine} | ${us(t.worker.p50Ms)} | ${us(t.worker.p99Ms)} | ${us(t.here.p50Ms)} | ${us(t.here.p99Ms)} | ${times(t.worker.p50Ms / t.here.p50Ms)} | ${us(t.hopMs)} |`),
  ].join('\n');
}

function throughputTable(throughput: readonly Throughput[]): string {
  return [
    `| engine | variant | batch | rows/s (${fmt(ROWS)} rows) | production | ours / theirs | target ${TARGET_TIMES}x | RSS growth |`,
    '|---|---|---|---|---|---|---|---|',
    ...throughput.map((t) => {
      const ratio = t.rowsPerSecond / t.theirs;
      const batch = t.engine === 'sjm' ? 'row by row' : fmt(t.batch);
      return `| ${t.engine} | ${t.variant} | ${batch} | ${fmt(t.rowsPerSecond)} | ${fmt(t.theirs)} | ${times(ratio)} | ${ratio >= TARGET_TIMES ? 'met' : '**missed**'} | ${mib(t.rssBytes)} |`;
    }),
  ].join('\n');
}

function loopTable(loop: readonly ({ load: Load } & LoopDelay)[]): string {
  return [
    `| load | rows/s through the models | loop delay p50 | p99 | max | target p99 <= ${LOOP_TARGET_MS} ms |`,
    '|---|---|---|---|---|---|',
    ...loop.map(({ load, p50Ms, p99Ms, maxMs, rowsPerSecond, predictCallMs, split }) => {
      const frames = load.rowsPerFrame ? ` (${fmt(rowsPerSecond / load.rowsPerFrame, 1)} frames/s; predict() returns in ${fmt(predictCallMs, 2)} ms; batches on the main thread / in workers ${split})` : '';
      const rate = `${fmt(rowsPerSecond)}${frames}`;
      const target = !load.inWorkers ? 'contrast' : p99Ms <= LOOP_TARGET_MS ? 'met' : '**missed**';
      return `| ${load.name} | ${rate} | ${fmt(p50Ms, 2)} ms | ${fmt(p99Ms, 2)} ms | ${fmt(maxMs, 1)} ms | ${target} |`;
    }),
  ].join('\n');
}

function sizeTable(sizes: readonly Size[]): string {
  return ['| engine | model | file | structure |', '|---|---|---|---|', ...sizes.map((s) => `| ${s.engine} | ${s.model} | ${fmt(s.fileBytes)} bytes | ${s.structure} |`)].join('\n');
}
