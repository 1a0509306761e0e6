/**
 * The book venue against real OrderBooks fed real depth batches and real
 * TradeBatch rows, on a ManualClock: walking the book, resting with a queue
 * estimate, fills from prints and from the other side crossing, latency,
 * cancels, IB fixed-pricing fees and rejects.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock } from '../../src/clock.js';
import { DepthBatch } from '../../src/ib/depth-feed.js';
import { TradeBatch } from '../../src/ib/trade-feed.js';
import { OrderBooks } from '../../src/market/books.js';
import { ASK, BID, DELETE, INSERT } from '../../src/market/order-book.js';
import { BookVenue } from '../../src/trading/book-venue.js';
import type { OrderTicket, VenueEvent } from '../../src/trading/venue.js';

const SPY = 0;
const QQQ = 1;
const SYMBOLS = new Map([
  ['SPY', SPY],
  ['QQQ', QQQ],
]);
const LATENCY = 5;

type Level = readonly [price: number, size: number];
type Fill = Extract<VenueEvent, { kind: 'fill' }>;
type Status = Extract<VenueEvent, { kind: 'status' }>;

function setup(
  options: { latencyMs?: number; feePerShare?: number; minFeePerOrder?: number; withBooks?: boolean; react?: (e: VenueEvent, venue: BookVenue) => void } = {},
) {
  const clock = new ManualClock();
  const books = new OrderBooks(2, 10);
  const events: VenueEvent[] = [];
  const venue = new BookVenue({
    clock,
    instrumentOf: (symbol) => SYMBOLS.get(symbol),
    books: () => (options.withBooks === false ? undefined : books),
    latencyMs: options.latencyMs ?? LATENCY,
    feePerShare: options.feePerShare ?? 0.005,
    minFeePerOrder: options.minFeePerOrder ?? 1,
    onEvent: (e) => {
      events.push(e);
      options.react?.(e, venue);
    },
  });
  const depth = new DepthBatch(64);
  /** Replaces the given sides of one book in one batch (deletes, then inserts), and tells the venue. */
  const show = (instrument: number, sides: { asks?: readonly Level[]; bids?: readonly Level[] }) => {
    depth.count = 0;
    const row = (operation: number, side: number, position: number, price: number, size: number) => {
      const n = depth.count++;
      depth.instrument[n] = instrument;
      depth.position[n] = position;
      depth.operation[n] = operation;
      depth.side[n] = side;
      depth.smart[n] = 0;
      depth.price[n] = price;
      depth.size[n] = size;
      depth.seq[n] = n;
      depth.receivedAt[n] = clock.now();
    };
    const book = books.book(instrument)!;
    for (const [side, levels] of [
      [ASK, sides.asks],
      [BID, sides.bids],
    ] as const) {
      if (levels === undefined) continue;
      for (let i = book.rowCount[side]!; i > 0; i--) row(DELETE, side, 0, 0, 0);
      levels.forEach(([price, size], i) => row(INSERT, side, i, price, size));
    }
    books.apply(depth);
    venue.onBooks(books);
  };
  const trades = new TradeBatch(16);
  /** One trade batch of prints on one instrument. */
  const print = (instrument: number, ...prints: Level[]) => {
    trades.count = 0;
    for (const [price, size] of prints) {
      const n = trades.count++;
      trades.instrument[n] = instrument;
      trades.price[n] = price;
      trades.size[n] = size;
      trades.seq[n] = n;
      trades.receivedAt[n] = clock.now();
    }
    venue.onTrades(trades);
  };
  const fills = (ref?: string) => events.filter((e): e is Fill => e.kind === 'fill' && (ref === undefined || e.ref === ref));
  const statuses = (ref?: string) => events.filter((e): e is Status => e.kind === 'status' && (ref === undefined || e.ref === ref));
  return { clock, books, venue, events, show, print, fills, statuses };
}

const limit = (ref: string, quantity: number, limitPrice: number, symbol = 'SPY'): OrderTicket => ({ ref, symbol, quantity, orderType: 'LMT', limitPrice });
const market = (ref: string, quantity: number, symbol = 'SPY'): OrderTicket => ({ ref, symbol, quantity, orderType: 'MKT', limitPrice: NaN });
const brief = (f: Fill) => [f.quantity, f.price];

const ASKS: Level[] = [
  [100.0, 100],
  [100.01, 200],
  [100.02, 300],
  [100.05, 500],
];
const BIDS: Level[] = [
  [99.99, 300],
  [99.98, 400],
  [99.97, 500],
];

test('a marketable buy walks three levels, one fill per level at its price; the limit remainder rests at queue 0', async () => {
  const { clock, venue, show, fills, statuses, events } = setup();
  show(SPY, { asks: ASKS, bids: BIDS });
  venue.submit(limit('b1', 1000, 100.02));
  await clock.advance(LATENCY);
  assert.equal(events[0]!.kind, 'status');
  assert.equal(statuses('b1')[0]!.state, 'working');
  assert.deepEqual(fills('b1').map(brief), [
    [100, 100.0],
    [200, 100.01],
    [300, 100.02],
  ]);
  const filled = fills('b1').reduce((n, f) => n + f.quantity, 0);
  const average = fills('b1').reduce((v, f) => v + f.quantity * f.price, 0) / filled;
  assert.equal(filled, 600);
  assert.ok(Math.abs(average - (100 * 100 + 200 * 100.01 + 300 * 100.02) / 600) < 1e-9);
  assert.deepEqual(
    fills('b1').map((f) => f.execId),
    ['book.b1.1', 'book.b1.2', 'book.b1.3'],
  );
  assert.ok(fills('b1').every((f) => f.at === clock.wallNow() && f.symbol === 'SPY'));
  // 100.02 is better than the best bid: a new level, nobody ahead.
  assert.deepEqual(venue.resting(), [{ ref: 'b1', symbol: 'SPY', remaining: 400, limitPrice: 100.02, queueAhead: 0 }]);
  // The same displayed asks again (the feed does not know we took them): no second fill.
  show(SPY, { asks: ASKS });
  assert.equal(fills('b1').length, 3);
  assert.equal(statuses('b1').length, 1);
});

test('a buy that the first levels fill is done: no rest, no status after the fills', async () => {
  const { clock, venue, show, fills, statuses } = setup();
  show(SPY, { asks: ASKS, bids: BIDS });
  venue.submit(limit('b', 250, 100.05));
  await clock.advance(LATENCY);
  assert.deepEqual(fills('b').map(brief), [
    [100, 100.0],
    [150, 100.01],
  ]);
  assert.deepEqual(venue.resting(), []);
  assert.deepEqual(
    statuses('b').map((s) => s.state),
    ['working'],
  );
});

test('a market sell takes the bids and its unfilled rest is cancelled; with no liquidity it is cancelled at once', async () => {
  const { clock, venue, show, fills, statuses } = setup();
  show(SPY, { asks: ASKS, bids: BIDS });
  venue.submit(market('s', -1500));
  await clock.advance(LATENCY);
  assert.deepEqual(fills('s').map(brief), [
    [-300, 99.99],
    [-400, 99.98],
    [-500, 99.97],
  ]);
  assert.deepEqual(
    statuses('s').map((s) => [s.state, s.reason]),
    [
      ['working', undefined],
      ['cancelled', 'market order: no more liquidity in the book'],
    ],
  );
  assert.deepEqual(venue.resting(), []);

  // QQQ has no levels at all.
  venue.submit(market('q', 10, 'QQQ'));
  await clock.advance(LATENCY);
  assert.deepEqual(fills('q'), []);
  assert.deepEqual(
    statuses('q').map((s) => [s.state, s.reason]),
    [
      ['working', undefined],
      ['cancelled', 'no liquidity'],
    ],
  );
});

test('no books yet: a market order is cancelled for no liquidity, a limit order rests', async () => {
  const { clock, venue, fills, statuses } = setup({ withBooks: false });
  venue.submit(market('m', 10));
  venue.submit(limit('l', 10, 100));
  await clock.advance(LATENCY);
  assert.deepEqual(fills(), []);
  assert.deepEqual(statuses('m').at(-1)!.reason, 'no liquidity');
  assert.deepEqual(
    venue.resting().map((r) => [r.ref, r.remaining, r.queueAhead]),
    [['l', 10, 0]],
  );
});

test('a passive buy waits for the queue ahead to trade; a print through its price fills it at once, at its limit', async () => {
  const { clock, venue, show, print, fills } = setup();
  show(SPY, { asks: ASKS, bids: BIDS });
  venue.submit(limit('p', 200, 99.99));
  await clock.advance(LATENCY);
  assert.deepEqual(fills('p'), []);
  assert.equal(venue.resting()[0]!.queueAhead, 300);

  print(SPY, [99.99, 200]);
  assert.deepEqual(fills('p'), []);
  assert.equal(venue.resting()[0]!.queueAhead, 100);
  // Above a buy's limit, or another instrument: nothing.
  print(SPY, [100.0, 500]);
  print(QQQ, [99.99, 500]);
  assert.deepEqual(fills('p'), []);
  // 100 more eats the rest of the queue; the excess 50 is ours.
  print(SPY, [99.99, 150]);
  assert.deepEqual(fills('p').map(brief), [[50, 99.99]]);
  assert.equal(venue.resting()[0]!.queueAhead, 0);
  // A print below our bid: whoever sold there would have hit us first.
  print(SPY, [99.98, 120]);
  assert.deepEqual(fills('p').map(brief), [
    [50, 99.99],
    [120, 99.99],
  ]);
  print(SPY, [99.97, 1000]);
  assert.deepEqual(fills('p').map(brief), [
    [50, 99.99],
    [120, 99.99],
    [30, 99.99],
  ]);
  assert.deepEqual(venue.resting(), []);
  // Done: more prints do nothing.
  print(SPY, [99.9, 1000]);
  assert.equal(fills('p').length, 3);
});

test('a passive sell mirrors it: prints at its offer after the queue, above it at once', async () => {
  const { clock, venue, show, print, fills } = setup();
  show(SPY, { asks: ASKS, bids: BIDS });
  venue.submit(limit('s', -100, 100.01));
  await clock.advance(LATENCY);
  assert.equal(venue.resting()[0]!.queueAhead, 200);
  print(SPY, [100.0, 1000], [100.01, 250]);
  assert.deepEqual(fills('s').map(brief), [[-50, 100.01]]);
  print(SPY, [100.03, 10]);
  assert.deepEqual(fills('s').map(brief), [
    [-50, 100.01],
    [-10, 100.01],
  ]);
});

test('the other side crossing into a resting order fills it at its limit, once per displayed size', async () => {
  const { clock, venue, show, fills } = setup();
  show(SPY, { asks: ASKS, bids: BIDS });
  venue.submit(limit('c', 100, 99.99));
  await clock.advance(LATENCY);
  // Asks come down to our bid: 40 offered at 99.99.
  show(SPY, { asks: [[99.99, 40], ...ASKS] });
  assert.deepEqual(fills('c').map(brief), [[40, 99.99]]);
  // Same display again (another instrument's update too): nothing new to take.
  show(SPY, { asks: [[99.99, 40], ...ASKS] });
  show(QQQ, { asks: [[50, 10]] });
  assert.equal(fills('c').length, 1);
  // A better offer appears under it: 100 more within our limit, we need 60, at our price.
  show(SPY, { asks: [[99.98, 100], [99.99, 40], ...ASKS] });
  assert.deepEqual(fills('c').map(brief), [
    [40, 99.99],
    [60, 99.99],
  ]);
  assert.deepEqual(venue.resting(), []);
});

test('the queue ahead shrinks with the displayed size at our price, never grows, and is gone with the level', async () => {
  const { clock, venue, show } = setup();
  show(SPY, { asks: ASKS, bids: BIDS });
  venue.submit(limit('q', 100, 99.98));
  await clock.advance(LATENCY);
  assert.equal(venue.resting()[0]!.queueAhead, 400);
  show(SPY, { bids: [[99.99, 300], [99.98, 150], [99.97, 500]] });
  assert.equal(venue.resting()[0]!.queueAhead, 150);
  // Size added at our price joins behind us.
  show(SPY, { bids: [[99.99, 300], [99.98, 900], [99.97, 500]] });
  assert.equal(venue.resting()[0]!.queueAhead, 150);
  show(SPY, { bids: [[99.99, 300], [99.97, 500]] });
  assert.equal(venue.resting()[0]!.queueAhead, 0);
});

test('latency: nothing reaches the market before latencyMs; a cancel in flight stops the order with no fill', async () => {
  const { clock, venue, show, fills, statuses, events } = setup({ latencyMs: 20 });
  show(SPY, { asks: ASKS, bids: BIDS });
  venue.submit(limit('late', 100, 100.0));
  venue.submit(limit('stopped', 100, 100.0));
  await clock.advance(19);
  assert.deepEqual(events, []);
  venue.cancel('stopped');
  assert.deepEqual(
    statuses('stopped').map((s) => [s.state, s.reason]),
    [['cancelled', 'cancelled by request']],
  );
  await clock.advance(1);
  assert.deepEqual(fills('late').map(brief), [[100, 100.0]]);
  await clock.advance(1000);
  assert.deepEqual(fills('stopped'), []);
  assert.equal(statuses('stopped').length, 1);
});

test('cancel: a resting order is cancelled; an unknown or finished ref is ignored', async () => {
  const { clock, venue, show, print, fills, statuses } = setup();
  show(SPY, { asks: ASKS, bids: BIDS });
  venue.submit(limit('r', 100, 99.9));
  venue.submit(limit('done', 50, 100.0));
  await clock.advance(LATENCY);
  venue.cancel('r');
  assert.deepEqual(statuses('r').at(-1), { kind: 'status', ref: 'r', state: 'cancelled', reason: 'cancelled by request', at: clock.wallNow() });
  assert.deepEqual(venue.resting(), []);
  print(SPY, [99.0, 1000]);
  assert.deepEqual(fills('r'), []);
  const before = statuses().length;
  venue.cancel('done');
  venue.cancel('nobody');
  venue.cancel('r');
  assert.equal(statuses().length, before);
});

test('fees: the minimum on the first fill, then only what the per-share total exceeds it by', async () => {
  const { clock, venue, show, fills } = setup();
  show(SPY, { asks: ASKS, bids: BIDS });
  venue.submit(limit('f', 800, 100.05));
  await clock.advance(LATENCY);
  // Totals after each fill: max(1, 0.5) = 1, max(1, 1.5) = 1.5, max(1, 3) = 3, max(1, 4) = 4.
  assert.deepEqual(
    fills('f').map((f) => [f.quantity, f.commission]),
    [
      [100, 1],
      [200, 0.5],
      [300, 1.5],
      [200, 1],
    ],
  );
  // A large first fill pays its per-share total; rounding to 4 decimals.
  const odd = setup({ feePerShare: 0.0035, minFeePerOrder: 0.35 });
  odd.show(SPY, { asks: [[100, 333], [100.01, 1]] });
  odd.venue.submit(market('o', 334));
  await odd.clock.advance(LATENCY);
  assert.deepEqual(
    odd.fills('o').map((f) => f.commission),
    [1.1655, 0.0035],
  );
});

test('rejects: unknown symbol, bad quantity, limit order without a usable limit', () => {
  const { venue, statuses, fills } = setup();
  venue.submit(limit('u', 10, 100, 'NOPE'));
  venue.submit(limit('z', 0, 100));
  venue.submit(limit('h', 1.5, 100));
  venue.submit(limit('n', 10, NaN));
  venue.submit(limit('i', 10, Infinity));
  venue.submit(limit('neg', -10, -1));
  const reasons = Object.fromEntries(statuses().map((s) => [s.ref, s.reason]));
  assert.ok(statuses().every((s) => s.state === 'rejected'));
  assert.match(reasons.u!, /unknown symbol NOPE/);
  assert.match(reasons.z!, /quantity 0 is not a non-zero whole number/);
  assert.match(reasons.h!, /quantity 1.5/);
  assert.match(reasons.n!, /limit price NaN/);
  assert.match(reasons.i!, /limit price Infinity/);
  assert.match(reasons.neg!, /limit price -1/);
  assert.equal(Object.keys(reasons).length, 6);
  assert.deepEqual(fills(), []);
});

test('two resting orders at one price share a print oldest first, the later one behind the same displayed queue', async () => {
  const { clock, venue, show, print, fills } = setup();
  show(SPY, { asks: ASKS, bids: [[99.99, 50], ...BIDS.slice(1)] });
  venue.submit(limit('old', 100, 99.99));
  await clock.advance(1);
  venue.submit(limit('new', 100, 99.99));
  await clock.advance(LATENCY);
  assert.deepEqual(
    venue.resting().map((r) => [r.ref, r.queueAhead]),
    [
      ['old', 50],
      ['new', 50],
    ],
  );
  // 40: both queues shrink by it (it is one queue), nobody fills.
  print(SPY, [99.99, 40]);
  assert.deepEqual(
    venue.resting().map((r) => [r.ref, r.queueAhead]),
    [
      ['old', 10],
      ['new', 10],
    ],
  );
  // 140: 10 queue, 100 to the older order, 30 to the newer.
  print(SPY, [99.99, 140]);
  assert.deepEqual(fills('old').map(brief), [[100, 99.99]]);
  assert.deepEqual(fills('new').map(brief), [[30, 99.99]]);
  assert.deepEqual(
    venue.resting().map((r) => [r.ref, r.remaining]),
    [['new', 70]],
  );
});

test('a better-priced resting order is filled before an older one at a worse price', async () => {
  const { clock, venue, show, print, fills } = setup();
  show(SPY, { asks: ASKS, bids: BIDS });
  venue.submit(limit('worse', 100, 99.9));
  await clock.advance(LATENCY);
  venue.submit(limit('better', 100, 99.95));
  await clock.advance(LATENCY);
  print(SPY, [99.8, 150]);
  assert.deepEqual(fills('better').map(brief), [[100, 99.95]]);
  assert.deepEqual(fills('worse').map(brief), [[50, 99.9]]);
});

test('a listener that cancels on a fill, and close(): orders in flight never arrive', async () => {
  // Cancels the other one from inside the fill event, mid-sweep.
  const { clock, venue, show, print, fills, statuses } = setup({
    react: (e, self) => {
      if (e.kind === 'fill' && e.ref === 'a') self.cancel('b');
    },
  });
  show(SPY, { asks: ASKS, bids: BIDS });
  venue.submit(limit('a', 100, 99.9));
  venue.submit(limit('b', 100, 99.9));
  await clock.advance(LATENCY);
  print(SPY, [99.8, 500]);
  assert.deepEqual(fills('a').map(brief), [[100, 99.9]]);
  assert.deepEqual(fills('b'), []);
  assert.equal(statuses('b').at(-1)!.state, 'cancelled');
  assert.deepEqual(venue.resting(), []);

  venue.submit(limit('late', 100, 100.05));
  venue.close();
  await clock.advance(1000);
  assert.deepEqual(fills('late'), []);
  assert.deepEqual(statuses('late'), []);
});

test('a price deeper than a full side shows has an unknown queue: prints at it never fill, prints through it do', async () => {
  const { clock, venue, show, print, fills } = setup();
  const tenBids: Level[] = Array.from({ length: 10 }, (_, i) => [Math.round((99.99 - i * 0.01) * 100) / 100, 100]);
  show(SPY, { asks: ASKS, bids: tenBids });
  venue.submit(limit('deep', 100, 99.5));
  await clock.advance(LATENCY);
  assert.equal(venue.resting()[0]!.queueAhead, Infinity);
  print(SPY, [99.5, 10_000]);
  assert.deepEqual(fills('deep'), []);
  // The level comes into view (the book thins out): its displayed size is the queue.
  show(SPY, { bids: [[99.99, 100], [99.5, 70]] });
  assert.equal(venue.resting()[0]!.queueAhead, 70);
  print(SPY, [99.49, 30]);
  assert.deepEqual(fills('deep').map(brief), [[30, 99.5]]);
});
