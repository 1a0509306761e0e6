import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { runKeel } from '../support/process.js';

const dir = mkdtempSync(join(tmpdir(), 'keel-replay-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function keel(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const run = runKeel(args);
  // 'close': all of its output has been read.
  const [code] = (await once(run.child, 'close')) as [number | null];
  return { code, stdout: run.stdout.join('\n'), stderr: run.stderr.join('\n') };
}

test('keel replay of the LOBSTER sample shows progress and a summary; --json gives the same as data', { timeout: 60_000 }, async () => {
  const file = 'test/fixtures/lobster/AAPL_2012-06-21_message_10.csv';
  const text = await keel('replay', file);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stderr, /replaying LOBSTER AAPL_2012-06-21_message_10\.csv/);
  assert.match(text.stderr, /100% 1,434 rows/);
  assert.match(text.stdout, /rows +1,434 \(1,275 depth, 159 prints\) for 1 instrument/);
  assert.match(text.stdout, /trading +0 orders, 0 fills; net P&L \$0\.00/);
  assert.match(text.stdout, /health +0 conditions raised, 0 gate transitions/);
  const json = await keel('replay', file, '--json', '--speed', '1000x');
  assert.equal(json.code, 0, json.stderr);
  const summary = JSON.parse(json.stdout) as { rows: number; tradeRows: number; lastQuotes: { symbol: string }[] };
  assert.equal(summary.rows, 1_434);
  assert.equal(summary.tradeRows, 159);
  assert.equal(summary.lastQuotes[0]!.symbol, 'AAPL');
});

test('keel replay says what is wrong with its arguments and files', { timeout: 60_000 }, async () => {
  const help = await keel('replay', '--help');
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--speed S/);
  assert.match(help.stdout, /option_chain\s+\(e\.g\. config\/options\.yaml\) the chain is priced again/);
  const expectations: [string[], number, RegExp][] = [
    [['replay'], 2, /which file\? keel replay FILE/],
    [['replay', 'a', 'b'], 2, /unexpected argument 'b'/],
    [['replay', 'x.keelrec', '--speed', 'fast'], 2, /--speed must be max or a multiple of real time like 1x or 10x, got 'fast'/],
    [['replay', 'x.keelrec', '--log-level', 'loud'], 2, /--log-level must be one of/],
    [['replay', join(dir, 'missing.keelrec')], 1, /cannot open .*missing\.keelrec: ENOENT/],
  ];
  const notRecording = join(dir, 'notes.keelrec');
  writeFileSync(notRecording, 'not a recording at all');
  expectations.push([['replay', notRecording], 1, /notes\.keelrec at byte 0: a frame of \d+ bytes is not one keel writes/]);
  for (const [args, code, pattern] of expectations) {
    const r = await keel(...args);
    assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, pattern, args.join(' '));
  }
});
