#!/usr/bin/env node
// Runs every test/**/*.test.ts with node's test runner, TypeScript through tsx.
// Extra arguments are passed on (e.g. `npm test -- --test-name-pattern=backoff`),
// and a path argument narrows the run to matching files.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { buildState } from '../bin/build-state.js';

const args = process.argv.slice(2);
const filters = args.filter((a) => !a.startsWith('-'));
const flags = args.filter((a) => a.startsWith('-'));
const files = readdirSync('test', { recursive: true, encoding: 'utf8' })
  .filter((f) => f.endsWith('.test.ts'))
  .map((f) => join('test', f))
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort();
if (files.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`);
  process.exit(1);
}
// Tests that spawn `node bin/keel.js` run the build in dist/ when it is current
// (as after `npm install`). When it is stale, as while sources are being edited,
// they run the sources through tsx (KEEL_SOURCE=1), said once here rather than
// by every keel process on the stderr the tests read.
const build = buildState(process.cwd());
if (!build.current && process.env.KEEL_SOURCE !== '1') {
  console.error(`tests: ${build.reason}: keel runs from the sources through tsx (npm run build to test the build)`);
  process.env.KEEL_SOURCE = '1';
}
const result = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', ...flags, ...files], { stdio: 'inherit' });
process.exit(result.status ?? 1);
