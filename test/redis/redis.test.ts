/**
 * The Redis mirror end to end, against a private redis-server: the real
 * redis and risk_gate components in a supervised tree, producers simulated
 * by publishing on the bus, the journal a real FileJournal.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Redis } from 'ioredis';
import { unpack } from 'msgpackr';
import type { AnyActorRef } from 'xstate';
import { redisSettings } from '../../src/actors/redis.js';
import { riskGateSettings } from '../../src/actors/risk-gate.js';
import type { Bus } from '../../src/bus.js';
import { systemClock } from '../../src/clock.js';
import { checkSystemHealth, type SystemHealth } from '../../src/health/system-health.js';
import { FileJournal } from '../../src/journal/file-journal.js';
import type { JournalEntry, LedgerRecord } from '../../src/journal/records.js';
import { DEFAULT_THRESHOLDS, FeatureHealth } from '../../src/market/feature-health.js';
import type { PredictionFrame } from '../../src/models/predictor.js';
import type { RedisStatus } from '../../src/redis/bridge.js';
import { serviceLogic } from '../../src/supervision/service.js';
import { NO_CONTRACT, type ChildSpec } from '../../src/supervision/spec.js';
import type { PortfolioView } from '../../src/trading/portfolio.js';
import type { Decision, GateTransition } from '../../src/trading/risk-gate.js';
import { until } from '../support/ib-client.js';
import { startTree } from '../support/probe.js';
import { freePort, startRedis, type TestRedis } from '../support/redis.js';
import { FEATURE_HEALTH_TOPIC, FEATURES_TOPIC, GATE_TRANSITION_TOPIC, JOURNAL_RECORD_TOPIC, PORTFOLIO_TOPIC, PREDICTIONS_TOPIC, REDIS_STATUS_TOPIC, REGIME_TOPIC } from '../../src/topics.js';
import type { FeatureFrame } from '../../src/market/features.js';
import type { RegimeFrame } from '../../src/models/regime-tracker.js';
import { componentSpec } from '../../src/actors/registry.js';
import { predictionFrame } from '../support/predictions.js';

const dir = mkdtempSync(join(tmpdir(), 'keel-redis-test-'));
const servers: TestRedis[] = [];
const clients: Redis[] = [];
after(async () => {
  for (const c of clients) c.disconnect();
  for (const s of servers) await s.dispose();
  rmSync(dir, { recursive: true, force: true });
});

const SYMBOLS = ['SPY', 'MSFT'];
const SCHEMA = { name: 'test', version: 1, features: ['spread_bps', 'imbalance', 'rv_1s'] };

/** What the journal actor will do, standing in: the journal provided, every durable entry published. */
function journalStandIn(path: string) {
  let journal: FileJournal | undefined;
  let bus: Bus | undefined;
  const logic = serviceLogic<unknown>(async (ctx) => {
    const opened = await FileJournal.open(path, { batchMs: 1 });
    journal = opened.journal;
    bus = ctx.bus;
    ctx.provide('journal', opened.journal);
    return { stop: () => opened.journal.close() };
  });
  const append = async (record: LedgerRecord) => {
    const seq = await journal!.append(record);
    bus!.publish(JOURNAL_RECORD_TOPIC, { seq, record } satisfies JournalEntry);
    return seq;
  };
  return { spec: { id: 'journal', logic, contract: { ...NO_CONTRACT, provides: ['journal'] } } satisfies ChildSpec, append, journal: () => journal! };
}

/** `until` for checks that ask Redis. */
async function untilAsync(check: () => Promise<boolean>, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function start(name: string, redisUrl: string, journalFile = `${name}.journal`) {
  const { spec, append, journal } = journalStandIn(join(dir, journalFile));
  const tree = startTree(
    {
      children: [
        spec,
        componentSpec('redis', 'redis', { settings: redisSettings.parse({ url: redisUrl, connectTimeoutMs: 5_000, pingMs: 100, pingTimeoutMs: 1_000 }), dependsOn: ['journal'] }),
        componentSpec('risk_gate', 'risk_gate', { settings: riskGateSettings.parse({}), dependsOn: ['journal'] }),
      ],
    },
    systemClock,
    name,
  );
  await until(() => tree.phase() === 'running', 'the tree to run', 10_000);
  const { bus, services } = tree;
  const gate = services.current('riskGate')!;
  const statuses: RedisStatus[] = [];
  bus.subscribe(REDIS_STATUS_TOPIC, (s) => statuses.push({ ...s }));
  const transitions: GateTransition[] = [];
  bus.subscribe(GATE_TRANSITION_TOPIC, (t) => transitions.push(t));
  const status = () => bus.latest(REDIS_STATUS_TOPIC);
  const stop = async () => {
    tree.actor.send({ type: 'shutdown' });
    await until(() => tree.done, 'the tree to stop', 10_000);
  };
  return { tree, bus, gate, journal: journal(), append, statuses, transitions, status, stop };
}

type Started = Awaited<ReturnType<typeof start>>;

/** The redis actor's XState state, as the inspector shows it ('connected', 'connecting.syncing', ...). */
const stateOf = (value: unknown) => (typeof value === 'string' ? value : JSON.stringify(value));
const redisActor = (s: Started) => s.tree.actor.system.get('redis') as AnyActorRef;
const redisActorState = (s: Started) => stateOf(redisActor(s).getSnapshot().value);

/** Every state the redis actor passes through from now on. */
function followRedisActor(s: Started) {
  const states = [redisActorState(s)];
  const subscription = redisActor(s).subscribe((snapshot: { value: unknown }) => {
    const state = stateOf(snapshot.value);
    if (state !== states.at(-1)) states.push(state);
  });
  return { states, stop: () => subscription.unsubscribe() };
}

function client(url: string): Redis {
  const c = new Redis(url);
  clients.push(c);
  return c;
}

/** Subscribes to every `keel:<instance>:*` channel; messages decoded, by channel. */
async function listen(url: string, instance: string) {
  const c = client(url);
  const received = new Map<string, unknown[]>();
  c.on('pmessageBuffer', (_pattern: Buffer, channel: Buffer, message: Buffer) => {
    const name = channel.toString();
    if (!received.has(name)) received.set(name, []);
    received.get(name)!.push(unpack(message));
  });
  await c.psubscribe(`keel:${instance}:*`);
  return received;
}

const latest = async (c: Redis, key: string) => {
  const b = await c.getBuffer(key);
  return b === null ? null : unpack(b);
};

function featureFrame(): FeatureFrame {
  return {
    intervalMs: 100,
    at: 0,
    wallAt: 0,
    schema: SCHEMA,
    symbols: SYMBOLS,
    values: new Float64Array(SYMBOLS.length * SCHEMA.features.length),
    warm: new Uint8Array(SYMBOLS.length),
    base: true,
  };
}

function regimeFrame(state: number[]): RegimeFrame {
  return {
    model: 'sjm@1',
    intervalMs: 1_000,
    labels: ['calm', 'volatile'],
    symbols: SYMBOLS,
    k: 2,
    at: performance.now(),
    state: Int32Array.from(state),
    probabilities: Float64Array.from(state.flatMap((s) => (s === 0 ? [0.9, 0.1] : s === 1 ? [0.2, 0.8] : [NaN, NaN]))),
    switches: 3,
  };
}

function predicted(value: number[]): PredictionFrame {
  return predictionFrame({ frameAt: performance.now(), symbols: SYMBOLS, value, tier: ['base', ''], models: ['gbdt@2', ''], latencyMs: 1.5, inferenceMs: 0.75 });
}

function portfolio(seq: number, spy: number): PortfolioView {
  const positions = [
    { symbol: 'SPY', quantity: spy, multiplier: 1, averagePrice: 500.25, mark: 501, realizedPnl: 0, unrealizedPnl: 0.75 * spy, fees: 1 },
    { symbol: 'MSFT', quantity: 0, multiplier: 1, averagePrice: 0, mark: NaN, realizedPnl: -2.5, unrealizedPnl: 0, fees: 0.5 },
  ];
  return { at: Date.now(), cash: 100_000 - 500.25 * spy, positions, realizedPnl: -2.5, unrealizedPnl: 0.75 * spy, fees: 1.5, netPnl: -2.5 + 0.75 * spy - 1.5, grossExposure: 501 * Math.abs(spy), netExposure: 501 * spy, seq };
}

let refs = 0;
/** order, order.status, fill, commission, gate in turn. */
function record(n: number): LedgerRecord {
  const at = Date.now();
  const ref = `t-${refs++}`;
  switch (n % 5) {
    case 0:
      return { type: 'order', at, ref, symbol: 'SPY', quantity: 100, orderType: 'MKT', limitPrice: NaN, reason: `test ${n}` };
    case 1:
      return { type: 'order.status', at, ref, state: 'working', permId: 1000 + n };
    case 2:
      return { type: 'fill', at, ref, execId: `e-${n}`, symbol: 'SPY', quantity: 100, price: 500.25, commission: 1 };
    case 3:
      return { type: 'commission', at, execId: `e-${n - 1}`, commission: 1.05 };
    default:
      return { type: 'gate', at, from: 'ACTIVE', to: 'ACTIVE', reason: `test ${n}`, by: 'test' };
  }
}

/** The stream `keel:<i>:journal` as [seq, record] in order, with every id checked to be `<seq>-1`. */
async function stream(c: Redis, instance: string): Promise<JournalEntry[]> {
  const rows = await c.xrangeBuffer(`keel:${instance}:journal`, '-', '+');
  return rows.map(([id, fields]) => {
    const [seq, part] = id.toString().split('-');
    assert.equal(part, '1', `stream id ${id.toString()}`);
    assert.equal(fields[0]!.toString(), 'r');
    return { seq: Number(seq), record: unpack(fields[1]!) as LedgerRecord };
  });
}

test('every mirrored topic: its latest key decodes to the message, its timestamp is fresh, and subscribers receive it', async () => {
  const redis = await startRedis();
  servers.push(redis);
  const s = await start('mirror', redis.url);
  try {
    assert.equal(s.status()?.state, 'connected');
    assert.equal(checkSystemHealth(s.bus, s.tree.services, s.tree.phase(), systemClock).components.redis.status, 'OK');
    const received = await listen(redis.url, 'mirror');
    const c = client(redis.url);
    const t0 = Date.now();

    const frame = featureFrame();
    frame.values.set([1.5, 0.25, NaN, 2, -0.5, 0.125]);
    frame.warm.set([1, 0]);
    frame.at = performance.now();
    frame.wallAt = Date.now();
    s.bus.publish(FEATURES_TOPIC, frame);
    // The producer reuses its frame: what was published must be what was sent.
    frame.values.fill(99);
    s.bus.retain(REGIME_TOPIC, regimeFrame([0, -1]));
    s.bus.retain(PREDICTIONS_TOPIC, predicted([0.001, NaN]));
    const health = new FeatureHealth(SYMBOLS, SCHEMA, { thresholds: DEFAULT_THRESHOLDS, advisory: [], maxDataAgeMs: 5_000 });
    health.observe(Float64Array.from([1, 0.5, NaN, 2, 0.1, 0.3]), Uint8Array.from([1, 1]), 1_000);
    s.bus.retain(FEATURE_HEALTH_TOPIC, health);
    s.bus.retain(PORTFOLIO_TOPIC, portfolio(3, 200));
    for (let n = 0; n < 5; n++) await s.append(record(n));

    const channels = ['features', 'regime', 'predictions', 'feature.health', 'portfolio', 'orders', 'fills', 'gate'];
    await until(() => channels.every((ch) => received.has(`keel:mirror:${ch}`)) && (received.get('keel:mirror:fills')?.length ?? 0) >= 2, 'a message on every channel');

    const features = (await latest(c, 'keel:mirror:features:latest')) as Record<string, unknown>;
    assert.deepEqual(features, {
      at: frame.wallAt,
      intervalMs: 100,
      base: true,
      schema: SCHEMA,
      symbols: SYMBOLS,
      values: [1.5, 0.25, NaN, 2, -0.5, 0.125],
      warm: [1, 0],
    });
    assert.deepEqual(received.get('keel:mirror:features')![0], features, 'the channel carries the same bytes');

    const regime = (await latest(c, 'keel:mirror:regime:latest')) as Record<string, unknown>;
    assert.deepEqual(regime.state, [0, -1]);
    assert.deepEqual(regime.probabilities, [0.9, 0.1, NaN, NaN]);
    assert.equal(regime.model, 'sjm@1');
    assert.deepEqual(regime.labels, ['calm', 'volatile']);
    const predictions = (await latest(c, 'keel:mirror:predictions:latest')) as { horizons: Record<string, unknown>[] };
    assert.deepEqual(predictions.horizons[0]!.value, [0.001, NaN]);
    assert.deepEqual(predictions.horizons[0]!.horizonMs, 10_000);
    assert.deepEqual(predictions.horizons[0]!.models, ['gbdt@2', '']);
    const summary = (await latest(c, 'keel:mirror:feature.health:latest')) as Record<string, unknown>;
    assert.equal(summary.qualityPct, health.qualityPct());
    assert.deepEqual(summary.problems, Object.fromEntries(health.problems));
    assert.ok(Object.keys(summary.problems as object).some((k) => k.startsWith('nan SPY')), 'the NaN input is a problem, by its key');
    assert.deepEqual(await latest(c, 'keel:mirror:portfolio:latest'), s.bus.latest(PORTFOLIO_TOPIC));

    // Positions: one hash field per symbol, flat ones kept.
    const positions = await c.hgetallBuffer('keel:mirror:positions');
    assert.deepEqual(Object.keys(positions).sort(), ['MSFT', 'SPY']);
    assert.equal((unpack(positions.SPY!) as { quantity: number }).quantity, 200);
    assert.ok(Number.isNaN((unpack(positions.MSFT!) as { mark: number }).mark));

    // Journal records under orders / fills / gate, as {seq, record}.
    const orders = received.get('keel:mirror:orders') as JournalEntry[];
    assert.deepEqual(
      orders.map((e) => [e.seq, e.record.type]),
      [
        [1, 'order'],
        [2, 'order.status'],
      ],
    );
    assert.deepEqual(
      (received.get('keel:mirror:fills') as JournalEntry[]).map((e) => [e.seq, e.record.type]),
      [
        [3, 'fill'],
        [4, 'commission'],
      ],
    );
    assert.deepEqual((await latest(c, 'keel:mirror:gate:latest')) as JournalEntry, received.get('keel:mirror:gate')![0]);
    await until(() => s.journal.durableSeq === 5, 'five durable entries');
    const durable = await s.journal.entriesSince(0);
    assert.deepEqual(await stream(c, 'mirror'), durable, 'the stream holds every durable entry, id <seq>-1');

    for (const ch of channels) {
      const ts = Number(await c.get(`keel:mirror:${ch}:timestamp`));
      assert.ok(ts >= t0 && ts <= Date.now(), `${ch}:timestamp ${ts} is when the daemon saw it`);
    }
  } finally {
    await s.stop();
  }
  // Stopping the component is Redis no longer mirrored: down is its last word, and its state is cleared with it.
  assert.equal(s.statuses.at(-1)?.state, 'down');
  assert.equal(s.status(), undefined);
});

test('Redis killed while messages flow: down and HALTED in the same call, CRITICAL; restarted empty: resynced, stream exact; the actor goes connected, down, resyncing, connected', async () => {
  const redis = await startRedis({ appendonly: false });
  servers.push(redis);
  const s = await start('outage', redis.url);
  const c = client(redis.url);
  c.on('error', () => undefined);
  let producing = true;
  let failure: unknown;
  const frame = featureFrame();
  let ticks = 0;
  let appended = 0;
  const produce = async () => {
    while (producing) {
      ticks++;
      frame.at = performance.now();
      frame.wallAt = Date.now();
      frame.values.fill(ticks);
      s.bus.publish(FEATURES_TOPIC, frame);
      s.bus.retain(PREDICTIONS_TOPIC, predicted([ticks, -ticks]));
      if (ticks % 3 === 0) s.bus.retain(PORTFOLIO_TOPIC, portfolio(appended, ticks));
      if (ticks % 2 === 0) {
        await s.append(record(appended));
        appended++;
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  };
  const producer = produce().catch((e: unknown) => (failure = e));
  // What the gate and the health rollup say inside the call that reported the loss.
  let atLoss: { gate: string; check: Decision; health: SystemHealth } | undefined;
  s.bus.subscribe(REDIS_STATUS_TOPIC, (status) => {
    if (status.state !== 'down' || atLoss) return;
    atLoss = { gate: s.gate.state, check: s.gate.check({ symbol: 'SPY', quantity: 100, position: 0, price: 100, mid: 100, working: 0, grossExposure: 0 }), health: checkSystemHealth(s.bus, s.tree.services, s.tree.phase(), systemClock) };
  });
  const actorStates = followRedisActor(s);
  try {
    assert.equal(redisActorState(s), 'connected');
    assert.equal(s.gate.state, 'ACTIVE');
    s.bus.retain(REGIME_TOPIC, regimeFrame([0, 1]));
    await until(() => s.journal.durableSeq >= 10, 'journal entries before the outage');
    await untilAsync(async () => (await c.xlen('keel:outage:journal')) >= 10, 'the stream to follow');

    await redis.kill();
    await until(() => s.status()?.state === 'down', 'the bridge to see Redis gone');
    assert.ok(atLoss, 'the status handler ran');
    assert.equal(atLoss.gate, 'HALTED', 'the gate halted in the call that reported the loss');
    assert.equal(atLoss.check.ok, false);
    assert.match((atLoss.check as { reason: string }).reason, /^trading halted: Redis unreachable/);
    assert.equal(atLoss.health.components.redis.status, 'CRITICAL');
    assert.equal(atLoss.health.overall_status, 'CRITICAL');
    const halt = s.transitions.find((t) => t.to === 'HALTED')!;
    assert.equal(halt.by, 'redis');
    assert.equal(redisActorState(s), 'down', 'the actor is in the state it published');

    // Messages keep coming while Redis is away: counted, not sent; the journal keeps going.
    const seqAtLoss = s.journal.durableSeq;
    // The last regime frame comes only while Redis is down: only the resync can write it.
    const lastRegime = regimeFrame([1, -1]);
    s.bus.retain(REGIME_TOPIC, lastRegime);
    const regimeSeenAt = Date.now();
    await until(() => s.journal.durableSeq >= seqAtLoss + 10 && (s.status()?.missed ?? 0) > 20, 'entries appended while Redis is down');
    assert.equal(s.gate.resume('operator').ok, false, 'no resume while Redis is down');

    const restartedAt = Date.now();
    await redis.restart();
    await until(() => s.status()?.state === 'connected', 'the bridge to resync', 10_000);
    const states = s.statuses.map((x) => x.state);
    assert.deepEqual(states.slice(states.indexOf('down')), ['down', 'resyncing', 'connected']);
    // The actor went through the modes it published, and the inspector saw each one.
    assert.deepEqual(actorStates.states, ['connected', 'down', 'resyncing', 'connected']);
    assert.equal(s.tree.inspection.actors().find((a) => a.id === 'redis')?.state, 'connected');
    const seen = s.tree.inspection.events().filter((e) => e.kind === 'transition' && e.actor === 'redis').map((e) => e.text);
    assert.deepEqual(seen.slice(-3), ['redis: connected -> down', 'redis: down -> resyncing', 'redis: resyncing -> connected']);
    const back = s.status()!;
    assert.ok(back.missed > 20, `missed ${back.missed}`);
    assert.equal(checkSystemHealth(s.bus, s.tree.services, s.tree.phase(), systemClock).components.redis.status, 'OK');
    assert.ok(s.tree.child('redis').status === 'running' && s.tree.child('redis').incarnation === 1, 'Redis going away is not a component failure');

    // Everything the daemon knows is in Redis again; what flows is fresh, what is old says so.
    for (const ch of ['features', 'predictions', 'portfolio', 'orders', 'fills', 'gate']) {
      await untilAsync(async () => Number(await c.get(`keel:outage:${ch}:timestamp`)) > restartedAt, `${ch}:timestamp after the restart`);
      assert.notEqual(await latest(c, `keel:outage:${ch}:latest`), null);
    }
    const regime = (await latest(c, 'keel:outage:regime:latest')) as { state: number[] };
    assert.deepEqual(regime.state, [1, -1], 'the regime frame published while Redis was down was resynced');
    const regimeTs = Number(await c.get('keel:outage:regime:timestamp'));
    assert.ok(regimeTs >= regimeSeenAt - 50 && regimeTs < restartedAt, 'its timestamp is when the daemon saw it, not the resync');
    assert.deepEqual(Object.keys(await c.hgetallBuffer('keel:outage:positions')).sort(), ['MSFT', 'SPY']);

    producing = false;
    await producer;
    assert.equal(failure, undefined);
    const n = s.journal.durableSeq;
    assert.ok(n > seqAtLoss + 10);
    await untilAsync(async () => (await c.xlen('keel:outage:journal')) === n, `the stream to hold all ${n} entries`);
    const mirrored = await stream(c, 'outage');
    assert.deepEqual(
      mirrored.map((e) => e.seq),
      Array.from({ length: n }, (_, i) => i + 1),
      'entries 1..N, no gap, no duplicate',
    );
    assert.deepEqual(mirrored, await s.journal.entriesSince(0));

    assert.equal(s.gate.resume('Redis is back').ok, true);
    assert.equal(s.gate.state, 'ACTIVE');
    assert.ok(s.tree.sink.messages().some((m) => /^Redis back after \d+\.\d s down: resynced \d+ latest values, 2 positions and \d+ journal entries/.test(m)));
  } finally {
    producing = false;
    await producer;
    actorStates.stop();
    await s.stop();
  }
});

test('Redis not reachable at start: the component fails to start, naming the URL', async () => {
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  const tree = startTree(
    {
      children: [componentSpec('redis', 'redis', { settings: redisSettings.parse({ url, connectTimeoutMs: 300 }), restart: 'temporary' })],
    },
    systemClock,
  );
  try {
    await until(() => tree.child('redis').lastError !== undefined, 'the start to fail', 5_000);
    assert.match(tree.child('redis').lastError!, new RegExp(`Redis at redis://127\\.0\\.0\\.1:${port}/? is not reachable: no connection within 300 ms \\(.*ECONNREFUSED`));
    assert.equal(tree.bus.latest(REDIS_STATUS_TOPIC), undefined, 'no status: it never mirrored');
  } finally {
    tree.actor.send({ type: 'shutdown' });
    await until(() => tree.done, 'the tree to stop');
  }
});

test('Redis hung (SIGSTOP, sockets open): the PING watchdog calls it down; continued: resynced', async () => {
  const redis = await startRedis();
  servers.push(redis);
  const s = await start('hung', redis.url);
  try {
    s.bus.retain(PORTFOLIO_TOPIC, portfolio(0, 100));
    redis.pause();
    await until(() => s.status()?.state === 'down', 'the watchdog to notice', 5_000);
    assert.match(s.status()!.reason, /^no answer to PING for \d+ ms$/);
    assert.equal(s.gate.state, 'HALTED');
    assert.equal(redisActorState(s), 'down');
    s.bus.retain(PORTFOLIO_TOPIC, portfolio(0, 300));
    redis.resume();
    await until(() => s.status()?.state === 'connected', 'the resync after SIGCONT', 10_000);
    assert.equal(redisActorState(s), 'connected');
    const c = client(redis.url);
    assert.equal((unpack((await c.hgetBuffer('keel:hung:positions', 'SPY'))!) as { quantity: number }).quantity, 300);
  } finally {
    redis.resume();
    await s.stop();
  }
});

test('a restarted daemon continues the stream where it ends; a stream from another journal is rebuilt from this one', async () => {
  const redis = await startRedis();
  servers.push(redis);
  const c = client(redis.url);
  const first = await start('again', redis.url);
  try {
    for (let n = 0; n < 7; n++) await first.append(record(n));
    await untilAsync(async () => (await c.xlen('keel:again:journal')) === 7, 'seven entries mirrored');
  } finally {
    await first.stop();
  }

  // Same journal file, same Redis: the stream is already complete; only what is new is appended.
  const second = await start('again', redis.url);
  try {
    assert.equal(second.journal.durableSeq, 7);
    for (let n = 7; n < 10; n++) await second.append(record(n));
    await untilAsync(async () => (await c.xlen('keel:again:journal')) === 10, 'ten entries mirrored');
    assert.deepEqual(await stream(c, 'again'), await second.journal.entriesSince(0));
    assert.equal(second.tree.sink.lines.filter((l) => l.level === 40 || l.level === 50).length, 0, 'no refused append, no error');
  } finally {
    await second.stop();
  }

  // A new journal file under the same instance name: the journal is the truth.
  const third = await start('again', redis.url, 'again-new.journal');
  try {
    assert.ok(third.tree.sink.messages().some((m) => /ends at entry 10 but the journal at 0: rebuilding the stream/.test(m)));
    assert.equal(await c.xlen('keel:again:journal'), 0);
    for (let n = 0; n < 2; n++) await third.append(record(n));
    await untilAsync(async () => (await c.xlen('keel:again:journal')) === 2, 'the new ledger mirrored');
    assert.deepEqual(await stream(c, 'again'), await third.journal.entriesSince(0));
  } finally {
    await third.stop();
  }
});
