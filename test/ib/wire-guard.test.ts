import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FrameScanner, MAX_FRAME_BYTES } from '../../src/ib/wire-guard.js';

const frame = (length: number, body = length) => {
  const bytes = Buffer.alloc(4 + body);
  bytes.writeUInt32BE(length, 0);
  return bytes;
};

test('frames split anywhere across chunks are followed without a false alarm', () => {
  const stream = Buffer.concat([frame(3), frame(0), frame(300), frame(MAX_FRAME_BYTES, 10)]);
  for (const cut of [1, 2, 3, 5, 7, 9, 200]) {
    const scanner = new FrameScanner();
    for (let at = 0; at < stream.length; at += cut) assert.equal(scanner.scan(stream.subarray(at, at + cut)), undefined, `cut ${cut}`);
  }
});

test('a length with its top bit set is found, even with its prefix split over chunks', () => {
  const scanner = new FrameScanner();
  assert.equal(scanner.scan(frame(2)), undefined);
  assert.equal(scanner.scan(Buffer.from([0x80, 0])), undefined);
  assert.equal(scanner.scan(Buffer.from([0, 0, 1, 2])), 0x8000_0000);
});

test('a length past the client ceiling is found; reset starts a new stream', () => {
  const scanner = new FrameScanner();
  assert.equal(scanner.scan(frame(MAX_FRAME_BYTES + 1, 0)), MAX_FRAME_BYTES + 1);
  scanner.reset();
  assert.equal(scanner.scan(frame(5)), undefined);
});
