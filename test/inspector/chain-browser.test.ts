/**
 * The option chain on the inspector page, in a real browser (Debian's
 * chromium, headless, driven by playwright-core) against a real run: the
 * simulator's SPY chain priced by option_chain. The page draws a table per
 * expiry (strikes down, calls and puts with bid, ask, keel's IV and delta,
 * the ATM strike marked) and the surface: a smile line per expiry and the
 * band's mid IVs as dots. Every wait polls the DOM; nothing is timed.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { chromium } from 'playwright-core';
import { chainPanel } from '../../src/inspector/chain-panel.js';
import type { ChainPanel } from '../../src/inspector/protocol.js';
import { BROWSER_ARGS, chromiumPath } from '../support/browser.js';
import { until } from '../support/ib-client.js';
import { complete, startChainDaemon } from './chain-daemon.js';

/** An element as the page's scripts see it (the project's types have no DOM library). */
type Node = { getAttribute(name: string): string | null; readonly textContent: string | null };


test('the page shows the chain table per expiry and the surface picture, live', { timeout: 60_000 }, async (t) => {
  const executablePath = chromiumPath();
  const daemon = await startChainDaemon('chain-browser');
  t.after(() => daemon.stop());
  const browser = await chromium.launch({ executablePath, args: BROWSER_ARGS });
  t.after(() => browser.close());

  // What the daemon serves once every contract is live and priced: the page must show it.
  await until(() => complete(daemon.chain() && chainPanel(daemon.chain()!)), 'every contract live and priced', 20_000);
  const chain = (await (await fetch(`${daemon.url}/api/chain`)).json()) as ChainPanel;

  const page = await browser.newPage({ viewport: { width: 1400, height: 1400 } });
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(daemon.url);
  await page.locator('#chain-panel').waitFor({ state: 'visible', timeout: 15_000 });

  // A table per expiry, a row per strike of the band.
  for (const e of chain.expiries) {
    const table = page.locator(`.chain-expiry[data-expiry="${e.expiry}"] table.chain`);
    await table.waitFor({ timeout: 15_000 });
    assert.equal(await table.locator('tbody tr').count(), e.strikes.length, `${e.expiry}: one row per strike`);
    assert.equal(await table.locator('tbody tr.atm').count(), 1, `${e.expiry}: one ATM row`);
    // Numbers, not dashes, once the lines are live: the page redraws at most twice a second, so poll.
    const deadline = Date.now() + 15_000;
    for (;;) {
      const cells = await table.locator('td[data-field]').evaluateAll((tds) => (tds as unknown as Node[]).map((td) => [td.getAttribute('data-field'), td.getAttribute('data-line'), td.textContent]));
      const numeric = (field: string) => cells.filter(([f, line, text]) => f === field && line === 'live' && /^-?\d+\.\d+$/.test(text ?? '')).length;
      const contracts = e.strikes.reduce((n, s) => n + (s.call ? 1 : 0) + (s.put ? 1 : 0), 0);
      if (['bid', 'ask', 'iv', 'delta'].every((f) => numeric(f) === contracts)) break;
      assert.ok(Date.now() < deadline, `${e.expiry}: every live contract's bid, ask, IV and delta as numbers; the cells: ${JSON.stringify(cells.slice(0, 8))}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const atm = Number(await table.locator('tbody tr.atm').getAttribute('data-strike'));
    assert.ok(e.strikes.some((s) => s.strike === atm), `${e.expiry}: the ATM row ${atm} is a band strike`);
    assert.ok(Math.abs(atm - chain.spot!) <= 1, `${e.expiry}: ATM ${atm} near SPY ${chain.spot}`);
  }

  // The surface: a smile line per expiry through many points, the band's mid IVs as dots inside the plot.
  const svg = page.locator('#chain-surface svg');
  await svg.waitFor({ timeout: 15_000 });
  for (const e of chain.expiries) {
    const d = (await svg.locator(`path.smile[data-expiry="${e.expiry}"]`).getAttribute('d')) ?? '';
    assert.ok(d.split('L').length >= 10, `${e.expiry}: the smile drawn through its listed strikes: ${d.slice(0, 80)}`);
    assert.ok(!/NaN/.test(d), 'no NaN in the path');
  }
  const dots = await svg.locator('circle.iv-dot').evaluateAll((cs) => (cs as unknown as Node[]).map((c) => [Number(c.getAttribute('cx')), Number(c.getAttribute('cy'))]));
  const box = await svg.evaluate((el) => {
    const { width, height } = (el as unknown as { viewBox: { baseVal: { width: number; height: number } } }).viewBox.baseVal;
    return { width, height };
  });
  assert.ok(dots.length >= 20, `${dots.length} mid-IV dots`);
  for (const [cx, cy] of dots) assert.ok(cx! >= 0 && cx! <= box.width && cy! >= 0 && cy! <= box.height, `a dot at ${cx},${cy} inside ${box.width}x${box.height}`);
  // Distinct heights: a smile, not a flat row of dots.
  assert.ok(new Set(dots.map(([, cy]) => Math.round(cy!))).size >= 5);

  mkdirSync('test-artifacts', { recursive: true });
  await page.locator('#chain-panel').screenshot({ path: join('test-artifacts', 'inspector-chain.png') });
  assert.deepEqual(pageErrors, [], 'no errors thrown in the page');
});
