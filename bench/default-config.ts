/**
 * config/default.yaml for benchmarks that run the real tree: its files
 * (journal, order-id high-water mark, inspector token) moved into a
 * directory of the bench's own, so a run never touches var/ or a daemon's.
 * Ports are the caller's to set: never the default 7497/7499/7500.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { parse } from 'yaml';

export interface RawConfig {
  instance: string;
  components: Record<string, { dependsOn?: string[]; settings: Record<string, unknown> }>;
}

export function defaultConfigIn(dir: string): RawConfig {
  const raw = parse(readFileSync('config/default.yaml', 'utf8')) as RawConfig;
  const c = raw.components;
  c.journal!.settings.path = join(dir, 'journal.keel');
  c.ib_connection!.settings.orderIdFile = join(dir, 'order-ids.json');
  if (c.inspector) c.inspector.settings.tokenFile = join(dir, 'inspector.token');
  return raw;
}

/** A port nothing listens on right now, from the OS. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
