/**
 * The inspector page in a real browser against a real daemon: Debian's
 * chromium, headless, driven by playwright-core. The daemon runs as a child
 * process with a small tree (journal, risk gate, a placeholder to restart,
 * the inspector on a free port); the test restarts the placeholder through
 * the control API and watches the page follow.
 *
 * Every wait polls the DOM with a timeout; nothing asserts how long anything took.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { after, test } from 'node:test';
import { chromium, type Page } from 'playwright-core';
import { stateText } from '../../src/inspector/web/state-text.js';
import { writeInspectedConfig } from '../support/inspector.js';
import { runKeel, type Running } from '../support/process.js';

const dir = mkdtempSync(join(tmpdir(), 'keel-inspector-browser-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const ARTIFACTS = 'test-artifacts';

/** chromium from PATH, or a failure that says how to get it. */
function chromiumPath(): string {
  for (const d of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(d, 'chromium');
    if (d && existsSync(candidate)) return candidate;
  }
  assert.fail('chromium is not on PATH: the inspector browser test needs it (apt-get install chromium)');
}

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
  const browser = await chromium.launch({ executablePath, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
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

  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, 'inspector.png'), fullPage: true });
  assert.deepEqual(pageErrors, [], 'no errors thrown in the page');
});
