/**
 * The inspector page in a real browser against a real daemon: Debian's
 * chromium, headless, driven by playwright-core. The daemon runs as a child
 * process with a small tree (journal, risk gate, a placeholder to restart,
 * the inspector on a free port); the test restarts the placeholder through
 * the control API and watches the page follow.
 *
 * Then what a page of another site can do in the same browser (issue 18):
 * one served from another local port, and one whose name resolves to the
 * inspector's address (DNS rebinding), each try the WebSocket and the API,
 * and fail, while the inspector's own page works.
 *
 * Every wait polls the DOM with a timeout; nothing asserts how long anything took.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { chromium, type Page } from 'playwright-core';
import { stateText } from '../../src/inspector/web/state-text.js';
import { BROWSER_ARGS, chromiumPath } from '../support/browser.js';
import { startInspected, writeInspectedConfig } from '../support/inspector.js';
import { Probes } from '../support/probe.js';
import { runKeel, type Running } from '../support/process.js';

const dir = mkdtempSync(join(tmpdir(), 'keel-inspector-browser-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const ARTIFACTS = 'test-artifacts';


function config(): { path: string; tokenFile: string } {
  const tokenFile = join(dir, 'inspector.token');
  const path = writeInspectedConfig(dir, {
    instance: 'inspector-browser',
    port: 0,
    tokenFile,
    supervisor: 'supervisor:\n  defaults:\n    backoff: { minMs: 50, maxMs: 500, randomFactor: 0, resetAfterMs: 30000 }\n',
    more: '  beacon:\n    kind: placeholder\n    settings: { heartbeatMs: 1000 }\n',
  });
  return { path, tokenFile };
}

/** Polls until `check` answers true; the last answer's description goes into the failure. */
async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const attr = (page: Page, selector: string, name: string) => page.locator(selector).getAttribute(name);

test('the inspector page shows the tree and the gate, and follows a restart made through the control API', { timeout: 90_000 }, async (t) => {
  const executablePath = chromiumPath();
  const { path, tokenFile } = config();
  const browser = await chromium.launch({ executablePath, args: BROWSER_ARGS });
  t.after(() => browser.close());
  const keel: Running = runKeel(['run', '--config', path]);
  t.after(async () => {
    keel.child.kill('SIGTERM');
    await keel.exited;
  });

  const listening = await keel.waitFor('inspector listening on');
  const url = /https?:\/\/[^\s"]+/.exec(listening)?.[0];
  assert.ok(url, `no url in '${listening}'`);
  await keel.waitFor('keel running');
  const token = readFileSync(tokenFile, 'utf8').trim();

  // What the daemon says the tree is: the page must show every one of these.
  const listed = (await (await fetch(new URL('/api/actors', url))).json()) as { actors: { id: string }[] };
  const ids = listed.actors.map((a) => a.id);
  for (const id of ['journal', 'risk_gate', 'beacon', 'inspector']) assert.ok(ids.includes(id), `/api/actors lists ${id}: ${ids.join(', ')}`);

  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(url);

  await page.locator('#conn[data-conn="connected"]').waitFor({ timeout: 15_000 });
  for (const id of ids) await page.locator(`[data-actor="${id}"]`).waitFor({ timeout: 15_000 });

  // The gate is in view at the top with one of its three states.
  await eventually(async () => ['ACTIVE', 'REDUCING', 'HALTED'].includes((await attr(page, '#gate', 'data-state')) ?? ''), 'the gate state on the page');
  assert.ok(await page.locator('#gate').isVisible());
  assert.equal(await page.locator('#gate-state').textContent(), await attr(page, '#gate', 'data-state'));

  // The detail of a state machine: its boxes, with the current state lit.
  await page.locator('[data-actor="risk_gate"]').click();
  await page.locator('#detail [data-detail="actor"]').waitFor({ timeout: 15_000 });
  await page.locator('#machine .sbox.active').first().waitFor({ timeout: 15_000 });

  // State values read as the shared stateText renders them (the page imports the same module).
  const gateView = ((await (await fetch(new URL('/api/actors/risk_gate', url))).json()) as { actor: { state: unknown } }).actor;
  await eventually(
    async () => (await page.locator('[data-actor="risk_gate"] [data-field="state"]').textContent()) === stateText(gateView.state, '—'),
    `risk_gate's state on the page as '${stateText(gateView.state, '—')}'`,
  );

  const beacon = '[data-actor="beacon"]';
  await eventually(async () => (await attr(page, beacon, 'data-status')) === 'running', 'beacon running on the page');
  const before = Number(await attr(page, beacon, 'data-restarts'));

  const res = await fetch(new URL('/api/control/restart-actor', url), {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ actor: 'beacon' }),
  });
  assert.equal(res.status, 200, await res.text());

  await eventually(
    async () => Number(await attr(page, beacon, 'data-restarts')) > before && (await attr(page, beacon, 'data-status')) === 'running',
    `beacon's restarts above ${before} and its status back to running on the page`,
  );
  assert.equal(await page.locator(`${beacon} [data-field="restarts"]`).textContent(), `↻${before + 1}`);

  // No option_chain in this daemon: its panel stays hidden.
  assert.equal(await page.locator('#chain-panel').isHidden(), true);

  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, 'inspector.png'), fullPage: true });
  assert.deepEqual(pageErrors, [], 'no errors thrown in the page');
});

/**
 * In the page: opens a WebSocket to `ws` and fetches `api`, and says what
 * each came to. 'open' only once a message came (a refused handshake never
 * opens); a fetch the browser blocks (CORS) throws, one answered is read.
 */
function tryInspector({ ws, api }: { ws: string; api: string }): Promise<{ ws: string; api: string }> {
  const socket = new Promise<string>((resolve) => {
    const s = new WebSocket(ws);
    s.onmessage = () => {
      resolve('open');
      s.close();
    };
    s.onerror = () => resolve('error');
    s.onclose = () => resolve('closed');
  });
  const read = fetch(api).then(
    async (res) => `${res.status} ${await res.text()}`,
    (err: unknown) => `failed: ${String(err)}`,
  );
  return Promise.all([socket, read]).then(([w, a]) => ({ ws: w, api: a }));
}

test('a page of another site can neither stream nor fetch from the inspector, while its own page works in the same browser', { timeout: 60_000 }, async (t) => {
  const executablePath = chromiumPath();
  const daemon = await startInspected([new Probes().spec('feed')]);
  t.after(() => daemon.stop());
  const port = Number(new URL(daemon.url).port);
  // Another site on this machine: a page from another local port.
  const foreign = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>elsewhere</title>'));
  await new Promise<void>((resolve) => foreign.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => foreign.close(() => resolve())));
  // evil.example resolves to the inspector's address, as a rebinding DNS server would make it.
  const browser = await chromium.launch({ executablePath, args: [...BROWSER_ARGS, '--host-resolver-rules=MAP evil.example 127.0.0.1'] });
  t.after(() => browser.close());

  const elsewhere = await browser.newPage();
  await elsewhere.goto(`http://127.0.0.1:${(foreign.address() as AddressInfo).port}/`);
  const crossOrigin = await elsewhere.evaluate(tryInspector, { ws: `ws://127.0.0.1:${port}/ws`, api: `http://127.0.0.1:${port}/api/positions` });
  assert.equal(crossOrigin.ws, 'error', 'the WebSocket from another origin is refused');
  assert.match(crossOrigin.api, /^failed: /, 'the API is not readable from another origin');

  // The rebinding page: once evil.example resolves to the inspector's address, the browser sends
  // its requests there as same-origin ones, Host evil.example. (Its first load is from that address
  // too here: Chromium's private-network checks would block a page served from elsewhere, which
  // other browsers do not; what reaches the inspector is the same.)
  const rebound = await browser.newPage();
  const load = await rebound.goto(`http://evil.example:${port}/`);
  assert.equal(load?.status(), 421, 'the page itself under a foreign name is a 421');
  const rebinding = await rebound.evaluate(tryInspector, { ws: `ws://evil.example:${port}/ws`, api: '/api/positions' });
  assert.equal(rebinding.ws, 'error', 'the WebSocket under a foreign name is refused');
  assert.match(rebinding.api, new RegExp(`^421 .*host \\\\"evil\\.example:${port}\\\\" is not this inspector's`), 'the API under a foreign name is a 421');

  // The inspector's own page, in the same browser: live, and its API readable.
  const own = await browser.newPage();
  await own.goto(daemon.url);
  await own.locator('#conn[data-conn="connected"]').waitFor({ timeout: 15_000 });
  await own.locator('[data-actor="feed"]').waitFor({ timeout: 15_000 });
  const same = await own.evaluate(tryInspector, { ws: `ws://127.0.0.1:${port}/ws`, api: '/api/actors' });
  assert.equal(same.ws, 'open');
  assert.match(same.api, /^200 /);
  assert.equal(daemon.phase(), 'running');
});
