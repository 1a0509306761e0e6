/** A real @stoqey/ib client against a simulator, with the waits tests need. */
import { createHash } from 'node:crypto';
import { EventName, IBApi } from '@stoqey/ib';

/** The arguments of the next `name` event: IBApi has `once` but is not a Node EventEmitter. */
export function nextEvent(ib: IBApi, name: EventName): Promise<unknown[]> {
  return new Promise((resolve) => ib.once(name, (...args: unknown[]) => resolve(args)));
}

export interface ClientError {
  readonly code: number;
  readonly reqId: number;
  readonly message: string;
}

/**
 * A connected client (after nextValidId) with every error it received, and
 * the codes of every info (errors TWS sends with id -1: 1100, 2104, 100...),
 * and the nextValidId of the handshake.
 */
export async function connectClient(port: number, clientId = 1): Promise<{ ib: IBApi; errors: ClientError[]; infos: number[]; firstId: number }> {
  const ib = new IBApi({ host: '127.0.0.1', port });
  const errors: ClientError[] = [];
  const infos: number[] = [];
  ib.on(EventName.error, (err: Error, code: number, reqId: number) => errors.push({ code, reqId, message: err.message }));
  ib.on(EventName.info, (_message: string, code: number) => infos.push(code));
  const ready = nextEvent(ib, EventName.nextValidId);
  ib.connect(clientId);
  const [firstId] = (await ready) as [number];
  return { ib, errors, infos, firstId };
}

/** Resolves once everything the server wrote before answering a current-time request has been handled. */
export async function barrier(ib: IBApi): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const answered = nextEvent(ib, EventName.currentTime);
  const silence = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('no answer to reqCurrentTime: is the client still connected?')), 5_000);
  });
  ib.reqCurrentTime();
  try {
    await Promise.race([answered, silence]);
  } finally {
    clearTimeout(timer);
  }
}

/** Waits until `check` holds, polling each turn of the loop; fails naming `what` after the timeout. */
export async function until(check: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Hashes the first `count` raw messages the client receives that `keep` accepts (the tokens as decoded), for determinism checks. */
export function hashMessages(ib: IBApi, count: number, keep: (tokens: string[]) => boolean): { seen(): number; digest(): string } {
  const hash = createHash('sha256');
  let seen = 0;
  ib.on(EventName.received, (tokens: string[]) => {
    if (seen < count && keep(tokens)) {
      hash.update(tokens.join('|') + '\n');
      seen++;
    }
  });
  return { seen: () => seen, digest: () => hash.digest('hex') };
}
