/**
 * An option traded end to end in ib mode: keel's real components (books,
 * the risk gate, the journal, option_chain, paper_trader in `mode: ib`)
 * sending OPT orders to the simulator's broker through the unmodified IB
 * client. A call bought and sold back fills on the chain's quote, each
 * fill journaled once with the commission the broker reported (IBKR's
 * option schedule), and the broker's position report carries the whole
 * contract as the client decodes it; a contract that is not listed is
 * refused with IB's error 200. A vertical goes as one BAG each way, its
 * executions per leg. Held through the close (a Monday, a holiday eve),
 * the broker settles without a word, as IB does, and keel recognises it
 * from the broker's positions: the journal's account equals the broker's,
 * to the cent; a call told not to exercise (a lapse sent to TWS) expires.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { EventName, type Contract } from '@stoqey/ib';
import type { Clock } from '../../src/clock.js';
import type { FillRecord, OptionContract, OptionSettlementRecord } from '../../src/journal/records.js';
import { comboRisk } from '../../src/options/option-risk.js';
import { OPTION_COMMISSIONS } from '../../src/sim/broker.js';
import { OptionOrderCost } from '../../src/trading/option-commissions.js';
import { connectClient, until } from '../support/ib-client.js';
import { contractOf, deepestInTheMoney, marketAt, mondayMorning, nearestTheMoney, riskOf, startOptionTrading, WALL_START } from '../support/option-chain.js';

const ACCOUNT = 'DU1234567';
/** Market time per real time in the expiry tests. */
const CLOSE_SPEED = 15;
const dir = mkdtempSync(join(tmpdir(), 'keel-option-trading-ib-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** The option trading tree with the paper trader in ib mode; `trader` adds to its settings. */
function start(name: string, clock: Clock = mondayMorning(), trader: object = {}, optionLimits: object = {}) {
  return startOptionTrading(dir, name, clock, { mode: 'ib', ...trader }, optionLimits);
}

/** What reqPositions reports to a client of its own (another client id), as the unmodified client decodes it. */
async function brokerPositions(port: number): Promise<[string, Contract, number, number | undefined][]> {
  const { ib } = await connectClient(port, 77);
  try {
    const positions: [string, Contract, number, number | undefined][] = [];
    ib.on(EventName.position, (account: string, contract: Contract, pos: number, avgCost?: number) => positions.push([account, contract, pos, avgCost]));
    const ended = new Promise((resolve) => ib.once(EventName.positionEnd, resolve));
    ib.reqPositions();
    await ended;
    return positions;
  } finally {
    ib.disconnect();
  }
}

test('a call bought and sold back in ib mode: OPT orders to the broker, fills journaled once at its commission, its position report the whole contract', { timeout: 120_000 }, async () => {
  const { sim, port, chain, trader, ledger, stop } = await start('by-hand');
  try {
    const row = nearestTheMoney(chain(), 'C');
    const option = contractOf(row);
    const symbol = row.localSymbol;
    const riskNow = () => riskOf(option, chain(), ledger);
    const quoteNow = () => chain().rows.find((r) => r.conId === row.conId)!;

    const bought = trader.orderOption({ option, symbol, quantity: 2, quote: quoteNow(), risk: riskNow(), reason: 'test: buy' });
    assert.ok(bought.ok, JSON.stringify(bought));
    await until(() => ledger.positions.get(symbol)?.quantity === 2, 'the buy to fill', 20_000);
    assert.equal(ledger.positions.get(symbol)!.multiplier, 100);

    // The broker's own report of the position, decoded by the unmodified client: the whole contract.
    const reports = (await brokerPositions(port)).filter(([, c]) => c.localSymbol === symbol);
    assert.equal(reports.length, 1, 'one position report for the call');
    const [account, contract, position, avgCost] = reports[0]!;
    assert.deepEqual(
      { account, conId: contract.conId, symbol: contract.symbol, secType: contract.secType, expiry: contract.lastTradeDateOrContractMonth, strike: contract.strike, right: contract.right, multiplier: contract.multiplier, position },
      { account: ACCOUNT, conId: row.conId, symbol: 'SPY', secType: 'OPT', expiry: row.expiry, strike: row.strike, right: 'C', multiplier: 100, position: 2 },
    );
    // IB's average cost is per contract: 100 shares' premium and the commission.
    const buys = sim.broker.executions.filter((e) => e.orderRef === bought.ref);
    const paid = buys.reduce((n, e) => n + e.shares * e.price * 100 + e.commission, 0);
    assert.ok(Math.abs(avgCost! - paid / 2) < 1e-6, `average cost ${avgCost}, paid ${paid} for 2`);

    const sold = trader.orderOption({ option, symbol, quantity: -2, quote: quoteNow(), risk: riskNow(), reason: 'test: sell' });
    assert.ok(sold.ok, JSON.stringify(sold));
    await until(() => ledger.positions.get(symbol)?.quantity === 0, 'the sell to fill', 20_000);
    await trader.settled();
    assert.equal(sim.broker.positionOf(ACCOUNT, symbol)!.position, 0, 'flat at the broker too');

    // Each of the broker's executions journaled once, with the commission it reported: IBKR's option schedule over the order's fills.
    const fills = [...ledger.fills.values()].filter((f: FillRecord) => f.symbol === symbol);
    const executions = sim.broker.executions.filter((e) => e.contract.localSymbol === symbol);
    assert.deepEqual(fills.map((f) => f.execId).sort(), executions.map((e) => e.execId).sort(), 'each execution journaled once');
    for (const ref of [bought.ref!, sold.ref!]) {
      const cost = new OptionOrderCost(OPTION_COMMISSIONS);
      const mine = executions.filter((e) => e.orderRef === ref);
      assert.ok(mine.length > 0, `executions of ${ref}`);
      for (const e of mine) {
        const journaled = ledger.fills.get(e.execId)!;
        assert.deepEqual([journaled.ref, journaled.quantity, journaled.price], [ref, e.side === 'BOT' ? e.shares : -e.shares, e.price]);
        assert.equal(journaled.commission, cost.fill(journaled.quantity, e.price, 100), `commission of ${e.execId}`);
      }
    }
    const premium = fills.reduce((n, f) => n + f.quantity * f.price * 100, 0);
    const costs = fills.reduce((n, f) => n + f.commission, 0);
    assert.ok(costs >= 2.6 && costs < 3, `two orders' commission and fees: ${costs}`);
    assert.ok(Math.abs(ledger.cash - (1_000_000 - premium - costs)) < 1e-6, `cash ${ledger.cash}`);
  } finally {
    await stop();
  }
});

test('an option the listing does not have is refused by the broker with error 200, named in the journal', { timeout: 120_000 }, async () => {
  const { chain, trader, ledger, stop } = await start('unknown');
  try {
    const row = chain().rows.find((r) => r.right === 'C')!;
    const real = contractOf(row);
    const risk = riskOf(real, chain(), ledger);
    // Half a dollar off the listed strikes, no conId: nothing at the broker matches it.
    const option: OptionContract = { ...real, conId: 0, strike: row.strike + 0.5 };
    const symbol = `SPY   ${row.expiry.slice(2)}C${String((row.strike + 0.5) * 1000).padStart(8, '0')}`;
    const why: string[] = [];
    ledger.onEntry(({ record }) => record.type === 'order.status' && record.state === 'rejected' && why.push(record.reason ?? ''));
    const placed = trader.orderOption({ option, symbol, quantity: 1, quote: row, risk, reason: 'test: not listed' });
    assert.ok(placed.ok, JSON.stringify(placed));
    await until(() => ledger.order(placed.ref!)?.state === 'rejected', 'the order to be rejected', 10_000);
    assert.deepEqual(why, ['IB 200: No security definition has been found for the request']);
    assert.equal(ledger.positions.get(symbol)?.quantity ?? 0, 0);
  } finally {
    await stop();
  }
});

/**
 * A long call and a short put bought 8 minutes (market time, passing at 15
 * times real time: 32 s, room for a loaded machine) before the close of
 * `close` and held through it: the broker settles them without an event,
 * reconciliation books it, and the journal's account equals the broker's
 * to the cent.
 */
async function heldThroughTheClose(name: string, close: number): Promise<void> {
  const clock = marketAt(close - 8 * 60_000, CLOSE_SPEED);
  // Near the close theta and gamma run high.
  const { sim, chain, trader, ledger, stop } = await start(name, clock, { reconcile: { afterExpiryMs: 500 } }, { maxTheta: 1e9, maxGamma: 1e9, allowShortOptions: true });
  try {
    const bought: string[] = [];
    for (const [row, quantity] of [[nearestTheMoney(chain(), 'C'), 2], [nearestTheMoney(chain(), 'P'), -1]] as const) {
      const option = contractOf(row);
      const risk = riskOf(option, chain(), ledger);
      const placed = trader.orderOption({ option, symbol: row.localSymbol, quantity, quote: row, risk, reason: 'test: held through the close' });
      assert.ok(placed.ok, JSON.stringify(placed));
      await until(() => ledger.positions.get(row.localSymbol)?.quantity === quantity, `${row.localSymbol} to fill`, 20_000);
      bought.push(row.localSymbol);
    }
    assert.ok(clock.wallNow() < close, 'both traded before the close');
    const settled: OptionSettlementRecord[] = [];
    ledger.onEntry(({ record }) => record.type === 'option.settlement' && settled.push(record));
    await until(() => settled.length === 2, 'reconciliation to book both settlements', 60_000);
    assert.deepEqual(settled.map((r) => r.symbol).sort(), [...bought].sort());
    assert.ok(settled.every((r) => r.at >= close && /^recognised at reconciliation/.test(r.reason)), JSON.stringify(settled));
    for (const symbol of bought) assert.equal(ledger.positions.get(symbol)!.quantity, 0, `${symbol} gone from the journal`);
    // The broker's account, exercises and assignments included, equals the journal's: positions and cash.
    const account = [...sim.broker.accounts.all()].find((a) => a.code === ACCOUNT)!;
    const theirs = new Map([...account.holdings.values()].filter((h) => h.position !== 0).map((h) => [h.contract.localSymbol, h.position]));
    const ours = new Map([...ledger.positions].filter(([, p]) => p.quantity !== 0).map(([symbol, p]) => [symbol, p.quantity]));
    assert.deepEqual(ours, theirs);
    const shares = settled.reduce((n, r) => n + r.shares, 0);
    assert.equal(ledger.positions.get('SPY')?.quantity ?? 0, shares);
    assert.equal(Math.round(ledger.cash * 100), Math.round(account.cash * 100), `journal cash ${ledger.cash}, broker ${account.cash}`);
  } finally {
    await stop();
  }
}

test('a Monday 0DTE long call and short put held through the 16:00 close in ib mode: the broker settles without an event, reconciliation books it, account equal to the broker\'s to the cent', { timeout: 120_000 }, async () => {
  await heldThroughTheClose('expiry-monday', WALL_START + 5 * 3_600_000);
});

test("the same on a holiday eve in ib mode (the day after Thanksgiving): the broker settles at NYSE's 13:00 close", { timeout: 120_000 }, async () => {
  await heldThroughTheClose('expiry-holiday-eve', Date.UTC(2026, 10, 27, 18, 0));
});

test('a call vertical bought and sold back in ib mode, each as one BAG: every leg execution journaled once, the broker flat, cash equal to the broker\'s', { timeout: 120_000 }, async () => {
  const { sim, chain, trader, ledger, stop } = await start('vertical');
  try {
    const calls = chain().rows.filter((r) => r.right === 'C').sort((a, b) => a.strike - b.strike);
    const atm = calls.reduce((best, r) => (Math.abs(r.strike - chain().spot) < Math.abs(best.strike - chain().spot) ? r : best));
    const wing = calls[calls.indexOf(atm) + 1]!;
    const leg = (row: typeof atm, ratio: number) => ({ symbol: row.localSymbol, ratio, option: contractOf(row) });
    const trade = async (quantity: number, reason: string) => {
      const legs = [leg(atm, 1), leg(wing, -1)];
      const risk = comboRisk(legs, chain(), ledger);
      assert.ok(typeof risk !== 'string', String(risk));
      const placed = trader.orderCombo({ legs, quantity, risk, reason });
      assert.ok(placed.ok, JSON.stringify(placed));
      await until(() => ledger.order(placed.ref!)?.state === 'filled', `the combo ${reason} to fill`, 20_000);
      return placed.ref!;
    };
    const bought = await trade(1, 'buy');
    assert.deepEqual([ledger.positions.get(atm.localSymbol)!.quantity, ledger.positions.get(wing.localSymbol)!.quantity], [1, -1]);
    const sold = await trade(-1, 'sell');
    await trader.settled();
    for (const symbol of [atm.localSymbol, wing.localSymbol]) {
      assert.equal(ledger.positions.get(symbol)!.quantity, 0, symbol);
      assert.equal(sim.broker.positionOf(ACCOUNT, symbol)?.position ?? 0, 0, `${symbol} at the broker`);
    }
    // One BAG order each way at the broker, one execution per leg, each journaled once under its leg.
    const bags = sim.broker.allOrders().filter((o) => o.orderRef === bought || o.orderRef === sold);
    assert.deepEqual(bags.map((o) => o.contract.secType), ['BAG', 'BAG']);
    const executions = sim.broker.executions.filter((e) => e.orderRef === bought || e.orderRef === sold);
    assert.equal(executions.length, 4);
    assert.deepEqual([...ledger.fills.keys()].filter((id) => executions.some((e) => e.execId === id)).sort(), executions.map((e) => e.execId).sort());
    for (const e of executions) assert.equal(ledger.fills.get(e.execId)!.symbol, e.contract.localSymbol);
    const account = sim.broker.accounts.get(ACCOUNT)!;
    assert.equal(Math.round(ledger.cash * 100), Math.round(account.cash * 100), `journal cash ${ledger.cash}, broker ${account.cash}`);
  } finally {
    await stop();
  }
});

test('do not exercise, in ib mode: the lapse goes to TWS, the broker lets the in-the-money call expire, and reconciliation books it as expired', { timeout: 120_000 }, async () => {
  const close = WALL_START + 5 * 3_600_000;
  const clock = marketAt(close - 8 * 60_000, CLOSE_SPEED);
  const { sim, chain, trader, ledger, stop } = await start('lapse', clock, { reconcile: { afterExpiryMs: 500 } }, { maxTheta: 1e9, maxGamma: 1e9 });
  try {
    // The deepest call in the money: it stays in the money through the close.
    const row = deepestInTheMoney(chain(), 'C');
    const option = contractOf(row);
    const risk = riskOf(option, chain(), ledger);
    assert.ok(trader.orderOption({ option, symbol: row.localSymbol, quantity: 1, quote: row, risk, reason: 'test: held' }).ok);
    await until(() => ledger.positions.get(row.localSymbol)?.quantity === 1, 'the call bought', 20_000);
    assert.deepEqual(await trader.doNotExercise(row.localSymbol, 'test: not wanted'), { ok: true });
    const settled: OptionSettlementRecord[] = [];
    ledger.onEntry(({ record }) => record.type === 'option.settlement' && settled.push(record));
    await until(() => settled.length === 1, 'reconciliation to book the expiry', 60_000);
    assert.deepEqual([settled[0]!.outcome, settled[0]!.shares], ['expired', 0]);
    assert.equal(sim.broker.positionOf(ACCOUNT, 'SPY')?.position ?? 0, 0, 'the broker delivered no shares');
    assert.equal(ledger.positions.get('SPY')?.quantity ?? 0, 0);
  } finally {
    await stop();
  }
});
