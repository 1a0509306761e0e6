/**
 * The trader's combo path on its own: a combo goes through the gate and
 * the journal as one order record with its legs and reaches the venue as
 * one combo ticket; a venue that does not trade combos is refused by name,
 * and so is a combo one of whose legs is busy.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ManualClock } from '../../src/clock.js';
import { FileJournal } from '../../src/journal/file-journal.js';
import type { OrderRecord } from '../../src/journal/records.js';
import { createLogger } from '../../src/log.js';
import { Ledger } from '../../src/trading/ledger.js';
import { riskLimits } from '../../src/trading/limits.js';
import type { ComboRisk } from '../../src/trading/option-limits.js';
import { policySettings, TradingPolicy } from '../../src/trading/policy.js';
import { RiskGate } from '../../src/trading/risk-gate.js';
import { PaperTrader } from '../../src/trading/trader.js';
import type { ComboTicket, OrderTicket, Venue } from '../../src/trading/venue.js';
import { LogSink } from '../support/probe.js';

const dir = mkdtempSync(join(tmpdir(), 'keel-combo-trader-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const C580 = 'SPY   260105C00580000';
const C585 = 'SPY   260105C00585000';
const contract = (conId: number, strike: number) => ({ conId, underlying: 'SPY', expiry: '20260105', strike, right: 'C' as const, multiplier: 100 });
const LEGS = [
  { symbol: C580, option: contract(1, 580), ratio: 1 },
  { symbol: C585, option: contract(2, 585), ratio: -1 },
];
const leg = (symbol: string, ratio: number, delta: number, bid: number, ask: number) => ({ symbol, expiry: '20260105', right: 'C' as const, multiplier: 100, ratio, greeks: { delta, gamma: 0.05, vega: 0.03, theta: -0.4 }, bid, ask, position: 0, working: 0 });
const RISK: ComboRisk = {
  underlying: 'SPY',
  legs: [leg(C580, 1, 0.5, 1.2, 1.25), leg(C585, -1, 0.25, 0.4, 0.45)],
  portfolio: { delta: 0, gamma: 0, vega: 0, theta: 0 },
  contractsByExpiry: new Map(),
  premiumAtRisk: 0,
  sharesHeld: 0,
};

async function setup(name: string, venue: Venue) {
  const clock = new ManualClock();
  const { journal } = await FileJournal.open(join(dir, `${name}.journal`));
  const ledger = new Ledger(journal, 100_000);
  const gate = new RiskGate(clock, { autoResume: false, healthyPeriodMs: 1000, limits: riskLimits.parse({}) });
  const log = createLogger({ level: 'debug', pretty: false, destination: new LogSink() });
  const trader = new PaperTrader({ ledger, gate, policy: new TradingPolicy(policySettings.parse({}), ['SPY']), clock, log, symbols: ['SPY'], refPrefix: 'k', replaceAfterMs: 60_000, maxPredictionAgeMs: 1_000, books: () => undefined, fail: (e) => assert.fail(String(e)) });
  trader.venue = venue;
  return { trader, ledger, journal };
}

test('a combo is journaled as one order with its legs, at the net of the touches, and sent as one combo ticket', async () => {
  const sent: ComboTicket[] = [];
  const singles: OrderTicket[] = [];
  const { trader, ledger, journal } = await setup('sent', { tradesOptions: true, submit: (t) => singles.push(t), submitCombo: (t) => sent.push(t), cancel: () => {}, close: () => {} });
  const placed = trader.orderCombo({ legs: LEGS, quantity: 2, risk: RISK, reason: 'test: a vertical' });
  assert.ok(placed.ok, JSON.stringify(placed));
  const busy = trader.orderOption({ option: contract(2, 585), symbol: C585, quantity: 1, quote: { bid: 0.4, ask: 0.45 }, risk: { ...RISK, expiry: '20260105', right: 'C', multiplier: 100, greeks: RISK.legs[1]!.greeks, contractsInExpiry: 0 }, reason: 'test' });
  assert.deepEqual(busy, { ok: false, reason: `${C585} already has order ${placed.ref} in flight or working` }, 'one order per instrument: a leg of a working combo too');
  await trader.settled();
  const record = ledger.order(placed.ref!)!;
  assert.deepEqual([record.symbol, record.quantity, record.limitPrice], ['SPY +1 20260105 580C -1 20260105 585C', 2, 0.85]);
  assert.deepEqual(record.legs!.map((l) => [l.symbol, l.ratio, l.price]), [[C580, 1, 1.25], [C585, -1, 0.4]], 'each leg at its touch when judged');
  assert.deepEqual([ledger.multiplierOf(C585), ledger.workingQuantity(C580), ledger.workingQuantity(C585)], [100, 2, -2]);
  assert.deepEqual(sent.map((t) => [t.ref, t.quantity, t.limitPrice, t.legs.length]), [[placed.ref, 2, 0.85, 2]]);
  assert.deepEqual(singles, []);
  const entries = await journal.entriesSince(0);
  assert.equal(entries.filter((e) => e.record.type === 'order' && (e.record as OrderRecord).legs).length, 1);
  await journal.close();
});

test('a venue without combos refuses them by name; so does the gate a combo beyond a limit', async () => {
  const { trader, ledger, journal } = await setup('refused', { tradesOptions: true, submit: () => {}, cancel: () => {}, close: () => {} });
  assert.deepEqual(trader.orderCombo({ legs: LEGS, quantity: 1, risk: RISK, reason: 'test' }), {
    ok: false,
    reason: 'SPY +1 20260105 580C -1 20260105 585C: this venue does not trade combos',
  });
  trader.venue = { tradesOptions: true, submit: () => {}, submitCombo: () => {}, cancel: () => {}, close: () => {} };
  assert.deepEqual(trader.orderCombo({ legs: LEGS, quantity: 6, risk: RISK, reason: 'test' }), { ok: false, reason: 'max contracts per order: 12 > 10 (SPY +1 20260105 580C -1 20260105 585C buy 6)' });
  assert.equal(ledger.orders.size, 0, 'nothing refused is journaled');
  await journal.close();
});
