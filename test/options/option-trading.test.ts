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
import type { FillRecord, OptionContract } from '../../src/journal/records.js';
import { optionRisk } from '../../src/options/option-risk.js';
import { TwsSimulator } from '../../src/sim/server.js';
import { OPTIONS_CHAIN_TOPIC } from '../../src/topics.js';
import type { OptionRisk } from '../../src/trading/option-limits.js';
import { until } from '../support/ib-client.js';
import { journalAndConnection } from '../support/ib-tree.js';
import { mondayMorning } from '../support/option-chain.js';
import { startTree } from '../support/probe.js';

const dir = mkdtempSync(join(tmpdir(), 'keel-option-trading-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('a call bought and sold back in book mode: fills at the touch, 100 shares a contract, option commissions, journaled once', { timeout: 120_000 }, async () => {
  const clock = mondayMorning();
  const sim = new TwsSimulator({ clock, updatesPerSecond: 100, seed: 3 });
  const port = await sim.listen(0);
  const tree = startTree(
    {
      children: [
        ...journalAndConnection(dir, 'options', port),
        componentSpec('subscriptions', 'subscriptions', {
          settings: subscriptionsSettings.parse({ instruments: [{ symbol: 'SPY', depth: { rows: 10 } }] }),
          dependsOn: ['ib_connection'],
        }),
        componentSpec('l2_microstructure', 'l2_microstructure', { settings: l2MicrostructureSettings.parse({}), dependsOn: ['subscriptions'] }),
        componentSpec('risk_gate', 'risk_gate', { settings: riskGateSettings.parse({ initialState: 'ACTIVE' }), dependsOn: ['journal'] }),
        componentSpec('paper_trader', 'paper_trader', { settings: paperTraderSettings.parse({ mode: 'book', replaceAfterMs: 600_000 }), dependsOn: ['l2_microstructure', 'risk_gate'] }),
        componentSpec('option_chain', 'option_chain', { settings: optionChainSettings.parse({ expiries: '0..0', strikes: 'atm ± 3', publishMs: 100 }), dependsOn: ['subscriptions'] }),
      ],
    },
    clock,
  );
  try {
    await until(() => tree.phase() === 'running', 'the tree to run', 15_000);
    const { bus, services } = tree;
    const trader = services.current('trader')!;
    const ledger = services.current('ledger')!;
    const chain = () => bus.latest(OPTIONS_CHAIN_TOPIC)!;
    await until(() => {
      const c = bus.latest(OPTIONS_CHAIN_TOPIC);
      return c !== undefined && c.rows.length > 0 && c.rows.every((r) => r.line === 'live' && r.ask > 0 && r.askSize > 0 && r.bidSize > 0 && r.keel.delta === r.keel.delta);
    }, 'the band live, quoted and priced', 30_000);

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
    tree.actor.send({ type: 'shutdown' });
    await until(() => tree.done, 'the tree to stop');
    await sim.close();
  }
});
