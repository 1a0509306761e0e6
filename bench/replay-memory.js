// Where a replay's memory goes, for `npm run bench -- replay`: run by plain
// node (with keel's flags, from bin/keel.js's #! line) over the build in dist/,
// so neither tsx nor the bench is in the figures. Replays the tape named on the
// command line as `keel replay` does and prints one JSON line of RSS stages:
// Node alone, keel's modules loaded, the tree running (onnxruntime and its
// sessions in), the peak, and V8's heap spaces at the end.
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { getHeapSpaceStatistics } from 'node:v8';

const path = process.argv[2];
if (!path) throw new Error('usage: node bench/replay-memory.js TAPE');
const threads = () => Number(/Threads:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]);
const rss = () => process.memoryUsage().rss;

const node = rss();
const [{ replay }, { loadConfig }, { openRecording }, { createLogger }] = await Promise.all([
  import('../dist/replay/replay.js'),
  import('../dist/config/load.js'),
  import('../dist/replay/recording.js'),
  import('../dist/log.js'),
]);
const modules = rss();
let running = NaN;
let threadsRunning = NaN;
const summary = await replay({
  recording: await openRecording(path),
  config: loadConfig('config/default.yaml'),
  speed: Infinity,
  journalPath: `${path}.journal`,
  log: createLogger({ level: 'error', destination: new Writable({ write: (_c, _e, done) => done() }) }),
  // The first progress: the tree is up and the first rows are through.
  onProgress: () => {
    if (!Number.isNaN(running)) return;
    running = rss();
    threadsRunning = threads();
  },
  progressMs: 0,
});
const memory = process.memoryUsage();
const spaces = Object.fromEntries(getHeapSpaceStatistics().map((s) => [s.space_name, s.space_size]));
process.stdout.write(
  `${JSON.stringify({ rows: summary.rows, node, modules, running, threadsRunning, peak: summary.peakRssBytes, end: memory.rss, heapTotal: memory.heapTotal, heapUsed: memory.heapUsed, external: memory.external, newSpace: spaces.new_space, oldSpace: spaces.old_space })}\n`,
);
