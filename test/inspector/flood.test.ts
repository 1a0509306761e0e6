/**
 * A client flooding the inspector with resyncs (issue 18): it gets a few
 * snapshots and one error, never a serialization of the tree per resync,
 * and every reply, resync snapshots included, obeys the per-client buffer
 * cap that broadcasts obey. The tree under it keeps running.
 *
 * The flooded server runs on a manual clock, so the resync allowance comes
 * back only when the test says: every count here is exact, and nothing
 * asserts how long anything took.
 */
import assert from 'node:assert/strict';
import { after, before, mock, test } from 'node:test';
import WebSocket from 'ws';
import { ManualClock } from '../../src/clock.js';
import { createLogger } from '../../src/log.js';
import { RESYNC_BURST, RESYNC_REFILL_MS, type InspectorEvent, type ServerMessage } from '../../src/inspector/protocol.js';
import { InspectorServer } from '../../src/inspector/server.js';
import { until } from '../support/ib-client.js';
import { startInspected } from '../support/inspector.js';
import { LogSink, Probes } from '../support/probe.js';

const probes = new Probes();
let daemon: Awaited<ReturnType<typeof startInspected>>;

before(async () => {
  daemon = await startInspected([probes.spec('feed')]);
});
after(() => daemon.stop());

/** A second inspector on the daemon's tree, on a clock of the test's own. */
async function startServer(clock: ManualClock) {
  const sink = new LogSink();
  const server = await InspectorServer.start({
    host: '127.0.0.1',
    port: 0,
    token: 'flood-test-token-0123456789',
    instance: 'flood',
    tree: daemon.inspection,
    bus: daemon.bus,
    services: daemon.services,
    clock,
    log: createLogger({ level: 'debug', pretty: false, destination: sink }),
    maxBodyBytes: 1024,
    allowedHosts: [],
  });
  return { server, sink };
}

/** A WebSocket client keeping what it reads; `paused` reads nothing until resumed. */
async function client(url: string, paused = false) {
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/ws`);
  const messages: ServerMessage[] = [];
  let closed = false;
  ws.on('message', (data) => messages.push(JSON.parse(String(data)) as ServerMessage));
  ws.on('close', () => (closed = true));
  ws.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => {
      if (paused) ws.pause();
      resolve();
    });
    ws.once('error', reject);
  });
  return {
    ws,
    of: <T extends ServerMessage['type']>(type: T) => messages.filter((m): m is Extract<ServerMessage, { type: T }> => m.type === type),
    get closed() {
      return closed;
    },
  };
}

const RESYNC = JSON.stringify({ type: 'resync' });
const limited = (m: string) => m.startsWith('resync ignored');

test('1,000 resyncs every 100 ms get a burst of snapshots and one error; the flooders stay, /health answers, the tree runs', { timeout: 60_000 }, async () => {
  const clock = new ManualClock();
  const { server } = await startServer(clock);
  try {
    const reader = await client(server.url);
    // One that never reads while it floods: what it asked for piles up on the server, or does not.
    const silent = await client(server.url, true);
    await until(() => reader.of('snapshot').length === 1, 'the first snapshot');
    const healthy = (await fetch(`${server.url}/health`)).status;
    for (let batch = 0; batch < 10; batch++) {
      for (let i = 0; i < 1000; i++) {
        reader.ws.send(RESYNC);
        silent.ws.send(RESYNC);
      }
      // (A tree of probes has no feed, no gate: CRITICAL, 503. Answered as before the flood is what counts.)
      const health = await fetch(`${server.url}/health`);
      assert.equal(health.status, healthy, await health.text());
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    silent.ws.resume();
    // An unknown message after the flood: its error in reply proves every resync before it was taken.
    for (const c of [reader, silent]) c.ws.send(JSON.stringify({ type: 'done' }));
    for (const c of [reader, silent]) {
      await until(() => c.of('error').some((m) => m.message.includes('"done"')) || c.closed, 'the answer to the last message', 20_000);
      assert.equal(c.closed, false, 'the flooder was not dropped');
      assert.equal(c.of('snapshot').length, 1 + RESYNC_BURST, 'the first snapshot and a burst of resyncs, of 10,000 asked');
      const errors = c.of('error').map((m) => m.message);
      assert.equal(errors.length, 2, errors.join('\n'));
      assert.ok(limited(errors[0]!), errors[0]);
    }

    // The allowance comes back with time, and a client over it again is told again.
    await clock.advance(RESYNC_REFILL_MS);
    reader.ws.send(RESYNC);
    reader.ws.send(RESYNC);
    await until(() => reader.of('error').length === 3, 'the second refusal');
    assert.equal(reader.of('snapshot').length, 2 + RESYNC_BURST);
    assert.ok(limited(reader.of('error')[2]!.message));

    assert.equal(daemon.phase(), 'running');
    assert.equal(daemon.child('feed').status, 'running');
    assert.deepEqual(daemon.errors, []);
    reader.ws.close();
    silent.ws.close();
  } finally {
    await server.close();
  }
});

test('every reply obeys the buffer cap: a client that asks for snapshots and never reads them is dropped, and the next one is served', { timeout: 60_000 }, async () => {
  const tree = daemon.inspection;
  const events = tree.events.bind(tree);
  // 10 MB of events in every snapshot: two unread ones are over the 8 MB cap, whatever the kernel buffers.
  const big: InspectorEvent[] = Array.from({ length: 100 }, (_, i) => ({ seq: i + 1, at: 0, kind: 'status', actor: 'feed', text: 'x'.repeat(100_000) }));
  tree.events = () => big;
  // No broadcast timers on this server: only a reply can bring the client over the cap.
  mock.timers.enable({ apis: ['setInterval'] });
  let started: Awaited<ReturnType<typeof startServer>>;
  try {
    started = await startServer(new ManualClock());
  } finally {
    mock.timers.reset();
  }
  const { server, sink } = started;
  try {
    const silent = await client(server.url, true);
    for (let i = 0; i < RESYNC_BURST; i++) silent.ws.send(RESYNC);
    await until(() => server.clientCount === 0, 'the client that does not read dropped', 20_000);
    assert.ok(sink.messages().some((m) => m.startsWith('inspector client too slow: dropped')), sink.messages().join('\n'));

    // (Paused, it sees its connection cut only once it reads again.)
    silent.ws.resume();
    await until(() => silent.closed, 'the dropped client closed');
    tree.events = events;
    const next = await client(server.url);
    await until(() => next.of('snapshot').length === 1, 'a snapshot for the next client');
    next.ws.close();
    assert.deepEqual(daemon.errors, []);
  } finally {
    tree.events = events;
    await server.close();
  }
});
