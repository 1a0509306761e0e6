/**
 * Replay: recorded rows through the daemon's own actors (books, features,
 * feature health, regime, the predictor's worker pool on the demo ONNX
 * models, risk gate, paper trader, journal) under the simulated clock, as
 * `keel replay` runs them.
 *
 * - throughput: a 1,000,000-row tape of the simulated market (4 instruments,
 *   about 77 s of market), median of runs in this process;
 * - memory: a 10,000,000-row tape replayed in a fresh process, its RSS read
 *   when 1 M rows are through and at the end, and its peak RSS.
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
import { runScript } from '../test/support/process.js';
import { fmt, median, type BenchOptions } from './stats.js';

const THROUGHPUT_ROWS = 1_000_000;
const MEMORY_ROWS = 10_000_000;
const TAPE = { seed: 3, instruments: 4, updatesPerSecond: 1_000 } as const;

/** What the memory child prints as its last line. */
export interface MemoryReport {
  readonly rows: number;
  readonly rssAt1M: number;
  readonly rssAtEnd: number;
  readonly peakRss: number;
  readonly wallMs: number;
}

export async function replayOnce(path: string, onProgress?: (rows: number) => void): Promise<ReplaySummary> {
  const dir = mkdtempSync(join(tmpdir(), 'keel-bench-replay-'));
  try {
    return await replay({
      recording: await openRecording(path),
      config: loadConfig('config/default.yaml'),
      speed: Infinity,
      journalPath: join(dir, 'journal.keel'),
      log: createLogger({ level: 'error', destination: new Writable({ write: (_c, _e, done) => done() }) }),
      onProgress: onProgress && ((p) => onProgress(p.rows)),
      progressMs: 50,
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
    progress('replay: replaying it in a fresh process for memory');
    const child = runScript('bench/replay-memory.ts', [big]);
    const code = await child.exited;
    await new Promise((r) => setImmediate(r));
    if (code !== 0) throw new Error(`the memory run failed (${code}): ${child.stderr.join('\n')}`);
    const memory = JSON.parse(child.stdout.at(-1)!) as MemoryReport;
    if (memory.rows !== MEMORY_ROWS) throw new Error(`the memory run saw ${memory.rows} of ${MEMORY_ROWS} rows`);

    const time = median(seconds);
    const growth = (memory.rssAtEnd - memory.rssAt1M) / memory.rssAt1M;
    const mb = (b: number) => `${fmt(b / 2 ** 20)} MB`;
    const rows = [
      { measure: 'replay 1M rows', seconds: time, rowsPerSecond: THROUGHPUT_ROWS / time, marketMs: tape.marketMs, frames: last!.predictionFrames, orders: last!.orders, fills: last!.fills },
      { measure: 'memory 10M rows', ...memory, growth, marketMs: bigTape.marketMs },
    ];
    const table = [
      '| measure | keel | target | theirs | keel vs theirs |',
      '|---|---|---|---|---|',
      `| replay 1,000,000 rows (${(tape.marketMs / 1000).toFixed(0)} s of market, 4 instruments; ${last!.predictionFrames} prediction frames, ${last!.orders} orders) | ${fmt(time, 3)} s (${fmt(THROUGHPUT_ROWS / time)} rows/s) | <= 0.5 s | 1.84 s | ${fmt(1.84 / time, 1)}x faster |`,
      `| peak RSS, replaying 10,000,000 rows (${fmt(bigTape.marketMs / 60_000, 1)} min of market, ${fmt(memory.wallMs / 1000, 1)} s) | ${mb(memory.peakRss)} | <= 150 MB | 220 MB | ${fmt(220 / (memory.peakRss / 2 ** 20), 2)}x less |`,
      `| RSS growth from 1 M to 10 M rows | ${mb(memory.rssAt1M)} to ${mb(memory.rssAtEnd)}: ${fmt(100 * growth, 1)} % | <= 10 % | | |`,
    ].join('\n');
    return { rows, table };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
