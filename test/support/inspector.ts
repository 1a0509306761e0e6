/**
 * A supervised tree with the real inspector component on a free port, and a
 * WebSocket client of its stream that keeps every message it gets.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { inspectorSettings } from '../../src/actors/inspector.js';
import { componentSpec } from '../../src/actors/registry.js';
import { systemClock } from '../../src/clock.js';
import type { ServerMessage } from '../../src/inspector/protocol.js';
import type { ChildSpec } from '../../src/supervision/spec.js';
import type { SupervisorSettings } from '../../src/supervision/supervisor.js';
import { until } from './ib-client.js';
import { startTree } from './probe.js';
import { INSPECTOR_TOPIC } from '../../src/topics.js';

export async function startInspected(children: ChildSpec[], settings: Partial<SupervisorSettings> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'keel-inspector-'));
  const tokenFile = join(dir, 'token');
  const inspector = componentSpec('inspector', 'inspector', { settings: inspectorSettings.parse({ port: 0, tokenFile }) });
  const tree = startTree({ ...settings, children: [...children, inspector] }, systemClock);
  await until(() => tree.phase() === 'running', 'the tree running', 10_000);
  const { url } = tree.bus.latest(INSPECTOR_TOPIC)!;
  return {
    ...tree,
    url,
    tokenFile,
    token: readFileSync(tokenFile, 'utf8').trim(),
    async stop() {
      tree.actor.send({ type: 'shutdown' });
      await until(() => tree.done, 'the tree stopped', 10_000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A client of /ws that keeps every message, parsed, in arrival order. */
export class StreamClient {
  readonly messages: ServerMessage[] = [];
  readonly arrivals: number[] = [];
  private readonly ws: WebSocket;
  readonly open: Promise<void>;

  constructor(url: string) {
    this.ws = new WebSocket(`${url.replace(/^http/, 'ws')}/ws`);
    this.ws.on('message', (data) => {
      this.messages.push(JSON.parse(String(data)) as ServerMessage);
      this.arrivals.push(performance.now());
    });
    this.open = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
  }

  of<T extends ServerMessage['type']>(type: T): Extract<ServerMessage, { type: T }>[] {
    return this.messages.filter((m): m is Extract<ServerMessage, { type: T }> => m.type === type);
  }

  send(text: string): void {
    this.ws.send(text);
  }

  async waitFor(what: string, predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
    await until(predicate, what, timeoutMs);
  }

  close(): void {
    this.ws.close();
  }
}

/** POST /api/control/<command>; `token` undefined sends no Authorization header. */
export async function control(url: string, command: string, body: unknown, token: string | undefined) {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${url}/api/control/${command}`, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/**
 * A daemon config for tests that run `keel run` as a child process: the
 * journal, the risk gate and the inspector, plus `more` (YAML lines of
 * further components, indented two spaces) and `supervisor` (YAML block).
 */
export function writeInspectedConfig(
  dir: string,
  options: { instance: string; port: number; tokenFile: string; more?: string; supervisor?: string },
): string {
  const path = join(dir, `${options.instance}.yaml`);
  writeFileSync(
    path,
    `instance: ${options.instance}
log: { level: info }
${options.supervisor ?? ''}components:
  journal:
    kind: journal
    settings: { path: ${join(dir, `${options.instance}.journal.keel`)} }
  risk_gate:
    kind: risk_gate
    dependsOn: [journal]
${options.more ?? ''}  inspector:
    kind: inspector
    settings: { port: ${options.port}, tokenFile: ${options.tokenFile} }
`,
  );
  return path;
}
