import type { Logger } from 'pino';
import type { Bus } from '../bus.js';
import type { Clock } from '../clock.js';
import type { ServiceLookup, ServiceName, Services } from '../services.js';

/**
 * What every supervised component receives as its XState input.
 */
export interface ComponentContext<Settings = unknown> {
  /** The component's id in the tree, also its XState systemId. */
  readonly id: string;
  /** The daemon's instance name (config `instance`): Redis keys, order refs and recordings carry it. */
  readonly instance: string;
  /** 1 on the first start, counting up with every restart in this process. */
  readonly incarnation: number;
  readonly settings: Settings;
  /** A pino child logger bound to `{actor: id}`. */
  readonly log: Logger;
  readonly clock: Clock;
  /** The root's message bus, shared by the whole tree. */
  readonly bus: Bus;
  /**
   * A service the kind declares in `needs`, from a component in its
   * dependsOn (the config check made sure one provides it). Throws when the
   * kind does not declare it, or its provider is not running.
   */
  need<K extends ServiceName>(name: K): Services[K];
  /** Hands a service the kind declares in `provides` to the components that need it, until this one stops. */
  provide<K extends ServiceName>(name: K, service: Services[K]): void;
  /** Whatever is provided right now, for readers that work with what is there (the inspector). */
  readonly services: ServiceLookup;
  /** Reports a failure the component found itself (an 'error' event, a broken invariant). */
  fail(error: unknown): void;
  /**
   * Runs `fn` so that anything it starts (timers, promises, listeners) fails
   * this component if it throws or rejects later, instead of the process.
   */
  scope<T>(fn: () => T): T;
}
