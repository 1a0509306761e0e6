/**
 * The manifest beside every model file: what the model reads (feature names
 * in input order, from which live feature schema), what it writes, the
 * checksum of its file, how it was trained and how it did on held-out data.
 * keel refuses a model whose manifest does not match the live features.
 */
import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readFileSync, type Stats } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import type { FeatureSchema } from '../market/features.js';

export const MANIFEST_FORMAT = 'keel.model-manifest';

const finite = z.number().finite();

/** Quantile bins of one variable (drift.ts): edges ascending, a share of rows per bin, one more share than edges. */
const binsSchema = z
  .object({ edges: z.array(finite), shares: z.array(finite.min(0).max(1)).min(1) })
  .strict()
  .refine((b) => b.shares.length === b.edges.length + 1 && b.edges.every((e, i) => i === 0 || e > b.edges[i - 1]!), 'edges must ascend, with one share more than edges');

const referenceSchema = z.object({ inputs: z.array(binsSchema), prediction: binsSchema.optional() }).strict();

export const manifestSchema = z
  .object({
    format: z.literal(MANIFEST_FORMAT),
    name: z.string().min(1),
    version: z.string().min(1),
    /** onnx: run by onnxruntime in the workers; sjm: keel's own jump model (JSON). */
    kind: z.enum(['onnx', 'sjm']),
    /** The model file, relative to the manifest. */
    file: z.string().min(1),
    sha256: z.string().regex(/^[0-9a-f]{64}$/, 'a lowercase hex sha256'),
    featureSchema: z.object({ name: z.string(), version: z.number().int() }).strict(),
    input: z
      .object({
        /** The ONNX input name; the input is [N, F], or [N, window, F] for window > 1. */
        name: z.string().default('input'),
        features: z.array(z.string().min(1)).min(1),
        window: z.number().int().positive().default(1),
        /** Applied by keel before the model sees a row: (x - mean) / std per feature. */
        standardize: z.object({ mean: z.array(finite), std: z.array(finite.positive()) }).strict().optional(),
      })
      .strict(),
    outputs: z.array(z.string().min(1)).min(1),
    /** What the first output means, in words. */
    target: z.string(),
    /** A regressor's forecast horizon, ms: how far ahead its target looks. */
    horizonMs: z.number().int().positive().optional(),
    training: z
      .object({
        data: z.string(),
        rows: z.number().int().nonnegative(),
        seed: z.number().int(),
        script: z.string(),
        /** The recordings trained on, each with the time it covers; absent for simulated data. */
        sources: z.array(z.object({ file: z.string(), from: z.string(), to: z.string() }).strict()).optional(),
      })
      .strict(),
    metrics: z
      .object({
        heldOutRows: z.number().int().nonnegative(),
        model: z.record(z.string(), finite),
        baseline: z.record(z.string(), finite),
        baselineName: z.string(),
      })
      .strict(),
    /** A jump model's published-regime rule (regime-tracker.ts): absent, every change of the model's state is published. */
    regime: z
      .object({ minConfidence: z.number().min(0).max(1), confirmFrames: z.number().int().min(1) })
      .strict()
      .optional(),
    /**
     * Quantile bins of each input over the training rows and of the
     * prediction over the held-out rows: what drift is measured against.
     * `symbols` holds the bins of each instrument trained on (a price-level
     * feature such as spread_bps differs by instrument); others are held
     * against the pooled bins.
     */
    reference: referenceSchema
      .extend({ symbols: z.record(z.string(), referenceSchema).optional() })
      .strict()
      .optional(),
    /** Known inputs and the outputs the file gave when it was built: a swapped-in file must reproduce them. */
    golden: z.object({ input: z.array(finite).min(1), output: z.array(finite).min(1) }).strict().optional(),
  })
  .strict()
  .superRefine((m, ctx) => {
    const n = m.input.features.length;
    const s = m.input.standardize;
    if (s && (s.mean.length !== n || s.std.length !== n)) ctx.addIssue({ code: 'custom', path: ['input', 'standardize'], message: `mean and std need ${n} values, one per feature` });
    if (m.reference && m.reference.inputs.length !== n) ctx.addIssue({ code: 'custom', path: ['reference', 'inputs'], message: `needs ${n} entries, one per feature` });
    for (const [symbol, r] of Object.entries(m.reference?.symbols ?? {})) {
      if (r.inputs.length !== n) ctx.addIssue({ code: 'custom', path: ['reference', 'symbols', symbol, 'inputs'], message: `needs ${n} entries, one per feature` });
    }
    if (m.regime && m.kind !== 'sjm') ctx.addIssue({ code: 'custom', path: ['regime'], message: 'only a jump model (kind sjm) has a regime rule' });
    if (m.golden && m.golden.input.length % (n * m.input.window) !== 0) {
      ctx.addIssue({ code: 'custom', path: ['golden', 'input'], message: `length must be a multiple of window x features (${n * m.input.window})` });
    }
  });

export type Manifest = z.infer<typeof manifestSchema>;

/** A manifest as read from disk, with its model file's path and bytes (checked against the sha256). */
export interface ModelSource {
  readonly manifestPath: string;
  readonly manifest: Manifest;
  readonly filePath: string;
  readonly bytes: Uint8Array;
}

/**
 * A model keel will not serve, with why. Most reasons are the file or its
 * manifest and stay until someone fixes them; `retryable` marks those a
 * later try may not meet (a golden batch over the latency budget on a busy
 * machine, a worker that died or timed out meanwhile).
 */
export class ModelRefused extends Error {
  constructor(
    readonly source: string,
    readonly reason: string,
    readonly retryable = false,
  ) {
    super(`model ${source} refused: ${reason}`);
    this.name = 'ModelRefused';
  }
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** A manifest larger than this is refused unread (golden rows included, real ones are tens of KiB). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
/** A model file larger than this is refused unread. */
export const MAX_MODEL_BYTES = 512 * 1024 * 1024;
/** Reading one file at run time (open, stat and every read) must finish within this, ms. */
export const READ_TIMEOUT_MS = 10_000;

/** What a path is when it is not a regular file, in words. */
function kindOf(stats: Stats): string {
  if (stats.isFIFO()) return 'a FIFO (named pipe)';
  if (stats.isDirectory()) return 'a directory';
  if (stats.isCharacterDevice()) return 'a character device';
  if (stats.isBlockDevice()) return 'a block device';
  if (stats.isSocket()) return 'a socket';
  return 'not a file';
}

/** Why a file with these stats cannot be read as a model or manifest, or undefined when it can. */
export function fileProblem(stats: Stats, limit: number): string | undefined {
  if (!stats.isFile()) return `is ${kindOf(stats)}, not a regular file`;
  if (stats.size > limit) return `is ${stats.size} bytes, over the limit of ${limit}`;
  return undefined;
}

/** A file refused before or while reading it: the message names the file and what was wrong, never its bytes. */
export class FileRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FileRefused';
  }
}

/** An fs error in words: its own message names the call and the path, never the file's bytes. */
const fsReason = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/**
 * A regular file's bytes, read off the event loop: opened non-blocking (a
 * FIFO swapped in after a stat never blocks a thread), refused unless the
 * opened file is regular and at most `limit` bytes, and given up after
 * `timeoutMs`.
 */
export async function readRegularFile(path: string, what: string, limit: number, timeoutMs = READ_TIMEOUT_MS): Promise<Buffer> {
  let timedOut = false;
  const work = (async () => {
    let handle;
    try {
      handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
    } catch (err) {
      throw new FileRefused(`cannot read ${what} ${path}: ${fsReason(err)}`);
    }
    try {
      const problem = fileProblem(await handle.stat(), limit);
      if (problem) throw new FileRefused(`${what} ${path} ${problem}`);
      const chunks: Buffer[] = [];
      let total = 0;
      for (;;) {
        if (timedOut) throw new FileRefused(`${what} ${path}: read timed out`);
        const chunk = Buffer.allocUnsafe(Math.min(1024 * 1024, limit + 1 - total));
        const { bytesRead } = await handle.read(chunk, 0, chunk.length, null);
        if (bytesRead === 0) break;
        chunks.push(chunk.subarray(0, bytesRead));
        total += bytesRead;
        if (total > limit) throw new FileRefused(`${what} ${path} is over the limit of ${limit} bytes`);
      }
      return Buffer.concat(chunks, total);
    } catch (err) {
      if (err instanceof FileRefused) throw err;
      throw new FileRefused(`cannot read ${what} ${path}: ${fsReason(err)}`);
    } finally {
      await handle.close().catch(() => undefined);
    }
  })();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      timedOut = true;
      reject(new FileRefused(`${what} ${path}: not read within ${timeoutMs} ms`));
    }, timeoutMs);
  });
  // The work may still settle after a timeout: its rejection is expected then, not unhandled.
  work.catch(() => undefined);
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The same checks, synchronously (start-up only: no timeout). Once fstat says it is a regular file within the limit, a plain read cannot block. */
export function readRegularFileSync(path: string, what: string, limit: number): Buffer {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    throw new FileRefused(`cannot read ${what} ${path}: ${fsReason(err)}`);
  }
  try {
    const problem = fileProblem(fstatSync(fd), limit);
    if (problem) throw new FileRefused(`${what} ${path} ${problem}`);
    const bytes = readFileSync(fd);
    // It may have grown since fstat.
    if (bytes.length > limit) throw new FileRefused(`${what} ${path} is over the limit of ${limit} bytes`);
    return bytes;
  } catch (err) {
    if (err instanceof FileRefused) throw err;
    throw new FileRefused(`cannot read ${what} ${path}: ${fsReason(err)}`);
  } finally {
    closeSync(fd);
  }
}

/** JSON from a file's bytes; a file that is not JSON is named, and none of its bytes quoted (JSON.parse's message quotes them). */
export function parseJsonFile(bytes: Uint8Array, what: string, path: string): unknown {
  try {
    return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch {
    throw new FileRefused(`${what} ${path} is not JSON`);
  }
}

/** A key named in an error only when it looks like a manifest key, never an arbitrary string from the file. */
const keyName = (key: string): string => (/^[A-Za-z_][A-Za-z0-9_]{0,39}$/.test(key) ? key : '(a key that is not a name)');

export function parseManifest(json: unknown, source: string): Manifest {
  const parsed = manifestSchema.safeParse(json);
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.map((i) => {
    // zod's messages say what was expected and the type received; unknown keys are the one place it quotes the file.
    const message = i.code === 'unrecognized_keys' ? `unrecognized key${i.keys.length > 1 ? 's' : ''}: ${i.keys.map(keyName).join(', ')}` : i.message;
    return `${i.path.join('.') || '(root)'}: ${message}`;
  });
  throw new ModelRefused(source, `bad manifest: ${lines.join('; ')}`);
}

/** The manifest parsed from its bytes, its model file's path, and the checksum check of that file's bytes. */
function sourceOf(manifestPath: string, path: string, manifestBytes: Uint8Array) {
  let manifest: Manifest;
  try {
    manifest = parseManifest(parseJsonFile(manifestBytes, 'manifest', manifestPath), manifestPath);
  } catch (err) {
    if (err instanceof FileRefused) throw new ModelRefused(manifestPath, err.message);
    throw err;
  }
  const filePath = resolve(dirname(path), manifest.file);
  const check = (bytes: Uint8Array): ModelSource => {
    const actual = sha256(bytes);
    if (actual !== manifest.sha256) throw new ModelRefused(manifestPath, `checksum mismatch: ${manifest.file} has sha256 ${actual}, the manifest says ${manifest.sha256}`);
    return { manifestPath, manifest, filePath, bytes };
  };
  return { filePath, check };
}

const refusing = <T>(manifestPath: string, what: string, read: () => T): T => {
  try {
    return read();
  } catch (err) {
    throw new ModelRefused(manifestPath, err instanceof FileRefused ? err.message : `cannot read ${what}: ${fsReason(err)}`);
  }
};

/**
 * Reads a manifest and its model file, refusing a missing file, anything but
 * a regular file, one over its size limit ({@link MAX_MANIFEST_BYTES},
 * {@link MAX_MODEL_BYTES}) or a checksum mismatch. Synchronous: for start-up
 * only; at run time use {@link loadModelSource}.
 */
export function readModelSource(manifestPath: string): ModelSource {
  const path = resolve(manifestPath);
  const manifestBytes = refusing(manifestPath, 'manifest', () => readRegularFileSync(path, 'manifest', MAX_MANIFEST_BYTES));
  const { filePath, check } = sourceOf(manifestPath, path, manifestBytes);
  return check(refusing(manifestPath, 'model file', () => readRegularFileSync(filePath, 'model file', MAX_MODEL_BYTES)));
}

/** {@link readModelSource} off the event loop, each file read within {@link READ_TIMEOUT_MS}. */
export async function loadModelSource(manifestPath: string, timeoutMs = READ_TIMEOUT_MS): Promise<ModelSource> {
  const path = resolve(manifestPath);
  const wrap = async (what: string, read: Promise<Buffer>): Promise<Buffer> => {
    try {
      return await read;
    } catch (err) {
      throw new ModelRefused(manifestPath, err instanceof FileRefused ? err.message : `cannot read ${what}: ${fsReason(err)}`);
    }
  };
  const manifestBytes = await wrap('manifest', readRegularFile(path, 'manifest', MAX_MANIFEST_BYTES, timeoutMs));
  const { filePath, check } = sourceOf(manifestPath, path, manifestBytes);
  return check(await wrap('model file', readRegularFile(filePath, 'model file', MAX_MODEL_BYTES, timeoutMs)));
}

/**
 * The live schema's column of each model input, in input order. Refuses a
 * model built for another schema or reading a feature the live schema lacks.
 */
export function inputColumns(manifest: Manifest, schema: FeatureSchema, source: string): Int32Array {
  const want = manifest.featureSchema;
  if (want.name !== schema.name || want.version !== schema.version) {
    throw new ModelRefused(source, `built for feature schema ${want.name} v${want.version}, the live schema is ${schema.name} v${schema.version}`);
  }
  const missing = manifest.input.features.filter((f) => !schema.features.includes(f));
  if (missing.length > 0) throw new ModelRefused(source, `reads ${missing.join(', ')}, which the live features do not have (live: ${schema.features.join(', ')})`);
  return Int32Array.from(manifest.input.features, (f) => schema.features.indexOf(f));
}
