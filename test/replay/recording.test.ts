import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Packr } from 'msgpackr';
import { DEFAULT_FEATURE_OPTIONS, featureSchema } from '../../src/market/features.js';
import { isLobsterFile, openLobster } from '../../src/replay/lobster-source.js';
import {
  DEPTH_ROW,
  encodeHeader,
  openRecording,
  RECORDING_FORMAT,
  RECORDING_VERSION,
  RecordingError,
  RecordingWriter,
  RESET_ROW,
  TRADE_ROW,
  type Recording,
  type RecordingHeader,
} from '../../src/replay/recording.js';

const dir = mkdtempSync(join(tmpdir(), 'keel-recording-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const header: RecordingHeader = {
  format: RECORDING_FORMAT,
  version: RECORDING_VERSION,
  instruments: ['SPY', 'QQQ'],
  booked: [true, false],
  featureSchema: featureSchema(DEFAULT_FEATURE_OPTIONS),
  wallAt: Date.UTC(2026, 10, 20, 14, 30),
  monotonicAt: 1_000,
  source: 'keel test',
};

/** Every row of a recording, as plain tuples. */
async function rowsOf(recording: Recording): Promise<number[][]> {
  const rows: number[][] = [];
  for await (const { chunk } of recording.chunks()) {
    for (let i = 0; i < chunk.count; i++) {
      rows.push([chunk.kind[i]!, chunk.instrument[i]!, chunk.position[i]!, chunk.operation[i]!, chunk.side[i]!, chunk.smart[i]!, chunk.price[i]!, chunk.size[i]!, chunk.at[i]!]);
    }
  }
  return rows;
}

async function write(path: string, rows: number[][], capacity = 64): Promise<RecordingWriter> {
  const errors: Error[] = [];
  const writer = await RecordingWriter.create(path, header, capacity, (e) => errors.push(e));
  for (const r of rows) writer.add(r[0]!, r[1]!, r[2]!, r[3]!, r[4]!, r[5]!, r[6]!, r[7]!, r[8]!);
  await writer.close();
  assert.deepEqual(errors, []);
  return writer;
}

const sample = Array.from({ length: 200 }, (_, i) =>
  i % 50 === 49 ? [RESET_ROW, 1, 0, 0, 0, 0, NaN, NaN, 1_000 + i] : i % 7 === 0 ? [TRADE_ROW, i % 2, 0, 0, 0, 0, 580 + i / 100, 100 + i, 1_000 + i] : [DEPTH_ROW, i % 2, i % 10, i % 3, i % 2, 0, 580 + i / 100, i, 1_000 + i],
);

test('rows come back exactly, in order, across chunks, with the header', async () => {
  const path = join(dir, 'roundtrip.keelrec');
  const writer = await write(path, sample);
  const recording = await openRecording(path);
  assert.deepEqual(recording.header, header);
  assert.deepEqual(await rowsOf(recording), sample);
  assert.equal(recording.truncated, 0);
  assert.equal(writer.rows, 200);
  // Compact: 33 bytes a row plus a little framing.
  assert.ok(recording.total < 200 * 40 + 1_000, `${recording.total} bytes for 200 rows`);
  assert.equal(recording.total, writer.bytes);
});

test('a file cut short mid-chunk reads up to its last whole chunk and says how much was left', async () => {
  const path = join(dir, 'cut.keelrec');
  await write(path, sample, 64);
  const whole = readFileSync(path).length;
  truncateSync(path, whole - 10);
  const recording = await openRecording(path);
  const rows = await rowsOf(recording);
  assert.deepEqual(rows, sample.slice(0, 192), 'three whole chunks of 64');
  assert.ok(recording.truncated > 0 && recording.truncated < whole);
});

test('what is not a recording gets an error naming the file and what is wrong', async () => {
  const expectError = async (name: string, content: Buffer | string, pattern: RegExp, readChunks = false) => {
    const path = join(dir, name);
    writeFileSync(path, content);
    await assert.rejects(async () => {
      const r = await openRecording(path);
      if (readChunks) await rowsOf(r);
    }, (err: Error) => err instanceof RecordingError && pattern.test(err.message) && err.message.includes(path));
  };
  await expectError('empty.keelrec', '', /has no header/);
  await expectError('text.keelrec', 'time,price\n1,2\n', /frame of \d+ bytes is not one keel writes/);
  const packr = new Packr({ moreTypes: true });
  const frame = (value: unknown) => {
    const body = packr.pack(value);
    const head = Buffer.alloc(4);
    head.writeUInt32BE(body.length);
    return Buffer.concat([head, body]);
  };
  await expectError('other.keelrec', frame({ format: 'something-else' }), /is not a keel recording/);
  await expectError('future.keelrec', frame({ ...header, version: 99 }), /version 99 recording; this keel reads version 1/);
  await expectError('nobooks.keelrec', frame({ ...header, booked: [true] }), /booked must have one flag per instrument/);
  const badColumn = Buffer.concat([encodeHeader(header), frame({ rows: 2, kind: new Uint8Array(2), instrument: new Int32Array(2) })]);
  await expectError('column.keelrec', badColumn, /column 'position' is missing/, true);
  const columns = (instrument: number) => ({
    rows: 1,
    kind: new Uint8Array(1),
    instrument: new Int32Array([instrument]),
    position: new Uint8Array(1),
    operation: new Uint8Array(1),
    side: new Uint8Array(1),
    smart: new Uint8Array(1),
    price: new Float64Array(1),
    size: new Float64Array(1),
    at: new Float64Array(1),
  });
  await expectError('instrument.keelrec', Buffer.concat([encodeHeader(header), frame(columns(5))]), /names instrument 5, the header has 2/, true);
  const path = join(dir, 'missing.keelrec');
  await assert.rejects(openRecording(path), /cannot open .*missing\.keelrec: ENOENT/);
  // The good part before a bad frame is still read: the error names where it went wrong.
  const good = join(dir, 'good-then-bad.keelrec');
  await write(good, sample.slice(0, 64), 64);
  appendFileSync(good, frame(columns(9)));
  const recording = await openRecording(good);
  const seen: number[] = [];
  await assert.rejects(async () => {
    for await (const { chunk } of recording.chunks()) seen.push(chunk.count);
  }, /at byte \d+: row 0 names instrument 9/);
  assert.deepEqual(seen, [64]);
});

test('a LOBSTER pair reads as one instrument: prints for executions, depth operations for every book', async () => {
  const messages = 'test/fixtures/lobster/AAPL_2012-06-21_message_10.csv';
  assert.ok(isLobsterFile(messages));
  assert.ok(!isLobsterFile('recording.keelrec'));
  const recording = openLobster(messages, 500);
  assert.deepEqual(recording.header.instruments, ['AAPL']);
  const rows = await rowsOf(recording);
  assert.equal(rows.filter((r) => r[0] === TRADE_ROW).length, 98 + 61, 'visible and hidden executions');
  assert.equal(rows.length, recording.total);
  // Times are the messages' own, in ms after midnight, never going back.
  assert.equal(rows[0]![8], 34_200_004.241176);
  for (let i = 1; i < rows.length; i++) assert.ok(rows[i]![8]! >= rows[i - 1]![8]!);
  // The same pair named by its book file.
  assert.equal(openLobster(messages.replace('_message_', '_orderbook_')).total, recording.total);
  assert.throws(() => openLobster(join(dir, 'MSFT_2012-06-21_message_10.csv')), /needs both files of the pair; missing/);
});
