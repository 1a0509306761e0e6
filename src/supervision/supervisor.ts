/**
 * The supervisor: an XState machine that owns its children as spawned actors
 * in the same actor system (systemId = child id), carries out what
 * decisions.ts decides, and mirrors its phase as its own state so inspectors
 * see starting / running / stopping / escalating / stopped / failed.
 *
 * A supervisor is itself a supervised component (input: ComponentContext with
 * SupervisorSettings), so trees nest: when its restart intensity is exceeded
 * it stops its children in reverse order and errors with a
 * SupervisorEscalation, which its parent sees as that child's failure.
 *
 * A child failing with a PermanentFailure (thrown from its start, rejected,
 * or passed to `fail`) is not restarted: the supervisor stops its children in
 * reverse order and escalates at once, and the escalation carries the
 * failure, so a parent gives up the same way and the daemon exits with it.
 */
import { enqueueActions, setup, type ActorRefFrom, type AnyActorRef, type SnapshotFrom } from 'xstate';
import { SERVICE_DESCRIPTIONS, ServiceTable } from '../services.js';
import type { ComponentContext } from './component.js';
import {
  backoffElapsed,
  begin,
  childExited,
  childFailed,
  childHealth,
  childReady,
  initialState,
  isDown,
  restartRequested,
  shutdownRequested,
  shutdownTimedOut,
  startTimedOut,
  type ChildPlan,
  type Decision,
  type Phase,
  type SupervisorState,
  type TimerEvent,
} from './decisions.js';
import { describeError, runOwnedBy } from './failure-scope.js';
import { permanentOf, type PermanentFailure } from './permanent.js';
import {
  DEFAULT_CHILD,
  DEFAULT_INTENSITY,
  isReadyByDefault,
  NO_CONTRACT,
  type ChildDefaults,
  type ChildSnapshot,
  type ChildSpec,
  type Intensity,
  type Strategy,
} from './spec.js';

export interface SupervisorSettings {
  readonly children: readonly ChildSpec[];
  readonly strategy?: Strategy;
  readonly intensity?: Intensity;
  /** Defaults for children that do not set their own. */
  readonly defaults?: Partial<Omit<ChildDefaults, 'backoff'>> & { readonly backoff?: Partial<ChildDefaults['backoff']> };
  /** 'parallel' (default): each child starts as soon as its dependencies are ready. 'sequential': one at a time. */
  readonly startOrder?: 'parallel' | 'sequential';
  /** Source of jitter for backoff, in [0, 1). */
  readonly random?: () => number;
  /** The services of the tree (nested supervisors share their parent's); a new table by default. */
  readonly services?: ServiceTable;
}

/**
 * The supervisor gave up: too many restarts too quickly, or a child failed
 * permanently (then `permanent` is that failure, and `component` where it
 * happened: the child's id, or its path through nested supervisors).
 */
export class SupervisorEscalation extends Error {
  readonly component: string;

  constructor(
    readonly supervisorId: string,
    readonly childId: string,
    readonly childError: string,
    readonly restarts: number,
    readonly periodMs: number,
    readonly permanent?: PermanentFailure,
    component?: string,
  ) {
    super(
      permanent
        ? `supervisor '${supervisorId}': ${component ?? childId} failed permanently: ${permanent.message}`
        : `supervisor '${supervisorId}': restart intensity exceeded (${restarts} restarts within ${periodMs} ms); last failure: ${childId}: ${childError}`,
    );
    this.name = 'SupervisorEscalation';
    this.component = component ?? childId;
  }
}

/** A child's failure for the decisions: its text, and the permanent failure it is or carries (and where, through nested supervisors). */
function failureOf(id: string, incarnation: number, error: unknown, alive: boolean) {
  const permanent = permanentOf(error);
  const where = permanent && error instanceof SupervisorEscalation ? `${id}/${error.component}` : id;
  return { id, incarnation, error: describeError(error), alive, ...(permanent ? { permanent, where } : {}) };
}

interface SupervisorContext {
  readonly ctx: ComponentContext<SupervisorSettings>;
  readonly specs: Readonly<Record<string, ChildSpec>>;
  readonly random: () => number;
  readonly services: ServiceTable;
  readonly core: SupervisorState;
}

type ChildEvent =
  | { type: 'child.failed'; id: string; incarnation: number; error: unknown }
  | { type: `xstate.snapshot.${string}`; snapshot: ChildSnapshot }
  | { type: `xstate.error.actor.${string}`; error: unknown }
  | { type: `xstate.done.actor.${string}`; output: unknown };

/** `restart`: an operator's request to restart one child (the inspector's restart-actor). */
export type SupervisorEvent = { type: 'shutdown' } | { type: 'restart'; id: string } | TimerEvent | ChildEvent;

const PHASES: readonly Phase[] = ['starting', 'running', 'stopping', 'escalating', 'stopped', 'failed'];

function plansFrom(settings: SupervisorSettings): ChildPlan[] {
  const defaults = { ...DEFAULT_CHILD, ...settings.defaults, backoff: { ...DEFAULT_CHILD.backoff, ...settings.defaults?.backoff } };
  return settings.children.map((spec) => ({
    id: spec.id,
    dependsOn: spec.dependsOn ?? [],
    restart: spec.restart ?? defaults.restart,
    startTimeoutMs: spec.startTimeoutMs ?? defaults.startTimeoutMs,
    shutdownTimeoutMs: spec.shutdownTimeoutMs ?? defaults.shutdownTimeoutMs,
    backoff: { ...defaults.backoff, ...spec.backoff },
  }));
}

const SNAPSHOT = 'xstate.snapshot.';
const ERROR = 'xstate.error.actor.';
const DONE = 'xstate.done.actor.';

/** What the supervisor decides on one event; undefined when the event changes nothing. */
function decideOn(context: SupervisorContext, event: SupervisorEvent | { type: 'xstate.init' }): Decision | SupervisorState | undefined {
  const { core } = context;
  const now = context.ctx.clock.now();
  const incarnationOf = (id: string): number => core.children[id]?.incarnation ?? -1;
  switch (event.type) {
    case 'xstate.init':
      return begin(core, now);
    case 'shutdown':
      return shutdownRequested(core, now);
    case 'restart':
      return restartRequested(core, event.id, now);
    case 'child.failed':
      return childFailed(core, failureOf(event.id, event.incarnation, event.error, true), now, context.random());
    case 'child.startTimeout':
      return startTimedOut(core, event.id, event.incarnation, now, context.random());
    case 'child.shutdownTimeout':
      return shutdownTimedOut(core, event.id, event.incarnation, now);
    case 'child.backoffElapsed':
      return backoffElapsed(core, event.id, event.incarnation, now);
  }
  if (event.type.startsWith(SNAPSHOT)) {
    const id = event.type.slice(SNAPSHOT.length);
    const spec = context.specs[id];
    const snapshot = (event as { snapshot: ChildSnapshot }).snapshot;
    if (!spec) return undefined;
    const withHealth = spec.health ? childHealth(core, id, incarnationOf(id), spec.health(snapshot)) : core;
    const ready = withHealth.children[id]?.status === 'starting' && (spec.isReady ?? isReadyByDefault)(snapshot);
    return ready ? childReady(withHealth, id, incarnationOf(id), now) : withHealth;
  }
  if (event.type.startsWith(ERROR)) {
    const id = event.type.slice(ERROR.length);
    // The instance, not just its text: whether it is permanent decides what happens next.
    return childFailed(core, failureOf(id, incarnationOf(id), (event as { error: unknown }).error, false), now, context.random());
  }
  if (event.type.startsWith(DONE)) {
    const id = event.type.slice(DONE.length);
    return childExited(core, id, incarnationOf(id), now, context.random());
  }
  return undefined;
}

/** The input each child gets: its settings, logger, the shared clock and bus, its services, and a way to fail that reaches this supervisor. */
function childContext(context: SupervisorContext, id: string, incarnation: number, self: AnyActorRef): ComponentContext {
  const fail = (error: unknown): void => self.send({ type: 'child.failed', id, incarnation, error });
  const owner = { id, fail };
  const spec = context.specs[id]!;
  const contract = spec.contract ?? NO_CONTRACT;
  const { services } = context;
  return {
    id,
    instance: context.ctx.instance,
    incarnation,
    settings: spec.settings,
    log: context.ctx.log.child({ actor: id }),
    clock: context.ctx.clock,
    bus: context.ctx.bus,
    need(name) {
      if (!contract.needs.includes(name)) throw new Error(`${id} asks for ${SERVICE_DESCRIPTIONS[name]} (${name}) without declaring it in its kind's needs`);
      const service = services.current(name);
      if (service === undefined) throw new Error(`${id} needs ${SERVICE_DESCRIPTIONS[name]} (${name}), and nothing provides it now: is its provider listed in dependsOn?`);
      return service;
    },
    provide(name, service) {
      if (!contract.provides.includes(name)) throw new Error(`${id} provides ${name} without declaring it in its kind's provides`);
      services.provide(id, name, service);
    },
    services,
    fail,
    scope: (fn) => runOwnedBy(owner, fn),
  };
}

/** What a child that went down shared is gone: its services withdrawn, its retained states cleared. */
function forgetDownChildren(context: SupervisorContext, next: SupervisorState): void {
  for (const [id, child] of Object.entries(next.children)) {
    const before = context.core.children[id];
    if (!isDown(child) || !before || isDown(before)) continue;
    context.services.withdraw(id);
    context.ctx.bus.clear((context.specs[id]?.contract ?? NO_CONTRACT).publishes);
  }
}

const onPhase = (phase: Phase) => ({ context }: { context: SupervisorContext }) => context.core.phase === phase;

/** Each state follows the phase decided in context.core. */
function mirrorPhase(current: Phase) {
  return PHASES.filter((p) => p !== current).map((p) => ({ guard: onPhase(p), target: p }));
}

export const supervisorMachine = setup({
  types: {} as {
    context: SupervisorContext;
    input: ComponentContext<SupervisorSettings>;
    events: SupervisorEvent;
  },
  actions: {
    /** Applies the decision on the current event: new state first, then its effects in order. */
    react: enqueueActions(({ context, event, enqueue, self }) => {
      const result = decideOn(context, event);
      if (result === undefined) return;
      if (!('effects' in result)) {
        if (result !== context.core) enqueue.assign({ core: result });
        return;
      }
      enqueue.assign({ core: result.state });
      enqueue(() => forgetDownChildren(context, result.state));
      for (const effect of result.effects) {
        switch (effect.type) {
          case 'spawn':
            // Children are only known at run time, so XState cannot type their ids.
            enqueue.spawnChild(context.specs[effect.id]!.logic, {
              id: effect.id,
              systemId: effect.id,
              syncSnapshot: true,
              input: childContext(context, effect.id, effect.incarnation, self),
            } as never);
            break;
          case 'shutdown':
            enqueue.sendTo(effect.id, { type: 'shutdown' });
            break;
          case 'kill':
            enqueue.stopChild(effect.id);
            break;
          case 'timer':
            enqueue.raise(effect.event, { id: effect.key, delay: effect.delayMs });
            break;
          case 'cancelTimer':
            enqueue.cancel(effect.key);
            break;
          case 'log': {
            const { level, msg, fields } = effect;
            enqueue(() => context.ctx.log[level]({ supervisor: context.ctx.id, ...fields }, msg));
            break;
          }
        }
      }
    }),
    giveUp: ({ context }) => {
      const e = context.core.escalation;
      throw new SupervisorEscalation(context.ctx.id, e?.childId ?? '?', e?.error ?? '?', e?.restarts ?? 0, e?.periodMs ?? 0, e?.permanent, e?.component);
    },
  },
}).createMachine({
  id: 'supervisor',
  context: ({ input }) => {
    const settings = input.settings;
    return {
      ctx: input,
      specs: Object.fromEntries(settings.children.map((spec) => [spec.id, spec])),
      random: settings.random ?? Math.random,
      services: settings.services ?? (input.services instanceof ServiceTable ? input.services : new ServiceTable()),
      core: initialState(plansFrom(settings), {
        strategy: settings.strategy ?? 'one_for_one',
        intensity: settings.intensity ?? DEFAULT_INTENSITY,
        sequential: settings.startOrder === 'sequential',
      }),
    };
  },
  entry: 'react',
  on: {
    shutdown: { actions: 'react' },
    restart: { actions: 'react' },
    'child.failed': { actions: 'react' },
    'child.startTimeout': { actions: 'react' },
    'child.shutdownTimeout': { actions: 'react' },
    'child.backoffElapsed': { actions: 'react' },
    'xstate.snapshot.*': { actions: 'react' },
    'xstate.error.actor.*': { actions: 'react' },
    'xstate.done.actor.*': { actions: 'react' },
  },
  initial: 'starting',
  states: {
    starting: { always: mirrorPhase('starting') },
    running: { tags: ['ready'], always: mirrorPhase('running') },
    stopping: { always: mirrorPhase('stopping') },
    escalating: { always: mirrorPhase('escalating') },
    stopped: { type: 'final' },
    failed: { entry: 'giveUp' },
  },
});

/** The input of a tree's root: what every component's context is made from. */
export function rootContext(options: {
  readonly instance: string;
  readonly settings: SupervisorSettings;
  readonly log: ComponentContext['log'];
  readonly clock: ComponentContext['clock'];
  readonly bus: ComponentContext['bus'];
  readonly fail: (error: unknown) => void;
}): ComponentContext<SupervisorSettings> {
  const services = options.settings.services ?? new ServiceTable();
  return {
    id: 'root',
    instance: options.instance,
    incarnation: 1,
    settings: { ...options.settings, services },
    log: options.log,
    clock: options.clock,
    bus: options.bus,
    need: (name) => {
      throw new Error(`the root supervisor needs nothing (asked for ${name})`);
    },
    provide: (name, service) => services.provide('root', name, service),
    services,
    fail: options.fail,
    scope: (fn) => fn(),
  };
}

export type SupervisorActor = ActorRefFrom<typeof supervisorMachine>;
export type SupervisorSnapshot = SnapshotFrom<typeof supervisorMachine>;
