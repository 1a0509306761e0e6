/** A closed terminal or a dropped SSH session (SIGHUP) stops the daemon as SIGTERM does, never kills it. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { runKeel } from '../support/process.js';

const dir = mkdtempSync(join(tmpdir(), 'keel-sighup-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('SIGHUP: an orderly stop in reverse dependency order, the journal closed, exit 0', async () => {
  const config = join(dir, 'sighup.yaml');
  writeFileSync(
    config,
    `instance: sighup
components:
  journal:
    kind: journal
    settings: { path: ${join(dir, 'journal.keel')} }
  worker:
    kind: placeholder
    dependsOn: [journal]
`,
  );
  const keel = runKeel(['run', '--config', config]);
  await keel.waitFor('keel running: all components ready');
  keel.child.kill('SIGHUP');
  assert.equal(await keel.exited, 0, keel.stderr.join('\n'));
  const messages = keel.messages();
  assert.ok(messages.some((m) => m.startsWith('SIGHUP: stopping components in reverse dependency order')), messages.join('\n'));
  assert.ok(messages.includes('journal closed'), messages.join('\n'));
  assert.ok(messages.indexOf('stopping worker') < messages.indexOf('stopping journal'), 'the dependent stops first');
  assert.ok(messages.includes('keel stopped'));
});
