/**
 * Replay: recorded rows through the daemon's own actors (books, features,
 * feature health, regime, the predictor on the demo ONNX models, risk gate,
 * paper trader, journal) under the simulated clock, as `keel replay` runs
 * them: over the build in dist/, with keel's node flags, in processes of
 * their own (bench/build-probe.js and bin/keel.js).
 *
 * - throughput: a 1,000,000-row tape of the simulated market (4 instruments,
 *   about 3 min of market), median of runs after a warm-up in one process;
 * - memory: `keel replay` of a 10,000,000-row tape, its peak RSS with keel's
 *   node flags and without, against the 1 M-row tape's; and where it goes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ReplaySummary } from '../src/replay/replay.js';
import { writeMarketTape } from '../src/sim/tape.js';
import { buildState } from '../bin/build-state.js';
import { keelNodeFlags, runNode, type Running } from '../test/support/process.js';
import { fmt, median, type BenchOptions } from './stats.js';

const THROUGHPUT_ROWS = 1_000_000;
const MEMORY_ROWS = 10_000_000;
const TAPE = { seed: 3, instruments: 4, updatesPerSecond: 1_000 } as const;

/** What bench/build-probe.js workers prints: RSS by stage, bytes. */
interface WorkerStages {
  readonly start: number;
  readonly library: number;
  readonly firstSession: number;
  readonly sessions: number;
  readonly oneWorker: number;
  readonly twoWorkers: number;
}

/** What bench/build-probe.js memory prints: RSS by stage, bytes. */
interface MemoryStages {
  readonly rows: number;
  readonly node: number;
  readonly modules: number;
  readonly running: number;
  readonly threadsRunning: number;
  readonly peak: number;
  readonly end: number;
  readonly heapTotal: number;
  readonly heapUsed: number;
  readonly external: number;
  readonly newSpace: number;
  readonly oldSpace: number;
}

/** Waits for a child to end, and fails unless it ran the build and exited 0. */
async function finished(child: Running, what: string): Promise<void> {
  const code = await child.exited;
  await new Promise((r) => setImmediate(r));
  if (code !== 0) throw new Error(`${what} failed (${code}): ${child.stderr.join('\n')}`);
  const fellBack = child.stderr.find((l) => l.includes('running the sources through tsx'));
  if (fellBack) throw new Error(`${what} ran the sources, not the build (${fellBack}): npm run build, and run it again`);
}

/** Each line a child printed, as JSON (bench/build-probe.js prints one object a line). */
async function jsonLines<T>(child: Running, what: string): Promise<T[]> {
  await finished(child, what);
  return child.stdout.filter((l) => l.trim()).map((l) => JSON.parse(l) as T);
}

/** All a child printed, as one JSON value (`keel replay --json` spreads one object over many lines). */
async function jsonOutput<T>(child: Running, what: string): Promise<T> {
  await finished(child, what);
  return JSON.parse(child.stdout.join('\n')) as T;
}

/**
 * Memory, each in a fresh process over the build in dist/: \`keel replay\` as a
 * user runs it (bin/keel.js with its #! flags) on the 10 M and the 1 M tape,
 * the same without the flags (V8's default young generation), and the probe
 * of where the memory goes.
 */
async function memoryRuns(small: string, big: string, progress: (line: string) => void) {
  const keelReplay = async (flags: string[], tape: string, what: string) => {
    progress(`replay: ${what}`);
    const summary = await jsonOutput<ReplaySummary>(runNode(flags, 'bin/keel.js', ['replay', tape, '--json']), what);
    if (summary.rows !== (tape === big ? MEMORY_ROWS : THROUGHPUT_ROWS)) throw new Error(`${what} saw ${summary.rows} rows`);
    return summary;
  };
  const keel = await keelReplay(keelNodeFlags(), big, 'keel replay of 10 M rows, for its peak RSS');
  const v8Default = await keelReplay([], big, 'the same with V8\'s default young generation');
  const short = await keelReplay(keelNodeFlags(), small, 'keel replay of 1 M rows');
  progress('replay: where the memory goes (bench/build-probe.js)');
  const [stages] = await jsonLines<MemoryStages>(runNode(keelNodeFlags(), 'bench/build-probe.js', ['memory', big]), 'the memory probe');
  const [pool] = await jsonLines<WorkerStages>(runNode(keelNodeFlags(), 'bench/build-probe.js', ['workers']), 'the inference pool probe');
  return { keel, v8Default, short, stages, pool };
}

export async function replayBench({ runs, progress }: BenchOptions) {
  const dir = mkdtempSync(join(tmpdir(), 'keel-bench-tapes-'));
  try {
    const small = join(dir, '1m.keelrec');
    progress(`replay: writing a ${fmt(THROUGHPUT_ROWS)}-row tape of the simulated market`);
    const tape = await writeMarketTape(small, { ...TAPE, rows: THROUGHPUT_ROWS });
    const state = buildState('.');
    if (!state.current) throw new Error(`replay bench: it measures the build, and ${state.reason}: npm run build first`);
    progress(`replay: a warm-up and ${runs} runs of the 1 M-row tape (bench/build-probe.js)`);
    const speedRuns = await jsonLines<ReplaySummary>(runNode(keelNodeFlags(), 'bench/build-probe.js', ['speed', small, String(runs)]), 'the speed runs');
    const seconds: number[] = [];
    for (const [k, run] of speedRuns.entries()) {
      if (run.rows !== THROUGHPUT_ROWS) throw new Error(`the replay saw ${run.rows} of ${THROUGHPUT_ROWS} rows`);
      seconds.push(run.wallMs / 1000);
      progress(`replay: run ${k + 1}/${runs}: ${fmt(run.wallMs / 1000, 3)} s, ${fmt(run.rowsPerSecond)} rows/s, ${run.predictionFrames} frames, ${run.orders} orders`);
    }
    const last = speedRuns.at(-1);

    const big = join(dir, '10m.keelrec');
    progress(`replay: writing a ${fmt(MEMORY_ROWS)}-row tape`);
    const bigTape = await writeMarketTape(big, { ...TAPE, rows: MEMORY_ROWS, onProgress: (n) => n % 2_000_000 === 0 && progress(`replay: ${fmt(n)} rows written`) });
    const memory = await memoryRuns(small, big, progress);

    const time = median(seconds);
    const mb = (b: number) => `${fmt(b / 2 ** 20)} MB`;
    const { keel, v8Default, short, stages, pool } = memory;
    if (!last || !stages || !pool) throw new Error('replay bench: a child printed no result');
    const growth = (keel.peakRssBytes - short.peakRssBytes) / short.peakRssBytes;
    const rows = [
      { measure: 'inference pool', ...pool },
      { measure: 'replay 1M rows', seconds: time, rowsPerSecond: THROUGHPUT_ROWS / time, marketMs: tape.marketMs, frames: last.predictionFrames, orders: last.orders, fills: last.fills },
      { measure: 'memory 10M rows', peakRss: keel.peakRssBytes, peakRssV8Default: v8Default.peakRssBytes, peakRss1M: short.peakRssBytes, growth, wallMs: keel.wallMs, marketMs: bigTape.marketMs, stages },
    ];
    const table = [
      '| measure | keel | target | theirs | keel vs theirs |',
      '|---|---|---|---|---|',
      `| replay 1,000,000 rows (${(tape.marketMs / 1000).toFixed(0)} s of market, 4 instruments; ${last.predictionFrames} prediction frames, ${last.orders} orders) | ${fmt(time, 3)} s (${fmt(THROUGHPUT_ROWS / time)} rows/s) | <= 0.5 s | 1.84 s | ${fmt(1.84 / time, 1)}x faster |`,
      `| peak RSS of \`keel replay\`, 10,000,000 rows (${fmt(bigTape.marketMs / 60_000, 1)} min of market, ${fmt(keel.wallMs / 1000, 1)} s) | ${mb(keel.peakRssBytes)} | <= 150 MB | 220 MB | ${fmt(220 / (keel.peakRssBytes / 2 ** 20), 2)}x less |`,
      `| the same with V8's default young generation (no --max-semi-space-size) | ${mb(v8Default.peakRssBytes)} (keel's flags: ${fmt(v8Default.peakRssBytes / keel.peakRssBytes, 2)}x less) | | | |`,
      `| peak RSS growth from 1 M to 10 M rows | ${mb(short.peakRssBytes)} to ${mb(keel.peakRssBytes)}: ${fmt(100 * growth, 1)} % | <= 10 % | | |`,
      '',
      `Where the memory of the 10,000,000-row replay goes (\`node ${keelNodeFlags().join(' ')} bench/build-probe.js memory\`, the build in dist/):`,
      '',
      '| stage | RSS | added |',
      '|---|---|---|',
      `| Node alone | ${mb(stages.node)} | |`,
      `| keel's modules loaded (replay, config, every component kind and its dependencies) | ${mb(stages.modules)} | ${mb(stages.modules - stages.node)} |`,
      `| tree running, first rows through (onnxruntime and 3 sessions; ${stages.threadsRunning} threads, so no inference worker) | ${mb(stages.running)} | ${mb(stages.running - stages.modules)} |`,
      `| peak while replaying | ${mb(stages.peak)} | ${mb(stages.peak - stages.running)} |`,
      `| at the end: V8 heap ${mb(stages.heapTotal)} (new space ${mb(stages.newSpace)}, old space ${mb(stages.oldSpace)}; ${mb(stages.heapUsed)} live), external ${mb(stages.external)} | ${mb(stages.end)} | |`,
      '',
      'The inference pool alone (`bench/build-probe.js workers`: the shipped GBDT, LSTM and high-volatility GBDT):',
      '',
      '| stage | RSS | added |',
      '|---|---|---|',
      `| Node and the pool's module | ${mb(pool.start)} | |`,
      `| onnxruntime's native library loaded | ${mb(pool.library)} | ${mb(pool.library - pool.start)} |`,
      `| its first session (the environment) | ${mb(pool.firstSession)} | ${mb(pool.firstSession - pool.library)} |`,
      `| two more sessions | ${mb(pool.sessions)} | ${mb(pool.sessions - pool.firstSession)} |`,
      `| one worker with its three sessions | ${mb(pool.oneWorker)} | ${mb(pool.oneWorker - pool.sessions)} |`,
      `| a second worker | ${mb(pool.twoWorkers)} | ${mb(pool.twoWorkers - pool.oneWorker)} |`,
    ].join('\n');
    return { rows, table };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
