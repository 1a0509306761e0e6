// Whether dist/ is a build of the sources as they are now. The build
// (scripts/build.js) records the size and modification time of every input file
// in dist/.build-stamp.json; bin/keel.js compares that with the files here before
// it runs dist/, so an edited, added or removed source file (or tsconfig) means
// the build is stale and is not run. One stat per file: a few ms for src/.
// Content hashes would also catch an edit that keeps both size and mtime, which
// no editor, git or npm makes; they would cost a read of every file.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** What the build reads, relative to the repository's root: every file under these (hidden ones, such as editors' lock files, aside). */
export const BUILD_INPUTS = ['src', 'tsconfig.json', 'tsconfig.build.json'];
/** The stamp's name, in dist/ (written by the build into the directory it swaps in). */
export const STAMP_NAME = '.build-stamp.json';
export const STAMP = `dist/${STAMP_NAME}`;

/**
 * Each input file's [size, mtimeMs], by its path relative to `root` ('/'-separated).
 * @param {string} root
 * @returns {Record<string, [number, number]>}
 */
export function inputFiles(root) {
  /** @type {Record<string, [number, number]>} */
  const files = {};
  const visit = (rel) => {
    let stat;
    try {
      stat = statSync(join(root, rel));
    } catch {
      return; // gone meanwhile (or a dangling link): not an input, so the comparison notices it
    }
    if (stat.isDirectory()) {
      for (const name of readdirSync(join(root, rel)).sort()) if (!name.startsWith('.')) visit(`${rel}/${name}`);
    } else if (stat.isFile()) {
      files[rel] = [stat.size, stat.mtimeMs];
    }
  };
  for (const input of BUILD_INPUTS) visit(input);
  return files;
}

/**
 * `{ current: true }` when dist/ was built from exactly the input files there
 * are now, else `{ current: false, reason }` naming the first difference found
 * ('src/x.ts changed since dist/ was built').
 * @param {string} root
 * @returns {{ current: true } | { current: false, reason: string }}
 */
export function buildState(root) {
  let stamp;
  try {
    stamp = JSON.parse(readFileSync(join(root, STAMP), 'utf8'));
  } catch {
    return { current: false, reason: 'there is no build in dist/' };
  }
  const built = stamp.files ?? {};
  const now = inputFiles(root);
  for (const [path, [size, mtimeMs]] of Object.entries(now)) {
    const was = built[path];
    if (!was) return { current: false, reason: `${path} is new since dist/ was built` };
    if (was[0] !== size || was[1] !== mtimeMs) return { current: false, reason: `${path} changed since dist/ was built` };
  }
  for (const path of Object.keys(built)) {
    if (!(path in now)) return { current: false, reason: `${path} is gone since dist/ was built` };
  }
  return { current: true };
}
