import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Packr } from 'msgpackr';
import { DEFAULT_FEATURE_OPTIONS, featureSchema } from '../../src/market/features.js';
import { isLobsterFile, openLobster } from '../../src/replay/lobster-source.js';
import { CHAIN_INPUT, type ChainListing } from '../../src/options/chain-input.js';
import {
  DEPTH_ROW,
  encodeChunk,
  encodeHeader,
  OPTION_ROW,
  openRecording,
  RECORDING_FORMAT,
  RECORDING_VERSION,
  RecordedChunk,
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
  for await (const piece of recording.chunks()) {
    if (!('chunk' in piece)) continue;
    const { chunk } = piece;
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
  await expectError('future.keelrec', frame({ ...header, version: 99 }), /version 99 recording; this keel reads versions 1 to 3/);
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
    for await (const piece of recording.chunks()) if ('chunk' in piece) seen.push(piece.chunk.count);
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

const listing: ChainListing = {
  underlying: 'SPY',
  day: '2026-11-20',
  expiries: ['20261120', '20261123', '20261124'],
  strikes: [{ expiry: '20261120', strikes: [580, 581] }],
  contracts: [
    { conId: 7001, localSymbol: 'SPY   261120C00580000', expiry: '20261120', strike: 580, right: 'C' },
    { conId: 7002, localSymbol: 'SPY   261120P00581000', expiry: '20261120', strike: 581, right: 'P' },
  ],
  allowance: 40,
};

/** Every piece of a recording: rows as tuples with their contract column, listings as they are. */
async function piecesOf(recording: Recording): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const piece of recording.chunks()) {
    if (!('chunk' in piece)) {
      out.push({ listing: piece.listing, at: piece.at });
      continue;
    }
    const c = piece.chunk;
    for (let i = 0; i < c.count; i++) out.push([c.kind[i], c.instrument[i], c.side[i], c.price[i], c.at[i], c.contract[i]]);
  }
  return out;
}

/** A frame's body as msgpackr decodes it (the 4-byte length skipped). */
const bodyOf = (frame: Buffer) => new Packr({ moreTypes: true }).unpack(frame.subarray(4)) as Record<string, unknown>;

test('option rows and listings come back in order between the other rows; only chunks with option rows carry conIds', async () => {
  const path = join(dir, 'options.keelrec');
  const errors: Error[] = [];
  const writer = await RecordingWriter.create(path, header, 4, (e) => errors.push(e));
  writer.add(DEPTH_ROW, 0, 0, 0, 1, 0, 580.01, 100, 1_000);
  writer.addListing({ listing, at: 1_001 });
  writer.addOption(0, 7001, CHAIN_INPUT.BID, 1.25, 1_002);
  writer.addOption(0, 7001, CHAIN_INPUT.ASK, 1.27, 1_002);
  writer.addOption(0, 7002, CHAIN_INPUT.IB_IV, NaN, 1_003);
  writer.addOption(0, 0, CHAIN_INPUT.UNDERLYING_BID, 580.01, 1_004);
  writer.addOption(0, 0, CHAIN_INPUT.PRICED, Date.UTC(2026, 10, 20, 15), 1_004);
  for (let i = 0; i < 4; i++) writer.add(TRADE_ROW, 1, 0, 0, 0, 0, 420 + i, 10, 1_005 + i);
  await writer.close();
  assert.deepEqual(errors, []);
  assert.equal(writer.rows, 10, 'rows, not listings');

  const recording = await openRecording(path);
  assert.equal(recording.header.version, RECORDING_VERSION);
  assert.deepEqual(await piecesOf(recording), [
    [DEPTH_ROW, 0, 1, 580.01, 1_000, 0],
    { listing, at: 1_001 },
    [OPTION_ROW, 0, CHAIN_INPUT.BID, 1.25, 1_002, 7001],
    [OPTION_ROW, 0, CHAIN_INPUT.ASK, 1.27, 1_002, 7001],
    [OPTION_ROW, 0, CHAIN_INPUT.IB_IV, NaN, 1_003, 7002],
    [OPTION_ROW, 0, CHAIN_INPUT.UNDERLYING_BID, 580.01, 1_004, 0],
    [OPTION_ROW, 0, CHAIN_INPUT.PRICED, Date.UTC(2026, 10, 20, 15), 1_004, 0],
    [TRADE_ROW, 1, 0, 420, 1_005, 0],
    [TRADE_ROW, 1, 0, 421, 1_006, 0],
    [TRADE_ROW, 1, 0, 422, 1_007, 0],
    [TRADE_ROW, 1, 0, 423, 1_008, 0],
  ]);

  // The conId column is written only where there are option rows: stock rows stay 33 bytes.
  const chunk = new RecordedChunk(2);
  chunk.add(DEPTH_ROW, 0, 0, 0, 1, 0, 580, 100, 1);
  chunk.add(TRADE_ROW, 0, 0, 0, 0, 0, 580, 5, 2);
  assert.equal(bodyOf(encodeChunk(chunk)).contract, undefined);
  chunk.count = 1;
  chunk.add(OPTION_ROW, 0, 0, 0, CHAIN_INPUT.ASK, 0, 1.3, NaN, 2, 7001);
  assert.deepEqual(bodyOf(encodeChunk(chunk)).contract, new Int32Array([0, 7001]));
});

/** A frame by hand: a 4-byte length and a msgpackr body, as version 1 of keel wrote them. */
function handFrame(value: unknown): Buffer {
  const body = new Packr({ moreTypes: true }).pack(value);
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length);
  return Buffer.concat([head, body]);
}

/** A version 1 chunk: the nine columns, no `contract`. */
function v1Chunk(rows: number[][]): Record<string, unknown> {
  const column = <T extends Uint8Array | Int32Array | Float64Array>(make: new (n: number) => T, at: number) => {
    const out = new make(rows.length);
    rows.forEach((r, i) => (out[i] = r[at]!));
    return out;
  };
  return {
    rows: rows.length,
    kind: column(Uint8Array, 0),
    instrument: column(Int32Array, 1),
    position: column(Uint8Array, 2),
    operation: column(Uint8Array, 3),
    side: column(Uint8Array, 4),
    smart: column(Uint8Array, 5),
    price: column(Float64Array, 6),
    size: column(Float64Array, 7),
    at: column(Float64Array, 8),
  };
}

test('a version 1 recording (from before option chains) reads row for row; option data in one is an error', async () => {
  const v1 = { ...header, version: 1 };
  const path = join(dir, 'version-1.keelrec');
  writeFileSync(path, Buffer.concat([handFrame(v1), handFrame(v1Chunk(sample.slice(0, 120))), handFrame(v1Chunk(sample.slice(120)))]));
  const recording = await openRecording(path);
  assert.deepEqual(recording.header, v1);
  assert.deepEqual(await rowsOf(recording), sample);
  assert.equal(recording.truncated, 0);

  const rejects = async (name: string, frames: Buffer[], pattern: RegExp) => {
    const file = join(dir, name);
    writeFileSync(file, Buffer.concat(frames));
    await assert.rejects(async () => rowsOf(await openRecording(file)), pattern);
  };
  await rejects('v1-option-row.keelrec', [handFrame(v1), handFrame(v1Chunk([[OPTION_ROW, 0, 0, 0, 0, 0, 1.25, NaN, 1_000]]))], /row 0 has unknown kind 3 for a version 1 recording/);
  await rejects('v1-listing.keelrec', [handFrame(v1), handFrame({ listing, at: 1_000 })], /an option listing in a version 1 recording/);
  // Version 2: an option row needs its conId, and an input keel knows.
  await rejects('no-contract.keelrec', [encodeHeader(header), handFrame(v1Chunk([[OPTION_ROW, 0, 0, 0, 0, 0, 1.25, NaN, 1_000]]))], /option row 0 has no contract column/);
  await rejects('bad-input.keelrec', [encodeHeader(header), handFrame({ ...v1Chunk([[OPTION_ROW, 0, 0, 0, 99, 0, 1.25, NaN, 1_000]]), contract: new Int32Array([7001]) })], /option row 0 has unknown input 99/);
  await rejects('bad-listing.keelrec', [encodeHeader(header), handFrame({ listing: { ...listing, contracts: [{ conId: 1 }] }, at: 1_000 })], /option listing: contracts must each have/);
});

test('version 3 carries option prints and listed multipliers; a version 2 recording reads as before, and a print in one is an error', async () => {
  const path = join(dir, 'prints.keelrec');
  const listed = { ...listing, contracts: [{ ...listing.contracts[0]!, multiplier: 100 }, listing.contracts[1]!] };
  const writer = await RecordingWriter.create(path, header, 8, () => {});
  writer.addListing({ listing: listed, at: 1_000 });
  writer.addOption(0, 7001, CHAIN_INPUT.LAST_BEFORE_LINE, 1.24, 1_001);
  writer.addOption(0, 7001, CHAIN_INPUT.LAST, 1.26, 1_002);
  writer.addOption(0, 7001, CHAIN_INPUT.LAST_SIZE, 3, 1_002);
  await writer.close();
  assert.equal(RECORDING_VERSION, 3);
  assert.deepEqual(await piecesOf(await openRecording(path)), [
    { listing: listed, at: 1_000 },
    [OPTION_ROW, 0, CHAIN_INPUT.LAST_BEFORE_LINE, 1.24, 1_001, 7001],
    [OPTION_ROW, 0, CHAIN_INPUT.LAST, 1.26, 1_002, 7001],
    [OPTION_ROW, 0, CHAIN_INPUT.LAST_SIZE, 3, 1_002, 7001],
  ]);

  const v2 = { ...header, version: 2 };
  const optionChunk = (input: number) => handFrame({ ...v1Chunk([[OPTION_ROW, 0, 0, 0, input, 0, 1.25, NaN, 1_000]]), contract: new Int32Array([7001]) });
  const old = join(dir, 'version-2.keelrec');
  writeFileSync(old, Buffer.concat([handFrame(v2), handFrame({ listing, at: 999 }), optionChunk(CHAIN_INPUT.ASK_SIZE)]));
  assert.deepEqual(await piecesOf(await openRecording(old)), [{ listing, at: 999 }, [OPTION_ROW, 0, CHAIN_INPUT.ASK_SIZE, 1.25, 1_000, 7001]]);
  writeFileSync(old, Buffer.concat([handFrame(v2), optionChunk(CHAIN_INPUT.LAST)]));
  await assert.rejects(async () => piecesOf(await openRecording(old)), /option row 0 has unknown input 16 for a version 2 recording/);
  const badMultiplier = join(dir, 'bad-multiplier.keelrec');
  writeFileSync(badMultiplier, Buffer.concat([encodeHeader(header), handFrame({ listing: { ...listing, contracts: [{ ...listing.contracts[0]!, multiplier: 0 }] }, at: 1_000 })]));
  await assert.rejects(async () => piecesOf(await openRecording(badMultiplier)), /a positive multiplier, if any/);
});
