import type { Logger } from 'pino';
import type { Bus } from '../bus.js';
import type { Clock } from '../clock.js';

/**
 * What every supervised component receives as its XState input.
 */
export interface ComponentContext<Settings = unknown> {
  /** The component's id in the tree, also its XState systemId. */
  readonly id: string;
  readonly settings: Settings;
  /** A pino child logger bound to `{actor: id}`. */
  readonly log: Logger;
  readonly clock: Clock;
  /** The root's message bus, shared by the whole tree. */
  readonly bus: Bus;
  /** Reports a failure the component found itself (an 'error' event, a broken invariant). */
  fail(error: unknown): void;
  /**
   * Runs `fn` so that anything it starts (timers, promises, listeners) fails
   * this component if it throws or rejects later, instead of the process.
   */
  scope<T>(fn: () => T): T;
}
