/**
 * The file journal on real files: records round-trip, appends resolve in seq
 * order once durable and in batches, a crash's torn tail is cut off while
 * damage in the middle and gaps are refused, and a failed store refuses
 * everything after it.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { crc32 } from 'node:zlib';
import { Packr } from 'msgpackr';
import pino from 'pino';
import { FileJournal, type FileJournalOptions } from '../../src/journal/file-journal.js';
import type { JournalEntry, LedgerRecord } from '../../src/journal/records.js';

const HEADER_BYTES = 12;
let dir: string;
let files = 0;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'keel-journal-'));
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

const newPath = () => join(dir, `j${++files}`, 'ledger.journal');

/** A logger that keeps what it logs. */
function capturingLog() {
  const lines: { level: number; msg: string; offset?: number; bytes?: number }[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  return { log, warnings: () => lines.filter((l) => l.level === 40) };
}

/** One of every record type, a market order (NaN limit) among them. */
function records(n: number): LedgerRecord[] {
  const all: LedgerRecord[] = [];
  for (let i = 0; i < n; i++) {
    const ref = `k-${Math.floor(i / 6)}`;
    const at = 1_700_000_000_000 + i;
    const kinds: LedgerRecord[] = [
      { type: 'order', at, ref, symbol: 'SPY', quantity: 100, orderType: 'LMT', limitPrice: 501.25, brokerOrderId: 1000 + i, reason: 'imbalance long' },
      { type: 'order', at, ref: `${ref}m`, symbol: 'QQQ', quantity: -50, orderType: 'MKT', limitPrice: NaN, reason: 'flatten on halt' },
      { type: 'order.status', at, ref, state: 'working', permId: 987_654_321 },
      { type: 'fill', at, ref, execId: `0001f4e8.${i}.01.01`, symbol: 'SPY', quantity: 40, price: 501.24, commission: 0 },
      { type: 'commission', at, execId: `0001f4e8.${i}.01.01`, commission: 0.35 },
      { type: 'gate', at, from: 'ACTIVE', to: 'HALTED', reason: 'feature_health: ofi NaN', by: 'feature_health' },
    ];
    all.push(kinds[i % kinds.length]!);
  }
  return all;
}

async function openJournal(path: string, options: FileJournalOptions = {}) {
  return FileJournal.open(path, options);
}

async function writeJournal(path: string, recs: LedgerRecord[]) {
  const { journal } = await openJournal(path);
  await Promise.all(recs.map((r) => journal.append(r)));
  await journal.close();
}

/** Byte offset of every frame in a journal file. */
function frameOffsets(path: string): number[] {
  const data = readFileSync(path);
  const offsets: number[] = [];
  for (let offset = HEADER_BYTES; offset < data.length; offset += 8 + data.readUInt32LE(offset)) offsets.push(offset);
  return offsets;
}

function flipByte(path: string, at: number) {
  const data = readFileSync(path);
  data[at] = data[at]! ^ 0xff;
  writeFileSync(path, data);
}

const seqs = (entries: JournalEntry[]) => entries.map((e) => e.seq);
const oneTo = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

test('every record type round-trips through close and reopen, NaN included', async () => {
  const path = newPath();
  const recs = records(30);
  const opened = await openJournal(path);
  assert.deepEqual(opened.entries, []);
  assert.equal(opened.journal.durableSeq, 0);
  const got = await Promise.all(recs.map((r) => opened.journal.append(r)));
  assert.deepEqual(got, oneTo(30));
  await opened.journal.close();

  const again = await openJournal(path);
  assert.equal(again.torn, undefined);
  assert.equal(again.journal.durableSeq, 30);
  assert.deepEqual(again.entries, recs.map((record, i) => ({ seq: i + 1, record })));
  assert.ok(Number.isNaN((again.entries[1]!.record as { limitPrice: number }).limitPrice));
  // Seq carries on from the file.
  assert.equal(await again.journal.append(recs[0]!), 31);
  await again.journal.close();
});

test('concurrent appends resolve in seq order, each once durable, in batches', async () => {
  const { journal } = await openJournal(newPath());
  const resolved: number[] = [];
  const pending = records(2_000).map((r) =>
    journal.append(r).then((seq) => {
      assert.ok(journal.durableSeq >= seq, `seq ${seq} resolved with durableSeq ${journal.durableSeq}`);
      resolved.push(seq);
      return seq;
    }),
  );
  assert.equal(journal.durableSeq, 0, 'nothing is durable before a flush');
  await Promise.all(pending);
  assert.deepEqual(resolved, oneTo(2_000));
  assert.equal(journal.durableSeq, 2_000);
  const stats = journal.stats;
  assert.equal(stats.records, 2_000);
  assert.ok(stats.batches < stats.records / 10, `${stats.batches} batches for ${stats.records} records`);
  assert.ok(stats.batches >= 2_000 / 256, 'a batch holds at most maxBatch records');
  await journal.close();
});

test('maxBatch 1 syncs every record on its own', async () => {
  const { journal } = await openJournal(newPath(), { maxBatch: 1, batchMs: 0 });
  await Promise.all(records(20).map((r) => journal.append(r)));
  assert.deepEqual(journal.stats, { records: 20, batches: 20, bytes: journal.stats.bytes });
  await journal.close();
});

test('a torn last frame is cut off, logged once, and the journal carries on from the good frames', async () => {
  const original = newPath();
  const recs = records(12);
  await writeJournal(original, recs);
  const size = statSync(original).size;
  const lastStart = frameOffsets(original).at(-1)!;
  const lastBytes = size - lastStart;
  // 1 byte short, half the payload, 3 bytes into the frame header, exactly the frame header.
  for (const keep of [lastBytes - 1, 8 + Math.floor((lastBytes - 8) / 2), 3, 8]) {
    const path = newPath();
    const { log, warnings } = capturingLog();
    await openJournal(path).then((o) => o.journal.close()); // creates the folder
    copyFileSync(original, path);
    truncateSync(path, lastStart + keep);

    const opened = await openJournal(path, { log });
    assert.deepEqual(opened.entries, recs.slice(0, 11).map((record, i) => ({ seq: i + 1, record })), `keeping ${keep} bytes`);
    assert.equal(opened.torn?.offset, lastStart);
    assert.equal(opened.torn?.bytes, keep);
    assert.equal(statSync(path).size, lastStart, 'the file is cut back to the last good frame');
    assert.equal(warnings().length, 1);
    const [warning] = warnings();
    assert.match(warning!.msg, new RegExp(`${path}.*byte ${lastStart}.*dropped ${keep} bytes`));
    assert.equal(warning!.offset, lastStart);

    assert.equal(await opened.journal.append(recs[11]!), 12);
    await opened.journal.close();
    const reopened = await openJournal(path, { log });
    assert.equal(reopened.torn, undefined);
    assert.deepEqual(reopened.entries, recs.map((record, i) => ({ seq: i + 1, record })));
    assert.equal(warnings().length, 1);
    await reopened.journal.close();
  }
});

test('a flipped byte in the last frame drops it as torn', async () => {
  const path = newPath();
  await writeJournal(path, records(5));
  const last = frameOffsets(path).at(-1)!;
  const size = statSync(path).size;
  flipByte(path, last + 8 + 10);
  const opened = await openJournal(path);
  assert.deepEqual(seqs(opened.entries), oneTo(4));
  assert.deepEqual(opened.torn, { offset: last, bytes: size - last, reason: 'crc mismatch' });
  await opened.journal.close();
});

test('damage with valid frames after it is refused, naming the file and the offset', async () => {
  const path = newPath();
  await writeJournal(path, records(5));
  const [, second] = frameOffsets(path);
  const before = readFileSync(path);
  flipByte(path, second! + 8 + 3);
  await assert.rejects(openJournal(path), (error: Error) => {
    assert.match(error.message, new RegExp(`${path}: damaged frame at byte ${second} \\(crc mismatch\\) with a valid frame after it`));
    return true;
  });
  // A damaged length field too: it would otherwise swallow the frames after it.
  writeFileSync(path, before);
  flipByte(path, second! + 2);
  await assert.rejects(openJournal(path), new RegExp(`damaged frame at byte ${second} `));
  writeFileSync(path, before);
  flipByte(path, second! + 4);
  await assert.rejects(openJournal(path), new RegExp(`damaged frame at byte ${second} `));
  assert.deepEqual(readFileSync(path).length, before.length, 'a refused file is left as it was');
});

test('a gap in seq is refused', async () => {
  const path = newPath();
  await openJournal(path).then((o) => o.journal.close());
  const packr = new Packr();
  const frames = [1, 2, 4].map((seq) => {
    const payload = packr.pack([seq, records(1)[0]]);
    const head = Buffer.alloc(8);
    head.writeUInt32LE(payload.length, 0);
    head.writeUInt32LE(crc32(payload), 4);
    return Buffer.concat([head, payload]);
  });
  writeFileSync(path, Buffer.concat([readFileSync(path), ...frames]));
  const third = HEADER_BYTES + frames[0]!.length + frames[1]!.length;
  await assert.rejects(openJournal(path), new RegExp(`${path}: frame at byte ${third} has seq 4, expected 3`));
});

test('a file that is not a journal is refused; a new or empty file opens empty', async () => {
  const path = newPath();
  await openJournal(path).then((o) => o.journal.close());
  writeFileSync(path, 'order,SPY,100\norder,QQQ,-50\n');
  await assert.rejects(openJournal(path), new RegExp(`${path} is not a keel journal`));
  writeFileSync(path, '');
  const empty = await openJournal(path);
  assert.deepEqual(empty.entries, []);
  assert.equal(empty.torn, undefined);
  await empty.journal.append(records(1)[0]!);
  await empty.journal.close();
  // A crash while the header was being written leaves part of it: nothing was recorded yet.
  writeFileSync(path, 'KEEL');
  const partial = await openJournal(path);
  assert.deepEqual(partial.torn, { offset: 0, bytes: 4, reason: 'incomplete file header' });
  assert.equal(await partial.journal.append(records(1)[0]!), 1);
  await partial.journal.close();
});

test('entriesSince returns exactly the durable tail', async () => {
  const path = newPath();
  const recs = records(10);
  await writeJournal(path, recs);
  const { journal } = await openJournal(path, { batchMs: 10_000 });
  const entries = (from: number) => recs.slice(from).map((record, i) => ({ seq: from + i + 1, record }));
  assert.deepEqual(await journal.entriesSince(0), entries(0));
  assert.deepEqual(await journal.entriesSince(-5), entries(0));
  assert.deepEqual(await journal.entriesSince(7), entries(7));
  assert.deepEqual(await journal.entriesSince(9), entries(9));
  assert.deepEqual(await journal.entriesSince(10), []);
  assert.deepEqual(await journal.entriesSince(50), []);
  // Queued but not yet durable (the batch waits 10 s): not returned.
  const queued = journal.append(recs[0]!);
  assert.deepEqual(await journal.entriesSince(7), entries(7));
  await journal.close();
  assert.equal(await queued, 11, 'close flushes what is queued');
  await assert.rejects(journal.entriesSince(0), /is closed/);
});

test('append after close is refused', async () => {
  const path = newPath();
  const { journal } = await openJournal(path);
  await journal.append(records(1)[0]!);
  await journal.close();
  await journal.close(); // twice is fine
  await assert.rejects(journal.append(records(1)[0]!), new RegExp(`journal ${path} is closed: cannot append a order record`));
});

test('a record that cannot be encoded is refused alone', async () => {
  const path = newPath();
  const { journal } = await openJournal(path);
  const [a, b] = records(2);
  const bad = { ...a!, quantity: 2n ** 70n } as unknown as LedgerRecord;
  const results = await Promise.allSettled([journal.append(a!), journal.append(bad), journal.append(b!)]);
  assert.deepEqual(results[0], { status: 'fulfilled', value: 1 });
  assert.equal(results[1].status, 'rejected');
  assert.match((results[1] as PromiseRejectedResult).reason.message, /cannot encode a order record: .*too large/);
  assert.deepEqual(results[2], { status: 'fulfilled', value: 2 });
  await journal.close();
  const again = await openJournal(path);
  assert.deepEqual(again.entries, [{ seq: 1, record: a }, { seq: 2, record: b }]);
  await again.journal.close();
});

test('a failed write refuses its batch and everything after; durableSeq stays', async () => {
  const path = newPath();
  const { log } = capturingLog();
  const { journal } = await openJournal(path, { log });
  const recs = records(6);
  await Promise.all(recs.slice(0, 3).map((r) => journal.append(r)));
  // Fault injection: the file descriptor goes away under the journal.
  await (journal as unknown as { handle: FileHandle }).handle.close();
  const failed = await Promise.allSettled(recs.slice(3).map((r) => journal.append(r)));
  for (const result of failed) {
    assert.equal(result.status, 'rejected');
    assert.match((result as PromiseRejectedResult).reason.message, new RegExp(`journal ${path}: writing records from seq 4 failed \\(.+\\); durable up to seq 3`));
  }
  assert.equal(journal.durableSeq, 3);
  await assert.rejects(journal.append(recs[0]!), new RegExp(`journal ${path}: writing records from seq 4 failed`));
  await assert.rejects(journal.close());
  const reopened = await openJournal(path);
  assert.deepEqual(seqs(reopened.entries), [1, 2, 3]);
  await reopened.journal.close();
});
