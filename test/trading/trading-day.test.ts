import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TradingDay } from '../../src/trading/trading-day.js';

const at = (iso: string) => Date.parse(iso);

test("the day's P&L counts from the net P&L at the start, and starts again on a new UTC date", () => {
  const day = new TradingDay(at('2026-12-03T14:30:00Z'), 1_000);
  assert.equal(day.pnl(at('2026-12-03T15:00:00Z'), 1_250), 250);
  assert.equal(day.pnl(at('2026-12-03T23:59:59Z'), 700), -300);
  // The first reading of the next date begins it: yesterday's P&L is not today's loss.
  assert.equal(day.pnl(at('2026-12-04T00:00:01Z'), 650), 0);
  assert.equal(day.pnl(at('2026-12-04T14:00:00Z'), 400), -250);
});

test('a reading later the same date never restarts the day', () => {
  const day = new TradingDay(at('2026-12-03T00:00:00Z'), 0);
  for (const hour of ['01', '09', '16', '23']) assert.equal(day.pnl(at(`2026-12-03T${hour}:00:00Z`), -100), -100);
});
