/**
 * Output piped to another program arrives whole. Writes to a pipe are
 * asynchronous in Node: a command that exits while the reader has not taken
 * everything yet loses the rest (`keel sjm predict ... | wc -l` printed 1,829
 * of 100,001 lines). Each run here is a real shell pipeline.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fitJumpModel } from '../../src/models/sjm.js';
import { Random } from '../../src/random.js';

const dir = mkdtempSync(join(tmpdir(), 'keel-pipes-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const ROWS = 100_000;
const RUNS = 8;
/** Pipelines at a time: the runs are independent, and each is mostly a process starting. */
const PARALLEL = 4;

/** A CSV of ROWS rows of two features in calm and volatile blocks, and a two-state model fitted on its first rows. */
function writeInputs(): { csv: string; model: string } {
  const random = new Random(7);
  const lines = ['abs_return,vol'];
  const data = new Float64Array(2_000 * 2);
  for (let t = 0; t < ROWS; t++) {
    const scale = Math.floor(t / 500) % 2 === 0 ? 0.01 : 0.03;
    const absReturn = Math.abs(scale * random.normal());
    const vol = scale * (1 + 0.2 * random.normal());
    if (t < 2_000) data.set([absReturn, vol], t * 2);
    lines.push(`${absReturn},${vol}`);
  }
  const csv = join(dir, 'rows.csv');
  writeFileSync(csv, `${lines.join('\n')}\n`);
  const model = join(dir, 'model.json');
  writeFileSync(model, JSON.stringify(fitJumpModel(data, 2_000, ['abs_return', 'vol'], { k: 2, lambda: 20 }).model));
  return { csv, model };
}

/** Runs `sh -c script`; resolves with its stdout, stderr and exit code once all of its output is read. */
async function shell(script: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn('sh', ['-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout, stderr };
}

/** The keel command as the shell runs it, its exit status reported on stderr (sh has no pipefail). */
const keel = (args: string) => `{ "${process.execPath}" bin/keel.js ${args}; echo "keel exited $?" >&2; }`;

test(`keel sjm predict --online | a line counter: all ${ROWS + 1} lines, ${RUNS} runs out of ${RUNS}`, { timeout: 60_000 }, async () => {
  const { csv, model } = writeInputs();
  const counter = `"${process.execPath}" -e "let n = 0; process.stdin.on('data', (b) => { for (const c of b) if (c === 10) n++; }).on('end', () => console.log(n))"`;
  const counts: number[] = [];
  for (let done = 0; done < RUNS; done += PARALLEL) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(PARALLEL, RUNS - done) }, () => shell(`${keel(`sjm predict --model ${model} --input ${csv} --online`)} | ${counter}`)),
    );
    for (const run of batch) {
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stderr, /keel exited 0/);
      counts.push(Number(run.stdout.trim()));
    }
  }
  assert.deepEqual(counts, new Array<number>(RUNS).fill(ROWS + 1), 'every run printed the header and one line per row');
});

test('keel replay --json | a JSON reader: the summary parses', { timeout: 60_000 }, async () => {
  const reader = `"${process.execPath}" -e "let s = ''; process.stdin.setEncoding('utf8').on('data', (c) => (s += c)).on('end', () => { const j = JSON.parse(s); console.log(JSON.stringify({ rows: j.rows, source: j.source })); })"`;
  const run = await shell(`${keel('replay --json test/fixtures/lobster/AAPL_2012-06-21_message_10.csv')} | ${reader}`);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, /keel exited 0/);
  assert.deepEqual(JSON.parse(run.stdout), { rows: 1_434, source: 'LOBSTER AAPL_2012-06-21_message_10.csv' });
});
