/**
 * The Redis mirror's data plane: chosen bus topics, the journal and the
 * positions, copied to Redis for outside readers (dashboards, notebooks,
 * other services). Redis is a window on the daemon, never its memory:
 * nothing here is read back, and losing Redis loses nothing the journal does
 * not hold. The keys and what each message becomes are in `encoding.ts`.
 *
 * The bridge keeps no mode of its own: the redis component's statechart
 * (src/actors/redis.ts) attaches it to a connection that answers, detaches
 * it when that connection goes, and runs the resync; the bridge reports
 * back only what it alone can see (a write that found the socket gone, a
 * stream append Redis refused). Bus messages stay here, plain calls, never
 * machine events.
 *
 * Writes are fire and forget: a pipeline per message (MSET latest and
 * timestamp, PUBLISH), never awaited on the hot path; a failed write is
 * counted (`stats.failed`). The client must have `enableOfflineQueue: false`
 * and `maxRetriesPerRequest: 0` (see `redisClientOptions`): while Redis is
 * down a command fails at once instead of piling up in memory, and a
 * command in flight when the connection drops is rejected, not resent out
 * of order after the resync.
 *
 * Status, on the state topic `redis.status` (published by the component):
 * `connected`, `down` (published in the event handler that saw the
 * connection go: the risk gate halts in that call), `resyncing` (Redis
 * answers again but the mirror is stale until the resync ends). While
 * detached nothing is sent, and while down (detached with the `down`
 * status) messages are counted into its `missed`; the bridge only remembers
 * the newest message of every topic (a reference: reused frames hold their
 * newest values). The resync rewrites every latest key (with the time the
 * daemon saw that value, so old data does not look fresh), the positions
 * hash, and appends the journal stream's missing tail from the journal
 * itself (XREVRANGE for the last id, then `entriesSince`). Ids make the
 * stream exact and idempotent: entry N is `N-1`, whatever was or was not
 * written before.
 */
import type { ChainableCommander, Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Bus } from '../bus.js';
import type { ServiceLookup } from '../services.js';
import { JOURNAL_RECORD_TOPIC, PORTFOLIO_TOPIC, type TopicName } from '../topics.js';
import type { Clock } from '../clock.js';
import type { JournalEntry } from '../journal/records.js';
import type { PortfolioView } from '../trading/portfolio.js';
import { JOURNAL_CHANNELS, MIRRORED_TOPICS, encode, encoderFor, redactUrl, redisKeys, type JournalChannel } from './encoding.js';

export type RedisState = 'connected' | 'down' | 'resyncing';

export interface RedisStatus {
  readonly state: RedisState;
  readonly reason: string;
  /** Wall-clock ms of the change. */
  readonly since: number;
  /**
   * Messages not sent because Redis was down: counted in place while down,
   * and carried by the `resyncing` and `connected` that end the outage.
   */
  missed: number;
  /** Where Redis is, password redacted. */
  readonly url: string;
}

export interface RedisBridgeOptions {
  /** An ioredis client created with `redisClientOptions`; its connection is the component's to manage. */
  readonly client: Redis;
  readonly bus: Bus;
  /** Where the journal is found, and when a new one is provided. */
  readonly services: ServiceLookup;
  readonly instance: string;
  readonly clock: Clock;
  readonly log: Logger;
  /** For logs and errors (redacted here). */
  readonly url: string;
  /** Bus topics to mirror (default MIRRORED_TOPICS); `journal.record` mirrors the journal. */
  readonly topics?: readonly TopicName[];
}

/** What the bridge alone can see, for the component to act on. */
export interface BridgeEvents {
  /** A write found the socket gone before ioredis said so ('close' comes a tick later): that is the loss. */
  lost(reason: string): void;
  /** The stream refused an append while Redis answers: the mirror cannot be kept. */
  failed(error: Error): void;
}

export interface BridgeStats {
  /** Pipelines and commands issued, and writes Redis refused or that were lost with the connection. */
  sent: number;
  failed: number;
  resyncs: number;
  /** Journal entries appended to the stream. */
  journalEntries: number;
}

/** What a resync wrote. */
export interface ResyncSummary {
  readonly topics: number;
  readonly positions: number;
  readonly journalEntries: number;
}

/** One mirrored topic: its keys and its newest message. */
interface Mirror {
  readonly topic: string;
  readonly channel: string;
  readonly latest: string;
  readonly timestamp: string;
  /** The newest message, encoded as seen at a time (lazily, at resync); null: nothing seen. */
  newest: ((wallAt: number) => Buffer) | null;
  seenAt: number;
}

export class RedisBridge {
  readonly stats: BridgeStats = { sent: 0, failed: 0, resyncs: 0, journalEntries: 0 };
  private readonly client: Redis;
  private readonly bus: Bus;
  private readonly services: ServiceLookup;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly url: string;
  private readonly keys: ReturnType<typeof redisKeys>;
  /** Every mirror, the journal channels' included (for the resync). */
  private readonly mirrors: Mirror[] = [];
  private readonly topicMirrors = new Map<TopicName, Mirror>();
  private readonly journalMirrors = new Map<JournalChannel, Mirror>();
  private readonly mirrorJournal: boolean;
  private events: BridgeEvents | undefined;
  /** The newest portfolio, for the positions hash at resync. */
  private portfolio: PortfolioView | undefined;
  /** Symbols written to the positions hash (to remove those that leave the view). */
  private readonly positionSymbols = new Set<string>();

  /**
   * The connection writes go out on, from `attach` to `detach`; aborted
   * then, so async work begun on it (a resync, a stream fill) stops instead
   * of writing on the next connection with what it knew of this one.
   */
  private session: AbortController | undefined;
  /** Detached because Redis went down: what is not sent is counted into this status, in place. */
  private down: RedisStatus | undefined;
  /** Topics that had a message while down. */
  private readonly touched = new Set<string>();
  /** The highest journal seq in the stream (or issued on this connection, in order). */
  private streamSeq = 0;
  /**
   * The stream is not known complete on this connection (a resync under
   * way) or is being filled from the journal: no live XADD, no second fill.
   * The data plane's own, not a mode of the component: a fill ends in the
   * turn that finds the stream caught up (so no entry falls between it and
   * the live appends), and fills also run while connected.
   */
  private filling = false;
  private failureLoggedAt = -Infinity;

  constructor(options: RedisBridgeOptions) {
    const { client, bus, instance, clock, log } = options;
    this.client = client;
    this.bus = bus;
    this.services = options.services;
    this.clock = clock;
    this.log = log;
    this.url = redactUrl(options.url);
    this.keys = redisKeys(instance);
    const topics = [...new Set(options.topics ?? MIRRORED_TOPICS)];
    this.mirrorJournal = topics.includes(JOURNAL_RECORD_TOPIC);
    for (const topic of topics) if (topic !== JOURNAL_RECORD_TOPIC) this.topicMirrors.set(topic, this.mirror(topic));
    if (this.mirrorJournal) for (const channel of new Set(Object.values(JOURNAL_CHANNELS))) this.journalMirrors.set(channel, this.mirror(channel));
  }

  private mirror(topic: string): Mirror {
    const m: Mirror = { topic, channel: this.keys.channel(topic), latest: this.keys.latest(topic), timestamp: this.keys.timestamp(topic), newest: null, seenAt: NaN };
    this.mirrors.push(m);
    return m;
  }

  /**
   * Follows the mirrored topics (and a journal that is provided anew) until
   * the returned function. States retained before are written at the first
   * resync, as seen now.
   */
  listen(events: BridgeEvents): () => void {
    const { bus } = this;
    this.events = events;
    const unsubscribe: (() => void)[] = [];
    const watch = <K extends TopicName>(topic: K, m: Mirror) => {
      const encode = encoderFor(topic);
      const retained = bus.latest(topic);
      if (retained !== undefined) m.newest = (at) => encode(retained, at);
      unsubscribe.push(bus.subscribe(topic, (message) => this.onMessage(m, (at) => encode(message, at))));
    };
    for (const [topic, m] of this.topicMirrors) if (topic !== PORTFOLIO_TOPIC) watch(topic, m);
    const portfolio = this.topicMirrors.get(PORTFOLIO_TOPIC);
    if (portfolio) {
      const encode = encoderFor(PORTFOLIO_TOPIC);
      const follow = (view: PortfolioView) => {
        this.portfolio = view;
        portfolio.newest = (at) => encode(view, at);
      };
      const retained = bus.latest(PORTFOLIO_TOPIC);
      if (retained) follow(retained);
      unsubscribe.push(
        bus.subscribe(PORTFOLIO_TOPIC, (view) => {
          follow(view);
          const p = this.write(portfolio, portfolio.newest!);
          if (!p) return;
          this.writePositions(p, view);
          this.send(p, -1);
        }),
      );
    }
    if (this.mirrorJournal) {
      unsubscribe.push(
        bus.subscribe(JOURNAL_RECORD_TOPIC, (entry) => this.onJournalEntry(entry)),
        // A journal that (re)starts may hold entries the stream lacks.
        this.services.onProvided('journal', () => this.catchUp(false)),
      );
    }
    return () => {
      for (const u of unsubscribe) u();
      this.events = undefined;
    };
  }

  /**
   * A connection answers: writes go out on it from now on. What the stream
   * holds is not known on it until `resync` has read and filled it, so live
   * journal entries wait for that.
   */
  attach(): void {
    this.session?.abort();
    this.session = new AbortController();
    this.down = undefined;
    this.filling = this.mirrorJournal;
  }

  /**
   * No connection (or no longer one to use): nothing is sent, and work begun
   * on the last one stops. With `down`, the status just published, what is
   * not sent is counted into its `missed`.
   */
  detach(down?: RedisStatus): void {
    this.session?.abort();
    this.session = undefined;
    this.down = down;
  }

  /** The topics that had a message while down since the last call. */
  takeTouched(): string[] {
    const touched = [...this.touched];
    this.touched.clear();
    return touched;
  }

  // --- messages ----------------------------------------------------------------

  /**
   * Remembers the message for the resync and, while attached, returns the
   * pipeline that writes it. Encoded here, in the bus handler, because
   * producers reuse their frames.
   */
  private write(m: Mirror, newest: (wallAt: number) => Buffer): ChainableCommander | undefined {
    const wallAt = this.clock.wallNow();
    m.newest = newest;
    m.seenAt = wallAt;
    if (!this.session) {
      this.notSent(m.topic);
      return undefined;
    }
    const payload = newest(wallAt);
    return this.client.pipeline().mset(m.latest, payload, m.timestamp, wallAt).publish(m.channel, payload);
  }

  private onMessage(m: Mirror, newest: (wallAt: number) => Buffer): void {
    const p = this.write(m, newest);
    if (p) this.send(p, -1);
  }

  private onJournalEntry(entry: JournalEntry): void {
    // Sent as is, whole entries: the bytes do not depend on when it was seen.
    const bytes = encode(entry);
    const p = this.write(this.journalMirrors.get(JOURNAL_CHANNELS[entry.record.type])!, () => bytes);
    if (!p) return;
    // The stream only grows in order: a gap (or a fill under way) is filled from the journal.
    let xadd = -1;
    if (!this.filling) {
      if (entry.seq === this.streamSeq + 1) {
        this.streamSeq = entry.seq;
        p.xadd(this.keys.journal, `${entry.seq}-1`, 'r', encode(entry.record));
        xadd = 2;
        this.stats.journalEntries++;
      } else if (entry.seq > this.streamSeq + 1) {
        this.catchUp(false);
      }
    }
    this.send(p, xadd);
  }

  private notSent(topic: string): void {
    if (!this.down) return;
    this.down.missed++;
    this.touched.add(topic);
  }

  /** Fire and forget; `xadd` is the index of a stream append among the pipeline's commands (-1: none). */
  private send(p: ChainableCommander, xadd: number): void {
    this.stats.sent++;
    p.exec().then(
      (results) => {
        if (!results) return;
        for (const [error] of results) {
          if (!error) continue;
          this.writeFailed(error);
          break;
        }
        // The stream refused an entry while Redis answers: learn what it holds and fill it from the journal.
        if (xadd >= 0 && results[xadd]?.[0]) this.catchUp(true);
      },
      (error: unknown) => this.writeFailed(error as Error),
    );
  }

  private writeFailed(error: Error): void {
    this.stats.failed++;
    // Writes in flight when the connection drops fail by design; the resync repairs them.
    if (!this.session || this.client.status !== 'ready') return;
    if (CONNECTION_GONE.test(error.message)) {
      this.events?.lost(`connection lost (${error.message})`);
      return;
    }
    const now = this.clock.now();
    if (now - this.failureLoggedAt < 10_000) return;
    this.failureLoggedAt = now;
    this.log.warn({ failed: this.stats.failed, err: error.message }, `Redis refused a mirror write: ${error.message}`);
  }

  /** HSET every position and HDEL those that left the view. */
  private writePositions(p: ChainableCommander, view: PortfolioView): number {
    const key = this.keys.positions;
    const fields: (string | Buffer)[] = [];
    const present = new Set<string>();
    for (const position of view.positions) {
      fields.push(position.symbol, encode(position));
      present.add(position.symbol);
    }
    const gone = [...this.positionSymbols].filter((s) => !present.has(s));
    if (fields.length > 0) p.hset(key, ...fields);
    if (gone.length > 0) p.hdel(key, ...gone);
    this.positionSymbols.clear();
    for (const s of present) this.positionSymbols.add(s);
    return present.size;
  }

  /** The whole positions hash at once (a transaction: a reader never sees it empty or half written). */
  private replacePositions(view: PortfolioView): { count: number; written: Promise<[Error | null, unknown][] | null> } {
    const t = this.client.multi().del(this.keys.positions);
    this.positionSymbols.clear();
    const count = this.writePositions(t, view);
    return { count, written: t.exec() };
  }

  // --- resync ------------------------------------------------------------------

  /**
   * On the attached connection: every latest value and the positions, then
   * the journal stream's missing tail. Rejects when Redis refuses a write
   * while it answers; once the connection is detached it stops early, and
   * what it returns then says nothing.
   */
  async resync(): Promise<ResyncSummary> {
    const { signal } = this.session!;
    const p = this.client.pipeline();
    let topics = 0;
    let positions = 0;
    let positionsWritten: Promise<[Error | null, unknown][] | null> = Promise.resolve([]);
    const now = this.clock.wallNow();
    for (const m of this.mirrors) {
      if (m.newest === null) continue;
      // The time the daemon saw it, so a value from before the outage does not look fresh.
      const at = Number.isNaN(m.seenAt) ? now : m.seenAt;
      p.mset(m.latest, m.newest(at), m.timestamp, at);
      topics++;
    }
    if (this.portfolio) ({ count: positions, written: positionsWritten } = this.replacePositions(this.portfolio));
    this.stats.sent++;
    throwFirst(await p.exec());
    throwFirst(await positionsWritten);
    const journalEntries = signal.aborted || !this.mirrorJournal ? 0 : await this.fillStream(signal, true);
    if (!signal.aborted) this.stats.resyncs++;
    return { topics, positions, journalEntries };
  }

  /**
   * Appends what the journal holds beyond the stream, in order, until the
   * stream has caught up; then live entries append one by one. Redis
   * refusing an append throws (the component fails); the journal failing
   * to read is the journal's own failure: logged, and tried again on the
   * next entry or the next journal.
   */
  private async fillStream(signal: AbortSignal, readStream: boolean): Promise<number> {
    const key = this.keys.journal;
    if (readStream) {
      const last = await this.client.xrevrange(key, '+', '-', 'COUNT', 1);
      // An answer from a connection that has since been replaced says nothing about the new one.
      if (signal.aborted) return 0;
      this.streamSeq = last.length === 0 ? 0 : Number.parseInt(last[0]![0].split('-')[0]!, 10);
    }
    let appended = 0;
    for (;;) {
      if (signal.aborted) return appended;
      const journal = this.services.current('journal');
      if (!journal || journal.durableSeq === this.streamSeq) {
        // Decided in the same turn as the check: an entry published after it appends live, none falls between.
        this.filling = false;
        return appended;
      }
      if (journal.durableSeq < this.streamSeq) {
        // The stream mirrors another ledger (a journal file replaced under the same instance name): the journal is the truth.
        this.log.error({ key, stream: this.streamSeq, journal: journal.durableSeq }, `Redis stream ${key} ends at entry ${this.streamSeq} but the journal at ${journal.durableSeq}: rebuilding the stream from the journal`);
        await this.client.del(key);
        this.streamSeq = 0;
        if (signal.aborted) return appended;
      }
      let entries: JournalEntry[];
      try {
        entries = await journal.entriesSince(this.streamSeq);
        if (entries.length === 0) throw new Error(`durable up to ${journal.durableSeq} but no entry after ${this.streamSeq}`);
      } catch (error) {
        if (signal.aborted) return appended;
        // A journal replaced meanwhile (the journal actor restarted): read the new one.
        if (this.services.current('journal') !== journal) continue;
        this.log.error({ err: (error as Error).message, key, stream: this.streamSeq }, `cannot read the journal to fill ${key}: ${(error as Error).message}`);
        this.filling = false;
        return appended;
      }
      if (signal.aborted) return appended;
      for (let from = 0; from < entries.length; from += STREAM_BATCH) {
        const batch = entries.slice(from, from + STREAM_BATCH);
        const p = this.client.pipeline();
        for (const entry of batch) {
          if (entry.seq !== this.streamSeq + 1) throw new Error(`journal entry ${entry.seq} follows ${this.streamSeq}: the journal has a gap`);
          p.xadd(key, `${entry.seq}-1`, 'r', encode(entry.record));
          this.streamSeq = entry.seq;
        }
        this.stats.sent++;
        throwFirst(await p.exec());
        if (signal.aborted) return appended;
        appended += batch.length;
        this.stats.journalEntries += batch.length;
      }
    }
  }

  /** Fills the stream from the journal outside a resync (a gap, a refused XADD, a new journal). */
  private catchUp(readStream: boolean): void {
    const session = this.session;
    if (this.filling || !session) return;
    this.filling = true;
    this.fillStream(session.signal, readStream).catch((error: unknown) => {
      if (session.signal.aborted) return;
      this.filling = false;
      this.events?.failed(new Error(`Redis at ${this.url}: cannot append the journal to ${this.keys.journal}: ${(error as Error).message}`, { cause: error }));
    });
  }
}

const STREAM_BATCH = 1_000;
/** ioredis's words for a command that never reached a socket. */
const CONNECTION_GONE = /Stream isn't writeable|Connection is closed/;

function throwFirst(results: [Error | null, unknown][] | null): void {
  if (!results) throw new Error('transaction aborted');
  for (const [error] of results) if (error) throw error;
}
