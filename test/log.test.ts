import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock } from '../src/clock.js';
import { createLogger, RepeatMerger } from '../src/log.js';
import { LogSink } from './support/probe.js';

function merger() {
  const sink = new LogSink();
  const clock = new ManualClock();
  const lines = new RepeatMerger(createLogger({ level: 'info', pretty: false, destination: sink }), clock, 5_000);
  return { sink, clock, lines };
}

test('a flood of one line is the line, then one count when its window closes', async () => {
  const { sink, clock, lines } = merger();
  for (let i = 0; i < 50_000; i++) lines.line('info', { code: 2104 }, 'Market data farm connection is OK:usfarm');
  assert.deepEqual(sink.messages(), ['Market data farm connection is OK:usfarm']);
  await clock.advance(5_000);
  assert.deepEqual(sink.messages().slice(1), ['Market data farm connection is OK:usfarm (repeated 49,999 times in 5 s)']);
  assert.equal(sink.lines[1]!.repeated, 49_999);
  assert.equal(sink.lines[1]!.code, 2104);
  // A new window starts with the line itself again.
  lines.line('info', {}, 'Market data farm connection is OK:usfarm');
  assert.equal(sink.messages().length, 3);
});

test('different lines and levels are kept apart; a line seen once adds no count', async () => {
  const { sink, clock, lines } = merger();
  lines.line('warn', {}, 'a');
  lines.line('info', {}, 'a');
  lines.line('warn', {}, 'b');
  lines.line('warn', {}, 'a');
  await clock.advance(2_000);
  lines.line('warn', {}, 'c');
  lines.line('warn', {}, 'c');
  await clock.advance(3_000);
  assert.deepEqual(sink.messages(), ['a', 'a', 'b', 'c', 'a (repeated once in 5 s)']);
  await clock.advance(2_000);
  assert.deepEqual(sink.messages().slice(5), ['c (repeated once in 5 s)']);
  assert.equal(clock.nextTimerAt(), Infinity);
});

test('flush reports open counts at once and leaves no timer behind', () => {
  const { sink, clock, lines } = merger();
  lines.line('warn', {}, 'x');
  lines.line('warn', {}, 'x');
  lines.line('warn', {}, 'x');
  lines.flush();
  assert.deepEqual(sink.messages(), ['x', 'x (repeated 2 times in 0 s)']);
  assert.equal(clock.nextTimerAt(), Infinity);
});

test('lines below the level cost nothing and are not counted', () => {
  const { sink, lines } = merger();
  for (let i = 0; i < 10; i++) lines.line('debug', {}, 'quiet');
  lines.flush();
  assert.deepEqual(sink.messages(), []);
});
