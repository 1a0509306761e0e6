/**
 * `keel models train`: keel's models (src/models/train.ts) trained on the
 * user's recordings, LOBSTER files, or the simulator, through the live
 * feature code, into a directory of model files and manifests with a
 * README of their held-out figures. A mistake in the flags or the files
 * exits 2 naming it; data too short to train anything exits 1 saying so.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { between, mergeDatasets, type Dataset } from '../models/dataset.js';
import { horizonLabel, parseHorizon } from '../models/horizon.js';
import { modelsReadme, trainModels, type TrainReport } from '../models/train.js';
import { recordingDataset, simulateDataset } from '../models/training-data.js';
import { isLobsterFile, openLobster } from '../replay/lobster-source.js';
import { openRecording, RecordingError } from '../replay/recording.js';
import { numberFlag, reportMistakes, stringFlag, UserError, type Values } from './flags.js';
import type { Command } from './main.js';

const DEFAULT_HORIZONS = '10s,5m,15m';
const SAMPLE_MS = 1_000;

export const modelsCommands: Record<string, Command> = {
  'models train': {
    summary: 'train keel\'s models on recordings, LOBSTER files or the simulator',
    usage: 'keel models train (--from FILE... | --simulator) --out DIR [options]',
    help: `Replays the data through keel's own books and features (as live, one row per
warm instrument per second), holds out the later part by time, and trains:

  regime-sjm          the regime model, with the rule its published regime
                      follows (confidence and frames to confirm a change)
  gbdt-base-<h>       gradient-boosted trees, forward return over horizon h
  gbdt-highvol-<h>    the same, on the most volatile quarter of rows
  lstm-base-<h>       an LSTM over the last 10 s, for horizons up to 1 min

Each goes to DIR/<name>/ with a manifest: the data (files and time range),
its horizon, held-out metrics against a naive baseline, and golden rows.
DIR/README.md lists them. The same data, flags and seed give the same files
byte for byte. Features need 60 s of history before a row counts, and the
longest horizon must fit in the data: a recording shorter than that trains
nothing and says so; one with less than about ${Math.round(5_000 / 3_600)} instrument-hours trains
models it warns are too weak to serve.

Point a horizon's base / highVol (the predictor's horizons) and the
regime's model at the new manifests (config/default.yaml), or try one in
shadow first (README: "Models from your own data").

Data (one of):
      --from FILE...      keel recordings (keel run with a recorder) and
                          LOBSTER files (either file of a pair); several
                          files are merged by time
      --simulator         the simulator's market, seeded
Options:
      --out DIR           where the models go (required)
      --horizons LIST     forecast horizons (default ${DEFAULT_HORIZONS}); each like
                          10s, 5m or 1h
      --held-out SHARE    the later share held out for the metrics (default 0.25)
      --seed N            seed of the training (default 1)
      --version V         the models' version (default: seed-N for the
                          simulator, the data's end time for recordings)
      --only NAMES        build only these models (comma-separated names,
                          e.g. gbdt-base-10s): what a retrainer does
      --last DURATION     train on the data's last DURATION only (like 90m)
Simulator options:
      --instruments N     SPY, QQQ, AAPL, MSFT, then synthetic ones (default 4)
      --hours H           simulated hours (default 6)
      --updates-per-second N  market events per second per instrument
                          (default 50, as config/default.yaml runs it)`,
    options: {
      from: { type: 'string', multiple: true },
      simulator: { type: 'boolean' },
      out: { type: 'string' },
      horizons: { type: 'string' },
      'held-out': { type: 'string' },
      seed: { type: 'string' },
      version: { type: 'string' },
      only: { type: 'string' },
      last: { type: 'string' },
      instruments: { type: 'string' },
      hours: { type: 'string' },
      'updates-per-second': { type: 'string' },
    },
    async run(values, positionals) {
      return reportMistakes(() => train(values, positionals), [RecordingError]);
    },
  },
};

/** What `train` read from its flags: the data, and how to train on it. */
interface Plan {
  readonly files: readonly string[];
  readonly simulator?: { seed: number; instruments: number; hours: number; updatesPerSecond: number };
  readonly out: string;
  readonly horizonsMs: readonly number[];
  readonly heldOutShare: number;
  readonly seed: number;
  readonly version?: string;
  readonly only?: readonly string[];
  readonly lastMs?: number;
}

function plan(values: Values, positionals: string[]): Plan {
  const from = (values.from as string[] | undefined) ?? [];
  const simulator = values.simulator === true;
  // `--from a b c`: the first file is the flag's value, the rest come as arguments.
  if (positionals.length > 0 && from.length === 0) throw new UserError(`unexpected argument '${positionals[0]}' (files go after --from)`);
  const files = [...from, ...positionals];
  if (files.length === 0 && !simulator) throw new UserError('what data? --from FILE... or --simulator');
  if (files.length > 0 && simulator) throw new UserError('--from and --simulator are two sources: pick one');
  const out = stringFlag(values, 'out');
  if (!out) throw new UserError('where to? --out DIR');
  const horizonsMs = (stringFlag(values, 'horizons') ?? DEFAULT_HORIZONS).split(',').map((text) => {
    const ms = parseHorizon(text);
    if (ms === undefined || ms % SAMPLE_MS !== 0) throw new UserError(`--horizons: '${text}' is not a horizon like 10s, 5m or 1h (whole seconds)`);
    return ms;
  });
  if (new Set(horizonsMs).size !== horizonsMs.length) throw new UserError(`--horizons names a horizon twice: ${stringFlag(values, 'horizons')}`);
  const whole = (name: string, fallback: number, min = 1) => numberFlag(values, name, `a whole number of at least ${min}`, (n) => Number.isInteger(n) && n >= min) ?? fallback;
  const seed = whole('seed', 1, 0);
  const heldOutShare = numberFlag(values, 'held-out', 'a share between 0 and 1, like 0.25', (n) => n > 0 && n < 1) ?? 0.25;
  const version = stringFlag(values, 'version');
  if (version !== undefined && !/^[A-Za-z0-9._-]+$/.test(version)) throw new UserError(`--version must be letters, digits, '.', '_' or '-', got '${version}'`);
  const only = stringFlag(values, 'only')?.split(',').map((n) => n.trim());
  if (only && only.some((n) => n === '')) throw new UserError(`--only names models, comma-separated: got '${stringFlag(values, 'only')}'`);
  const lastText = stringFlag(values, 'last');
  const lastMs = lastText === undefined ? undefined : parseHorizon(lastText);
  if (lastText !== undefined && lastMs === undefined) throw new UserError(`--last must be a duration like 90m or 2h, got '${lastText}'`);
  const simOnly = ['instruments', 'hours', 'updates-per-second'].filter((f) => values[f] !== undefined);
  if (!simulator && simOnly.length > 0) throw new UserError(`--${simOnly[0]} is for --simulator`);
  return {
    files,
    simulator: simulator
      ? {
          seed,
          instruments: whole('instruments', 4),
          hours: numberFlag(values, 'hours', 'a number of hours above 0', (n) => n > 0 && n <= 1_000) ?? 6,
          updatesPerSecond: whole('updates-per-second', 50),
        }
      : undefined,
    out,
    horizonsMs,
    heldOutShare,
    seed,
    version,
    only,
    lastMs,
  };
}

/** The data of the plan as one dataset, with progress on stderr. */
export async function loadData(p: Pick<Plan, 'files' | 'simulator'>, progress: (line: string) => void): Promise<Dataset> {
  const sampling = { sampleMs: SAMPLE_MS, horizonMs: SAMPLE_MS };
  if (p.simulator) {
    const { seed, instruments, hours, updatesPerSecond } = p.simulator;
    progress(`simulating ${instruments} instruments x ${hours} h at ${updatesPerSecond} updates/s (seed ${seed})`);
    let shown = -1;
    return simulateDataset({
      ...sampling,
      seed,
      instruments,
      seconds: Math.round(hours * 3600),
      updatesPerSecond,
      onProgress(done, total) {
        const pct = Math.floor((100 * done) / total / 10) * 10;
        if (pct !== shown) progress(`  simulated ${pct} %`);
        shown = pct;
      },
    });
  }
  const parts: Dataset[] = [];
  for (const file of p.files) {
    const recording = isLobsterFile(file) ? openLobster(file) : await openRecording(file);
    progress(`reading ${file} (${recording.header.source}, ${recording.header.instruments.length} instruments)`);
    let shown = -1;
    const d = await recordingDataset(recording, file, sampling, (done, total) => {
      const pct = Math.floor((100 * done) / total / 10) * 10;
      if (pct !== shown && pct % 20 === 0) progress(`  read ${pct} %`);
      shown = pct;
    });
    const source = d.sources[0]!;
    const minutes = (Date.parse(source.to) - Date.parse(source.from)) / 60_000;
    progress(`  ${d.rows} rows from ${minutes.toFixed(1)} min of market (${source.from} to ${source.to})`);
    parts.push(d);
  }
  return mergeDatasets(parts);
}

/** The rows of the data's last `ms`, its sources cut to match. */
function lastOf(all: Dataset, ms: number): Dataset {
  const end = all.rows > 0 ? all.time[all.rows - 1]! : 0;
  const cut = new Date(end - ms + 1).toISOString();
  return { ...between(all, end - ms + 1, end + 1, `its last ${ms / 60_000} min`), sources: all.sources.map((s) => ({ ...s, from: s.from < cut ? cut : s.from })) };
}

/** The version of models trained on `data`: its seed for simulated data, its end time for recordings. */
function defaultVersion(data: Dataset, seed: number): string {
  const end = data.sources.map((s) => s.to).sort().at(-1);
  return end ? `to-${end.replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}` : `seed-${seed}`;
}

async function train(values: Values, positionals: string[]): Promise<number> {
  const p = plan(values, positionals);
  const started = performance.now();
  const progress = (line: string) => process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(1)} s] ${line}\n`);
  const all = await loadData(p, progress);
  const data = p.lastMs === undefined ? all : lastOf(all, p.lastMs);
  if (p.lastMs !== undefined) progress(`the last ${p.lastMs / 60_000} min: ${data.rows} rows`);
  const longest = Math.max(...p.horizonsMs);
  if (data.rows === 0) {
    process.stderr.write(
      `keel: nothing to train on: no instrument was warm for a whole sample. keel's features need 60 s of history before a row counts; record longer (an hour or more to train, the longest horizon ${horizonLabel(longest)} on top)\n`,
    );
    return 1;
  }
  mkdirSync(p.out, { recursive: true });
  const command = `keel models train ${p.simulator ? '--simulator' : `--from ${p.files.join(' ')}`} --horizons ${p.horizonsMs.map(horizonLabel).join(',')} --seed ${p.seed}`;
  const report = trainModels(data, p.out, {
    seed: p.seed,
    horizonsMs: p.horizonsMs,
    heldOutShare: p.heldOutShare,
    version: p.version ?? defaultVersion(data, p.seed),
    script: command,
    ...(p.only ? { only: p.only } : {}),
    progress,
  });
  writeFileSync(join(p.out, 'README.md'), readme(data, report, command, p.heldOutShare));
  for (const w of report.warnings) process.stderr.write(`warning: ${w}\n`);
  if (report.built.length === 0) {
    process.stderr.write(`keel: nothing trained: ${report.skipped.map((s) => `${s.name}: ${s.reason}`).join('; ')}\n`);
    return 1;
  }
  progress(`done: ${report.built.map((b) => b.name).join(', ')} in ${p.out}${report.skipped.length > 0 ? `; not built: ${report.skipped.map((s) => s.name).join(', ')}` : ''}`);
  return 0;
}

function readme(data: Dataset, report: TrainReport, command: string, heldOutShare: number): string {
  return modelsReadme('keel models', `Built by \`${command}\` from ${data.description}; the later ${Math.round(heldOutShare * 100)} % by time is held out.`, report);
}
