/** The trading day: New York session dates, the day's P&L from its opening P&L, and a baseline the journal keeps. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { FileJournal } from '../../src/journal/file-journal.js';
import type { LedgerRecord } from '../../src/journal/records.js';
import { Ledger } from '../../src/trading/ledger.js';
import { sessionDate, TradingDay, type DayBaseline } from '../../src/trading/trading-day.js';

const at = (iso: string) => Date.parse(iso);

const dir = mkdtempSync(join(tmpdir(), 'keel-trading-day-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('the session date is the New York calendar date, not the UTC one', () => {
  // Winter (EST, UTC-5): New York's midnight is 05:00 UTC.
  assert.equal(sessionDate(at('2026-12-03T14:30:00Z')), '2026-12-03');
  assert.equal(sessionDate(at('2026-12-04T00:00:01Z')), '2026-12-03', '19:00 in New York is still the 3rd');
  assert.equal(sessionDate(at('2026-12-04T04:59:59.999Z')), '2026-12-03');
  assert.equal(sessionDate(at('2026-12-04T05:00:00Z')), '2026-12-04');
  // Summer (EDT, UTC-4): midnight is 04:00 UTC.
  assert.equal(sessionDate(at('2026-07-01T00:30:00Z')), '2026-06-30', '20:30 in New York is still the 30th');
  assert.equal(sessionDate(at('2026-07-01T03:59:59.999Z')), '2026-06-30');
  assert.equal(sessionDate(at('2026-07-01T04:00:00Z')), '2026-07-01');
  // Across a year end.
  assert.equal(sessionDate(at('2027-01-01T04:59:59Z')), '2026-12-31');
  assert.equal(sessionDate(at('2027-01-01T05:00:00Z')), '2027-01-01');
  assert.throws(() => sessionDate(NaN), /not a time/);
});

test('the session date follows daylight saving time: midnight moves from 05:00 to 04:00 UTC in March and back in November', () => {
  // 2026-03-08: clocks go from 02:00 EST to 03:00 EDT (07:00 UTC). That day began at 05:00 UTC, the next begins at 04:00 UTC.
  assert.equal(sessionDate(at('2026-03-08T04:59:59Z')), '2026-03-07');
  assert.equal(sessionDate(at('2026-03-08T05:00:00Z')), '2026-03-08');
  assert.equal(sessionDate(at('2026-03-08T06:59:59Z')), '2026-03-08', '01:59 EST, just before the change');
  assert.equal(sessionDate(at('2026-03-08T07:00:00Z')), '2026-03-08', '03:00 EDT, just after it');
  assert.equal(sessionDate(at('2026-03-09T03:59:59Z')), '2026-03-08');
  assert.equal(sessionDate(at('2026-03-09T04:00:00Z')), '2026-03-09');
  // 2026-11-01: clocks go from 02:00 EDT back to 01:00 EST (06:00 UTC). That day began at 04:00 UTC and lasts 25 hours.
  assert.equal(sessionDate(at('2026-11-01T03:59:59Z')), '2026-10-31');
  assert.equal(sessionDate(at('2026-11-01T04:00:00Z')), '2026-11-01');
  assert.equal(sessionDate(at('2026-11-01T05:30:00Z')), '2026-11-01', '01:30 EDT');
  assert.equal(sessionDate(at('2026-11-01T06:30:00Z')), '2026-11-01', '01:30 EST, the same hour again');
  assert.equal(sessionDate(at('2026-11-02T04:59:59Z')), '2026-11-01');
  assert.equal(sessionDate(at('2026-11-02T05:00:00Z')), '2026-11-02');
});

test("the day's P&L counts from the first reading's net P&L and starts again at New York's midnight, not UTC's", () => {
  const begun: DayBaseline[] = [];
  const day = new TradingDay();
  const pnl = (iso: string, net: number) => day.pnl(at(iso), net, (b) => begun.push(b));
  assert.equal(day.baseline, undefined);
  assert.equal(pnl('2026-12-03T14:30:00Z', 1_000), 0);
  assert.deepEqual(begun, [{ day: '2026-12-03', openingPnl: 1_000 }]);
  assert.equal(pnl('2026-12-03T15:00:00Z', 1_250), 250);
  assert.equal(pnl('2026-12-03T23:59:59Z', 700), -300);
  // 19:00 and 23:59 in New York: a UTC day would have started again here and forgotten the loss.
  assert.equal(pnl('2026-12-04T00:00:01Z', 650), -350);
  assert.equal(pnl('2026-12-04T04:59:59Z', 600), -400);
  assert.equal(begun.length, 1);
  // Midnight in New York: yesterday's P&L is not today's loss.
  assert.equal(pnl('2026-12-04T05:00:01Z', 550), 0);
  assert.equal(pnl('2026-12-04T14:00:00Z', 300), -250);
  assert.deepEqual(begun, [
    { day: '2026-12-03', openingPnl: 1_000 },
    { day: '2026-12-04', openingPnl: 550 },
  ]);
});

test('a journaled baseline of the same date continues the day; one of an earlier date does not', () => {
  const begun: DayBaseline[] = [];
  const same = new TradingDay({ day: '2026-07-01', openingPnl: -600 });
  // 23:30 in New York on the 1st, though the UTC date is the 2nd.
  assert.equal(same.pnl(at('2026-07-02T03:30:00Z'), -1_000, (b) => begun.push(b)), -400);
  assert.equal(begun.length, 0, 'nothing to journal: the day was already under way');

  const stale = new TradingDay({ day: '2026-06-30', openingPnl: -600 });
  assert.equal(stale.pnl(at('2026-07-01T13:30:00Z'), -1_000, (b) => begun.push(b)), 0);
  assert.deepEqual(begun, [{ day: '2026-07-01', openingPnl: -1_000 }]);
  assert.deepEqual(stale.baseline, { day: '2026-07-01', openingPnl: -1_000 });
});

test('a net P&L that is not a number begins no day: it is passed on, and the next finite reading begins it', () => {
  const begun: DayBaseline[] = [];
  const day = new TradingDay();
  assert.ok(Number.isNaN(day.pnl(at('2026-12-03T14:30:00Z'), NaN, (b) => begun.push(b))));
  assert.equal(day.baseline, undefined);
  assert.equal(day.pnl(at('2026-12-03T14:31:00Z'), 20, (b) => begun.push(b)), 0);
  assert.deepEqual(begun, [{ day: '2026-12-03', openingPnl: 20 }]);
  assert.ok(Number.isNaN(day.pnl(at('2026-12-03T14:32:00Z'), NaN)));
  assert.equal(day.pnl(at('2026-12-03T14:33:00Z'), -30), -50);
});

test('the ledger replays a day record as the latest baseline without moving positions, cash or P&L', async () => {
  const t = at('2026-12-03T14:30:00Z');
  const records: LedgerRecord[] = [
    { type: 'day', at: t, day: '2026-12-02', openingPnl: 0 },
    { type: 'order', at: t, ref: 'k.1', symbol: 'SPY', quantity: 10, orderType: 'LMT', limitPrice: 100, reason: 'test' },
    { type: 'fill', at: t, ref: 'k.1', execId: 'e1', symbol: 'SPY', quantity: 10, price: 100, commission: 1 },
    { type: 'day', at: t + 1, day: '2026-12-03', openingPnl: -1 },
  ];
  const path = join(dir, 'days.journal');
  const first = await FileJournal.open(path);
  const ledger = new Ledger(first.journal, 1_000_000);
  for (const r of records) await ledger.record(r);
  await first.journal.close();

  const reopened = await FileJournal.open(path);
  const replayed = new Ledger(reopened.journal, 1_000_000);
  replayed.replay(reopened.entries);
  await reopened.journal.close();
  for (const l of [ledger, replayed]) {
    assert.deepEqual(l.day, records[3]);
    assert.equal(l.seq, 4);
    assert.equal(l.cash, 1_000_000 - 1_000 - 1);
    assert.equal(l.positions.get('SPY')!.quantity, 10);
    assert.equal(l.netPnl(), -1);
    assert.equal(l.orders.get('k.1')!.state, 'filled');
  }
});

test('the kept hour never answers for another: minute by minute over both changes of 2026, forwards and back, as Intl says', () => {
  const intl = new Intl.DateTimeFormat('en-CA', { timeZone: 'America/New_York', year: 'numeric', month: '2-digit', day: '2-digit' });
  for (const day of ['2026-03-07T00:00:00Z', '2026-10-31T00:00:00Z']) {
    const minutes = Array.from({ length: 3 * 24 * 60 }, (_, k) => at(day) + k * 60_000 + 59_999);
    for (const wall of [...minutes, ...minutes.reverse()]) assert.equal(sessionDate(wall), intl.format(wall), new Date(wall).toISOString());
  }
});
