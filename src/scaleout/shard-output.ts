/**
 * What a shard worker writes to its shard's output stream: one entry per
 * input tick, in tick order, so every (instrument, tick) frame appears once.
 * The trading node reads every shard's outputs; its risk gate and trader
 * act on them (src/scaleout/shard-reader.ts).
 *
 * An entry has the tick (seq and tape time), the shard's instruments, the
 * base features frame with which instruments are warm, the conditions of
 * the shard's feature health that stop trading, and, on the ticks of their
 * clocks, the regime and the predictions. Typed arrays go as their bytes.
 */
import { Packr } from 'msgpackr';
import type { HorizonPredictions } from '../models/predictor.js';

const packr = new Packr({ useRecords: false });

/** 2: predictions by horizon. */
export const OUTPUT_FORMAT = 2;


export interface ShardOutput {
  readonly shard: number;
  readonly seq: number;
  /** Tape time of the tick (epoch ms). */
  readonly at: number;
  readonly symbols: readonly string[];
  readonly features: readonly string[];
  /** `instrument * features.length + feature` of the base frame. */
  readonly values: Float64Array;
  readonly warm: Uint8Array;
  /** Feature health's conditions that stop trading: key -> reason. */
  readonly problems: readonly (readonly [string, string])[];
  readonly regime?: { readonly labels: readonly string[]; readonly state: Int32Array };
  readonly predictions?: { readonly horizons: readonly HorizonPredictions[]; readonly faults: readonly string[] };
}

const bytesOf = (a: Float64Array | Int32Array | Uint8Array): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

function copyInto<T extends Float64Array | Int32Array | Uint8Array>(make: (n: number) => T, width: number, value: unknown, what: string): T {
  if (!(value instanceof Uint8Array) || value.byteLength % width !== 0) throw new Error(`shard output: ${what} is malformed`);
  const out = make(value.byteLength / width);
  new Uint8Array(out.buffer).set(value);
  return out;
}

export function encodeOutput(o: ShardOutput): Buffer {
  return packr.pack({
    format: OUTPUT_FORMAT,
    shard: o.shard,
    seq: o.seq,
    at: o.at,
    symbols: o.symbols,
    features: o.features,
    values: bytesOf(o.values),
    warm: bytesOf(o.warm),
    problems: o.problems,
    regime: o.regime && { labels: o.regime.labels, state: bytesOf(o.regime.state) },
    predictions: o.predictions && { horizons: o.predictions.horizons.map((h) => ({ horizonMs: h.horizonMs, value: bytesOf(h.value), tier: h.tier, models: h.models })), faults: o.predictions.faults },
  });
}

const strings = (v: unknown, what: string): string[] => {
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) throw new Error(`shard output: ${what} is not a list of strings`);
  return v as string[];
};

/** An output entry's body; throws an Error naming what is malformed. */
export function decodeOutput(body: Buffer | Uint8Array): ShardOutput {
  let raw: Record<string, unknown>;
  try {
    raw = packr.unpack(body) as Record<string, unknown>;
  } catch (error) {
    throw new Error(`shard output: not msgpack (${(error as Error).message})`);
  }
  if (raw === null || typeof raw !== 'object') throw new Error('shard output: not a map');
  if (raw.format !== OUTPUT_FORMAT) throw new Error(`shard output: format ${String(raw.format)}, this keel reads format ${OUTPUT_FORMAT}`);
  const symbols = strings(raw.symbols, 'symbols');
  const features = strings(raw.features, 'features');
  const values = copyInto((n) => new Float64Array(n), 8, raw.values, 'values');
  const warm = copyInto((n) => new Uint8Array(n), 1, raw.warm, 'warm');
  if (values.length !== symbols.length * features.length || warm.length !== symbols.length) throw new Error('shard output: values or warm do not match symbols and features');
  if (!Array.isArray(raw.problems)) throw new Error('shard output: problems is not a list');
  const problems = (raw.problems as unknown[]).map((p) => {
    if (!Array.isArray(p) || p.length !== 2 || typeof p[0] !== 'string' || typeof p[1] !== 'string') throw new Error('shard output: a problem is not a [key, reason] pair');
    return [p[0], p[1]] as const;
  });
  for (const field of ['shard', 'seq', 'at'] as const) if (typeof raw[field] !== 'number') throw new Error(`shard output: ${field} is not a number`);
  const r = raw.regime as Record<string, unknown> | undefined;
  const p = raw.predictions as Record<string, unknown> | undefined;
  return {
    shard: raw.shard as number,
    seq: raw.seq as number,
    at: raw.at as number,
    symbols,
    features,
    values,
    warm,
    problems,
    regime: r ? { labels: strings(r.labels, 'regime labels'), state: copyInto((n) => new Int32Array(n), 4, r.state, 'regime state') } : undefined,
    predictions: p ? { horizons: horizonsOf(p.horizons, symbols.length), faults: strings(p.faults, 'faults') } : undefined,
  };
}

function horizonsOf(raw: unknown, instruments: number): HorizonPredictions[] {
  if (!Array.isArray(raw)) throw new Error('shard output: prediction horizons is not a list');
  return raw.map((h: Record<string, unknown> | null) => {
    if (h === null || typeof h !== 'object' || typeof h.horizonMs !== 'number') throw new Error('shard output: a prediction horizon has no horizonMs');
    const value = copyInto((n) => new Float64Array(n), 8, h.value, 'prediction values');
    const tier = strings(h.tier, 'tiers');
    const models = strings(h.models, 'models');
    if (value.length !== instruments || tier.length !== instruments || models.length !== instruments) throw new Error(`shard output: the ${h.horizonMs} ms predictions do not match symbols`);
    return { horizonMs: h.horizonMs, value, tier, models };
  });
}
