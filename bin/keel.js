#!/usr/bin/env -S node --max-semi-space-size=2
// --max-semi-space-size=2 (MiB; npm start and deploy/keel.service pass it too):
// V8 lets the young generation grow to 2 x 16 MiB under keel's allocation
// rate, most of it garbage between scavenges; capped at 2 x 2 MiB, a replay
// peaks about 30 MB lower at the same speed (BENCHMARKS.md, memory). V8 reads
// the flag only at start, so it cannot be set from here.
// Runs keel compiled, from dist/ (built by `npm install` through `prepare`, or
// `npm run build`), when that build is of the sources as they are now: no tsx
// loader on every import, nor in every inference worker. A stale or missing
// build is never run: keel then runs the sources through tsx, as in development,
// and says so in one line on stderr. KEEL_SOURCE=1 runs the sources without the
// check or the line (development; `npm test` sets it when dist/ is stale).
import module from 'node:module';
import { fileURLToPath, URL } from 'node:url';
import { buildState } from './build-state.js';

// A reader that goes away early (`keel sjm predict ... | head`) leaves nobody to
// show the rest to: not a failure of the command.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err) => {
    if (err.code !== 'EPIPE') throw err;
  });
}

const { main } = await load();
const code = await main(process.argv.slice(2));
process.exitCode = code;
// Output to a pipe is written asynchronously: what the reader has not taken yet
// waits in this process, and exiting at once would cut it short (`keel sjm
// predict ... | wc -l` lost most of its rows). Wait until both streams have
// handed everything to the OS, then exit, so that a handle left open somewhere
// never keeps a stopped daemon alive.
await Promise.all([drained(process.stdout), drained(process.stderr)]);
process.exit(code);

/** Resolves once everything written to `stream` before now is flushed, or the stream can take no more. */
function drained(stream) {
  return new Promise((resolve) => {
    if (stream.destroyed || stream.writableEnded) {
      resolve();
      return;
    }
    stream.once('close', resolve);
    // Writes complete in order: the callback of an empty write comes after every earlier one (with an error, when it failed).
    stream.write('', () => resolve());
  });
}

/** keel's main(): compiled when dist/ is current, else from the sources through tsx. */
async function load() {
  if (process.env.KEEL_SOURCE !== '1') {
    const build = buildState(fileURLToPath(new URL('..', import.meta.url)));
    // A URL, not a literal path, so that typechecking bin/ does not pull in dist/.
    if (build.current) {
      // Node 22.1+ keeps V8's compiled code of every module between runs (Node 20 has no such cache).
      module.enableCompileCache?.();
      return import(new URL('../dist/cli/main.js', import.meta.url).href);
    }
    process.stderr.write(`keel: ${build.reason}; running the sources through tsx (slower to start): npm run build to refresh dist/\n`);
  }
  const { register } = await import('tsx/esm/api');
  // keel's own tsconfig wherever it is run from (JSX in the terminal inspector needs it).
  register({ tsconfig: fileURLToPath(import.meta.resolve('../tsconfig.json')) });
  return import('../src/cli/main.ts');
}
