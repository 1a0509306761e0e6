/**
 * An option traded end to end in book mode: keel's real components (books,
 * the risk gate, the journal, option_chain, paper_trader) on the
 * simulator's SPY chain through the unmodified IB client. A call bought
 * and sold back fills against the chain's quotes at the touch, 100 shares a
 * contract, at IBKR's option commission, every fill journaled once; the
 * gate's option limits refuse what crosses them. A vertical goes in and
 * out as one combo each, its legs filled together.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { FillRecord, OptionSettlementRecord } from '../../src/journal/records.js';
import { buildPanels } from '../../src/inspector/panels.js';
import { centsInTheMoney } from '../../src/options/settlement.js';
import type { Clock } from '../../src/clock.js';
import { until } from '../support/ib-client.js';
import { contractOf, deepestInTheMoney, marketAt, mondayMorning, nearestTheMoney, riskOf, startOptionTrading, WALL_START } from '../support/option-chain.js';

const dir = mkdtempSync(join(tmpdir(), 'keel-option-trading-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** The option trading tree in book mode; `options` are the trader's option strategy settings. */
function start(name: string, clock: Clock, options: object = {}, optionLimits: object = {}) {
  return startOptionTrading(dir, name, clock, { options }, optionLimits);
}

test('a call bought and sold back in book mode: fills at the touch, 100 shares a contract, option commissions, journaled once', { timeout: 120_000 }, async () => {
  const clock = mondayMorning();
  const { tree, chain, trader, ledger, stop } = await start('by-hand', clock);
  try {

    const row = nearestTheMoney(chain(), 'C');
    const option = contractOf(row);
    const symbol = row.localSymbol;
    const riskNow = () => riskOf(option, chain(), ledger);

    // Beyond a limit: refused, named.
    const tooMany = trader.orderOption({ option, symbol, quantity: 11, quote: row, risk: riskNow(), reason: 'test' });
    assert.deepEqual(tooMany, { ok: false, reason: `max contracts per order: 11 > 10 (${symbol} buy 11)` });

    const bought = trader.orderOption({ option, symbol, quantity: 2, quote: chain().rows.find((r) => r.conId === row.conId)!, risk: riskNow(), reason: 'test: buy' });
    assert.ok(bought.ok, JSON.stringify(bought));
    await until(() => ledger.positions.get(symbol)?.quantity === 2, 'the buy to fill', 20_000);
    assert.equal(ledger.positions.get(symbol)!.multiplier, 100);
    const held = riskNow();
    assert.ok(Math.abs(held.portfolio.delta - 200 * held.greeks.delta) < 1e-6, 'the portfolio carries the call: 200 shares of delta per unit');
    assert.ok(held.premiumAtRisk > 0);
    // The inspector's panel: the same greeks beside the gate's limits.
    const panel = buildPanels(tree.bus, tree.services, 'running', clock, []).optionRisk!;
    assert.equal(panel.underlying, 'SPY');
    assert.ok(Math.abs(panel.delta.value! - held.portfolio.delta) < 1, `${panel.delta.value} vs ${held.portfolio.delta}`);
    assert.deepEqual([panel.delta.limit, panel.theta.limit, panel.premiumAtRisk.limit, panel.contractsInExpiry.limit, panel.contractsInExpiry.value], [1_000, 2_000, 10_000, 50, 2]);

    const sold = trader.orderOption({ option, symbol, quantity: -2, quote: chain().rows.find((r) => r.conId === row.conId)!, risk: held, reason: 'test: sell' });
    assert.ok(sold.ok, JSON.stringify(sold));
    await until(() => ledger.positions.get(symbol)?.quantity === 0, 'the sell to fill', 20_000);
    await trader.settled();

    const fills = [...ledger.fills.values()].filter((f: FillRecord) => f.symbol === symbol);
    assert.ok(fills.length >= 2);
    assert.equal(new Set(fills.map((f) => f.execId)).size, fills.length, 'each fill once');
    const buys = fills.filter((f) => f.quantity > 0);
    const sells = fills.filter((f) => f.quantity < 0);
    assert.equal(buys.reduce((n, f) => n + f.quantity, 0), 2);
    assert.equal(sells.reduce((n, f) => n + f.quantity, 0), -2);
    // Each order's first fill pays at least the $1 minimum; the whole order 2 × $0.65 plus fees.
    for (const side of [buys, sells]) {
      assert.ok(side[0]!.commission >= 1, JSON.stringify(side));
      const total = side.reduce((n, f) => n + f.commission, 0);
      assert.ok(total >= 1.3 && total < 1.5, `an order's commission and fees: ${total}`);
    }
    const premium = fills.reduce((n, f) => n + f.quantity * f.price * 100, 0);
    const costs = fills.reduce((n, f) => n + f.commission, 0);
    assert.ok(Math.abs(ledger.cash - (1_000_000 - premium - costs)) < 1e-6, `cash ${ledger.cash}`);
    const p = ledger.positions.get(symbol)!;
    assert.ok(Math.abs(p.realizedPnl - -premium) < 1e-6, 'flat again: what was paid and received is realized');
  } finally {
    await stop();
  }
});

test("the option strategy: a rise predicted buys the 0.40-delta call, the time stop sells it; every action journaled with its reason", { timeout: 120_000 }, async () => {
  const s = await start('strategy', mondayMorning(), { enabled: true, entryBps: 2, maxHoldMinutes: 0.02, cooldownMs: 600_000 });
  try {
    s.predict(1);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(s.ledger.orders.size, 0, 'a weak prediction buys nothing');
    s.predict(3);
    await until(() => [...s.ledger.positions.values()].some((p) => p.multiplier === 100 && p.quantity === 1), 'the call bought', 20_000);
    const entry = [...s.ledger.orders.values()][0]!;
    assert.match(entry.reason, /^SPY predicted \+3\.00 bps \(entry 2 bps\): buy the call with delta nearest 0\.4, Δ 0\.\d\d, at the ask$/);
    const bought = s.chain().rows.find((r) => r.localSymbol === entry.symbol)!;
    assert.ok(Math.abs(Math.abs(bought.keel.delta) - 0.4) < 0.15, `delta ${bought.keel.delta}`);
    assert.equal(bought.multiplier, 100, "the listing's multiplier, which the position took");
    // Held 1.2 s at most: the next frame sells it at the bid.
    await new Promise((resolve) => setTimeout(resolve, 1_300));
    s.predict(3);
    await until(() => s.ledger.positions.get(entry.symbol)?.quantity === 0, 'the time stop to sell it', 20_000);
    const exit = [...s.ledger.orders.values()].find((o) => o.quantity < 0)!;
    assert.match(exit.reason, /^time stop: held \d+ min \(at most 0\.02\)$/);
    assert.equal(s.ledger.orders.size, 2, 'no second entry within the cooldown');
  } finally {
    await s.stop();
  }
});

/** The market clock of heldThroughTheClose: 8 minutes before the close, passing at 30 times real time (16 s). */
const BEFORE_CLOSE_MS = 8 * 60_000;
const CLOSE_SPEED = 30;

test('a vertical bought and sold back as one combo each in book mode: every leg fill journaled once, each leg at its own touch, flat at the end, cash to the cent', { timeout: 120_000 }, async () => {
  const s = await start('vertical', mondayMorning(), { enabled: true, structure: 'vertical', entryBps: 2, maxHoldMinutes: 0.02, cooldownMs: 600_000 });
  const journaled: FillRecord[] = [];
  s.ledger.onEntry(({ record }) => record.type === 'fill' && journaled.push(record));
  try {
    const legsHeld = (quantities: number[]) => {
      const held = [...s.ledger.positions.values()].filter((p) => p.multiplier === 100).map((p) => p.quantity);
      return held.length === quantities.length && quantities.every((q) => held.includes(q));
    };
    s.predict(3);
    await until(() => legsHeld([1, -1]), 'the vertical bought: one call long, one short', 20_000);
    const [entry] = [...s.ledger.orders.values()];
    assert.equal(entry!.legs?.length, 2, 'one order, two legs');
    assert.match(entry!.reason, /^SPY predicted \+3\.00 bps \(entry 2 bps\): buy the \d+\/\d+ call vertical \(bought: the call with delta nearest 0\.4, Δ 0\.\d\d; sold: 1 strike further out\) at the touches' net debit \d/);
    const [bought, sold] = entry!.legs!;
    assert.deepEqual([bought!.ratio, sold!.ratio], [1, -1]);
    assert.ok(sold!.option.strike > bought!.option.strike, 'the sold call further out of the money');
    // Held 1.2 s at most: the next frame sells it back as one combo.
    await new Promise((resolve) => setTimeout(resolve, 1_300));
    s.predict(3);
    await until(() => legsHeld([0, 0]), 'the time stop to sell the vertical back', 20_000);
    await s.trader.settled();
    const orders = [...s.ledger.orders.values()];
    assert.equal(orders.length, 2, 'in and out, no second entry within the cooldown');
    const exit = orders[1]!;
    assert.deepEqual([exit.symbol, exit.quantity, exit.state, entry!.state], [entry!.symbol, -1, 'filled', 'filled']);
    assert.match(exit.reason, /^time stop: held \d+ min \(at most 0\.02\)$/);

    // Every leg fill journaled once: one buy and one sell of each leg, each combo's net within its limit.
    assert.equal(journaled.length, 4);
    assert.equal(new Set(journaled.map((f) => f.execId)).size, 4);
    for (const leg of [bought!, sold!]) {
      const fills = journaled.filter((f) => f.symbol === leg.symbol);
      assert.deepEqual(fills.map((f) => f.quantity).sort(), [-1, 1], leg.symbol);
      assert.deepEqual(fills.map((f) => f.ref), [entry!.ref, exit.ref]);
    }
    const net = (ref: string) => journaled.filter((f) => f.ref === ref).reduce((n, f) => n + (f.symbol === bought!.symbol ? 1 : -1) * f.price, 0);
    assert.ok(net(entry!.ref) <= entry!.limitPrice + 1e-9, `paid ${net(entry!.ref)} for a limit of ${entry!.limitPrice}`);
    assert.ok(net(exit.ref) >= exit.limitPrice - 1e-9, `received ${net(exit.ref)} for a limit of ${exit.limitPrice}`);
    // One contract a leg: the $1 minimum, ORF and OCC; a sale TAF and the SEC fee too; to the cent.
    for (const f of journaled) {
      const fees = 1 + 0.02685 + 0.02 + (f.quantity < 0 ? 0.00279 + f.price * 100 * 0.000008 : 0);
      assert.equal(f.commission, Math.round(fees * 100) / 100, `${f.execId}: ${f.commission}`);
    }
    const cash = journaled.reduce((c, f) => c - f.quantity * f.price * 100 - f.commission, 1_000_000);
    assert.equal(Math.round(s.ledger.cash * 100), Math.round(cash * 100), `cash ${s.ledger.cash}`);
    const realized = [bought!, sold!].reduce((n, l) => n + s.ledger.positions.get(l.symbol)!.realizedPnl, 0);
    assert.ok(Math.abs(realized - journaled.reduce((n, f) => n - f.quantity * f.price * 100, 0)) < 1e-6, 'flat again: what was paid and received is realized');
  } finally {
    await s.stop();
  }
});

/** A call bought in the last minutes before the close of `closeUtc` (market time running fast) and held through it: exercised or expired as the underlying says, booked to the cent. */
async function heldThroughTheClose(name: string, closeUtc: number): Promise<void> {
  // Discovery, the band going live and the entry must all fit before the close, on a loaded machine too.
  const clock = marketAt(closeUtc - BEFORE_CLOSE_MS, CLOSE_SPEED);
  // Minutes from the close an at-the-money call's theta runs at thousands of dollars a day: the default limit rightly refuses it.
  const s = await start(name, clock, { enabled: true, entryBps: 2, minMinutesToExpiry: 0, holdThroughExpiry: true, maxHoldMinutes: 60, delta: 0.5 }, { maxTheta: 1e9, maxGamma: 1e9 });
  try {
    s.predict(3);
    await until(() => [...s.ledger.positions.values()].some((p) => p.multiplier === 100 && p.quantity === 1), 'the call bought', 20_000);
    assert.ok(clock.wallNow() < closeUtc, 'bought before the close');
    const symbol = [...s.ledger.options.keys()][0]!;
    const option = s.ledger.options.get(symbol)!;
    const settled: OptionSettlementRecord[] = [];
    s.ledger.onEntry(({ record }) => record.type === 'option.settlement' && settled.push(record));
    const cashBefore = s.ledger.cash;
    await until(() => settled.length === 1, 'the expiry to settle the call', 60_000);
    const [r] = settled;
    assert.equal(r!.symbol, symbol);
    assert.ok(r!.at >= closeUtc, 'settled at the close, not before');
    assert.equal(s.ledger.positions.get(symbol)!.quantity, 0);
    const itm = Math.round(r!.underlyingClose! * 100) - Math.round(option.strike * 100);
    if (itm >= 1) {
      assert.equal(r!.outcome, 'exercised');
      assert.equal(s.ledger.positions.get('SPY')!.quantity, 100);
      assert.equal(s.ledger.cash, cashBefore - 100 * option.strike);
    } else {
      assert.equal(r!.outcome, 'expired');
      assert.equal(s.ledger.positions.get('SPY')?.quantity ?? 0, 0);
      assert.equal(s.ledger.cash, cashBefore);
    }
  } finally {
    await s.stop();
  }
}

test('a Monday 0DTE held through the 16:00 close in book mode: exercised or expired as the underlying says, booked to the cent', { timeout: 120_000 }, async () => {
  await heldThroughTheClose('monday', WALL_START + 5 * 3_600_000);
});

test("a holiday-eve expiry (the day after Thanksgiving) settles at NYSE's 13:00 close", { timeout: 120_000 }, async () => {
  await heldThroughTheClose('holiday-eve', Date.UTC(2026, 10, 27, 18, 0));
});

test('a contrary instruction before the close: an in-the-money call told not to exercise expires, no shares delivered', { timeout: 120_000 }, async () => {
  const close = WALL_START + 5 * 3_600_000;
  const clock = marketAt(close - BEFORE_CLOSE_MS, CLOSE_SPEED);
  const s = await start('do-not-exercise', clock, {}, { maxTheta: 1e9, maxGamma: 1e9 });
  try {
    // The deepest call in the money: it stays in the money through the close.
    const row = deepestInTheMoney(s.chain(), 'C');
    const option = contractOf(row);
    const risk = riskOf(option, s.chain(), s.ledger);
    assert.ok(s.trader.orderOption({ option, symbol: row.localSymbol, quantity: 1, quote: row, risk, reason: 'test: held' }).ok);
    await until(() => s.ledger.positions.get(row.localSymbol)?.quantity === 1, 'the call bought', 20_000);
    assert.deepEqual(await s.trader.doNotExercise(row.localSymbol, 'test: not wanted'), { ok: true });
    const settled: OptionSettlementRecord[] = [];
    s.ledger.onEntry(({ record }) => record.type === 'option.settlement' && settled.push(record));
    await until(() => settled.length === 1, 'the expiry to settle the call', 60_000);
    assert.ok(centsInTheMoney(option, settled[0]!.underlyingClose!) >= 1, `in the money at the close: ${settled[0]!.underlyingClose}`);
    assert.deepEqual([settled[0]!.outcome, settled[0]!.shares], ['expired', 0]);
    assert.match(settled[0]!.reason, /not exercised by instruction: expired$/);
    assert.equal(s.ledger.positions.get('SPY')?.quantity ?? 0, 0, 'no shares delivered');
  } finally {
    await s.stop();
  }
});
