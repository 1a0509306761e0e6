import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { EventName, IBApi } from '@stoqey/ib';
import { nextEvent } from './support/ib-client.js';
import { runKeel } from './support/process.js';

test('--help lists the commands; every command has its own --help', async () => {
  const general = runKeel(['--help']);
  assert.equal(await general.exited, 0);
  const text = general.stdout.join('\n');
  assert.match(text, /keel run \[--config FILE\]/);
  assert.match(text, /keel config check \[FILE\]/);
  for (const command of [['run'], ['config', 'check']]) {
    const help = runKeel([...command, '--help']);
    assert.equal(await help.exited, 0);
    assert.match(help.stdout.join('\n'), new RegExp(`^Usage: keel ${command.join(' ')}`));
  }
});

test('an unknown command or option is a usage error with exit 2', async () => {
  const unknown = runKeel(['trade', '--now']);
  assert.equal(await unknown.exited, 2);
  assert.match(unknown.stderr.join('\n'), /unknown command 'trade --now'/);
  const badOption = runKeel(['run', '--confg', 'x.yaml']);
  assert.equal(await badOption.exited, 2);
  assert.match(badOption.stderr.join('\n'), /Unknown option '--confg'/);
});

test('keel sim --help lists its options and the control endpoints', async () => {
  const help = runKeel(['sim', '--help']);
  assert.equal(await help.exited, 0);
  const text = help.stdout.join('\n');
  assert.match(text, /^Usage: keel sim \[--port N\] \[--seed N\] \[--config FILE\] \[--control-port N\]/);
  for (const flag of ['--config FILE', '--port N', '--seed N', '--updates-per-second N', '--control-port N']) assert.ok(text.includes(flag), flag);
  for (const endpoint of [
    'GET  /status',
    'GET  /help',
    'POST /faults/drop',
    'POST /faults/connectivity?restoreAfterMs=N&dataLost=true|false',
    'POST /faults/farm?restoreAfterMs=N',
    'POST /faults/silence?symbol=SYMBOL',
    'POST /faults/garbage',
    'POST /faults/reject-client?clientId=N',
    'POST /faults/slow?delayMs=N',
  ]) {
    assert.ok(text.includes(endpoint), endpoint);
  }
  assert.ok(help.stdout.every((line) => line.length <= 80), 'help fits 80 columns');
});

test('keel sim with a bad config file or a bad option value exits 2 naming the problem, with no stack trace', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'keel-sim-'));
  const bad = join(dir, 'sim.yaml');
  writeFileSync(bad, 'seed: 3\nlimits:\n  depthSubscriptions: -1\nspeed: fast\n');
  const failed = runKeel(['sim', '--config', bad]);
  assert.equal(await failed.exited, 2);
  const stderr = failed.stderr.join('\n');
  assert.ok(stderr.includes(`${bad}: 2 problems`), stderr);
  assert.ok(stderr.includes('line 3: limits.depthSubscriptions: Too small: expected number to be >=0 (got -1)'), stderr);
  assert.ok(stderr.includes('line 4: speed: unknown key'), stderr);
  assert.ok(!stderr.includes('    at '), 'no stack trace for a user mistake');

  const badSeed = runKeel(['sim', '--seed', 'five']);
  assert.equal(await badSeed.exited, 2);
  assert.match(badSeed.stderr.join('\n'), /^keel: --seed must be a whole number from 0 to 4294967295, got 'five'\nUsage: keel sim /);
  const badPort = runKeel(['sim', '--control-port', '65536']);
  assert.equal(await badPort.exited, 2);
  assert.match(badPort.stderr.join('\n'), /--control-port must be a whole number from 0 to 65535, got '65536'/);
});

test('keel sim --seed 5 --port 0 --control-port 0 logs both ports, serves both, and stops on SIGTERM', async () => {
  const keel = runKeel(['sim', '--seed', '5', '--port', '0', '--control-port', '0']);
  const simLine = JSON.parse(await keel.waitFor('TWS simulator listening')) as { port: number };
  const controlLine = JSON.parse(await keel.waitFor('sim control API listening')) as { port: number; url: string };
  assert.ok(simLine.port > 0);
  assert.ok(controlLine.port > 0);
  assert.equal(controlLine.url, `http://127.0.0.1:${controlLine.port}/`);

  const ib = new IBApi({ host: '127.0.0.1', port: simLine.port });
  const nextId = nextEvent(ib, EventName.nextValidId);
  ib.connect(4);
  await nextId;
  const status = (await (await fetch(`${controlLine.url}status`)).json()) as { clientIds: number[] };
  assert.deepEqual(status.clientIds, [4]);
  const disconnected = nextEvent(ib, EventName.disconnected);
  const drop = await fetch(`${controlLine.url}faults/drop`, { method: 'POST' });
  assert.equal(drop.status, 200);
  await disconnected;

  keel.child.kill('SIGTERM');
  assert.equal(await keel.exited, 0);
  assert.ok(keel.messages().includes('TWS simulator stopped'));
});
