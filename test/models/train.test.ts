/**
 * `keel models train` on the user's own data: a keel recording trains the
 * whole recipe through the live feature code, the same file and seed give
 * the same files byte for byte, and the manifests name the file, its time
 * range and each model's horizon. Several files merge by time; a LOBSTER
 * sample too short for the features says so; bad flags are named.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { modelsCommands } from '../../src/cli/models.js';
import { mergeDatasets, withHorizon } from '../../src/models/dataset.js';
import { manifestSchema } from '../../src/models/manifest.js';
import { recordingDataset } from '../../src/models/training-data.js';
import { openRecording } from '../../src/replay/recording.js';
import { recordSimulatedMarket } from '../support/recordings.js';

const dir = mkdtempSync(join(tmpdir(), 'keel-train-'));
const WALL_AT = Date.UTC(2026, 0, 5, 14, 30);
const recording = join(dir, 'session.keelrec');
const later = join(dir, 'later.keelrec');
const train = modelsCommands['models train']!;

/** Runs the command in process; its stderr lines are kept. */
async function run(args: Record<string, string | boolean | string[]>, positionals: string[] = []): Promise<{ code: number; stderr: string }> {
  const lines: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string) => (lines.push(String(chunk)), true)) as typeof process.stderr.write;
  try {
    const code = await train.run(args, positionals);
    return { code, stderr: lines.join('') };
  } finally {
    process.stderr.write = write;
  }
}

const files = (d: string) => readdirSync(d, { recursive: true, encoding: 'utf8' }).filter((f) => f.includes('.')).sort();

before(async () => {
  await recordSimulatedMarket(recording, { seed: 5, instruments: 2, seconds: 15 * 60, updatesPerSecond: 50, wallAt: WALL_AT });
  await recordSimulatedMarket(later, { seed: 6, instruments: 2, seconds: 5 * 60, updatesPerSecond: 50, wallAt: WALL_AT + 3_600_000 });
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('a recording trains every model of the recipe, byte for byte the same from the same file and seed', async () => {
  const args = { from: [recording], horizons: '10s,1m', seed: '3' };
  const first = await run({ ...args, out: join(dir, 'a') });
  assert.equal(first.code, 0, first.stderr);
  const second = await run({ ...args, out: join(dir, 'b') });
  assert.equal(second.code, 0, second.stderr);
  const names = files(join(dir, 'a'));
  assert.deepEqual(names, files(join(dir, 'b')));
  for (const f of names) assert.ok(readFileSync(join(dir, 'a', f)).equals(readFileSync(join(dir, 'b', f))), `${f} differs between two runs`);
  assert.deepEqual(names.filter((f) => f.endsWith('manifest.json')).map((f) => f.split('/')[0]), ['gbdt-base-10s', 'gbdt-base-1m', 'gbdt-highvol-10s', 'gbdt-highvol-1m', 'lstm-base-10s', 'lstm-base-1m', 'regime-sjm']);

  const manifest = manifestSchema.parse(JSON.parse(readFileSync(join(dir, 'a', 'gbdt-base-1m', 'manifest.json'), 'utf8')));
  assert.equal(manifest.horizonMs, 60_000);
  assert.equal(manifest.version, 'to-20260105T144500Z');
  assert.equal(manifest.training.sources?.length, 1);
  const source = manifest.training.sources![0]!;
  assert.equal(source.file, 'session.keelrec');
  assert.equal(source.from, '2026-01-05T14:30:00.000Z');
  assert.equal(source.to, '2026-01-05T14:45:00.000Z');
  assert.match(manifest.training.data, /session\.keelrec, 2026-01-05T14:30:00\.000Z to 2026-01-05T14:45:00\.000Z, 2 instruments \(SPY, QQQ\)/);
  assert.ok(manifest.metrics.heldOutRows > 0 && Number.isFinite(manifest.metrics.model.rmse));
  // Fifteen minutes of two instruments is too little to trust: it says so, in the output and the README.
  assert.match(first.stderr, /warning: gbdt-base-10s: only \d+ training rows/);
  assert.match(readFileSync(join(dir, 'a', 'README.md'), 'utf8'), /Warnings:\n(- .*\n)*- regime-sjm: the data has no true regime/);

  const other = await run({ ...args, seed: '4', out: join(dir, 'c') });
  assert.equal(other.code, 0, other.stderr);
  assert.ok(!readFileSync(join(dir, 'a', 'lstm-base-10s', 'model.onnx')).equals(readFileSync(join(dir, 'c', 'lstm-base-10s', 'model.onnx'))), 'another seed trains another LSTM');
});

test('two recordings merge by time: the later one is the held-out tail, both are named', async () => {
  const parts = await Promise.all([recording, later].map(async (f) => recordingDataset(await openRecording(f), f, { sampleMs: 1000, horizonMs: 10_000 })));
  const merged = mergeDatasets(parts);
  assert.equal(merged.rows, parts[0]!.rows + parts[1]!.rows);
  assert.ok(merged.time.every((t, i) => i === 0 || t >= merged.time[i - 1]!), 'rows in time order');
  assert.deepEqual(merged.sources.map((s) => s.file), ['session.keelrec', 'later.keelrec']);
  assert.equal(merged.regime, undefined, 'recordings hold no true regime');
  // A forward return never looks from one recording into the other: an hour apart, there is no row 10 s later across the gap.
  const again = withHorizon(merged, 10_000);
  assert.deepEqual([...again.forwardReturn], [...merged.forwardReturn]);
  assert.throws(() => mergeDatasets([parts[0]!, parts[0]!]), /two files hold SPY at 2026-01-05T14:31:01\.000Z/);

  const out = await run({ from: [recording], horizons: '10s', out: join(dir, 'merged') }, [later]);
  assert.equal(out.code, 0, out.stderr);
  const manifest = manifestSchema.parse(JSON.parse(readFileSync(join(dir, 'merged', 'gbdt-base-10s', 'manifest.json'), 'utf8')));
  assert.deepEqual(manifest.training.sources?.map((s) => s.file), ['session.keelrec', 'later.keelrec']);
  assert.equal(manifest.version, 'to-20260105T153500Z');
});

test('the LOBSTER sample reads through the features and says it is too short to train', async () => {
  const out = await run({ from: ['test/fixtures/lobster/AAPL_2012-06-21_message_10.csv'], out: join(dir, 'lobster') });
  assert.equal(out.code, 1, out.stderr);
  assert.match(out.stderr, /reading test\/fixtures\/lobster\/AAPL_2012-06-21_message_10\.csv \(LOBSTER AAPL_2012-06-21_message_10\.csv, 1 instruments\)/);
  assert.match(out.stderr, /0 rows from 0\.8 min of market \(2012-06-21T13:30:00\.004Z to 2012-06-21T13:30:49\.086Z\)/);
  assert.match(out.stderr, /nothing to train on: .*features need 60 s of history/);
});

test('mistakes in the flags are named, and nothing is trained', async () => {
  const cases: [Record<string, string | boolean | string[]>, RegExp][] = [
    [{ out: join(dir, 'x') }, /what data\? --from FILE\.\.\. or --simulator/],
    [{ from: [recording] }, /where to\? --out DIR/],
    [{ from: [recording], simulator: true, out: join(dir, 'x') }, /pick one/],
    [{ from: [recording], out: join(dir, 'x'), horizons: '10s,5x' }, /--horizons: '5x' is not a horizon like 10s, 5m or 1h/],
    [{ from: [recording], out: join(dir, 'x'), horizons: '10s,10s' }, /names a horizon twice/],
    [{ from: [recording], out: join(dir, 'x'), 'held-out': '1.5' }, /--held-out must be a share between 0 and 1/],
    [{ from: [recording], out: join(dir, 'x'), hours: '2' }, /--hours is for --simulator/],
    [{ from: [join(dir, 'missing.keelrec')], out: join(dir, 'x') }, /cannot open .*missing\.keelrec/],
  ];
  for (const [args, message] of cases) {
    const out = await run(args);
    assert.equal(out.code, 2, `${JSON.stringify(args)}: ${out.stderr}`);
    assert.match(out.stderr, message);
  }
  assert.throws(() => readdirSync(join(dir, 'x')), /ENOENT/, 'no output directory for a refused run');
});
