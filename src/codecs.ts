/**
 * How a topic's messages are written outside the process: one codec per
 * data topic (named in src/topics.ts), used by everything that writes bus
 * messages out (the Redis mirror; next, Redis Streams between machines).
 *
 * The wire form is msgpack without msgpackr's record extension, so any
 * msgpack reader decodes it. Typed arrays go out as plain arrays of numbers
 * (float64, NaN kept as NaN; msgpackr writes whole numbers as integers):
 * msgpackr 2.1 without `moreTypes` writes a Float64Array as a `bin` of
 * truncated bytes, and with `moreTypes` as its own extension that only
 * msgpackr reads. `decode` gives the typed arrays back, so a frame survives
 * a round trip. Frames carry `at` as wall-clock ms: the time the daemon saw
 * the message.
 */
import { Packr } from 'msgpackr';
import type { DepthBatch } from './ib/depth-feed.js';
import type { TradeBatch } from './ib/trade-feed.js';
import { CRITICAL, DISABLED, HEALTHY, WARNING, type FeatureHealth } from './market/feature-health.js';
import type { FeatureFrame } from './market/features.js';
import type { PredictionFrame } from './models/predictor.js';
import type { RegimeFrame } from './models/regime-tracker.js';

const packr = new Packr({ useRecords: false });

/** A topic's encoding: `T` is the bus payload, `D` what decoding gives back. */
export interface Codec<T, D = unknown> {
  /** The message as seen at wall-clock `wallAt`, as msgpack. */
  encode(message: T, wallAt: number): Buffer;
  decode(bytes: Buffer | Uint8Array): D;
}

/** Plain msgpack of already plain data (or `toPlain`'s rendering of it). */
export function encodePlain(value: unknown): Buffer {
  return packr.pack(value);
}

const isTypedArray = (v: unknown): v is ArrayLike<number | bigint> => ArrayBuffer.isView(v) && !(v instanceof DataView);

/** Anything to msgpack-friendly plain data: typed arrays to arrays, Maps to objects, Sets to arrays, functions dropped. */
export function toPlain(value: unknown, depth = 0): unknown {
  if (value === null || typeof value !== 'object') return typeof value === 'function' ? undefined : typeof value === 'bigint' ? Number(value) : value;
  if (depth > 8) return undefined;
  if (Buffer.isBuffer(value)) return value;
  if (isTypedArray(value)) return Array.from(value, Number);
  if (Array.isArray(value)) return value.map((v) => toPlain(v, depth + 1));
  if (value instanceof Map) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of value) out[String(k)] = toPlain(v, depth + 1);
    return out;
  }
  if (value instanceof Set) return Array.from(value, (v) => toPlain(v, depth + 1));
  if (value instanceof Date) return value.getTime();
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (typeof v === 'function') continue;
    out[k] = toPlain(v, depth + 1);
  }
  return out;
}

/** Plain data as it is (NaN marks survive as float64); anything richer rendered by `toPlain`. */
export function plainCodec<T>(): Codec<T> {
  return { encode: (message) => packr.pack(toPlain(message)), decode: (bytes) => packr.unpack(bytes) as unknown };
}

type Columns<K extends string> = { readonly [key in K]: ArrayLike<number> };

/** A codec whose wire form lists `columns` as arrays: decode turns them back into the given typed arrays. */
function columnar<T, W extends object, K extends string>(toWire: (message: T, wallAt: number) => W, columns: Readonly<Record<K, (values: number[]) => ArrayLike<number>>>): Codec<T, Omit<W, K> & Columns<K>> {
  return {
    encode: (message, wallAt) => packr.pack(toWire(message, wallAt)),
    decode(bytes) {
      const wire = packr.unpack(bytes) as Record<string, unknown>;
      for (const key of Object.keys(columns) as K[]) wire[key] = columns[key](wire[key] as number[]);
      return wire as Omit<W, K> & Columns<K>;
    },
  };
}

const f64 = (v: number[]) => Float64Array.from(v);
const i32 = (v: number[]) => Int32Array.from(v);
const u8 = (v: number[]) => Uint8Array.from(v);
const rows = (a: ArrayLike<number>, count: number) => Array.from({ length: count }, (_, i) => a[i]!);

export const featureFrameCodec = columnar(
  (f: FeatureFrame) => ({
    at: f.wallAt,
    intervalMs: f.intervalMs,
    base: f.base,
    schema: { name: f.schema.name, version: f.schema.version, features: f.schema.features },
    symbols: f.symbols,
    values: Array.from(f.values),
    warm: Array.from(f.warm),
  }),
  { values: f64, warm: u8 },
);

export const regimeFrameCodec = columnar(
  (r: RegimeFrame, wallAt: number) => ({
    at: wallAt,
    model: r.model,
    intervalMs: r.intervalMs,
    labels: r.labels,
    symbols: r.symbols,
    k: r.k,
    state: Array.from(r.state),
    probabilities: Array.from(r.probabilities),
    switches: r.switches,
  }),
  { state: i32, probabilities: f64 },
);

/** Every horizon's predictions, each with its values as an array (a Float64Array again once decoded). */
export const predictionFrameCodec: Codec<PredictionFrame> = {
  encode: (p, wallAt) =>
    packr.pack({
      at: wallAt,
      symbols: p.symbols,
      horizons: p.horizons.map((h) => ({ horizonMs: h.horizonMs, value: Array.from(h.value), tier: h.tier, models: h.models })),
      latencyMs: p.latencyMs,
      inferenceMs: p.inferenceMs,
      faults: p.faults,
    }),
  decode(bytes) {
    const wire = packr.unpack(bytes) as { horizons: { value: number[] | Float64Array }[] };
    for (const h of wire.horizons) h.value = f64(h.value as number[]);
    return wire;
  },
};

/** Rows [0, count) of a depth batch. */
export const depthBatchCodec = columnar(
  (b: DepthBatch) => ({
    count: b.count,
    instrument: rows(b.instrument, b.count),
    position: rows(b.position, b.count),
    operation: rows(b.operation, b.count),
    side: rows(b.side, b.count),
    smart: rows(b.smart, b.count),
    price: rows(b.price, b.count),
    size: rows(b.size, b.count),
    seq: rows(b.seq, b.count),
    receivedAt: rows(b.receivedAt, b.count),
  }),
  { instrument: i32, position: i32, operation: u8, side: u8, smart: u8, price: f64, size: f64, seq: f64, receivedAt: f64 },
);

/** Rows [0, count) of a trade batch. */
export const tradeBatchCodec = columnar(
  (b: TradeBatch) => ({
    count: b.count,
    instrument: rows(b.instrument, b.count),
    price: rows(b.price, b.count),
    size: rows(b.size, b.count),
    seq: rows(b.seq, b.count),
    receivedAt: rows(b.receivedAt, b.count),
  }),
  { instrument: i32, price: f64, size: f64, seq: f64, receivedAt: f64 },
);

/** Feature health as a summary: quality, status counts, what stops trading. */
export const featureHealthCodec: Codec<FeatureHealth> = {
  encode(h, wallAt) {
    const counts = { healthy: 0, warning: 0, critical: 0, disabled: 0 };
    for (const s of h.status) {
      if (s === HEALTHY) counts.healthy++;
      else if (s === WARNING) counts.warning++;
      else if (s === CRITICAL) counts.critical++;
      else if (s === DISABLED) counts.disabled++;
    }
    const quality = h.qualityPct();
    return packr.pack({ at: wallAt, qualityPct: Number.isNaN(quality) ? null : quality, ...counts, problems: Object.fromEntries(h.problems) });
  },
  decode: (bytes) => packr.unpack(bytes) as unknown,
};
