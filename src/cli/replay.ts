/**
 * `keel replay FILE`: a recording (or a LOBSTER sample) through the daemon's
 * own actors under a simulated clock, with a progress bar on stderr and a
 * summary at the end. The replay trades into a journal of its own, never
 * the daemon's.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from './main.js';
import { loadConfig } from '../config/load.js';
import { createLogger, type LogLevel } from '../log.js';
import { isLobsterFile, openLobster } from '../replay/lobster-source.js';
import { openRecording, RecordingError, type Recording } from '../replay/recording.js';
import { replay, type ReplayProgress, type ReplaySummary } from '../replay/replay.js';

const DEFAULT_CONFIG = 'config/default.yaml';
const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

export const replayCommand: Command = {
  summary: 'replay a recording through the actors, as fast as they go',
  usage: 'keel replay FILE [--speed max|1x|10x] [--config FILE]',
  help: `Feeds a recording through the same actors as the daemon (books, features,
feature health, regime, predictor, risk gate, the paper trader in book mode)
under a simulated clock: timers fire at the recorded instants, so the
decisions are the same however fast the machine is. Shows a progress bar,
then a summary: rows, rows/s, prediction frames, orders and fills, P&L,
health conditions, gate transitions and the peak memory (RSS).

A recording made while an option_chain ran also holds the chain's listing
and what it was priced from (option quotes, sizes, IB's computations, the
underlying's quotes, each pricing): with a config that has an option_chain
(e.g. config/options.yaml) the chain is priced again from them, at the
recorded instants, and the summary counts the option rows played.

FILE is a recording written by the recorder component (.keelrec; add
  recorder: { kind: recorder, dependsOn: [features] }
to a daemon config), or a LOBSTER sample: either file of a
SYMBOL_DATE_..._message_N.csv / _orderbook_N.csv pair.

Options:
      --speed S        max (default): as fast as the actors go; 1x: real
                       time; 10x: ten times real time (any Nx)
  -c, --config FILE    the daemon config whose actors are used (default
                       ${DEFAULT_CONFIG}); its IB side, Redis, recorder and
                       inspector are left out
      --journal FILE   keep the replay's journal here (default: a temporary
                       file, deleted at the end); written without fsync, as
                       replaying again makes it again
      --log-level L    the actors' log level on stderr (default warn)
      --json           print the summary as JSON`,
  options: {
    speed: { type: 'string' },
    config: { type: 'string', short: 'c' },
    journal: { type: 'string' },
    'log-level': { type: 'string' },
    json: { type: 'boolean' },
  },
  async run(values, positionals) {
    if (positionals.length !== 1) return usage(positionals.length === 0 ? 'which file? keel replay FILE' : `unexpected argument '${positionals[1]}'`);
    const file = positionals[0]!;
    const speed = parseSpeed((values.speed as string | undefined) ?? 'max');
    if (speed === undefined) return usage(`--speed must be max or a multiple of real time like 1x or 10x, got '${String(values.speed)}'`);
    const level = (values['log-level'] as string | undefined) ?? 'warn';
    if (!LEVELS.includes(level)) return usage(`--log-level must be one of ${LEVELS.join(', ')}, got '${level}'`);
    const config = loadConfig((values.config as string | undefined) ?? DEFAULT_CONFIG);

    let recording: Recording;
    try {
      recording = isLobsterFile(file) ? openLobster(file) : await openRecording(file);
    } catch (err) {
      if (!(err instanceof RecordingError)) throw err;
      process.stderr.write(`keel: ${err.message}\n`);
      return 1;
    }
    const scratch = values.journal === undefined ? mkdtempSync(join(tmpdir(), 'keel-replay-')) : undefined;
    const journalPath = (values.journal as string | undefined) ?? join(scratch!, 'journal.keel');
    const log = createLogger({ level: level as LogLevel, destination: process.stderr });
    const bar = new ProgressBar(recording.header.source);
    const stop = new AbortController();
    const onSignal = () => stop.abort();
    process.once('SIGINT', onSignal);
    try {
      const summary = await replay({ recording, config, speed, journalPath, log, onProgress: (p) => bar.show(p), stop: stop.signal });
      bar.done();
      if (stop.signal.aborted) process.stderr.write('keel: replay interrupted; the summary covers what was played\n');
      process.stdout.write(values.json ? `${JSON.stringify(summary, null, 2)}\n` : describe(summary));
      return 0;
    } catch (err) {
      bar.done();
      if (!(err instanceof RecordingError)) throw err;
      process.stderr.write(`keel: ${err.message}\n`);
      return 1;
    } finally {
      process.off('SIGINT', onSignal);
      if (scratch) rmSync(scratch, { recursive: true, force: true });
    }
  },
};

function parseSpeed(text: string): number | undefined {
  if (text === 'max') return Infinity;
  const m = /^(\d+(?:\.\d+)?)x$/.exec(text);
  const n = m ? Number(m[1]) : NaN;
  return n > 0 ? n : undefined;
}

/** One line redrawn in place on a terminal; a line per tenth otherwise (logs, CI). */
class ProgressBar {
  private readonly tty = process.stderr.isTTY === true;
  private shownTenth = -1;
  private drawn = false;

  constructor(private readonly source: string) {}

  show(p: ReplayProgress): void {
    const share = p.total > 0 ? Math.min(1, p.done / p.total) : 0;
    const rate = p.rows / Math.max(p.wallMs / 1000, 1e-3);
    const eta = share > 0 ? ((1 - share) * p.wallMs) / share / 1000 : NaN;
    const text = `${(100 * share).toFixed(0).padStart(3)}% ${count(p.rows)} rows, ${count(rate)} rows/s, ${duration(p.simulatedMs)} of market${Number.isFinite(eta) ? `, ${eta.toFixed(1)} s left` : ''}`;
    if (this.tty) {
      const width = 24;
      const filled = Math.round(share * width);
      process.stderr.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${text}\x1b[K`);
      this.drawn = true;
      return;
    }
    const tenth = Math.floor(share * 10);
    if (tenth === this.shownTenth) return;
    if (this.shownTenth < 0) process.stderr.write(`replaying ${this.source}\n`);
    this.shownTenth = tenth;
    process.stderr.write(`${text}\n`);
  }

  done(): void {
    if (this.drawn) process.stderr.write('\n');
    this.drawn = false;
  }
}

function describe(s: ReplaySummary): string {
  const transitions = s.gateTransitions.map((t) => `  ${t.to}: ${t.reason}`);
  const lines = [
    `replayed ${s.source}`,
    `  rows            ${count(s.rows)} (${count(s.depthRows)} depth, ${count(s.tradeRows)} prints${s.optionRows > 0 ? `, ${count(s.optionRows)} option` : ''}) for ${s.instruments} instrument${s.instruments === 1 ? '' : 's'}`,
    ...(s.optionRows > 0 || s.optionListings > 0 ? [`  options         ${count(s.optionPricings)} chain pricings from ${s.optionListings} listing${s.optionListings === 1 ? '' : 's'}`] : []),
    `  speed           ${count(s.rowsPerSecond)} rows/s (${(s.wallMs / 1000).toFixed(2)} s for ${duration(s.simulatedMs)} of market)`,
    `  memory          ${count(s.peakRssBytes / 2 ** 20)} MB peak RSS`,
    `  predictions     ${count(s.predictionFrames)} frames`,
    `  trading         ${s.orders} orders, ${s.fills} fills; net P&L ${money(s.netPnl)} (realized ${money(s.realizedPnl)}, fees ${money(s.fees)})`,
    `  health          ${s.healthConditions} condition${s.healthConditions === 1 ? '' : 's'} raised, ${s.gateTransitions.length} gate transition${s.gateTransitions.length === 1 ? '' : 's'}`,
    ...transitions,
  ];
  if (s.truncatedBytes > 0) lines.push(`  note            the file ends in ${s.truncatedBytes} bytes that are not a whole chunk (recording cut short): ignored`);
  return `${lines.join('\n')}\n`;
}

const count = (n: number) => Math.round(n).toLocaleString('en-US');
const money = (n: number) => `${n < 0 ? '-' : ''}$${Math.abs(n).toFixed(2)}`;

function duration(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${(ms / 60_000).toFixed(1)} min`;
}

function usage(message: string): number {
  process.stderr.write(`keel: ${message}\nUsage: ${replayCommand.usage}\nRun 'keel replay --help' for more.\n`);
  return 2;
}
