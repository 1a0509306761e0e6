/**
 * A jump model file that is not JSON, as the regime actor and `keel sjm
 * predict` read it: refused naming the file, without quoting a byte of it
 * (a config or a manifest may point at any file, a secret one too).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { readRegimeModel } from '../../src/actors/regime.js';
import { ModelRefused, sha256 } from '../../src/models/manifest.js';
import { readJumpModel } from '../../src/models/sjm.js';
import { writeJumpModel } from '../support/models.js';

const dir = mkdtempSync(join(tmpdir(), 'keel-regime-file-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const SECRET = 'root:*:20200:0:99999:7:::\nkeel:$6$s3cr3tSALT$hashhashhash:20200:0:99999:7:::\n';
const PIECES = ['root', ':*:', '20200', 's3cr3t', 'hash'];

test('the regime model: a model file that is not JSON is refused naming the file, quoting none of it', () => {
  const manifestPath = writeJumpModel(dir, ['spread_bps', 'trade_intensity']);
  const good = readRegimeModel(manifestPath);
  assert.deepEqual(good.model.features, ['spread_bps', 'trade_intensity']);
  // The manifest's checksum matches, so the bytes reach the parser.
  const file = join(dirname(manifestPath), 'model.json');
  writeFileSync(file, SECRET);
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { sha256: string };
  writeFileSync(manifestPath, JSON.stringify({ ...manifest, sha256: sha256(Buffer.from(SECRET)) }));
  assert.throws(
    () => readRegimeModel(manifestPath),
    (err: Error) => {
      assert.ok(err instanceof ModelRefused, err.message);
      assert.equal(err.message, `model ${manifestPath} refused: model file ${file} is not JSON`);
      return true;
    },
  );
});

test('keel sjm predict: a --model file that is not JSON is refused naming it, quoting none of it', () => {
  const file = join(dir, 'shadow.json');
  writeFileSync(file, SECRET);
  assert.throws(
    () => readJumpModel(file),
    (err: Error) => {
      assert.equal(err.message, `${file}: not valid JSON`);
      for (const piece of PIECES) assert.ok(!err.message.includes(piece), `the error quotes ${piece}: ${err.message}`);
      return true;
    },
  );
});
