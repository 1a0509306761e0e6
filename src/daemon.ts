/**
 * The keel daemon: the root supervisor built from a config, run until it is
 * told to stop or gives up. It owns the process-level concerns: signals, and
 * failures that escape every component.
 */
import type { Logger } from 'pino';
import { createActor } from 'xstate';
import { componentSpec, kindsProviding } from './actors/registry.js';
import { Bus } from './bus.js';
import { systemClock, type Clock } from './clock.js';
import type { KeelConfig } from './config/schema.js';
import { startInspection } from './inspector/notable.js';
import { describeError, routeProcessFailures } from './supervision/failure-scope.js';
import { findUnmetNeeds } from './supervision/needs.js';
import { permanentOf } from './supervision/permanent.js';
import type { ChildSpec } from './supervision/spec.js';
import { rootContext, SupervisorEscalation, supervisorMachine, type SupervisorSettings } from './supervision/supervisor.js';
import { ROOT_SERVICES, ServiceTable } from './services.js';

/**
 * Exit codes: 0 clean stop, 1 the tree gave up or a failure escaped, 2 a tree
 * whose needs are not met, 130 forced by a second signal. A component that
 * failed permanently exits with its failure's code: 2 for a configuration or
 * environment mistake, 1 otherwise.
 */
export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/** One line per component whose needs nothing in its dependsOn meets. */
export function unmetNeeds(tree: SupervisorSettings): string[] {
  return findUnmetNeeds(tree.children, kindsProviding, ROOT_SERVICES).map((p) => p.text);
}
export const EXIT_FORCED = 130;

/** The root supervisor's settings from a checked config. */
export function treeFromConfig(config: KeelConfig): SupervisorSettings {
  const children: ChildSpec[] = Object.entries(config.components).map(([id, c]) =>
    componentSpec(id, c.kind, {
      settings: c.settings,
      dependsOn: c.dependsOn,
      restart: c.restart,
      startTimeoutMs: c.startTimeoutMs,
      shutdownTimeoutMs: c.shutdownTimeoutMs,
      backoff: c.backoff,
    }),
  );
  const { strategy, intensity, startOrder, defaults } = config.supervisor;
  return { children, strategy, intensity, startOrder, defaults };
}

export interface DaemonOptions {
  readonly instance: string;
  readonly tree: SupervisorSettings;
  readonly log: Logger;
  readonly clock?: Clock;
  /** Signals that ask for a graceful stop; the second one forces exit. */
  readonly signals?: readonly NodeJS.Signals[];
  /** The bus and services to run on (replay feeds and reads its own); new ones by default. */
  readonly bus?: Bus;
  readonly services?: ServiceTable;
  /** Called once, when every component is running. */
  readonly onRunning?: () => void;
  /** Aborting it stops the tree gracefully, as the first signal does. */
  readonly stop?: AbortSignal;
}

/** Runs the daemon to its end and resolves with the process exit code. */
export function runDaemon(options: DaemonOptions): Promise<number> {
  const { log, tree, instance } = options;
  const clock = options.clock ?? systemClock;
  // SIGHUP (the terminal closed, the SSH session dropped) is a stop like SIGTERM: without a handler it kills the process at once, with no cancels and no journal close.
  const signals = options.signals ?? ['SIGINT', 'SIGTERM', 'SIGHUP'];

  return new Promise<number>((resolve) => {
    let finished = false;
    const cleanups: (() => void)[] = [];
    const finish = (code: number) => {
      if (finished) return;
      finished = true;
      for (const cleanup of cleanups) cleanup();
      resolve(code);
    };

    const unmet = unmetNeeds(tree);
    if (unmet.length > 0) {
      log.fatal({ problems: unmet }, `the component tree cannot start:\n  ${unmet.join('\n  ')}`);
      finish(EXIT_USAGE);
      return;
    }
    const bus = options.bus ?? new Bus();
    const services = options.services ?? new ServiceTable();
    // Kept from the first event, so an inspector that starts (or restarts) later still sees the whole tree.
    const inspection = startInspection(bus, services, clock);
    cleanups.push(inspection.stop);
    const root = createActor(supervisorMachine, {
      clock,
      systemId: 'root',
      inspect: inspection.tree.observe,
      // Unbound log: children bind {actor: id} themselves, the root tags its own lines with {supervisor}.
      input: rootContext({ instance, settings: { ...tree, services }, log, clock, bus, fail: (error) => onUnowned(error, 'root') }),
    });

    // A failure no component owns: nothing can be trusted, so stop the tree and exit non-zero.
    const onUnowned = (error: unknown, origin: string) => {
      const permanent = permanentOf(error);
      if (permanent) log.fatal({ origin, exitCode: permanent.exitCode }, `${permanent.message}; stopping`);
      else log.fatal({ err: error, origin }, `unowned failure (${origin}): ${describeError(error)}; stopping`);
      stopping = true;
      exitCode = permanent?.exitCode ?? EXIT_FAILED;
      root.send({ type: 'shutdown' });
    };
    let stopping = false;
    let exitCode = EXIT_OK;
    cleanups.push(routeProcessFailures(onUnowned));
    // A daemon runs until told to stop, even when every component is idle between events.
    const keepAlive = setInterval(() => {}, 2 ** 30);
    cleanups.push(() => clearInterval(keepAlive));

    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        log.warn({ signal }, `${signal} again: forcing exit without waiting for components`);
        finish(EXIT_FORCED);
        return;
      }
      stopping = true;
      log.info({ signal }, `${signal}: stopping components in reverse dependency order (send it again to force)`);
      root.send({ type: 'shutdown' });
    };
    for (const signal of signals) {
      process.on(signal, onSignal);
      cleanups.push(() => process.off(signal, onSignal));
    }
    const onAbort = () => {
      if (stopping) return;
      stopping = true;
      root.send({ type: 'shutdown' });
    };
    options.stop?.addEventListener('abort', onAbort);
    cleanups.push(() => options.stop?.removeEventListener('abort', onAbort));

    let announced = false;
    root.subscribe({
      next: (snapshot) => {
        if (!announced && snapshot.value === 'running') {
          announced = true;
          log.info(
            {
              components: Object.keys(snapshot.context.core.children).length,
              startupMs: Math.round((clock.now() - treeStartedAt) * 10) / 10,
              sinceProcessStartMs: Math.round(performance.now()),
            },
            'keel running: all components ready',
          );
          options.onRunning?.();
        }
      },
      complete: () => {
        log.info('keel stopped');
        finish(exitCode);
      },
      error: (error) => {
        if (error instanceof SupervisorEscalation && error.permanent) {
          // What, where and what to do, on one line: the tree is already stopped, in reverse order.
          const { permanent, component } = error;
          log.fatal({ component, exitCode: permanent.exitCode }, `${component}: ${permanent.message}`);
          finish(permanent.exitCode);
          return;
        }
        if (error instanceof SupervisorEscalation) {
          log.fatal(
            { child: error.childId, lastError: error.childError, restarts: error.restarts, periodMs: error.periodMs },
            `giving up: ${error.childId} exhausted the restart intensity (${error.restarts} restarts within ${error.periodMs} ms); its last error: ${error.childError}`,
          );
        } else {
          log.fatal({ err: error }, `root supervisor failed: ${describeError(error)}`);
        }
        finish(EXIT_FAILED);
      },
    });
    log.info({ instance, components: tree.children.map((c) => c.id) }, 'keel starting');
    const treeStartedAt = clock.now();
    root.start();
  });
}
