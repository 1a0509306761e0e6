/**
 * The Redis mirror: chosen bus topics, the journal and the positions, copied
 * to Redis for outside readers (dashboards, notebooks, other services).
 * Redis is a window on the daemon, never its memory: nothing here is read
 * back, and losing Redis loses nothing the journal does not hold. The keys
 * and what each message becomes are in `encoding.ts`.
 *
 * Writes are fire and forget: a pipeline per message (MSET latest and
 * timestamp, PUBLISH), never awaited on the hot path; a failed write is
 * counted (`stats.failed`). The client must have `enableOfflineQueue: false`
 * and `maxRetriesPerRequest: 0` (see `redisClientOptions`): while Redis is
 * down a command fails at once instead of piling up in memory, and a
 * command in flight when the connection drops is rejected, not resent out
 * of order after the resync.
 *
 * Status, on the state topic `redis.status`: `connected`, `down` (published in the
 * event handler that saw the connection go: the risk gate halts in that
 * call), `resyncing` (Redis answers again but the mirror is stale until the
 * resync ends). While down nothing is sent and messages are counted as
 * `missed`; the bridge only remembers the newest message of every topic
 * (a reference: reused frames hold their newest values). On reconnect it
 * rewrites every latest key (with the time the daemon saw that value, so old
 * data does not look fresh), the positions hash, and appends the journal
 * stream's missing tail from the journal itself (XREVRANGE for the last id,
 * then `entriesSince`). Ids make the stream exact and idempotent: entry N
 * is `N-1`, whatever was or was not written before.
 *
 * A half-open connection (Redis hung) is caught by a PING watchdog: no answer
 * within `pingTimeoutMs` counts as down and the socket is dropped and
 * reconnected.
 */
import type { ChainableCommander, Redis, RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import type { Bus } from '../bus.js';
import type { ServiceLookup } from '../services.js';
import { JOURNAL_RECORD_TOPIC, PORTFOLIO_TOPIC, REDIS_STATUS_TOPIC, type TopicName } from '../topics.js';
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

/**
 * Client options the bridge relies on: commands fail at once while Redis is
 * down (no offline queue, no retry of a command in flight), reconnects
 * forever with a backoff capped at `maxBackoffMs`.
 */
export function redisClientOptions(connectTimeoutMs: number, maxBackoffMs = 1_000): RedisOptions {
  return {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    connectTimeout: connectTimeoutMs,
    retryStrategy: (attempt: number) => Math.min(maxBackoffMs, 50 * 2 ** Math.min(attempt - 1, 10)),
  };
}

export interface RedisBridgeOptions {
  /** An ioredis client created with `redisClientOptions` and not connected yet. */
  readonly client: Redis;
  readonly bus: Bus;
  /** Where the journal is found, and when a new one is provided. */
  readonly services: ServiceLookup;
  readonly instance: string;
  readonly clock: Clock;
  readonly log: Logger;
  /** For the status and logs (redacted here). */
  readonly url: string;
  /** Bus topics to mirror (default MIRRORED_TOPICS); `journal.record` mirrors the journal. */
  readonly topics?: readonly TopicName[];
  /** Liveness probe period and limit, ms. */
  readonly pingMs?: number;
  readonly pingTimeoutMs?: number;
  /** Something the bridge cannot fix by reconnecting (a resync refused while Redis answers): fails the component. */
  readonly onError: (error: unknown) => void;
}

export interface BridgeStats {
  /** Pipelines and commands issued, and writes Redis refused or that were lost with the connection. */
  sent: number;
  failed: number;
  resyncs: number;
  /** Journal entries appended to the stream. */
  journalEntries: number;
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
  private readonly onError: (error: unknown) => void;
  /** Every mirror, the journal channels' included (for the resync). */
  private readonly mirrors: Mirror[] = [];
  private readonly journalMirrors = new Map<JournalChannel, Mirror>();
  private readonly mirrorJournal: boolean;
  private readonly pingMs: number;
  private readonly pingTimeoutMs: number;
  private readonly unsubscribe: (() => void)[] = [];
  /** The newest portfolio, for the positions hash at resync. */
  private portfolio: PortfolioView | undefined;
  /** Symbols written to the positions hash (to remove those that leave the view). */
  private readonly positionSymbols = new Set<string>();

  private status: RedisStatus;
  private phase: 'starting' | 'running' | 'stopped' = 'starting';
  /** The connection answers commands. */
  private ready = false;
  /** Bumped on every new connection and every loss: async work of an older one stops. */
  private generation = 0;
  private lastError: string | undefined;
  private downAt = NaN;
  /** Topics that had a message while down. */
  private readonly touched = new Set<string>();
  /** The highest journal seq in the stream (or issued on this connection, in order). */
  private streamSeq = 0;
  /**
   * The stream is not known complete on this connection (a resync under
   * way) or is being filled from the journal: no live XADD, no second fill.
   */
  private filling = false;
  private pingTimer: unknown;
  private pingSentAt = NaN;
  private failureLoggedAt = -Infinity;
  private firstSync: { resolve: () => void; reject: (e: unknown) => void } | undefined;

  constructor(options: RedisBridgeOptions) {
    const { client, bus, instance, clock, log } = options;
    this.client = client;
    this.bus = bus;
    this.services = options.services;
    this.clock = clock;
    this.log = log;
    this.url = redactUrl(options.url);
    this.keys = redisKeys(instance);
    this.onError = options.onError;
    this.pingMs = options.pingMs ?? 1_000;
    this.pingTimeoutMs = options.pingTimeoutMs ?? 3_000;
    const topics = [...new Set(options.topics ?? MIRRORED_TOPICS)];
    this.mirrorJournal = topics.includes(JOURNAL_RECORD_TOPIC);
    this.status = { state: 'down', reason: 'connecting', since: clock.wallNow(), missed: 0, url: this.url };
    const mirror = (topic: string): Mirror => {
      const m: Mirror = { topic, channel: this.keys.channel(topic), latest: this.keys.latest(topic), timestamp: this.keys.timestamp(topic), newest: null, seenAt: NaN };
      this.mirrors.push(m);
      return m;
    };
    const watch = <K extends TopicName>(topic: K) => {
      const m = mirror(topic);
      const encode = encoderFor(topic);
      const retained = bus.latest(topic);
      // A state retained before the bridge started is written at the first sync, as seen now.
      if (retained !== undefined) m.newest = (at) => encode(retained, at);
      this.unsubscribe.push(bus.subscribe(topic, (message) => this.onMessage(m, (at) => encode(message, at))));
    };
    for (const topic of topics) if (topic !== JOURNAL_RECORD_TOPIC && topic !== PORTFOLIO_TOPIC) watch(topic);
    if (topics.includes(PORTFOLIO_TOPIC)) {
      const m = mirror(PORTFOLIO_TOPIC);
      const encode = encoderFor(PORTFOLIO_TOPIC);
      const follow = (view: PortfolioView) => {
        this.portfolio = view;
        m.newest = (at) => encode(view, at);
      };
      const retained = bus.latest(PORTFOLIO_TOPIC);
      if (retained) follow(retained);
      this.unsubscribe.push(
        bus.subscribe(PORTFOLIO_TOPIC, (view) => {
          follow(view);
          const p = this.write(m, m.newest!);
          if (!p) return;
          this.writePositions(p, view);
          this.send(p, -1);
        }),
      );
    }
    if (this.mirrorJournal) {
      for (const channel of new Set(Object.values(JOURNAL_CHANNELS))) this.journalMirrors.set(channel, mirror(channel));
      this.unsubscribe.push(
        bus.subscribe(JOURNAL_RECORD_TOPIC, (entry) => this.onJournalEntry(entry)),
        // A journal that (re)starts may hold entries the stream lacks.
        this.services.onProvided('journal', () => this.catchUp(false)),
      );
    }
    client.on('ready', this.onReady);
    client.on('close', this.onClose);
    client.on('end', this.onClose);
    client.on('error', this.onClientError);
  }

  /**
   * Connects and makes the first full sync; resolves once the mirror is
   * complete and `connected` is published. Rejects, naming the URL and the
   * last error, when that has not happened within `timeoutMs` (the client
   * is then disconnected).
   */
  start(timeoutMs: number): Promise<void> {
    const synced = new Promise<void>((resolve, reject) => (this.firstSync = { resolve, reject }));
    let timer: unknown;
    const timeout = new Promise<never>((_, reject) => {
      timer = this.clock.setTimeout(() => {
        const why = this.lastError ?? `status ${this.client.status}`;
        reject(new Error(`Redis at ${this.url} is not reachable: no connection within ${timeoutMs} ms (${why})`));
      }, timeoutMs);
    });
    // A failed first attempt rejects connect(); the client keeps retrying and 'ready' is what counts.
    this.client.connect().catch(() => undefined);
    return Promise.race([synced, timeout]).then(
      () => this.clock.clearTimeout(timer),
      (error: unknown) => {
        this.clock.clearTimeout(timer);
        this.stop('the redis component failed to start');
        this.client.disconnect();
        throw error;
      },
    );
  }

  /** Stops mirroring and reports Redis as down (the mirror is no longer kept). The caller closes the client. */
  stop(reason = 'the redis component stopped'): void {
    if (this.phase === 'stopped') return;
    const wasStarting = this.phase === 'starting';
    this.phase = 'stopped';
    this.ready = false;
    this.generation++;
    this.clock.clearTimeout(this.pingTimer);
    for (const u of this.unsubscribe) u();
    this.client.off('ready', this.onReady);
    this.client.off('close', this.onClose);
    this.client.off('end', this.onClose);
    // Keep listening for errors: an unheard 'error' is printed by ioredis.
    if (!wasStarting) this.publishStatus('down', reason, 0);
  }

  // --- connection events -----------------------------------------------------

  private readonly onClientError = (error: Error): void => {
    this.lastError = error.message;
    // An error on a live connection is a lost connection: drop it, ioredis reconnects.
    if (this.ready) {
      this.lost(`Redis error: ${error.message}`);
      this.client.disconnect(true);
    }
  };

  private readonly onClose = (): void => {
    if (this.ready) this.lost(this.lastError ? `connection lost (${this.lastError})` : 'connection closed');
  };

  /** The ready connection is gone: its async work stops; while running, `down` is published. */
  private lost(reason: string): void {
    this.ready = false;
    this.generation++;
    this.clock.clearTimeout(this.pingTimer);
    this.pingSentAt = NaN;
    if (this.phase !== 'running') return;
    // A resync cut short is the same outage: it keeps its start and count.
    if (Number.isNaN(this.downAt)) this.downAt = this.clock.now();
    const missed = this.status.state === 'resyncing' ? this.status.missed : 0;
    this.publishStatus('down', reason, missed);
    this.log.error({ reason, url: this.url }, `Redis unreachable: ${reason}; mirroring paused`);
  }

  private readonly onReady = (): void => {
    if (this.phase === 'stopped') return;
    this.ready = true;
    this.lastError = undefined;
    const generation = ++this.generation;
    // The resync fills the stream; live entries wait for it.
    this.filling = this.mirrorJournal;
    if (this.phase === 'running') {
      const downMs = this.clock.now() - this.downAt;
      this.publishStatus('resyncing', `Redis answers again after ${Math.round(downMs)} ms: rewriting the mirror`, this.status.missed);
    }
    this.resync(generation).then(
      (done) => {
        if (generation !== this.generation) return;
        this.stats.resyncs++;
        this.schedulePing();
        if (this.phase === 'starting') {
          this.phase = 'running';
          this.publishStatus('connected', 'connected', 0);
          this.log.info({ url: this.url, ...done }, `mirroring to Redis at ${this.url}: ${done.topics} latest values, ${done.positions} positions, ${done.journalEntries} journal entries written`);
          this.firstSync?.resolve();
          return;
        }
        const downMs = Math.round(this.clock.now() - this.downAt);
        const missed = this.status.missed;
        const touched = [...this.touched];
        this.downAt = NaN;
        this.touched.clear();
        this.publishStatus('connected', `resynced after ${downMs} ms down`, missed);
        this.log.info(
          { downMs, missed, touched, ...done },
          `Redis back after ${(downMs / 1000).toFixed(1)} s down: resynced ${done.topics} latest values, ${done.positions} positions and ${done.journalEntries} journal entries (${missed} messages missed while down)`,
        );
      },
      (error: unknown) => {
        // Lost again mid-resync: the next 'ready' starts over.
        if (generation !== this.generation || this.phase === 'stopped') return;
        const failure = new Error(`Redis at ${this.url}: resync failed: ${(error as Error).message}`, { cause: error });
        if (this.phase === 'starting') this.firstSync?.reject(failure);
        else this.onError(failure);
      },
    );
  };

  // --- messages ----------------------------------------------------------------

  /**
   * Remembers the message for the resync and, while Redis answers, returns
   * the pipeline that writes it. Encoded here, in the bus handler, because
   * producers reuse their frames.
   */
  private write(m: Mirror, newest: (wallAt: number) => Buffer): ChainableCommander | undefined {
    const wallAt = this.clock.wallNow();
    m.newest = newest;
    m.seenAt = wallAt;
    if (!this.ready) {
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
    if (this.phase !== 'running') return;
    this.status.missed++;
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
    if (!this.ready || this.client.status !== 'ready') return;
    // The socket is gone before ioredis has said so ('close' comes a tick later): that is the loss.
    if (CONNECTION_GONE.test(error.message)) {
      this.lost(`connection lost (${error.message})`);
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

  /** Every latest value and the positions, then the journal stream's missing tail. */
  private async resync(generation: number): Promise<{ topics: number; positions: number; journalEntries: number }> {
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
    if (generation !== this.generation || !this.mirrorJournal) return { topics, positions, journalEntries: 0 };
    return { topics, positions, journalEntries: await this.fillStream(generation, true) };
  }

  /**
   * Appends what the journal holds beyond the stream, in order, until the
   * stream has caught up; then live entries append one by one. Redis
   * refusing an append throws (the component fails); the journal failing
   * to read is the journal's own failure: logged, and tried again on the
   * next entry or the next journal.
   */
  private async fillStream(generation: number, readStream: boolean): Promise<number> {
    const key = this.keys.journal;
    if (readStream) {
      const last = await this.client.xrevrange(key, '+', '-', 'COUNT', 1);
      // An answer from a connection that has since been replaced says nothing about the new one.
      if (generation !== this.generation) return 0;
      this.streamSeq = last.length === 0 ? 0 : Number.parseInt(last[0]![0].split('-')[0]!, 10);
    }
    let appended = 0;
    for (;;) {
      if (generation !== this.generation) return appended;
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
        if (generation !== this.generation) return appended;
      }
      let entries: JournalEntry[];
      try {
        entries = await journal.entriesSince(this.streamSeq);
        if (entries.length === 0) throw new Error(`durable up to ${journal.durableSeq} but no entry after ${this.streamSeq}`);
      } catch (error) {
        if (generation !== this.generation) return appended;
        // A journal replaced meanwhile (the journal actor restarted): read the new one.
        if (this.services.current('journal') !== journal) continue;
        this.log.error({ err: (error as Error).message, key, stream: this.streamSeq }, `cannot read the journal to fill ${key}: ${(error as Error).message}`);
        this.filling = false;
        return appended;
      }
      if (generation !== this.generation) return appended;
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
        if (generation !== this.generation) return appended;
        appended += batch.length;
        this.stats.journalEntries += batch.length;
      }
    }
  }

  /** Fills the stream from the journal outside a resync (a gap, a refused XADD, a new journal). */
  private catchUp(readStream: boolean): void {
    if (this.filling || !this.ready) return;
    this.filling = true;
    const generation = this.generation;
    this.fillStream(generation, readStream).catch((error: unknown) => {
      if (generation !== this.generation || this.phase === 'stopped') return;
      this.filling = false;
      this.onError(new Error(`Redis at ${this.url}: cannot append the journal to ${this.keys.journal}: ${(error as Error).message}`, { cause: error }));
    });
  }

  // --- liveness ----------------------------------------------------------------

  private schedulePing(): void {
    this.clock.clearTimeout(this.pingTimer);
    this.pingTimer = this.clock.setTimeout(this.ping, this.pingMs);
  }

  private readonly ping = (): void => {
    if (!this.ready || this.phase === 'stopped') return;
    const now = this.clock.now();
    if (!Number.isNaN(this.pingSentAt)) {
      if (now - this.pingSentAt > this.pingTimeoutMs) {
        this.lost(`no answer to PING for ${Math.round(now - this.pingSentAt)} ms`);
        this.client.disconnect(true);
        return;
      }
    } else {
      const generation = this.generation;
      this.pingSentAt = now;
      this.client.ping().then(
        () => {
          if (generation === this.generation) this.pingSentAt = NaN;
        },
        () => undefined,
      );
    }
    this.schedulePing();
  };

  private publishStatus(state: RedisState, reason: string, missed: number): void {
    this.status = { state, reason, since: this.clock.wallNow(), missed, url: this.url };
    this.bus.retain(REDIS_STATUS_TOPIC, this.status);
  }
}

const STREAM_BATCH = 1_000;
/** ioredis's words for a command that never reached a socket. */
const CONNECTION_GONE = /Stream isn't writeable|Connection is closed/;

function throwFirst(results: [Error | null, unknown][] | null): void {
  if (!results) throw new Error('transaction aborted');
  for (const [error] of results) if (error) throw error;
}
