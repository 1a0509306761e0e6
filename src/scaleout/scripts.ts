/**
 * The Lua scripts of shard ownership, run through ioredis `defineCommand`:
 * EVALSHA, falling back to EVAL on NOSCRIPT (a restarted Redis, a Cluster
 * node that never saw the script), on a plain client or a Cluster alike.
 * A script is defined on a client the first time it runs there.
 */
import type { Cluster, Redis } from 'ioredis';

export type RedisClient = Redis | Cluster;

export interface LuaScript {
  /** The command name on the client: unique, `keel`-prefixed. */
  readonly name: string;
  readonly numberOfKeys: number;
  readonly lua: string;
}

type ScriptCall = (...args: (string | Buffer | number)[]) => Promise<unknown>;

/**
 * Runs a script with its keys and arguments; `buffers` asks for bulk
 * replies as Buffers (binary stream fields), otherwise strings.
 */
export function runScript(client: RedisClient, script: LuaScript, keys: readonly string[], args: readonly (string | Buffer | number)[], buffers = false): Promise<unknown> {
  if (keys.length !== script.numberOfKeys) throw new Error(`${script.name}: expected ${script.numberOfKeys} keys, got ${keys.length}`);
  const commands = client as unknown as Record<string, ScriptCall | undefined>;
  if (typeof commands[script.name] !== 'function') client.defineCommand(script.name, { lua: script.lua, numberOfKeys: script.numberOfKeys });
  const call = commands[buffers ? `${script.name}Buffer` : script.name]!;
  return call.call(client, ...keys, ...args);
}
