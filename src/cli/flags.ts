/** What the keel subcommands share: their flag values, and a user's mistake as one line and exit 2. */
import type { Command } from './main.js';

const EXIT_USAGE = 2;

export type Values = Parameters<Command['run']>[0];

/** A mistake by the user: bad flags, or a file that cannot be read or written. */
export class UserError extends Error {}

/**
 * Runs a subcommand; a UserError (or an error of one of `mistakes`, the
 * domain's own kinds of bad input) becomes one line on stderr and exit 2.
 */
export async function reportMistakes(run: () => number | Promise<number>, mistakes: readonly (abstract new (...args: never[]) => Error)[] = []): Promise<number> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof UserError || mistakes.some((kind) => err instanceof kind)) {
      process.stderr.write(`keel: ${(err as Error).message}\n`);
      return EXIT_USAGE;
    }
    throw err;
  }
}

export function stringFlag(values: Values, name: string): string | undefined {
  const value = values[name];
  return typeof value === 'string' ? value : undefined;
}

/** A numeric flag, or undefined when it is absent; `ok` says which values are allowed and `expected` says so in words. */
export function numberFlag(values: Values, name: string, expected: string, ok: (n: number) => boolean): number | undefined {
  const text = stringFlag(values, name);
  if (text === undefined) return undefined;
  const n = Number(text);
  if (text.trim() === '' || !ok(n)) throw new UserError(`--${name} must be ${expected}, got '${text}'`);
  return n;
}
