/**
 * The memory half of `npm run bench -- replay`, in a process of its own so
 * nothing else is in its RSS: replays the tape named on the command line and
 * prints a MemoryReport as its last line.
 */
import { replayOnce, type MemoryReport } from './replay.js';

const path = process.argv[2];
if (!path) throw new Error('usage: bench/replay-memory.ts TAPE');
let rssAt1M = NaN;
const summary = await replayOnce(path, (rows) => {
  if (Number.isNaN(rssAt1M) && rows >= 1_000_000) rssAt1M = process.memoryUsage().rss;
});
const report: MemoryReport = {
  rows: summary.rows,
  rssAt1M,
  rssAtEnd: process.memoryUsage().rss,
  // maxRSS is in KiB.
  peakRss: process.resourceUsage().maxRSS * 1024,
  wallMs: summary.wallMs,
};
process.stdout.write(`${JSON.stringify(report)}\n`);
