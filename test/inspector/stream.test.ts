/**
 * The inspector's WebSocket stream on a real tree: the snapshot a late
 * client gets, a child's failure and restart as the stream shows it,
 * coalescing under a flood of XState events, and the bounded event ring.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setup } from 'xstate';
import { EventRing } from '../../src/inspector/event-ring.js';
import type { ActorView } from '../../src/inspector/protocol.js';
import type { ComponentContext } from '../../src/supervision/component.js';
import { Probes } from '../support/probe.js';
import { startInspected, StreamClient } from '../support/inspector.js';

/** A component whose state flips on every event: the noisiest control-plane actor there can be. */
const chatty = setup({ types: {} as { input: ComponentContext; events: { type: 'flip' } | { type: 'shutdown' } } }).createMachine({
  initial: 'up',
  on: { shutdown: '.stopped' },
  states: {
    up: { tags: ['ready'], on: { flip: 'down' } },
    down: { tags: ['ready'], on: { flip: 'up' } },
    stopped: { type: 'final' },
  },
});

const probes = new Probes();
let daemon: Awaited<ReturnType<typeof startInspected>>;

before(async () => {
  daemon = await startInspected(
    [probes.spec('feed'), probes.spec('book', ['feed'], {}, { kind: 'l2_microstructure' }), { id: 'chatty', kind: 'test', logic: chatty }],
    { defaults: { backoff: { minMs: 300, maxMs: 300, randomFactor: 0 } } },
  );
});
after(() => daemon.stop());

test('a client that attaches after start gets the whole tree, its states and the events so far', async () => {
  const client = new StreamClient(daemon.url);
  await client.waitFor('the snapshot', () => client.of('snapshot').length > 0);
  const snapshot = client.of('snapshot')[0]!;
  client.close();
  const byId = new Map(snapshot.actors.map((a) => [a.id, a]));
  assert.deepEqual([...byId.keys()].sort(), ['book', 'chatty', 'feed', 'inspector', 'root']);
  assert.equal(snapshot.actors[0]!.id, 'root', 'parents come before their children');
  assert.deepEqual(byId.get('root'), { ...byId.get('root')!, parent: null, kind: 'supervisor', status: 'running', state: 'running' });
  assert.deepEqual(byId.get('book'), { ...byId.get('book')!, parent: 'root', kind: 'l2_microstructure', status: 'running', state: 'running', restarts: 0 });
  assert.equal(byId.get('chatty')!.state, 'up');
  // The inspector started after `feed`, yet the log has feed's start.
  assert.ok(snapshot.events.some((e) => e.actor === 'feed' && e.text === 'feed running'), JSON.stringify(snapshot.events));
  assert.equal(snapshot.panels.phase, 'running');
  assert.equal(snapshot.control, true);
});

test('a child killed shows failed -> backoff -> running, in the log and in the deltas', async () => {
  const client = new StreamClient(daemon.url);
  await client.waitFor('the snapshot', () => client.of('snapshot').length > 0);
  probes.context('book').fail(new Error('killed by the test'));
  const book = () => client.of('actors').flatMap((m) => m.actors.filter((a) => a.id === 'book'));
  await client.waitFor('book running again', () => book().some((a) => a.status === 'running' && a.restarts === 1));
  const lines = client.of('events').flatMap((m) => m.events.filter((e) => e.actor === 'book').map((e) => e.text));
  client.close();
  const failed = lines.indexOf('book failed: killed by the test');
  const backoff = lines.findIndex((t) => t.startsWith('book backoff for '));
  const running = lines.lastIndexOf('book running');
  assert.ok(failed >= 0 && failed < backoff && backoff < running, lines.join('\n'));
  const statuses = book().map((a) => a.status);
  assert.ok(statuses.includes('backoff'), `the 300 ms backoff outlasts a 100 ms delta tick: ${statuses.join(' ')}`);
  const last = book().at(-1)!;
  assert.equal(last.lastError, 'killed by the test');
  assert.equal(last.backoffUntil, null);
});

test('under 100,000 events a second each actor gets at most ten deltas a second, and the last one is the truth', async (t) => {
  const client = new StreamClient(daemon.url);
  await client.waitFor('the snapshot', () => client.of('snapshot').length > 0);
  const target = daemon.actor.system.get('chatty')!;
  const events = 100_000;
  const started = performance.now();
  // In slices, so the server's timer gets its turns as it would in a busy daemon.
  for (let sent = 0; sent < events; ) {
    for (const end = Math.min(events, sent + 5_000); sent < end; sent++) target.send({ type: 'flip' });
    await new Promise((resolve) => setImmediate(resolve));
  }
  const elapsedMs = performance.now() - started;
  const finalState = (target.getSnapshot() as { value: string }).value;
  await client.waitFor('the last delta', () => client.of('actors').some((m) => m.at > 0 && m.actors.some((a) => a.id === 'chatty' && a.state === finalState)) && performance.now() - started > elapsedMs + 300);
  const deltas: ActorView[] = client.of('actors').flatMap((m) => m.actors.filter((a) => a.id === 'chatty'));
  client.close();
  t.diagnostic(`${events} changes in ${Math.round(elapsedMs)} ms (${Math.round(events / (elapsedMs / 1000))}/s) -> ${deltas.length} deltas`);
  // One delta per 100 ms tick at most, plus the ticks at either end.
  const allowed = Math.ceil((performance.now() - started) / 100) + 2;
  assert.ok(deltas.length <= allowed, `${deltas.length} deltas for ${events} changes in ${Math.round(elapsedMs)} ms (allowed ${allowed})`);
  assert.ok(deltas.length >= 1);
  assert.equal(deltas.at(-1)!.state, finalState);
  assert.ok(daemon.inspection.events().length <= 500, 'the event ring stays bounded under the flood');
});

test('a malformed client message gets an error and the stream goes on; resync sends the snapshot again', async () => {
  const client = new StreamClient(daemon.url);
  await client.open;
  client.send('{not json');
  client.send(JSON.stringify({ type: 'subscribe' }));
  client.send(JSON.stringify({ type: 'resync' }));
  await client.waitFor('a second snapshot', () => client.of('snapshot').length === 2);
  const errors = client.of('error').map((m) => m.message);
  client.close();
  assert.deepEqual(errors, ['malformed JSON: expected {"type":"resync"}', 'unknown message type "subscribe": expected {"type":"resync"}']);
});

test('the event ring keeps the newest events, numbered, and answers what came after a seq', () => {
  const ring = new EventRing(3);
  for (let i = 1; i <= 10; i++) ring.push({ at: i, kind: 'status', actor: 'a', text: `e${i}` });
  assert.equal(ring.size, 3);
  assert.deepEqual(ring.all().map((e) => [e.seq, e.text]), [[8, 'e8'], [9, 'e9'], [10, 'e10']]);
  assert.deepEqual(ring.since(9).map((e) => e.seq), [10]);
  assert.deepEqual(ring.since(2).map((e) => e.seq), [8, 9, 10], 'what fell out of the ring is gone');
  assert.deepEqual(ring.since(10), []);
  assert.throws(() => new EventRing(0), /capacity must be at least 1/);
});
