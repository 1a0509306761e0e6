import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseDocument } from 'yaml';
import { componentKinds, contractOf } from '../../src/actors/registry.js';
import { ROOT_SERVICES } from '../../src/services.js';
import { loadConfig, parseConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/config/yaml.js';
import { runKeel } from '../support/process.js';

/** How zod names the registered component kinds; the list grows as parts of keel land. */
const KINDS = Object.keys(componentKinds).map((k) => `"${k}"`).join('|');

function problemsOf(yaml: string): string[] {
  try {
    parseConfig(yaml, 'test.yaml');
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    assert.equal(err.file, 'test.yaml');
    return err.problems;
  }
  assert.fail('config was accepted');
}

test('the shipped default config is valid and has the whole design tree', () => {
  const config = loadConfig('config/default.yaml');
  assert.deepEqual(Object.keys(config.components).sort(), [
    'feature_health', 'features', 'ib_connection', 'inspector', 'journal', 'l2_microstructure', 'option_chain',
    'paper_trader', 'predictor', 'regime', 'risk_gate', 'simulator', 'subscriptions',
  ]);
  assert.equal(config.supervisor.strategy, 'rest_for_one');
});

test('defaults fill what a minimal config leaves out', () => {
  const config = parseConfig('components:\n  journal: { kind: placeholder }\n', 'min.yaml');
  assert.equal(config.instance, 'keel');
  assert.equal(config.log.level, 'info');
  assert.deepEqual(config.supervisor.intensity, { maxRestarts: 5, periodMs: 30_000 });
  assert.deepEqual(config.components.journal!.settings, { startDelayMs: 0, stopDelayMs: 0, heartbeatMs: 5_000 });
});

test('a dependency cycle is named in full', () => {
  const problems = problemsOf(`
components:
  journal: { kind: placeholder }
  features: { kind: placeholder, dependsOn: [predictor] }
  regime: { kind: placeholder, dependsOn: [features] }
  predictor: { kind: placeholder, dependsOn: [regime] }
`);
  assert.deepEqual(problems, ['components: dependency cycle: features -> predictor -> regime -> features']);
});

test('an unknown dependency is named with the component that wants it', () => {
  assert.deepEqual(problemsOf('components:\n  trader: { kind: placeholder, dependsOn: [gate] }\n'), [
    "components: component 'trader' depends on unknown component 'gate'",
  ]);
});

test('wrong types and values: one line each with line, key path, value and what was expected', () => {
  const problems = problemsOf(`supervisor:
  strategy: all_for_one
  intensity: { maxRestarts: -1, periodMs: 1000 }
components:
  journal:
    kind: placeholder
    restart: sometimes
    startTimeoutMs: "10s"
    settings: { startDelayMs: soon, colour: red }
  regime: { kind: quantum }
`);
  assert.deepEqual(problems, [
    'line 2: supervisor.strategy: Invalid option: expected one of "one_for_one"|"rest_for_one" (got "all_for_one")',
    'line 3: supervisor.intensity.maxRestarts: Too small: expected number to be >=0 (got -1)',
    'line 7: components.journal.restart: Invalid option: expected one of "permanent"|"transient"|"temporary" (got "sometimes")',
    'line 8: components.journal.startTimeoutMs: Invalid input: expected number, received string (got "10s")',
    `line 10: components.regime.kind: Invalid option: expected one of ${KINDS} (got "quantum")`,
    'line 9: components.journal.settings.startDelayMs: Invalid input: expected number, received string (got "soon")',
    'line 9: components.journal.settings.colour: unknown key',
  ]);
});

test('missing and unknown keys are reported', () => {
  assert.deepEqual(problemsOf('instanse: x\ncomponents:\n  journal: {}\n'), [
    `line 3: components.journal.kind: missing; expected one of ${KINDS}`,
    'line 1: instanse: unknown key',
  ]);
});

test('broken YAML gives the line', () => {
  const problems = problemsOf('components:\n  journal: [kind\n  other: 1\n');
  assert.equal(problems.length, 1);
  assert.match(problems[0]!, /^line \d+: /);
});

test('keel config check: exit 2 and every problem on stderr for a bad file, exit 0 and the levels for a good one', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'keel-config-'));
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'components:\n  a: { kind: placeholder, dependsOn: [b] }\n  b: { kind: placeholder, dependsOn: [a] }\n');
  const failed = runKeel(['config', 'check', bad]);
  assert.equal(await failed.exited, 2);
  assert.ok(failed.stderr.join('\n').includes(`${bad}: 1 problem`));
  assert.ok(failed.stderr.join('\n').includes('dependency cycle: a -> b -> a'));
  assert.ok(!failed.stderr.join('\n').includes('    at '), 'no stack trace for a user mistake');

  const good = runKeel(['config', 'check', 'config/default.yaml']);
  assert.equal(await good.exited, 0);
  assert.ok(good.stdout.includes('  level 0: journal, simulator, inspector'));
});

test('keel run with a missing config file says so and exits 2', async () => {
  const keel = runKeel(['run', '--config', 'no/such/file.yaml']);
  assert.equal(await keel.exited, 2);
  assert.match(keel.stderr.join('\n'), /no\/such\/file\.yaml: 1 problem\n\s+cannot read the file: ENOENT/);
});

/** The default config with one component's dependsOn replaced. */
function defaultWith(id: string, dependsOn: string[]): string {
  const doc = parseDocument(readFileSync('config/default.yaml', 'utf8'));
  doc.setIn(['components', id, 'dependsOn'], dependsOn);
  return doc.toString();
}

test('every need of every component must come from its dependsOn: each one left unprovided is one line naming the component, the need and its provider', () => {
  const config = loadConfig('config/default.yaml');
  let judged = 0;
  for (const [id, c] of Object.entries(config.components)) {
    const contract = contractOf(c.kind, c.settings);
    const needs = [...contract.needs.filter((s) => !ROOT_SERVICES.includes(s)), ...contract.reads];
    if (needs.length === 0) continue;
    judged++;
    // Its dependents lose what came through it too: each of them has its own line.
    const lines = problemsOf(defaultWith(id, [])).filter((p) => p.includes(`components.${id}.dependsOn`));
    assert.equal(lines.length, 1, `${id}: ${lines.join('\n')}`);
    assert.match(lines[0]!, new RegExp(`^line \\d+: components\\.${id}\\.dependsOn: ${id} needs `));
    for (const need of needs) assert.ok(lines[0]!.includes(`(${need})`) || lines[0]!.includes(`topic ${need}`), `${id}: ${need} named in ${lines[0]}`);
  }
  assert.ok(judged >= 7, `${judged} components with needs`);
});

test('a need may come through the dependsOn of a dependency; an ib-mode trader needs the IB link', () => {
  // predictor reaches the books and the universe through features and regime.
  assert.doesNotThrow(() => parseConfig(readFileSync('config/default.yaml', 'utf8'), 'default.yaml'));
  const doc = parseDocument(readFileSync('config/default.yaml', 'utf8'));
  doc.deleteIn(['components', 'simulator']);
  doc.deleteIn(['components', 'ib_connection']);
  doc.setIn(['components', 'subscriptions', 'dependsOn'], []);
  doc.setIn(['components', 'paper_trader', 'settings', 'mode'], 'ib');
  const problems = problemsOf(doc.toString());
  assert.ok(problems.some((p) => /components\.paper_trader\.dependsOn: paper_trader needs the IB link \(ibLink\), which no component/.test(p) || /paper_trader needs the IB link \(ibLink\) from a component of kind ib_connection/.test(p)), problems.join('\n'));
  assert.ok(problems.some((p) => /subscriptions needs the IB link \(ibLink\) from a component of kind ib_connection/.test(p)), problems.join('\n'));
});

test('keel config check: the default config without features in regime\'s dependsOn exits 2 with one line naming regime and what it needs', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'keel-config-'));
  const file = join(dir, 'no-features.yaml');
  writeFileSync(file, defaultWith('regime', []));
  const keel = runKeel(['config', 'check', file]);
  assert.equal(await keel.exited, 2);
  const stderr = keel.stderr.join('\n');
  assert.ok(stderr.includes(`${file}: 1 problem`), stderr);
  assert.match(stderr, /components\.regime\.dependsOn: regime needs the feature engine \(featureEngine\) from features, the instrument universe \(instruments\) from subscriptions, topic features from features/);
});

test('a trader reading a horizon its predictor does not serve is one line at load, not a stop a minute in', () => {
  const withSettings = (edits: [string[], unknown][]) => {
    const doc = parseDocument(readFileSync('config/default.yaml', 'utf8'));
    for (const [path, value] of edits) doc.setIn(['components', ...path], value);
    return doc.toString();
  };
  const policy15m = problemsOf(withSettings([[['paper_trader', 'settings', 'policy', 'horizon'], '15m']]));
  assert.equal(policy15m.length, 1, policy15m.join('\n'));
  assert.match(policy15m[0]!, /^line \d+: components\.paper_trader\.settings\.policy\.horizon: 15m, but predictor serves 10s: serve it in components\.predictor\.settings\.horizons, or trade one of those$/);
  const options5m = problemsOf(
    withSettings([
      [['paper_trader', 'settings', 'options', 'enabled'], true],
      [['paper_trader', 'settings', 'options', 'horizon'], '5m'],
    ]),
  );
  assert.equal(options5m.length, 1, options5m.join('\n'));
  assert.match(options5m[0]!, /components\.paper_trader\.settings\.options\.horizon: 5m, but predictor serves 10s:/);
  // Served, it loads; a trader without a predictor among its dependencies (a cluster's trading node) is judged at its first frame instead.
  const served = withSettings([
    [['paper_trader', 'settings', 'policy', 'horizon'], '5m'],
    [['predictor', 'settings', 'horizons', '5m'], { base: ['models/gbdt-base-5m/manifest.json'] }],
  ]);
  assert.doesNotThrow(() => parseConfig(served, 'test.yaml'));
});
