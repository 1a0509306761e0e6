/** The daemon as a real process: signals, exit codes, and failures that must not kill it. */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runKeel, runScript } from '../support/process.js';

test('keel run starts the default tree, SPY option chain included, and answers SIGTERM with a clean exit 0, stopping in reverse order', async () => {
  const keel = runKeel(['run', '--config', 'config/default.yaml']);
  await keel.waitFor('keel running: all components ready');
  // The chain live on the inspector (the web page and keel inspect read the same panel).
  let chain: { rows?: unknown; expiries?: { strikes: { call: { line: string; iv: number | null } | null }[] }[] } = {};
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const res = await fetch('http://127.0.0.1:7500/api/chain').catch(() => undefined);
    if (res?.ok) chain = (await res.json()) as typeof chain;
    const calls = chain.expiries?.flatMap((e) => e.strikes.map((s) => s.call)) ?? [];
    if (calls.length > 0 && calls.every((c) => c?.line === 'live' && c.iv !== null)) break;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  const calls = chain.expiries?.flatMap((e) => e.strikes.map((s) => s.call)) ?? [];
  assert.ok(calls.length >= 20 && calls.every((c) => c?.line === 'live' && c.iv !== null), `the chain on /api/chain: ${JSON.stringify(chain).slice(0, 300)}`);
  keel.child.kill('SIGTERM');
  assert.equal(await keel.exited, 0);
  const stops = keel.messages().filter((m) => m.startsWith('stopping ')).map((m) => m.slice('stopping '.length));
  assert.equal(stops.length, 13);
  assert.ok(stops.indexOf('paper_trader') < stops.indexOf('predictor'));
  assert.ok(stops.indexOf('predictor') < stops.indexOf('features'));
  assert.ok(stops.indexOf('subscriptions') < stops.indexOf('ib_connection'));
  assert.ok(stops.indexOf('ib_connection') < stops.indexOf('simulator'));
  assert.ok(stops.indexOf('ib_connection') < stops.indexOf('journal'));
  assert.equal(stops.at(-1), 'journal');
  assert.ok(keel.messages().includes('keel stopped'));
});

test('a second signal forces exit while a component is still stopping', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'keel-'));
  const config = join(dir, 'slow-stop.yaml');
  writeFileSync(config, 'components:\n  journal:\n    kind: placeholder\n    shutdownTimeoutMs: 60000\n    settings: { stopDelayMs: 30000 }\n');
  const keel = runKeel(['run', '--config', config]);
  await keel.waitFor('keel running');
  keel.child.kill('SIGINT');
  await keel.waitFor('stopping journal');
  keel.child.kill('SIGINT');
  assert.equal(await keel.exited, 130);
  assert.ok(keel.messages().some((m) => m.startsWith('SIGINT again: forcing exit')));
});

test('restart intensity exceeded at the root: exit 1 with the child and its last error named', async () => {
  const run = runScript('test/fixtures/daemon-scenario.ts', ['crash-loop']);
  assert.equal(await run.exited, 1);
  const giving = run.messages().find((m) => m.startsWith('giving up'));
  assert.equal(giving, 'giving up: flaky exhausted the restart intensity (4 restarts within 10000 ms); its last error: lost the feed');
  // Stopped in reverse order before exiting.
  assert.ok(run.messages().includes('stopping journal'));
});

test('a throw in a callback, an unhandled rejection and an error event each restart the child; the process lives', async () => {
  const run = runScript('test/fixtures/daemon-scenario.ts', ['async-errors']);
  assert.equal(await run.exited, 0, run.stderr.join('\n'));
  const messages = run.messages();
  for (const failure of ['thrower failed: callback threw', 'thrower failed: promise rejected', 'thrower failed: emitter error']) {
    assert.ok(messages.includes(failure), `missing '${failure}' in:\n${messages.join('\n')}`);
  }
  assert.equal(messages.filter((m) => m.startsWith('restarting thrower: ')).length, 3);
  assert.ok(messages.includes('keel stopped'));
});
