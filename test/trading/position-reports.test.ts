import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SecType } from '../../src/ib/api.js';
import { instrumentOf, PositionReports } from '../../src/trading/ib-venue.js';

test('a later report of a position replaces the earlier one; accounts add up; NaN stays NaN', () => {
  const reports = new PositionReports();
  reports.report('DU1', 'SPY', -88);
  // A fill during the snapshot: TWS reports the position it now is, not the change.
  reports.report('DU1', 'SPY', -100);
  reports.report('DU2', 'SPY', 30);
  reports.report('DU1', 'AAPL', 5);
  reports.report('DU1', 'QQQ', NaN);
  const totals = reports.totals();
  assert.equal(totals.get('SPY'), -70);
  assert.equal(totals.get('AAPL'), 5);
  assert.ok(Number.isNaN(totals.get('QQQ')));
});

test("an option's position and executions go by its OSI symbol, never the underlying's: SPY calls do not add to SPY's shares", () => {
  const reports = new PositionReports();
  const stock = { symbol: 'SPY', secType: SecType.STK };
  const call = { symbol: 'SPY', secType: SecType.OPT, localSymbol: 'SPY   261203C00580000', strike: 580 };
  reports.report('DU1', instrumentOf(stock), 100);
  reports.report('DU1', instrumentOf(call), 3);
  assert.deepEqual([...reports.totals()], [['SPY', 100], ['SPY   261203C00580000', 3]]);
});
