import type { AnyActorLogic } from 'xstate';
import type { ServiceName } from '../services.js';
import type { TopicName } from '../topics.js';
import type { BackoffSettings } from './backoff.js';

/** permanent: always restarted; transient: restarted only after a failure; temporary: never restarted. */
export type RestartPolicy = 'permanent' | 'transient' | 'temporary';

/**
 * one_for_one: only the failed child restarts.
 * rest_for_one: the failed child's dependents are stopped first (dependents of
 * dependents before them) and start again once it is ready.
 */
export type Strategy = 'one_for_one' | 'rest_for_one';

export interface Intensity {
  /** More restarts than this within `periodMs` and the supervisor gives up and fails to its parent. */
  readonly maxRestarts: number;
  readonly periodMs: number;
}

export interface ChildHealth {
  readonly status: 'ok' | 'degraded' | 'failing';
  readonly detail?: string;
}

/** An actor snapshot as far as readiness and health checks need it. */
export interface ChildSnapshot {
  readonly status: string;
  hasTag?(tag: string): boolean;
}

/**
 * What a component shares with the others. `needs` and `reads` must come
 * from components in its dependsOn (directly or through theirs); the
 * supervisor withdraws what it `provides` and clears the states it
 * `publishes` when it stops.
 */
export interface Contract {
  readonly provides: readonly ServiceName[];
  readonly needs: readonly ServiceName[];
  readonly publishes: readonly TopicName[];
  /** Topics it cannot work without. */
  readonly reads: readonly TopicName[];
  /** Topics it listens to when someone publishes them (not required). */
  readonly hears: readonly TopicName[];
}

export const NO_CONTRACT: Contract = { provides: [], needs: [], publishes: [], reads: [], hears: [] };

/**
 * One supervised child. `logic` is any XState actor logic that takes a
 * ComponentContext as input, counts as ready when `isReady` says so (default:
 * its snapshot carries the tag 'ready'; logic without tags is ready once
 * active), stops gracefully on the event `{type: 'shutdown'}` by reaching a
 * final state, and fails by erroring or by calling `context.fail`.
 */
export interface ChildSpec {
  readonly id: string;
  /** What it is, for the inspector (the config's component kind). */
  readonly kind?: string;
  readonly logic: AnyActorLogic;
  readonly settings?: unknown;
  /** What it provides and needs (default: nothing). */
  readonly contract?: Contract;
  readonly dependsOn?: readonly string[];
  readonly restart?: RestartPolicy;
  readonly startTimeoutMs?: number;
  readonly shutdownTimeoutMs?: number;
  readonly backoff?: Partial<BackoffSettings>;
  readonly isReady?: (snapshot: ChildSnapshot) => boolean;
  readonly health?: (snapshot: ChildSnapshot) => ChildHealth;
}

export interface ChildDefaults {
  readonly restart: RestartPolicy;
  readonly startTimeoutMs: number;
  readonly shutdownTimeoutMs: number;
  readonly backoff: BackoffSettings;
}

export const DEFAULT_CHILD: ChildDefaults = {
  restart: 'permanent',
  startTimeoutMs: 10_000,
  shutdownTimeoutMs: 5_000,
  backoff: { minMs: 100, maxMs: 10_000, randomFactor: 0.2, resetAfterMs: 30_000 },
};

export const DEFAULT_INTENSITY: Intensity = { maxRestarts: 5, periodMs: 30_000 };

export function isReadyByDefault(snapshot: ChildSnapshot): boolean {
  if (snapshot.status !== 'active') return false;
  return typeof snapshot.hasTag === 'function' ? snapshot.hasTag('ready') : true;
}
