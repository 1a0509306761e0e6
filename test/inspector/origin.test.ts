/**
 * Only the inspector's own pages may read it (issue 18): a request whose
 * Host is not one of its names (DNS rebinding) is a 421, a WebSocket or a
 * request from another site's page (its Origin) a 403; programs, which send
 * no Origin, are served as before. The rules as pure functions, then over
 * real sockets, /health and /metrics included. The browser's view of the
 * same is in browser.test.ts.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { inspectorSettings } from '../../src/actors/inspector.js';
import { componentSpec } from '../../src/actors/registry.js';
import { systemClock } from '../../src/clock.js';
import { hostAllowed, originAllowed, parseHost } from '../../src/inspector/server.js';
import { until } from '../support/ib-client.js';
import { startInspected } from '../support/inspector.js';
import { Probes, startTree } from '../support/probe.js';
import { INSPECTOR_TOPIC } from '../../src/topics.js';

test('a Host is a name or an address, with or without a port, and nothing else', () => {
  assert.deepEqual(parseHost('Keel.LAN:7500'), { name: 'keel.lan', port: 7500 });
  assert.deepEqual(parseHost('keel.lan'), { name: 'keel.lan', port: null });
  assert.deepEqual(parseHost('[0:0:0:0:0:0:0:1]:80'), { name: '[::1]', port: 80 });
  assert.deepEqual(parseHost('127.1'), { name: '127.0.0.1', port: null });
  for (const bad of ['', 'http://keel.lan', 'keel.lan/x', 'user@keel.lan', 'keel.lan:99999', 'keel.lan:', '::1', 'a b']) assert.equal(parseHost(bad), null, bad);
});

test('the Host rule: localhost, the bound address, IP addresses and allowedHosts; nothing else', () => {
  const allowed = ['keel.lan', 'proxy.example:443'];
  for (const host of ['127.0.0.1:7500', '127.0.0.1', 'localhost:7500', 'LOCALHOST', '[::1]:7500', '10.1.2.3:7500', 'keel.lan', 'keel.lan:7500', 'proxy.example:443', 'box:7500']) {
    assert.ok(hostAllowed(host, 'box', allowed), host);
  }
  for (const host of [undefined, '', 'evil.example:7500', 'evil.example', 'proxy.example:7500', 'proxy.example', 'keel.lan.evil.example', 'localhost.evil.example:7500', '127.0.0.1:7500/x']) {
    assert.ok(!hostAllowed(host, 'box', allowed), String(host));
  }
  assert.ok(hostAllowed('[::1]:7500', '::1', []), 'an IPv6 bound address, as its Host gives it');
});

test('the Origin rule: none, or the very host and port the request came to', () => {
  assert.ok(originAllowed(undefined, '127.0.0.1:7500'), 'no Origin: a program');
  assert.ok(originAllowed('http://127.0.0.1:7500', '127.0.0.1:7500'));
  assert.ok(originAllowed('http://LocalHost:7500', 'localhost:7500'));
  assert.ok(originAllowed('https://keel.example', 'keel.example'), 'behind a proxy on the default port');
  assert.ok(originAllowed('http://keel.example', 'keel.example:80'));
  for (const [origin, host] of [
    ['http://evil.example', '127.0.0.1:7500'],
    ['http://127.0.0.1:8080', '127.0.0.1:7500'],
    ['http://localhost:7500', '127.0.0.1:7500'],
    ['null', '127.0.0.1:7500'],
    ['file://', '127.0.0.1:7500'],
    ['chrome-extension://abc', '127.0.0.1:7500'],
    ['http://127.0.0.1:7500', undefined],
    ['http://127.0.0.1:7500', '127.0.0.1:7500/x'],
  ] as const) {
    assert.ok(!originAllowed(origin, host), `${origin} to ${host}`);
  }
});

const probes = new Probes();
let daemon: Awaited<ReturnType<typeof startInspected>>;
let port: number;

before(async () => {
  daemon = await startInspected([probes.spec('feed')]);
  port = Number(new URL(daemon.url).port);
});
after(() => daemon.stop());

/** GET `path` on the inspector with these headers (Host among them), as any client could send it. */
function get(path: string, headers: Record<string, string>, to = port): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: to, path, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Opens /ws with these headers: 'open' with the first message's type, or the status it was refused with. */
function upgrade(headers: Record<string, string>, origin?: string, to = port): Promise<{ opened: boolean; status: number; first?: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${to}/ws`, { headers, origin, handshakeTimeout: 5_000 });
    ws.on('unexpected-response', (_req, res) => {
      resolve({ opened: false, status: res.statusCode ?? 0 });
      ws.terminate();
    });
    ws.once('message', (data) => {
      resolve({ opened: true, status: 101, first: (JSON.parse(String(data)) as { type: string }).type });
      ws.close();
    });
    ws.on('error', (err) => reject(err));
  });
}

test('a request naming another host (DNS rebinding) is a 421 that says what to do, on every route', { timeout: 20_000 }, async () => {
  for (const path of ['/', '/health', '/metrics', '/api/actors', '/api/positions', '/api/orders', '/nope']) {
    const res = await get(path, { host: `evil.example:${port}` });
    assert.equal(res.status, 421, `${path}: ${res.body}`);
    assert.match((JSON.parse(res.body) as { error: string }).error, new RegExp(`host "evil\\.example:${port}" is not this inspector's: .*allowedHosts`), path);
  }
  const ws = await upgrade({ host: `evil.example:${port}` });
  assert.deepEqual(ws, { opened: false, status: 421 });
  // The inspector's own names are served as before, Prometheus scraping by address among them.
  for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, '127.0.0.1']) assert.notEqual((await get('/api/actors', { host })).status, 421, host);
  assert.equal((await get('/metrics', { host: `127.0.0.1:${port}` })).status, 200);
  assert.equal(daemon.phase(), 'running');
  assert.deepEqual(daemon.errors, []);
});

test('a WebSocket or a request from another origin is a 403; its own page and programs with no Origin are served', { timeout: 20_000 }, async () => {
  const own = `http://127.0.0.1:${port}`;
  for (const origin of ['http://evil.example', 'http://127.0.0.1:1', `http://localhost:${port}`, 'null']) {
    assert.deepEqual(await upgrade({}, origin), { opened: false, status: 403 }, origin);
    const res = await get('/api/positions', { origin });
    assert.equal(res.status, 403, `${origin}: ${res.body}`);
    assert.match((JSON.parse(res.body) as { error: string }).error, /is not this inspector's: only its own page/);
  }
  assert.deepEqual(await upgrade({}, own), { opened: true, status: 101, first: 'snapshot' });
  assert.deepEqual(await upgrade({}), { opened: true, status: 101, first: 'snapshot' }, 'no Origin, as from keel inspect');
  assert.equal((await get('/api/actors', { origin: own })).status, 200);
  assert.equal(daemon.phase(), 'running');
});

test('a name in allowedHosts is served, with its own page as origin', { timeout: 20_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'keel-inspector-hosts-'));
  const settings = inspectorSettings.parse({ port: 0, tokenFile: join(dir, 'token'), allowedHosts: ['keel.lan'] });
  const tree = startTree({ children: [componentSpec('inspector', 'inspector', { settings })] }, systemClock);
  try {
    await until(() => tree.phase() === 'running', 'the tree running', 10_000);
    const to = Number(new URL(tree.bus.latest(INSPECTOR_TOPIC)!.url).port);
    assert.equal((await get('/api/actors', { host: `keel.lan:${to}` }, to)).status, 200);
    assert.equal((await get('/api/actors', { host: `other.lan:${to}` }, to)).status, 421);
    assert.deepEqual(await upgrade({ host: `keel.lan:${to}` }, `http://keel.lan:${to}`, to), { opened: true, status: 101, first: 'snapshot' });
    assert.deepEqual(await upgrade({ host: `keel.lan:${to}` }, 'http://evil.example', to), { opened: false, status: 403 });
    assert.deepEqual(tree.errors, []);
  } finally {
    tree.actor.send({ type: 'shutdown' });
    await until(() => tree.done, 'the tree stopped', 10_000);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an allowedHosts entry that is not a host name is refused at config time, naming it', () => {
  const result = inspectorSettings.safeParse({ allowedHosts: ['keel.lan', 'http://keel.lan/'] });
  assert.equal(result.success, false);
  assert.deepEqual(result.error?.issues.map((i) => [i.path.join('.'), i.message]), [
    ['allowedHosts.1', "'http://keel.lan/' is not a host name: give a name or name:port, such as keel.lan or keel.lan:7500 (no scheme, no path)"],
  ]);
});
