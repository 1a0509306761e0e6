/** Market data, depth and tick-by-tick from the simulator, through the unmodified @stoqey/ib client, and IB's limits. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EventName, TickByTickDataType, type IBApi } from '@stoqey/ib';
import { ManualClock } from '../../src/clock.js';
import { ASK, BID, ROWS } from '../../src/sim/market.js';
import { TwsSimulator, type SimulatorOptions } from '../../src/sim/server.js';
import { barrier, connectClient, hashMessages, until } from '../support/ib-client.js';

const SPY = { symbol: 'SPY', secType: 'STK' as never, exchange: 'SMART', currency: 'USD' };
const AAPL = { ...SPY, symbol: 'AAPL' };

/** A simulator on a manual clock, so the market moves only when the test says. */
async function start(options: SimulatorOptions = {}) {
  const clock = new ManualClock();
  const sim = new TwsSimulator({ clock, updatesPerSecond: 1000, seed: 42, ...options });
  const port = await sim.listen(0);
  const client = await connectClient(port);
  const advance = async (ms: number) => {
    await clock.advance(ms);
    await barrier(client.ib);
  };
  return { sim, clock, port, ...client, advance, stop: async () => (client.ib.disconnect(), await sim.close()) };
}

/** A client-side book of `rows` rows per side, applying IB's position-based operations. */
function mirrorDepth(ib: IBApi, reqId: number, rows: number) {
  const book: [number, number][][] = [[], []];
  let updates = 0;
  ib.on(EventName.updateMktDepth, (id: number, position: number, operation: number, side: number, price: number, size: number) => {
    if (id !== reqId) return;
    updates++;
    const levels = book[side]!;
    if (operation === 0) levels.splice(position, 0, [price, size]);
    else if (operation === 1) levels[position] = [price, size];
    else levels.splice(position, 1);
    if (levels.length > rows) levels.length = rows;
  });
  return { book, updates: () => updates };
}

test('a depth subscription yields a book that matches the market row for row', async () => {
  const s = await start();
  try {
    const rows = 5;
    const mirror = mirrorDepth(s.ib, 7, rows);
    s.ib.reqMktDepth(7, SPY, rows, false, []);
    await s.advance(0);
    assert.equal(mirror.updates(), 2 * rows, 'the book arrives as one insert per row and side');
    for (let i = 0; i < 10; i++) await s.advance(100);
    assert.ok(mirror.updates() > 300, `only ${mirror.updates()} depth updates`);
    const market = s.sim.marketData.market.bookAt(0)!;
    for (const side of [ASK, BID] as const) {
      const expected = Array.from({ length: rows }, (_, r) => [market.price[side][r]! / 100, market.size[side][r]!]);
      assert.deepEqual(mirror.book[side], expected);
    }
    assert.deepEqual(s.errors, []);
  } finally {
    await s.stop();
  }
});

test('smart depth comes as MARKET_DEPTH_L2 rows with a venue on each', async () => {
  const s = await start();
  try {
    const venues = new Set<string>();
    let smart = 0;
    s.ib.on(EventName.updateMktDepthL2, (_id, _p, maker, _o, _s, _px, _sz, isSmart) => {
      venues.add(maker);
      if (isSmart) smart++;
    });
    s.ib.reqMktDepth(8, SPY, ROWS, true, []);
    await s.advance(100);
    assert.ok(smart >= 2 * ROWS);
    assert.ok(venues.size > 1 && [...venues].every((v) => /^[A-Z]{4}$/.test(v)));
  } finally {
    await s.stop();
  }
});

test('quotes: every bid or ask price is followed by its size, and trades move last and volume', async () => {
  const s = await start();
  try {
    const ticks: [string, number, number][] = [];
    s.ib.on(EventName.tickPrice, (_id, type, price) => ticks.push(['price', type, price]));
    s.ib.on(EventName.tickSize, (_id, type, size) => ticks.push(['size', type ?? -1, size ?? NaN]));
    s.ib.reqMktData(3, AAPL, '', false, false);
    await s.advance(500);
    const prices = ticks.filter(([k, t]) => k === 'price' && (t === 1 || t === 2));
    assert.ok(prices.length > 20);
    ticks.forEach(([kind, type], i) => {
      if (kind === 'price' && (type === 1 || type === 2)) {
        assert.deepEqual(ticks[i + 1]!.slice(0, 2), ['size', type === 1 ? 0 : 3], `tick ${i} has no size after it`);
      }
    });
    const volumes = ticks.filter(([k, t]) => k === 'size' && t === 8).map(([, , v]) => v);
    assert.ok(volumes.length > 2 && volumes.at(-1)! > volumes[0]!);
  } finally {
    await s.stop();
  }
});

test('tick-by-tick: BidAsk on top-of-book changes and AllLast on trades', async () => {
  const s = await start();
  try {
    const bidAsk: [number, number][] = [];
    const trades: number[] = [];
    s.ib.on(EventName.tickByTickBidAsk, (_id: number, _t: number, bid: number, ask: number) => bidAsk.push([bid, ask]));
    s.ib.on(EventName.tickByTickAllLast, (_id, _type, _t, price) => trades.push(price));
    s.ib.reqTickByTickData(4, SPY, TickByTickDataType.BidAsk, 0, false);
    s.ib.reqTickByTickData(5, SPY, TickByTickDataType.AllLast, 0, false);
    await s.advance(1_000);
    assert.ok(bidAsk.length > 10 && bidAsk.every(([b, a]) => b < a));
    assert.ok(trades.length > 10 && trades.every((p) => p > 500 && p < 700));
  } finally {
    await s.stop();
  }
});

test('IB limits: a 4th depth subscription gets 309, a reused ticker id 322, lines beyond the budget 101, an unknown symbol 200', async () => {
  const s = await start({ limits: { marketDataLines: 2 } });
  try {
    for (const [i, symbol] of ['SPY', 'QQQ', 'AAPL', 'MSFT'].entries()) s.ib.reqMktDepth(10 + i, { ...SPY, symbol }, 5, false, []);
    s.ib.reqMktData(20, SPY, '', false, false);
    s.ib.reqMktData(20, AAPL, '', false, false);
    s.ib.reqMktData(21, AAPL, '', false, false);
    s.ib.reqMktData(22, { ...SPY, symbol: 'MSFT' }, '', false, false);
    s.ib.reqMktData(23, { ...SPY, symbol: 'NOPE' }, '', false, false);
    await s.advance(0);
    assert.deepEqual(
      s.errors.map((e) => [e.reqId, e.code]),
      [[13, 309], [20, 322], [22, 101], [23, 200]],
    );
    s.ib.cancelMktDepth(10, false);
    s.ib.reqMktDepth(13, { ...SPY, symbol: 'MSFT' }, 5, false, []);
    await s.advance(0);
    assert.equal(s.errors.length, 4, 'a freed depth slot can be used again');
  } finally {
    await s.stop();
  }
});

test('more than 50 messages in a second: error 100, then the connection is closed', async () => {
  const s = await start();
  try {
    const closed = new Promise((resolve) => s.ib.once(EventName.disconnected, resolve));
    for (let i = 0; i < 60; i++) s.ib.reqCurrentTime();
    await closed;
    assert.equal(s.infos.at(-1), 100);
  } finally {
    await s.stop();
  }
});

/** The first `count` messages a client receives after subscribing, hashed. */
async function firstMessages(seed: number, count: number): Promise<string> {
  const s = await start({ seed });
  try {
    // Current-time answers are the test's own barriers; the market is the rest.
    const messages = hashMessages(s.ib, count, (tokens) => tokens[0] !== '49');
    s.ib.reqMktDepth(1, SPY, ROWS, false, []);
    s.ib.reqMktData(2, SPY, '', false, false);
    s.ib.reqTickByTickData(3, SPY, TickByTickDataType.AllLast, 0, false);
    while (messages.seen() < count) await s.advance(50);
    await until(() => messages.seen() >= count, `${count} messages`);
    return messages.digest();
  } finally {
    await s.stop();
  }
}

test('the simulator is deterministic: the same seed gives the same first 10,000 messages', async () => {
  const first = await firstMessages(42, 10_000);
  assert.equal(await firstMessages(42, 10_000), first);
  assert.notEqual(await firstMessages(43, 10_000), first);
});

test('after a farm outage every depth feed is reset (317) and sent the book afresh', async () => {
  const s = await start();
  try {
    const rows = 5;
    const mirror = mirrorDepth(s.ib, 9, rows);
    s.ib.on(EventName.error, (_e, code, reqId) => {
      if (Number(code) === 317 && reqId === 9) mirror.book.forEach((side) => (side.length = 0));
    });
    s.ib.reqMktDepth(9, SPY, rows, false, []);
    await s.advance(100);
    s.sim.faults.farmOutage(300);
    const during = mirror.updates();
    await s.advance(200);
    assert.equal(mirror.updates(), during, 'nothing is sent while the farm is down');
    await s.advance(200);
    assert.deepEqual(s.infos.slice(-2), [2103, 2104]);
    assert.deepEqual(s.errors.map((e) => e.code), [317]);
    const market = s.sim.marketData.market.bookAt(0)!;
    for (const side of [ASK, BID] as const) {
      assert.deepEqual(mirror.book[side], Array.from({ length: rows }, (_, r) => [market.price[side][r]! / 100, market.size[side][r]!]));
    }
  } finally {
    await s.stop();
  }
});
