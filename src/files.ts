/**
 * Creating a directory and its missing parents without Node's recursive
 * mkdir, which never returns for a path under /proc (Node 20: mkdir answers
 * ENOENT, the parent exists, so it tries the child again, forever, with a
 * CPU spinning; the sync form freezes the whole process). Here each missing
 * level is made once, from the deepest existing ancestor down, so every
 * failure is the system's own error (ENOENT, EACCES, ENOTDIR, ...) at once.
 */
import { mkdirSync, statSync } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

function notADirectory(path: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${path}'`), { code: 'ENOTDIR', path, syscall: 'mkdir' });
}

const codeOf = (error: unknown): unknown => (error as NodeJS.ErrnoException).code;

/** `dir` and every parent missing under its deepest existing ancestor, shallowest first; at most one entry per path level. */
function missingLevels(dir: string, isDirectory: (path: string) => boolean | undefined): string[] {
  const missing: string[] = [];
  let at = resolve(dir);
  for (;;) {
    const found = isDirectory(at);
    if (found === true) return missing;
    if (found === false) throw notADirectory(at);
    const parent = dirname(at);
    missing.unshift(at);
    if (parent === at) return missing;
    at = parent;
  }
}

/** Makes `dir` and its missing parents; resolves at once when it exists. */
export async function makeDirectory(dir: string): Promise<void> {
  const kinds = new Map<string, boolean | undefined>();
  // Walk up with stat first (async), then decide synchronously on what was seen.
  for (let at = resolve(dir); ; at = dirname(at)) {
    try {
      const s = await stat(at);
      kinds.set(at, s.isDirectory());
      break;
    } catch (error) {
      if (codeOf(error) !== 'ENOENT') throw error;
      kinds.set(at, undefined);
    }
    if (dirname(at) === at) break;
  }
  for (const level of missingLevels(dir, (p) => kinds.get(p))) {
    try {
      await mkdir(level);
    } catch (error) {
      // Made meanwhile by someone else: fine, if it is a directory.
      if (codeOf(error) === 'EEXIST' && (await stat(level)).isDirectory()) continue;
      throw error;
    }
  }
}

/** The synchronous form of makeDirectory. */
export function makeDirectorySync(dir: string): void {
  const isDirectory = (path: string): boolean | undefined => {
    try {
      return statSync(path).isDirectory();
    } catch (error) {
      if (codeOf(error) === 'ENOENT') return undefined;
      throw error;
    }
  };
  for (const level of missingLevels(dir, isDirectory)) {
    try {
      mkdirSync(level);
    } catch (error) {
      if (codeOf(error) === 'EEXIST' && statSync(level).isDirectory()) continue;
      throw error;
    }
  }
}
