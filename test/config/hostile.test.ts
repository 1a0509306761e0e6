/**
 * Hostile config files (issue 18, items 14 and 15): a "billion laughs", a
 * huge file, too many components, and a file within the limits that has
 * tens of thousands of problems. Each gives one line per problem and exit 2
 * promptly, never a stack trace; the children run under a deadline and are
 * killed if they overrun it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { MAX_COMPONENTS, parseConfig } from '../../src/config/load.js';
import { ConfigError, MAX_CONFIG_BYTES, parseYaml } from '../../src/config/yaml.js';
import { parseSimConfig } from '../../src/sim/config.js';
import { runKeel, type Running } from '../support/process.js';

const dir = mkdtempSync(join(tmpdir(), 'keel-hostile-'));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/** The exit code of `run`, or a failure (and the child killed) if it has not exited within `ms`. */
async function exitWithin(run: Running, ms: number): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      run.child.kill('SIGKILL');
      reject(new Error(`still running after ${ms} ms; stderr so far: ${run.stderr.join('\n').slice(0, 500)}`));
    }, ms);
  });
  try {
    return await Promise.race([run.exited, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

function problemsOf(check: () => unknown): string[] {
  try {
    check();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err.problems;
  }
  assert.fail('config was accepted');
}

/** Nine levels of nine aliases each: 9^9 (387 million) strings once expanded. */
const LAUGHS = [
  'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
  ...'bcdefghi'.split('').map((name, i) => {
    const prev = 'abcdefghi'[i]!;
    return `${name}: &${name} [${Array.from({ length: 9 }, () => `*${prev}`).join(',')}]`;
  }),
  'components: { journal: { kind: placeholder } }',
  '',
].join('\n');

/** A valid config padded with comments to `bytes` bytes. */
function padded(bytes: number): string {
  const head = 'components:\n  journal: { kind: placeholder }\n';
  const line = `# ${'x'.repeat(77)}\n`;
  let text = head + line.repeat(Math.floor((bytes - head.length) / line.length));
  text += '#'.repeat(bytes - text.length - 1) + '\n';
  assert.equal(Buffer.byteLength(text), bytes);
  return text;
}

/** `n` placeholder components, each depending on the one before it. */
function chain(n: number): string {
  let text = 'components:\n';
  for (let i = 0; i < n; i++) text += `  c${i}: { kind: placeholder, dependsOn: [${i > 0 ? `c${i - 1}` : ''}] }\n`;
  return text;
}

test('a billion laughs is one line naming the aliases, for keel config, the simulator config and the CLI: exit 2, no stack trace', async () => {
  for (const problems of [problemsOf(() => parseConfig(LAUGHS, 'laughs.yaml')), problemsOf(() => parseSimConfig(LAUGHS, 'laughs.yaml'))]) {
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /^aliases \(\*name\) expand too far: .*more than 100 alias expansions/);
  }
  const laughs = file('laughs.yaml', LAUGHS);
  for (const args of [['config', 'check', laughs], ['run', '--config', laughs], ['sim', '--config', laughs]]) {
    const keel = runKeel(args);
    assert.equal(await exitWithin(keel, 30_000), 2, `keel ${args.join(' ')}: ${keel.stderr.join('\n')}`);
    const stderr = keel.stderr.join('\n');
    assert.ok(stderr.startsWith(`keel: ${laughs}: 1 problem\n  aliases (*name) expand too far`), stderr);
    assert.equal(keel.stderr.filter((l) => l.trim() !== '').length, 2, stderr);
    assert.ok(!stderr.includes('    at ') && !stderr.includes('ReferenceError'), `no stack trace: ${stderr}`);
  }
});

test('a few aliases are still fine', () => {
  const config = parseConfig('components:\n  journal: &j { kind: placeholder }\n  other: *j\n', 'ok.yaml');
  assert.deepEqual(Object.keys(config.components), ['journal', 'other']);
  const sim = parseSimConfig('accounts: &a [DU1, DU2]\n', 'sim.yaml');
  assert.deepEqual(sim.accounts, ['DU1', 'DU2']);
});

test('a file over 1 MiB is refused with the limit named, before it is parsed; one of exactly 1 MiB is read', async () => {
  assert.equal(MAX_CONFIG_BYTES, 1024 * 1024);
  const over = padded(MAX_CONFIG_BYTES + 1);
  assert.deepEqual(problemsOf(() => parseConfig(over, 'big.yaml')), [
    'the file is 1,048,577 bytes, more than the limit of 1,048,576 bytes (1 MiB) for a config file',
  ]);
  assert.deepEqual(problemsOf(() => parseSimConfig(over, 'big.yaml')).length, 1);

  const big = file('big.yaml', padded(5 * MAX_CONFIG_BYTES));
  for (const args of [['config', 'check', big], ['run', '--config', big]]) {
    const keel = runKeel(args);
    assert.equal(await exitWithin(keel, 30_000), 2);
    assert.deepEqual(keel.stderr.filter((l) => l.trim() !== ''), [
      `keel: ${big}: 1 problem`,
      '  the file is 5,242,880 bytes, more than the limit of 1,048,576 bytes (1 MiB) for a config file',
    ]);
  }
  const limit = runKeel(['config', 'check', file('limit.yaml', padded(MAX_CONFIG_BYTES))]);
  assert.equal(await exitWithin(limit, 30_000), 0, limit.stderr.join('\n'));
});

test('more than 1,000 components is one line naming the limit; 1,000 in one long dependsOn chain check promptly', async () => {
  assert.equal(MAX_COMPONENTS, 1_000);
  assert.deepEqual(problemsOf(() => parseConfig(chain(1_001), 'many.yaml')), ['line 2: components: 1,001 components, more than the limit of 1,000']);

  const many = runKeel(['config', 'check', file('many.yaml', chain(1_001))]);
  assert.equal(await exitWithin(many, 30_000), 2);
  assert.deepEqual(many.stderr.filter((l) => l.trim() !== ''), [`keel: ${join(dir, 'many.yaml')}: 1 problem`, '  line 2: components: 1,001 components, more than the limit of 1,000']);

  const most = runKeel(['config', 'check', file('most.yaml', chain(1_000))]);
  assert.equal(await exitWithin(most, 60_000), 0, most.stderr.join('\n'));
  assert.ok(most.stdout.includes('  level 999: c999'));
});

test('a file within the limits with 60,000 problems checks promptly: one line each, with its line number', async () => {
  // One component with 60,000 unknown settings: each problem's line is looked up in an index, not by a scan of the file.
  let text = 'components:\n  journal:\n    kind: placeholder\n    settings:\n';
  for (let i = 0; i < 60_000; i++) text += `      k${i}: 1\n`;
  assert.ok(Buffer.byteLength(text) <= MAX_CONFIG_BYTES);
  const path = file('keys.yaml', text);
  const keel = runKeel(['config', 'check', path]);
  // The check takes about two seconds; a lookup that scans the map for each problem took fifty.
  assert.equal(await exitWithin(keel, 20_000), 2);
  assert.ok(keel.stderr[0]!.startsWith(`keel: ${path}: `), keel.stderr[0]);
  assert.equal(keel.stderr.filter((l) => l.includes(': unknown key')).length, 60_000);
  assert.equal(keel.stderr[1], '  line 5: components.journal.settings.k0: unknown key');
  assert.equal(keel.stderr[60_000], '  line 60004: components.journal.settings.k59999: unknown key');
});

test('a key given twice in one map is still one line with its line, in keel\'s and the simulator\'s config', () => {
  assert.deepEqual(problemsOf(() => parseConfig('components:\n  journal: { kind: placeholder }\n  journal: { kind: placeholder }\n', 'dup.yaml')), [
    'line 3: journal: the key is given twice in the same map',
  ]);
  assert.deepEqual(problemsOf(() => parseSimConfig('seed: 1\nport: 0\nseed: 2\n', 'dup.yaml')), ['line 3: seed: the key is given twice in the same map']);
  // A syntax error is reported as before, with its line.
  assert.match(problemsOf(() => parseYaml('a: [1\nb: 2\n', 'bad.yaml'))[0]!, /^line \d+: /);
});
