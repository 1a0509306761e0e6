/**
 * The manifest beside every model file: what the model reads (feature names
 * in input order, from which live feature schema), what it writes, the
 * checksum of its file, how it was trained and how it did on held-out data.
 * keel refuses a model whose manifest does not match the live features.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import type { FeatureSchema } from '../market/features.js';

export const MANIFEST_FORMAT = 'keel.model-manifest';

const finite = z.number().finite();

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
    training: z.object({ data: z.string(), rows: z.number().int().nonnegative(), seed: z.number().int(), script: z.string() }).strict(),
    metrics: z
      .object({
        heldOutRows: z.number().int().nonnegative(),
        model: z.record(z.string(), finite),
        baseline: z.record(z.string(), finite),
        baselineName: z.string(),
      })
      .strict(),
    /** Known inputs and the outputs the file gave when it was built: a swapped-in file must reproduce them. */
    golden: z.object({ input: z.array(finite).min(1), output: z.array(finite).min(1) }).strict().optional(),
  })
  .strict()
  .superRefine((m, ctx) => {
    const n = m.input.features.length;
    const s = m.input.standardize;
    if (s && (s.mean.length !== n || s.std.length !== n)) ctx.addIssue({ code: 'custom', path: ['input', 'standardize'], message: `mean and std need ${n} values, one per feature` });
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

export function parseManifest(json: unknown, source: string): Manifest {
  const parsed = manifestSchema.safeParse(json);
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
  throw new ModelRefused(source, `bad manifest: ${lines.join('; ')}`);
}

/** Reads a manifest and its model file, refusing a missing file or a checksum mismatch. */
export function readModelSource(manifestPath: string): ModelSource {
  const path = resolve(manifestPath);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ModelRefused(manifestPath, `cannot read manifest: ${(err as Error).message}`);
  }
  const manifest = parseManifest(json, manifestPath);
  const filePath = resolve(dirname(path), manifest.file);
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(filePath);
  } catch (err) {
    throw new ModelRefused(manifestPath, `cannot read model file: ${(err as Error).message}`);
  }
  const actual = sha256(bytes);
  if (actual !== manifest.sha256) throw new ModelRefused(manifestPath, `checksum mismatch: ${manifest.file} has sha256 ${actual}, the manifest says ${manifest.sha256}`);
  return { manifestPath, manifest, filePath, bytes };
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
