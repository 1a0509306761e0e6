#!/usr/bin/env node
// `npm run build`, and `npm install` / `npm ci` through the `prepare` script:
// compiles src/ into dist/, which bin/keel.js and the inference workers run.
//
// 1. Notes the input files' sizes and mtimes first, so a file edited while tsc
//    runs leaves the build stale rather than stamped as current.
// 2. Compiles into dist.next/ and copies the inspector's web assets verbatim
//    (tsc would rewrite the page's .js files, and leaves out the html and css).
// 3. Writes dist.next/.build-stamp.json (see bin/build-state.js), then swaps
//    dist.next/ in for dist/: a keel already running from dist/ never sees a
//    half-written build, and a failed build leaves the old one (and its stamp).
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath, URL } from 'node:url';
import { inputFiles, STAMP_NAME } from '../bin/build-state.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const [out, next, old] = ['dist', 'dist.next', 'dist.old'].map((d) => join(root, d));

let tsc;
try {
  tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
} catch {
  // `npm install --omit=dev` has no compiler: keel still runs, from the sources through tsx.
  console.error('keel build: typescript is not installed (dev dependencies left out?): no build in dist/; bin/keel.js will run the sources through tsx');
  process.exit(0);
}

const files = inputFiles(root);
rmSync(next, { recursive: true, force: true });
const compiled = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json'), '--outDir', next], { stdio: 'inherit' });
if (compiled.status !== 0) {
  rmSync(next, { recursive: true, force: true });
  console.error('keel build: tsc failed; dist/ is unchanged');
  process.exit(compiled.status ?? 1);
}

// The inspector's page is served as written: tsc rewrote its scripts (allowJs) and left out the rest.
const web = join(next, 'inspector', 'web');
rmSync(web, { recursive: true, force: true });
cpSync(join(root, 'src', 'inspector', 'web'), web, { recursive: true });

writeFileSync(join(next, STAMP_NAME), `${JSON.stringify({ builtAt: new Date().toISOString(), files })}\n`);
rmSync(old, { recursive: true, force: true });
if (existsSync(out)) renameSync(out, old);
renameSync(next, out);
rmSync(old, { recursive: true, force: true });
