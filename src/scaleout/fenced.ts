/**
 * A shard's reads and commits, fenced by its lease (lease.ts): each is one
 * Lua script that first checks the lease key still holds the caller's
 * token, and does nothing but answer FENCED when it does not. A worker that
 * paused past its lease can then neither take new entries nor commit what it
 * computed from old ones; its successor redoes that work from the last
 * commit.
 *
 * One commit per batch: the outputs (XADD, trimmed MAXLEN ~), the state
 * checkpoint when the caller has one to write (the hash replaced whole:
 * field -> msgpack blob, one per instrument and a head)
 * and the XACK of the inputs that produced them, in one script, so they land
 * together or not at all. Outputs are never written without their inputs'
 * ack, nor acks without their outputs. Lua cannot BLOCK, so the read takes
 * what is there and the caller polls.
 *
 * Checkpoints may be sparser than commits (a shard's whole state is large;
 * see worker.ts), so a new holder starts from an older state and recomputes
 * ticks whose outputs are already committed. Every output carries its tick
 * (`seq`, rising), the shard's `committed` key holds the last one written,
 * and the commit drops any output at or below it: each tick's output lands
 * once, whoever computed it and however often.
 *
 * Taking a shard over: load its checkpoint and claim every entry still
 * pending in the group (XAUTOCLAIM from 0-0 until the cursor comes back to
 * 0-0: the entries the old holder read and never committed, now ours to
 * ack); then re-read the stream from the checkpoint's last input (`range`,
 * a plain XRANGE: it takes nothing from the group) and go on with new ones.
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

export interface Output {
  /** The tick it is for: rising within a shard. */
  readonly seq: number;
  readonly body: Buffer;
}

export interface Batch {
  /** Output entries in rising `seq`, appended in this order; any at or below the shard's last committed tick is dropped. */
  readonly outputs: readonly Output[];
  /** A new checkpoint, replacing the old one whole (empty: the checkpoint stays as it is): field -> msgpack blob. */
  readonly states: ReadonlyMap<string, Buffer>;
  /** The input entry ids the batch consumed. */
  readonly acks: readonly string[];
}

export interface TakeOver {
  /** The checkpoint's fields as last committed. */
  readonly checkpoint: Map<string, Buffer>;
  /** The last tick whose output is committed (null: none yet). */
  readonly committed: number | null;
  /** Ids of the entries an earlier holder read and never committed, oldest first, now claimed by this holder. */
  readonly pending: string[];
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
-- JUSTID: the caller re-reads the entries with their neighbours (range).
-- Reply: {next cursor, ids, ids of entries no longer in the stream}.
return redis.call('XAUTOCLAIM', KEYS[2], ARGV[2], ARGV[3], 0, ARGV[4], 'COUNT', ARGV[5], 'JUSTID')
`,
};

const COMMIT: LuaScript = {
  name: 'keelShardCommit',
  numberOfKeys: 5,
  lua: `
-- KEYS[1] lease, KEYS[2] input stream, KEYS[3] output stream, KEYS[4] checkpoint hash, KEYS[5] committed tick.
-- ARGV[1] token, ARGV[2] group, ARGV[3] output maxlen, ARGV[4] outputs n, ARGV[5] states m,
-- then n (seq, body) pairs, m (field, state) pairs, and the input ids to ack.
${LEASE_CHECK}
local outputs, states = tonumber(ARGV[4]), tonumber(ARGV[5])
local committed = redis.call('GET', KEYS[5])
local last = committed and tonumber(committed)
local at = 6
-- One call per item: unpack() of a long list would overflow Lua's C stack.
for _ = 1, outputs do
  local seq = tonumber(ARGV[at])
  -- A tick already committed (recomputed from an older checkpoint) is not written twice.
  if not last or seq > last then
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', '${ENTRY_FIELD}', ARGV[at + 1])
    last = seq
    committed = ARGV[at]
  end
  at = at + 2
end
if committed then redis.call('SET', KEYS[5], committed) end
-- A checkpoint replaces the last one whole: no field of an instrument gone from the shard survives it.
if states > 0 then redis.call('DEL', KEYS[4]) end
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

/** Stream ids ('<ms>-<n>') in order: true if `a` comes after `b`. */
export function idAfter(a: string, b: string): boolean {
  const [am, an] = a.split('-').map(Number) as [number, number];
  const [bm, bn] = b.split('-').map(Number) as [number, number];
  return am !== bm ? am > bm : an > bn;
}

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

/** Raw XREADGROUP/XRANGE entries ([id, [field, value, ...]]) to StreamEntry. */
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
    for (const [field, state] of Object.entries(flat)) checkpoint.set(field, state);
    const last = await this.client.get(keys.committed);
    const pending: string[] = [];
    const deleted: string[] = [];
    let cursor = '0-0';
    do {
      const reply = await this.onInput(CLAIM, [keys.lease, keys.input], [token, this.group, worker, cursor, CLAIM_PAGE], true);
      if (reply === 0) return FENCED;
      const [next, ids, gone] = reply as [Buffer, Buffer[], Buffer[]];
      cursor = next.toString();
      for (const id of ids) pending.push(id.toString());
      for (const id of gone) deleted.push(id.toString());
    } while (cursor !== '0-0');
    return { checkpoint, committed: last === null ? null : Number(last), pending, deleted };
  }

  /**
   * Up to `count` entries after `after` (from the first when null), delivered
   * or not: a take-over's re-reading from its checkpoint. Not fenced: it
   * changes nothing, and what is computed from it is committed fenced.
   */
  async range(after: string | null, count: number): Promise<StreamEntry[]> {
    if (!Number.isInteger(count) || count < 1) throw new Error(`${this.lease.keys.input}: range count must be a positive integer, got ${count}`);
    if (after !== null && !STREAM_ID.test(after)) throw new Error(`${this.lease.keys.input}: '${after}' is not a stream id`);
    return toEntries(await this.client.xrangeBuffer(this.lease.keys.input, after === null ? '-' : `(${after}`, '+', 'COUNT', count));
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
    let previous = -Infinity;
    for (const { seq } of batch.outputs) {
      if (!Number.isSafeInteger(seq) || seq < 0 || seq <= previous) throw new Error(`commit to ${keys.output}: output ticks must be rising whole numbers, got ${seq} after ${previous}`);
      previous = seq;
    }
    const args: (string | Buffer | number)[] = [token, this.group, this.outputMaxLen, batch.outputs.length, batch.states.size];
    for (const { seq, body } of batch.outputs) args.push(seq, body);
    for (const [field, state] of batch.states) args.push(field, state);
    args.push(...batch.acks);
    const reply = await runScript(this.client, COMMIT, [keys.lease, keys.input, keys.output, keys.checkpoint, keys.committed], args);
    if (reply === 0) return FENCED;
    if (reply !== 1) throw new Error(`commit to ${keys.output}: unexpected reply ${String(reply)}`);
    return 'committed';
  }
}
