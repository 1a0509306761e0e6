/**
 * SPY combos (BAG) and exercise instructions at the simulated broker,
 * through the unmodified @stoqey/ib client: a vertical filled all legs at
 * once at a net within its limit, each leg reported with its own contract,
 * price and commission and held as its own position; a combo not marketable
 * resting until the quotes come to it, or cancelled; the refusals (10058
 * per-leg prices on three legs, 200 an unknown leg); and a lapse
 * instruction letting an in-the-money call expire at the close while one
 * without it is exercised.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  EventName, OptionExerciseAction, OrderAction, OrderStatus, OrderType, SecType,
  type CommissionReport, type Contract, type Execution, type Order,
} from '@stoqey/ib';
import { ManualClock } from '../../src/clock.js';
import { OPTION_COMMISSIONS } from '../../src/sim/broker.js';
import { comboTouch } from '../../src/sim/options/combo.js';
import { TwsSimulator } from '../../src/sim/server.js';
import { OptionOrderCost } from '../../src/trading/option-commissions.js';
import { barrier, connectClient, type ClientError } from '../support/ib-client.js';

const ACCOUNT = 'DU1234567';
const EXPIRY = '20260105';

/** A simulator on a manual clock, a client, and what the client heard. */
async function start(wallOrigin: number) {
  const clock = new ManualClock(0, wallOrigin);
  const sim = new TwsSimulator({ clock, updatesPerSecond: 100, seed: 7 });
  const port = await sim.listen(0);
  const { ib, errors } = await connectClient(port);
  const seen: [EventName, unknown[]][] = [];
  for (const name of [EventName.openOrder, EventName.orderStatus, EventName.execDetails, EventName.commissionReport]) {
    ib.addListener(name, (...args: unknown[]) => seen.push([name, args]));
  }
  const advance = async (ms: number) => {
    await barrier(ib);
    await clock.advance(ms);
    await barrier(ib);
  };
  const spy = sim.marketData.market.book(sim.instruments.find(0, 'SPY', 'STK')!);
  const atTheMoney = Math.round((spy.bestBid() + spy.bestAsk()) / 200);
  const call = (strike: number) => sim.options.listing.select(EXPIRY, strike, 'C')[0]!;
  const stop = async () => {
    ib.disconnect();
    await sim.close();
  };
  return { clock, sim, ib, errors, seen, advance, atTheMoney, call, stop };
}

function events<T extends unknown[]>(seen: [EventName, unknown[]][], name: EventName): T[] {
  return seen.filter(([n]) => n === name).map(([, args]) => args as T);
}

const bag = (legs: [conId: number, action: OrderAction, ratio?: number][]): Contract => ({
  symbol: 'SPY', secType: SecType.BAG, exchange: 'SMART', currency: 'USD',
  comboLegs: legs.map(([conId, action, ratio = 1]) => ({ conId, ratio, action, exchange: 'SMART' })),
});
const limit = (action: OrderAction, totalQuantity: number, lmtPrice: number, extra: Partial<Order> = {}): Order => ({
  action, totalQuantity, orderType: OrderType.LMT, lmtPrice, transmit: true, ...extra,
});
const cents = (price: number) => Math.round(price * 100) / 100;

/** Monday 2026-01-05 10:00 New York. */
const MORNING = Date.UTC(2026, 0, 5, 15, 0);

test('a vertical bought and sold as a combo: all legs at once, each at its own touch, the net within the limit, a position per leg', { timeout: 60_000 }, async () => {
  const { sim, ib, errors, seen, advance, atTheMoney, call, stop } = await start(MORNING);
  try {
    const [low, high] = [call(atTheMoney), call(atTheMoney + 2)];
    const legs = () => [low, high].map((o, i) => ({ action: i === 0 ? 'BUY' : 'SELL', ratio: 1, quote: sim.options.tradedQuote(o.conId)! }) as const);
    await advance(0);
    const buyTouch = comboTouch('BUY', legs())!;
    assert.ok(buyTouch.size >= 2, `the legs show ${buyTouch.size} combos`);
    const buyLimit = cents(buyTouch.net + 0.5);
    ib.placeOrder(1, bag([[low.conId, OrderAction.BUY], [high.conId, OrderAction.SELL]]), limit(OrderAction.BUY, 2, buyLimit, { orderRef: 'vertical' }));
    await advance(10);

    assert.deepEqual(errors, []);
    const executions = events<[number, Contract, Execution]>(seen, EventName.execDetails);
    assert.deepEqual(
      executions.map(([reqId, c, e]) => [reqId, c.conId, c.secType, c.localSymbol, c.strike, c.right, c.multiplier, e.orderId, e.side, e.shares, e.price, e.orderRef]),
      [
        [-1, low.conId, 'OPT', low.localSymbol, low.strike, 'C', 100, 1, 'BOT', 2, buyTouch.legs[0]!.price, 'vertical'],
        [-1, high.conId, 'OPT', high.localSymbol, high.strike, 'C', 100, 1, 'SLD', 2, buyTouch.legs[1]!.price, 'vertical'],
      ],
      'one execution per leg, each at its own touch',
    );
    const reports = events<[CommissionReport]>(seen, EventName.commissionReport).map(([r]) => [r.execId, r.commission]);
    assert.deepEqual(reports, [
      [executions[0]![2].execId, new OptionOrderCost(OPTION_COMMISSIONS).fill(2, buyTouch.legs[0]!.price, 100)],
      [executions[1]![2].execId, new OptionOrderCost(OPTION_COMMISSIONS).fill(-2, buyTouch.legs[1]!.price, 100)],
    ]);
    const statuses = events<[number, string, number, number, number]>(seen, EventName.orderStatus);
    const [, status, filled, remaining, avgFillPrice] = statuses.at(-1)!;
    assert.deepEqual([status, filled, remaining], [OrderStatus.Filled, 2, 0]);
    assert.ok(Math.abs(avgFillPrice - buyTouch.net) < 1e-9 && avgFillPrice <= buyLimit, `net ${avgFillPrice}, limit ${buyLimit}`);
    // The order as TWS shows it: the BAG with its legs.
    const [, contract, order] = events<[number, Contract, Order]>(seen, EventName.openOrder).at(-1)!;
    assert.deepEqual([contract.secType, contract.symbol, order.lmtPrice, order.totalQuantity], ['BAG', 'SPY', buyLimit, 2]);
    const unset = { openClose: 0, shortSaleSlot: 0, designatedLocation: '', exemptCode: -1 };
    assert.deepEqual(contract.comboLegs, [
      { conId: low.conId, ratio: 1, action: 'BUY', exchange: 'SMART', ...unset },
      { conId: high.conId, ratio: 1, action: 'SELL', exchange: 'SMART', ...unset },
    ]);
    assert.deepEqual([sim.broker.positionOf(ACCOUNT, low.localSymbol)!.position, sim.broker.positionOf(ACCOUNT, high.localSymbol)!.position], [2, -2]);

    // Sold back: the buy leg sold at its bid, the sell leg bought back at its ask.
    seen.length = 0;
    const sellTouch = comboTouch('SELL', legs())!;
    assert.ok(sellTouch.size >= 2, `the legs show ${sellTouch.size} combos`);
    const sellLimit = cents(sellTouch.net - 0.5);
    ib.placeOrder(2, bag([[low.conId, OrderAction.BUY], [high.conId, OrderAction.SELL]]), limit(OrderAction.SELL, 2, sellLimit));
    await advance(10);
    assert.deepEqual(errors, []);
    assert.deepEqual(
      events<[number, Contract, Execution]>(seen, EventName.execDetails).map(([, c, e]) => [c.conId, e.side, e.shares, e.price]),
      [[low.conId, 'SLD', 2, sellTouch.legs[0]!.price], [high.conId, 'BOT', 2, sellTouch.legs[1]!.price]],
    );
    const [, sold, , , soldAt] = events<[number, string, number, number, number]>(seen, EventName.orderStatus).at(-1)!;
    assert.ok(sold === OrderStatus.Filled && soldAt >= sellLimit && Math.abs(soldAt - sellTouch.net) < 1e-9, `${sold} at ${soldAt}, limit ${sellLimit}`);
    assert.deepEqual([sim.broker.positionOf(ACCOUNT, low.localSymbol)!.position, sim.broker.positionOf(ACCOUNT, high.localSymbol)!.position], [0, 0]);
  } finally {
    await stop();
  }
});

test('combos refused: per-leg prices on three legs (10058), a leg that is not listed (200), fewer than two legs (321)', { timeout: 30_000 }, async () => {
  const { ib, errors, seen, advance, atTheMoney, call, stop } = await start(MORNING);
  try {
    const [a, b, c] = [call(atTheMoney - 1), call(atTheMoney), call(atTheMoney + 1)];
    const fly = bag([[a.conId, OrderAction.BUY], [b.conId, OrderAction.SELL, 2], [c.conId, OrderAction.BUY]]);
    ib.placeOrder(1, fly, limit(OrderAction.BUY, 1, 0.5, { orderComboLegs: [{ price: 1.5 }, { price: 1 }, { price: 0.5 }] }));
    ib.placeOrder(2, bag([[a.conId, OrderAction.BUY], [1, OrderAction.SELL]]), limit(OrderAction.BUY, 1, 0.5));
    ib.placeOrder(3, bag([[a.conId, OrderAction.BUY]]), limit(OrderAction.BUY, 1, 0.5));
    await advance(10);
    assert.deepEqual(errors.map((e: ClientError) => [e.reqId, e.code, e.message]), [
      [1, 10058, 'Per-leg prices are supported only on two-leg combos; this one has 3 legs'],
      [2, 200, 'No security definition has been found for the request: combo leg 2, conId 1, is not a listed SPY option'],
      [3, 321, "Error validating request:-'bO' : cause - a combo needs at least two legs, got 1"],
    ]);
    assert.deepEqual(events(seen, EventName.execDetails), []);
  } finally {
    await stop();
  }
});

test('a combo whose net is not marketable rests: it fills all at once when the quotes come to it, or is cancelled', { timeout: 60_000 }, async () => {
  const { sim, ib, errors, seen, advance, atTheMoney, call, stop } = await start(MORNING);
  try {
    const [low, high] = [call(atTheMoney), call(atTheMoney + 2)];
    const legs = () => [low, high].map((o, i) => ({ action: i === 0 ? 'BUY' : 'SELL', ratio: 1, quote: sim.options.tradedQuote(o.conId)! }) as const);
    const vertical = bag([[low.conId, OrderAction.BUY], [high.conId, OrderAction.SELL]]);
    await advance(0);
    const net = comboTouch('BUY', legs())!.net;
    // A cent under the touch: the quotes' moves bring it there. Far under: it waits, then is cancelled.
    const near = cents(net - 0.01);
    ib.placeOrder(1, vertical, limit(OrderAction.BUY, 1, near, { orderRef: 'near' }));
    ib.placeOrder(2, vertical, limit(OrderAction.BUY, 1, cents(net - 1), { orderRef: 'far' }));
    await advance(10);
    const fills = (ref: string) => events<[number, Contract, Execution]>(seen, EventName.execDetails).filter(([, , e]) => e.orderRef === ref);
    assert.deepEqual(fills('near'), [], 'resting under the touch');
    assert.deepEqual(sim.broker.workingOrders().map((o) => [o.orderId, o.status]), [[1, 'Submitted'], [2, 'Submitted']]);
    for (let i = 0; i < 120 && fills('near').length === 0; i++) await advance(1_000);
    assert.deepEqual(fills('near').map(([, c, e]) => [c.conId, e.side, e.shares]), [[low.conId, 'BOT', 1], [high.conId, 'SLD', 1]], 'both legs at once');
    const [bought, sold] = fills('near').map(([, , e]) => e.price) as [number, number];
    assert.ok(cents(bought - sold) <= near, `net ${cents(bought - sold)}, limit ${near}`);

    assert.deepEqual(fills('far'), []);
    ib.cancelOrder(2);
    await advance(0);
    assert.deepEqual(errors.map((e) => [e.reqId, e.code]), [[2, 202]]);
    assert.equal(sim.broker.allOrders().find((o) => o.orderId === 2)!.status, 'Cancelled');
    assert.deepEqual(sim.broker.workingOrders(), []);
  } finally {
    await stop();
  }
});

/** Two minutes before the 16:00 New York close (21:00 UTC). */
const BEFORE_CLOSE = Date.UTC(2026, 0, 5, 20, 58);

test('exercise instructions: a lapsed in-the-money call expires at the close, one without it is exercised, one exercised at once delivers then; refusals name the cause', { timeout: 60_000 }, async () => {
  const { clock, sim, ib, errors, seen, advance, atTheMoney, call, stop } = await start(BEFORE_CLOSE);
  try {
    // Ten dollars and more in the money: in the money at the close whatever SPY does in two minutes.
    const [lapsed, kept, exercised] = [call(atTheMoney - 10), call(atTheMoney - 12), call(atTheMoney - 14)];
    const single = (o: typeof lapsed): Contract => ({ conId: o.conId, symbol: 'SPY', secType: SecType.OPT, exchange: 'SMART', currency: 'USD' });
    for (const [id, o] of [[1, lapsed], [2, kept], [3, exercised]] as const) ib.placeOrder(id, single(o), limit(OrderAction.BUY, 1, 50));
    await advance(10);
    assert.equal(events(seen, EventName.execDetails).length, 3);
    const account = sim.broker.accounts.get(ACCOUNT)!;

    const byLocal = (o: typeof lapsed): Contract => ({ symbol: 'SPY', secType: SecType.OPT, localSymbol: o.localSymbol, exchange: 'SMART', currency: 'USD' });
    ib.exerciseOptions(10, byLocal(lapsed), OptionExerciseAction.LAPSE, 2, ACCOUNT, 0);
    ib.exerciseOptions(11, byLocal(call(atTheMoney - 20)), OptionExerciseAction.LAPSE, 1, ACCOUNT, 0);
    ib.exerciseOptions(12, { ...byLocal(lapsed), localSymbol: 'SPY   260105C09990000' }, OptionExerciseAction.LAPSE, 1, ACCOUNT, 0);
    ib.exerciseOptions(13, byLocal(lapsed), OptionExerciseAction.LAPSE, 1, ACCOUNT, 0);
    await advance(0);
    assert.deepEqual(errors.map((e) => [e.reqId, e.code, e.message]), [
      [10, 322, `Error processing request:-'bw' : cause - exerciseQuantity 2 is above the long position of 1 in ${lapsed.localSymbol}`],
      [11, 322, `Error processing request:-'bw' : cause - no long position in ${call(atTheMoney - 20).localSymbol} to lapse (position 0)`],
      [12, 200, 'No security definition has been found for the request'],
    ]);

    // Exercised now: the shares come at once, the contract goes, and no execution is reported.
    const cashBefore = account.cash;
    ib.exerciseOptions(14, single(exercised), OptionExerciseAction.EXERCISE, 1, ACCOUNT, 0);
    await advance(0);
    assert.equal(errors.length, 3);
    assert.equal(sim.broker.positionOf(ACCOUNT, exercised.localSymbol)!.position, 0);
    assert.equal(sim.broker.positionOf(ACCOUNT, 'SPY')!.position, 100);
    assert.ok(Math.abs(account.cash - (cashBefore - 100 * exercised.strike)) < 1e-6, `cash ${account.cash}`);

    const reportsBefore = seen.length;
    for (let i = 0; i < 13; i++) await advance(10_000);
    assert.ok(clock.wallNow() > Date.UTC(2026, 0, 5, 21, 0));
    assert.equal(seen.length, reportsBefore, 'no execution for an exercise or an expiry');
    assert.deepEqual([sim.broker.positionOf(ACCOUNT, lapsed.localSymbol)!.position, sim.broker.positionOf(ACCOUNT, kept.localSymbol)!.position], [0, 0]);
    assert.equal(sim.broker.positionOf(ACCOUNT, 'SPY')!.position, 200, 'the kept call delivered its 100 shares, the lapsed one none');
    assert.ok(Math.abs(account.cash - (cashBefore - 100 * exercised.strike - 100 * kept.strike)) < 1e-6, `cash ${account.cash}`);

    // Past the cutoff nothing is held to instruct about.
    ib.exerciseOptions(15, byLocal(kept), OptionExerciseAction.LAPSE, 1, ACCOUNT, 0);
    await advance(0);
    assert.deepEqual(errors.at(-1), { reqId: 15, code: 322, message: `Error processing request:-'bw' : cause - no long position in ${kept.localSymbol} to lapse (position 0)` });
  } finally {
    await stop();
  }
});

