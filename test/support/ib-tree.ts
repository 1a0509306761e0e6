/** The children every tree on the simulator starts with. */
import { join } from 'node:path';
import { ibConnectionSettings } from '../../src/actors/ib-connection.js';
import { journalSettings } from '../../src/actors/journal.js';
import { componentSpec } from '../../src/actors/registry.js';
import type { ChildSpec } from '../../src/supervision/spec.js';

/**
 * The journal and an ib_connection to `port` that reconnects within 100 ms,
 * their files in `dir` under `name` (the same name is the same keel after a
 * restart): the first two children of a tree on the simulator.
 */
export function journalAndConnection(dir: string, name: string, port: number): ChildSpec[] {
  return [
    componentSpec('journal', 'journal', { settings: journalSettings.parse({ path: join(dir, `${name}.journal`) }) }),
    componentSpec('ib_connection', 'ib_connection', {
      settings: ibConnectionSettings.parse({ port, reconnect: { minMs: 50, maxMs: 100, randomFactor: 0.2, maxAttempts: 0 }, orderIdFile: join(dir, `${name}.ids`) }),
      dependsOn: ['journal'],
    }),
  ];
}
