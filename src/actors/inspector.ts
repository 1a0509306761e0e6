/**
 * inspector: the daemon's HTTP + WebSocket window on the actor tree, its
 * health, metrics, features, positions and orders, with token-guarded
 * control (src/inspector/). Loopback only unless `host` says otherwise.
 *
 * It serves the ActorTree the daemon keeps from XState's inspection (so
 * it sees actors that started before it), which is why it needs no
 * dependencies and a restart of it loses nothing.
 *
 * It answers only requests that name it in their Host (the bound address,
 * localhost, an IP address, or `allowedHosts`) and WebSockets from its own
 * page or from programs: a web page elsewhere cannot read the daemon.
 *
 * Its port in use (another keel's inspector) or a token file it cannot
 * write is a permanent failure naming the setting to change.
 */
import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { writeToken } from '../inspector/control.js';
import { InspectorServer, parseHost } from '../inspector/server.js';
import { listenFailure, pathFailure } from '../supervision/permanent.js';
import { serviceLogic } from '../supervision/service.js';
import { INSPECTOR_TOPIC } from '../topics.js';

export const inspectorSettings = z
  .object({
    host: z.string().min(1).default('127.0.0.1'),
    /** 0 picks a free port (logged). */
    port: z.number().int().min(0).max(65535).default(7500),
    /** A fresh token is written here at every daemon start, readable by the owner alone (an inspector-only restart keeps it). */
    tokenFile: z.string().min(1).default('var/inspector.token'),
    /** A fixed token instead of a fresh one (then tokenFile is not written). */
    token: z.string().min(16, 'a fixed token needs at least 16 characters').optional(),
    maxBodyBytes: z.number().int().positive().default(64 * 1024),
    /**
     * Names it is reached by besides its address, localhost and IP
     * addresses (a reverse proxy's, the machine's when bound to 0.0.0.0),
     * `name` or `name:port`. Any other Host is refused (DNS rebinding).
     */
    allowedHosts: z
      .array(z.string().refine((entry) => parseHost(entry) !== null, { error: (issue) => `'${String(issue.input)}' is not a host name: give a name or name:port, such as keel.lan or keel.lan:7500 (no scheme, no path)` }))
      .default([]),
    metrics: z
      .object({
        /**
         * Which instruments get Prometheus series of their own (feature
         * scores, regime, prediction): 'traded', those with a book or a
         * position, the rest counted by status, score, regime and tier, so a
         * scrape stays small at any universe; or 'all', for a small universe
         * (at 5,000 instruments a scrape is then about 5 MB and blocks the
         * daemon for hundreds of milliseconds: npm run bench -- inspector).
         */
        perInstrument: z.enum(['traded', 'all']).default('traded'),
      })
      .strict()
      .default({ perInstrument: 'traded' }),
  })
  .strict();

export type InspectorSettings = z.infer<typeof inspectorSettings>;

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/**
 * The tokens this process wrote, by token file. A restart of the inspector
 * alone (a bug, or restart-actor from a client) keeps the token, so clients
 * holding it are not locked out: the token is reused when the file still
 * holds exactly what this process wrote there. Nothing else is trusted: a
 * file written by another process (an earlier daemon), changed or deleted
 * gets a fresh token, as does a file readable by anyone but its owner
 * (writeToken made it 0600; wider means the token may have leaked). A new daemon process starts with
 * an empty map, so every daemon start still rotates the token.
 */
const written = new Map<string, string>();

function reusedToken(path: string): string | undefined {
  const token = written.get(path);
  if (token === undefined) return undefined;
  try {
    // Readable by anyone but the owner (chmod'ed since): the token may have leaked, so a fresh one.
    if ((statSync(path).mode & 0o077) !== 0) return undefined;
    return readFileSync(path, 'utf8') === `${token}\n` ? token : undefined;
  } catch {
    return undefined;
  }
}

/** The token: the fixed one, the one this process wrote (see `written`), or a fresh one written to tokenFile (a place it cannot be written is permanent). */
function tokenOf(settings: InspectorSettings, id: string): string {
  if (settings.token) return settings.token;
  const path = resolve(settings.tokenFile);
  const reused = reusedToken(path);
  if (reused !== undefined) return reused;
  try {
    const token = writeToken(settings.tokenFile);
    written.set(path, token);
    return token;
  } catch (error) {
    throw pathFailure(error, { doing: `cannot write the inspector token to ${settings.tokenFile}`, setting: `components.${id}.settings.tokenFile`, want: 'a file keel can write' });
  }
}

export const inspectorLogic = serviceLogic<InspectorSettings>(async ({ id, settings, bus, clock, log, instance, need, services, fail }) => {
  const tree = need('inspection');
  const token = tokenOf(settings, id);
  const server = await InspectorServer.start({
    host: settings.host,
    port: settings.port,
    token,
    instance,
    tree,
    bus,
    services,
    clock,
    log,
    maxBodyBytes: settings.maxBodyBytes,
    allowedHosts: settings.allowedHosts,
    perInstrument: settings.metrics.perInstrument,
    // A bug met while serving a client fails this component (restarted by its supervisor), never the daemon.
    fail,
  }).catch((error: unknown) => {
    throw listenFailure(error, {
      what: 'the inspector port',
      host: settings.host,
      port: settings.port,
      setting: `components.${id}.settings.port (0 picks a free one)`,
      holder: "another keel's inspector?",
    });
  });
  if (!LOOPBACK.has(settings.host)) log.warn({ host: settings.host }, `inspector bound to ${settings.host}: reachable from other machines (control still needs the token)`);
  bus.retain(INSPECTOR_TOPIC, { url: server.url });
  log.info({ url: server.url, tokenFile: settings.token ? undefined : settings.tokenFile }, `inspector listening on ${server.url}`);
  return { stop: () => server.close() };
});
