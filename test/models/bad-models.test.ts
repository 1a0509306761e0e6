/**
 * Bad model files on a real `keel run` (simulator, IB link, books, features,
 * regime, predictor): one bad model among several is left out and its tier
 * serves degraded, said in the log with the file and the reason and in
 * /health; when no model can serve at all the daemon stops at once, exit 2,
 * with one line, and without a restart.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, test } from 'node:test';
import { parse, stringify } from 'yaml';
import { FileJournal } from '../../src/journal/file-journal.js';
import { runKeel, type Running } from '../support/process.js';

const dir = mkdtempSync(join(tmpdir(), 'keel-bad-models-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as { port: number };
  await new Promise<void>((done) => server.close(() => done()));
  return port;
}

/** The shipped manifest of `model`, copied with a sha256 its file does not have: a file that is not what its manifest says. */
function mismatched(model: string): string {
  const manifest = JSON.parse(readFileSync(`models/${model}/manifest.json`, 'utf8')) as { file: string; sha256: string };
  const folder = join(dir, `bad-${model}`);
  mkdirSync(folder, { recursive: true });
  const path = join(folder, 'manifest.json');
  writeFileSync(path, JSON.stringify({ ...manifest, file: resolve('models', model, manifest.file), sha256: '0'.repeat(64) }));
  return path;
}

/** The default tree on free ports and temp files, without the trader, with these model lists. */
async function writeConfig(name: string, models: { base: string[]; highVol?: string[] }): Promise<{ config: string; journal: string; inspector: number }> {
  const config = parse(readFileSync('config/default.yaml', 'utf8')) as { instance: string; supervisor: Record<string, unknown>; components: Record<string, { settings?: Record<string, unknown> }> };
  const [sim, inspector] = [await freePort(), await freePort()];
  const journal = join(dir, `${name}.journal.keel`);
  const c = config.components;
  config.instance = name;
  // Slow restarts: six of them would take a minute, past the test's deadline.
  config.supervisor = { ...config.supervisor, intensity: { maxRestarts: 5, periodMs: 120_000 }, defaults: { backoff: { minMs: 2_000, maxMs: 20_000, randomFactor: 0, resetAfterMs: 60_000 } } };
  c.journal!.settings = { ...c.journal!.settings, path: journal };
  c.simulator!.settings = { port: sim, seed: 1, updatesPerSecond: 50 };
  c.ib_connection!.settings = { ...c.ib_connection!.settings, port: sim, orderIdFile: join(dir, `${name}.order-ids.json`) };
  c.inspector!.settings = { host: '127.0.0.1', port: inspector, tokenFile: join(dir, `${name}.token`) };
  const tiers = (c.predictor!.settings!.horizons as Record<string, Record<string, unknown>>)['10s']!;
  tiers.base = models.base;
  if (models.highVol) tiers.highVol = { ...(tiers.highVol as object), models: models.highVol };
  else delete tiers.highVol;
  delete c.paper_trader;
  const path = join(dir, `${name}.yaml`);
  writeFileSync(path, stringify(config));
  return { config: path, journal, inspector };
}

const messages = (run: Running) => run.messages();

test('a bad model among two: the predictor starts without it, its tier DEGRADED in the log and in /health; nothing restarts', { timeout: 60_000 }, async () => {
  const bad = mismatched('lstm-base-10s');
  const { config, inspector } = await writeConfig('one-bad', { base: ['models/gbdt-base-10s/manifest.json', bad] });
  const keel = runKeel(['run', '--config', config]);
  try {
    await keel.waitFor('keel running: all components ready');
    const refused = messages(keel).find((m) => m.startsWith(`model ${bad} refused: checksum mismatch`));
    assert.ok(refused, messages(keel).join('\n'));
    assert.match(refused, /model\.onnx has sha256 [0-9a-f]{64}, the manifest says 0{64}; tier 10s\/base DEGRADED: 1 of 2 models serve the 4 instruments \(SPY, QQQ, AAPL, MSFT\)$/);
    const serving = messages(keel).find((m) => m.startsWith('predictor serving'));
    assert.equal(serving, 'predictor serving DEGRADED: 10s/base/0=gbdt-base-10s@seed-20261121; not serving: 10s/base/1');
    // Nothing claims a model keeps serving a slot that has none.
    assert.ok(!messages(keel).some((m) => m.includes('keeps serving')));
    const health = (await (await fetch(`http://127.0.0.1:${inspector}/health`)).json()) as { components: { predictor: { status: string; detail: string } } };
    assert.equal(health.components.predictor.status, 'DEGRADED');
    assert.ok(health.components.predictor.detail.includes(`10s/base/1 not serving: ${bad}: checksum mismatch`), health.components.predictor.detail);
    assert.ok(!messages(keel).some((m) => m.startsWith('restarting ')));
  } finally {
    keel.child.kill('SIGTERM');
  }
  assert.equal(await keel.exited, 0);
});

test('every model bad: exit 2 at once with one line, no restart, and nothing journaled after the fault', { timeout: 60_000 }, async () => {
  const [base, highVol] = [mismatched('gbdt-base-10s'), mismatched('gbdt-highvol-10s')];
  const { config, journal } = await writeConfig('all-bad', { base: [base], highVol: [highVol] });
  const keel = runKeel(['run', '--config', config]);
  assert.equal(await keel.exited, 2);
  const lines = keel.stdout.flatMap((l) => (l.startsWith('{') ? [JSON.parse(l) as { level: number; msg: string; records?: number }] : []));
  const fatal = lines.filter((l) => l.level === 60);
  assert.equal(fatal.length, 1, lines.map((l) => l.msg).join('\n'));
  assert.match(
    fatal[0]!.msg,
    new RegExp(
      `^predictor: no model can serve: all 2 models were refused \\(${base}: checksum mismatch: .*; ${highVol}: checksum mismatch: .*\\): ` +
        'fix or rebuild the model files \\(npm run models for the demo models\\) or point components\\.predictor\\.settings\\.horizons at good manifests$',
    ),
  );
  assert.deepEqual(keel.stderr.filter((l) => l.trim() !== ''), []);
  assert.ok(!keel.stdout.some((l) => l.includes('"stack"')), 'no stack trace');
  assert.ok(!lines.some((l) => l.msg.startsWith('restarting ') || l.msg.startsWith('predictor serving')));
  assert.ok(!lines.some((l) => l.msg.includes('keeps serving')));
  // The journal holds exactly what its one life wrote, and the risk gate never came back to write more.
  const closed = lines.find((l) => l.msg === 'journal closed');
  assert.ok(closed, 'the journal was closed on the way out');
  const { journal: file, entries } = await FileJournal.open(journal);
  await file.close();
  assert.equal(entries.length, closed.records);
  for (const { record } of entries) assert.equal(record.type, 'gate');
  assert.equal(entries.filter((e) => e.record.type === 'gate' && e.record.reason === 'the risk gate stopped').length, 1);
});
