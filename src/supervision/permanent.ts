/**
 * Failures a restart cannot heal: a port another process holds, a path that
 * cannot be created, a damaged journal, a model file that is not what its
 * manifest says. A component that finds one throws (or rejects with, or
 * passes to `fail`) a PermanentFailure; its supervisor then does not restart
 * it but stops the whole tree in reverse order and fails to its parent, and
 * at the root the daemon exits with the failure's one line and exit code.
 *
 * The message is all the operator sees: what went wrong, where, and what to
 * change (the setting's key path in the config), on one line.
 */

export class PermanentFailure extends Error {
  /** `exitCode`: 2 for a configuration or environment mistake the operator must fix, 1 otherwise. */
  constructor(
    message: string,
    readonly exitCode: 1 | 2 = 2,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'PermanentFailure';
  }
}

/**
 * The permanent failure `error` is or carries: itself, the one a nested
 * supervisor's escalation carries (`permanent`), or one in its `cause` chain.
 */
export function permanentOf(error: unknown): PermanentFailure | undefined {
  let e = error;
  for (let depth = 0; depth < 8 && typeof e === 'object' && e !== null; depth++) {
    if (e instanceof PermanentFailure) return e;
    const carried: unknown = Reflect.get(e, 'permanent');
    if (carried instanceof PermanentFailure) return carried;
    e = Reflect.get(e, 'cause');
  }
  return undefined;
}

/** The errno code of a Node system error ('EADDRINUSE', 'ENOENT', ...), if it is one. */
export function errnoOf(error: unknown): string | undefined {
  const code = typeof error === 'object' && error !== null ? Reflect.get(error, 'code') : undefined;
  return typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) ? code : undefined;
}

/** 'ENOENT: no such file or directory' from a system error's message (which goes on with the call and path). */
function errnoText(error: unknown, code: string): string {
  const message = error instanceof Error ? error.message : '';
  const head = message.split(',')[0]!;
  return head.startsWith(`${code}:`) ? head : code;
}

export interface ListenSite {
  /** Which port, for the operator: 'port', 'the control API port', 'the inspector port'. */
  readonly what: string;
  readonly host: string;
  readonly port: number;
  /** The config key to change: 'components.simulator.settings.port'. */
  readonly setting: string;
  /** Who usually holds this port, as a question: 'another keel, or TWS itself?'. */
  readonly holder?: string;
}

/**
 * A listen that failed for a reason a restart does not change (the port in
 * use, not allowed, an address this machine does not have) as a permanent
 * failure naming the port and the setting; any other error as it is.
 */
export function listenFailure(error: unknown, site: ListenSite): unknown {
  const code = errnoOf(error);
  const { what, host, port, setting } = site;
  switch (code) {
    case 'EADDRINUSE':
      return new PermanentFailure(
        `${what} ${port} is in use on ${host} by another process${site.holder ? ` (${site.holder})` : ''}: set ${setting} or stop it`,
        2,
        { cause: error },
      );
    case 'EACCES':
    case 'EPERM':
      return new PermanentFailure(`${what} ${port} on ${host} is not allowed (${code}; ports below 1024 need privileges): set ${setting} to a port above 1023`, 2, { cause: error });
    case 'EADDRNOTAVAIL':
      return new PermanentFailure(`cannot listen on ${host}:${port}: ${host} is not an address of this machine (EADDRNOTAVAIL): change the host beside ${setting}`, 2, { cause: error });
    default:
      return error;
  }
}

/** Errno codes of a path that stay what they are however often it is tried again. */
const UNHEALABLE_PATH = new Set(['EACCES', 'EPERM', 'ENOENT', 'ENOTDIR', 'EISDIR', 'EROFS', 'ELOOP', 'ENAMETOOLONG', 'EEXIST', 'EINVAL']);

export interface PathSite {
  /** What was done to what, for the operator: 'cannot create the journal directory /x'. */
  readonly doing: string;
  /** The config key to change: 'components.journal.settings.path'. */
  readonly setting: string;
  /** What the setting must name instead: 'a directory keel can write'. */
  readonly want: string;
}

/**
 * A file-system call that failed for a reason a restart does not change (not
 * allowed, a parent that is a file or cannot exist, a read-only file system)
 * as a permanent failure naming the path and the setting; any other error
 * (EMFILE, EIO, ENOSPC, ...) as it is.
 */
export function pathFailure(error: unknown, site: PathSite): unknown {
  const code = errnoOf(error);
  if (code === undefined || !UNHEALABLE_PATH.has(code)) return error;
  return new PermanentFailure(`${site.doing} (${errnoText(error, code)}): set ${site.setting} to ${site.want}`, 2, { cause: error });
}
