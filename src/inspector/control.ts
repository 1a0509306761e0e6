/**
 * The inspector's control commands and their bearer token. Everything else
 * the inspector serves is read-only; these change the daemon, so each one
 * names who asked in the gate's and the log's records ('inspector').
 *
 * The token is written at start to a file only its owner can read (mode
 * 0600), or fixed in config; a client proves it can read that file.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, writeFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { makeDirectorySync } from '../files.js';
import { fileProblem, MAX_MANIFEST_BYTES, READ_TIMEOUT_MS } from '../models/manifest.js';
import type { ServiceLookup } from '../services.js';
import type { RiskGate } from '../trading/risk-gate.js';
import type { ActorTree } from './actor-tree.js';
import { CONTROL_COMMANDS, type ControlCommand } from './protocol.js';

/** A request refused, with the HTTP status and headers that say why (the server answers it as JSON). */
export class RequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'RequestError';
  }
}

/** A fresh random token, written for the owner alone. */
export function writeToken(path: string): string {
  const token = randomBytes(24).toString('base64url');
  // Not a recursive mkdir: under /proc that never returns.
  makeDirectorySync(dirname(path));
  writeFileSync(path, `${token}\n`, { mode: 0o600 });
  // An existing file keeps its old mode through writeFileSync.
  chmodSync(path, 0o600);
  return token;
}

/** Constant-time check of an `Authorization: Bearer <token>` header. */
export function authorized(header: string | undefined, token: string): boolean {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  if (!match) return false;
  const given = Buffer.from(match[1]!);
  const expected = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export function isControlCommand(name: string): name is ControlCommand {
  return Object.hasOwn(CONTROL_COMMANDS, name);
}

const BY = 'inspector';

function optionalString(body: Record<string, unknown>, key: string): string | undefined {
  const value = body[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length === 0 || value.length > 500) throw new RequestError(400, `'${key}' must be a non-empty string of at most 500 characters`);
  return value;
}

function requiredString(body: Record<string, unknown>, key: string, command: string): string {
  const value = optionalString(body, key);
  if (value === undefined) throw new RequestError(400, `${command} needs '${key}': ${CONTROL_COMMANDS[command as ControlCommand]}`);
  return value;
}

function gateOf(services: ServiceLookup): RiskGate {
  const gate = services.current('riskGate');
  if (!gate) throw new RequestError(503, 'no risk gate: is the risk_gate component configured and running?');
  return gate;
}

function registryOf(services: ServiceLookup) {
  const status = services.current('predictor');
  if (!status) throw new RequestError(503, 'no predictor: is the predictor component configured and running?');
  return status.registry;
}

/** The slot named, or the only one there is. */
function slotOf(slots: readonly string[], named: string | undefined): string {
  if (named !== undefined) {
    if (!slots.includes(named)) throw new RequestError(404, `no model slot '${named}' (slots: ${slots.join(', ') || 'none'})`);
    return named;
  }
  if (slots.length === 1) return slots[0]!;
  throw new RequestError(400, `say which 'slot' (slots: ${slots.join(', ') || 'none'})`);
}

/** The body fields an audit line may carry; nothing else from a request is logged. */
const AUDIT_FIELDS = ['reason', 'slot', 'path', 'actor', 'symbol'] as const;
/** Longest value an audit line quotes, characters. */
const AUDIT_MAX_CHARS = 200;

/**
 * The log fields of a control command's audit line: the command as routed
 * (never the body's), then only the known fields, strings only, cut to
 * {@link AUDIT_MAX_CHARS}. A body cannot rename the command or add
 * `msg`, `level` or `time` to the line.
 */
export function auditFields(command: ControlCommand, body: Record<string, unknown>): Record<string, string> {
  const fields: Record<string, string> = { command };
  for (const key of AUDIT_FIELDS) {
    const value = Object.hasOwn(body, key) ? body[key] : undefined;
    if (typeof value === 'string') fields[key] = value.length > AUDIT_MAX_CHARS ? `${value.slice(0, AUDIT_MAX_CHARS)}...` : value;
  }
  return fields;
}

/**
 * Refuses, as a 400 naming the path, a manifest path that is missing, not a
 * regular file (a FIFO would hold a reader until someone writes to it) or
 * over the manifest size limit. Only a stat: it never opens the file.
 */
async function checkManifestPath(path: string): Promise<void> {
  let problem: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`not answered within ${READ_TIMEOUT_MS} ms`)), READ_TIMEOUT_MS)));
    problem = fileProblem(await Promise.race([stat(path), timeout]), MAX_MANIFEST_BYTES);
  } catch (err) {
    problem = `cannot be read: ${err instanceof Error ? err.message : String(err)}`;
  } finally {
    clearTimeout(timer);
  }
  if (problem) throw new RequestError(400, `swap-model: manifest ${path} ${problem}`);
}

/**
 * Carries out one command; the answer is the JSON body of a 200. Afterwards
 * `body` holds only the fields an audit line may carry (see
 * {@link auditFields}), whatever the request sent.
 */
export async function runCommand(
  command: ControlCommand,
  body: Record<string, unknown>,
  deps: { readonly services: ServiceLookup; readonly tree: ActorTree; readonly log: Logger },
): Promise<Record<string, unknown>> {
  try {
    return await carryOut(command, body, deps);
  } finally {
    narrowForAudit(command, body);
  }
}

/**
 * Leaves in `body` only what {@link auditFields} keeps, so a caller that
 * logs the body after the command (`{ command, ...body }`) logs the known
 * fields and nothing a request added (`command`, `msg`, `level`, `time`).
 */
function narrowForAudit(command: ControlCommand, body: Record<string, unknown>): void {
  const kept = auditFields(command, body);
  for (const key of Object.keys(body)) delete body[key];
  for (const key of AUDIT_FIELDS) if (kept[key] !== undefined) body[key] = kept[key];
}

async function carryOut(
  command: ControlCommand,
  body: Record<string, unknown>,
  deps: { readonly services: ServiceLookup; readonly tree: ActorTree; readonly log: Logger },
): Promise<Record<string, unknown>> {
  const { services, tree, log } = deps;
  const reason = optionalString(body, 'reason');
  switch (command) {
    case 'halt': {
      const gate = gateOf(services);
      gate.halt(reason ?? 'halted from the inspector', BY);
      return { state: gate.state, reason: gate.reason };
    }
    case 'resume':
    case 'reduce-only': {
      const gate = gateOf(services);
      const decision = command === 'resume' ? gate.resume(reason ?? 'resumed from the inspector', BY) : gate.reduceOnly(reason ?? 'reduce-only from the inspector', BY);
      if (!decision.ok) throw new RequestError(409, decision.reason);
      return { state: gate.state, reason: gate.reason };
    }
    case 'swap-model': {
      const path = requiredString(body, 'path', command);
      const registry = registryOf(services);
      const slot = slotOf(registry.slotNames(), optionalString(body, 'slot'));
      await checkManifestPath(path);
      log.info({ slot, path }, `model swap requested from the inspector: ${slot} <- ${path}`);
      try {
        return { slot, ...(await registry.swap(slot, path)) };
      } catch (err) {
        throw new RequestError(409, `swap refused: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    case 'rollback-model': {
      const registry = registryOf(services);
      const slot = slotOf(registry.slotNames(), optionalString(body, 'slot'));
      try {
        return { slot, ...registry.rollback(slot) };
      } catch (err) {
        throw new RequestError(409, `rollback refused: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    case 'shadow-model': {
      const path = requiredString(body, 'path', command);
      const registry = registryOf(services);
      const slot = slotOf(registry.slotNames(), optionalString(body, 'slot'));
      await checkManifestPath(path);
      log.info({ slot, path }, `challenger requested from the inspector: ${slot} <- ${path}`);
      try {
        const model = await registry.shadow(slot, path, 1);
        return { slot, live: registry.live(slot).id, challenger: model.id };
      } catch (err) {
        throw new RequestError(409, `shadow refused: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    case 'promote-model': {
      const registry = registryOf(services);
      const slot = slotOf(registry.slotNames(), optionalString(body, 'slot'));
      log.warn({ slot }, `promotion forced from the inspector: ${reason ?? 'no reason given'}`);
      try {
        return { slot, ...registry.promote(slot) };
      } catch (err) {
        throw new RequestError(409, `promotion refused: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    case 'veto-model': {
      const registry = registryOf(services);
      const slot = slotOf(registry.slotNames(), optionalString(body, 'slot'));
      const challenger = registry.shadowOf(slot)?.model.id;
      if (!challenger) throw new RequestError(409, `veto refused: slot ${slot} has no challenger`);
      registry.endShadow(slot, `vetoed from the inspector: ${reason ?? 'no reason given'}`);
      return { slot, vetoed: challenger };
    }
    case 'do-not-exercise': {
      const symbol = requiredString(body, 'symbol', command);
      const trader = services.current('trader');
      if (!trader) throw new RequestError(503, 'no paper trader: is the paper_trader component configured and running?');
      const decision = await trader.doNotExercise(symbol, reason ?? 'contrary instruction from the inspector');
      if (!decision.ok) throw new RequestError(409, decision.reason);
      log.warn({ symbol }, `${symbol}: not to be exercised at its expiry (contrary instruction from the inspector)`);
      return { symbol, doNotExercise: true };
    }
    case 'restart-actor': {
      const actor = requiredString(body, 'actor', command);
      const refused = tree.requestRestart(actor);
      if (refused) throw new RequestError(refused.startsWith('no actor') ? 404 : 409, refused);
      log.warn({ actor }, `restart of ${actor} requested from the inspector`);
      return { actor, restarting: true };
    }
  }
}
