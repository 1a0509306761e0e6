/**
 * `keel sjm fit` and `keel sjm predict`: the statistical jump model
 * (src/models/sjm.ts) on CSV files. A mistake in the flags, the files or the
 * data exits 2 with one line on stderr naming it, never a stack trace.
 */
import { writeFileSync } from 'node:fs';
import { CsvError, formatCsv, readCsv } from '../models/csv.js';
import { fitJumpModel, JumpModelError, OnlineJumpModel, predict, readJumpModel } from '../models/sjm.js';
import { numberFlag, reportMistakes, stringFlag, UserError, type Values } from './flags.js';
import type { Command } from './main.js';

export const sjmCommands: Record<string, Command> = {
  'sjm fit': {
    summary: 'fit a jump model (market regimes) to a CSV file',
    usage: 'keel sjm fit --input FILE.csv --k K --lambda L --out MODEL.json [...]',
    help: `Fits a statistical jump model: k regimes, each a centroid in standardised
feature space, and a cost lambda for every switch, so regimes persist. The
CSV has a header row of column names and one row per observation, oldest
first. States are numbered by ascending centroid of the --sort-by feature,
so with a volatility feature state 0 is the calm regime. Prints the rows,
objective, iterations and rows per state to stderr.

Options:
      --input FILE       training rows, CSV with a header row (required)
      --k K              number of states, at least 2 (required)
      --lambda L         cost of one switch, at least 0 (required); about 10
                         to 100 for standardised features, larger means
                         fewer switches
      --out FILE         where to write the model, JSON (required)
      --features A,B,C   columns to use, in this order (default: all)
      --sort-by NAME     feature whose centroid numbers the states
                         (default: the first feature)
      --n-init N         k-means++ starts; the best is kept (default 10)
      --seed N           seed of the starts (default 1): the same seed, data
                         and options give the same model
      --clip C           clip standardised values to +-C (default 3)
      --continuous       fit the continuous model: a probability vector per
                         row instead of one state
      --grid-step S      step of the continuous model's probability grid
                         (default 0.05; 1/S must be whole)`,
    options: {
      input: { type: 'string' },
      k: { type: 'string' },
      lambda: { type: 'string' },
      out: { type: 'string' },
      features: { type: 'string' },
      'sort-by': { type: 'string' },
      'n-init': { type: 'string' },
      seed: { type: 'string' },
      clip: { type: 'string' },
      continuous: { type: 'boolean' },
      'grid-step': { type: 'string' },
    },
    async run(values, positionals) {
      return reportMistakes(() => fit(values, positionals), [CsvError, JumpModelError]);
    },
  },
  'sjm predict': {
    summary: 'print the regime of each row of a CSV file',
    usage: 'keel sjm predict --model MODEL.json --input FILE.csv [--online]',
    help: `Applies a model written by 'keel sjm fit' to a CSV file holding the model's
feature columns (in any order; other columns are ignored) and prints CSV to
stdout, one row per input row: the state, then p0, p1, ... (the state
probabilities) for the online or the continuous model.

Offline (the default) decodes the best path given the whole file, so a
row's state can depend on later rows. --online decides each row from the
rows up to it, as on a live feed. Online probabilities of the discrete
model are softmax(-V) of its path costs, a heuristic; the continuous
model's are its own output.

Options:
      --model FILE   model from 'keel sjm fit' (required)
      --input FILE   rows, CSV with a header row (required)
      --online       decide each row from the rows up to it (no look-ahead)`,
    options: {
      model: { type: 'string' },
      input: { type: 'string' },
      online: { type: 'boolean' },
    },
    async run(values, positionals) {
      return reportMistakes(() => predictRows(values, positionals), [CsvError, JumpModelError]);
    },
  },
};

function fit(values: Values, positionals: string[]): number {
  if (positionals.length > 0) throw new UserError(`unexpected argument '${positionals[0]}'`);
  const input = stringFlag(values, 'input') ?? missing('input');
  const out = stringFlag(values, 'out') ?? missing('out');
  const k = numberFlag(values, 'k', 'a whole number of at least 2', (n) => Number.isInteger(n) && n >= 2) ?? missing('k');
  const lambda = numberFlag(values, 'lambda', 'a number of at least 0', (n) => Number.isFinite(n) && n >= 0) ?? missing('lambda');
  const options = {
    k,
    lambda,
    nInit: numberFlag(values, 'n-init', 'a whole number of at least 1', (n) => Number.isInteger(n) && n >= 1),
    seed: numberFlag(values, 'seed', 'a whole number from 0 to 4294967295', (n) => Number.isInteger(n) && n >= 0 && n <= 4_294_967_295),
    clip: numberFlag(values, 'clip', 'a number above 0', (n) => Number.isFinite(n) && n > 0),
    continuous: values.continuous === true,
    gridStep: numberFlag(values, 'grid-step', 'a number above 0 and at most 1', (n) => n > 0 && n <= 1),
    sortBy: stringFlag(values, 'sort-by'),
  };

  const table = readCsv(input);
  const features = stringFlag(values, 'features')?.split(',').map((name) => name.trim()) ?? [...table.header];
  const data = table.columns(features);
  let result;
  try {
    result = fitJumpModel(data, table.rows, features, options);
  } catch (err) {
    if (err instanceof JumpModelError) throw new UserError(`${input}: ${err.message}`);
    throw err;
  }
  try {
    writeFileSync(out, `${JSON.stringify(result.model, null, 2)}\n`);
  } catch (err) {
    throw new UserError(`${out}: cannot write the model: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }

  const { states, objective, iterations } = result;
  const counts = new Array<number>(k).fill(0);
  let switches = 0;
  states.forEach((s, t) => {
    counts[s] = counts[s]! + 1;
    if (t > 0 && s !== states[t - 1]) switches++;
  });
  process.stderr.write(
    `keel sjm fit: ${table.rows} rows, features ${features.join(', ')}, k = ${k}, lambda = ${lambda}${options.continuous ? ', continuous' : ''}\n` +
      `  objective ${objective.toPrecision(8)} after ${iterations} iterations (best of ${options.nInit ?? 10} starts)\n` +
      `  rows per state: ${counts.map((n, s) => `${s}: ${n}`).join(', ')}; ${switches} switches\n` +
      `  ${result.model.stateOrder}\n` +
      `  wrote ${out}\n`,
  );
  return 0;
}

function predictRows(values: Values, positionals: string[]): number {
  if (positionals.length > 0) throw new UserError(`unexpected argument '${positionals[0]}'`);
  const model = readJumpModel(stringFlag(values, 'model') ?? missing('model'));
  const table = readCsv(stringFlag(values, 'input') ?? missing('input'));
  const data = table.columns(model.features);
  const { k } = model;
  const probabilityColumns = Array.from({ length: k }, (_, j) => `p${j}`);
  const lines: (readonly number[])[] = [];

  if (values.online === true) {
    const online = new OnlineJumpModel(model, 1);
    const F = model.features.length;
    for (let t = 0; t < table.rows; t++) {
      const state = online.update(0, data, t * F);
      lines.push([state, ...online.probabilities(0)]);
    }
    process.stdout.write(formatCsv(['state', ...probabilityColumns], lines));
    return 0;
  }

  const { states, probabilities } = predict(model, data, table.rows);
  for (let t = 0; t < table.rows; t++) {
    lines.push(model.continuous ? [states[t]!, ...probabilities.subarray(t * k, (t + 1) * k)] : [states[t]!]);
  }
  process.stdout.write(formatCsv(model.continuous ? ['state', ...probabilityColumns] : ['state'], lines));
  return 0;
}

function missing(name: string): never {
  throw new UserError(`--${name} is required`);
}
