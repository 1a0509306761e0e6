/**
 * What a supervisor decides, as pure functions: each takes the current state
 * and one thing that happened, and returns the next state plus the effects
 * the XState shell (supervisor.ts) must carry out. No timers, no actors here,
 * so every rule can be read and tested on its own.
 *
 * The rule that drives everything is reconciliation: after every event, a
 * child that is down starts as soon as all it depends on is running, and a
 * child that must come down stops as soon as everything depending on it is
 * down. Start order, parallelism, rest_for_one and shutdown order all follow.
 */
import { backoffDelay, type BackoffSettings } from './backoff.js';
import type { PermanentFailure } from './permanent.js';
import type { ChildHealth, Intensity, RestartPolicy, Strategy } from './spec.js';
import { dependentsMap, startOrder, transitiveDependents, type TreeNode } from './tree.js';

export type ChildStatus =
  | 'stopped' // down, may be started
  | 'starting' // actor spawned, not ready yet
  | 'running' // ready
  | 'stopping' // asked to shut down
  | 'backoff' // failed, waiting to be restarted
  | 'failed' // failed and will not be restarted
  | 'exited'; // finished normally and will not be restarted

export type Phase = 'starting' | 'running' | 'stopping' | 'escalating' | 'stopped' | 'failed';

export interface ChildState {
  readonly id: string;
  readonly dependsOn: readonly string[];
  readonly dependents: readonly string[];
  readonly restart: RestartPolicy;
  readonly startTimeoutMs: number;
  readonly shutdownTimeoutMs: number;
  readonly backoff: BackoffSettings;
  status: ChildStatus;
  /** Number of times started; also tells stale messages from an earlier run apart. */
  incarnation: number;
  /** Consecutive failures, the exponent of the backoff. */
  failures: number;
  startedAt?: number;
  runningSince?: number;
  backoffUntil?: number;
  lastError?: string;
  /** Its last failure was permanent: a restart cannot heal it, so it was not restarted. */
  permanent?: PermanentFailure;
  /** Why it will start again: its last failure, or an operator's request. */
  restartReason?: string;
  /** Must come down (shutdown, escalation, or rest_for_one while a dependency restarts). */
  held: boolean;
  /** Where a stopping child goes once it is down. */
  afterStop: 'stopped' | 'backoff' | 'failed';
  health?: ChildHealth;
}

/** Why a supervisor gives up: its restart intensity is spent, or a child failed permanently. */
export interface Escalation {
  readonly childId: string;
  readonly error: string;
  readonly restarts: number;
  readonly periodMs: number;
  /** The child's failure was permanent: no restart was tried, the tree stops at once. */
  readonly permanent?: PermanentFailure;
  /** Where the permanent failure happened: the child's id, or its path through nested supervisors ('market/books'). */
  readonly component?: string;
}

/** A child's failure as the supervisor shell reports it: the text for logs, and the permanent failure it is or carries. */
export interface Failure {
  readonly id: string;
  readonly incarnation: number;
  readonly error: string;
  /** Its actor still exists (a reported failure, a start timeout) and must be shut down, or is already gone (it errored). */
  readonly alive: boolean;
  readonly permanent?: PermanentFailure;
  /** Where a permanent failure happened when it came up through a nested supervisor: 'market/books'. */
  readonly where?: string;
}

export interface SupervisorState {
  readonly strategy: Strategy;
  readonly intensity: Intensity;
  readonly sequential: boolean;
  readonly order: readonly string[];
  phase: Phase;
  children: Record<string, ChildState>;
  restartTimes: number[];
  escalation?: Escalation;
}

export type TimerEvent =
  | { type: 'child.startTimeout'; id: string; incarnation: number }
  | { type: 'child.shutdownTimeout'; id: string; incarnation: number }
  | { type: 'child.backoffElapsed'; id: string; incarnation: number };

export type Effect =
  | { type: 'spawn'; id: string; incarnation: number }
  | { type: 'shutdown'; id: string }
  | { type: 'kill'; id: string }
  | { type: 'timer'; key: string; delayMs: number; event: TimerEvent }
  | { type: 'cancelTimer'; key: string }
  | { type: 'log'; level: 'info' | 'warn' | 'error'; msg: string; fields: Record<string, unknown> };

export interface Decision {
  readonly state: SupervisorState;
  readonly effects: Effect[];
}

export interface ChildPlan extends TreeNode {
  readonly restart: RestartPolicy;
  readonly startTimeoutMs: number;
  readonly shutdownTimeoutMs: number;
  readonly backoff: BackoffSettings;
}

export function initialState(
  plans: readonly ChildPlan[],
  options: { strategy: Strategy; intensity: Intensity; sequential: boolean },
): SupervisorState {
  const dependents = dependentsMap(plans);
  const children: Record<string, ChildState> = {};
  for (const plan of plans) {
    children[plan.id] = {
      id: plan.id,
      dependsOn: plan.dependsOn,
      dependents: dependents.get(plan.id) ?? [],
      restart: plan.restart,
      startTimeoutMs: plan.startTimeoutMs,
      shutdownTimeoutMs: plan.shutdownTimeoutMs,
      backoff: plan.backoff,
      status: 'stopped',
      incarnation: 0,
      failures: 0,
      held: false,
      afterStop: 'stopped',
    };
  }
  return { ...options, order: startOrder(plans), phase: 'starting', children, restartTimes: [] };
}

const DOWN: ReadonlySet<ChildStatus> = new Set(['stopped', 'backoff', 'failed', 'exited']);
export const isDown = (c: ChildState): boolean => DOWN.has(c.status);

/** Runs one decision on a copy of the state, so the caller's snapshot is never mutated. */
function decide(state: SupervisorState, now: number, change: (s: SupervisorState, fx: Effect[]) => void): Decision {
  const s: SupervisorState = {
    ...state,
    children: Object.fromEntries(Object.entries(state.children).map(([id, c]) => [id, { ...c }])),
    restartTimes: [...state.restartTimes],
  };
  const fx: Effect[] = [];
  change(s, fx);
  reconcile(s, now, fx);
  return { state: s, effects: fx };
}

/** Current incarnation of a known child, or nothing for a stale or unknown message. */
function current(s: SupervisorState, id: string, incarnation: number): ChildState | undefined {
  const c = s.children[id];
  return c && c.incarnation === incarnation ? c : undefined;
}

export function begin(state: SupervisorState, now: number): Decision {
  return decide(state, now, () => {});
}

export function childReady(state: SupervisorState, id: string, incarnation: number, now: number): Decision {
  return decide(state, now, (s, fx) => {
    const c = current(s, id, incarnation);
    if (!c || c.status !== 'starting') return;
    c.status = 'running';
    c.runningSince = now;
    fx.push({ type: 'cancelTimer', key: `start:${id}` });
    fx.push(log('info', `${id} ready`, { child: id, incarnation, startMs: now - (c.startedAt ?? now) }));
  });
}

export function childHealth(state: SupervisorState, id: string, incarnation: number, health: ChildHealth): SupervisorState {
  const c = current(state, id, incarnation);
  if (!c || (c.health?.status === health.status && c.health.detail === health.detail)) return state;
  return { ...state, children: { ...state.children, [id]: { ...c, health } } };
}

/**
 * A child failed. `alive` says whether its actor still exists (a reported
 * failure or a start timeout) and must be shut down first, or is already gone
 * (the actor errored). A permanent failure is never restarted: unless the
 * child is temporary, the supervisor stops every child in reverse order and
 * gives up, carrying the failure to its parent.
 */
export function childFailed(state: SupervisorState, failure: Failure, now: number, random: number): Decision {
  return decide(state, now, (s, fx) => {
    const c = current(s, failure.id, failure.incarnation);
    if (!c || isDown(c)) return;
    if (c.status === 'stopping' || c.afterStop !== 'stopped') {
      // Already on its way down; only its actor dying changes anything.
      if (!failure.alive) {
        fx.push(log('warn', `${c.id} failed while stopping: ${failure.error}`, { child: c.id, error: failure.error }));
        fx.push({ type: 'kill', id: c.id });
        settleStopped(c, now, fx);
      }
      return;
    }
    fx.push({ type: 'cancelTimer', key: `start:${c.id}` });
    fx.push(log('error', `${c.id} failed: ${failure.error}`, { child: c.id, error: failure.error, incarnation: c.incarnation, ...(failure.permanent ? { permanent: true } : {}) }));
    if (failure.permanent) failPermanently(s, c, failure, now, fx);
    else handleTermination(s, c, failure.error, failure.alive, true, now, random, fx);
  });
}

/** The child's actor reached a final state. */
export function childExited(state: SupervisorState, id: string, incarnation: number, now: number, random: number): Decision {
  return decide(state, now, (s, fx) => {
    const c = current(s, id, incarnation);
    if (!c || isDown(c)) return;
    fx.push({ type: 'kill', id });
    if (c.status === 'stopping' || c.afterStop !== 'stopped') {
      settleStopped(c, now, fx);
      return;
    }
    fx.push({ type: 'cancelTimer', key: `start:${id}` });
    if (c.restart === 'permanent') {
      fx.push(log('warn', `${id} exited on its own; permanent children are restarted`, { child: id }));
      handleTermination(s, c, 'exited unexpectedly', false, false, now, random, fx);
    } else {
      fx.push(log('info', `${id} finished`, { child: id }));
      c.status = 'exited';
      c.runningSince = undefined;
    }
  });
}

export function startTimedOut(state: SupervisorState, id: string, incarnation: number, now: number, random: number): Decision {
  const c = current(state, id, incarnation);
  if (!c || c.status !== 'starting') return { state, effects: [] };
  return childFailed(state, { id, incarnation, error: `not ready within ${c.startTimeoutMs} ms`, alive: true }, now, random);
}

export function shutdownTimedOut(state: SupervisorState, id: string, incarnation: number, now: number): Decision {
  return decide(state, now, (s, fx) => {
    const c = current(s, id, incarnation);
    if (!c || c.status !== 'stopping') return;
    fx.push({ type: 'kill', id });
    fx.push(log('warn', `${id} did not stop within ${c.shutdownTimeoutMs} ms; abandoned`, { child: id }));
    settleStopped(c, now, fx);
  });
}

export function backoffElapsed(state: SupervisorState, id: string, incarnation: number, now: number): Decision {
  return decide(state, now, (s) => {
    const c = current(s, id, incarnation);
    if (!c || c.status !== 'backoff') return;
    c.status = 'stopped';
    c.backoffUntil = undefined;
  });
}

export function shutdownRequested(state: SupervisorState, now: number): Decision {
  return decide(state, now, (s, fx) => {
    if (s.phase === 'stopping' || s.phase === 'escalating' || s.phase === 'stopped' || s.phase === 'failed') return;
    s.phase = 'stopping';
    fx.push(log('info', 'shutting down', {}));
    holdEverything(s, fx);
  });
}

/**
 * An operator asked for a restart: the child (and under rest_for_one what
 * depends on it) stops gracefully and starts again at once. Not a failure:
 * no backoff, and it does not count against the restart intensity.
 */
export function restartRequested(state: SupervisorState, id: string, now: number): Decision {
  return decide(state, now, (s, fx) => {
    const c = s.children[id];
    if (!c || (c.status !== 'running' && c.status !== 'starting') || (s.phase !== 'running' && s.phase !== 'starting')) return;
    fx.push(log('info', `${id} restart requested by an operator`, { child: id }));
    c.held = true;
    c.restartReason = 'requested by an operator';
    if (s.strategy === 'one_for_one') {
      takeDown(c, true, now, fx);
      return;
    }
    // rest_for_one: reconcile stops the dependents first, then the child, and starts them again in order.
    for (const dependentId of transitiveDependents(dependentsByChild(s), id)) {
      const dependent = s.children[dependentId];
      if (dependent && !isDown(dependent)) dependent.held = true;
    }
  });
}

/**
 * A failure no restart can heal. A temporary child is left failed as any
 * failure leaves it (the rest keeps running); during a shutdown the child
 * just stays down; otherwise the supervisor gives up at once: every child
 * stops in reverse order and the failure goes to its parent.
 */
function failPermanently(s: SupervisorState, c: ChildState, failure: Failure, now: number, fx: Effect[]): void {
  const { error, permanent } = failure;
  c.lastError = error;
  c.restartReason = undefined;
  c.permanent = permanent;
  c.afterStop = 'failed';
  const up = s.phase === 'starting' || s.phase === 'running';
  if (c.restart === 'temporary' || !(up || s.phase === 'escalating')) {
    if (c.restart === 'temporary') fx.push(log('warn', `${c.id} failed permanently; it is temporary, so the rest keeps running`, { child: c.id }));
    takeDownInOrder(s, c, failure.alive, now, fx);
    return;
  }
  // A permanent failure says more than a spent intensity: it replaces that reason, never another permanent one.
  if (!s.escalation?.permanent) {
    s.escalation = { childId: c.id, error, restarts: s.restartTimes.length, periodMs: s.intensity.periodMs, permanent, component: failure.where ?? c.id };
  }
  if (up) {
    s.phase = 'escalating';
    fx.push(log('error', `${c.id} failed permanently: a restart cannot heal it; stopping every component in reverse order`, { child: c.id, error, exitCode: permanent!.exitCode }));
    holdEverything(s, fx);
  }
  takeDownInOrder(s, c, failure.alive, now, fx);
}

/** Restart policy, intensity, backoff and strategy for a child that terminated while starting or running. */
function handleTermination(
  s: SupervisorState,
  c: ChildState,
  error: string,
  alive: boolean,
  abnormal: boolean,
  now: number,
  random: number,
  fx: Effect[],
): void {
  c.lastError = error;
  c.restartReason = error;
  c.permanent = undefined;
  const restart = c.restart === 'permanent' || (c.restart === 'transient' && abnormal);
  if (!restart) {
    c.afterStop = 'failed';
    takeDownInOrder(s, c, alive, now, fx);
    return;
  }
  s.restartTimes = s.restartTimes.filter((t) => t > now - s.intensity.periodMs);
  s.restartTimes.push(now);
  if (s.restartTimes.length > s.intensity.maxRestarts) {
    escalate(s, c, error, fx);
    c.afterStop = 'failed';
    takeDownInOrder(s, c, alive, now, fx);
    return;
  }
  if (c.runningSince !== undefined && now - c.runningSince >= c.backoff.resetAfterMs) c.failures = 0;
  const delayMs = backoffDelay(c.backoff, c.failures, random);
  c.failures += 1;
  c.backoffUntil = now + delayMs;
  c.afterStop = 'backoff';
  fx.push(log('info', `${c.id} restarts in ${Math.round(delayMs)} ms`, { child: c.id, delayMs, failures: c.failures }));
  if (s.strategy === 'rest_for_one') {
    for (const id of transitiveDependents(dependentsByChild(s), c.id)) {
      const dependent = s.children[id];
      if (dependent && !isDown(dependent)) dependent.held = true;
    }
  }
  takeDownInOrder(s, c, alive, now, fx);
}

/**
 * Under rest_for_one or while escalating, a failed child that is still alive
 * waits for its dependents to come down first; reconcile stops it then.
 */
function takeDownInOrder(s: SupervisorState, c: ChildState, alive: boolean, now: number, fx: Effect[]): void {
  c.runningSince = undefined;
  if (alive && (s.strategy === 'rest_for_one' || s.phase === 'escalating')) c.held = true;
  else takeDown(c, alive, now, fx);
}

function dependentsByChild(s: SupervisorState): Map<string, readonly string[]> {
  return new Map(Object.values(s.children).map((c) => [c.id, c.dependents]));
}

/** Shut a live child down, or settle one whose actor is already gone. */
function takeDown(c: ChildState, alive: boolean, now: number, fx: Effect[]): void {
  c.runningSince = undefined;
  if (alive) {
    c.status = 'stopping';
    fx.push({ type: 'shutdown', id: c.id });
    fx.push({ type: 'timer', key: `stop:${c.id}`, delayMs: c.shutdownTimeoutMs, event: shutdownTimeout(c) });
  } else {
    fx.push({ type: 'kill', id: c.id });
    settleStopped(c, now, fx);
  }
}

const shutdownTimeout = (c: ChildState): TimerEvent => ({ type: 'child.shutdownTimeout', id: c.id, incarnation: c.incarnation });

/** A child is down: put it where its stop was meant to leave it. */
function settleStopped(c: ChildState, now: number, fx: Effect[]): void {
  fx.push({ type: 'cancelTimer', key: `stop:${c.id}` });
  c.runningSince = undefined;
  if (c.afterStop === 'backoff') {
    c.status = 'backoff';
    // The backoff runs from the failure, so a slow shutdown is not paid twice.
    const delayMs = Math.max(0, (c.backoffUntil ?? now) - now);
    fx.push({ type: 'timer', key: `backoff:${c.id}`, delayMs, event: { type: 'child.backoffElapsed', id: c.id, incarnation: c.incarnation } });
  } else {
    c.status = c.afterStop;
  }
  c.afterStop = 'stopped';
}

function escalate(s: SupervisorState, c: ChildState, error: string, fx: Effect[]): void {
  s.phase = 'escalating';
  s.escalation = { childId: c.id, error, restarts: s.restartTimes.length, periodMs: s.intensity.periodMs };
  fx.push(
    log('error', `restart intensity exceeded: ${s.restartTimes.length} restarts within ${s.intensity.periodMs} ms (max ${s.intensity.maxRestarts}); last failure: ${c.id}: ${error}`, {
      child: c.id,
      error,
    }),
  );
  holdEverything(s, fx);
}

function holdEverything(s: SupervisorState, fx: Effect[]): void {
  for (const c of Object.values(s.children)) {
    c.held = true;
    if (c.status === 'backoff') {
      fx.push({ type: 'cancelTimer', key: `backoff:${c.id}` });
      c.status = 'stopped';
      c.backoffUntil = undefined;
    }
  }
}

function reconcile(s: SupervisorState, now: number, fx: Effect[]): void {
  const up = s.phase === 'starting' || s.phase === 'running';

  // Stop what must come down, dependents first.
  for (const id of [...s.order].reverse()) {
    const c = s.children[id]!;
    if (!c.held || (c.status !== 'starting' && c.status !== 'running')) continue;
    if (!c.dependents.every((d) => isDown(s.children[d]!))) continue;
    fx.push({ type: 'cancelTimer', key: `start:${id}` });
    fx.push(log('info', `stopping ${id}`, { child: id }));
    takeDown(c, true, now, fx);
  }

  if (up) {
    for (const c of Object.values(s.children)) if (c.held && isDown(c)) c.held = false;
    for (const id of s.order) {
      if (s.sequential && Object.values(s.children).some((c) => c.status === 'starting')) break;
      const c = s.children[id]!;
      if (!canStart(s, c)) continue;
      c.status = 'starting';
      c.incarnation += 1;
      c.startedAt = now;
      fx.push({ type: 'spawn', id, incarnation: c.incarnation });
      fx.push({ type: 'timer', key: `start:${id}`, delayMs: c.startTimeoutMs, event: { type: 'child.startTimeout', id, incarnation: c.incarnation } });
      if (c.incarnation === 1) fx.push(log('info', `starting ${id}`, { child: id, incarnation: c.incarnation }));
      else fx.push(log('info', `restarting ${id}: ${c.restartReason ?? 'its dependency restarted'}`, { child: id, incarnation: c.incarnation, reason: c.restartReason }));
      c.restartReason = undefined;
    }
  }

  const all = Object.values(s.children);
  if (s.phase === 'starting' && all.every((c) => c.status === 'running' || c.status === 'failed' || c.status === 'exited')) {
    s.phase = 'running';
    fx.push(log('info', 'all children running', {}));
  } else if (s.phase === 'stopping' && all.every(isDown)) {
    s.phase = 'stopped';
    fx.push(log('info', 'all children stopped', {}));
  } else if (s.phase === 'escalating' && all.every(isDown)) {
    s.phase = 'failed';
  }
}

function canStart(s: SupervisorState, c: ChildState): boolean {
  if (c.status !== 'stopped' || c.held) return false;
  // A dependency that is held is on its way down (an operator's restart): wait for it to come back.
  if (!c.dependsOn.every((d) => s.children[d]!.status === 'running' && !s.children[d]!.held)) return false;
  // rest_for_one: wait until the dependents taken down for this restart are down.
  return c.dependents.every((d) => !s.children[d]!.held || isDown(s.children[d]!));
}

function log(level: 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown>): Effect {
  return { type: 'log', level, msg, fields };
}
