/**
 * inspector: the daemon's HTTP + WebSocket window on the actor tree, its
 * health, metrics, features, positions and orders, with token-guarded
 * control (src/inspector/). Loopback only unless `host` says otherwise.
 *
 * It serves the ActorTree the daemon keeps from XState's inspection (so
 * it sees actors that started before it), which is why it needs no
 * dependencies and a restart of it loses nothing.
 *
 * Its port in use (another keel's inspector) or a token file it cannot
 * write is a permanent failure naming the setting to change.
 */
import { z } from 'zod';
import { writeToken } from '../inspector/control.js';
import { InspectorServer } from '../inspector/server.js';
import { listenFailure, pathFailure } from '../supervision/permanent.js';
import { serviceLogic } from '../supervision/service.js';
import { INSPECTOR_TOPIC } from '../topics.js';

export const inspectorSettings = z
  .object({
    host: z.string().min(1).default('127.0.0.1'),
    /** 0 picks a free port (logged). */
    port: z.number().int().min(0).max(65535).default(7500),
    /** A fresh token is written here at every start, readable by the owner alone. */
    tokenFile: z.string().min(1).default('var/inspector.token'),
    /** A fixed token instead of a fresh one (then tokenFile is not written). */
    token: z.string().min(16, 'a fixed token needs at least 16 characters').optional(),
    maxBodyBytes: z.number().int().positive().default(64 * 1024),
  })
  .strict();

export type InspectorSettings = z.infer<typeof inspectorSettings>;

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/** The token: the fixed one, or a fresh one written to tokenFile (a place it cannot be written is permanent). */
function tokenOf(settings: InspectorSettings, id: string): string {
  if (settings.token) return settings.token;
  try {
    return writeToken(settings.tokenFile);
  } catch (error) {
    throw pathFailure(error, { doing: `cannot write the inspector token to ${settings.tokenFile}`, setting: `components.${id}.settings.tokenFile`, want: 'a file keel can write' });
  }
}

export const inspectorLogic = serviceLogic<InspectorSettings>(async ({ id, settings, bus, clock, log, instance, need, services }) => {
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
