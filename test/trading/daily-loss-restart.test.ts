/**
 * The daily loss limit remembers the day across a crash. A first session
 * (a child process) loses past half the limit and is SIGKILLed; the restart
 * on the same journal continues the day from its journaled opening P&L, so
 * the next loss of the same size crosses the limit, halts, and the order
 * after it is refused naming the limit. A new New York date begins a new
 * day from where the P&L then stands.
 *
 * Both sessions run on a wall clock the test sets (a Friday, 10:00 in New
 * York), the second one going on from where the first stopped.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { FileJournal } from '../../src/journal/file-journal.js';
import type { DayRecord } from '../../src/journal/records.js';
import { TwsSimulator } from '../../src/sim/server.js';
import { PREDICTIONS_TOPIC } from '../../src/topics.js';
import { startBookSession, WallClock } from '../support/book-session.js';
import { until } from '../support/ib-client.js';
import { runScript } from '../support/process.js';
import { predictionFrame } from '../support/predictions.js';

const dir = mkdtempSync(join(tmpdir(), 'keel-daily-loss-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const MAX_DAILY_LOSS = 100;
/** Two commissions of 30 and the spread: a round trip of one share loses a little over 60, past half the limit. */
const FEE = 30;
const FRIDAY_10AM_NEW_YORK = Date.parse('2026-03-06T15:00:00Z');
const SATURDAY_JUST_AFTER_MIDNIGHT_NEW_YORK = Date.parse('2026-03-07T05:00:30Z');

async function dayRecords(path: string): Promise<DayRecord[]> {
  const opened = await FileJournal.open(path);
  await opened.journal.close();
  return opened.entries.flatMap((e) => (e.record.type === 'day' ? [e.record] : []));
}

test('a restart the same day keeps the day’s loss: the loss that crosses the limit halts and the next order is refused; a new day starts afresh', { timeout: 60_000 }, async () => {
  const sim = new TwsSimulator({ updatesPerSecond: 100, seed: 11 });
  const port = await sim.listen(0);
  const journal = join(dir, 'journal.keel');
  const orderIdFile = join(dir, 'order-ids.json');
  try {
    const first = runScript('test/fixtures/daily-loss-session.ts', [journal, orderIdFile, String(port), String(FRIDAY_10AM_NEW_YORK), String(MAX_DAILY_LOSS), String(FEE)]);
    const line = await first.waitFor('"netPnl"');
    const lost = JSON.parse(line) as { netPnl: number; dailyPnl: number; gate: string; wallNow: number };
    assert.ok(lost.netPnl < -MAX_DAILY_LOSS / 2 && lost.netPnl > -MAX_DAILY_LOSS, `the first session lost past half the limit, not all of it: ${lost.netPnl}`);
    assert.equal(lost.dailyPnl, lost.netPnl);
    assert.equal(lost.gate, 'ACTIVE');
    first.child.kill('SIGKILL');
    await first.exited;
    const days = await dayRecords(journal);
    assert.deepEqual(days.map(({ day, openingPnl }) => ({ day, openingPnl })), [{ day: '2026-03-06', openingPnl: 0 }], 'the day was journaled when it began');

    // The restart, a moment later the same day.
    const clock = new WallClock(lost.wallNow + 1);
    const s = await startBookSession({ journal, orderIdFile, port, clock, maxDailyLoss: MAX_DAILY_LOSS, feePerOrder: FEE });
    try {
      assert.ok(s.tree.sink.messages().some((m) => m.startsWith('trading day 2026-03-06 continues')), s.tree.sink.messages().join('\n'));
      assert.ok(Math.abs(s.gate.dailyPnl - lost.netPnl) < 1e-9, `the day's P&L goes on from the first session's loss: ${s.gate.dailyPnl}`);
      assert.equal(s.gate.state, 'ACTIVE');

      await s.roundTrip();
      assert.equal(s.gate.state, 'HALTED', `day P&L ${s.gate.dailyPnl}`);
      assert.match(s.gate.reason, /^max daily loss: 1\d\d\.\d\d > 100$/);
      const refused = s.trader.order({ symbol: 'SPY', quantity: 1, reason: 'one more' });
      assert.equal(refused.ok, false);
      assert.match((refused as { reason: string }).reason, /^trading halted: max daily loss: /);
      assert.equal(s.gate.resume('the operator tries', 'operator').ok, false, 'no resume while the loss is beyond the limit');

      // Midnight in New York: the next reading (the predictor's next frame) begins a new day at the P&L of the moment.
      clock.setWall(SATURDAY_JUST_AFTER_MIDNIGHT_NEW_YORK);
      const carried = s.ledger.netPnl();
      s.tree.bus.retain(PREDICTIONS_TOPIC, predictionFrame({ frameAt: clock.now(), symbols: ['SPY'], value: [NaN] }));
      assert.equal(s.gate.dailyPnl, 0);
      await until(() => s.ledger.day?.day === '2026-03-07', 'the new day to be journaled');
      assert.equal(s.ledger.day!.openingPnl, carried);
      assert.equal(s.gate.resume('a new trading day', 'operator').ok, true);
      await s.trade(1);
      assert.ok(s.gate.dailyPnl < 0 && s.gate.dailyPnl > -MAX_DAILY_LOSS / 2, `today's P&L counts from today's opening: ${s.gate.dailyPnl}`);
      assert.equal(s.gate.state, 'ACTIVE');
    } finally {
      await s.stop();
    }
    assert.deepEqual(
      (await dayRecords(journal)).map((d) => d.day),
      ['2026-03-06', '2026-03-07'],
      'one record per day: the restart continued the journaled day',
    );
  } finally {
    await sim.close();
  }
});
