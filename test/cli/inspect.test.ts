/**
 * `keel inspect` in a real terminal: a daemon runs as a child process and the
 * client runs inside tmux (a private tmux server, so nothing of the user's
 * tmux is touched); the test reads the screen with capture-pane and types
 * with send-keys. Every wait polls against a deadline.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, test } from 'node:test';
import { writeInspectedConfig } from '../support/inspector.js';
import { runKeel, type Running } from '../support/process.js';
import { tmuxServer, type Tmux } from '../support/tmux.js';

const dir = mkdtempSync(join(tmpdir(), 'keel-inspect-'));
const tokenFile = join(dir, 'token');
const socket = `keel-inspect-${process.pid}`;
const session = 'inspect';
let server: Tmux | undefined;
const term = () => (server ??= tmuxServer(socket));
const daemons: Running[] = [];

after(async () => {
  server?.kill();
  for (const d of daemons) {
    if (d.child.exitCode === null) d.child.kill('SIGTERM');
    await d.exited;
  }
  rmSync(dir, { recursive: true, force: true });
});

const config = (instance: string, port: number) => writeInspectedConfig(dir, { instance, port, tokenFile });

/** Starts a daemon and answers with its inspector's URL. */
async function startDaemon(instance: string, port: number): Promise<{ daemon: Running; url: string }> {
  const daemon = runKeel(['run', '--config', config(instance, port)]);
  daemons.push(daemon);
  const line = await within(daemon.waitFor('inspector listening on'), 20_000, 'the inspector to listen');
  await within(daemon.waitFor('all components ready'), 20_000, 'the daemon to be ready');
  return { daemon, url: (JSON.parse(line) as { url: string }).url };
}

const tmux = (...args: string[]) => term().run(...args);
const screenUntil = (check: (text: string) => boolean, what: string, name = session, timeoutMs?: number) => term().screenUntil(name, check, what, timeoutMs);

async function within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeoutMs)));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function gateDetail(url: string): Promise<string> {
  // /health answers 503 while the gate is HALTED: its body says why either way.
  const health = (await (await fetch(`${url}/health`)).json()) as { components: Record<string, { detail?: string }> };
  return health.components.risk_gate?.detail ?? '';
}

test('keel inspect shows the tree and the gate, halts with h + y, and follows the daemon through a restart', { timeout: 120_000 }, async () => {
  const first = await startDaemon('inspect-test', 0);
  const port = Number(new URL(first.url).port);
  const command = `${process.execPath} ${resolve('bin/keel.js')} inspect ${first.url} --token-file ${tokenFile}; echo "inspect exited $?"; sleep 600`;
  tmux('-f', '/dev/null', 'new-session', '-d', '-s', session, '-x', '160', '-y', '50', '-c', process.cwd(), command);

  const shown = await screenUntil((s) => /risk_gate\s+running\s+active/.test(s) && /GATE\s+ACTIVE/.test(s), 'the tree and the gate');
  assert.match(shown, /inspect-test/, 'the instance');
  assert.match(shown, /● live/);
  assert.match(shown, /root \(supervisor\)\s+running/);
  for (const id of ['journal', 'inspector']) assert.match(shown, new RegExp(`^\\s+${id}\\s+running\\s+running`, 'm'), id);
  assert.match(shown, /h halt {2}r resume/, 'control keys are on: there is a token');

  tmux('send-keys', '-t', session, 'h');
  await screenUntil((s) => s.includes('Halt trading? press y to confirm'), 'the confirmation');
  tmux('send-keys', '-t', session, 'y');
  const halted = await screenUntil((s) => /GATE\s+HALTED/.test(s) && /risk_gate\s+running\s+halted/.test(s), 'the gate to show HALTED');
  assert.match(halted, /operator halt from keel inspect/);
  assert.match(halted, /^halt: ok/m);
  await within(first.daemon.waitFor('trading HALTED'), 10_000, "the daemon's 'trading HALTED' line");
  assert.match(await gateDetail(first.url), /^HALTED/);

  // The daemon goes away: the client says so and keeps trying.
  first.daemon.child.kill('SIGTERM');
  assert.equal(await first.daemon.exited, 0);
  await screenUntil((s) => /disconnected \(\w+\), retrying in \d+s/.test(s), 'the disconnected line');

  // A new daemon on the same port (with a new token): the client picks up its fresh snapshot and uses its token.
  const second = await startDaemon('inspect-again', port);
  await screenUntil((s) => s.includes('inspect-again') && s.includes('● live') && /risk_gate\s+running/.test(s), 'the fresh snapshot');
  tmux('send-keys', '-t', session, 'r');
  await screenUntil((s) => s.includes('Resume trading? press y to confirm'), 'the confirmation');
  tmux('send-keys', '-t', session, 'y');
  await screenUntil((s) => /GATE\s+ACTIVE/.test(s) && /^resume: ok/m.test(s), 'the gate to show ACTIVE again');
  assert.match(await gateDetail(second.url), /^ACTIVE/);

  tmux('send-keys', '-t', session, 'q');
  await screenUntil((s) => s.includes('inspect exited 0'), 'q to quit');
});

test('keel inspect without a token says the control keys are off, and h changes nothing', { timeout: 60_000 }, async () => {
  const { url } = await startDaemon('inspect-no-token', 0);
  const name = 'no-token';
  // An empty --token is no token; KEEL_TOKEN and var/inspector.token are not looked at after it.
  tmux('-f', '/dev/null', 'new-session', '-d', '-s', name, '-x', '160', '-y', '50', '-c', process.cwd(), `${process.execPath} ${resolve('bin/keel.js')} inspect ${url} --token ''; sleep 600`);
  const shown = await screenUntil((s) => /GATE\s+ACTIVE/.test(s), 'the gate', name);
  assert.match(shown, /h\/r disabled: no token/);
  tmux('send-keys', '-t', name, 'h');
  const text = await screenUntil((s) => /^halt: no token/m.test(s), 'the no-token status', name);
  assert.doesNotMatch(text, /Halt trading\?/);
  assert.match(await gateDetail(url), /^ACTIVE/);
});
