import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeMessage, MessageReader, WireError, type Greeting } from '../../src/sim/wire.js';

function reader() {
  const greetings: Greeting[] = [];
  const messages: string[][] = [];
  return { greetings, messages, reader: new MessageReader((g) => greetings.push(g), (m) => messages.push(m)) };
}

const greeting = (range: string) => {
  const body = Buffer.from(range);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(body.length);
  return Buffer.concat([Buffer.from('API\0'), length, body]);
};

test('messages split across chunks at any byte come out whole', () => {
  const stream = Buffer.concat([greeting('v100..193'), encodeMessage([71, 2, 0, '']), encodeMessage([49, 1]), encodeMessage(['a', true, false, null, 1.5])]);
  for (let cut = 1; cut < stream.length; cut++) {
    const r = reader();
    r.reader.push(stream.subarray(0, cut));
    r.reader.push(stream.subarray(cut));
    assert.deepEqual(r.greetings, [{ minVersion: 100, maxVersion: 193 }]);
    assert.deepEqual(r.messages, [['71', '2', '0', ''], ['49', '1'], ['a', '1', '0', '', '1.5']]);
  }
});

test('a bad greeting or an absurd length is a WireError naming what was wrong', () => {
  assert.throws(() => reader().reader.push(Buffer.from('GET / HTTP/1.1')), (e: unknown) => e instanceof WireError && /expected the 'API\\0' greeting/.test(e.message));
  assert.throws(() => reader().reader.push(greeting('hello')), /expected a version range like 'v100..193', got "hello"/);
  const huge = Buffer.alloc(4);
  huge.writeUInt32BE(0x7fffffff);
  const r = reader();
  r.reader.push(greeting('v100..193'));
  assert.throws(() => r.reader.push(huge), /message length 2147483647 is over/);
});
