#!/usr/bin/env node
// Runs keel's TypeScript sources directly through tsx, so there is no build step to forget.
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';

// A reader that goes away early (`keel sjm predict ... | head`) leaves nobody to
// show the rest to: not a failure of the command.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err) => {
    if (err.code !== 'EPIPE') throw err;
  });
}

// keel's own tsconfig wherever it is run from (JSX in the terminal inspector needs it).
register({ tsconfig: fileURLToPath(import.meta.resolve('../tsconfig.json')) });
const { main } = await import('../src/cli/main.ts');
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
