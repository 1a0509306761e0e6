import assert from 'node:assert/strict';
import { test } from 'node:test';
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
