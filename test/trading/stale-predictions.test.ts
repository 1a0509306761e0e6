/**
 * The stall gap: a prediction computed before the event loop stalled and
 * delivered after it, before feature health's next look, must not trade.
 * The trader refuses a frame whose features are older than
 * maxPredictionAgeMs when it arrives, and trades the next fresh one.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ManualClock } from '../../src/clock.js';
import { FileJournal } from '../../src/journal/file-journal.js';
import { createLogger } from '../../src/log.js';
import type { PredictionFrame } from '../../src/models/predictor.js';
import { bookTrader } from '../support/books.js';
import { LogSink } from '../support/probe.js';
import { predictionFrame } from '../support/predictions.js';

const dir = mkdtempSync(join(tmpdir(), 'keel-stale-'));
after(() => rmSync(dir, { recursive: true, force: true }));


// +5 bps: well past the entry threshold.
const frame = (frameAt: number, at: number): PredictionFrame => predictionFrame({ frameAt, at, symbols: ['SPY'], value: [5], tier: ['base'], models: ['m@1'] });

test('a prediction that arrives after a stall is not traded; the next fresh one is', async () => {
  const { journal } = await FileJournal.open(join(dir, 'stale.journal'));
  const clock = new ManualClock(100_000);
  const sink = new LogSink();
  const { trader, ledger } = bookTrader({ journal, clock, log: createLogger({ level: 'debug', pretty: false, destination: sink }) });
  try {
    // Features of 100,000 answered at 105,000: the loop was stuck for five seconds in between.
    await clock.advance(5_000);
    trader.onFrame(frame(100_000, clock.now()), undefined);
    trader.onFrame(frame(100_000, clock.now()), undefined);
    await trader.settled();
    assert.equal(ledger.orders.size, 0, 'no order from a prediction five seconds old');
    const warned = sink.lines.filter((l) => String(l.msg).startsWith('a prediction arrived 5000 ms after its features (limit 1000 ms)'));
    assert.equal(warned.length, 1, 'one warning for the episode');

    trader.onFrame(frame(clock.now() - 2, clock.now()), undefined);
    await trader.settled();
    assert.equal(ledger.orders.size, 1, 'the fresh prediction trades');
    assert.ok(sink.lines.some((l) => l.msg === 'predictions fresh again: 2 stale frames were not traded'));
  } finally {
    await journal.close();
  }
});
