import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError } from '../../src/config/yaml.js';
import { defaultSimConfig, loadSimConfig, parseSimConfig, withFlags } from '../../src/sim/config.js';
import { IB_LIMITS } from '../../src/sim/market-data.js';
import { SERVER_VERSION } from '../../src/sim/server.js';

const DEFAULTS = {
  serverVersion: SERVER_VERSION,
  accounts: ['DU1234567'],
  firstOrderId: 1,
  syntheticInstruments: 0,
  seed: 1,
  updatesPerSecond: 20,
  pumpMs: 10,
  ackDelayMs: 5,
  limits: IB_LIMITS,
  dividends: [],
  port: 7497,
};

function problemsOf(yaml: string): string[] {
  try {
    parseSimConfig(yaml, 'sim.yaml');
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    assert.equal(err.file, 'sim.yaml');
    assert.match(err.message, /^sim\.yaml: \d+ problems?\n/);
    return err.problems;
  }
  assert.fail('config was accepted');
}

test('an empty file, or none, gives the simulator its defaults; the control server is off', () => {
  assert.deepEqual(parseSimConfig('', 'empty.yaml'), DEFAULTS);
  assert.deepEqual(parseSimConfig('# nothing\n', 'comments.yaml'), DEFAULTS);
  assert.deepEqual(defaultSimConfig(), DEFAULTS);
  assert.equal(defaultSimConfig().controlPort, undefined);
});

test('the shipped config/sim.yaml is valid and states the defaults', () => {
  assert.deepEqual(loadSimConfig('config/sim.yaml'), DEFAULTS);
});

test('keys set are kept, partial limits keep the other limits', () => {
  const config = parseSimConfig('seed: 42\ncontrolPort: 0\nupdatesPerSecond: 1000000\nlimits: { depthSubscriptions: 10 }\n', 'sim.yaml');
  assert.equal(config.seed, 42);
  assert.equal(config.controlPort, 0);
  assert.equal(config.updatesPerSecond, 1_000_000);
  assert.deepEqual(config.limits, { ...IB_LIMITS, depthSubscriptions: 10 });
});

test("SPY's dividends: an ex-date and an amount each; a date that is not YYYYMMDD is named", () => {
  assert.deepEqual(parseSimConfig("dividends: [{ exDate: '20260320', amount: 1.75 }]\n", 'sim.yaml').dividends, [{ exDate: '20260320', amount: 1.75 }]);
  assert.deepEqual(problemsOf("dividends: [{ exDate: '2026-03-20', amount: 1.75 }]\n"), ['line 1: dividends[0].exDate: expected an ex-dividend date YYYYMMDD (got "2026-03-20")']);
});

test('a bad value names the line, the key path, the value and what was expected; unknown keys are errors', () => {
  assert.deepEqual(
    problemsOf(`port: 7497
serverVersion: 175
limits:
  depthSubscriptions: many
  colour: red
updatesPerSecond: 2000000
seeed: 3
`),
    [
      'line 2: serverVersion: Too small: expected number to be >=176 (got 175)',
      'line 6: updatesPerSecond: Too big: expected number to be <=1000000 (got 2000000)',
      'line 4: limits.depthSubscriptions: Invalid input: expected number, received string (got "many")',
      'line 5: limits.colour: unknown key',
      'line 7: seeed: unknown key',
    ],
  );
  assert.deepEqual(problemsOf('accounts: [DU1, "DU 2"]\n'), [
    'line 1: accounts[1]: expected an account id of letters and digits, like DU1234567 (got "DU 2")',
  ]);
});

test('broken YAML gives the line; a missing file says so', () => {
  const problems = problemsOf('port: [1\n');
  assert.equal(problems.length, 1);
  assert.match(problems[0]!, /^line \d+: /);
  assert.throws(() => loadSimConfig('no/such/sim.yaml'), (err: unknown) => err instanceof ConfigError && err.problems[0] === 'cannot read the file: ENOENT');
});

test('flags override the file, checked by the same rules', () => {
  const file = parseSimConfig('seed: 3\nport: 7000\n', 'sim.yaml');
  const config = withFlags(file, { seed: '5', port: '0', 'control-port': '8080', 'updates-per-second': '0.5', config: 'sim.yaml' });
  assert.ok(typeof config !== 'string');
  assert.equal(config.seed, 5);
  assert.equal(config.port, 0);
  assert.equal(config.controlPort, 8080);
  assert.equal(config.updatesPerSecond, 0.5);
  assert.deepEqual(withFlags(file, {}), file);
  assert.equal(withFlags(file, { seed: '-1' }), "--seed must be a whole number from 0 to 4294967295, got '-1'");
  assert.equal(withFlags(file, { port: '' }), "--port must be a whole number from 0 to 65535, got ''");
  assert.equal(withFlags(file, { 'control-port': '1.5' }), "--control-port must be a whole number from 0 to 65535, got '1.5'");
  assert.equal(withFlags(file, { 'updates-per-second': 'fast' }), "--updates-per-second must be a number from 0 to 1000000, got 'fast'");
});
