/**
 * Staging a 5,000-instrument universe under IB's budgets: the subscription
 * plan and the real pacer on a manual clock (pure logic, simulated time),
 * the progress line, and the compact way to list thousands of instruments.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { subscriptionsSettings, wantedFeeds } from '../../src/actors/subscriptions.js';
import { ManualClock } from '../../src/clock.js';
import { parseConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/config/yaml.js';
import { Pacer, PRIORITY } from '../../src/ib/pacer.js';
import { progressLine, requestsToGo, SubscriptionPlan, symbolRange, type StagingProgress } from '../../src/ib/subscription-plan.js';
import { simConfigSchema } from '../../src/sim/config.js';
import { InstrumentUniverse } from '../../src/sim/instruments.js';

const UNIVERSE = [
  { symbol: 'SPY', depth: { rows: 10 }, ticks: 'AllLast' },
  { symbol: 'QQQ', depth: { rows: 10 }, ticks: 'AllLast' },
  { symbol: 'AAPL', depth: { rows: 10 }, ticks: 'AllLast' },
  { symbol: 'MSFT' },
  { symbols: 'SYN0001..SYN4996' },
];

/**
 * Runs the subscription manager's staging loop (a sweep every 100 ms that
 * lets at most a second's worth of requests wait in the pacer) until every
 * feed within its budget is live; data comes the moment a request is sent.
 */
async function stage(marketDataLines: number) {
  const settings = subscriptionsSettings.parse({ instruments: UNIVERSE, budgets: { marketDataLines } });
  const plan = new SubscriptionPlan(wantedFeeds(settings.instruments), settings.budgets);
  const clock = new ManualClock();
  const pacer = new Pacer(clock, 45, 5);
  const rate = pacer.perSecond - pacer.burst;
  const sent: { at: number; kind: string }[] = [];
  const lines: { at: number; line: string; toGo: number }[] = [];
  let maxWaiting = 0;
  let done = NaN;
  const sweep = () => {
    const now = clock.now();
    for (const feed of plan.due(now, Math.max(0, pacer.perSecond - pacer.waiting))) {
      pacer.submit(PRIORITY.subscriptions, `${feed.kind} ${feed.symbol}`, () => {
        plan.asked(feed, clock.now());
        sent.push({ at: clock.now(), kind: feed.kind });
        feed.route!.updates++;
        plan.live(feed);
      });
    }
    maxWaiting = Math.max(maxWaiting, pacer.waiting);
    const progress = plan.progress();
    const toGo = requestsToGo(progress);
    if (now % 5_000 === 0 || toGo === 0) lines.push({ at: now, line: progressLine(progress, rate), toGo });
    if (toGo > 0) clock.setTimeout(sweep, 100);
    else done = now;
  };
  sweep();
  await clock.runUntil(600_000, async () => {});
  return { plan, sent, lines, maxWaiting, done, rate };
}

test('5,000 instruments stage through the 45/s pacer: depth first, no second over 45, at most a second waiting, about 2 minutes, an honest ETA', async () => {
  const { plan, sent, lines, maxWaiting, done, rate } = await stage(5_000);
  assert.deepEqual(plan.counts(), { waiting: 0, requested: 0, live: 5_006, refused: 0 });
  assert.deepEqual(
    sent.slice(0, 7).map((s) => s.kind),
    ['depth', 'depth', 'depth', 'ticks', 'ticks', 'ticks', 'quotes'],
    'the scarce feeds first',
  );
  // IB's rule is 50 in any second; the pacer's is 45.
  for (let j = 0, i = 0; j < sent.length; j++) {
    while (sent[j]!.at - sent[i]!.at >= 1_000) i++;
    assert.ok(j - i + 1 <= 45, `${j - i + 1} requests within a second ending at ${sent[j]!.at} ms`);
  }
  assert.ok(maxWaiting <= 45, `at most a second's worth waits in the pacer, saw ${maxWaiting}`);
  const last = sent.at(-1)!.at;
  assert.ok(last >= (5_006 - 5) / rate * 1_000 && last <= 5_006 / rate * 1_000 + 1_000, `the last request left at ${last} ms`);

  // The pacer's burst of 5 leaves at once.
  assert.equal(lines[0]!.line, 'subscribed 0 / 5,000 quote lines, 3 / 3 depth, 2 / 3 tick-by-tick; 5,001 requests to go at 40/s, ETA 126 s');
  assert.match(lines[1]!.line, /^subscribed [\d,]+ \/ 5,000 quote lines, 3 \/ 3 depth, 3 \/ 3 tick-by-tick; [\d,]+ requests to go at 40\/s, ETA \d+ s$/);
  for (const { at, line, toGo } of lines.filter((l) => l.toGo > 0)) {
    const eta = Number(/ETA (\d+) s/.exec(line)![1]) * 1_000;
    assert.ok(Math.abs(at + eta - last) <= 2_000, `at ${at} ms the ETA said ${eta} ms for ${toGo} requests; the last left at ${last} ms`);
  }
  assert.equal(lines.at(-1)!.line, 'subscribed 5,000 / 5,000 quote lines, 3 / 3 depth, 3 / 3 tick-by-tick');
  assert.ok(done >= last);
});

test('a line budget smaller than the universe: the rest waits beyond it, noted once, and the line says so', async () => {
  const { plan, lines } = await stage(1_000);
  assert.deepEqual(plan.counts(), { waiting: 4_000, requested: 0, live: 1_006, refused: 0 });
  const progress = plan.progress();
  assert.deepEqual(progress.quotes, { wanted: 5_000, budget: 1_000, live: 1_000, asked: 0, queued: 0, toStage: 0, beyondBudget: 4_000, refused: 0 });
  assert.equal(lines.at(-1)!.line, 'subscribed 1,000 / 5,000 quote lines, 3 / 3 depth, 3 / 3 tick-by-tick; 4,000 quote lines wait beyond the budget of 1,000');
  const beyond = plan.feeds.filter((f) => f.status === 'waiting');
  assert.equal(beyond[0]!.symbol, 'SYN0997', 'config order within a kind: the first 1,000 quote lines are staged');
  assert.ok(beyond.every((f) => f.note === 'waiting for a quotes slot (1000 in use)'));
  // Nothing changes between two sweeps of a settled plan: the feed listing is not rebuilt.
  const version = plan.version;
  plan.due(1_000_000, 45);
  plan.due(1_000_100, 45);
  assert.equal(plan.version, version);
});

test('the progress line: what is live of what is wanted, what is still to go and when, what waits and what IB refused', () => {
  const kind = (k: Partial<StagingProgress['quotes']>) => ({ wanted: 0, budget: 0, live: 0, asked: 0, queued: 0, toStage: 0, beyondBudget: 0, refused: 0, ...k });
  const midway: StagingProgress = {
    quotes: kind({ wanted: 5_000, budget: 5_000, live: 1_350, asked: 10, queued: 45, toStage: 3_595 }),
    depth: kind({ wanted: 3, budget: 3, live: 3 }),
    ticks: kind({ wanted: 3, budget: 3, live: 2, refused: 1 }),
  };
  assert.equal(
    progressLine(midway, 40),
    'subscribed 1,350 / 5,000 quote lines, 3 / 3 depth, 2 / 3 tick-by-tick; 3,640 requests to go at 40/s, ETA 91 s; 10 asked, awaiting data; 1 tick-by-tick refused by IB',
  );
  const quotesOnly: StagingProgress = { quotes: kind({ wanted: 300, budget: 95, live: 95, beyondBudget: 205 }), depth: kind({}), ticks: kind({}) };
  assert.equal(progressLine(quotesOnly, 40), 'subscribed 95 / 300 quote lines; 205 quote lines wait beyond the budget of 95');
  assert.throws(() => progressLine(midway, 0), /requests per second must be positive, got 0/);
});

test('a range of numbered symbols lists thousands of instruments in one entry, and a bad one says what is wrong', () => {
  assert.deepEqual(symbolRange('SYN0998..SYN1001'), ['SYN0998', 'SYN0999', 'SYN1000', 'SYN1001']);
  assert.deepEqual(symbolRange('X8..X11'), ['X8', 'X9', 'X10', 'X11']);
  assert.throws(() => symbolRange('SYN1-SYN5'), /expected a range of numbered symbols like SYN0001\.\.SYN4996, got 'SYN1-SYN5'/);
  assert.throws(() => symbolRange('SYN0001..ABC0005'), /same prefix \('SYN' and 'ABC'\)/);
  assert.throws(() => symbolRange('SYN0001..SYN50'), /the last symbol must be written like the first, as SYN0050/);
  assert.throws(() => symbolRange('SYN0005..SYN0001'), /runs backwards: SYN0001 comes before SYN0005/);
  assert.throws(() => symbolRange('S0..S100000'), /names 100001 symbols; at most 100000 instruments/);

  const settings = subscriptionsSettings.parse({ instruments: UNIVERSE });
  assert.equal(settings.instruments.length, 5_000);
  assert.deepEqual(settings.instruments[4], { symbol: 'SYN0001', exchange: 'SMART', currency: 'USD', primaryExch: undefined, quotes: true, depth: false, ticks: undefined });
  assert.equal(settings.instruments.at(-1)!.symbol, 'SYN4996');

  const yaml = `components:
  subscriptions:
    kind: subscriptions
    settings:
      instruments:
        - { symbol: SPY }
        - { symbols: SYN0001..SYN50 }
        - { symbol: MSFT, symbols: SYN0001..SYN0002 }
        - { depth: { rows: 5 } }
        - { symbols: SYN0010..SYN0020 }
        - { symbol: SYN0015 }
`;
  assert.throws(
    () => parseConfig(yaml, 'universe.yaml'),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.deepEqual(err.problems, [
        "line 7: components.subscriptions.settings.instruments[1].symbols: in 'SYN0001..SYN50' the last symbol must be written like the first, as SYN0050 (got \"SYN0001..SYN50\")",
        'line 8: components.subscriptions.settings.instruments[2].symbols: give symbol or symbols, not both (symbol is MSFT) (got "SYN0001..SYN0002")',
        'line 9: components.subscriptions.settings.instruments[3].symbol: missing; give symbol (one instrument) or symbols (a range such as SYN0001..SYN4996)',
        'line 11: components.subscriptions.settings.instruments[5].symbol: SYN0015 is listed twice (also in instruments[4]) (got "SYN0015")',
      ]);
      return true;
    },
  );
});

test('config/universe-5000.yaml: 5,000 instruments, every one known to its simulator, and lines for all of them', () => {
  const { components } = parseConfig(readFileSync('config/universe-5000.yaml', 'utf8'), 'config/universe-5000.yaml');
  const subscriptions = subscriptionsSettings.parse(components.subscriptions!.settings);
  const sim = simConfigSchema.parse(components.simulator!.settings);
  const symbols = subscriptions.instruments.map((i) => i.symbol);
  assert.equal(symbols.length, 5_000);
  assert.deepEqual(subscriptions.instruments.filter((i) => i.depth !== false).map((i) => i.symbol), ['SPY', 'QQQ', 'AAPL']);
  const universe = new InstrumentUniverse(sim.syntheticInstruments);
  assert.ok(symbols.every((s) => universe.find(0, s, 'STK')), 'the simulator lists every instrument');
  const quoteLines = subscriptions.instruments.filter((i) => i.quotes).length;
  assert.ok(subscriptions.budgets.marketDataLines >= quoteLines && sim.limits.marketDataLines >= subscriptions.budgets.marketDataLines, 'the budget covers the universe and the account has it');
});
