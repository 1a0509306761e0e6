/**
 * A 5,000-instrument universe end to end: the real simulator with 5,000
 * instruments, the unmodified @stoqey/ib client inside ib_connection, the
 * subscription manager staging the universe, and the books, features and
 * feature health downstream.
 *
 * IB's pacing (45 requests a second from keel, 50 enforced by the
 * simulator with error 100 and a disconnect) makes 5,006 requests take
 * about two minutes, so here the account has 1,000 market-data lines: the
 * manager stages 1,006 feeds (3 depth, 3 tick-by-tick, 1,000 quote lines)
 * at the real rate in about 25 s and the other 4,000 quote lines wait
 * beyond the budget. Staging all 5,000 at that rate is covered in
 * simulated time by staging.test.ts, and live by `keel run --config
 * config/universe-5000.yaml`.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { featureHealthSettings } from '../../src/actors/feature-health.js';
import { featuresSettings } from '../../src/actors/features.js';
import { ibConnectionSettings } from '../../src/actors/ib-connection.js';
import { l2MicrostructureSettings } from '../../src/actors/l2-microstructure.js';
import { subscriptionsSettings } from '../../src/actors/subscriptions.js';
import { systemClock } from '../../src/clock.js';


import { DEPTH_IMBALANCE_5, type FeatureFrame, MID, TRADE_INTENSITY } from '../../src/market/features.js';
import { TwsSimulator } from '../../src/sim/server.js';
import { until } from '../support/ib-client.js';
import { startTree } from '../support/probe.js';
import { FEATURE_HEALTH_TOPIC, FEATURES_TOPIC, IB_STATUS_TOPIC, SUBSCRIPTIONS_STATUS_TOPIC } from '../../src/topics.js';
import { componentSpec } from '../../src/actors/registry.js';

const dir = mkdtempSync(join(tmpdir(), 'keel-scale-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const LINES = 1_000;
const BOOKED = ['SPY', 'QQQ', 'AAPL'];

test('5,000 instruments: staged under the budgets through the pacer with a progress line, data of the staged ones in the features, nothing halting for the rest', async () => {
  const sim = new TwsSimulator({ syntheticInstruments: 4_996, updatesPerSecond: 50, syntheticUpdatesPerSecond: 2, limits: { marketDataLines: LINES } });
  const port = await sim.listen(0);
  const tree = startTree(
    {
      children: [
        componentSpec('ib_connection', 'ib_connection', { settings: ibConnectionSettings.parse({ port, reconnect: { minMs: 50, maxMs: 500, randomFactor: 0.2, maxAttempts: 0 }, orderIdFile: join(dir, 'ids.json') }) }),
        componentSpec('subscriptions', 'subscriptions', { settings: subscriptionsSettings.parse({
            instruments: [...BOOKED.map((symbol) => ({ symbol, depth: { rows: 10 }, ticks: 'AllLast' })), { symbol: 'MSFT' }, { symbols: 'SYN0001..SYN4996' }],
            budgets: { marketDataLines: LINES },
            quotesSilenceMs: 60_000,
            progressMs: 2_000,
          }),
          dependsOn: ['ib_connection'] }),
        componentSpec('l2_microstructure', 'l2_microstructure', { settings: l2MicrostructureSettings.parse({}), dependsOn: ['subscriptions'] }),
        // Short horizons: an instrument is warm about a second after its first two-sided quote.
        componentSpec('features', 'features', {
          settings: featuresSettings.parse({ samplesMs: [100, 1_000], volHalfLivesMs: [1_000], returnHorizonsMs: [1_000] }),
          dependsOn: ['l2_microstructure'] }),
        componentSpec('feature_health', 'feature_health', { settings: featureHealthSettings.parse({ advisory: ['ret_1s'] }), dependsOn: ['features'] }),
      ],
    },
    systemClock,
  );
  const states: string[] = [];
  tree.bus.subscribe(IB_STATUS_TOPIC, (s) => states.push(s.state));
  let frame: FeatureFrame | undefined;
  tree.bus.subscribe(FEATURES_TOPIC, (f) => {
    if (f.base) frame = f;
  });
  const status = () => tree.bus.latest(SUBSCRIPTIONS_STATUS_TOPIC);
  let maxWaiting = 0;
  try {
    await until(
      () => {
        const link = tree.services.current('ibLink');
        if (link) maxWaiting = Math.max(maxWaiting, link.pacer.waiting);
        return status()?.counts.live === LINES + 6;
      },
      `${LINES + 6} feeds live`,
      55_000,
    );
    const engine = tree.services.current('featureEngine')!;
    const symbols = engine.instruments;
    const staged = (i: number) => i < LINES;
    await until(() => frame !== undefined && frame.warm.subarray(0, LINES).every((w) => w === 1), 'every staged instrument warm', 10_000);

    // The budgets and IB's message rate held: no refusal, no disconnect.
    assert.deepEqual(states, ['connected'], 'never disconnected: the simulator drops a client that sends more than 50 messages in a second');
    const refusals = tree.sink.lines.filter((l) => [100, 101, 309, 10190].includes(l.code as number));
    assert.deepEqual(refusals, []);
    const feeds = sim.marketData.feedsOf([...sim.sessions][0]!);
    assert.deepEqual(
      { quotes: feeds.filter((f) => f.kind === 'quotes').length, depth: feeds.filter((f) => f.kind === 'depth').length, ticks: feeds.filter((f) => f.kind === 'ticks').length },
      { quotes: LINES, depth: 3, ticks: 3 },
    );
    // A second's worth of staged requests, plus what others send meanwhile (the connection's liveness probe): never thousands.
    assert.ok(maxWaiting <= 50, `at most about a second's worth of requests waited in the pacer, saw ${maxWaiting}`);
    const progress = status()!.progress;
    assert.deepEqual(progress.quotes, { wanted: 5_000, budget: LINES, live: LINES, asked: 0, queued: 0, toStage: 0, beyondBudget: 4_000, refused: 0 });
    assert.equal(status()!.feeds.find((f) => f.symbol === 'SYN4996')!.note, `waiting for a quotes slot (${LINES} in use)`);

    // Progress was reported while staging, with an ETA that came down, and once at the end.
    const lines = tree.sink.lines.filter((l) => l.actor === 'subscriptions').map((l) => String(l.msg));
    const progressLines = lines.filter((m) => m.startsWith('subscribed '));
    assert.ok(progressLines.length >= 5, `a progress line every 2 s of about 25 s of staging, got ${progressLines.length}`);
    const etas = progressLines.map((m) => {
      assert.match(m, /^subscribed [\d,]+ \/ 5,000 quote lines, 3 \/ 3 depth, 3 \/ 3 tick-by-tick; [\d,]+ requests to go at 40\/s, ETA \d+ s(; [\d,]+ asked, awaiting data)?; 4,000 quote lines wait beyond the budget of 1,000$/);
      return Number(/ETA (\d+) s/.exec(m)![1]);
    });
    assert.ok(etas.every((eta, k) => k === 0 || eta <= etas[k - 1]!) && etas[0]! > etas.at(-1)!, `the ETA comes down: ${etas.join(', ')}`);
    assert.ok(
      // Staging ends when no request is left to send; the last answers may still be on their way.
      lines.some((m) => /^subscriptions staged in [\d.]+ s: subscribed [\d,]+ \/ 5,000 quote lines, 3 \/ 3 depth, 3 \/ 3 tick-by-tick(; [\d,]+ asked, awaiting data)?; 4,000 quote lines wait beyond the budget of 1,000$/.test(m)),
      'the end of staging is logged',
    );

    // The staged instruments' data reached the features; the others have none and are not warm.
    const width = engine.width;
    const value = (i: number, column: number) => engine.values[i * width + column]!;
    for (let i = 0; i < symbols; i++) {
      assert.equal(Number.isFinite(value(i, MID)), staged(i), `instrument ${i}: a mid only once its quotes or book are live`);
      assert.equal(frame!.warm[i], staged(i) ? 1 : 0);
    }
    assert.ok(Number.isFinite(value(0, DEPTH_IMBALANCE_5)), 'SPY has a book');
    assert.ok(Number.isNaN(value(4, DEPTH_IMBALANCE_5)), 'SYN0001 has quotes only');
    let printed = 0;
    for (let i = 3; i < LINES; i++) if (value(i, TRADE_INTENSITY) > 0) printed++;
    assert.ok(printed > 300, `the volume ticks of quote lines are prints: ${printed} of ${LINES - 3} quotes-only instruments traded`);

    // Nothing stops trading because of an instrument without a book, or one still waiting.
    const health = tree.bus.latest(FEATURE_HEALTH_TOPIC)!;
    const problems = [...health.problems.keys()];
    assert.ok(
      problems.every((key) => BOOKED.some((symbol) => key.includes(` ${symbol}`)) && !key.startsWith('stale')),
      `only the booked instruments' readings may stop trading, and none is stale: ${problems.join('; ')}`,
    );
    assert.deepEqual(tree.errors, []);
  } finally {
    tree.actor.send({ type: 'shutdown' });
    await until(() => tree.done, 'the tree to stop', 10_000);
    await sim.close();
  }
});
