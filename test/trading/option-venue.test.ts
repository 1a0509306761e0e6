/** The option venue's fill model on its own: quotes in, fills and statuses out, on a manual clock. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock } from '../../src/clock.js';
import { optionCommissionSchedule } from '../../src/trading/option-commissions.js';
import { OptionVenue, type OptionQuote } from '../../src/trading/option-venue.js';
import type { VenueEvent } from '../../src/trading/venue.js';

const CALL = 'SPY   260105C00580000';

function setup(quote: OptionQuote) {
  const clock = new ManualClock();
  const quotes = new Map<string, OptionQuote>([[CALL, quote]]);
  const events: VenueEvent[] = [];
  const venue = new OptionVenue({
    clock,
    quoteOf: (s) => quotes.get(s),
    multiplierOf: () => 100,
    latencyMs: 5,
    commissions: optionCommissionSchedule.parse({ orfPerContract: 0, occPerContract: 0, tafPerContractSold: 0, secFeeRate: 0 }),
    onEvent: (e) => events.push(e),
  });
  const fills = () => events.filter((e) => e.kind === 'fill').map((e) => (e.kind === 'fill' ? [e.quantity, e.price, e.commission] : []));
  const statuses = () => events.filter((e) => e.kind === 'status').map((e) => (e.kind === 'status' ? e.state : ''));
  return { clock, quotes, venue, events, fills, statuses };
}

const ticket = (ref: string, quantity: number, limitPrice: number, orderType: 'LMT' | 'MKT' = 'LMT') => ({ ref, symbol: CALL, quantity, orderType, limitPrice, brokerOrderId: undefined });

test('a marketable buy takes the ask up to its size; the rest goes on taking new size shown there', async () => {
  const s = setup({ bid: 1.2, ask: 1.25, bidSize: 10, askSize: 2 });
  s.venue.submit(ticket('a', 5, 1.3));
  assert.deepEqual(s.fills(), [], 'not before the latency');
  await s.clock.advance(5);
  assert.deepEqual(s.statuses(), ['working']);
  assert.deepEqual(s.fills(), [[2, 1.25, 1.3]]);
  s.venue.onQuotes();
  assert.deepEqual(s.fills(), [[2, 1.25, 1.3]], 'the same quote is not new liquidity');
  s.quotes.set(CALL, { bid: 1.21, ask: 1.26, bidSize: 10, askSize: 10 });
  s.venue.onQuotes();
  assert.deepEqual(s.fills(), [[2, 1.25, 1.3], [3, 1.26, 1.95]], 'the rest at the new ask: 5 × 0.65 = 3.25 in all');
  assert.deepEqual(s.venue.resting(), []);
});

test('a passive buy rests, and fills at its limit when the ask comes down to it; a cancel stops it', async () => {
  const s = setup({ bid: 1.2, ask: 1.25, bidSize: 10, askSize: 10 });
  s.venue.submit(ticket('p', 3, 1.22));
  await s.clock.advance(5);
  assert.deepEqual(s.fills(), []);
  s.quotes.set(CALL, { bid: 1.19, ask: 1.21, bidSize: 10, askSize: 1 });
  s.venue.onQuotes();
  assert.deepEqual(s.fills(), [[1, 1.22, 1]], 'through its price: one contract shown, at its limit');
  assert.deepEqual(s.venue.resting(), [{ ref: 'p', symbol: CALL, remaining: 2, limit: 1.22 }]);
  s.venue.cancel('p');
  assert.deepEqual(s.statuses(), ['working', 'cancelled']);
});

test('a sell takes the bid; a market order never rests; no quote, no order', async () => {
  const s = setup({ bid: 1.2, ask: 1.25, bidSize: 4, askSize: 10 });
  s.venue.submit(ticket('s', -6, NaN, 'MKT'));
  await s.clock.advance(5);
  assert.deepEqual(s.fills(), [[-4, 1.2, 2.6]]);
  assert.deepEqual(s.statuses(), ['working', 'cancelled']);
  assert.match((s.events.at(-1) as { reason: string }).reason, /market order: 2 contracts found no size at the touch/);
  const none = setup({ bid: NaN, ask: NaN, bidSize: 0, askSize: 0 });
  none.venue.submit(ticket('n', 1, 1));
  assert.deepEqual(none.statuses(), ['rejected']);
  assert.match((none.events[0] as { reason: string }).reason, /no two-sided quote for SPY {3}260105C00580000/);
});
