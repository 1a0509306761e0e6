// The replay bench's measuring child (`npm run bench -- replay`): run by plain
// node with keel's flags (bin/keel.js's #! line) over the build in dist/, as
// keel runs, so neither tsx nor the bench is in the figures.
//
//   node FLAGS bench/build-probe.js speed TAPE RUNS
//     replays TAPE once to warm up (JIT, onnxruntime's first runs), then RUNS
//     times; prints each run's summary as a JSON line
//   node FLAGS bench/build-probe.js memory TAPE
//     replays TAPE once and prints one JSON line of RSS stages: Node alone,
//     keel's modules loaded, the tree running (onnxruntime and its sessions
//     in), the peak, and V8's heap spaces at the end
//   node FLAGS bench/build-probe.js workers
//     one JSON line of RSS stages of the inference pool: onnxruntime loaded,
//     its first session, the shipped three models, then one and two workers
import { readFileSync, rmSync } from 'node:fs';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { getHeapSpaceStatistics } from 'node:v8';

const [mode, path, runs] = process.argv.slice(2);
if (mode !== 'workers' && (!path || (mode !== 'speed' && mode !== 'memory'))) throw new Error('usage: node bench/build-probe.js speed TAPE RUNS | memory TAPE | workers');
const threads = () => Number(/Threads:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]);
const rss = () => process.memoryUsage().rss;
if (mode === 'workers') {
  await workers();
  process.exit(0);
}

const node = rss();
const [{ replay }, { loadConfig }, { openRecording }, { createLogger }] = await Promise.all([
  import('../dist/replay/replay.js'),
  import('../dist/config/load.js'),
  import('../dist/replay/recording.js'),
  import('../dist/log.js'),
]);
const modules = rss();
const config = loadConfig('config/default.yaml');
const log = createLogger({ level: 'error', destination: new Writable({ write: (_c, _e, done) => done() }) });
const journalPath = `${path}.journal`;

async function replayOnce(onProgress) {
  rmSync(journalPath, { force: true });
  return replay({ recording: await openRecording(path), config, speed: Infinity, journalPath, log, onProgress, progressMs: 0 });
}

if (mode === 'speed') {
  await replayOnce();
  for (let run = 0; run < Number(runs); run++) process.stdout.write(`${JSON.stringify(await replayOnce())}\n`);
} else {
  let running = NaN;
  let threadsRunning = NaN;
  // The first progress: the tree is up and the first rows are through.
  const summary = await replayOnce(() => {
    if (!Number.isNaN(running)) return;
    running = rss();
    threadsRunning = threads();
  });
  const memory = process.memoryUsage();
  const spaces = Object.fromEntries(getHeapSpaceStatistics().map((s) => [s.space_name, s.space_size]));
  const stages = { rows: summary.rows, node, modules, running, threadsRunning, peak: summary.peakRssBytes, end: memory.rss };
  const heap = { heapTotal: memory.heapTotal, heapUsed: memory.heapUsed, external: memory.external, newSpace: spaces.new_space, oldSpace: spaces.old_space };
  process.stdout.write(`${JSON.stringify({ ...stages, ...heap })}\n`);
}
rmSync(journalPath, { force: true });

async function workers() {
  const { InferencePool } = await import('../dist/models/inference/pool.js');
  const models = ['gbdt-base-10s', 'lstm-base-10s', 'gbdt-highvol-10s'].map((name) => {
    const manifest = JSON.parse(readFileSync(`models/${name}/manifest.json`, 'utf8'));
    return { name, bytes: readFileSync(`models/${name}/${manifest.file}`) };
  });
  const settle = () => sleep(300);
  const start = rss();
  await import('onnxruntime-node');
  const library = rss();
  const pool = await InferencePool.start({ workers: 2, minWorkers: 0, timeoutMs: 10_000 });
  await pool.load(models[0].name, models[0].bytes);
  const firstSession = rss();
  for (const m of models.slice(1)) await pool.load(m.name, m.bytes);
  const sessions = rss();
  await pool.grow(1);
  await settle();
  const oneWorker = rss();
  await pool.grow(2);
  await settle();
  const twoWorkers = rss();
  await pool.close();
  process.stdout.write(`${JSON.stringify({ start, library, firstSession, sessions, oneWorker, twoWorkers })}\n`);
}
