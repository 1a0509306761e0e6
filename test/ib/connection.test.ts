/**
 * ib_connection and subscriptions under a real supervisor, the unmodified
 * @stoqey/ib client inside them, against the simulator and its faults.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ibConnectionSettings } from '../../src/actors/ib-connection.js';
import { subscriptionsSettings } from '../../src/actors/subscriptions.js';
import { systemClock } from '../../src/clock.js';


import { TwsSimulator, type SimulatorOptions } from '../../src/sim/server.js';
import { startTree } from '../support/probe.js';
import { barrier, until } from '../support/ib-client.js';
import { DEPTH_TOPIC, FEED_SILENT_TOPIC, IB_STATUS_TOPIC, SUBSCRIPTIONS_STATUS_TOPIC } from '../../src/topics.js';
import type { SubscriptionsStatus } from '../../src/ib/subscription-plan.js';
import { componentSpec } from '../../src/actors/registry.js';

const dir = mkdtempSync(join(tmpdir(), 'keel-ib-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;

interface Setup {
  sim?: SimulatorOptions;
  instruments?: unknown[];
  budgets?: unknown;
  connection?: Record<string, unknown>;
  orderIdFile?: string;
  simulator?: TwsSimulator;
  silenceMs?: number;
}

async function start(setup: Setup = {}) {
  const sim = setup.simulator ?? new TwsSimulator({ updatesPerSecond: 200, ...setup.sim });
  const port = await sim.listen(0);
  const connection = ibConnectionSettings.parse({
    port,
    probeIntervalMs: 200,
    probeTimeoutMs: 500,
    connectTimeoutMs: 2_000,
    reconnect: { minMs: 50, maxMs: 500, randomFactor: 0.2, maxAttempts: 0 },
    orderIdFile: setup.orderIdFile ?? join(dir, `order-ids-${files++}.json`),
    ...setup.connection,
  });
  const subscriptions = subscriptionsSettings.parse({
    // No tick-by-tick by default: IB's one-per-15-s rule would hold it back after a reconnect.
    instruments: setup.instruments ?? [{ symbol: 'SPY', depth: { rows: 5 } }, { symbol: 'AAPL' }],
    budgets: setup.budgets,
    silenceMs: setup.silenceMs ?? 1_000,
    sweepMs: 20,
  });
  const tree = startTree(
    {
      children: [
        componentSpec('ib_connection', 'ib_connection', { settings: connection }),
        componentSpec('subscriptions', 'subscriptions', { settings: subscriptions, dependsOn: ['ib_connection'] }),
      ],
    },
    systemClock,
  );
  const states: string[] = [];
  tree.bus.subscribe(IB_STATUS_TOPIC, (s) => states.push(s.state));
  let depthRows = 0;
  tree.bus.subscribe(DEPTH_TOPIC, (b) => (depthRows += b.count));
  const status = () => tree.bus.latest(IB_STATUS_TOPIC);
  const feeds = () => tree.bus.latest(SUBSCRIPTIONS_STATUS_TOPIC);
  const allLive = () => {
    const f = feeds();
    return f !== undefined && f.feeds.length > 0 && f.feeds.every((x) => x.status === 'live');
  };
  const stop = async () => {
    tree.actor.send({ type: 'shutdown' });
    await until(() => tree.done, 'the tree to stop');
    await sim.close();
  };
  return { sim, tree, states, status, feeds, allLive, depthRows: () => depthRows, link: () => tree.services.current('ibLink')!, stop };
}

const reqIds = (f: SubscriptionsStatus | undefined) => f?.feeds.map((x) => x.reqId) ?? [];

test('handshake and ready: connected after nextValidId, depth and tick-by-tick flowing', async () => {
  const k = await start({ instruments: [{ symbol: 'SPY', depth: { rows: 5 } }, { symbol: 'AAPL', ticks: 'AllLast' }] });
  try {
    await until(k.allLive, 'every feed live');
    assert.equal(k.status()?.state, 'connected');
    assert.deepEqual(k.states, ['connected']);
    await until(() => k.depthRows() > 50, 'depth rows');
    assert.equal(k.tree.child('subscriptions').status, 'running');
    assert.deepEqual(k.tree.errors, []);
  } finally {
    await k.stop();
  }
});

test('a 4th depth subscription waits for a slot instead of failing', async () => {
  const k = await start({ instruments: ['SPY', 'QQQ', 'AAPL', 'MSFT'].map((symbol) => ({ symbol, quotes: false, depth: { rows: 5 } })) });
  try {
    await until(() => k.feeds()?.counts.live === 3, 'three depth feeds live');
    const waiting = k.feeds()!.feeds.filter((f) => f.status === 'waiting');
    assert.deepEqual(waiting.map((f) => f.symbol), ['MSFT']);
    assert.match(waiting[0]!.note, /waiting for a depth slot/);
    assert.ok(!k.tree.sink.lines.some((l) => l.code === 309), 'IB never had to refuse a depth request');
  } finally {
    await k.stop();
  }
});

test('drop -> reconnect -> every subscription back and data flowing again', async () => {
  const k = await start();
  try {
    await until(k.allLive, 'every feed live');
    const before = reqIds(k.feeds());
    k.sim.faults.dropConnections();
    await until(() => k.states.includes('reconnecting'), 'reconnecting');
    await until(() => k.status()?.state === 'connected' && k.allLive() && reqIds(k.feeds()).every((id, i) => id !== before[i]), 'every feed requested again');
    const rows = k.depthRows();
    await until(() => k.depthRows() > rows + 20, 'depth flowing after the reconnect');
    assert.equal(k.tree.child('ib_connection').incarnation, 1, 'the actor reconnected by itself, no restart needed');
  } finally {
    await k.stop();
  }
});

test('1101 -> every subscription requested again; 1102 -> none', async () => {
  const k = await start();
  try {
    await until(k.allLive, 'every feed live');
    const epoch = k.status()!.dataEpoch;
    const first = reqIds(k.feeds());
    k.sim.faults.connectivityLost(60_000, false);
    await until(() => k.status()?.state === 'degraded', 'degraded on 1100');
    await barrier(k.link().api);
    assert.equal(k.status()?.state, 'degraded', 'degraded until TWS says IB is back');
    k.sim.faults.restore();
    await until(() => k.status()?.state === 'connected', 'connected on 1102');
    assert.equal(k.status()!.dataEpoch, epoch);
    assert.deepEqual(reqIds(k.feeds()), first, '1102 keeps every subscription');

    k.sim.faults.connectivityLost(100, true);
    await until(() => k.status()!.dataEpoch === epoch + 1, 'a new data epoch on 1101');
    await until(() => k.allLive() && reqIds(k.feeds()).every((id, i) => id !== first[i]), 'every feed requested again');
  } finally {
    await k.stop();
  }
});

test('2103 -> degraded while orders still work; 2104 -> recovered', async () => {
  const k = await start();
  try {
    await until(k.allLive, 'every feed live');
    k.sim.faults.farmOutage(400);
    await until(() => k.status()?.state === 'degraded', 'degraded');
    assert.deepEqual(k.status()!.farmsDown, ['usfarm']);
    assert.ok(k.tree.actor.getSnapshot().context.core.children.ib_connection, 'still supervised');
    const link = k.link();
    const orderId = link.orderIds.take();
    const statuses: string[] = [];
    link.api.on('orderStatus' as never, ((id: number, status: string) => id === orderId && statuses.push(status)) as never);
    link.api.placeOrder(orderId, { symbol: 'SPY', secType: 'STK' as never, exchange: 'SMART', currency: 'USD' }, {
      action: 'BUY' as never,
      orderType: 'LMT' as never,
      totalQuantity: 10,
      lmtPrice: 1,
      transmit: true,
    });
    await until(() => statuses.includes('Submitted'), 'the order acknowledged while degraded');
    await until(() => k.status()?.state === 'connected', 'recovered on 2104');
    assert.deepEqual(k.status()!.farmsDown, []);
  } finally {
    await k.stop();
  }
});

test('326 -> the next client id', async () => {
  const sim = new TwsSimulator({ updatesPerSecond: 200 });
  sim.faults.rejectClientId(0);
  const k = await start({ simulator: sim });
  try {
    await until(() => k.status()?.state === 'connected', 'connected');
    assert.equal(k.status()!.clientId, 1);
    assert.deepEqual(sim.clientIds, [1]);
  } finally {
    await k.stop();
  }
});

test('garbage bytes -> reconnect, no crash', async () => {
  const k = await start();
  try {
    await until(k.allLive, 'every feed live');
    k.sim.faults.sendGarbage();
    await until(() => k.states.includes('reconnecting'), 'reconnecting');
    await until(() => k.status()?.state === 'connected' && k.allLive(), 'back with every feed');
    assert.deepEqual(k.tree.errors, []);
  } finally {
    await k.stop();
  }
});

for (const [kind, reason] of [
  ['reject-not-json', /reading what TWS sent failed/],
  ['length-sign-bit', /message length of 2147483648 bytes/],
] as const) {
  test(`a malformed message (${kind}) -> the link is rebuilt, the process untouched`, async () => {
    const k = await start();
    try {
      await until(k.allLive, 'every feed live');
      const reasons: string[] = [];
      k.tree.bus.subscribe(IB_STATUS_TOPIC, (s) => reasons.push(s.reason));
      k.sim.faults.malformed(kind);
      await until(() => k.states.includes('reconnecting'), 'reconnecting');
      assert.ok(reasons.some((r) => reason.test(r)), `no status says why: ${reasons.join(' | ')}`);
      await until(() => k.status()?.state === 'connected' && k.allLive(), 'back with every feed');
      assert.deepEqual(k.tree.errors, []);
    } finally {
      await k.stop();
    }
  });
}

test('50,000 identical messages from TWS are one line and a count, not 50,000 lines', async () => {
  // Reading the flood on busy cores can hold a probe answer back past the usual timeout.
  const k = await start({ connection: { probeTimeoutMs: 30_000 } });
  try {
    await until(() => k.status()?.state === 'connected', 'connected');
    const farmOk = 'Market data farm connection is OK:usfarm';
    const before = k.tree.sink.messages().filter((m) => m.startsWith(farmOk)).length;
    // Not a message the handshake sends: when it is logged, every 2104 before it has been read.
    const sentinel = 'HMDS data farm connection is inactive but should be available upon demand.ushmds';
    for (const session of k.sim.sessions) {
      for (let i = 0; i < 50_000; i++) session.error(-1, 2104, farmOk);
      session.error(-1, 2107, sentinel);
    }
    await until(() => k.tree.sink.messages().includes(sentinel), 'every message read', 30_000);
    await k.stop();
    const lines = k.tree.sink.lines.filter((l) => String(l.msg).startsWith(farmOk)).slice(before);
    // Every message accounted for, in a handful of lines (one window of 5 s, or a few on busy cores).
    assert.equal(lines.reduce((sum, l) => sum + (l.repeated === undefined ? 1 : Number(l.repeated)), 0), 50_000);
    assert.ok(lines.length <= 8, `${lines.length} lines`);
    assert.match(String(lines.at(-1)!.msg), /repeated [\d,]+ times in/);
  } finally {
    if (!k.tree.done) await k.stop();
  }
});

test('a half-open socket (no answers) is found by the liveness probe', async () => {
  const k = await start();
  try {
    await until(() => k.status()?.state === 'connected', 'connected');
    k.sim.faults.slowDown(5_000);
    await until(() => k.states.includes('reconnecting'), 'reconnecting');
    assert.match(k.status()!.reason, /liveness probe/);
    k.sim.faults.slowDown(0);
    await until(() => k.status()?.state === 'connected', 'connected again');
  } finally {
    await k.stop();
  }
});

test('a burst of 300 requests never trips error 100', async () => {
  const symbols = Array.from({ length: 300 }, (_, i) => `SYN${String(i + 1).padStart(4, '0')}`);
  const k = await start({
    sim: { syntheticInstruments: 300, updatesPerSecond: 2, limits: { marketDataLines: 300 } },
    instruments: symbols.map((symbol) => ({ symbol })),
    budgets: { marketDataLines: 300 },
    // Quiet synthetic names would otherwise count as silent feeds while the burst drains.
    silenceMs: 60_000,
  });
  try {
    await until(() => k.feeds()?.counts.live === 300, '300 feeds live', 20_000);
    assert.deepEqual(k.states, ['connected'], 'never disconnected');
    assert.ok(!k.tree.sink.lines.some((l) => l.code === 100));
  } finally {
    await k.stop();
  }
});

test('order ids after a restart are above every id used before, even when TWS forgets them', async () => {
  const orderIdFile = join(dir, 'restart-order-ids.json');
  const first = await start({ orderIdFile, sim: { firstOrderId: 1 } });
  let used: number[];
  try {
    await until(() => first.status()?.state === 'connected', 'connected');
    used = Array.from({ length: 150 }, () => first.link().orderIds.take());
  } finally {
    await first.stop();
  }
  const second = await start({ orderIdFile, sim: { firstOrderId: 1 } });
  try {
    await until(() => second.status()?.state === 'connected', 'connected');
    const next = second.link().orderIds.take();
    assert.ok(next > Math.max(...used), `${next} must be above ${Math.max(...used)}`);
  } finally {
    await second.stop();
  }
});

test('a feed that goes silent while others tick is requested again and reported', async () => {
  const k = await start();
  try {
    await until(k.allLive, 'every feed live');
    const reports: { symbol: string; kind: string }[] = [];
    k.tree.bus.subscribe(FEED_SILENT_TOPIC, (r) => reports.push(r));
    k.sim.faults.silence('AAPL');
    await until(() => reports.length > 0, 'a silent-feed report');
    assert.deepEqual(reports[0], { ...reports[0], symbol: 'AAPL', kind: 'quotes' });
    await until(() => k.allLive() && k.feeds()!.feeds.find((f) => f.symbol === 'AAPL')!.rerequests === 1, 'AAPL live again');
  } finally {
    await k.stop();
  }
});
