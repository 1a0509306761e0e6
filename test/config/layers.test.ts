/** Config files that start from another (`extends`), and the shipped TWS and Gateway paper configs built that way. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, test } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/config/yaml.js';
import { runKeel } from '../support/process.js';
import { paperTraderSettings } from '../../src/actors/paper-trader.js';

const dir = mkdtempSync(join(tmpdir(), 'keel-layers-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function problemsOf(file: string): string[] {
  try {
    loadConfig(file);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err.problems;
  }
  assert.fail('config was accepted');
}

test('the Gateway and TWS paper configs are the default tree with the simulator out and the broker in', () => {
  const base = loadConfig('config/default.yaml');
  for (const [file, port, instance] of [['config/gateway-paper.yaml', 4002, 'gateway-paper'], ['config/tws-paper.yaml', 7497, 'tws-paper']] as const) {
    const config = loadConfig(file);
    assert.equal(config.instance, instance);
    assert.equal(config.components.simulator, undefined, file);
    const ib = config.components.ib_connection!;
    assert.deepEqual(ib.dependsOn, ['journal']);
    assert.equal(ib.settings.port, port);
    assert.equal(config.components.paper_trader!.settings.mode, 'ib');
    // Nothing of the simulator's run is shared with the account's.
    for (const [id, key] of [['journal', 'path'], ['ib_connection', 'orderIdFile'], ['inspector', 'tokenFile']] as const) {
      assert.match(String(config.components[id]!.settings[key]), new RegExp(`^var/${instance}/`), `${file} ${id}.${key}`);
    }
    // The rest is the default's, not a copy of it.
    assert.deepEqual(config.components.predictor, base.components.predictor);
    assert.deepEqual(config.components.risk_gate, base.components.risk_gate);
    assert.deepEqual(config.components.paper_trader!.settings.policy, base.components.paper_trader!.settings.policy);
  }
});

test('the default tree streams the SPY option chain last, its settings checked', () => {
  const config = loadConfig('config/default.yaml');
  assert.equal(Object.keys(config.components).at(-1), 'option_chain', 'last: under rest_for_one its restarts restart nothing else');
  const chain = config.components.option_chain!;
  assert.equal(chain.kind, 'option_chain');
  assert.deepEqual(chain.dependsOn, ['subscriptions']);
  assert.deepEqual(chain.settings.expiries, { from: 0, to: 1 });
  assert.equal(chain.settings.strikes, 10);
  assert.deepEqual(chain.settings.rights, ['C', 'P']);
  const bad = write('bad-options.yaml', `extends: ${resolve('config/default.yaml')}\ncomponents:\n  option_chain: { settings: { strikes: wide, expiries: 3..1 } }\n`);
  const problems = problemsOf(bad).join('\n');
  assert.match(problems, /option_chain\.settings\.strikes.*atm ± N/);
  assert.match(problems, /option_chain\.settings\.expiries.*backwards/);
});

test('maps merge, lists replace, null removes', () => {
  const basePath = write('base.yaml', 'instance: base\ncomponents:\n  a: { kind: placeholder, settings: { startDelayMs: 5, stopDelayMs: 7 } }\n  b: { kind: placeholder, dependsOn: [a] }\n  c: { kind: placeholder, dependsOn: [a, b] }\n');
  const top = write('top.yaml', `extends: ${basePath}\ncomponents:\n  a: { settings: { stopDelayMs: 9 } }\n  b: null\n  c: { dependsOn: [a] }\n`);
  const config = loadConfig(top);
  assert.equal(config.instance, 'base');
  assert.deepEqual(Object.keys(config.components).sort(), ['a', 'c']);
  assert.equal(config.components.a!.settings.startDelayMs, 5);
  assert.equal(config.components.a!.settings.stopDelayMs, 9);
  assert.deepEqual(config.components.c!.dependsOn, ['a']);
});

test('a problem is reported against the file that set the key', () => {
  write('bad-base.yaml', 'components:\n  a: { kind: placeholder, settings: { startDelayMs: -1 } }\n  b: { kind: placeholder }\n');
  const top = write('bad-top.yaml', 'extends: bad-base.yaml\ncomponents:\n  b:\n    settings: { stopDelayMs: fast }\n');
  const problems = problemsOf(top);
  assert.equal(problems.length, 2, problems.join('\n'));
  assert.ok(problems.some((p) => p.startsWith(`(in ${resolve(dir, 'bad-base.yaml')}) line 2: components.a.settings.startDelayMs:`)), problems.join('\n'));
  assert.ok(problems.some((p) => p.startsWith('line 4: components.b.settings.stopDelayMs:')), problems.join('\n'));
});

test('a chain that loops, a missing base or an extends that is not a path is one line each', () => {
  write('loop-a.yaml', 'extends: loop-b.yaml\ncomponents: { a: { kind: placeholder } }\n');
  write('loop-b.yaml', 'extends: loop-a.yaml\n');
  assert.match(problemsOf(join(dir, 'loop-a.yaml'))[0]!, /extends: .*loop-b\.yaml extends loop-a\.yaml, which is already in the chain/);
  const missing = write('missing.yaml', 'extends: nowhere.yaml\n');
  assert.throws(() => loadConfig(missing), (err: unknown) => err instanceof ConfigError && err.file.endsWith('nowhere.yaml') && /cannot read the file: ENOENT/.test(err.problems[0]!));
  assert.deepEqual(problemsOf(write('number.yaml', 'extends: 5\n')), ['line 1: extends: expected the path of the config file this one starts from (got 5)']);
});

test('keel run on the TWS paper config trades a paper account at the broker it names', { timeout: 120_000 }, async () => {
  const sim = runKeel(['sim', '--port', '0']);
  try {
    const port = (JSON.parse(await sim.waitFor('TWS simulator listening')) as { port: number }).port;
    // The shipped file as it is, with only the port and the files moved for the test.
    const config = write(
      'tws-here.yaml',
      `extends: ${resolve('config/tws-paper.yaml')}\ncomponents:\n  journal: { settings: { path: ${dir}/journal.keel } }\n  ib_connection: { settings: { port: ${port}, orderIdFile: ${dir}/ids.json } }\n`,
    );
    const keel = runKeel(['run', '--config', config, '--no-inspector']);
    try {
      await keel.waitFor('TWS trades paper account DU');
      await keel.waitFor('paper trader running (ib mode)');
      keel.child.kill('SIGTERM');
      assert.equal(await keel.exited, 0);
    } finally {
      keel.child.kill('SIGKILL');
    }
  } finally {
    sim.child.kill('SIGTERM');
    await sim.exited;
  }
});

test('the options config is the default tree with the option strategy on', () => {
  const base = loadConfig('config/default.yaml');
  const config = loadConfig('config/options.yaml');
  assert.deepEqual(Object.keys(config.components), Object.keys(base.components));
  const { options } = paperTraderSettings.parse(config.components.paper_trader!.settings);
  assert.equal(options.enabled, true);
  assert.equal(options.delta, 0.4);
  assert.deepEqual(options.blockedRegimes, []);
  assert.equal(paperTraderSettings.parse(base.components.paper_trader!.settings).options.enabled, false, 'off in the default');
});
