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
 * `orders` (order, order.status), `fills` (fill, commission), `gate` and
 * `day` (the trading day's opening P&L),
 * whose messages are whole JournalEntry objects `{seq, record}`.
 *
 * Encoding: each topic's codec from the catalogue (src/topics.ts,
 * src/codecs.ts), plain msgpack any reader decodes; a topic without one is
 * written as plain data (`toPlain`).
 */
import { encodePlain, plainCodec } from '../codecs.js';
import { codecOf, FEATURE_HEALTH_TOPIC, FEATURES_TOPIC, JOURNAL_RECORD_TOPIC, PORTFOLIO_TOPIC, PREDICTIONS_TOPIC, REGIME_TOPIC, type TopicName, type Topics } from '../topics.js';

export { encodePlain as encode };

/** What is mirrored unless the config says otherwise. */
export const MIRRORED_TOPICS: readonly TopicName[] = [FEATURES_TOPIC, REGIME_TOPIC, PREDICTIONS_TOPIC, FEATURE_HEALTH_TOPIC, PORTFOLIO_TOPIC, JOURNAL_RECORD_TOPIC];

/** Journal record types -> the Redis topic they are published under. */
export const JOURNAL_CHANNELS = { order: 'orders', 'order.status': 'orders', fill: 'fills', commission: 'fills', gate: 'gate', day: 'day', 'execution.refused': 'refused', 'option.settlement': 'fills', 'option.instruction': 'orders', model: 'models' } as const;
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

/** A bus message to the bytes written for it; `wallAt` is when the daemon saw it. */
export type Encoder<T> = (message: T, wallAt: number) => Buffer;

/** The encoder of a bus topic: its codec's, or plain data for a topic without one. */
export function encoderFor<K extends TopicName>(topic: K): Encoder<Topics[K]> {
  const codec = codecOf(topic) ?? plainCodec<Topics[K]>();
  return (message, wallAt) => codec.encode(message, wallAt);
}
