import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { readCsv } from '../../src/models/csv.js';
import { predictStates, readJumpModel } from '../../src/models/sjm.js';
import { Random } from '../../src/random.js';
import { runKeel } from '../support/process.js';

const ROWS = 600;
const dir = mkdtempSync(join(tmpdir(), 'keel-sjm-'));
const csv = join(dir, 'days.csv');

/** Calm and volatile blocks of 100 rows; a date column the model must ignore. */
function writeDays(): Int32Array {
  const random = new Random(11);
  const regime = new Int32Array(ROWS);
  const lines = ['date,abs_return,vol'];
  for (let t = 0; t < ROWS; t++) {
    regime[t] = Math.floor(t / 100) % 2;
    const scale = regime[t] === 0 ? 0.01 : 0.03;
    lines.push(`2024-01-${t},${Math.abs(scale * random.normal())},${scale * (1 + 0.2 * random.normal())}`);
  }
  writeFileSync(csv, `${lines.join('\n')}\n`);
  return regime;
}
const regime = writeDays();

function noStackTrace(stderr: string[]): void {
  assert.ok(!stderr.join('\n').includes('    at '), 'no stack trace for a user mistake');
}

test('keel sjm fit writes a model; predict prints one state per row, offline and online', async () => {
  const model = join(dir, 'calm.json');
  const fit = runKeel(['sjm', 'fit', '--input', csv, '--features', 'vol,abs_return', '--k', '2', '--lambda', '20', '--out', model]);
  assert.equal(await fit.exited, 0, fit.stderr.join('\n'));
  const summary = fit.stderr.join('\n');
  assert.match(summary, /600 rows, features vol, abs_return, k = 2, lambda = 20/);
  assert.match(summary, /objective \S+ after \d+ iterations \(best of 10 starts\)/);
  assert.match(summary, /rows per state: 0: \d+, 1: \d+/);

  const saved = readJumpModel(model);
  assert.deepEqual(saved.features, ['vol', 'abs_return']);
  const offline = runKeel(['sjm', 'predict', '--model', model, '--input', csv]);
  assert.equal(await offline.exited, 0, offline.stderr.join('\n'));
  assert.equal(offline.stdout[0], 'state');
  const states = Int32Array.from(offline.stdout.slice(1), Number);
  assert.equal(states.length, ROWS);
  const table = readCsv(csv);
  assert.deepEqual(states, predictStates(saved, table.columns(saved.features), ROWS));
  assert.ok(states.filter((s, t) => s === regime[t]).length >= 0.95 * ROWS, 'calm rows are state 0');

  const online = runKeel(['sjm', 'predict', '--model', model, '--input', csv, '--online']);
  assert.equal(await online.exited, 0, online.stderr.join('\n'));
  assert.equal(online.stdout[0], 'state,p0,p1');
  assert.equal(online.stdout.length, ROWS + 1);
  for (const line of online.stdout.slice(1)) {
    const [state, p0, p1] = line.split(',').map(Number);
    assert.ok(state === 0 || state === 1, line);
    assert.ok(Math.abs(p0! + p1! - 1) < 1e-12, line);
  }
});

test('keel sjm fit --continuous; predict prints the probabilities', async () => {
  const model = join(dir, 'continuous.json');
  const fit = runKeel(['sjm', 'fit', '--input', csv, '--features', 'vol', '--k', '2', '--lambda', '30', '--continuous', '--grid-step', '0.1', '--out', model]);
  assert.equal(await fit.exited, 0, fit.stderr.join('\n'));
  const predicted = runKeel(['sjm', 'predict', '--model', model, '--input', csv]);
  assert.equal(await predicted.exited, 0, predicted.stderr.join('\n'));
  assert.equal(predicted.stdout[0], 'state,p0,p1');
  assert.equal(predicted.stdout.length, ROWS + 1);
  for (const line of predicted.stdout.slice(1)) {
    const [state, p0, p1] = line.split(',').map(Number);
    assert.equal(state, p1! > p0! ? 1 : 0, line);
    assert.ok(Math.abs(p0! + p1! - 1) < 1e-12, line);
  }
});

test('keel sjm mistakes exit 2 with one line naming the problem', async () => {
  const nan = join(dir, 'nan.csv');
  writeFileSync(nan, 'abs_return,vol\n0.01,0.01\n0.02,abc\n');
  const short = join(dir, 'short.csv');
  writeFileSync(short, 'abs_return,vol\n0.01,0.01\n0.02,0.03\n0.01,0.02\n');
  const out = join(dir, 'never.json');
  const cases: [string[], RegExp][] = [
    [['--input', csv, '--features', 'vol,spread', '--k', '2', '--lambda', '20', '--out', out], /^keel: .*days\.csv: no column 'spread'; the file has date, abs_return, vol$/],
    [['--input', nan, '--k', '2', '--lambda', '20', '--out', out], /^keel: .*nan\.csv: row 2 \(line 3\), column 'vol': 'abc' is not a finite number$/],
    [['--input', short, '--k', '2', '--lambda', '20', '--out', out], /^keel: .*short\.csv: fitting k = 2 states needs at least 4 rows \(2 per state\), got 3$/],
    [['--input', csv, '--features', 'vol', '--k', '1', '--lambda', '20', '--out', out], /^keel: --k must be a whole number of at least 2, got '1'$/],
    [['--input', join(dir, 'missing.csv'), '--k', '2', '--lambda', '20', '--out', out], /^keel: .*missing\.csv: cannot read the file: ENOENT$/],
  ];
  const fits = cases.map(([args]) => runKeel(['sjm', 'fit', ...args]));
  const predict = runKeel(['sjm', 'predict', '--model', join(dir, 'missing.json'), '--input', csv]);
  for (const [i, run] of fits.entries()) {
    assert.equal(await run.exited, 2, `case ${i}: ${run.stderr.join('\n')}`);
    assert.equal(run.stderr.length, 1, `case ${i}: one line: ${run.stderr.join('\n')}`);
    assert.match(run.stderr[0]!, cases[i]![1]);
    noStackTrace(run.stderr);
  }
  assert.equal(await predict.exited, 2);
  assert.match(predict.stderr.join('\n'), /^keel: .*missing\.json: cannot read the file: ENOENT$/);
});

test('keel sjm fit --help and keel sjm predict --help', async () => {
  for (const sub of ['fit', 'predict']) {
    const help = runKeel(['sjm', sub, '--help']);
    assert.equal(await help.exited, 0);
    assert.match(help.stdout.join('\n'), new RegExp(`^Usage: keel sjm ${sub} `));
    assert.ok(help.stdout.every((line) => line.length <= 80), 'help fits 80 columns');
  }
});
