/**
 * `keel journal check|repair|show` on real journal files, damaged by the
 * test the ways a journal gets damaged: a torn tail, a flipped byte in the
 * middle, a duplicated tail, a fill with a NaN price written through the
 * real FileJournal. The repaired journal must open and replay, the original
 * must stay as it was, and the daemon's refusal to start must name both
 * commands.
 */
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { FileJournal } from '../../src/journal/file-journal.js';
import type { Journal, JournalEntry, LedgerRecord } from '../../src/journal/records.js';
import { Ledger } from '../../src/trading/ledger.js';
import { writeInspectedConfig } from '../support/inspector.js';
import { runKeel } from '../support/process.js';

const HEADER_BYTES = 12;
const dir = mkdtempSync(join(tmpdir(), 'keel-journal-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const newPath = () => join(dir, `j${++files}.keel`);

const at = 1_700_000_000_000;
/** Orders, fills, a commission and a gate transition: SPY +100 and QQQ -50 at the end. */
const RECORDS: LedgerRecord[] = [
  { type: 'order', at, ref: 'k-1', symbol: 'SPY', quantity: 100, orderType: 'LMT', limitPrice: 501.25, reason: 'imbalance long' },
  { type: 'order.status', at, ref: 'k-1', state: 'working', permId: 42 },
  { type: 'fill', at, ref: 'k-1', execId: 'e-1', symbol: 'SPY', quantity: 100, price: 501.2, commission: 0 },
  { type: 'commission', at, execId: 'e-1', commission: 1 },
  { type: 'order', at, ref: 'k-2', symbol: 'QQQ', quantity: -50, orderType: 'MKT', limitPrice: NaN, reason: 'flatten' },
  { type: 'fill', at, ref: 'k-2', execId: 'e-2', symbol: 'QQQ', quantity: -50, price: 440, commission: 0.5 },
  { type: 'gate', at, from: 'ACTIVE', to: 'HALTED', reason: 'feature_health: ofi NaN', by: 'feature_health' },
];

async function writeJournal(path: string, records: readonly LedgerRecord[]): Promise<void> {
  const { journal } = await FileJournal.open(path);
  for (const record of records) await journal.append(record);
  await journal.close();
}

/** Byte offset of every frame in an undamaged journal file. */
function frameOffsets(path: string): number[] {
  const data = readFileSync(path);
  const offsets: number[] = [];
  for (let offset = HEADER_BYTES; offset < data.length; offset += 8 + data.readUInt32LE(offset)) offsets.push(offset);
  return offsets;
}

async function keel(args: string[]) {
  const run = runKeel(args);
  const code = await run.exited;
  // 'exit' can come before the last output is read: wait for the streams to close.
  await new Promise((resolve) => (run.child.stdout!.closed ? resolve(undefined) : run.child.stdout!.once('close', resolve)));
  return { code, stdout: run.stdout.join('\n'), stderr: run.stderr.join('\n'), lines: run.stdout };
}

/** Replays entries into a ledger, as the journal component does. */
function replay(entries: readonly JournalEntry[]): Ledger {
  const readOnly: Journal = { durableSeq: 0, append: () => Promise.reject(new Error('read only')), entriesSince: async () => [], close: async () => {} };
  const ledger = new Ledger(readOnly, 1_000_000);
  ledger.replay(entries);
  return ledger;
}

/** Opens a repaired journal the way the daemon does: it must open (no refusal) and replay. */
async function openRepaired(path: string): Promise<{ records: LedgerRecord[]; ledger: Ledger }> {
  const opened = await FileJournal.open(path);
  await opened.journal.close();
  assert.equal(opened.torn, undefined);
  return { records: opened.entries.map((e) => e.record), ledger: replay(opened.entries) };
}

test('check on a sound journal: exit 0 with records, orders, fills, positions and cash as replay gives them', async () => {
  const path = newPath();
  await writeJournal(path, RECORDS);
  const { code, stdout } = await keel(['journal', 'check', path]);
  assert.equal(code, 0, stdout);
  assert.match(stdout, new RegExp(`^${path}: sound, 7 records \\(seq 1\\.\\.7\\), ${readFileSync(path).length} bytes`));
  assert.match(stdout, /records {4}7: 2 order, 1 order\.status, 2 fill, 1 commission, 1 gate/);
  assert.match(stdout, /orders {5}2 \(0 working\)/);
  assert.match(stdout, /fills {6}2/);
  assert.match(stdout, /positions {2}QQQ -50, SPY 100/);
  // 1,000,000 - 100 x 501.2 - 1 + 50 x 440 - 0.5
  assert.match(stdout, /cash {7}971878\.50 \(starting 1000000\.00\)/);
  const repaired = await keel(['journal', 'repair', path]);
  assert.equal(repaired.code, 0);
  assert.match(repaired.stdout, /is sound \(7 records\): nothing to repair/);
  assert.ok(!existsSync(`${path}.repaired`));
});

test('a torn tail: check names its offset, repair drops it and the repaired journal opens and replays', async () => {
  const path = newPath();
  await writeJournal(path, RECORDS);
  const last = frameOffsets(path).at(-1)!;
  truncateSync(path, last + 5);
  const before = readFileSync(path);

  const checked = await keel(['journal', 'check', path]);
  assert.equal(checked.code, 1);
  assert.match(checked.stdout, new RegExp(`DAMAGED, 1 problem; the first at byte ${last}: torn tail: incomplete frame header \\(5 of 8 bytes\\)`));
  assert.match(checked.stdout, /repair: dropped: a frame a crash left half written was never acknowledged/);

  const repaired = await keel(['journal', 'repair', path]);
  assert.equal(repaired.code, 0, repaired.stderr);
  assert.match(repaired.stdout, new RegExp(`wrote ${path}\\.repaired, 6 records \\(seq 1\\.\\.6\\)`));
  assert.deepEqual(readFileSync(path), before, 'the original is untouched');
  const { records, ledger } = await openRepaired(`${path}.repaired`);
  assert.deepEqual(records, RECORDS.slice(0, 6));
  assert.equal(ledger.position('SPY').quantity, 100);

  const shown = await keel(['journal', 'show', path]);
  assert.equal(shown.code, 1);
  assert.equal(shown.lines.filter((l) => l !== '').length, 6);
  assert.match(shown.stderr, new RegExp(`1 damaged range, the first at byte ${last}`));
});

test('a flipped byte mid-file: check gives the first bad offset and why, the start-up error names both commands, repair keeps the rest renumbered', async () => {
  const path = newPath();
  await writeJournal(path, RECORDS);
  const offsets = frameOffsets(path);
  const data = readFileSync(path);
  const flipped = offsets[2]! + 12;
  data[flipped] = data[flipped]! ^ 0xff;
  writeFileSync(path, data);

  await assert.rejects(FileJournal.open(path), (error: Error) => {
    assert.match(error.message, new RegExp(`damaged frame at byte ${offsets[2]} \\(crc mismatch\\) with a valid frame after it at byte ${offsets[3]}`));
    assert.ok(error.message.includes(`keel journal check ${path}`) && error.message.includes(`keel journal repair ${path}`), error.message);
    return true;
  });

  const checked = await keel(['journal', 'check', path]);
  assert.equal(checked.code, 1);
  assert.match(checked.stdout, new RegExp(`the first at byte ${offsets[2]}: ${offsets[3]! - offsets[2]!} damaged bytes \\(crc mismatch\\); a valid frame follows at byte ${offsets[3]}`));
  assert.match(checked.stdout, /seq 4 follows seq 2: seq 3 is missing/);

  const repaired = await keel(['journal', 'repair', path]);
  assert.equal(repaired.code, 0, repaired.stderr);
  assert.match(repaired.stdout, new RegExp(`seq numbers change from byte ${offsets[3]} on: seq 4 is now seq 3`));
  assert.ok(repaired.lines.includes(`  mv ${path} ${path}.damaged`), repaired.stdout);
  assert.ok(repaired.lines.includes(`  mv ${path}.repaired ${path}`), repaired.stdout);
  assert.deepEqual(readFileSync(path), data, 'the original is untouched');
  const { records, ledger } = await openRepaired(`${path}.repaired`);
  assert.deepEqual(records, [...RECORDS.slice(0, 2), ...RECORDS.slice(3)]);
  // The fill was lost with the damaged frame; its commission record still charges.
  assert.equal(ledger.fills.size, 1);
});

test('a duplicated tail: the daemon refuses to start naming both commands; repair drops the copies', { timeout: 30_000 }, async () => {
  const config = writeInspectedConfig(dir, { instance: 'duplicated', port: 0, tokenFile: join(dir, 'token') });
  const path = join(dir, 'duplicated.journal.keel');
  await writeJournal(path, RECORDS);
  const offsets = frameOffsets(path);
  const data = readFileSync(path);
  appendFileSync(path, data.subarray(offsets[4]!));

  const daemon = await keel(['run', '--config', config]);
  assert.equal(daemon.code, 2, daemon.stdout);
  const refusal = daemon.lines.map((l) => String((JSON.parse(l) as { msg?: unknown }).msg)).find((m) => m.includes('has seq 5, expected 8'));
  assert.ok(refusal, daemon.stdout);
  assert.ok(refusal.includes(`keel journal check ${path}`) && refusal.includes(`keel journal repair ${path}`), refusal);

  const checked = await keel(['journal', 'check', path]);
  assert.equal(checked.code, 1);
  assert.match(checked.stdout, new RegExp(`the first at byte ${data.length}: seq 5 again, after seq 7: an identical copy of the frame at byte ${offsets[4]} \\(a duplicated tail\\)`));

  const repaired = await keel(['journal', 'repair', path]);
  assert.equal(repaired.code, 0, repaired.stderr);
  assert.match(repaired.stdout, /7 records \(seq 1\.\.7\)/);
  assert.doesNotMatch(repaired.stdout, /seq numbers change|set aside/);
  assert.deepEqual((await openRepaired(`${path}.repaired`)).records, RECORDS);
  assert.ok(!existsSync(`${path}.set-aside.jsonl`));
});

test('a fill with a NaN price: check names it, repair sets it aside with the reason and the rest replays', async () => {
  const path = newPath();
  // Through the real FileJournal, as a keel before the ledger's fill checks could have written it.
  const bad: LedgerRecord = { type: 'fill', at, ref: 'k-3', execId: 'e-3', symbol: 'QQQ', quantity: -10, price: NaN, commission: 0 };
  await writeJournal(path, [...RECORDS, bad]);
  const offset = frameOffsets(path).at(-1)!;
  const reason = 'seq 8, a fill record: price NaN is not a finite number above 0: it can never replay';

  const checked = await keel(['journal', 'check', path]);
  assert.equal(checked.code, 1);
  assert.ok(checked.stdout.includes(`the first at byte ${offset}: ${reason}`), checked.stdout);
  assert.match(checked.stdout, /cash {7}971878\.50/);

  const repaired = await keel(['journal', 'repair', path]);
  assert.equal(repaired.code, 0, repaired.stderr);
  assert.match(repaired.stdout, new RegExp(`1 record set aside in ${path}\\.set-aside\\.jsonl`));
  const aside = readFileSync(`${path}.set-aside.jsonl`, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(aside, [{ seq: 8, offset, reason, record: { ...bad, price: 'NaN' } }]);
  const { records, ledger } = await openRepaired(`${path}.repaired`);
  assert.deepEqual(records, RECORDS);
  assert.ok(Number.isFinite(ledger.cash));
  assert.equal(ledger.position('QQQ').quantity, -50);

  // An earlier repair's output is not overwritten without --force.
  const again = await keel(['journal', 'repair', path]);
  assert.equal(again.code, 2);
  assert.equal(again.stderr, `keel: ${path}.repaired exists: move it away, or pass --force to overwrite it`);
  assert.equal((await keel(['journal', 'repair', '--force', path])).code, 0);
});

test('show prints JSON lines (NaN as "NaN"), --since skips what the reader has, and a large journal arrives whole through a pipe', { timeout: 60_000 }, async () => {
  const path = newPath();
  await writeJournal(path, RECORDS);
  const since = await keel(['journal', 'show', path, '--since', '4']);
  assert.equal(since.code, 0, since.stderr);
  const lines = since.lines.filter((l) => l !== '');
  assert.deepEqual(
    lines.map((l) => (JSON.parse(l) as { seq: number }).seq),
    [5, 6, 7],
  );
  assert.deepEqual(JSON.parse(lines[0]!), { seq: 5, record: { ...RECORDS[4], limitPrice: 'NaN' } });

  const big = newPath();
  const N = 30_000;
  const { journal } = await FileJournal.open(big, { maxBatch: 4096 });
  await Promise.all(Array.from({ length: N }, (_, i) => journal.append({ type: 'gate', at: at + i, from: 'ACTIVE', to: 'HALTED', reason: `reason ${i} ${'x'.repeat(60)}`, by: 'test' })));
  await journal.close();
  const all = await keel(['journal', 'show', big]);
  assert.equal(all.code, 0, all.stderr);
  const seqs = all.lines.filter((l) => l !== '').map((l) => (JSON.parse(l) as { seq: number }).seq);
  assert.equal(seqs.length, N);
  assert.ok(seqs.every((s, i) => s === i + 1));
});

test('every journal command has --help; a missing file or a bad flag is one line and exit 2', async () => {
  for (const command of ['check', 'repair', 'show']) {
    const help = await keel(['journal', command, '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, new RegExp(`^Usage: keel journal ${command} FILE`));
  }
  const general = await keel(['--help']);
  for (const command of ['check', 'repair', 'show']) assert.match(general.stdout, new RegExp(`keel journal ${command} FILE`));

  const missing = await keel(['journal', 'check', join(dir, 'nope.keel')]);
  assert.equal(missing.code, 2);
  assert.equal(missing.stderr, `keel: cannot read ${join(dir, 'nope.keel')}: no such file`);
  const path = newPath();
  await writeJournal(path, RECORDS);
  const badSince = await keel(['journal', 'show', path, '--since', 'yesterday']);
  assert.equal(badSince.code, 2);
  assert.equal(badSince.stderr, "keel: --since must be a whole number of at least 0, got 'yesterday'");
  const none = await keel(['journal', 'check']);
  assert.equal(none.code, 2);
  assert.equal(none.stderr, 'keel: which journal? give its FILE');
});
