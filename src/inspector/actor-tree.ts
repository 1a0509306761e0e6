/**
 * The actor tree as an inspector sees it, kept from XState's own inspection
 * stream (every actor in the one system) and the supervisors' registries
 * (their context: status, restarts, backoff, last error, health of each
 * child, including children not started yet).
 *
 * The daemon creates one before the root actor and passes `observe` as the
 * root's `inspect` option, so the tree is whole from the first event and a
 * client attaching late sees everything. Observing is cheap: XState carries
 * control events only (the data plane never goes through it), and a
 * snapshot that changes nothing the tree shows costs a few comparisons.
 *
 * Readers pull: `takeChanged()` hands over the actors changed since the last
 * call, so a reader calling it every 100 ms sends each actor at most ten
 * times a second however fast it changes. Notable happenings go to a
 * bounded ring of events.
 */
import type { AnyActorLogic, InspectionEvent } from 'xstate';
import type { Clock } from '../clock.js';
import type { ChildState, SupervisorState } from '../supervision/decisions.js';
import type { ChildSpec } from '../supervision/spec.js';
import { EventRing } from './event-ring.js';
import { describeContext, machineShape } from './machine-shape.js';
import { stateText } from './web/state-text.js';
import type { ActorDetail, ActorView, InspectorEvent, InspectorEventKind } from './protocol.js';

/** What inspection hands over is the actor itself (XState's Actor), not just a ref. */
interface InspectedActor {
  readonly systemId: string | undefined;
  readonly _parent?: InspectedActor;
  readonly logic: AnyActorLogic;
  readonly system: { get(systemId: string): unknown };
  getSnapshot(): unknown;
  send(event: { type: string; [key: string]: unknown }): void;
}

type MutableView = { -readonly [K in keyof ActorView]: ActorView[K] };

/** A supervisor's context as far as the tree reads it. */
interface SupervisorContextLike {
  readonly core: SupervisorState;
  readonly specs: Readonly<Record<string, ChildSpec>>;
}

function supervisorContext(context: unknown): SupervisorContextLike | undefined {
  const c = context as Partial<SupervisorContextLike> | undefined;
  return c && typeof c === 'object' && c.core && c.specs ? (c as SupervisorContextLike) : undefined;
}

/** State values are strings or small objects; compare them by their JSON. */
const sameState = (a: unknown, b: unknown) => a === b || (typeof a === 'object' && typeof b === 'object' && JSON.stringify(a) === JSON.stringify(b));

export class ActorTree {
  private readonly views = new Map<string, MutableView>();
  /** The latest actor of each id: restarted actors replace their earlier self. */
  private readonly refs = new Map<string, InspectedActor>();
  private readonly changed = new Set<string>();
  /** Per supervisor, the registry last read, so an unchanged one is skipped by identity. */
  private readonly lastCore = new Map<string, SupervisorState>();
  private readonly ring: EventRing;

  constructor(
    private readonly clock: Pick<Clock, 'now' | 'wallNow'>,
    ringCapacity = 500,
  ) {
    this.ring = new EventRing(ringCapacity);
  }

  /** XState's inspection callback: pass as `createActor(root, {inspect: tree.observe})`. */
  readonly observe = (event: InspectionEvent): void => {
    if (event.type !== '@xstate.snapshot') return;
    const ref = event.actorRef as unknown as InspectedActor;
    // XState announces an actor (@xstate.actor) before it has its systemId: take actors at their snapshots.
    const id = ref.systemId;
    if (id === undefined) return;
    if (this.refs.get(id) !== ref) {
      // A late snapshot of an earlier incarnation is not news; a new incarnation is the one the system knows by that id.
      if (ref.system.get(id) !== ref) return;
      this.refs.set(id, ref);
      // A new incarnation starts from no state: its first state is not a transition from the last one's.
      this.view(id, ref).state = null;
    }
    const snapshot = event.snapshot as { value?: unknown; status: string; context?: unknown };
    this.onState(id, snapshot.value === undefined ? null : snapshot.value);
    const registry = supervisorContext(snapshot.context);
    if (registry) this.onRegistry(id, registry);
  };

  /** Every actor, parents before children. */
  actors(): ActorView[] {
    const children = new Map<string | null, MutableView[]>();
    for (const v of this.views.values()) {
      const parent = v.parent !== null && this.views.has(v.parent) ? v.parent : null;
      const list = children.get(parent) ?? [];
      list.push(v);
      children.set(parent, list);
    }
    const out: ActorView[] = [];
    const visit = (parent: string | null) => {
      for (const v of children.get(parent) ?? []) {
        out.push({ ...v });
        visit(v.id);
      }
    };
    visit(null);
    return out;
  }

  /** The actors changed since the last call, each once. */
  takeChanged(): ActorView[] {
    const out: ActorView[] = [];
    for (const id of this.changed) {
      const view = this.views.get(id);
      if (view) out.push({ ...view });
    }
    this.changed.clear();
    return out;
  }

  events(): InspectorEvent[] {
    return this.ring.all();
  }

  eventsSince(seq: number): InspectorEvent[] {
    return this.ring.since(seq);
  }

  get lastSeq(): number {
    return this.ring.lastSeq;
  }

  /** Adds a line to the event log (gate changes, model swaps, reconnects come from the bus). */
  note(kind: InspectorEventKind, actor: string, text: string): void {
    this.ring.push({ at: this.clock.wallNow(), kind, actor, text });
  }

  /** The root supervisor's phase ('starting', 'running', ...), or 'starting' before it exists. */
  phase(): string {
    return this.views.get('root')?.status ?? 'starting';
  }

  detail(id: string): ActorDetail | undefined {
    const view = this.views.get(id);
    if (!view) return undefined;
    const ref = this.refs.get(id);
    const snapshot = ref?.getSnapshot() as { context?: unknown } | undefined;
    return {
      actor: { ...view },
      machine: ref ? machineShape(ref.logic) : null,
      context: describeContext(snapshot?.context),
      events: this.ring.all().filter((e) => e.actor === id),
    };
  }

  /**
   * Asks the supervisor of `id` to restart it; looked up at send time, so a
   * restarted supervisor is never missed. Returns why it cannot, or undefined.
   */
  requestRestart(id: string): string | undefined {
    const view = this.views.get(id);
    if (!view) return `no actor '${id}'`;
    if (view.parent === null) return `'${id}' is the root: stop and start the daemon instead`;
    const supervisor = this.refs.get(view.parent);
    if (!supervisor) return `the supervisor of '${id}' is not running`;
    if (view.status !== 'running' && view.status !== 'starting') return `'${id}' is ${view.status}, not running`;
    supervisor.send({ type: 'restart', id });
    return undefined;
  }

  private view(id: string, ref?: InspectedActor): MutableView {
    let view = this.views.get(id);
    if (!view) {
      view = {
        id,
        parent: ref ? parentOf(ref) : null,
        kind: id === 'root' ? 'supervisor' : 'unknown',
        state: null,
        status: 'stopped',
        restarts: 0,
        backoffUntil: null,
        lastError: null,
        health: null,
        since: this.clock.wallNow(),
      };
      this.views.set(id, view);
      this.changed.add(id);
    } else if (ref && view.parent === null && id !== 'root') {
      view.parent = parentOf(ref);
    }
    return view;
  }

  private onState(id: string, value: unknown): void {
    const view = this.view(id);
    if (sameState(view.state, value)) return;
    const from = view.state;
    view.state = value;
    view.since = this.clock.wallNow();
    this.changed.add(id);
    if (from !== null) this.note('transition', id, `${id}: ${stateText(from)} -> ${stateText(value)}`);
  }

  private onRegistry(supervisorId: string, { core, specs }: SupervisorContextLike): void {
    if (this.lastCore.get(supervisorId) === core) return;
    this.lastCore.set(supervisorId, core);
    const self = this.view(supervisorId);
    if (self.status !== core.phase) {
      this.note('status', supervisorId, `${supervisorId} ${core.phase}`);
      self.status = core.phase;
      self.since = this.clock.wallNow();
      this.changed.add(supervisorId);
    }
    for (const child of Object.values(core.children)) {
      const view = this.view(child.id);
      view.parent = supervisorId;
      view.kind = specs[child.id]?.kind ?? 'component';
      this.onChild(view, child);
    }
  }

  private onChild(view: MutableView, child: ChildState): void {
    const restarts = Math.max(0, child.incarnation - 1);
    const backoffUntil = child.backoffUntil === undefined ? null : Math.round(this.clock.wallNow() + child.backoffUntil - this.clock.now());
    const lastError = child.lastError ?? null;
    const health = child.health ?? null;
    const statusChanged = view.status !== child.status;
    if (!statusChanged && view.restarts === restarts && view.lastError === lastError && view.health === health) return;
    if (lastError !== null && lastError !== view.lastError) this.note('status', view.id, `${view.id} failed: ${lastError}`);
    if (restarts > view.restarts) this.note('restart', view.id, `${view.id} restarting (restart ${restarts})`);
    if (statusChanged) {
      const more = child.status === 'backoff' && backoffUntil !== null ? ` for ${Math.max(0, backoffUntil - this.clock.wallNow())} ms` : '';
      this.note('status', view.id, `${view.id} ${child.status}${more}`);
      view.since = this.clock.wallNow();
    }
    view.status = child.status;
    view.restarts = restarts;
    view.backoffUntil = backoffUntil;
    view.lastError = lastError;
    view.health = health;
    this.changed.add(view.id);
  }
}

/** The nearest ancestor with a systemId: components' own helper actors are not part of the tree. */
function parentOf(ref: InspectedActor): string | null {
  for (let p = ref._parent; p; p = p._parent) if (p.systemId !== undefined) return p.systemId;
  return null;
}

