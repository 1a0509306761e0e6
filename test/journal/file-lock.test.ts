/**
 * The file lock with real processes: a live holder in another process is
 * refused with its pid, start time and inspector URL; a holder killed with
 * -9, or a pid now used by another process, never blocks; within one
 * process the same owner takes over and another owner is refused; the
 * order-id mark is locked the same way.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { OrderIdLedger } from '../../src/ib/order-ids.js';
import { acquireFileLock, FileLocked, liveHolder, noteInspector, processStart } from '../../src/journal/file-lock.js';
import { runScript, type Running } from '../support/process.js';

const dir = mkdtempSync(join(tmpdir(), 'keel-lock-'));
const holders: Running[] = [];
after(() => {
  for (const h of holders) h.child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

let files = 0;
const newFile = () => join(dir, `f${++files}.keel`);

async function holdInAnotherProcess(file: string, url?: string): Promise<Running> {
  const holder = runScript('test/fixtures/hold-lock.ts', [file, 'other/journal', ...(url ? [url] : [])]);
  holders.push(holder);
  await holder.waitFor('locked');
  return holder;
}

test('a lock held by a live process is refused, naming the file, its pid, start time and inspector URL', async () => {
  const file = newFile();
  const holder = await holdInAnotherProcess(file, 'http://127.0.0.1:7599');
  const pid = holder.child.pid!;
  assert.throws(
    () => acquireFileLock(file, 'test/journal'),
    (error: unknown) => {
      assert.ok(error instanceof FileLocked);
      assert.equal(error.holder.pid, pid);
      assert.match(error.message, new RegExp(`^${file} is in use by another keel \\(pid ${pid}, started \\d{4}-\\d\\d-\\d\\dT[^,]+, inspector http://127.0.0.1:7599; lock ${file}.lock\\)$`));
      return true;
    },
  );
  assert.equal(liveHolder(file)?.pid, pid);
  // Refused, the holder's lock is as it was.
  assert.equal(JSON.parse(readFileSync(`${file}.lock`, 'utf8')).pid, pid);
});

test('a lock left by kill -9 never blocks: the next one breaks it and says whose it was', async () => {
  const file = newFile();
  const holder = await holdInAnotherProcess(file);
  const pid = holder.child.pid!;
  holder.child.kill('SIGKILL');
  await holder.exited;
  assert.ok(existsSync(`${file}.lock`), 'kill -9 leaves the lock file behind');
  assert.equal(liveHolder(file), undefined);
  const { lock, broke } = acquireFileLock(file, 'test/journal');
  assert.equal(broke?.pid, pid);
  assert.equal(JSON.parse(readFileSync(`${file}.lock`, 'utf8')).pid, process.pid);
  lock.release();
  assert.ok(!existsSync(`${file}.lock`), 'release removes the lock file');
});

test('a lock naming a live pid that started at another time (a reused pid) is broken', async () => {
  const file = newFile();
  const other = await holdInAnotherProcess(newFile());
  const pid = other.child.pid!;
  // The pid runs, but it is not the process that wrote this lock.
  writeFileSync(`${file}.lock`, JSON.stringify({ pid, host: hostname(), startedAt: '2020-01-01T00:00:00.000Z', processStart: '1', owner: 'old/journal' }));
  const { lock, broke } = acquireFileLock(file, 'test/journal');
  assert.equal(broke?.pid, pid);
  lock.release();
});

test('in one process: the same owner takes the lock over, another owner is refused; the inspector URL is noted in held locks', () => {
  const file = newFile();
  const first = acquireFileLock(file, 'a/journal').lock;
  // The owner's next incarnation, after one that died without releasing.
  const second = acquireFileLock(file, 'a/journal').lock;
  assert.ok(!first.held && second.held);
  first.release();
  assert.ok(existsSync(`${file}.lock`), 'a superseded handle releases nothing');
  assert.throws(() => acquireFileLock(file, 'b/journal'), /is already open in this process by a\/journal: one writer per file/);
  noteInspector('http://127.0.0.1:7598');
  assert.equal(JSON.parse(readFileSync(`${file}.lock`, 'utf8')).inspector, 'http://127.0.0.1:7598');
  noteInspector(undefined);
  assert.equal(JSON.parse(readFileSync(`${file}.lock`, 'utf8')).inspector, undefined);
  second.release();
  assert.ok(!existsSync(`${file}.lock`));
});

test('the order-id mark is locked from construction until close', async () => {
  const file = join(dir, 'order-ids.json');
  const ids = new OrderIdLedger(file, { owner: 'a/ib_connection' });
  ids.start(10);
  assert.equal(ids.take(), 10);
  assert.throws(() => new OrderIdLedger(file, { owner: 'b/ib_connection' }), FileLocked);
  ids.close();
  const again = new OrderIdLedger(file, { owner: 'b/ib_connection' });
  again.start(1);
  // Never below what the first one reserved.
  assert.ok(again.take() >= 110);
  again.close();

  const holder = await holdInAnotherProcess(file);
  assert.throws(() => new OrderIdLedger(file, { owner: 'a/ib_connection' }), new RegExp(`order-ids.json is in use by another keel \\(pid ${holder.child.pid}`));
});

test('the start mark of a pid, from /proc and from ps (the macOS way): the same for a live process, stable, none once it is gone', async () => {
  const holder = await holdInAnotherProcess(newFile());
  const pid = holder.child.pid!;
  const sources = process.platform === 'linux' ? (['proc', 'ps'] as const) : (['ps'] as const);
  for (const source of sources) {
    const first = processStart(pid, source);
    assert.ok(first && first.start !== '' && !first.zombie, `${source}: ${JSON.stringify(first)}`);
    assert.deepEqual(processStart(pid, source), first);
    assert.notEqual(processStart(process.pid, source)?.start, undefined);
  }
  holder.child.kill('SIGKILL');
  await holder.exited;
  for (const source of sources) assert.equal(processStart(pid, source), undefined, source);
});
