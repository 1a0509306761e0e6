/**
 * Hostile input to the inspector over real sockets (issue 18): URLs the
 * server cannot parse, a malformed escape, oversized headers, a bug met
 * while answering, restart-actor on the inspector itself, and a stop with a
 * client that never reads. Nothing a client sends escapes as an unowned
 * failure: the tree keeps running, and the inspector alone is restarted
 * when it meets a bug.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { until } from '../support/ib-client.js';
import { control, startInspected } from '../support/inspector.js';
import { Probes } from '../support/probe.js';
import { INSPECTOR_TOPIC } from '../../src/topics.js';

const probes = new Probes();
let daemon: Awaited<ReturnType<typeof startInspected>>;

before(async () => {
  daemon = await startInspected([probes.spec('feed')], { defaults: { backoff: { minMs: 20, maxMs: 20, randomFactor: 0 } } });
});
after(() => daemon.stop());

/** The inspector's URL now (a restarted inspector on port 0 listens on a new port). */
const urlNow = () => daemon.bus.latest(INSPECTOR_TOPIC)!.url;
const portNow = () => Number(new URL(urlNow()).port);
const inspector = () => daemon.child('inspector');

/** Writes `text` on a fresh TCP connection and gives back what the server answered before it closed. */
function rawExchange(port: number, text: string): Promise<{ status: number; body: string; head: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    // A server that never answers (or never closes) fails the test rather than hanging it.
    socket.setTimeout(5_000, () => {
      socket.destroy();
      reject(new Error(`no complete answer to ${JSON.stringify(text.slice(0, 40))} within 5 s`));
    });
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' || err.code === 'EPIPE' ? undefined : reject(err)));
    socket.on('close', () => {
      const answer = Buffer.concat(chunks).toString('utf8');
      const split = answer.indexOf('\r\n\r\n');
      const head = split < 0 ? answer : answer.slice(0, split);
      let body = split < 0 ? '' : answer.slice(split + 4);
      // A chunked body, unchunked (the sizes are in hex on lines of their own).
      if (/^transfer-encoding: chunked$/im.test(head)) body = body.replace(/(^|\r\n)[0-9a-f]+\r\n/gi, '').replace(/\r\n$/, '');
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0), head, body });
    });
    socket.end(text);
  });
}

const upgradeHeaders = 'Host: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n';

function assertAlive(incarnation = 1): void {
  assert.equal(daemon.phase(), 'running');
  assert.equal(inspector().status, 'running');
  assert.equal(inspector().incarnation, incarnation);
  assert.deepEqual(daemon.errors, []);
}

test('a WebSocket to a URL the server cannot parse is refused with 400, and the daemon lives', { timeout: 20_000 }, async () => {
  const status = await new Promise<number>((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${portNow()}//x:99999/ws`, { handshakeTimeout: 5_000 });
    ws.on('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.on('open', () => reject(new Error('the upgrade was accepted')));
    ws.on('error', (err) => reject(err));
  });
  assert.equal(status, 400);

  const upgrade = await rawExchange(portNow(), `GET //x:99999/ws HTTP/1.1\r\n${upgradeHeaders}\r\n`);
  assert.equal(upgrade.status, 400, upgrade.head);
  assert.match(upgrade.body, /malformed request URL "\/\/x:99999\/ws"/);

  const wrongPath = await rawExchange(portNow(), `GET /nope HTTP/1.1\r\n${upgradeHeaders}\r\n`);
  assert.equal(wrongPath.status, 404);
  assert.match(wrongPath.body, /the WebSocket stream is at \/ws/);
  assertAlive();
});

test('a bad URL is 400 and oversized headers 431, each with a body naming the problem', { timeout: 20_000 }, async () => {
  const plain = await rawExchange(portNow(), 'GET //x:99999/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
  assert.equal(plain.status, 400, plain.head);
  assert.match(String((JSON.parse(plain.body) as { error: string }).error), /malformed request URL/);

  const escape = await fetch(`${urlNow()}/api/actors/%`);
  assert.equal(escape.status, 400);
  assert.match(String(((await escape.json()) as { error: string }).error), /malformed actor id '%'/);

  const huge = await rawExchange(portNow(), `GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Filler: ${'a'.repeat(64 * 1024)}\r\n\r\n`);
  assert.equal(huge.status, 431, huge.head);
  assert.match(huge.body, /request headers too large/);

  const garbage = await rawExchange(portNow(), 'NOT HTTP AT ALL\r\n\r\n');
  assert.equal(garbage.status, 400, garbage.head);
  assert.match(garbage.body, /malformed HTTP request/);
  assert.ok(!daemon.sink.messages().some((m) => /inspector (request )?failed/.test(m)), 'no refused request was logged as a failure');
  assertAlive();
});

test('a bug met while answering is a 500 for the client and a failure of the inspector alone, never of the tree', { timeout: 20_000 }, async () => {
  const tree = daemon.inspection;
  const detail = tree.detail.bind(tree);
  tree.detail = () => {
    throw new Error('a bug in detail');
  };
  try {
    const res = await fetch(`${urlNow()}/api/actors/feed`);
    assert.equal(res.status, 500);
    assert.deepEqual(await res.json(), { error: 'inspector error: see the daemon log' });
  } finally {
    tree.detail = detail;
  }
  await until(() => inspector().incarnation === 2 && inspector().status === 'running', 'the inspector restarted');
  assert.ok(daemon.sink.messages().some((m) => m.includes('a bug in detail')));
  assert.equal(daemon.phase(), 'running');
  assert.equal(daemon.child('feed').status, 'running');
  assert.equal(daemon.child('feed').failures, 0);
  assert.deepEqual(daemon.errors, []);
  assert.equal((await fetch(`${urlNow()}/api/actors/feed`)).status, 200);
});

test('restart-actor on the inspector answers its caller first, and the token survives the restart', { timeout: 20_000 }, async () => {
  const incarnation = inspector().incarnation;
  const token = readFileSync(daemon.tokenFile, 'utf8').trim();
  const answer = await control(urlNow(), 'restart-actor', { actor: 'inspector' }, token);
  assert.deepEqual(answer, { status: 200, body: { ok: true, command: 'restart-actor', actor: 'inspector', restarting: true } });
  await until(() => inspector().incarnation === incarnation + 1 && inspector().status === 'running', 'the inspector restarted');
  assert.equal(readFileSync(daemon.tokenFile, 'utf8').trim(), token, 'the token file is unchanged');
  // Authorized (404 for an unknown actor), not 401.
  const again = await control(urlNow(), 'restart-actor', { actor: 'nobody' }, token);
  assert.equal(again.status, 404, JSON.stringify(again.body));
  assert.deepEqual(daemon.errors, []);
});

test('a stop with a WebSocket client that never reads completes promptly', { timeout: 20_000 }, async () => {
  const other = await startInspected([probes.spec('other')]);
  const port = Number(new URL(other.url).port);
  // A raw client: it upgrades, then never reads a byte, so never answers the close frame.
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  const upgraded = new Promise<void>((resolve) => socket.once('data', () => resolve()));
  socket.write(`GET /ws HTTP/1.1\r\n${upgradeHeaders}\r\n`);
  await upgraded;
  socket.pause();
  // An idle keep-alive HTTP connection too.
  const keepAlive = await rawExchangeKeepAlive(port);
  try {
    other.actor.send({ type: 'shutdown' });
    // (`done` on what startInspected returns is a copy taken at start: ask the root itself.)
    await until(() => other.actor.getSnapshot().status === 'done', 'the tree stopped', 2_000);
    assert.ok(!other.sink.messages().some((m) => /did not stop within/.test(m)), 'nothing was abandoned');
  } finally {
    socket.destroy();
    keepAlive.destroy();
    await other.stop();
  }
});

/** A keep-alive connection that has had one answer and is left open, idle. */
function rawExchangeKeepAlive(port: number): Promise<{ destroy(): void }> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    socket.once('data', () => resolve(socket));
    socket.write('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n');
  });
}
