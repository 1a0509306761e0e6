/**
 * Starting a worker thread whose entry is a module beside its caller.
 *
 * Compiled (the caller is dist/.../x.js, run by bin/keel.js) the entry is the
 * .js beside it, imported as it is. From the sources it is TypeScript, and
 * Node 20 does not apply an inherited `--import tsx` to a worker's entry
 * (nodejs/node#47747): so the worker registers tsx itself, then imports the
 * entry (under `node --import tsx` and bin/keel.js's tsx fallback alike).
 */
import { Worker, type WorkerOptions } from 'node:worker_threads';

/** `entry` (a name without extension) beside the module `callerUrl` (its import.meta.url), as a worker. */
export function startThread(callerUrl: string, entry: string, options: Omit<WorkerOptions, 'eval' | 'execArgv'> = {}): Worker {
  const bootstrap = callerUrl.endsWith('.js')
    ? `import(${JSON.stringify(new URL(`./${entry}.js`, callerUrl).href)});`
    : `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))})
  .then((tsx) => { tsx.register(); return import(${JSON.stringify(new URL(`./${entry}.ts`, callerUrl).href)}); });`;
  // The bootstrap loads tsx; inherited loader flags do not work in a Node 20 worker.
  return new Worker(bootstrap, { ...options, eval: true, execArgv: [] });
}
