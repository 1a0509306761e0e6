/**
 * `keel inspect`: the terminal view of a running daemon's inspector. This
 * module only reads the options; the screen (Ink and React, a third of a
 * second to load) is imported when the command runs, so other commands do
 * not pay for it.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { Command } from './main.js';
import type { TokenSource } from './inspect/app.js';
import { endpoints, type Endpoints } from './inspect/endpoints.js';

const DEFAULT_URL = 'http://127.0.0.1:7500';
const DEFAULT_TOKEN_FILE = 'var/inspector.token';

export const inspectCommand: Command = {
  summary: 'watch a running daemon in the terminal',
  usage: 'keel inspect [URL] [--token T | --token-file F]',
  help: `Connects to the inspector of a running daemon and shows, live: the
supervisor tree (each actor's state, status, restarts, backoff and last
error), the risk gate, the feature health table, each instrument's regime,
prediction, position and P&L, the account, the option chain around the
money when the daemon runs one, and the latest events. When the
daemon goes away it retries by itself and picks up the fresh state.

Keys: h halt trading, r resume (each asks y to confirm; needs the token),
q quit.

Arguments:
  URL                  the inspector, http://HOST:PORT or ws://HOST:PORT
                       (default ${DEFAULT_URL})

Options:
      --token T        the control token (also: KEEL_TOKEN)
      --token-file F   read the token from F (default ${DEFAULT_TOKEN_FILE}
                       when it exists)`,
  options: {
    token: { type: 'string' },
    'token-file': { type: 'string' },
  },
  async run(values, positionals) {
    if (positionals.length > 1) return usage(`unexpected argument '${positionals[1]}'`);
    let target: Endpoints;
    try {
      target = endpoints(positionals[0] ?? DEFAULT_URL);
    } catch (err) {
      return usage(err instanceof TypeError ? `'${positionals[0]}' is not a URL` : (err as Error).message);
    }
    const token = tokenSource(values.token as string | undefined, values['token-file'] as string | undefined);
    if (token && 'error' in token) return usage(token.error);
    if (!process.stdout.isTTY) {
      process.stderr.write(`keel: inspect draws on a terminal; for scripts use ${target.http}/api/actors and the other /api endpoints\n`);
      return 2;
    }
    // Ink draws only the final frame when it believes it runs under CI (a CI
    // variable in the environment); on a real terminal that is a blank screen.
    delete process.env.CI;
    delete process.env.CONTINUOUS_INTEGRATION;
    const { runInspect } = await import('./inspect/app.js');
    return runInspect({ endpoints: target, token });
  },
};

/**
 * Where the token comes from: --token, else --token-file, else KEEL_TOKEN,
 * else the default file if there is one; null for none. A file is read
 * again for each command, since the daemon writes a fresh token at every start.
 */
function tokenSource(flag: string | undefined, file: string | undefined): TokenSource | { error: string } {
  if (flag !== undefined) return fixed(flag);
  if (file !== undefined) {
    try {
      readFileSync(file, 'utf8');
    } catch (err) {
      return { error: `cannot read the token file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
    }
    return fromFile(file);
  }
  if (process.env.KEEL_TOKEN?.trim()) return fixed(process.env.KEEL_TOKEN);
  return existsSync(DEFAULT_TOKEN_FILE) ? fromFile(DEFAULT_TOKEN_FILE) : null;
}

function fixed(token: string): TokenSource {
  const trimmed = token.trim();
  return trimmed ? { describe: 'the given token', read: () => trimmed } : null;
}

function fromFile(path: string): TokenSource {
  return {
    describe: path,
    read: () => {
      try {
        return readFileSync(path, 'utf8').trim() || null;
      } catch {
        return null;
      }
    },
  };
}

function usage(message: string): number {
  process.stderr.write(`keel: ${message}\nUsage: ${inspectCommand.usage}\nRun 'keel inspect --help' for more.\n`);
  return 2;
}
