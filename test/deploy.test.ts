/** The systemd unit: it says what keel's exit codes mean, and runs a config that exists. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { loadConfig } from '../src/config/load.js';
import { EXIT_USAGE } from '../src/daemon.js';
import { keelNodeFlags } from './support/process.js';

const UNIT = 'deploy/keel.service';

function directives(text: string): Map<string, string> {
  const found = new Map<string, string>();
  for (const line of text.split('\n')) {
    const match = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (match) found.set(match[1]!, match[2]!);
  }
  return found;
}

test('the unit restarts failures but never a config mistake, stops with SIGTERM and runs a config that loads', () => {
  const unit = directives(readFileSync(UNIT, 'utf8'));
  assert.equal(unit.get('Restart'), 'on-failure');
  assert.equal(unit.get('RestartPreventExitStatus'), String(EXIT_USAGE));
  assert.equal(unit.get('KillSignal'), 'SIGTERM');
  assert.equal(unit.get('StandardOutput'), 'journal');
  const exec = unit.get('ExecStart')!.split(/\s+/);
  const flags = keelNodeFlags();
  assert.deepEqual(exec.slice(1, 1 + flags.length), flags, 'node gets the flags bin/keel.js names in its #! line');
  const args = exec.slice(1 + flags.length);
  assert.deepEqual(args.slice(0, 3), ['bin/keel.js', 'run', '--config']);
  assert.doesNotThrow(() => loadConfig(args[3]!));
});

test('npm start runs node with the same flags as the #! line', () => {
  const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> };
  assert.equal(pkg.scripts.start, ['node', ...keelNodeFlags(), 'bin/keel.js run --config config/default.yaml'].join(' '));
  assert.ok(keelNodeFlags().length > 0);
});

test('systemd-analyze verify accepts the unit', () => {
  const run = spawnSync('systemd-analyze', ['verify', UNIT], { encoding: 'utf8' });
  assert.equal(run.error, undefined, `systemd-analyze: ${String(run.error)} (Debian's systemd package has it)`);
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stderr.trim(), '');
});
