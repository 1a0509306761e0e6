/**
 * A private redis-server for a test: its own free port on loopback, its own
 * directory, no RDB snapshots. It can be stopped (SIGTERM), killed
 * (SIGKILL) and started again on the same port and directory, so a test
 * can take Redis away under a running daemon and bring it back.
 *
 * With `appendonly: false` (the default) a restarted server starts empty,
 * which makes a client's resync observable.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { Redis } from 'ioredis';

export interface TestRedis {
  readonly port: number;
  readonly url: string;
  /** SIGTERM, then waits for the exit. */
  stop(): Promise<void>;
  /** SIGKILL, then waits for the exit: Redis vanishes without a goodbye. */
  kill(): Promise<void>;
  /** SIGSTOP: the server hangs with its sockets open (a half-open connection for clients). */
  pause(): void;
  /** SIGCONT after pause. */
  resume(): void;
  /** Starts again on the same port and directory (after stop or kill), and waits until it answers PING. */
  restart(): Promise<void>;
  /** Stops it if running and removes its directory. */
  dispose(): Promise<void>;
}

/** A port nothing listens on right now: listen on 0, read it, close. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  server.close();
  await once(server, 'close');
  return port;
}

/** One raw PING over a fresh socket: true once the server answers +PONG. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let answer = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      answer += chunk.toString();
      if (answer.includes('\r\n')) done(answer.startsWith('+PONG'));
    });
  });
}

let checked = false;
function requireRedisServer(): void {
  if (checked) return;
  const probe = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    throw new Error(`redis-server is not installed or not on PATH (${probe.error?.message ?? `exit ${probe.status}`}): apt-get install redis-server`);
  }
  checked = true;
}

export async function startRedis(options: { appendonly?: boolean } = {}): Promise<TestRedis> {
  requireRedisServer();
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'keel-redis-'));
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', options.appendonly ? 'yes' : 'no', '--dir', dir];
  let child: ChildProcess | undefined;
  let exited: Promise<unknown> = Promise.resolve();
  const output: string[] = [];

  const launch = async () => {
    const proc = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    proc.stdout.on('data', (c: Buffer) => output.push(c.toString()));
    proc.stderr.on('data', (c: Buffer) => output.push(c.toString()));
    let exitCode: number | null | undefined;
    exited = once(proc, 'exit').then(([code]) => {
      exitCode = code as number | null;
      if (child === proc) child = undefined;
    });
    const deadline = Date.now() + 10_000;
    while (!(await ping(port))) {
      if (exitCode !== undefined) throw new Error(`redis-server on port ${port} exited with ${exitCode}: ${output.join('').slice(-2000)}`);
      if (Date.now() > deadline) {
        proc.kill('SIGKILL');
        throw new Error(`redis-server on port ${port} did not answer PING within 10 s: ${output.join('').slice(-2000)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };

  const signal = async (sig: NodeJS.Signals) => {
    const proc = child;
    if (!proc) return;
    // A paused server would not act on SIGTERM until continued.
    if (sig !== 'SIGKILL') proc.kill('SIGCONT');
    proc.kill(sig);
    await exited;
  };

  await launch();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    stop: () => signal('SIGTERM'),
    pause: () => void child?.kill('SIGSTOP'),
    resume: () => void child?.kill('SIGCONT'),
    kill: () => signal('SIGKILL'),
    async restart() {
      if (child) throw new Error(`redis-server on port ${port} is still running: stop or kill it first`);
      await launch();
    },
    async dispose() {
      await signal('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A private redis-server and one ioredis client on it for the whole test
 * file: started before its first test, gone after its last. The client
 * ignores connection errors (a test may take the server away).
 */
export function redisForFile(): { readonly server: TestRedis; readonly client: Redis } {
  const shared = {} as { server: TestRedis; client: Redis };
  before(async () => {
    shared.server = await startRedis();
    shared.client = new Redis(shared.server.url);
    shared.client.on('error', () => undefined);
  });
  after(async () => {
    shared.client.disconnect();
    await shared.server.dispose();
  });
  return shared;
}
