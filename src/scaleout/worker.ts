/**
 * A shard worker: the shards its ShardOwner holds, each run by one loop.
 *
 *   take over: restore the pipeline from the checkpoint and re-read the
 *   tape after the checkpoint's last entry (re-computing ticks whose outputs
 *   are committed already: the commit drops those); then read new entries
 *   (a fenced read, polled: Lua cannot block), apply them, and commit each
 *   read's outputs and acks in one fenced script.
 *
 * The checkpoint holds the whole pipeline (about 12 kB an instrument), so
 * it goes with a commit only once per `checkpointEvery` ticks: in the commit
 * that enters a new period of seq + shard, so shards take turns and Redis
 * sees a steady trickle of checkpoints, not a burst every period. A
 * take-over re-computes about that many ticks at most.
 *
 * A FENCED answer ends the loop at once: the lease is someone else's, and
 * what this worker computed since its last commit is dropped (the new
 * holder redoes it from that commit). Any other failure (Redis down,
 * restarted) drops the in-memory pipeline too and starts the shard over
 * from its checkpoint and pending entries while the lease is still ours,
 * so the state never runs ahead of what Redis holds.
 */
import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import { FENCED, idAfter, type FencedShard, type Output, type StreamEntry, type TakeOver } from './fenced.js';
import { decodeTape } from './market-tape.js';
import { encodeOutput } from './shard-output.js';
import { ShardOwner, type LostReason } from './shard-owner.js';
import { HEAD_FIELD, ShardPipeline, type PartsFactory } from './shard-pipeline.js';
import type { RedisClient } from './scripts.js';

export interface ShardWorkerOptions {
  readonly client: RedisClient;
  readonly clock: Clock;
  readonly log: Logger;
  readonly instance: string;
  readonly worker: string;
  readonly shardCount: number;
  readonly leaseTtlMs: number;
  readonly roundMs: number;
  /** Entries per read (and so per commit). */
  readonly readCount: number;
  /** Ticks between checkpoints of a shard (1: every commit). */
  readonly checkpointEvery: number;
  /** Wait after a read that found nothing, doubling while reads stay empty up to `idlePollMs` (a shard without instruments costs one read a second). */
  readonly pollMs: number;
  readonly idlePollMs?: number;
  readonly build: PartsFactory;
}

/** Counters per shard held, for the inspector and metrics. */
export interface ShardRun {
  readonly shard: number;
  /** Last committed tick, and its tape time (epoch ms). */
  seq: number;
  at: number;
  commits: number;
  fenced: number;
  restarts: number;
}

interface Loop {
  readonly run: ShardRun;
  /** The last input entry applied or skipped: a read may hand back ones the re-reading after a take-over took already. */
  consumed: string | null;
  stopped: boolean;
  /** Failing since the last commit: further failures are not news. */
  failing: boolean;
  /** Settles when the loop has finished its in-flight batch and exited. */
  done: Promise<void>;
}

export class ShardWorker {
  private readonly owner: ShardOwner;
  private readonly loops = new Map<number, Loop>();
  /** Entries not keel's, not readable, or behind the last tick applied: acked and skipped (they can never be applied). */
  malformed = 0;

  constructor(private readonly options: ShardWorkerOptions) {
    this.owner = new ShardOwner({
      client: options.client,
      clock: options.clock,
      instance: options.instance,
      worker: options.worker,
      shardCount: options.shardCount,
      leaseTtlMs: options.leaseTtlMs,
      roundMs: options.roundMs,
      onGained: (shard, takeOver) => this.gained(shard, takeOver),
      onLost: (shard, reason) => this.lost(shard, reason),
      onError: (error) => options.log.warn({ err: error instanceof Error ? error.message : String(error) }, 'shard ownership round failed'),
    });
  }

  start(): void {
    this.owner.start();
  }

  async stop(): Promise<void> {
    await this.owner.stop();
  }

  /** The shards held now with their counters. */
  runs(): ShardRun[] {
    return [...this.loops.values()].map((l) => l.run).sort((a, b) => a.shard - b.shard);
  }

  private gained(fenced: FencedShard, takeOver: TakeOver): void {
    const shard = fenced.lease.keys.shard;
    const run: ShardRun = { shard, seq: NaN, at: NaN, commits: 0, fenced: 0, restarts: 0 };
    const loop: Loop = { run, consumed: null, stopped: false, failing: false, done: Promise.resolve() };
    this.loops.set(shard, loop);
    this.options.log.info({ shard, epoch: fenced.lease.epoch, pending: takeOver.pending.length }, `shard ${shard} taken`);
    if (takeOver.deleted.length > 0) this.options.log.error({ shard, entries: takeOver.deleted.length }, `shard ${shard}: ${takeOver.deleted.length} pending entries were trimmed before anyone committed them: that input is lost`);
    loop.done = this.runShard(fenced, takeOver, loop);
  }

  private async lost(shard: number, reason: LostReason): Promise<void> {
    const loop = this.loops.get(shard);
    if (!loop) return;
    loop.stopped = true;
    this.options.log.info({ shard, reason }, `shard ${shard} ${reason === 'lost' ? 'lost' : 'handed back'}`);
    // A rebalance or a stop waits for the in-flight batch to commit; a lost lease does not wait (its commit is fenced anyway).
    if (reason !== 'lost') await loop.done;
    if (this.loops.get(shard) === loop) this.loops.delete(shard);
  }

  private async runShard(fenced: FencedShard, first: TakeOver, loop: Loop): Promise<void> {
    let takeOver: TakeOver | undefined = first;
    while (!loop.stopped) {
      let pipeline: ShardPipeline | undefined;
      try {
        if (!takeOver) {
          const again = await fenced.takeOver();
          if (again === FENCED) return this.fenced(loop, 'take-over');
          takeOver = again;
        }
        loop.consumed = null;
        if (takeOver.checkpoint.has(HEAD_FIELD)) ({ pipeline, input: loop.consumed } = await ShardPipeline.restore(loop.run.shard, takeOver.checkpoint, this.options.build));
        const from = pipeline ? pipeline.seq : null;
        const { committed } = takeOver;
        this.options.log.info({ shard: loop.run.shard, from, committed }, `shard ${loop.run.shard} resumes ${from === null ? 'from the start of its tape' : `after tick ${from}`}${committed === null ? '' : `; its outputs are committed up to tick ${committed}`}`);
        takeOver = undefined;
        // The tape after the checkpoint, acked or not: it includes every entry left pending.
        for (;;) {
          const entries = await fenced.range(loop.consumed, this.options.readCount);
          if (entries.length === 0 || loop.stopped) break;
          const result = await this.apply(fenced, pipeline, entries, loop);
          if (result === FENCED) return this.fenced(loop, 'commit');
          pipeline = result;
        }
        let idle = 0;
        while (!loop.stopped) {
          const entries = await fenced.read(this.options.readCount);
          if (entries === FENCED) return this.fenced(loop, 'read');
          idle = entries.length === 0 ? idle + 1 : 0;
          if (entries.length > 0) {
            const result = await this.apply(fenced, pipeline, entries, loop);
            if (result === FENCED) return this.fenced(loop, 'commit');
            pipeline = result;
          } else await this.sleep(Math.min(this.options.idlePollMs ?? 1_000, this.options.pollMs * 2 ** Math.min(idle - 1, 10)));
        }
      } catch (error) {
        if (loop.stopped) break;
        loop.run.restarts++;
        const line = { shard: loop.run.shard, err: (error as Error).message };
        // Redis down fails every shard's loop every retry: news once per outage and shard.
        if (loop.failing) this.options.log.debug(line, 'still failing');
        else this.options.log.warn(line, `shard ${loop.run.shard}: ${line.err}; starting over from its checkpoint`);
        loop.failing = true;
        await this.sleep(Math.max(this.options.pollMs, 200));
      } finally {
        await pipeline?.close();
      }
    }
  }

  /** Applies a read's entries and commits them together; returns the pipeline they leave (or FENCED). */
  private async apply(fenced: FencedShard, start: ShardPipeline | undefined, entries: readonly StreamEntry[], loop: Loop): Promise<ShardPipeline | undefined | typeof FENCED> {
    let pipeline = start;
    const outputs: Output[] = [];
    const acks: string[] = [];
    const shard = loop.run.shard;
    const every = this.options.checkpointEvery;
    const period = (seq: number) => Math.floor((seq + shard) / every);
    let due = false;
    for (const entry of entries) {
      acks.push(entry.id);
      // Taken already by the re-reading after the take-over: only its ack was missing.
      if (loop.consumed !== null && !idAfter(entry.id, loop.consumed)) continue;
      loop.consumed = entry.id;
      let tape;
      try {
        if (!entry.body) throw new Error('no batch field');
        tape = decodeTape(entry.body);
      } catch (error) {
        this.malformed++;
        this.options.log.error({ shard, id: entry.id, err: (error as Error).message }, `shard ${shard}: entry ${entry.id} skipped: ${(error as Error).message}`);
        continue;
      }
      if (pipeline && tape.seq <= pipeline.seq) {
        // The publisher never has two ticks in flight, so this is a tape written out of order: its events cannot be applied after a newer tick.
        this.malformed++;
        this.options.log.error({ shard, seq: tape.seq, last: pipeline.seq, id: entry.id }, `shard ${shard}: tick ${tape.seq} arrived after tick ${pipeline.seq}: skipped, its events are lost`);
        continue;
      }
      if (!pipeline) pipeline = await ShardPipeline.create(shard, tape.symbols, tape.booked, this.options.build);
      else if (!pipeline.fits(tape)) {
        const before = new Set(pipeline.symbols);
        const joined = tape.symbols.filter((s) => !before.has(s));
        const left = pipeline.symbols.filter((s) => !tape.symbols.includes(s));
        this.options.log.warn({ shard, joined, left }, `shard ${shard}: the data node's instruments changed (${joined.length} joined, ${left.length} left); the others keep their state, feature health starts afresh`);
        const old = pipeline;
        ({ pipeline } = await ShardPipeline.restore(shard, old.checkpoint(entry.id), this.options.build, tape.symbols, tape.booked));
        await old.close();
      }
      // Crossing into a new period, not landing on its first tick: the tape may skip ticks (a late data node).
      if (period(tape.seq) !== period(pipeline.seq)) due = true;
      outputs.push({ seq: tape.seq, body: encodeOutput(await pipeline.apply(tape)) });
    }
    const states = pipeline && due ? pipeline.checkpoint(loop.consumed!) : new Map<string, Buffer>();
    const committed = await fenced.commit({ outputs, states, acks });
    if (committed === FENCED) return FENCED;
    loop.run.commits++;
    loop.failing = false;
    if (pipeline) {
      loop.run.seq = pipeline.seq;
      loop.run.at = pipeline.lastAt;
    }
    return pipeline;
  }

  private fenced(loop: Loop, what: 'take-over' | 'read' | 'commit'): void {
    loop.run.fenced++;
    loop.stopped = true;
    this.options.log.warn({ shard: loop.run.shard, refused: what }, `shard ${loop.run.shard}: ${what} refused (FENCED): the lease is no longer ours`);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.options.clock.setTimeout(resolve, ms));
  }
}
