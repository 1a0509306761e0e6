/**
 * SPY option orders at the simulated broker, through the unmodified
 * @stoqey/ib client: checked against the listing (200 for a contract that
 * is not listed), filled on the chain's own quote and, resting, on its
 * prints at or through the limit, 100 shares a contract at
 * IBKR's option commission, the whole contract in every report; and at the
 * expiry's close settled as IB does, positions and cash changing without an
 * execution report.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EventName, OptionType, OrderAction, OrderType, SecType, type CommissionReport, type Contract, type Execution } from '@stoqey/ib';
import { ManualClock } from '../../src/clock.js';
import { OPTION_COMMISSIONS } from '../../src/sim/broker.js';
import { TwsSimulator } from '../../src/sim/server.js';
import { OptionOrderCost } from '../../src/trading/option-commissions.js';
import { barrier, connectClient } from '../support/ib-client.js';

const ACCOUNT = 'DU1234567';
const EXPIRY = '20260105';
/** Monday 2026-01-05, two minutes before the 16:00 New York close (21:00 UTC). */
const WALL_ORIGIN = Date.UTC(2026, 0, 5, 20, 58);

const option = (strike: number, right: OptionType): Contract => ({
  symbol: 'SPY', secType: SecType.OPT, lastTradeDateOrContractMonth: EXPIRY, strike, right, multiplier: 100, exchange: 'SMART', currency: 'USD',
});

/** The simulator on a manual clock reading `wallOrigin`, an unmodified client on it, and a way to move time with every message before and after handled. */
async function simAndClient(wallOrigin: number) {
  const clock = new ManualClock(0, wallOrigin);
  const sim = new TwsSimulator({ clock, updatesPerSecond: 100, seed: 7 });
  const port = await sim.listen(0);
  const { ib, errors } = await connectClient(port);
  const advance = async (ms: number) => {
    await barrier(ib);
    await clock.advance(ms);
    await barrier(ib);
  };
  return { clock, sim, ib, errors, advance };
}

test('an option bought on its quote, sold at a resting limit the quote comes to, refused when not listed, and exercised at the close with no execution reported', { timeout: 60_000 }, async () => {
  const { clock, sim, ib, errors, advance } = await simAndClient(WALL_ORIGIN);
  const seen: [EventName, unknown[]][] = [];
  for (const name of [EventName.execDetails, EventName.commissionReport, EventName.position]) ib.addListener(name, (...args: unknown[]) => seen.push([name, args]));
  try {
    const spy = sim.marketData.market.book(sim.instruments.find(0, 'SPY', 'STK')!);
    // Ten dollars in the money: exercised at the close whatever SPY does in two minutes.
    const strike = Math.round((spy.bestBid() + spy.bestAsk()) / 200) - 10;
    const listed = sim.options.listing.select(EXPIRY, strike, 'C')[0]!;

    ib.placeOrder(1, option(strike + 0.5, OptionType.Call), { action: OrderAction.BUY, totalQuantity: 1, orderType: OrderType.LMT, lmtPrice: 5, transmit: true });
    ib.placeOrder(2, { ...option(strike, OptionType.Call), lastTradeDateOrContractMonth: '20260110' }, { action: OrderAction.BUY, totalQuantity: 1, orderType: OrderType.LMT, lmtPrice: 5, transmit: true });
    await advance(0);
    assert.deepEqual(errors.map((e) => [e.reqId, e.code, e.message]), [
      [1, 200, 'No security definition has been found for the request'],
      [2, 200, 'No security definition has been found for the request'],
    ]);

    ib.placeOrder(3, option(strike, OptionType.Call), { action: OrderAction.BUY, totalQuantity: 3, orderType: OrderType.LMT, lmtPrice: 50, orderRef: 'opt-3', transmit: true });
    await advance(0);
    const quote = sim.options.quoteOf(listed.conId)!;
    assert.ok(quote.askSize >= 3, `ask size ${quote.askSize}`);
    const ask = quote.ask;
    await advance(10);

    const [[reqId, contract, execution]] = seen.filter(([n]) => n === EventName.execDetails).map(([, a]) => a as [number, Contract, Execution]) as [[number, Contract, Execution]];
    assert.equal(reqId, -1);
    assert.deepEqual(
      { conId: contract.conId, symbol: contract.symbol, secType: contract.secType, expiry: contract.lastTradeDateOrContractMonth, strike: contract.strike, right: contract.right, multiplier: contract.multiplier, localSymbol: contract.localSymbol },
      { conId: listed.conId, symbol: 'SPY', secType: 'OPT', expiry: EXPIRY, strike, right: 'C', multiplier: 100, localSymbol: listed.localSymbol },
    );
    assert.deepEqual([execution.side, execution.shares, execution.price, execution.orderRef], ['BOT', 3, ask, 'opt-3'], 'the ask taken at its own price, not the limit');
    const [[report]] = seen.filter(([n]) => n === EventName.commissionReport).map(([, a]) => a as [CommissionReport]) as [[CommissionReport]];
    assert.equal(report.commission, new OptionOrderCost(OPTION_COMMISSIONS).fill(3, ask, 100));
    const account = sim.broker.accounts.get(ACCOUNT)!;
    assert.equal(sim.broker.positionOf(ACCOUNT, listed.localSymbol)!.position, 3);

    // A sell resting above the bid: it fills at its own limit once the bid comes up to it.
    const limit = Math.round((sim.options.quoteOf(listed.conId)!.bid + 0.03) * 100) / 100;
    ib.placeOrder(4, option(strike, OptionType.Call), { action: OrderAction.SELL, totalQuantity: 1, orderType: OrderType.LMT, lmtPrice: limit, orderRef: 'opt-4', transmit: true });
    await advance(10);
    const sells = () => seen.filter(([n]) => n === EventName.execDetails).map(([, a]) => (a as [number, Contract, Execution])[2]).filter((e) => e.orderRef === 'opt-4');
    assert.deepEqual(sells(), [], 'resting below the bid it does not reach');
    for (let i = 0; i < 80 && sells().length === 0; i++) await advance(1_000);
    assert.deepEqual(sells().map((e) => [e.side, e.shares, e.price]), [['SLD', 1, limit]], 'filled at its limit');
    assert.ok(clock.wallNow() < Date.UTC(2026, 0, 5, 21, 0), 'before the close');
    assert.equal(sim.broker.positionOf(ACCOUNT, listed.localSymbol)!.position, 2);

    ib.reqPositions();
    await advance(0);
    const reportsBefore = seen.filter(([n]) => n !== EventName.position).length;
    const cashBefore = account.cash;
    // Past the close, in steps: the broker reads the clock at each turn of its pump.
    for (let i = 0; i < 13; i++) await advance(10_000);
    assert.ok(clock.wallNow() > Date.UTC(2026, 0, 5, 21, 0));

    assert.equal(seen.filter(([n]) => n !== EventName.position).length, reportsBefore, 'no execution or commission report for an exercise');
    assert.equal(sim.broker.positionOf(ACCOUNT, listed.localSymbol)!.position, 0);
    assert.equal(sim.broker.positionOf(ACCOUNT, 'SPY')!.position, 200);
    assert.ok(Math.abs(account.cash - (cashBefore - 200 * strike)) < 1e-6, `cash ${account.cash}`);
    // What a client following positions hears: the option flat, then the shares, each with its whole contract.
    const changes = seen.filter(([n]) => n === EventName.position).map(([, a]) => a as [string, Contract, number]).slice(-2);
    assert.deepEqual(changes.map(([acct, c, pos]) => [acct, c.secType, c.localSymbol, c.strike, pos]), [
      [ACCOUNT, 'OPT', listed.localSymbol, strike, 0],
      [ACCOUNT, 'STK', 'SPY', 0, 200],
    ]);
  } finally {
    ib.disconnect();
    await sim.close();
  }
});

test("a resting option limit fills at its limit on the chain's own prints at or through it, each up to the print's size", { timeout: 60_000 }, async () => {
  const { sim, ib, errors, advance } = await simAndClient(Date.UTC(2026, 0, 5, 15, 0));
  const executions: Execution[] = [];
  ib.on(EventName.execDetails, (_reqId, _contract, execution) => executions.push(execution));
  try {
    const spy = sim.marketData.market.book(sim.instruments.find(0, 'SPY', 'STK')!);
    const strike = Math.round((spy.bestBid() + spy.bestAsk()) / 200);
    const listed = sim.options.listing.select(EXPIRY, strike, 'C')[0]!;
    const quote = sim.options.tradedQuote(listed.conId)!;
    // A buy resting at the bid: below the ask, so only a print at the bid (or the ask coming down) reaches it.
    const limit = quote.bid;
    const prints: { price: number; size: number; ask: number }[] = [];
    const broker = sim.options.onPrint;
    sim.options.onPrint = (conId, price, size) => {
      if (conId === listed.conId) prints.push({ price, size, ask: quote.ask });
      broker(conId, price, size);
    };
    ib.placeOrder(1, option(strike, OptionType.Call), { action: OrderAction.BUY, totalQuantity: 100, orderType: OrderType.LMT, lmtPrice: limit, transmit: true });
    await advance(10);
    const before = prints.length;
    for (let i = 0; i < 120 && executions.length === 0; i++) await advance(1_000);
    assert.deepEqual(errors, []);
    const since = prints.slice(before);
    const first = since.findIndex((p) => p.price <= limit);
    assert.ok(first > 0, `${since.length} prints, the first at or below ${limit} is #${first}: those above it did not fill it`);
    assert.ok(since[first]!.ask > limit, 'the quote had not come to it: the print filled it');
    assert.deepEqual(executions.map((e) => [e.side, e.price, e.shares]), [['BOT', limit, since[first]!.size]], "the print's size, at the limit");
  } finally {
    ib.disconnect();
    await sim.close();
  }
});
