/**
 * Replay through the real actors (books, features, feature health, regime,
 * the predictor's worker pool on the demo ONNX models, risk gate, paper
 * trader, journal), from a simulated-market tape, a LOBSTER sample, and a
 * recording the recorder component wrote in a running daemon.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, test } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/log.js';
import { readLobsterBooks, sideOf } from '../../src/market/lobster.js';
import { ASK, BID } from '../../src/market/order-book.js';
import { openLobster } from '../../src/replay/lobster-source.js';
import { openRecording, type Recording } from '../../src/replay/recording.js';
import { replay, type ReplaySummary } from '../../src/replay/replay.js';
import { writeMarketTape } from '../../src/sim/tape.js';
import { runKeel } from '../support/process.js';
import { freePort } from '../support/redis.js';

const dir = mkdtempSync(join(tmpdir(), 'keel-replay-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const config = loadConfig('config/default.yaml');
const quiet = createLogger({ level: 'warn', destination: new Writable({ write: (_c, _e, done) => done() }) });
let journals = 0;

function run(recording: Recording, speed = Infinity): Promise<ReplaySummary> {
  return replay({ recording, config, speed, journalPath: join(dir, `journal-${++journals}.keel`), log: quiet });
}

test('a simulated-market tape trades the same way every time, however it is timed', { timeout: 120_000 }, async () => {
  const path = join(dir, 'market.keelrec');
  const tape = await writeMarketTape(path, { seed: 3, instruments: 4, updatesPerSecond: 1_000, rows: 400_000 });
  const first = await run(await openRecording(path));
  assert.equal(first.rows, tape.rows);
  assert.equal(first.depthRows + first.tradeRows, first.rows);
  assert.equal(first.instruments, 4);
  // About 77 s of market on 1 s prediction frames, and one more frame's time after the last row.
  assert.equal(first.simulatedMs, tape.marketMs + 1_000);
  assert.ok(first.predictionFrames >= 25, `${first.predictionFrames} prediction frames`);
  assert.ok(first.orders > 0 && first.fills > 0, `it trades: ${first.orders} orders, ${first.fills} fills`);
  assert.ok(Number.isFinite(first.netPnl));
  for (const q of first.lastQuotes) assert.ok(q.bid < q.ask, `${q.symbol} ends two-sided and uncrossed: ${q.bid} / ${q.ask}`);

  // The clock is simulated: the same tape gives the same decisions, even played at a pace.
  const again = await run(await openRecording(path), 100);
  const same = (s: ReplaySummary) => ({ rows: s.rows, frames: s.predictionFrames, orders: s.orders, fills: s.fills, netPnl: s.netPnl.toFixed(6), quotes: s.lastQuotes });
  assert.deepEqual(same(again), same(first));
});

test('the LOBSTER sample replays into the book LOBSTER published last', { timeout: 60_000 }, async () => {
  const books = 'test/fixtures/lobster/AAPL_2012-06-21_orderbook_10.csv';
  const summary = await run(openLobster(books));
  assert.equal(summary.rows, 1_434);
  assert.equal(summary.tradeRows, 159);
  const published = readLobsterBooks(books);
  const last = published.rows - 1;
  assert.deepEqual(summary.lastQuotes, [{ symbol: 'AAPL', bid: sideOf(published, last, BID)[0]!.price, ask: sideOf(published, last, ASK)[0]!.price }]);
  // 09:30:00 to 09:30:49 and one more frame: the data is never older than the health limit, nothing trips.
  assert.ok(summary.simulatedMs > 49_000 && summary.simulatedMs < 50_100, `${summary.simulatedMs} ms`);
  assert.deepEqual(summary.gateTransitions, []);
});

test('the recorder writes what a running daemon received, and it replays row for row', { timeout: 120_000 }, async () => {
  const recordings = join(dir, 'recordings');
  const port = await freePort();
  const file = join(dir, 'record.yaml');
  const yaml = (await import('yaml')).stringify({
    instance: 'record-test',
    log: { level: 'info' },
    components: {
      simulator: { kind: 'simulator', settings: { port, seed: 5, updatesPerSecond: 400 } },
      ib_connection: { kind: 'ib_connection', dependsOn: ['simulator'], settings: { host: '127.0.0.1', port, orderIdFile: join(dir, 'order-ids.json') } },
      subscriptions: { kind: 'subscriptions', dependsOn: ['ib_connection'], settings: { instruments: [{ symbol: 'SPY', depth: { rows: 10 }, ticks: 'AllLast' }, { symbol: 'QQQ', depth: { rows: 10 } }] } },
      l2_microstructure: { kind: 'l2_microstructure', dependsOn: ['subscriptions'] },
      features: { kind: 'features', dependsOn: ['l2_microstructure'] },
      recorder: { kind: 'recorder', dependsOn: ['features'], settings: { dir: recordings, chunkRows: 256, flushMs: 200 } },
    },
  });
  writeFileSync(file, yaml);
  const daemon = runKeel(['run', '--config', file]);
  await daemon.waitFor('all components ready');
  const started = JSON.parse(await daemon.waitFor('recording to')) as { path: string };
  // Long enough for a few thousand rows at 400 events a second per book.
  await new Promise((r) => setTimeout(r, 3_000));
  daemon.child.kill('SIGTERM');
  assert.equal(await daemon.exited, 0);
  const recorded = JSON.parse(await daemon.waitFor('rows (')) as { rows: number; path: string };
  assert.equal(recorded.path, started.path);
  assert.deepEqual(readdirSync(recordings).map((f) => join(recordings, f)), [started.path], 'one file, the one it announced');
  assert.ok(recorded.rows > 1_000, `${recorded.rows} rows recorded`);

  const recording = await openRecording(recorded.path);
  assert.deepEqual(recording.header.instruments, ['SPY', 'QQQ']);
  assert.equal(recording.header.source, 'keel record-test');
  assert.equal(recording.truncated, 0);
  const summary = await run(recording);
  assert.equal(summary.rows, recorded.rows);
  assert.ok(summary.tradeRows > 0, 'SPY prints were recorded');
  // Never crossed; one side may be empty for a row while a depth update deletes the touch before inserting the next.
  for (const q of summary.lastQuotes) assert.ok(!(q.bid >= q.ask) && (q.bid > 0 || q.ask > 0), `${q.symbol}: ${q.bid} / ${q.ask}`);
});
