/**
 * `npm run bench [-- NAME ...] [--runs N]`: runs the named benchmarks (all by
 * default), prints a Markdown table for each, and writes
 * bench/results/NAME.json and NAME.md. Figures for BENCHMARKS.md come from here.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import { bookBench } from './book.js';
import { CLUSTER_FLAGS, clusterBench } from './cluster.js';
import { driftBench } from './drift.js';
import { healthBench } from './health.js';
import { horizonsBench } from './horizons.js';
import { ingestBench } from './ingest.js';
import { inspectorBench } from './inspector.js';
import { ledgerBench } from './ledger.js';
import { modelsBench } from './models.js';
import { optionsBench } from './options.js';
import { pipelineBench } from './pipeline.js';
import { replayBench } from './replay.js';
import { startupBench } from './startup.js';
import { universeBench } from './universe.js';

const benches = {
  startup: startupBench,
  ingest: ingestBench,
  book: bookBench,
  health: healthBench,
  models: modelsBench,
  drift: driftBench,
  horizons: horizonsBench,
  ledger: ledgerBench,
  inspector: inspectorBench,
  pipeline: pipelineBench,
  replay: replayBench,
  universe: universeBench,
  options: optionsBench,
  cluster: clusterBench,
} as const;

const HELP = `Usage: npm run bench -- [NAME ...] [--runs N]

Benchmarks: ${Object.keys(benches).join(', ')} (default: all)
  --runs N   repetitions per variant, the median is reported (default 5)
${CLUSTER_FLAGS}
Writes bench/results/NAME.json and bench/results/NAME.md.
`;

const { values, positionals } = parseArgs({
  options: { runs: { type: 'string' }, instruments: { type: 'string' }, ticks: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  allowPositionals: true,
});
if (values.help) {
  process.stdout.write(HELP);
  process.exit(0);
}
const runs = Number(values.runs ?? 5);
const positive = (flag: string, value: string | undefined): number | undefined => {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) {
    process.stderr.write(`--${flag} must be a positive whole number, got '${value}'\n`);
    process.exit(2);
  }
  return n;
};
const clusterFlags = { instruments: positive('instruments', values.instruments), ticks: positive('ticks', values.ticks) };
if (!Number.isInteger(runs) || runs < 1) {
  process.stderr.write(`--runs must be a positive whole number, got '${values.runs}'\n`);
  process.exit(2);
}
const names = positionals.length > 0 ? positionals : Object.keys(benches);
const unknown = names.filter((n) => !(n in benches));
if (unknown.length > 0) {
  process.stderr.write(`unknown benchmark '${unknown.join("', '")}'\n${HELP}`);
  process.exit(2);
}

const machine = `${cpus().length} x ${cpus()[0]?.model.trim() ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
mkdirSync('bench/results', { recursive: true });
for (const name of names) {
  const options = { runs, progress: (line: string) => process.stderr.write(`${line}\n`), ...clusterFlags };
  const result = await benches[name as keyof typeof benches](options);
  // A bench whose variants run once says so instead of the median line.
  const method = 'method' in result ? result.method : `median of ${runs} runs`;
  const markdown = `## ${name}\n\nMachine: ${machine}; ${method}.\n\n${result.table}\n`;
  writeFileSync(`bench/results/${name}.json`, JSON.stringify({ name, machine, runs, date: new Date().toISOString(), rows: result.rows }, null, 2));
  writeFileSync(`bench/results/${name}.md`, markdown);
  process.stdout.write(`\n${markdown}`);
}
