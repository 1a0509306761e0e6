/**
 * A shard worker's ownership loop. Every round (default each second):
 *
 *   1. renew the lease of every shard it holds; a refused renewal, or none
 *      that succeeded for a whole TTL, means the shard is lost: the caller is
 *      told at once (its commits would be FENCED anyway);
 *   2. heartbeat, which also lists the live workers (membership.ts);
 *   3. compute its share (assignment.ts); hand back the shards that left it,
 *      once the caller has finished its in-flight batch (the lease is
 *      renewed until then), and try to take the shards that joined it.
 *
 * A dead worker stops renewing and heartbeating, so after the TTL its leases
 * have expired and the survivors' shares no longer count it: its shards move
 * within the TTL plus one round. The heartbeat's TTL is the lease's, so the
 * survivors never wait on one after the other has run out.
 *
 * Rounds keep a fixed rate on the Clock; one that overruns (a slow Redis) is
 * not overlapped, but the next still drops leases whose TTL has run out
 * unrenewed.
 */
import type { Clock } from '../clock.js';
import { shareOf } from './assignment.js';
import { FencedShard, FENCED, type FencedShardOptions, type TakeOver } from './fenced.js';
import { acquireLease, releaseLease, renewLease } from './lease.js';
import { heartbeat, leave } from './membership.js';
import type { RedisClient } from './scripts.js';
import { DEFAULT_SHARD_COUNT, shardKeys, workersKey } from './shards.js';

export const DEFAULT_LEASE_TTL_MS = 3_000;
export const DEFAULT_ROUND_MS = 1_000;

/**
 * Why a shard is no longer the caller's:
 * - `lost`: its lease may have passed to another worker: stop at once;
 * - `rebalanced`: it left this worker's share: finish the in-flight batch, then settle the returned promise;
 * - `stopped`: the owner is stopping cleanly: the same.
 */
export type LostReason = 'lost' | 'rebalanced' | 'stopped';

export interface ShardOwnerOptions {
  readonly client: RedisClient;
  readonly clock: Clock;
  readonly instance: string;
  readonly worker: string;
  readonly shardCount?: number;
  /** Lease and heartbeat TTL (default 3 s). */
  readonly leaseTtlMs?: number;
  /** How often to renew, heartbeat and rebalance (default 1 s). */
  readonly roundMs?: number;
  readonly fenced?: FencedShardOptions;
  /** The shard is ours: process `takeOver.pending` first, then read and commit through `shard`. */
  onGained(shard: FencedShard, takeOver: TakeOver): void;
  /** Called once for each shard gained; for `rebalanced` and `stopped` the lease is released when the returned promise settles. */
  onLost(shard: number, reason: LostReason): void | Promise<void>;
  /** Redis failures and callback errors; the loop goes on. */
  onError?(error: unknown): void;
}

interface Held {
  readonly shard: FencedShard;
  /** Clock.now() when the last successful renewal was sent: the lease holds at least TTL from then. */
  renewedAt: number;
  /** Set once the shard is being handed back: it is renewed until then, and not reported lost. */
  release?: Promise<void>;
}

export class ShardOwner {
  private readonly shardCount: number;
  private readonly ttlMs: number;
  private readonly roundMs: number;
  private readonly key: string;
  private readonly held = new Map<number, Held>();
  private timer: unknown;
  private round: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly options: ShardOwnerOptions) {
    this.shardCount = options.shardCount ?? DEFAULT_SHARD_COUNT;
    this.ttlMs = options.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS;
    this.roundMs = options.roundMs ?? DEFAULT_ROUND_MS;
    this.key = workersKey(options.instance);
    // Two rounds per TTL at least: one late round must not cost the leases.
    if (!(this.roundMs > 0 && this.ttlMs >= 2 * this.roundMs)) throw new Error(`shard owner ${options.worker}: the lease ttl (${this.ttlMs} ms) must be at least two rounds (${this.roundMs} ms)`);
  }

  /** The shards this worker holds now, ascending (including those being handed back). */
  owned(): number[] {
    return [...this.held.keys()].sort((a, b) => a - b);
  }

  start(): void {
    this.timer = this.options.clock.setTimeout(() => this.tick(), 0);
  }

  /** Stops the rounds, hands every shard back (after its batch, as for a rebalance, for at most a lease's time; no more renewals meanwhile) and leaves. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.options.clock.clearTimeout(this.timer);
    await this.round;
    // A drain that never settles must not hold a stop: after a lease's time, unrenewed, the leases have run out anyway.
    let timer: unknown;
    const drained = Promise.all([...this.held.keys()].map((shard) => this.handBack(shard, 'stopped')));
    await Promise.race([drained, new Promise<void>((resolve) => (timer = this.options.clock.setTimeout(() => resolve(), this.ttlMs)))]);
    this.options.clock.clearTimeout(timer);
    await leave(this.options.client, this.key, this.options.worker).catch((error: unknown) => this.report(error));
  }

  private tick(): void {
    if (this.stopped) return;
    // Fixed rate: renewals keep their pace however long a round takes.
    this.timer = this.options.clock.setTimeout(() => this.tick(), this.roundMs);
    this.dropExpired();
    if (this.round) return;
    this.round = this.runRound()
      .catch((error: unknown) => this.report(error))
      .finally(() => (this.round = undefined));
  }

  private async runRound(): Promise<void> {
    await this.renew();
    const live = await heartbeat(this.options.client, this.key, this.options.worker, this.ttlMs);
    if (this.stopped) return;
    const share = new Set(shareOf(this.options.worker, live, this.shardCount));
    for (const shard of this.held.keys()) if (!share.has(shard)) void this.handBack(shard, 'rebalanced');
    // A shard still held by another worker (a dead one until its TTL, a live one until it hands it back) is tried again next round.
    await Promise.all([...share].filter((shard) => !this.held.has(shard)).map((shard) => this.acquire(shard)));
  }

  private async renew(): Promise<void> {
    const sentAt = this.options.clock.now();
    let failure: unknown;
    await Promise.all(
      [...this.held].map(async ([shard, held]) => {
        const renewed = await renewLease(this.options.client, held.shard.lease, this.ttlMs).catch((error: unknown) => {
          failure = error;
          return undefined;
        });
        if (this.held.get(shard) !== held) return;
        if (renewed) held.renewedAt = sentAt;
        // Refused: expired or taken. Unanswered: dropExpired decides once the TTL has run out.
        else if (renewed === false) this.lose(shard, held);
      }),
    );
    if (failure !== undefined) this.report(failure);
  }

  /** Leases not renewed for a whole TTL may belong to someone else by now. */
  private dropExpired(): void {
    const now = this.options.clock.now();
    for (const [shard, held] of this.held) if (now - held.renewedAt >= this.ttlMs) this.lose(shard, held);
  }

  private lose(shard: number, held: Held): void {
    this.held.delete(shard);
    if (!held.release) void this.notify(shard, 'lost');
  }

  private handBack(shard: number, reason: 'rebalanced' | 'stopped'): Promise<void> {
    const held = this.held.get(shard);
    if (!held) return Promise.resolve();
    held.release ??= this.notify(shard, reason).then(async () => {
      if (this.held.get(shard) !== held) return; // lost while the caller finished: nothing left to release
      this.held.delete(shard);
      await releaseLease(this.options.client, held.shard.lease).catch((error: unknown) => this.report(error));
    });
    return held.release;
  }

  private async acquire(shard: number): Promise<void> {
    const { client, clock, worker } = this.options;
    const sentAt = clock.now();
    const lease = await acquireLease(client, shardKeys(this.options.instance, shard, this.shardCount), worker, this.ttlMs);
    if (!lease) return;
    const fenced = new FencedShard(client, lease, this.options.fenced);
    const taken = await fenced.takeOver();
    if (taken === FENCED) return; // it expired during the take-over: tried again next round
    if (this.stopped) {
      await releaseLease(client, lease);
      return;
    }
    // Dated from before the acquisition: a take-over that outlived the TTL is dropped as lost next round.
    this.held.set(shard, { shard: fenced, renewedAt: sentAt });
    this.options.onGained(fenced, taken);
  }

  /** Calls onLost; its errors are reported, never thrown into the loop. */
  private async notify(shard: number, reason: LostReason): Promise<void> {
    try {
      await this.options.onLost(shard, reason);
    } catch (error) {
      this.report(error);
    }
  }

  private report(error: unknown): void {
    this.options.onError?.(error);
  }
}
