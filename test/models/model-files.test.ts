/**
 * Reading a manifest and its model file: regular files only, a size cap,
 * and errors that name the file and what was wrong without quoting it,
 * both off the event loop (swaps at run time) and at start.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadModelSource, ModelRefused, readModelSource, readRegularFile } from '../../src/models/manifest.js';
import { writeAffineModel } from '../support/models.js';

const dir = mkdtempSync(join(tmpdir(), 'keel-model-files-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const SECRET = 'root:*:20200:0:99999:7:::\nkeel:$6$s3cr3tSALT$hash:20200:0:99999:7:::\n';

/** The refusal's message, from either reader. */
async function refusal(read: () => unknown): Promise<string> {
  try {
    await read();
  } catch (err) {
    assert.ok(err instanceof ModelRefused, String(err));
    return err.message;
  }
  assert.fail('not refused');
}

test('a manifest that is not JSON is refused naming it, with none of its bytes, at run time and at start', async () => {
  const path = join(dir, 'shadow');
  writeFileSync(path, SECRET);
  for (const read of [() => loadModelSource(path), () => readModelSource(path)]) {
    const message = await refusal(read);
    assert.equal(message, `model ${path} refused: manifest ${path} is not JSON`);
  }
});

test('a model file that is a directory, or a FIFO, is refused unread', { skip: process.platform !== 'linux' && 'mkfifo is Linux here' }, async () => {
  const manifest = writeAffineModel(dir, { name: 'odd', version: '1', features: ['ofi'], weights: [1], bias: 0 });
  const file = join(dir, 'odd-1', 'model.onnx');
  rmSync(file);
  execFileSync('mkfifo', [file]);
  // Nobody writes to the FIFO: a reader that opened it blocking would never return.
  for (const read of [() => loadModelSource(manifest), () => readModelSource(manifest)]) {
    assert.equal(await refusal(read), `model ${manifest} refused: model file ${file} is a FIFO (named pipe), not a regular file`);
  }
  assert.equal(await refusal(() => loadModelSource(dir)), `model ${dir} refused: manifest ${dir} is a directory, not a regular file`);
});

test('a file over the size limit is refused with the limit stated', async () => {
  const path = join(dir, 'big');
  writeFileSync(path, Buffer.alloc(2048, 0x20));
  await assert.rejects(readRegularFile(path, 'manifest', 1024), { message: `manifest ${path} is 2048 bytes, over the limit of 1024` });
  assert.equal((await readRegularFile(path, 'manifest', 4096)).length, 2048);
});

test('a good model reads the same off the event loop as at start', async () => {
  const manifest = writeAffineModel(dir, { name: 'good', version: '1', features: ['ofi', 'spread_bps'], weights: [1, 2], bias: 0 });
  const a = await loadModelSource(manifest);
  const b = readModelSource(manifest);
  assert.deepEqual(a.manifest, b.manifest);
  assert.deepEqual(Buffer.from(a.bytes), Buffer.from(b.bytes));
});
