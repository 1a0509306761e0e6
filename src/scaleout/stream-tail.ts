/**
 * Follows a set of streams from their newest entries on, as a reader that
 * takes nothing from anyone: plain XREAD (no consumer group), polled, one
 * read per stream per poll (a Cluster cannot read streams of different
 * slots in one command). Each entry's `b` field goes to `onEntry` in stream
 * order. The trading node tails the shards' outputs (shard_reader) and
 * their market-data tapes (shard_market) this way.
 */
import type { Clock } from '../clock.js';
import { ENTRY_FIELD } from './fenced.js';
import type { RedisClient } from './scripts.js';

type RawEntries = [Buffer, Buffer[]][];

export interface StreamTailOptions {
  readonly client: RedisClient;
  readonly clock: Clock;
  readonly keys: readonly string[];
  readonly pollMs: number;
  /** One entry's body, of stream `keys[n]`; a throw is reported through onSkipped and the tail goes on. */
  onEntry(n: number, body: Buffer): void;
  onSkipped(stream: string, id: string, reason: string): void;
  /** After every poll: whether it read (undefined) or why not. */
  onPoll(failure: string | undefined): void;
}

export class StreamTail {
  private readonly lastIds: string[];
  private stopped = false;
  private timer: unknown;
  private reading: Promise<void> = Promise.resolve();

  constructor(private readonly options: StreamTailOptions) {
    this.lastIds = options.keys.map(() => '0-0');
  }

  /** Delivers the newest `backfill` entries of every stream (0: none, start after the newest), then polls. */
  async start(backfill: number): Promise<void> {
    const { client, keys } = this.options;
    await Promise.all(
      keys.map(async (key, n) => {
        const newest = (await client.xrevrangeBuffer(key, '+', '-', 'COUNT', Math.max(1, backfill))) as unknown as RawEntries;
        if (backfill === 0) this.lastIds[n] = newest[0]?.[0].toString() ?? '0-0';
        else this.take(n, newest.reverse());
      }),
    );
    this.timer = this.options.clock.setTimeout(() => this.poll(), this.options.pollMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.options.clock.clearTimeout(this.timer);
    await this.reading;
  }

  private poll(): void {
    if (this.stopped) return;
    const { client, keys } = this.options;
    this.reading = Promise.all(keys.map((key, n) => client.xreadBuffer('COUNT', 1_000, 'STREAMS', key, this.lastIds[n]!) as Promise<[Buffer, RawEntries][] | null>))
      .then((replies) => {
        replies.forEach((reply, n) => this.take(n, reply?.[0]?.[1] ?? []));
        this.options.onPoll(undefined);
      })
      .catch((error: Error) => this.options.onPoll(error.message))
      .finally(() => {
        if (!this.stopped) this.timer = this.options.clock.setTimeout(() => this.poll(), this.options.pollMs);
      });
  }

  private take(n: number, entries: RawEntries): void {
    for (const [rawId, fields] of entries) {
      const id = rawId.toString();
      this.lastIds[n] = id;
      const at = fields.findIndex((f, i) => i % 2 === 0 && f.toString() === ENTRY_FIELD);
      try {
        if (at < 0) throw new Error('no batch field');
        this.options.onEntry(n, fields[at + 1]!);
      } catch (error) {
        this.options.onSkipped(this.options.keys[n]!, id, (error as Error).message);
      }
    }
  }
}
