/**
 * `npm run soak -- --minutes N`: keel trades on the simulator for N minutes
 * while faults hit it on a schedule, then the broker's executions are held
 * against keel's journal. The soak itself is test/soak/soak.ts; this is its
 * command line. Exit 0 when every check holds, 1 when one fails (each named
 * in the summary), 2 for a usage mistake.
 */
import { parseArgs } from 'node:util';
import { MIN_MINUTES } from '../test/soak/plan.js';
import { formatReport } from '../test/soak/report.js';
import { runSoak } from '../test/soak/soak.js';

const HELP = `Usage: npm run soak -- [--minutes N] [--seed N] [--keep DIR]

Runs a private redis-server, \`keel sim\` and \`keel run\` (ib mode: orders go to
the simulated broker) as separate processes on free ports, lets keel trade for
N minutes, and injects faults on a schedule: TWS dropping the connection, IB
lost and back with data lost (1100/1101), a market data farm outage, NaN
prices in a symbol's depth, a silent feed, late order news, duplicate
executions, Redis SIGKILLed and restarted, and keel itself SIGKILLed and
restarted on the same journal. Then it checks that:

  - every execution the simulated broker made for keel is in keel's journal
    exactly once, as the broker made it (no fill lost, doubled or invented);
  - every order was journaled before it was sent, and sent once; none is left
    working after the graceful stop;
  - every fault halted trading by the right source (the IB link, feature
    health, Redis) and trading resumed afterwards; the broker faults and
    the restarts did not halt it; nothing halted it without a fault;
  - each restart replayed exactly what the journal held and reconciled with
    the broker without a mismatch;
  - the daemon's resident memory stayed flat within each of its lives.

A progress line is printed every 10 s, a summary table at the end.

Options:
  --minutes N   how long keel trades, at least ${MIN_MINUTES} (default 10); faults
                come in rounds of nine, the daemon is killed about every 10 min
  --seed N      seed of the market and of the fault order (default 1)
  --keep DIR    keep the run's files (configs, journal, logs) in DIR; without
                it they go to a temp dir, removed after a clean pass and kept
                (and named) after a failure
  -h, --help    this text`;

function usage(message: string): never {
  console.error(`soak: ${message}\nRun 'npm run soak -- --help' for the options.`);
  process.exit(2);
}

let values: Record<string, string | boolean | undefined>;
try {
  ({ values } = parseArgs({
    options: { minutes: { type: 'string' }, seed: { type: 'string' }, keep: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    allowPositionals: false,
  }));
} catch (error) {
  usage((error as Error).message);
}
if (values.help) {
  console.log(HELP);
  process.exit(0);
}
const minutes = values.minutes === undefined ? 10 : Number(values.minutes);
if (typeof values.minutes === 'string' && (values.minutes.trim() === '' || !Number.isFinite(minutes) || minutes < MIN_MINUTES || minutes > 1440)) {
  usage(`--minutes must be a number of minutes from ${MIN_MINUTES} to 1440, got '${values.minutes}'`);
}
const seed = values.seed === undefined ? 1 : Number(values.seed);
if (typeof values.seed === 'string' && !(/^\d+$/.test(values.seed) && seed <= 4_294_967_295)) {
  usage(`--seed must be a whole number from 0 to 4294967295, got '${values.seed}'`);
}

const started = Date.now();
const report = await runSoak({
  minutes,
  seed,
  keep: values.keep as string | undefined,
  progress: (line) => console.log(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}`),
});
process.stdout.write(`\n${formatReport(report)}`);
process.exit(report.ok ? 0 : 1);
