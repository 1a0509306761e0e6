/**
 * `keel doctor` as a real process against the simulator: healthy, every
 * line ok and exit 0; then each line made to fail (or warn) by the fault
 * that stands for it, injected through the simulator's control API, with
 * the exit code that says whether keel could trade there.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { startControlServer, type ControlServer } from '../../src/sim/control.js';
import { TwsSimulator, type SimulatorOptions } from '../../src/sim/server.js';
import { runKeel } from '../support/process.js';

const dir = mkdtempSync(join(tmpdir(), 'keel-doctor-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** config/default.yaml with the paper trader sending its orders to TWS (ib mode), and `extra` settings of its. */
function ibModeConfig(name: string, extra = ''): string {
  const text = readFileSync('config/default.yaml', 'utf8');
  const ib = text.replace(/\n(\s+)mode: book\n/, (_m, indent: string) => `\n${indent}mode: ib\n${extra ? `${indent}${extra}\n` : ''}`);
  assert.notEqual(ib, text, 'config/default.yaml sets the paper trader mode: book');
  const file = join(dir, name);
  writeFileSync(file, ib);
  return file;
}

interface Doctor {
  readonly code: number | null;
  readonly lines: string[];
  /** The line of `check`, by its name. */
  line(check: string): string;
}

/** Runs `keel doctor` against a fresh simulator, after `before` has injected its faults through the control API. */
async function doctor(args: string[], options: { sim?: SimulatorOptions; faults?: string[] } = {}): Promise<Doctor> {
  const sim = new TwsSimulator({ updatesPerSecond: 50, ...options.sim });
  const port = await sim.listen(0);
  let control: ControlServer | undefined;
  try {
    control = await startControlServer(sim);
    for (const fault of options.faults ?? []) {
      const answer = await fetch(`${control.url}faults/${fault}`, { method: 'POST' });
      assert.equal(answer.status, 200, `${fault}: ${await answer.text()}`);
    }
    const run = runKeel(['doctor', `127.0.0.1:${port}`, '--timeout-ms', '1500', ...args]);
    const code = await run.exited;
    const lines = run.stdout;
    return {
      code,
      lines,
      line(check) {
        const found = lines.find((l) => l.slice(6).startsWith(`${check}:`));
        assert.ok(found, `no '${check}' line in:\n${lines.join('\n')}\n${run.stderr.join('\n')}`);
        return found;
      },
    };
  } finally {
    await control?.close();
    await sim.close();
  }
}

const CHECKS = ['reachable', 'server version', 'accounts', 'farms', 'market data SPY', 'market data QQQ', 'market data AAPL', 'market data MSFT', 'depth slots', 'clock skew', 'client id'];

test('a healthy simulator: every check ok, exit 0; --json says the same', async () => {
  const d = await doctor(['--config', ibModeConfig('healthy.yaml')]);
  assert.equal(d.code, 0, d.lines.join('\n'));
  for (const check of CHECKS) assert.match(d.line(check), /^ok {4}/);
  assert.match(d.line('accounts'), /DU1234567 \(paper\)/);
  assert.match(d.line('farms'), /usfarm OK \(2104\), ushmds OK \(2106\), secdefnj OK \(2158\)/);
  assert.match(d.line('depth slots'), /3 of 3 granted/);
  assert.equal(d.lines.at(-1), 'keel can trade there');

  const json = await doctor(['--json']);
  assert.equal(json.code, 0);
  const report = JSON.parse(json.lines.join('\n')) as { canTrade: boolean; checks: { verdict: string; check: string }[] };
  assert.equal(report.canTrade, true);
  assert.deepEqual(
    report.checks.map((c) => c.check),
    CHECKS,
  );
  assert.ok(report.checks.every((c) => c.verdict === 'ok'));
});

test('nothing listening: reachable fails, exit 1', async () => {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  const run = runKeel(['doctor', `127.0.0.1:${port}`, '--timeout-ms', '1500']);
  assert.equal(await run.exited, 1);
  assert.match(run.stdout.find((l) => l.includes('reachable:')) ?? '', /^FAIL {2}reachable: .*ECONNREFUSED/);
});

test('an old server version fails', async () => {
  const d = await doctor([], { sim: { serverVersion: 176 } });
  assert.equal(d.code, 1);
  assert.match(d.line('server version'), /^FAIL {2}server version: 176: keel's client is built for 193/);
});

test('a live account fails when the paper trader sends orders to TWS, naming the setting; allowed, or in book mode, it warns', async () => {
  const refused = await doctor(['--config', ibModeConfig('live.yaml')], { faults: ['accounts?ids=U1234567'] });
  assert.equal(refused.code, 1);
  assert.match(refused.line('accounts'), /^FAIL {2}accounts: U1234567 \(LIVE\): account U1234567 is not a paper account/);
  assert.ok(refused.line('accounts').includes('set components.paper_trader.settings.allowLiveAccount: true'));

  const allowed = await doctor(['--config', ibModeConfig('allowed.yaml', 'allowLiveAccount: true')], { sim: { accounts: ['U1234567'] } });
  assert.equal(allowed.code, 0, allowed.lines.join('\n'));
  assert.match(allowed.line('accounts'), /^warn {2}accounts: U1234567 \(LIVE\): allowLiveAccount is set/);

  const book = await doctor([], { sim: { accounts: ['U1234567'] } });
  assert.equal(book.code, 0);
  assert.match(book.line('accounts'), /^warn {2}accounts: .*book mode/);
});

test('a broken market data farm fails', async () => {
  const d = await doctor([], { faults: ['farm?restoreAfterMs=600000'] });
  assert.equal(d.code, 1);
  assert.match(d.line('farms'), /^FAIL {2}farms: usfarm BROKEN \(2103\)/);
});

test('market data delayed only (10167) or not permitted (354) fails for that instrument only', async () => {
  const d = await doctor([], { faults: ['permission?symbol=QQQ&level=delayed', 'permission?symbol=AAPL&level=none'] });
  assert.equal(d.code, 1);
  assert.match(d.line('market data SPY'), /^ok {4}market data SPY: live/);
  assert.match(d.line('market data QQQ'), /^FAIL {2}market data QQQ: delayed only \(10167\)/);
  assert.match(d.line('market data AAPL'), /^FAIL {2}market data AAPL: none \(354: /);
  assert.match(d.line('market data MSFT'), /^ok {4}/);
});

test('fewer depth slots than keel asks for: 309 fails', async () => {
  const d = await doctor([], { faults: ['depth-limit?slots=2'] });
  assert.equal(d.code, 1);
  assert.match(d.line('depth slots'), /^FAIL {2}depth slots: TWS granted 2 of the 3 books keel asks for at a time \(309: /);
  assert.ok(d.line('depth slots').includes('components.subscriptions.settings.budgets.depthSlots'));
});

test("TWS's clock: a few seconds off warns, beyond 30 s fails", async () => {
  const off = await doctor([], { faults: ['clock?offsetMs=5000'] });
  assert.equal(off.code, 0);
  assert.match(off.line('clock skew'), /^warn {2}clock skew: TWS's clock is [45]\.\d s ahead of this machine's/);
  const wrong = await doctor([], { faults: ['clock?offsetMs=-45000'] });
  assert.equal(wrong.code, 1);
  assert.match(wrong.line('clock skew'), /^FAIL {2}clock skew: TWS's clock is 4[45]\.\d s behind this machine's, over 30 s/);
});

test("keel's client id in use warns (a running keel would hold it); the doctor's own in use fails", async () => {
  const keels = await doctor([], { faults: ['reject-client?clientId=0'] });
  assert.equal(keels.code, 0);
  assert.match(keels.line('client id'), /^warn {2}client id: 0, keel's, is in use \(326\): a running keel holds it/);
  const own = await doctor(['--client-id', '7'], { faults: ['reject-client?clientId=7'] });
  assert.equal(own.code, 1);
  assert.match(own.line('reachable'), /^FAIL {2}reachable: .*client id 7 is in use \(326\): pass --client-id with another/);
});

test('usage mistakes exit 2; --help fits 80 columns', async () => {
  for (const args of [['nowhere'], ['127.0.0.1:70000'], ['--client-id', '0'], ['--timeout-ms', '0'], ['a:1', 'b:2']]) {
    const run = runKeel(['doctor', ...args]);
    assert.equal(await run.exited, 2, args.join(' '));
    assert.match(run.stderr[0] ?? '', /^keel: /);
  }
  const help = runKeel(['doctor', '--help']);
  assert.equal(await help.exited, 0);
  assert.match(help.stdout[0]!, /^Usage: keel doctor \[HOST:PORT\]/);
  assert.ok(help.stdout.every((l) => l.length <= 80), 'help fits 80 columns');
});
