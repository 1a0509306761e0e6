/**
 * An option traded end to end in book mode: keel's real components (books,
 * the risk gate, the journal, option_chain, paper_trader) on the
 * simulator's SPY chain through the unmodified IB client. A call bought
 * and sold back fills against the chain's quotes at the touch, 100 shares a
 * contract, at IBKR's option commission, every fill journaled once; the
 * gate's option limits refuse what crosses them.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { l2MicrostructureSettings } from '../../src/actors/l2-microstructure.js';
import { optionChainSettings } from '../../src/actors/option-chain.js';
import { paperTraderSettings } from '../../src/actors/paper-trader.js';
import { componentSpec } from '../../src/actors/registry.js';
import { riskGateSettings } from '../../src/actors/risk-gate.js';
import { subscriptionsSettings } from '../../src/actors/subscriptions.js';
import type { FillRecord, OptionContract, OptionSettlementRecord } from '../../src/journal/records.js';
import type { PredictionFrame } from '../../src/models/predictor.js';
import { buildPanels } from '../../src/inspector/panels.js';
import { optionRisk } from '../../src/options/option-risk.js';
import { TwsSimulator } from '../../src/sim/server.js';
import type { Clock } from '../../src/clock.js';
import { OPTIONS_CHAIN_TOPIC, PREDICTIONS_TOPIC } from '../../src/topics.js';
import type { OptionRisk } from '../../src/trading/option-limits.js';
import { until } from '../support/ib-client.js';
import { journalAndConnection } from '../support/ib-tree.js';
import { mondayMorning, WALL_START } from '../support/option-chain.js';
import { startTree } from '../support/probe.js';

const dir = mkdtempSync(join(tmpdir(), 'keel-option-trading-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Books, gate, paper trader (book mode; its stock policy out of reach) and the chain, on the simulator's SPY chain; `options` are the trader's option strategy settings. */
async function start(name: string, clock: Clock, options: object = {}, optionLimits: object = {}) {
  const sim = new TwsSimulator({ clock, updatesPerSecond: 100, seed: 3 });
  const port = await sim.listen(0);
  const tree = startTree(
    {
      children: [
        ...journalAndConnection(dir, name, port),
        componentSpec('subscriptions', 'subscriptions', {
          settings: subscriptionsSettings.parse({ instruments: [{ symbol: 'SPY', depth: { rows: 10 } }] }),
          dependsOn: ['ib_connection'],
        }),
        componentSpec('l2_microstructure', 'l2_microstructure', { settings: l2MicrostructureSettings.parse({}), dependsOn: ['subscriptions'] }),
        componentSpec('risk_gate', 'risk_gate', { settings: riskGateSettings.parse({ initialState: 'ACTIVE', limits: { options: optionLimits } }), dependsOn: ['journal'] }),
        componentSpec('paper_trader', 'paper_trader', { settings: paperTraderSettings.parse({ mode: 'book', replaceAfterMs: 600_000, policy: { entryBps: 1_000 }, options }), dependsOn: ['l2_microstructure', 'risk_gate'] }),
        componentSpec('option_chain', 'option_chain', { settings: optionChainSettings.parse({ expiries: '0..0', strikes: 'atm ± 3', publishMs: 100 }), dependsOn: ['subscriptions'] }),
      ],
    },
    clock,
  );
  await until(() => tree.phase() === 'running', 'the tree to run', 15_000);
  const chain = () => tree.bus.latest(OPTIONS_CHAIN_TOPIC)!;
  await until(() => {
    const c = tree.bus.latest(OPTIONS_CHAIN_TOPIC);
    // Near the close a deep in-the-money quote may have no IV (and so no delta): the calls near the money must.
    return c !== undefined && c.rows.length > 0 && c.rows.every((r) => r.line === 'live' && r.ask > 0 && r.askSize > 0) && c.rows.filter((r) => r.right === 'C' && r.keel.delta === r.keel.delta).length >= 3;
  }, 'the band live, quoted and priced', 30_000);
  return {
    tree,
    chain,
    trader: tree.services.current('trader')!,
    ledger: tree.services.current('ledger')!,
    /** A prediction frame for SPY, as the predictor would publish it. */
    predict(bps: number) {
      const at = clock.now();
      const frame: PredictionFrame = { frameAt: at, at, symbols: ['SPY'], value: Float64Array.of(bps), tier: ['test'], models: ['test'], latencyMs: 0, inferenceMs: 0, faults: [] };
      tree.bus.retain(PREDICTIONS_TOPIC, frame);
    },
    async stop() {
      tree.actor.send({ type: 'shutdown' });
      await until(() => tree.done, 'the tree to stop');
      await sim.close();
    },
  };
}

test('a call bought and sold back in book mode: fills at the touch, 100 shares a contract, option commissions, journaled once', { timeout: 120_000 }, async () => {
  const clock = mondayMorning();
  const { tree, chain, trader, ledger, stop } = await start('by-hand', clock);
  try {

    // The call nearest the money.
    const row = chain().rows.filter((r) => r.right === 'C').sort((a, b) => Math.abs(a.strike - chain().spot) - Math.abs(b.strike - chain().spot))[0]!;
    const option: OptionContract = { conId: row.conId, underlying: 'SPY', expiry: row.expiry, strike: row.strike, right: 'C', multiplier: 100 };
    const symbol = row.localSymbol;
    const riskNow = (): OptionRisk => {
      const risk = optionRisk(option, chain(), ledger);
      assert.ok(typeof risk !== 'string', String(risk));
      return risk;
    };

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

/** A call bought in the last 40 s before the close of `closeUtc` and held through it: exercised or expired as the underlying says, booked to the cent. */
async function heldThroughTheClose(name: string, closeUtc: number): Promise<void> {
  // Discovery, the band going live and the entry must all fit before the close, on a loaded machine too.
  const offset = closeUtc - 40_000 - Date.now();
  const clock: Clock = { ...mondayMorning(), wallNow: () => Date.now() + offset };
  // 40 s from the close an at-the-money call's theta runs at thousands of dollars a day: the default limit rightly refuses it.
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
    const itm = Math.round(r!.underlyingClose * 100) - Math.round(option.strike * 100);
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
