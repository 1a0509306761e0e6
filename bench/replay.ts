/**
 * Replay: recorded rows through the daemon's own actors (books, features,
 * feature health, regime, the predictor's worker pool on the demo ONNX
 * models, risk gate, paper trader, journal) under the simulated clock, as
 * `keel replay` runs them.
 *
 * - throughput: a 1,000,000-row tape of the simulated market (4 instruments,
 *   about 77 s of market), median of runs in this process;
 * - memory: `keel replay` of a 10,000,000-row tape in a fresh process over
 *   the build in dist/, its peak RSS with keel's node flags and without,
 *   against the 1 M-row tape's; and where it goes (bench/replay-memory.js).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { loadConfig } from '../src/config/load.js';
import { createLogger } from '../src/log.js';
import { openRecording } from '../src/replay/recording.js';
import { replay, type ReplaySummary } from '../src/replay/replay.js';
import { writeMarketTape } from '../src/sim/tape.js';
import { buildState } from '../bin/build-state.js';
import { keelNodeFlags, runNode, type Running } from '../test/support/process.js';
import { fmt, median, type BenchOptions } from './stats.js';

const THROUGHPUT_ROWS = 1_000_000;
const MEMORY_ROWS = 10_000_000;
const TAPE = { seed: 3, instruments: 4, updatesPerSecond: 1_000 } as const;

/** What bench/replay-memory.js prints: RSS by stage, bytes. */
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

/** Runs a child to its end and parses its last stdout line as JSON. */
async function lastLine<T>(child: Running, what: string): Promise<T> {
  const code = await child.exited;
  await new Promise((r) => setImmediate(r));
  if (code !== 0) throw new Error(`${what} failed (${code}): ${child.stderr.join('\n')}`);
  const fellBack = child.stderr.find((l) => l.includes('running the sources through tsx'));
  if (fellBack) throw new Error(`${what} ran the sources, not the build (${fellBack}): npm run build, and run it again`);
  return JSON.parse(child.stdout.filter((l) => l.trim()).join('\n').replace(/^[^{]*/, '')) as T;
}

/**
 * Memory, each in a fresh process over the build in dist/: \`keel replay\` as a
 * user runs it (bin/keel.js with its #! flags) on the 10 M and the 1 M tape,
 * the same without the flags (V8's default young generation), and the probe
 * of where the memory goes.
 */
async function memoryRuns(small: string, big: string, progress: (line: string) => void) {
  const state = buildState('.');
  if (!state.current) throw new Error(`replay bench: the memory runs measure the build, and ${state.reason}: npm run build first`);
  const keelReplay = async (flags: string[], tape: string, what: string) => {
    progress(`replay: ${what}`);
    const summary = await lastLine<ReplaySummary>(runNode(flags, 'bin/keel.js', ['replay', tape, '--json']), what);
    if (summary.rows !== (tape === big ? MEMORY_ROWS : THROUGHPUT_ROWS)) throw new Error(`${what} saw ${summary.rows} rows`);
    return summary;
  };
  const keel = await keelReplay(keelNodeFlags(), big, 'keel replay of 10 M rows, for its peak RSS');
  const v8Default = await keelReplay([], big, 'the same with V8\'s default young generation');
  const short = await keelReplay(keelNodeFlags(), small, 'keel replay of 1 M rows');
  progress('replay: where the memory goes (bench/replay-memory.js)');
  const stages = await lastLine<MemoryStages>(runNode(keelNodeFlags(), 'bench/replay-memory.js', [big]), 'the memory probe');
  return { keel, v8Default, short, stages };
}

export async function replayOnce(path: string): Promise<ReplaySummary> {
  const dir = mkdtempSync(join(tmpdir(), 'keel-bench-replay-'));
  try {
    return await replay({
      recording: await openRecording(path),
      config: loadConfig('config/default.yaml'),
      speed: Infinity,
      journalPath: join(dir, 'journal.keel'),
      log: createLogger({ level: 'error', destination: new Writable({ write: (_c, _e, done) => done() }) }),
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function replayBench({ runs, progress }: BenchOptions) {
  const dir = mkdtempSync(join(tmpdir(), 'keel-bench-tapes-'));
  try {
    const small = join(dir, '1m.keelrec');
    progress(`replay: writing a ${fmt(THROUGHPUT_ROWS)}-row tape of the simulated market`);
    const tape = await writeMarketTape(small, { ...TAPE, rows: THROUGHPUT_ROWS });
    await replayOnce(small); // warm-up: JIT, worker start, ONNX sessions
    const seconds: number[] = [];
    let last: ReplaySummary | undefined;
    for (let run = 1; run <= runs; run++) {
      last = await replayOnce(small);
      if (last.rows !== THROUGHPUT_ROWS) throw new Error(`the replay saw ${last.rows} of ${THROUGHPUT_ROWS} rows`);
      seconds.push(last.wallMs / 1000);
      progress(`replay: run ${run}/${runs}: ${fmt(last.wallMs / 1000, 3)} s, ${fmt(last.rowsPerSecond)} rows/s, ${last.predictionFrames} frames, ${last.orders} orders`);
    }

    const big = join(dir, '10m.keelrec');
    progress(`replay: writing a ${fmt(MEMORY_ROWS)}-row tape`);
    const bigTape = await writeMarketTape(big, { ...TAPE, rows: MEMORY_ROWS, onProgress: (n) => n % 2_000_000 === 0 && progress(`replay: ${fmt(n)} rows written`) });
    const memory = await memoryRuns(small, big, progress);

    const time = median(seconds);
    const mb = (b: number) => `${fmt(b / 2 ** 20)} MB`;
    const { keel, v8Default, short, stages } = memory;
    const growth = (keel.peakRssBytes - short.peakRssBytes) / short.peakRssBytes;
    const rows = [
      { measure: 'replay 1M rows', seconds: time, rowsPerSecond: THROUGHPUT_ROWS / time, marketMs: tape.marketMs, frames: last!.predictionFrames, orders: last!.orders, fills: last!.fills },
      { measure: 'memory 10M rows', peakRss: keel.peakRssBytes, peakRssV8Default: v8Default.peakRssBytes, peakRss1M: short.peakRssBytes, growth, wallMs: keel.wallMs, marketMs: bigTape.marketMs, stages },
    ];
    const table = [
      '| measure | keel | target | theirs | keel vs theirs |',
      '|---|---|---|---|---|',
      `| replay 1,000,000 rows (${(tape.marketMs / 1000).toFixed(0)} s of market, 4 instruments; ${last!.predictionFrames} prediction frames, ${last!.orders} orders) | ${fmt(time, 3)} s (${fmt(THROUGHPUT_ROWS / time)} rows/s) | <= 0.5 s | 1.84 s | ${fmt(1.84 / time, 1)}x faster |`,
      `| peak RSS of \`keel replay\`, 10,000,000 rows (${fmt(bigTape.marketMs / 60_000, 1)} min of market, ${fmt(keel.wallMs / 1000, 1)} s) | ${mb(keel.peakRssBytes)} | <= 150 MB | 220 MB | ${fmt(220 / (keel.peakRssBytes / 2 ** 20), 2)}x less |`,
      `| the same with V8's default young generation (no --max-semi-space-size) | ${mb(v8Default.peakRssBytes)} (keel's flags: ${fmt(v8Default.peakRssBytes / keel.peakRssBytes, 2)}x less) | | | |`,
      `| peak RSS growth from 1 M to 10 M rows | ${mb(short.peakRssBytes)} to ${mb(keel.peakRssBytes)}: ${fmt(100 * growth, 1)} % | <= 10 % | | |`,
      '',
      `Where the memory of the 10,000,000-row replay goes (\`node ${keelNodeFlags().join(' ')} bench/replay-memory.js\`, the build in dist/):`,
      '',
      '| stage | RSS | added |',
      '|---|---|---|',
      `| Node alone | ${mb(stages.node)} | |`,
      `| keel's modules loaded (replay, config, every component kind and its dependencies) | ${mb(stages.modules)} | ${mb(stages.modules - stages.node)} |`,
      `| tree running, first rows through (onnxruntime and 3 sessions; ${stages.threadsRunning} threads, so no inference worker) | ${mb(stages.running)} | ${mb(stages.running - stages.modules)} |`,
      `| peak while replaying | ${mb(stages.peak)} | ${mb(stages.peak - stages.running)} |`,
      `| at the end: V8 heap ${mb(stages.heapTotal)} (new space ${mb(stages.newSpace)}, old space ${mb(stages.oldSpace)}; ${mb(stages.heapUsed)} live), external ${mb(stages.external)} | ${mb(stages.end)} | |`,
    ].join('\n');
    return { rows, table };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
