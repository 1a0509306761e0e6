/**
 * A shard's reads and commits, fenced by its lease (lease.ts): each is one
 * Lua script that first checks the lease key still holds the caller's
 * token, and does nothing but answer FENCED when it does not. A worker that
 * paused past its lease can then neither take new entries nor commit what it
 * computed from old ones; its successor redoes that work from the last
 * commit.
 *
 * One commit per batch: the outputs (XADD, trimmed MAXLEN ~), the state
 * checkpoint of the batch's instruments (HSET instrument -> msgpack blob)
 * and the XACK of the inputs that produced them, in one script, so they land
 * together or not at all. Outputs are never written without their inputs'
 * ack, nor acks without their outputs: nothing is doubled or lost on a
 * hand-over. Lua cannot BLOCK, so the read takes what is there and the
 * caller polls.
 *
 * Taking a shard over: load its checkpoint, then claim every entry still
 * pending in the group (XAUTOCLAIM from 0-0 until the cursor comes back to
 * 0-0; these are the entries the old holder read and never committed),
 * process those first, then read new ones.
 *
 * Stream entries carry one field, `b`: a msgpack batch, encoded with the
 * codec of its topic (src/codecs.ts). The consumer group is created from id
 * 0 (so it sees the backlog) whenever Redis answers NOGROUP: a Redis
 * restarted without persistence has lost it.
 */
import { runScript, type LuaScript, type RedisClient } from './scripts.js';
import type { Lease } from './lease.js';

export const FENCED = 'FENCED';
export type Fenced = typeof FENCED;

/** The field every shard stream entry carries its batch in. */
export const ENTRY_FIELD = 'b';
/** The shard workers' consumer group on the input streams. */
export const WORKER_GROUP = 'workers';
/** Output entries kept (approximately) per shard: how far the slowest reader may fall behind. */
export const DEFAULT_OUTPUT_MAXLEN = 100_000;
const STREAM_ID = /^\d+-\d+$/;
/** XAUTOCLAIM page size on take-over. */
const CLAIM_PAGE = 500;

export interface StreamEntry {
  readonly id: string;
  /** The `b` field; null if the entry has none (not written by keel). */
  readonly body: Buffer | null;
}

export interface Batch {
  /** Output entries, appended in this order. */
  readonly outputs: readonly Buffer[];
  /** The state of every instrument the batch changed: instrument -> msgpack blob. */
  readonly states: ReadonlyMap<string, Buffer>;
  /** The input entry ids the batch consumed. */
  readonly acks: readonly string[];
}

export interface TakeOver {
  /** The last committed state per instrument. */
  readonly checkpoint: Map<string, Buffer>;
  /** Entries read by an earlier holder and never committed, oldest first: process these before `read`. */
  readonly pending: StreamEntry[];
  /** Pending ids whose entries were trimmed from the stream before anyone committed them: lost input. */
  readonly deleted: string[];
}

// Every script returns 0 when fenced; the lease check is the first thing each does.
const LEASE_CHECK = `if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end`;

const READ: LuaScript = {
  name: 'keelShardRead',
  numberOfKeys: 2,
  lua: `
-- KEYS[1] lease, KEYS[2] input stream; ARGV[1] token, ARGV[2] group, ARGV[3] consumer, ARGV[4] count.
${LEASE_CHECK}
-- Only new entries ('>'); no BLOCK inside a script.
local reply = redis.call('XREADGROUP', 'GROUP', ARGV[2], ARGV[3], 'COUNT', ARGV[4], 'STREAMS', KEYS[2], '>')
if not reply then return {} end
return reply[1][2]
`,
};

const CLAIM: LuaScript = {
  name: 'keelShardClaim',
  numberOfKeys: 2,
  lua: `
-- KEYS[1] lease, KEYS[2] input stream; ARGV[1] token, ARGV[2] group, ARGV[3] consumer, ARGV[4] cursor, ARGV[5] count.
${LEASE_CHECK}
-- Min idle 0: while the lease is ours, every pending entry of the shard is ours to take.
-- Reply: {next cursor, entries, ids of entries no longer in the stream}.
return redis.call('XAUTOCLAIM', KEYS[2], ARGV[2], ARGV[3], 0, ARGV[4], 'COUNT', ARGV[5])
`,
};

const COMMIT: LuaScript = {
  name: 'keelShardCommit',
  numberOfKeys: 4,
  lua: `
-- KEYS[1] lease, KEYS[2] input stream, KEYS[3] output stream, KEYS[4] checkpoint hash.
-- ARGV[1] token, ARGV[2] group, ARGV[3] output maxlen, ARGV[4] outputs n, ARGV[5] states m,
-- then n output bodies, m (instrument, state) pairs, and the input ids to ack.
${LEASE_CHECK}
local outputs, states = tonumber(ARGV[4]), tonumber(ARGV[5])
local at = 6
-- One call per item: unpack() of a long list would overflow Lua's C stack.
for _ = 1, outputs do
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', '${ENTRY_FIELD}', ARGV[at])
  at = at + 1
end
for _ = 1, states do
  redis.call('HSET', KEYS[4], ARGV[at], ARGV[at + 1])
  at = at + 2
end
-- Last, and it cannot fail: the ids are checked before the call, and XACK of a missing group
-- answers 0 (a group is only lost with the lease).
for i = at, #ARGV do
  redis.call('XACK', KEYS[2], ARGV[2], ARGV[i])
end
return 1
`,
};

/** True for the error Redis answers when the stream or its group is missing. */
function isNoGroup(error: unknown): boolean {
  return error instanceof Error && error.message.includes('NOGROUP');
}

/** Creates the group on the stream (and the stream) from id 0, if missing. */
export async function ensureGroup(client: RedisClient, stream: string, group: string): Promise<void> {
  try {
    await client.xgroup('CREATE', stream, group, '0', 'MKSTREAM');
  } catch (error) {
    if (!(error instanceof Error && error.message.startsWith('BUSYGROUP'))) throw error;
  }
}

/** Raw XREADGROUP/XAUTOCLAIM entries ([id, [field, value, ...]]) to StreamEntry. */
function toEntries(raw: unknown): StreamEntry[] {
  return (raw as [Buffer, Buffer[] | null][]).map(([id, fields]) => {
    let body: Buffer | null = null;
    for (let i = 0; fields && i + 1 < fields.length; i += 2) if (fields[i]!.toString() === ENTRY_FIELD) body = fields[i + 1]!;
    return { id: id.toString(), body };
  });
}

export interface FencedShardOptions {
  /** The consumer group on the input stream (default WORKER_GROUP). */
  readonly group?: string;
  /** MAXLEN ~ of the output stream (default DEFAULT_OUTPUT_MAXLEN). */
  readonly outputMaxLen?: number;
}

/**
 * A held lease's view of its shard: take over, read, commit. The consumer
 * name is the lease's worker id. Renewing the lease is the caller's (lease.ts).
 */
export class FencedShard {
  readonly group: string;
  readonly outputMaxLen: number;

  constructor(
    private readonly client: RedisClient,
    readonly lease: Lease,
    options: FencedShardOptions = {},
  ) {
    this.group = options.group ?? WORKER_GROUP;
    this.outputMaxLen = options.outputMaxLen ?? DEFAULT_OUTPUT_MAXLEN;
    if (!Number.isInteger(this.outputMaxLen) || this.outputMaxLen < 1) throw new Error(`${lease.keys.output}: output maxlen must be a positive integer, got ${this.outputMaxLen}`);
  }

  /** Runs a script on the input stream, recreating the group once if Redis lost it. */
  private async onInput(script: LuaScript, keys: string[], args: (string | number)[], buffers: boolean): Promise<unknown> {
    try {
      return await runScript(this.client, script, keys, args, buffers);
    } catch (error) {
      if (!isNoGroup(error)) throw error;
      await ensureGroup(this.client, this.lease.keys.input, this.group);
      return runScript(this.client, script, keys, args, buffers);
    }
  }

  /** The checkpoint and every entry left pending by earlier holders; FENCED if the lease moved meanwhile. */
  async takeOver(): Promise<TakeOver | Fenced> {
    const { keys, token, worker } = this.lease;
    const checkpoint = new Map<string, Buffer>();
    const flat = await this.client.hgetallBuffer(keys.checkpoint);
    for (const [instrument, state] of Object.entries(flat)) checkpoint.set(instrument, state);
    const pending: StreamEntry[] = [];
    const deleted: string[] = [];
    let cursor = '0-0';
    do {
      const reply = await this.onInput(CLAIM, [keys.lease, keys.input], [token, this.group, worker, cursor, CLAIM_PAGE], true);
      if (reply === 0) return FENCED;
      const [next, entries, gone] = reply as [Buffer, unknown, Buffer[]];
      cursor = next.toString();
      pending.push(...toEntries(entries));
      for (const id of gone) deleted.push(id.toString());
    } while (cursor !== '0-0');
    return { checkpoint, pending, deleted };
  }

  /** Up to `count` entries never delivered to the group, oldest first (none: an empty list); FENCED if the lease moved. */
  async read(count: number): Promise<StreamEntry[] | Fenced> {
    if (!Number.isInteger(count) || count < 1) throw new Error(`${this.lease.keys.input}: read count must be a positive integer, got ${count}`);
    const { keys, token, worker } = this.lease;
    const reply = await this.onInput(READ, [keys.lease, keys.input], [token, this.group, worker, count], true);
    return reply === 0 ? FENCED : toEntries(reply);
  }

  /** Writes a batch's outputs, checkpoint and acks together; FENCED (and nothing written) if the lease moved. */
  async commit(batch: Batch): Promise<'committed' | Fenced> {
    const { keys, token } = this.lease;
    // A malformed id would fail the script after its writes: refused before anything is sent.
    for (const id of batch.acks) if (!STREAM_ID.test(id)) throw new Error(`commit to ${keys.output}: '${id}' is not a stream id of ${keys.input}`);
    const args: (string | Buffer | number)[] = [token, this.group, this.outputMaxLen, batch.outputs.length, batch.states.size, ...batch.outputs];
    for (const [instrument, state] of batch.states) args.push(instrument, state);
    args.push(...batch.acks);
    const reply = await runScript(this.client, COMMIT, [keys.lease, keys.input, keys.output, keys.checkpoint], args);
    if (reply === 0) return FENCED;
    if (reply !== 1) throw new Error(`commit to ${keys.output}: unexpected reply ${String(reply)}`);
    return 'committed';
  }
}
