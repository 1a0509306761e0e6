/**
 * Orders against the simulator's own market, through the unmodified
 * @stoqey/ib client: the lifecycle TWS reports, matching against the book and
 * later trades, cancels, IB's order errors, executions and open orders after
 * a reconnect, positions and the account.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EventName, IBApi, OrderAction, OrderType, SecType, type CommissionReport, type Contract, type Execution, type Order, type OrderState } from '@stoqey/ib';
import { ManualClock } from '../../src/clock.js';
import { COMMISSION_PER_SHARE, MIN_COMMISSION_PER_ORDER } from '../../src/sim/broker.js';
import { ASK } from '../../src/sim/market.js';
import { TwsSimulator, type SimulatorOptions } from '../../src/sim/server.js';
import { barrier, connectClient, until, type ClientError } from '../support/ib-client.js';

const ACCOUNT = 'DU1234567';
const SPY: Contract = { symbol: 'SPY', secType: SecType.STK, exchange: 'SMART', currency: 'USD' };

const EVENTS = [
  EventName.openOrder, EventName.orderStatus, EventName.openOrderEnd, EventName.execDetails, EventName.execDetailsEnd,
  EventName.commissionReport, EventName.position, EventName.positionEnd, EventName.updateAccountValue,
  EventName.updatePortfolio, EventName.accountDownloadEnd, EventName.nextValidId,
];

/** A connected client and every order, execution, position and account event it received, in order. */
interface Client {
  readonly ib: IBApi;
  readonly errors: ClientError[];
  /** The nextValidId of the handshake. */
  readonly firstId: number;
  readonly seen: [EventName, unknown[]][];
}

async function connect(port: number, clientId = 1): Promise<Client> {
  const { ib, errors, firstId } = await connectClient(port, clientId);
  const seen: [EventName, unknown[]][] = [];
  for (const name of EVENTS) ib.addListener(name, (...args: unknown[]) => seen.push([name, args]));
  return { ib, errors, firstId, seen };
}

/** A simulator on a manual clock, so the market moves and orders are acknowledged only when the test says. */
async function start(options: SimulatorOptions = {}) {
  const clock = new ManualClock();
  const sim = new TwsSimulator({ clock, updatesPerSecond: 1000, seed: 42, ...options });
  const port = await sim.listen(0);
  const client = await connect(port);
  const spyBook = sim.marketData.market.book(sim.instruments.find(0, 'SPY', 'STK')!);
  /**
   * Moves the clock once the simulator has everything `c` sent (an order must arrive before the time
   * that acknowledges it), then waits until `c` has everything the simulator wrote.
   */
  const advance = async (ms: number, c: Client = client) => {
    if (ms > 0) await barrier(c.ib);
    await clock.advance(ms);
    await barrier(c.ib);
  };
  const clients = [client];
  return {
    sim, clock, port, client, spyBook, advance,
    connect: async (clientId = 1) => {
      const c = await connect(port, clientId);
      clients.push(c);
      return c;
    },
    stop: async () => {
      for (const c of clients) c.ib.disconnect();
      await sim.close();
    },
  };
}

function argsOf<T extends unknown[]>(c: Client, name: EventName): T[] {
  return c.seen.filter(([n]) => n === name).map(([, args]) => args as T);
}

/** orderStatus: orderId, status, filled, remaining, avgFillPrice, permId, parentId, lastFillPrice, clientId, whyHeld, mktCapPrice. */
type Status = [number, string, number, number, number, number, number, number, number, string, number];
const statusesOf = (c: Client, orderId: number) => argsOf<Status>(c, EventName.orderStatus).filter(([id]) => id === orderId);
const executionsOf = (c: Client, reqId = -1) =>
  argsOf<[number, Contract, Execution]>(c, EventName.execDetails).filter(([r]) => r === reqId).map(([, , e]) => e);
const commissionsOf = (c: Client) => argsOf<[CommissionReport]>(c, EventName.commissionReport).map(([r]) => r);

const limit = (action: OrderAction, totalQuantity: number, lmtPrice: number): Order => ({
  action, totalQuantity, orderType: OrderType.LMT, lmtPrice, tif: 'DAY', account: ACCOUNT, transmit: true,
});
const market = (action: OrderAction, totalQuantity: number): Order => ({ action, totalQuantity, orderType: OrderType.MKT, tif: 'DAY', transmit: true });

/** IB fixed pricing over an order's fills: the order pays max(minimum, per share), the minimum with its first fill. */
function expectedCommissions(shares: readonly number[]): number[] {
  let filled = 0;
  let charged = 0;
  return shares.map((s) => {
    filled += s;
    const due = Math.max(MIN_COMMISSION_PER_ORDER, COMMISSION_PER_SHARE * filled);
    const commission = due - charged;
    charged = due;
    return commission;
  });
}

const close = (actual: number, expected: number, what: string, tolerance = 1e-6) =>
  assert.ok(Math.abs(actual - expected) <= tolerance, `${what}: ${actual}, expected ${expected}`);

test('a marketable limit BUY larger than the top level: PreSubmitted, Submitted, a fill per level, Filled; commission and position follow', async () => {
  const s = await start();
  try {
    // Nobody watched SPY before, so the book is at its opening state until the order starts it; the
    // acknowledgement (5 ms) comes before the market's first pump (10 ms), so the order meets exactly these levels.
    const levels = [0, 1, 2].map((row) => [s.spyBook.price[ASK][row]!, s.spyBook.size[ASK][row]!] as const);
    const quantity = levels[0]![1] + levels[1]![1] + Math.ceil(levels[2]![1] / 2);
    const limitPrice = s.spyBook.price[ASK][5]! / 100;
    s.client.ib.placeOrder(1, SPY, limit(OrderAction.BUY, quantity, limitPrice));
    await s.advance(0);
    assert.deepEqual(statusesOf(s.client, 1).map(([, status]) => status), ['PreSubmitted'], 'nothing happens before the acknowledgement');
    await s.advance(10);

    const statuses = statusesOf(s.client, 1);
    const executions = executionsOf(s.client);
    assert.deepEqual(statuses.map(([, status]) => status), ['PreSubmitted', 'Submitted', 'Submitted', 'Submitted', 'Filled']);
    assert.deepEqual(
      executions.map((e) => [e.price, e.shares]),
      [[levels[0]![0] / 100, levels[0]![1]], [levels[1]![0] / 100, levels[1]![1]], [levels[2]![0] / 100, Math.ceil(levels[2]![1] / 2)]],
      'one execution per level, best first',
    );
    assert.ok(executions.every((e) => e.price! <= limitPrice && e.side === 'BOT' && e.acctNumber === ACCOUNT && e.orderId === 1));
    const shares = executions.map((e) => e.shares!);
    assert.equal(shares.reduce((a, b) => a + b), quantity);
    const average = executions.reduce((sum, e) => sum + e.price! * e.shares!, 0) / quantity;
    const [, , filled, remaining, avgFillPrice, , , lastFillPrice] = statuses.at(-1)!;
    assert.deepEqual([filled, remaining, lastFillPrice], [quantity, 0, executions.at(-1)!.price]);
    close(avgFillPrice, average, 'avgFillPrice');
    assert.deepEqual(executions.map((e) => e.cumQty), [shares[0], shares[0]! + shares[1]!, quantity]);

    // Each execution: execDetails, its commission report, then the order's status; openOrder again when it is Filled.
    const flow = s.client.seen.map(([name]) => name).filter((name) => name !== EventName.nextValidId);
    const fill = [EventName.execDetails, EventName.commissionReport, EventName.orderStatus];
    assert.deepEqual(flow, [
      EventName.openOrder, EventName.orderStatus, EventName.openOrder, EventName.orderStatus,
      ...fill, ...fill, EventName.execDetails, EventName.commissionReport, EventName.openOrder, EventName.orderStatus,
    ]);
    const [, , , filledState] = argsOf<[number, Contract, Order, OrderState]>(s.client, EventName.openOrder).at(-1)!;
    const reports = commissionsOf(s.client);
    assert.deepEqual(reports.map((r) => r.execId), executions.map((e) => e.execId));
    const commissions = reports.map((r) => r.commission!);
    expectedCommissions(shares).forEach((expected, i) => close(commissions[i]!, expected, `commission of fill ${i}`));
    const totalCommission = commissions.reduce((a, b) => a + b);
    close(totalCommission, Math.max(MIN_COMMISSION_PER_ORDER, COMMISSION_PER_SHARE * quantity), 'commission of the order');
    assert.deepEqual([filledState.status, filledState.commissionCurrency], ['Filled', 'USD']);
    close(filledState.commission!, totalCommission, 'commission in the Filled openOrder');
    assert.ok(reports.every((r) => r.currency === 'USD' && r.realizedPNL === undefined), 'an opening fill realizes nothing');

    // The position: the quantity, at an average cost that includes the commission (IB's definition).
    s.client.ib.reqPositions();
    await s.advance(0);
    const positions = argsOf<[string, Contract, number, number]>(s.client, EventName.position);
    assert.equal(positions.length, 1);
    const [account, contract, position, avgCost] = positions[0]!;
    assert.deepEqual([account, contract.symbol, position], [ACCOUNT, 'SPY', quantity]);
    close(avgCost, average + totalCommission / quantity, 'avgCost');
    assert.equal(argsOf(s.client, EventName.positionEnd).length, 1);
    assert.deepEqual(s.sim.broker.positionOf(ACCOUNT, 'SPY')?.position, quantity);
    assert.equal(s.sim.broker.executions.length, 3);
    assert.deepEqual(s.sim.broker.workingOrders(), []);
    assert.deepEqual(s.client.errors, []);
  } finally {
    await s.stop();
  }
});

test('a passive limit far from the market rests until cancelled; a second cancel and an unknown id get 10147; transmit off holds an order', async () => {
  const s = await start();
  try {
    const farBelow = s.spyBook.bestBid() / 100 - 50;
    s.client.ib.placeOrder(1, SPY, limit(OrderAction.BUY, 100, farBelow));
    for (let i = 0; i < 5; i++) await s.advance(100);
    assert.deepEqual(statusesOf(s.client, 1).map(([, status, filled, remaining]) => [status, filled, remaining]), [
      ['PreSubmitted', 0, 100],
      ['Submitted', 0, 100],
    ]);
    assert.deepEqual(executionsOf(s.client), []);
    assert.deepEqual(s.sim.broker.workingOrders().map((o) => [o.orderId, o.status]), [[1, 'Submitted']]);

    s.client.ib.cancelOrder(1);
    await s.advance(0);
    assert.deepEqual(statusesOf(s.client, 1).at(-1)!.slice(0, 4), [1, 'Cancelled', 0, 100]);
    assert.deepEqual(s.client.errors.map((e) => [e.reqId, e.code]), [[1, 202]]);
    assert.match(s.client.errors[0]!.message, /Order Canceled - reason:/);
    assert.deepEqual(s.sim.broker.workingOrders(), []);

    s.client.ib.cancelOrder(1);
    s.client.ib.cancelOrder(999);
    await s.advance(0);
    assert.deepEqual(s.client.errors.slice(1).map((e) => [e.reqId, e.code, e.message]), [
      [1, 10147, 'OrderId 1 that needs to be cancelled is not found.'],
      [999, 10147, 'OrderId 999 that needs to be cancelled is not found.'],
    ]);

    // Without transmit, TWS keeps the order and never sends it on.
    s.client.ib.placeOrder(2, SPY, { ...limit(OrderAction.BUY, 100, s.spyBook.bestAsk() / 100 + 1), transmit: false });
    await s.advance(100);
    assert.deepEqual(statusesOf(s.client, 2).map(([, status]) => status), ['Inactive']);
    s.client.ib.cancelOrder(2);
    await s.advance(0);
    assert.deepEqual(statusesOf(s.client, 2).map(([, status]) => status), ['Inactive', 'Cancelled']);
    assert.deepEqual(s.sim.broker.executions, []);
  } finally {
    await s.stop();
  }
});

test('limits at the touch fill later from market trades at their price; a market order beyond the book fills its rest from the next trades', async () => {
  const s = await start();
  try {
    const bid = s.spyBook.bestBid() / 100;
    const ask = s.spyBook.bestAsk() / 100;
    s.client.ib.placeOrder(1, SPY, limit(OrderAction.BUY, 100, bid));
    s.client.ib.placeOrder(2, SPY, limit(OrderAction.SELL, 100, ask));
    const done = (id: number) => statusesOf(s.client, id).at(-1)?.[1] === 'Filled';
    for (let i = 0; i < 200 && !(done(1) && done(2)); i++) await s.advance(100);
    assert.ok(done(1) && done(2), 'both limits filled within 20 simulated seconds');

    for (const [id, side, ok] of [[1, 'BOT', (p: number) => p <= bid], [2, 'SLD', (p: number) => p >= ask]] as const) {
      const fills = executionsOf(s.client).filter((e) => e.orderId === id);
      assert.ok(fills.length >= 1 && fills.every((e) => e.side === side && ok(e.price!)), `order ${id} filled within its limit`);
      assert.equal(fills.reduce((sum, e) => sum + e.shares!, 0), 100);
      const statuses = statusesOf(s.client, id).map(([, status]) => status);
      assert.deepEqual(statuses.slice(0, 2), ['PreSubmitted', 'Submitted']);
    }

    // More than the ten visible ask rows: the book is swept, the rest fills from the trades that follow, whatever their price.
    const visible = Array.from(s.spyBook.size[ASK]).reduce((a, b) => a + b, 0);
    const deepest = s.spyBook.price[ASK][9]!;
    s.client.ib.placeOrder(3, SPY, market(OrderAction.BUY, visible + 300));
    await s.advance(10);
    const swept = executionsOf(s.client).filter((e) => e.orderId === 3);
    assert.ok(swept.length >= 10 && swept.slice(0, 10).every((e) => Math.round(e.price! * 100) <= deepest));
    assert.equal(statusesOf(s.client, 3).at(-1)![1], 'Submitted', 'the rest works');
    for (let i = 0; i < 200 && !done(3); i++) await s.advance(100);
    assert.ok(done(3));
    const all = executionsOf(s.client).filter((e) => e.orderId === 3);
    assert.equal(all.reduce((sum, e) => sum + e.shares!, 0), visible + 300);
    assert.deepEqual(s.client.errors, []);
  } finally {
    await s.stop();
  }
});

test('IB order errors: 103 for a reused id, 321 naming a malformed field, 200, 387 and 110; the connection stays usable', async () => {
  const s = await start();
  try {
    const farBelow = s.spyBook.bestBid() / 100 - 50;
    s.client.ib.placeOrder(1, SPY, limit(OrderAction.BUY, 100, farBelow));
    s.client.ib.placeOrder(1, SPY, limit(OrderAction.BUY, 100, farBelow));
    s.client.ib.placeOrder(2, SPY, { ...limit(OrderAction.BUY, 100, farBelow), action: 'HOLD' as OrderAction });
    s.client.ib.placeOrder(3, { ...SPY, symbol: 'NOPE' }, limit(OrderAction.BUY, 100, farBelow));
    s.client.ib.placeOrder(4, SPY, { action: OrderAction.BUY, totalQuantity: 100, orderType: OrderType.STP, auxPrice: 600, transmit: true });
    s.client.ib.placeOrder(5, SPY, limit(OrderAction.BUY, 100, 530.123));
    await s.advance(0);
    assert.deepEqual(s.client.errors.map((e) => [e.reqId, e.code]), [[1, 103], [2, 321], [3, 200], [4, 387], [5, 110]]);
    assert.equal(s.client.errors[0]!.message, 'Duplicate order id');
    assert.match(s.client.errors[1]!.message, /^Error validating request:-'bO' : cause - PLACE_ORDER field 16 \(action\): expected BUY or SELL, got "HOLD"$/);
    assert.match(s.client.errors[3]!.message, /MKT and LMT/);
    // Still connected and answering (advance's barrier is a reqCurrentTime), and the first order is unharmed.
    await s.advance(100);
    assert.deepEqual(s.sim.clientIds, [1]);
    assert.deepEqual(s.sim.broker.workingOrders().map((o) => o.orderId), [1]);
  } finally {
    await s.stop();
  }
});

test('after a reconnect with the same client id: every execution, a time filter, the working order, and ids past every one used', async () => {
  const s = await start();
  try {
    const first = s.client;
    const ask = s.spyBook.bestAsk() / 100;
    first.ib.placeOrder(1, SPY, limit(OrderAction.BUY, 500, ask + 0.1));
    first.ib.placeOrder(2, SPY, limit(OrderAction.BUY, 100, ask - 50));
    await s.advance(10);
    await s.advance(2_000);
    first.ib.placeOrder(7, SPY, market(OrderAction.SELL, 200));
    await s.advance(10);
    const seenLive = executionsOf(first);
    const laterTime = executionsOf(first).find((e) => e.orderId === 7)!.time!;
    assert.ok(seenLive.length >= 2 && seenLive.some((e) => e.orderId === 1) && laterTime > seenLive[0]!.time!);

    first.ib.disconnect();
    await until(() => s.sim.clientIds.length === 0, 'the simulator to see the client go');
    const second = await s.connect(1);
    assert.equal(second.firstId, 8, 'nextValidId at startApi is past the highest id used');
    assert.equal(second.errors.length, 0);

    second.ib.reqExecutions(41, {});
    // The filter's time is `yyyymmdd-hh:mm:ss`; the executions carry `yyyymmdd hh:mm:ss UTC`.
    second.ib.reqExecutions(42, { time: laterTime.replace(' ', '-').replace(' UTC', '') });
    second.ib.reqExecutions(43, { side: 'BUY', symbol: 'SPY' });
    second.ib.reqOpenOrders();
    second.ib.reqIds(1);
    await s.advance(0, second);

    const all = executionsOf(second, 41);
    assert.deepEqual(all.map((e) => e.execId), seenLive.map((e) => e.execId), 'every execution, in order');
    assert.deepEqual(all.map((e) => e.execId), s.sim.broker.executions.map((e) => e.execId));
    assert.deepEqual(executionsOf(second, 42).map((e) => e.orderId), seenLive.filter((e) => e.orderId === 7).map(() => 7));
    assert.deepEqual(executionsOf(second, 43).map((e) => e.execId), seenLive.filter((e) => e.side === 'BOT').map((e) => e.execId));
    assert.deepEqual(argsOf(second, EventName.execDetailsEnd), [[41], [42], [43]]);
    assert.deepEqual(commissionsOf(second).map((r) => r.execId), [...all, ...executionsOf(second, 42), ...executionsOf(second, 43)].map((e) => e.execId));

    const open = argsOf<[number, Contract, Order, OrderState]>(second, EventName.openOrder);
    assert.deepEqual(open.map(([id, contract, order, state]) => [id, contract.symbol, order.lmtPrice, state.status]), [[2, 'SPY', ask - 50, 'Submitted']]);
    assert.deepEqual(statusesOf(second, 2).map(([, status, filled, remaining]) => [status, filled, remaining]), [['Submitted', 0, 100]]);
    assert.equal(argsOf(second, EventName.openOrderEnd).length, 1);
    assert.deepEqual(argsOf(second, EventName.nextValidId), [[8]]);

    // The order belongs to the client id, not the connection: the new one can cancel it.
    second.ib.cancelOrder(2);
    await s.advance(0, second);
    assert.deepEqual(second.errors.map((e) => [e.reqId, e.code]), [[2, 202]]);
  } finally {
    await s.stop();
  }
});

test('reqPositions and reqAccountUpdates follow the fills: cash, average cost, realized and unrealized P&L', async () => {
  const s = await start();
  try {
    const c = s.client;
    c.ib.reqAccountUpdates(true, ACCOUNT);
    await s.advance(0);
    const values = () => new Map(argsOf<[string, string, string, string]>(c, EventName.updateAccountValue).map(([key, value]) => [key, Number(value)]));
    assert.deepEqual(Object.fromEntries(values()), {
      NetLiquidation: 1_000_000, TotalCashValue: 1_000_000, AvailableFunds: 1_000_000, BuyingPower: 4_000_000, RealizedPnL: 0, UnrealizedPnL: 0,
    });
    assert.deepEqual(argsOf(c, EventName.accountDownloadEnd), [[ACCOUNT]]);
    assert.deepEqual(argsOf(c, EventName.updatePortfolio), []);

    c.ib.placeOrder(1, SPY, market(OrderAction.BUY, 300));
    await s.advance(10);
    c.ib.placeOrder(2, SPY, market(OrderAction.SELL, 100));
    await s.advance(10);
    assert.deepEqual([1, 2].map((id) => statusesOf(c, id).at(-1)![1]), ['Filled', 'Filled']);

    const executions = executionsOf(c);
    const reports = commissionsOf(c);
    const buys = executions.filter((e) => e.side === 'BOT');
    const sells = executions.filter((e) => e.side === 'SLD');
    const commission = (e: Execution) => reports.find((r) => r.execId === e.execId)!.commission!;
    const boughtFor = buys.reduce((sum, e) => sum + e.price! * e.shares!, 0);
    const soldFor = sells.reduce((sum, e) => sum + e.price! * e.shares!, 0);
    const buyCommission = buys.reduce((sum, e) => sum + commission(e), 0);
    const sellCommission = sells.reduce((sum, e) => sum + commission(e), 0);
    const avgCost = (boughtFor + buyCommission) / 300;
    const realized = soldFor - 100 * avgCost - sellCommission;
    const cash = 1_000_000 - boughtFor - buyCommission + soldFor - sellCommission;

    // Closing fills report what they realized; opening ones do not.
    const realizedReported = sells.reduce((sum, e) => sum + reports.find((r) => r.execId === e.execId)!.realizedPNL!, 0);
    close(realizedReported, realized, 'realizedPNL in the commission reports');
    assert.ok(buys.every((e) => reports.find((r) => r.execId === e.execId)!.realizedPNL === undefined));

    // Fresh values came with each fill; the last ones are consistent with the fills and the last portfolio line.
    const last = values();
    const [contract, position, marketPrice, marketValue, averageCost, unrealized, realizedPnl, account] = argsOf<[Contract, number, number, number, number, number, number, string]>(c, EventName.updatePortfolio).at(-1)!;
    assert.deepEqual([contract.symbol, position, account], ['SPY', 200, ACCOUNT]);
    close(averageCost, avgCost, 'portfolio averageCost');
    close(realizedPnl, realized, 'portfolio realizedPNL');
    close(marketValue, 200 * marketPrice, 'marketValue');
    close(unrealized, (marketPrice - avgCost) * 200, 'unrealizedPNL');
    close(last.get('TotalCashValue')!, cash, 'TotalCashValue', 0.005);
    close(last.get('RealizedPnL')!, realized, 'RealizedPnL', 0.005);
    close(last.get('UnrealizedPnL')!, unrealized, 'UnrealizedPnL', 0.005);
    close(last.get('NetLiquidation')!, cash + marketValue, 'NetLiquidation', 0.01);
    close(last.get('AvailableFunds')!, cash + marketValue - 0.25 * marketValue, 'AvailableFunds', 0.01);
    close(last.get('BuyingPower')!, 4 * last.get('AvailableFunds')!, 'BuyingPower', 0.05);

    c.ib.reqPositions();
    await s.advance(0);
    const [[positionAccount, positionContract, held, heldCost]] = argsOf<[string, Contract, number, number]>(c, EventName.position) as [[string, Contract, number, number]];
    assert.deepEqual([positionAccount, positionContract.symbol, held], [ACCOUNT, 'SPY', 200]);
    close(heldCost, avgCost, 'position avgCost');
    const holding = s.sim.broker.positionOf(ACCOUNT, 'SPY')!;
    close(holding.realizedPnl, realized, 'positionOf realizedPnl');

    // While following positions, a fill sends the new one; after cancelPositions and unsubscribing, nothing more comes.
    c.ib.placeOrder(3, SPY, market(OrderAction.BUY, 50));
    await s.advance(10);
    assert.deepEqual(argsOf<[string, Contract, number]>(c, EventName.position).map(([, , p]) => p).at(-1), 250);
    c.ib.cancelPositions();
    c.ib.reqAccountUpdates(false, ACCOUNT);
    await s.advance(0);
    const counts = () => [EventName.position, EventName.updateAccountValue, EventName.updatePortfolio].map((name) => argsOf(c, name).length);
    const before = counts();
    c.ib.placeOrder(4, SPY, market(OrderAction.BUY, 50));
    await s.advance(10);
    assert.equal(statusesOf(c, 4).at(-1)![1], 'Filled');
    assert.deepEqual(counts(), before);
    assert.equal(s.sim.broker.positionOf(ACCOUNT, 'SPY')!.position, 300);
    assert.deepEqual(c.errors, []);
  } finally {
    await s.stop();
  }
});
