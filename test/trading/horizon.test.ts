/**
 * The trader reads the horizon its policy names: with a 10 s forecast up
 * and a 5 min forecast down in the same frame, a 5 min policy sells and a
 * 10 s policy buys. A policy naming a horizon the predictions do not carry
 * stops the daemon with one line naming both settings.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ManualClock } from '../../src/clock.js';
import { FileJournal } from '../../src/journal/file-journal.js';
import { createLogger } from '../../src/log.js';
import type { PredictionFrame } from '../../src/models/predictor.js';
import { TwsSimulator } from '../../src/sim/server.js';
import { policySettings } from '../../src/trading/policy.js';
import { PREDICTIONS_TOPIC } from '../../src/topics.js';
import { startBookSession, WallClock } from '../support/book-session.js';
import { bookTrader } from '../support/books.js';
import { until } from '../support/ib-client.js';
import { predictionFrame } from '../support/predictions.js';
import { LogSink } from '../support/probe.js';

const dir = mkdtempSync(join(tmpdir(), 'keel-horizon-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** 10 s: +5 bps; 5 min: -5 bps. */
const bothWays = (at: number): PredictionFrame => ({
  frameAt: at,
  at,
  symbols: ['SPY'],
  horizons: [
    { horizonMs: 10_000, value: Float64Array.of(5), tier: ['base'], models: ['gbdt-base-10s@1'] },
    { horizonMs: 300_000, value: Float64Array.of(-5), tier: ['base'], models: ['gbdt-base-5m@1'] },
  ],
  latencyMs: 0,
  inferenceMs: 0,
  faults: [],
});

async function firstOrder(horizon: string | undefined): Promise<number> {
  const { journal } = await FileJournal.open(join(dir, `${horizon ?? 'default'}.journal`));
  const clock = new ManualClock(100_000);
  const { trader, ledger } = bookTrader({ journal, clock, log: createLogger({ level: 'silent', pretty: false, destination: new LogSink() }), policy: horizon === undefined ? {} : { horizon } });
  try {
    trader.onFrame(bothWays(clock.now()), undefined);
    await trader.settled();
    const orders = [...ledger.orders.values()];
    assert.equal(orders.length, 1);
    return orders[0]!.quantity;
  } finally {
    await journal.close();
  }
}

test('the policy trades the horizon it names: 5m sells on the 5 min forecast, the default 10s buys on the 10 s one', async () => {
  assert.equal(await firstOrder('5m'), -100);
  assert.equal(await firstOrder(undefined), 100);
  assert.equal(await firstOrder('10s'), 100);
  assert.throws(() => policySettings.parse({ horizon: 'soon' }), /'soon' is not a horizon like 10s, 5m or 15m/);
});

test('a policy reading a horizon the predictions do not carry stops the tree, naming the setting and what is served', { timeout: 30_000 }, async () => {
  const sim = new TwsSimulator({ updatesPerSecond: 100, seed: 5 });
  const port = await sim.listen(0);
  try {
    const clock = new WallClock(Date.parse('2026-03-06T15:00:00Z'));
    const s = await startBookSession({ journal: join(dir, 'unserved.journal'), orderIdFile: join(dir, 'order-ids.json'), port, clock, maxDailyLoss: 1_000, feePerOrder: 1, policyHorizon: '15m' });
    // No horizon at all (a cluster's trading node before any worker predicted) says nothing yet.
    s.tree.bus.retain(PREDICTIONS_TOPIC, { ...predictionFrame({ frameAt: clock.now(), symbols: ['SPY'], value: [] }), horizons: [] });
    // Frames until the trader, trading once settled, reads one.
    await until(() => {
      s.tree.bus.retain(PREDICTIONS_TOPIC, predictionFrame({ frameAt: clock.now(), symbols: ['SPY'], value: [5] }));
      return s.tree.errors.length > 0;
    }, 'the tree to fail', 15_000);
    const messages = s.tree.errors.map((e) => String((e as Error).message));
    assert.ok(
      messages.some((m) => m.includes('paper_trader: policy.horizon is 15m, but the predictions carry 10s: serve it in components.predictor.settings.horizons, or set components.paper_trader.settings.policy.horizon to one of those')),
      messages.join('\n'),
    );
    assert.equal(s.ledger.orders.size, 0, 'nothing traded');
  } finally {
    await sim.close();
  }
});
