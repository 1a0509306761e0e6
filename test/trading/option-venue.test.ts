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

const C585 = 'SPY   260105C00585000';
/** Buy the 580/585 call vertical: +1 of the 580, -1 of the 585, `quantity` combos at a net limit. */
const vertical = (ref: string, quantity: number, limitPrice: number, ratio = -1) => ({
  ...ticket(ref, quantity, limitPrice),
  symbol: `SPY +1 20260105 580C ${ratio} 20260105 585C`,
  legs: [
    { symbol: CALL, option: { conId: 1, underlying: 'SPY', expiry: '20260105', strike: 580, right: 'C' as const, multiplier: 100 }, ratio: 1, price: 1.25 },
    { symbol: C585, option: { conId: 2, underlying: 'SPY', expiry: '20260105', strike: 585, right: 'C' as const, multiplier: 100 }, ratio, price: 0.4 },
  ],
});
const fillsOf = (s: ReturnType<typeof setup>) => s.events.flatMap((e) => (e.kind === 'fill' ? [[e.execId, e.symbol === CALL ? 580 : 585, e.quantity, e.price, e.commission]] : []));

test('a combo fills all legs at once when the net of the touches reaches its limit, up to the smallest size shown, each leg at its own touch', async () => {
  const s = setup({ bid: 1.2, ask: 1.25, bidSize: 10, askSize: 3 });
  s.quotes.set(C585, { bid: 0.4, ask: 0.45, bidSize: 4, askSize: 10 });
  s.venue.submitCombo(vertical('v', 5, 0.85));
  await s.clock.advance(5);
  // Net 1.25 - 0.40 = 0.85: at the limit; 3 at the 580's ask, 4 at the 585's bid: 3 combos.
  assert.deepEqual(fillsOf(s), [
    ['v.c1.1', 580, 3, 1.25, 1.95],
    ['v.c1.2', 585, -3, 0.4, 1.95],
  ]);
  s.venue.onQuotes();
  assert.equal(fillsOf(s).length, 2, 'the same quotes are not new liquidity');
  s.quotes.set(CALL, { bid: 1.2, ask: 1.25, bidSize: 10, askSize: 10 });
  s.quotes.set(C585, { bid: 0.38, ask: 0.43, bidSize: 10, askSize: 10 });
  s.venue.onQuotes();
  assert.equal(fillsOf(s).length, 2, 'net 0.87 is beyond the limit: no leg fills');
  assert.deepEqual(s.venue.resting(), [{ ref: 'v', symbol: 'SPY +1 20260105 580C -1 20260105 585C', remaining: 2, limit: 0.85 }]);
  s.quotes.set(C585, { bid: 0.41, ask: 0.46, bidSize: 10, askSize: 10 });
  s.venue.onQuotes();
  assert.deepEqual(fillsOf(s).slice(2), [
    ['v.c2.1', 580, 2, 1.25, 1.3],
    ['v.c2.2', 585, -2, 0.41, 1.3],
  ], 'net 0.84, better than the limit: the rest, each leg at its touch');
  assert.deepEqual(s.venue.resting(), []);
  assert.deepEqual(s.statuses(), ['working']);
});

test("a combo sold takes the bought leg's bid and the sold leg's ask; ratios scale the sizes; a resting combo cancels", async () => {
  const s = setup({ bid: 1.2, ask: 1.25, bidSize: 10, askSize: 10 });
  s.quotes.set(C585, { bid: 0.4, ask: 0.45, bidSize: 10, askSize: 5 });
  s.venue.submitCombo(vertical('out', -1, 0.75));
  await s.clock.advance(5);
  assert.deepEqual(fillsOf(s), [
    ['out.c1.1', 580, -1, 1.2, 1],
    ['out.c1.2', 585, 1, 0.45, 1],
  ], 'sold for 1.20 - 0.45 = 0.75, each leg its own minimum');
  // 1 x 2: five shown at the 585's ask are two combos' worth.
  s.venue.submitCombo(vertical('ratio', -4, 0.3, -2));
  await s.clock.advance(5);
  assert.deepEqual(fillsOf(s).slice(2).map((f) => f.slice(1, 4)), [
    [580, -2, 1.2],
    [585, 4, 0.45],
  ]);
  s.venue.submitCombo(vertical('rest', 1, 0.7));
  await s.clock.advance(5);
  assert.equal(s.venue.resting().length, 2);
  s.venue.cancel('rest');
  s.venue.cancel('ratio');
  assert.deepEqual(s.venue.resting(), []);
  assert.deepEqual(s.statuses(), ['working', 'working', 'working', 'cancelled', 'cancelled']);
  assert.equal(fillsOf(s).length, 4);
});

test('a combo is rejected, naming why: a leg without a quote, no net limit, one leg', () => {
  const s = setup({ bid: 1.2, ask: 1.25, bidSize: 10, askSize: 10 });
  s.venue.submitCombo(vertical('q', 1, 0.85));
  s.quotes.set(C585, { bid: 0.4, ask: 0.45, bidSize: 10, askSize: 10 });
  s.venue.submitCombo({ ...vertical('m', 1, NaN), orderType: 'MKT' });
  const one = vertical('one', 1, 1.25);
  s.venue.submitCombo({ ...one, legs: one.legs.slice(0, 1) });
  const reasons = s.events.map((e) => (e.kind === 'status' ? `${e.ref} ${e.state}: ${e.reason}` : ''));
  assert.deepEqual(reasons, [
    `q rejected: no two-sided quote for ${C585}: it is not in the streamed band (or not quoted yet)`,
    'm rejected: a combo needs a net limit price (MKT NaN)',
    'one rejected: a combo of 1 leg is not a combo',
  ]);
});

test('a resting buy fills at its limit on a new print at or below it, up to the print size; prints before it arrived, above it, or seen before do not fill it', async () => {
  const s = setup({ bid: 1.2, ask: 1.25, bidSize: 10, askSize: 10, last: 1.19, lastSize: 5, prints: 3 });
  s.venue.submit(ticket('p', 4, 1.22));
  await s.clock.advance(5);
  s.venue.onQuotes();
  assert.deepEqual(s.fills(), [], 'the print at 1.19 came before the order reached the market');
  s.quotes.set(CALL, { bid: 1.2, ask: 1.25, bidSize: 10, askSize: 10, last: 1.25, lastSize: 5, prints: 4 });
  s.venue.onQuotes();
  assert.deepEqual(s.fills(), [], 'a print above a buy limit does not reach it');
  s.quotes.set(CALL, { bid: 1.2, ask: 1.25, bidSize: 10, askSize: 10, last: 1.22, lastSize: 3, prints: 5 });
  s.venue.onQuotes();
  s.venue.onQuotes();
  assert.deepEqual(s.fills(), [[3, 1.22, 1.95]], 'at its limit, three of the print, once');
  s.quotes.set(CALL, { bid: 1.2, ask: 1.25, bidSize: 10, askSize: 10, last: 1.2, lastSize: 10, prints: 6 });
  s.venue.onQuotes();
  assert.deepEqual(s.fills(), [[3, 1.22, 1.95], [1, 1.22, 0.65]], 'a print through it: the rest, still at its limit');
  assert.deepEqual(s.venue.resting(), []);
  assert.deepEqual(s.events.flatMap((e) => (e.kind === 'fill' ? [e.execId] : [])), ['p.p1', 'p.p2']);
});

test('a resting sell fills at its limit on a new print at or above it; a crossed order that rests on takes prints too', async () => {
  const s = setup({ bid: 1.2, ask: 1.25, bidSize: 2, askSize: 10, prints: 0 });
  s.venue.submit(ticket('s', -5, 1.2));
  await s.clock.advance(5);
  assert.deepEqual(s.fills(), [[-2, 1.2, 1.3]], 'it takes the bid first');
  s.quotes.set(CALL, { bid: 1.18, ask: 1.25, bidSize: 10, askSize: 10, last: 1.19, lastSize: 5, prints: 1 });
  s.venue.onQuotes();
  assert.equal(s.fills().length, 1, 'a print below a sell limit does not reach it');
  s.quotes.set(CALL, { bid: 1.18, ask: 1.25, bidSize: 10, askSize: 10, last: 1.25, lastSize: 2, prints: 2 });
  s.venue.onQuotes();
  assert.deepEqual(s.fills().slice(1), [[-2, 1.2, 1.3]], 'a print at 1.25 trades through it: two at its limit');
  assert.deepEqual(s.venue.resting(), [{ ref: 's', symbol: CALL, remaining: -1, limit: 1.2 }]);
});

test('a print count begun again (the contract left the band and came back) is no new print until it grows', async () => {
  const s = setup({ bid: 1.2, ask: 1.25, bidSize: 10, askSize: 10, last: 1.21, lastSize: 5, prints: 7 });
  s.venue.submit(ticket('b', 2, 1.22));
  await s.clock.advance(5);
  s.quotes.set(CALL, { bid: 1.2, ask: 1.25, bidSize: 10, askSize: 10, last: 1.21, lastSize: 5, prints: 0 });
  s.venue.onQuotes();
  assert.deepEqual(s.fills(), [], 'the last print as the line reports it again is not a new one');
  s.quotes.set(CALL, { bid: 1.2, ask: 1.25, bidSize: 10, askSize: 10, last: 1.22, lastSize: 1, prints: 1 });
  s.venue.onQuotes();
  assert.deepEqual(s.fills(), [[1, 1.22, 1]]);
});
