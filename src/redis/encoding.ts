/**
 * What a mirrored message becomes in Redis, and under which keys.
 *
 * Keys, with `<i>` the daemon's instance name (config `instance`):
 *
 *   keel:<i>:<topic>             channel: every message, msgpack (PUBLISH)
 *   keel:<i>:<topic>:latest      the latest message, msgpack (one MSET with the next key)
 *   keel:<i>:<topic>:timestamp   wall-clock ms the daemon saw that message (decimal string)
 *   keel:<i>:journal             stream: every durable journal entry, id `<seq>-1`, field `r` = msgpack(record)
 *   keel:<i>:positions           hash: symbol -> msgpack(PositionView), flat positions kept
 *
 * Topics: `features`, `regime`, `predictions`, `feature.health`, `portfolio`
 * under their bus names; the journal (`journal.record` on the bus) under
 * `orders` (order, order.status), `fills` (fill, commission) and `gate`,
 * whose messages are whole JournalEntry objects `{seq, record}`.
 *
 * Encoding. msgpack without msgpackr's record extension, so any msgpack
 * reader decodes it. Typed arrays are sent as plain arrays of numbers
 * (float64, NaN kept as NaN; msgpackr writes whole numbers as integers):
 * msgpackr 2.1 without `moreTypes` writes a Float64Array as a `bin` of
 * truncated bytes, and with `moreTypes` as its own extension type that only
 * msgpackr can read, so a typed array is never handed to the packer. Maps
 * are sent as maps (objects for JS readers). Frames carry `at` as wall ms.
 */
import { Packr } from 'msgpackr';
import { FEATURE_HEALTH_TOPIC } from '../actors/feature-health.js';
import { FEATURES_TOPIC, type FeatureFrame } from '../actors/features.js';
import { PREDICTIONS_TOPIC } from '../actors/predictor.js';
import { REGIME_TOPIC, type RegimeFrame } from '../actors/regime.js';
import { JOURNAL_RECORD_TOPIC } from '../journal/records.js';
import { CRITICAL, DISABLED, HEALTHY, WARNING, type FeatureHealth } from '../market/feature-health.js';
import type { PredictionFrame } from '../models/predictor.js';
import { PORTFOLIO_TOPIC, type PortfolioView } from '../trading/portfolio.js';

/** What is mirrored unless the config says otherwise. */
export const MIRRORED_TOPICS: readonly string[] = [FEATURES_TOPIC, REGIME_TOPIC, PREDICTIONS_TOPIC, FEATURE_HEALTH_TOPIC, PORTFOLIO_TOPIC, JOURNAL_RECORD_TOPIC];

/** Journal record types -> the Redis topic they are published under. */
export const JOURNAL_CHANNELS = { order: 'orders', 'order.status': 'orders', fill: 'fills', commission: 'fills', gate: 'gate' } as const;
export type JournalChannel = (typeof JOURNAL_CHANNELS)[keyof typeof JOURNAL_CHANNELS];

export function redisKeys(instance: string) {
  const base = `keel:${instance}`;
  return {
    channel: (topic: string) => `${base}:${topic}`,
    latest: (topic: string) => `${base}:${topic}:latest`,
    timestamp: (topic: string) => `${base}:${topic}:timestamp`,
    journal: `${base}:journal`,
    positions: `${base}:positions`,
  };
}

/** The URL without its password, for logs and the status. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}

const packr = new Packr({ useRecords: false });

export function encode(value: unknown): Buffer {
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

/** A bus message to the plain data written for it; `wallAt` is when the daemon saw it. */
export type Encoder = (message: never, wallAt: number) => unknown;

/** What a features frame looks like in Redis. */
function featureFrame(f: FeatureFrame) {
  return {
    at: f.wallAt,
    intervalMs: f.intervalMs,
    base: f.base,
    schema: { name: f.schema.name, version: f.schema.version, features: f.schema.features },
    symbols: f.symbols,
    values: Array.from(f.values),
    warm: Array.from(f.warm),
  };
}

function regimeFrame(r: RegimeFrame, wallAt: number) {
  return {
    at: wallAt,
    model: r.model,
    intervalMs: r.intervalMs,
    labels: r.labels,
    symbols: r.symbols,
    k: r.k,
    state: Array.from(r.state),
    probabilities: Array.from(r.probabilities),
    switches: r.switches,
  };
}

function predictionFrame(p: PredictionFrame, wallAt: number) {
  return {
    at: wallAt,
    symbols: p.symbols,
    value: Array.from(p.value),
    tier: p.tier,
    models: p.models,
    latencyMs: p.latencyMs,
    inferenceMs: p.inferenceMs,
    faults: p.faults,
  };
}

/** Feature health as a summary: quality, status counts, what stops trading. */
function featureHealth(h: FeatureHealth, wallAt: number) {
  const counts = { healthy: 0, warning: 0, critical: 0, disabled: 0 };
  for (const s of h.status) {
    if (s === HEALTHY) counts.healthy++;
    else if (s === WARNING) counts.warning++;
    else if (s === CRITICAL) counts.critical++;
    else if (s === DISABLED) counts.disabled++;
  }
  const quality = h.qualityPct();
  return { at: wallAt, qualityPct: Number.isNaN(quality) ? null : quality, ...counts, problems: Object.fromEntries(h.problems) };
}

const ENCODERS: Record<string, Encoder> = {
  [FEATURES_TOPIC]: featureFrame,
  [REGIME_TOPIC]: regimeFrame,
  [PREDICTIONS_TOPIC]: predictionFrame,
  [FEATURE_HEALTH_TOPIC]: featureHealth,
  // Plain data already (NaN marks survive as float64).
  [PORTFOLIO_TOPIC]: (p: PortfolioView) => p,
};

/** The encoder of a bus topic: its own, or `toPlain` for a topic without one. */
export function encoderFor(topic: string): Encoder {
  return ENCODERS[topic] ?? ((m: unknown) => toPlain(m));
}
