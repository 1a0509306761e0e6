/**
 * Small real ONNX models with manifests, written to a temp dir for tests of
 * the registry and the predictor: y = x·w + b over named features, so the
 * expected answer is plain arithmetic.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_FEATURE_OPTIONS, FEATURE_SCHEMA_NAME, FEATURE_SCHEMA_VERSION, featureSchema, type FeatureFrame } from '../../src/market/features.js';
import { eachFrame, type Dataset } from '../../src/models/dataset.js';
import { type Manifest, sha256 } from '../../src/models/manifest.js';
import { encodeModel } from '../../src/models/onnx/build.js';
import { fitJumpModel } from '../../src/models/sjm.js';

export interface AffineSpec {
  readonly name: string;
  readonly version: string;
  readonly features: readonly string[];
  readonly weights: readonly number[];
  readonly bias: number;
  /** Weights the file really has, when a test wants it to differ from what the manifest declares. */
  readonly fileWeights?: readonly number[];
  /** Bytes to write instead of the model (a corrupt file); the manifest's sha256 matches them. */
  readonly bytes?: Uint8Array;
  /** Overrides of the manifest. */
  readonly manifest?: Partial<Manifest>;
}

export function affineBytes(weights: readonly number[], bias: number): Uint8Array {
  return encodeModel({
    graphName: 'affine',
    opsets: { '': 17 },
    inputs: [{ name: 'input', shape: ['N', weights.length] }],
    outputs: [{ name: 'prediction', shape: ['N', 1] }],
    initializers: [
      { name: 'w', dims: [weights.length, 1], values: weights },
      { name: 'b', dims: [1], values: [bias] },
    ],
    nodes: [
      { op: 'MatMul', inputs: ['input', 'w'], outputs: ['xw'] },
      { op: 'Add', inputs: ['xw', 'b'], outputs: ['prediction'] },
    ],
  });
}

export const affine = (weights: readonly number[], bias: number, x: ArrayLike<number>, offset = 0) =>
  weights.reduce((sum, w, i) => sum + Math.fround(w) * Math.fround(x[offset + i]!), Math.fround(bias));

function manifestOf(spec: { name: string; version: string; kind: Manifest['kind']; file: string; bytes: Uint8Array; features: readonly string[]; golden?: Manifest['golden'] }): Manifest {
  return {
    format: 'keel.model-manifest',
    name: spec.name,
    version: spec.version,
    kind: spec.kind,
    file: spec.file,
    sha256: sha256(spec.bytes),
    featureSchema: { name: FEATURE_SCHEMA_NAME, version: FEATURE_SCHEMA_VERSION },
    input: { name: 'input', features: [...spec.features], window: 1 },
    outputs: [spec.kind === 'sjm' ? 'state' : 'prediction'],
    target: 'a test model',
    training: { data: 'none: chosen by the test', rows: 0, seed: 0, script: 'test/support/models.ts' },
    metrics: { heldOutRows: 0, model: {}, baseline: {}, baselineName: 'none' },
    ...(spec.golden ? { golden: spec.golden } : {}),
  };
}

/**
 * A two-state jump model over `features`, fitted on a planted series where
 * the first feature is low (calm) or high (busy) for long stretches.
 */
export function writeJumpModel(dir: string, features: readonly string[]): string {
  const rows = 400;
  const data = new Float64Array(rows * features.length);
  for (let r = 0; r < rows; r++) {
    const busy = Math.floor(r / 50) % 2 === 1;
    features.forEach((_, f) => (data[r * features.length + f] = (busy ? 5 : 1) + Math.sin(r * 1.7 + f) * 0.3));
  }
  const { model } = fitJumpModel(data, rows, features, { k: 2, lambda: 5, seed: 1 });
  const bytes = new TextEncoder().encode(JSON.stringify(model));
  const folder = join(dir, 'sjm');
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, 'model.json'), bytes);
  const path = join(folder, 'manifest.json');
  writeFileSync(path, JSON.stringify(manifestOf({ name: 'sjm', version: 'test', kind: 'sjm', file: 'model.json', bytes, features })));
  return path;
}

/** Writes `<dir>/<name>-<version>/{model.onnx, manifest.json}` and returns the manifest path. */
export function writeAffineModel(dir: string, spec: AffineSpec): string {
  const folder = join(dir, `${spec.name}-${spec.version}`);
  mkdirSync(folder, { recursive: true });
  const bytes = spec.bytes ?? affineBytes(spec.fileWeights ?? spec.weights, spec.bias);
  writeFileSync(join(folder, 'model.onnx'), bytes);
  const goldenInput = spec.features.flatMap((_, i) => [1, -2, 0.5].map((v) => v * (i + 1)));
  const rows = goldenInput.length / spec.features.length;
  const golden = { input: goldenInput, output: Array.from({ length: rows }, (_, r) => affine(spec.weights, spec.bias, goldenInput, r * spec.features.length)) };
  const manifest: Manifest = { ...manifestOf({ ...spec, kind: 'onnx', file: 'model.onnx', bytes, golden }), ...spec.manifest };
  const path = join(folder, 'manifest.json');
  writeFileSync(path, JSON.stringify(manifest, null, 2));
  return path;
}

/** A dataset's sampling instants as the live features frames of the default schema (copies: keep them all). */
export function framesOf(data: Dataset): FeatureFrame[] {
  const schema = featureSchema(DEFAULT_FEATURE_OPTIONS);
  const frames: FeatureFrame[] = [];
  eachFrame(data, (f) => frames.push({ intervalMs: data.sampleMs, at: f.at, wallAt: f.at, schema, symbols: data.symbols, values: f.values.slice(), warm: f.warm.slice(), base: true }));
  return frames;
}
