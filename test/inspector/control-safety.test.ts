/**
 * Control commands that must not hurt the daemon that serves them: a
 * swap-model path that is a FIFO or a secret file, and request bodies that
 * try to rewrite the audit log line.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { componentKinds, componentSpec } from '../../src/actors/registry.js';
import { DEFAULT_FEATURE_OPTIONS, featureSchema } from '../../src/market/features.js';
import { InferencePool } from '../../src/models/inference/pool.js';
import type { PredictorStatus } from '../../src/models/predictor.js';
import { ModelRegistry } from '../../src/models/registry.js';
import type { ChildSpec } from '../../src/supervision/spec.js';
import { control, startInspected } from '../support/inspector.js';
import { writeAffineModel } from '../support/models.js';

const dir = mkdtempSync(join(tmpdir(), 'keel-inspector-control-'));
let daemon: Awaited<ReturnType<typeof startInspected>>;
let pool: InferencePool;
const children: ChildProcess[] = [];

function component(id: keyof typeof componentKinds, settings: unknown, dependsOn: string[] = []): ChildSpec {
  return componentSpec(id, id, { settings: componentKinds[id].settings.parse(settings), dependsOn });
}

before(async () => {
  daemon = await startInspected([component('journal', { path: join(dir, 'journal.keel') }), component('risk_gate', { initialState: 'ACTIVE' }, ['journal'])]);
  pool = await InferencePool.start({ workers: 1, timeoutMs: 5_000 });
  const registry = new ModelRegistry(pool, featureSchema(DEFAULT_FEATURE_OPTIONS), pino({ level: 'silent' }), { latencyBudgetMs: 5_000, maxWindow: 8 });
  await registry.install('base/0', writeAffineModel(dir, { name: 'lin', version: '1', features: ['imbalance_l1', 'ofi', 'spread_bps'], weights: [1, 2, 3], bias: 0.25 }));
  const status = { registry, intervalMs: 1_000, frames: 0, skipped: 0, late: 0, faults: [], unavailable: [], lastAt: NaN } as unknown as PredictorStatus;
  daemon.services.provide('test', 'predictor', status);
});
after(async () => {
  for (const child of children) child.kill();
  await daemon.stop();
  await pool.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A FIFO nobody writes to; a child opens it for writing after `releaseMs`, so code that blocks on it is freed late, not never. */
function fifo(name: string, releaseMs = 8_000): string {
  const path = join(dir, name);
  execFileSync('mkfifo', [path]);
  const writer = spawn(process.execPath, ['-e', `setTimeout(() => require('node:fs').writeFileSync(${JSON.stringify(path)}, 'x'), ${releaseMs})`], { stdio: 'ignore' });
  children.push(writer);
  return path;
}

/** `work` settled before the deadline, or a failure saying it did not. */
async function within<T>(ms: number, what: string, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)));
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

test('swap-model with a FIFO as path is a prompt 400 naming it, and /health answers meanwhile', { skip: process.platform !== 'linux' && 'mkfifo is Linux here' }, async () => {
  const path = fifo('pipe.json');
  const swap = control(daemon.url, 'swap-model', { path }, daemon.token);
  const health = fetch(`${daemon.url}/health`).then(async (res) => ({ status: res.status, body: (await res.json()) as Record<string, unknown> }));
  const [refused, answered] = await within(5_000, 'swap-model and /health', Promise.all([swap, health]));
  assert.equal(refused.status, 400, JSON.stringify(refused.body));
  assert.match(String(refused.body.error), /is a FIFO \(named pipe\), not a regular file/);
  assert.ok(String(refused.body.error).includes(path), 'the error names the path');
  assert.equal(answered.body.phase, 'running');
  assert.equal(daemon.services.current('predictor')!.registry.live('base/0').id, 'lin@1', 'the live model keeps serving');
});

test('swap-model whose manifest names a FIFO as its model file is refused promptly, naming it', { skip: process.platform !== 'linux' && 'mkfifo is Linux here' }, async () => {
  const manifest = writeAffineModel(dir, { name: 'piped', version: '1', features: ['imbalance_l1'], weights: [1], bias: 0 });
  rmSync(join(dir, 'piped-1', 'model.onnx'));
  fifo(join('piped-1', 'model.onnx'));
  const refused = await within(5_000, 'swap-model', control(daemon.url, 'swap-model', { path: manifest }, daemon.token));
  assert.equal(refused.status, 409, JSON.stringify(refused.body));
  assert.match(String(refused.body.error), /model file .*piped-1\/model\.onnx is a FIFO \(named pipe\), not a regular file/);
  const health = await within(5_000, '/health', fetch(`${daemon.url}/health`));
  assert.equal(((await health.json()) as { phase: string }).phase, 'running');
});

test('swap-model refuses a directory and a missing path as 400s naming them', async () => {
  const folder = join(dir, 'a-folder');
  mkdirSync(folder);
  const isDir = await control(daemon.url, 'swap-model', { path: folder }, daemon.token);
  assert.equal(isDir.status, 400);
  assert.equal(isDir.body.error, `swap-model: manifest ${folder} is a directory, not a regular file`);
  const missing = await control(daemon.url, 'swap-model', { path: join(dir, 'nothing.json') }, daemon.token);
  assert.equal(missing.status, 400);
  assert.match(String(missing.body.error), /nothing\.json cannot be read: ENOENT/);
});

test('a swap-model path that is not JSON is refused without quoting a byte of it', async () => {
  const secret = 'root:*:20200:0:99999:7:::\nkeel:$6$s3cr3tSALT$hashhashhash:20200:0:99999:7:::\n';
  const path = join(dir, 'shadow');
  writeFileSync(path, secret, { mode: 0o600 });
  const refused = await control(daemon.url, 'swap-model', { path }, daemon.token);
  assert.equal(refused.status, 409, JSON.stringify(refused.body));
  const error = String(refused.body.error);
  assert.ok(error.includes(`manifest ${path} is not JSON`), error);
  for (const piece of ['root', ':*:', '20200', 's3cr3t', 'hash']) assert.ok(!error.includes(piece), `the error quotes ${piece}: ${error}`);
  for (const line of daemon.sink.lines) assert.ok(!JSON.stringify(line).includes('s3cr3t'), `a log line quotes the file: ${JSON.stringify(line)}`);

  // JSON that is no manifest: the error names what is wrong, not the values.
  writeFileSync(path, JSON.stringify({ format: 'keel.model-manifest', kind: 'hunter2-secret', password: 'hunter2-secret' }));
  const bad = await control(daemon.url, 'swap-model', { path }, daemon.token);
  assert.equal(bad.status, 409);
  assert.match(String(bad.body.error), /bad manifest: /);
  assert.ok(!String(bad.body.error).includes('hunter2'), String(bad.body.error));
});

test('the audit line names the command routed and only known fields: a body cannot rewrite it', async () => {
  const before = daemon.sink.lines.length;
  const body = { command: 'resume', msg: 'FAKE', level: 10, time: 0, reason: 'audit check', path: { not: 'a string' }, actor: 'x'.repeat(300) };
  const halted = await control(daemon.url, 'halt', body, daemon.token);
  assert.equal(halted.status, 200);
  assert.equal(halted.body.command, 'halt');
  const lines = daemon.sink.lines.slice(before).filter((l) => String(l.msg).startsWith('inspector control') || l.msg === 'FAKE' || l.command !== undefined);
  assert.equal(lines.length, 1, JSON.stringify(lines));
  const line = lines[0]!;
  assert.equal(line.msg, 'inspector control: halt done');
  assert.equal(line.command, 'halt');
  assert.equal(line.level, 30);
  assert.notEqual(line.time, 0);
  assert.equal(line.reason, 'audit check');
  assert.equal(line.path, undefined, 'non-string fields are not logged');
  assert.equal(String(line.actor).length, 203, 'long strings are cut');
  assert.deepEqual(Object.keys(line).filter((k) => !['level', 'time', 'pid', 'hostname', 'component', 'name', 'msg'].includes(k) && !Object.hasOwn(body, k)), [], 'no field beyond the known ones');
  assert.equal((await control(daemon.url, 'resume', {}, daemon.token)).status, 200);
});
