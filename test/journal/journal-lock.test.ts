/**
 * One writer per journal, with real daemons: a second `keel run` on the
 * journal (or the order-id file) of a running one refuses to start, exit 2,
 * with one line naming the file and the holder; the first runs on with its
 * journal intact; after kill -9 of the first, a new daemon starts on it.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { FileJournal } from '../../src/journal/file-journal.js';
import type { LedgerRecord } from '../../src/journal/records.js';
import { writeInspectedConfig } from '../support/inspector.js';
import { runKeel, type Running } from '../support/process.js';

const dir = mkdtempSync(join(tmpdir(), 'keel-journal-lock-'));
const daemons: Running[] = [];
after(() => {
  for (const d of daemons) d.child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

function keel(config: string): Running {
  const daemon = runKeel(['run', '--config', config]);
  daemons.push(daemon);
  return daemon;
}

/** Every line the process printed, log messages and stderr alike. */
function lines(daemon: Running): string[] {
  return [...daemon.messages(), ...daemon.stderr];
}

const at = 1_700_000_000_000;
const RECORDS: LedgerRecord[] = [
  { type: 'order', at, ref: 'k-1', symbol: 'SPY', quantity: 100, orderType: 'LMT', limitPrice: 501.25, reason: 'test' },
  { type: 'fill', at, ref: 'k-1', execId: 'e-1', symbol: 'SPY', quantity: 100, price: 501.2, commission: 1 },
  { type: 'order', at, ref: 'k-2', symbol: 'QQQ', quantity: -50, orderType: 'MKT', limitPrice: NaN, reason: 'test' },
];

test('a second daemon on the same journal exits 2 at once naming the holder; the first runs on, its journal intact; after kill -9 a new one starts', { timeout: 60_000 }, async () => {
  const config = writeInspectedConfig(dir, { instance: 'locked', port: 0, tokenFile: join(dir, 'token') });
  const journalPath = join(dir, 'locked.journal.keel');
  const { journal } = await FileJournal.open(journalPath);
  for (const record of RECORDS) await journal.append(record);
  await journal.close();

  const first = keel(config);
  await first.waitFor('keel running: all components ready');
  const url = /inspector listening on (http:\/\/[\d.:]+)/.exec(await first.waitFor('inspector listening on'))![1]!;

  const second = keel(config);
  // A deadline, not a measurement: a retried start would outlast it.
  const deadline = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the second daemon was not refused within 10 s')), 10_000).unref());
  assert.equal(await Promise.race([second.exited, deadline]), 2);
  const refusal = lines(second).filter((l) => l.includes(`pid ${first.child.pid}`));
  assert.ok(refusal.length > 0, lines(second).join('\n'));
  const line = refusal.at(-1)!;
  assert.ok(!line.includes('\n'), 'one line');
  for (const part of [journalPath, `pid ${first.child.pid}, started `, `inspector ${url}`, 'components.journal.settings.path']) assert.ok(line.includes(part), `'${part}' in: ${line}`);
  assert.ok(!second.messages().some((m) => m.startsWith('journal replayed')), 'the second never opened the journal');

  // The first runs on, answering; its journal holds what it held.
  assert.equal(first.child.exitCode, null);
  assert.equal(((await (await fetch(`${url}/api/actors`)).json()) as { phase: string }).phase, 'running');
  first.child.kill('SIGKILL');
  await first.exited;
  const reopened = await FileJournal.open(journalPath);
  await reopened.journal.close();
  assert.deepEqual(
    reopened.entries.slice(0, RECORDS.length).map((e) => e.record),
    RECORDS,
  );
  assert.deepEqual(
    reopened.entries.map((e) => e.seq),
    reopened.entries.map((_, i) => i + 1),
  );

  // kill -9 left the lock file; it does not block.
  assert.ok(existsSync(`${journalPath}.lock`));
  const third = keel(config);
  await third.waitFor('keel running: all components ready');
  assert.ok(third.messages().some((m) => m.includes(`took over the lock of pid ${first.child.pid}`)));
  assert.ok(third.messages().some((m) => m.startsWith(`journal replayed: ${reopened.entries.length} records`)));
  third.child.kill('SIGTERM');
  assert.equal(await third.exited, 0);
  assert.ok(!existsSync(`${journalPath}.lock`), 'a clean stop removes the lock');
});

test('a second daemon on the same order-id file exits 2 naming the file and the holder', { timeout: 60_000 }, async () => {
  // A port nobody listens on: the connection keeps trying, and the order-id file is locked from the start.
  const port = await closedPort();
  const orderIds = join(dir, 'order-ids.json');
  const more = `  ib_connection:
    kind: ib_connection
    dependsOn: [journal]
    settings: { port: ${port}, orderIdFile: ${orderIds} }
`;
  const first = keel(writeInspectedConfig(dir, { instance: 'ids-a', port: 0, tokenFile: join(dir, 'token-a'), more }));
  await first.waitFor('connecting to TWS');
  const second = keel(writeInspectedConfig(dir, { instance: 'ids-b', port: 0, tokenFile: join(dir, 'token-b'), more }));
  assert.equal(await second.exited, 2);
  const line = lines(second).findLast((l) => l.includes(`${orderIds} is in use by another keel (pid ${first.child.pid}, started `));
  assert.ok(line, lines(second).join('\n'));
  assert.ok(line.includes('components.ib_connection.settings.orderIdFile'), line);
  first.child.kill('SIGTERM');
  assert.equal(await first.exited, 0);
  assert.ok(!existsSync(`${orderIds}.lock`), 'a clean stop removes the lock');
});

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
