/**
 * Faults a restart cannot heal, on real `keel run` processes: each exits
 * promptly with one line naming what, where and what to do, and the right
 * exit code, without a single restart and without journaling anything after
 * the fault beyond the orderly stop (the gate halting on its way out).
 *
 * The supervisor in these configs backs off 2 s, then 4 s, 8 s, ...: the old
 * behaviour (restarts until the intensity is spent) would run past each
 * test's deadline, so meeting it is itself part of the check.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { FileJournal } from '../../src/journal/file-journal.js';
import type { JournalEntry } from '../../src/journal/records.js';
import { writeInspectedConfig } from '../support/inspector.js';
import { runKeel, type Running } from '../support/process.js';

const dir = mkdtempSync(join(tmpdir(), 'keel-permanent-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Slow backoff, generous intensity: six restarts would take a minute. */
const SLOW_RESTARTS = `supervisor:
  strategy: rest_for_one
  intensity: { maxRestarts: 5, periodMs: 120000 }
  defaults:
    backoff: { minMs: 2000, maxMs: 20000, randomFactor: 0, resetAfterMs: 60000 }
`;

/** A port held by this test process for the test's length. */
async function holdPort(): Promise<{ port: number; server: Server }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('no address');
  return { port: address.port, server };
}

async function freePort(): Promise<number> {
  const { port, server } = await holdPort();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A journal with `n` gate records, as an earlier run would leave it. */
async function seedJournal(path: string, n: number): Promise<void> {
  const { journal } = await FileJournal.open(path);
  for (let i = 0; i < n; i++) await journal.append({ type: 'gate', at: 1_000 + i, from: 'ACTIVE', to: 'HALTED', reason: `earlier run ${i}`, by: 'operator' });
  await journal.close();
}

async function journalEntries(path: string): Promise<JournalEntry[]> {
  const { journal, entries } = await FileJournal.open(path);
  await journal.close();
  return entries;
}

interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

function lines(run: Running): LogLine[] {
  return run.stdout.flatMap((l) => {
    try {
      return [JSON.parse(l) as LogLine];
    } catch {
      return [];
    }
  });
}

/** The run's one fatal line; no stack trace anywhere, nothing on stderr, and no restart of anything. */
function theOneLine(run: Running): LogLine {
  const all = lines(run);
  const fatal = all.filter((l) => l.level === 60);
  assert.equal(fatal.length, 1, `one fatal line, got:\n${all.map((l) => l.msg).join('\n')}`);
  assert.deepEqual(run.stderr.filter((l) => l.trim() !== ''), []);
  assert.ok(!run.stdout.some((l) => l.includes('"stack"') || /\n\s+at /.test(l)), 'no stack trace');
  const restarts = all.filter((l) => l.msg.startsWith('restarting ') || / restarts in \d+ ms$/.test(l.msg));
  assert.deepEqual(restarts.map((l) => l.msg), [], 'nothing restarted');
  return fatal[0]!;
}

/** What the journal gained in this run: at most the gate's halt on its way out, and only once. */
function assertOnlyTheOrderlyStop(before: number, entries: readonly JournalEntry[]): void {
  const added = entries.slice(before);
  assert.ok(added.length <= 1, `at most the gate's halt on the way out; journaled: ${JSON.stringify(added.map((e) => e.record))}`);
  for (const { record } of added) {
    assert.equal(record.type, 'gate');
    assert.deepEqual([record.to, record.by], ['HALTED', 'risk_gate']);
  }
}

describe('a port held by another process', () => {
  test('the TWS simulator: exit 2 naming the port and the setting; the journal gets nothing after the fault', { timeout: 30_000 }, async () => {
    const held = await holdPort();
    try {
      const journal = join(dir, 'sim-port.journal.keel');
      const config = writeInspectedConfig(dir, {
        instance: 'sim-port',
        port: await freePort(),
        tokenFile: join(dir, 'sim-port.token'),
        supervisor: SLOW_RESTARTS,
        more: `  simulator:\n    kind: simulator\n    dependsOn: [risk_gate]\n    settings: { port: ${held.port} }\n`,
      });
      writeFileSync(config, readFileSync(config, 'utf8').replace(join(dir, 'sim-port.journal.keel'), journal));
      await seedJournal(journal, 3);
      const keel = runKeel(['run', '--config', config]);
      assert.equal(await keel.exited, 2);
      const line = theOneLine(keel);
      assert.equal(
        line.msg,
        `simulator: port ${held.port} is in use on 127.0.0.1 by another process (another keel, or TWS itself?): set components.simulator.settings.port or stop it`,
      );
      // Stopped in reverse order, the journal last and closed.
      const stops = keel.messages().filter((m) => m.startsWith('stopping ')).map((m) => m.slice('stopping '.length));
      assert.deepEqual([...stops].sort(), ['inspector', 'journal', 'risk_gate']);
      assert.equal(stops.at(-1), 'journal');
      assert.ok(keel.messages().includes('journal closed'));
      assertOnlyTheOrderlyStop(3, await journalEntries(journal));
    } finally {
      held.server.close();
    }
  });

  test('the inspector: exit 2 naming its port and setting', { timeout: 30_000 }, async () => {
    const held = await holdPort();
    try {
      const config = writeInspectedConfig(dir, { instance: 'inspector-port', port: held.port, tokenFile: join(dir, 'inspector-port.token'), supervisor: SLOW_RESTARTS });
      const keel = runKeel(['run', '--config', config]);
      assert.equal(await keel.exited, 2);
      assert.equal(
        theOneLine(keel).msg,
        `inspector: the inspector port ${held.port} is in use on 127.0.0.1 by another process (another keel's inspector?): set components.inspector.settings.port (0 picks a free one) or stop it`,
      );
      assertOnlyTheOrderlyStop(0, await journalEntries(join(dir, 'inspector-port.journal.keel')));
    } finally {
      held.server.close();
    }
  });
});

describe('a journal that cannot be', () => {
  test('created: a directory under /proc fails at once (no spinning mkdir, no start timeout), exit 2', { timeout: 30_000 }, async () => {
    const config = writeInspectedConfig(dir, { instance: 'proc-journal', port: await freePort(), tokenFile: join(dir, 'proc-journal.token'), supervisor: SLOW_RESTARTS });
    writeFileSync(config, readFileSync(config, 'utf8').replace(join(dir, 'proc-journal.journal.keel'), '/proc/keel-no-such-dir/journal.keel'));
    const keel = runKeel(['run', '--config', config]);
    assert.equal(await keel.exited, 2);
    assert.equal(
      theOneLine(keel).msg,
      'journal: cannot create the journal directory /proc/keel-no-such-dir (ENOENT: no such file or directory): set components.journal.settings.path to a file in a directory keel can create and write',
    );
    assert.ok(!keel.messages().some((m) => m.includes('not ready within')));
  });

  test('created below a file: ENOTDIR, exit 2', { timeout: 30_000 }, async () => {
    const file = join(dir, 'a-file');
    writeFileSync(file, 'not a directory\n');
    const config = writeInspectedConfig(dir, { instance: 'notdir-journal', port: await freePort(), tokenFile: join(dir, 'notdir-journal.token'), supervisor: SLOW_RESTARTS });
    writeFileSync(config, readFileSync(config, 'utf8').replace(join(dir, 'notdir-journal.journal.keel'), join(file, 'sub', 'journal.keel')));
    const keel = runKeel(['run', '--config', config]);
    assert.equal(await keel.exited, 2);
    const msg = theOneLine(keel).msg;
    assert.match(msg, /^journal: cannot create the journal directory .*a-file\/sub \(ENOTDIR: not a directory\): set components\.journal\.settings\.path/);
  });

  test('trusted: a damaged record before a good one stops the start, exit 2, and the file is left exactly as it was', { timeout: 30_000 }, async () => {
    const journal = join(dir, 'damaged.journal.keel');
    await seedJournal(journal, 3);
    const bytes = readFileSync(journal);
    // The first frame's payload starts after the 12-byte file header and its 8-byte frame header.
    bytes[12 + 8 + 2] = bytes[12 + 8 + 2]! ^ 0xff;
    writeFileSync(journal, bytes);
    const config = writeInspectedConfig(dir, { instance: 'damaged', port: await freePort(), tokenFile: join(dir, 'damaged.token'), supervisor: SLOW_RESTARTS });
    const keel = runKeel(['run', '--config', config]);
    assert.equal(await keel.exited, 2);
    const msg = theOneLine(keel).msg;
    assert.ok(msg.startsWith(`journal: ${journal}: `), msg);
    assert.match(msg, /damaged frame at byte 12/);
    assert.deepEqual(readFileSync(journal), bytes, 'nothing journaled, nothing cut');
  });
});
