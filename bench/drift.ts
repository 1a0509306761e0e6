/**
 * Drift: what watching the models costs the predictor. The shipped 10 s
 * GBDT serves a frame of every instrument on the main thread, without the
 * drift monitor, with it on the same thread (monitor.ts: a copy of the
 * frame, each input's and the prediction's bin per instrument, predictions
 * queued and scored after the horizon, the bound judged: the monitor's
 * cost), and with it on its own thread as the daemon runs it
 * (monitor-thread.ts: what is left on the main thread), side by side in one
 * run; and the monitor's report (every model's PSI per instrument), which
 * the predictor asks for every 10 frames.
 */
import pino from 'pino';
import { DEFAULT_FEATURE_OPTIONS, featureSchema, type FeatureFrame } from '../src/market/features.js';
import { InferencePool } from '../src/models/inference/pool.js';
import { readModelSource } from '../src/models/manifest.js';
import { DEFAULT_MONITOR, ModelMonitor } from '../src/models/monitor.js';
import { MonitorThread } from '../src/models/monitor-thread.js';
import { TieredPredictor, type HorizonTiers } from '../src/models/predictor.js';
import { ModelRegistry } from '../src/models/registry.js';
import { fmt, median, percentile, type BenchOptions } from './stats.js';

export const INSTRUMENTS = 5_000;
const GBDT = 'models/gbdt-base-10s/manifest.json';
/** Frames before timing: the horizon's first predictions resolve after 10, and past 150 (a quarter of the window) every instrument's PSI counts. */
const WARM_FRAMES = 160;
const TIMED_FRAMES = 40;
const schema = featureSchema(DEFAULT_FEATURE_OPTIONS);
const width = schema.features.length;

/** Frame `t`: the GBDT's golden rows, varied per instrument and frame, the mid moving so predictions resolve to returns. */
export function frameOf(t: number): FeatureFrame {
  const golden = readModelSource(GBDT).manifest;
  const inputs = golden.input.features;
  const rows = golden.golden!.input.length / inputs.length;
  const values = new Float64Array(INSTRUMENTS * width).fill(1);
  for (let i = 0; i < INSTRUMENTS; i++) {
    const row = (i + t) % rows;
    inputs.forEach((name, c) => (values[i * width + schema.features.indexOf(name)] = golden.golden!.input[row * inputs.length + c]! * (1 + 0.05 * Math.sin(i * 7 + t))));
    values[i * width] = 100 * (1 + 0.001 * Math.sin(i + t / 7));
  }
  return { intervalMs: 1_000, at: t * 1_000, wallAt: t * 1_000, schema, symbols, values, warm: new Uint8Array(INSTRUMENTS).fill(1), base: false };
}
export const symbols = Array.from({ length: INSTRUMENTS }, (_, i) => `SYM${i}`);

/** The 10 s GBDT alone. */
const ONE_HORIZON: readonly HorizonTiers[] = [{ horizonMs: 10_000, tiers: { base: [GBDT], sectors: {}, sectorCacheSize: 1 } }];

/**
 * Frames of the whole universe through a predictor serving `horizons` on
 * the main thread: each frame's time, and the monitor's report's (on its
 * own thread: from asking to the answer). A monitor thread is let catch up
 * after each frame, outside the timing, as a 1 s frame leaves it time to.
 */
export async function timedFrames(pool: InferencePool, monitor: ModelMonitor | MonitorThread | undefined, horizons = ONE_HORIZON): Promise<{ frameMs: number[]; reportMs: number[] }> {
  const silent = pino({ level: 'silent' });
  const registry = new ModelRegistry(pool, schema, silent, { latencyBudgetMs: 10_000, maxWindow: 16 });
  const predictor = new TieredPredictor(registry, schema, symbols, { horizons, historyFrames: 16, inThreadMaxMs: Infinity, ...(monitor ? { monitor } : {}) }, silent, () => 0);
  await predictor.start();
  const frameMs: number[] = [];
  const reportMs: number[] = [];
  for (let k = 0; k < WARM_FRAMES + TIMED_FRAMES; k++) {
    // Made fresh each time (200 frames of the universe would take 200 MB), outside the timing.
    const frame = frameOf(k + 1);
    const started = performance.now();
    await predictor.predict(frame);
    if (k >= WARM_FRAMES) frameMs.push(performance.now() - started);
    if (monitor instanceof MonitorThread) await monitor.caughtUp();
    if (monitor && k >= WARM_FRAMES && k % 10 === 0) {
      const at = performance.now();
      const report = await monitor.report();
      reportMs.push(performance.now() - at);
      if (report[0]!.inputPsi.some((p) => Number.isNaN(p))) throw new Error('an instrument without a PSI yet: warm up longer');
    }
  }
  return { frameMs, reportMs };
}

export async function driftBench({ runs, progress }: BenchOptions) {
  progress(`drift: ${WARM_FRAMES + TIMED_FRAMES} frames of ${fmt(INSTRUMENTS)} instruments per variant`);
  const pool = await InferencePool.start({ workers: 0, timeoutMs: 60_000 });
  const bare: number[] = [];
  const watched: number[] = [];
  const threaded: number[] = [];
  const reports: number[] = [];
  const threadReports: number[] = [];
  const failures: Error[] = [];
  try {
    for (let run = 1; run <= runs; run++) {
      // Alternated, so a drifting machine does not favour one.
      const a = await timedFrames(pool, undefined);
      const b = await timedFrames(pool, new ModelMonitor(symbols, width, 1_000, DEFAULT_MONITOR));
      const thread = await MonitorThread.start(symbols, width, 1_000, DEFAULT_MONITOR, (err) => void failures.push(err));
      const c = await timedFrames(pool, thread).finally(() => thread.close());
      if (failures.length > 0 || thread.skipped > 0) throw failures[0] ?? new Error(`the monitor's thread skipped ${thread.skipped} frames`);
      bare.push(median(a.frameMs));
      watched.push(median(b.frameMs));
      threaded.push(median(c.frameMs));
      reports.push(median(b.reportMs));
      threadReports.push(median(c.reportMs));
      progress(`drift: run ${run}/${runs}: frame ${fmt(median(a.frameMs), 2)} ms bare, ${fmt(median(b.frameMs), 2)} ms watched here, ${fmt(median(c.frameMs), 2)} ms watched on its thread; report ${fmt(median(b.reportMs), 2)} ms here, ${fmt(median(c.reportMs), 2)} ms from its thread`);
    }
  } finally {
    await pool.close();
  }
  const bareMs = median(bare);
  const watchedMs = median(watched);
  const threadedMs = median(threaded);
  const reportMs = median(reports);
  const threadReportMs = median(threadReports);
  const rows = [
    { variant: 'predict, no monitor', frameMs: bareMs, p99Ms: percentile(bare, 99) },
    { variant: 'predict, drift monitor on the main thread', frameMs: watchedMs, p99Ms: percentile(watched, 99) },
    { variant: 'predict, drift monitor on its own thread', frameMs: threadedMs, p99Ms: percentile(threaded, 99) },
    { variant: 'drift report, main thread', frameMs: reportMs, p99Ms: percentile(reports, 99) },
    { variant: 'drift report, asked of its thread', frameMs: threadReportMs, p99Ms: percentile(threadReports, 99) },
  ];
  const table = [
    `| ${fmt(INSTRUMENTS)} instruments, gbdt-base-10s on the main thread | ms per frame | vs no monitor |`,
    '|---|---|---|',
    `| predict, no monitor | ${fmt(bareMs, 2)} | 1.00x |`,
    `| predict, with the drift monitor on the main thread (frame copy, ${DEFAULT_MONITOR.windowFrames}-frame PSI bins of 11 inputs and the prediction, scoring after 10 s) | ${fmt(watchedMs, 2)} | ${fmt(watchedMs / bareMs, 2)}x |`,
    `| predict, with the drift monitor on its own thread (frame copy and post; the daemon's way) | ${fmt(threadedMs, 2)} | ${fmt(threadedMs / bareMs, 2)}x |`,
    `| the monitor's report (PSI of every instrument, every 10 frames), on the main thread | ${fmt(reportMs, 2)} | |`,
    `| the same asked of its thread, to the answer | ${fmt(threadReportMs, 2)} | |`,
  ].join('\n');
  return { rows, table };
}
