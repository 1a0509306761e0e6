/**
 * Routes asynchronous failures to the component whose code raised them.
 *
 * A component's async work runs inside `runOwnedBy` (ComponentContext.scope).
 * Node keeps that ownership across timers, promises and event emitters, so a
 * throw in a callback or an unhandled rejection far from the supervisor still
 * knows whose it is, and becomes that child's supervised failure instead of
 * killing the process. Socket callbacks created by a server may lose the
 * owner; components report those with `fail` directly.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export interface FailureOwner {
  readonly id: string;
  fail(error: unknown): void;
}

const owners = new AsyncLocalStorage<FailureOwner>();

export function runOwnedBy<T>(owner: FailureOwner, fn: () => T): T {
  return owners.run(owner, fn);
}

/** The component whose code is running now, if any. */
export function currentOwner(): FailureOwner | undefined {
  return owners.getStore();
}

/**
 * Installs process-wide handlers for uncaught exceptions and unhandled
 * rejections. Owned failures go to their owner; the rest to `onUnowned`, which
 * decides how the process ends. Returns a function that removes the handlers.
 */
export function routeProcessFailures(onUnowned: (error: unknown, origin: string) => void): () => void {
  const route = (origin: string) => (error: unknown) => {
    const owner = owners.getStore();
    if (owner) owner.fail(error);
    else onUnowned(error, origin);
  };
  const onException = route('uncaughtException');
  const onRejection = route('unhandledRejection');
  process.on('uncaughtException', onException);
  process.on('unhandledRejection', onRejection);
  return () => {
    process.off('uncaughtException', onException);
    process.off('unhandledRejection', onRejection);
  };
}

/** A one-line description of anything thrown. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  if (typeof error === 'string') return error;
  try {
    return JSON.stringify(error) ?? String(error);
  } catch {
    return String(error);
  }
}
