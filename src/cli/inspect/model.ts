/**
 * What `keel inspect` knows of the daemon, rebuilt from the inspector's
 * messages (src/inspector/protocol.ts). Pure: no sockets, no Ink, so the
 * rules are tested on their own.
 *
 *   snapshot  replaces everything
 *   actors    merges by id (a new id goes to the end, keeping the server's order)
 *   events    appends, skipping any seq already seen, keeping the latest `maxEvents`
 *   panels    replaces the panels
 *   chain     replaces the option chain
 *   error     kept to be shown (the server could not take something we sent)
 */
import type { ActorView, ChainPanel, InspectorEvent, Panels, ServerMessage } from '../../inspector/protocol.js';

export interface Model {
  /** The daemon's instance name; null until the first snapshot. */
  readonly instance: string | null;
  readonly actors: readonly ActorView[];
  readonly events: readonly InspectorEvent[];
  readonly panels: Panels | null;
  /** The option chain; null when the daemon runs none. */
  readonly chain: ChainPanel | null;
  /** The daemon accepts control commands (with the token). */
  readonly control: boolean;
  /** Daemon clock minus ours, from the last message carrying a time: backoff countdowns are in daemon time. */
  readonly skewMs: number;
  /** The server's last complaint about a message of ours; cleared by a snapshot. */
  readonly serverError: string | null;
}

export const EMPTY_MODEL: Model = { instance: null, actors: [], events: [], panels: null, chain: null, control: false, skewMs: 0, serverError: null };

export const DEFAULT_MAX_EVENTS = 200;

/** The model after `message`, received at `now` (our wall clock). */
export function applyMessage(model: Model, message: ServerMessage, now: number, maxEvents = DEFAULT_MAX_EVENTS): Model {
  switch (message.type) {
    case 'snapshot':
      return {
        instance: message.instance,
        actors: message.actors,
        events: appendEvents([], message.events, maxEvents),
        panels: message.panels,
        chain: message.chain,
        control: message.control,
        skewMs: message.at - now,
        serverError: null,
      };
    case 'actors':
      return { ...model, actors: mergeActors(model.actors, message.actors), skewMs: message.at - now };
    case 'events':
      return { ...model, events: appendEvents(model.events, message.events, maxEvents) };
    case 'panels':
      return { ...model, panels: message.panels };
    case 'chain':
      return { ...model, chain: message.chain };
    case 'error':
      return { ...model, serverError: message.message };
  }
}

export function mergeActors(current: readonly ActorView[], changed: readonly ActorView[]): readonly ActorView[] {
  if (changed.length === 0) return current;
  const byId = new Map(changed.map((a) => [a.id, a]));
  const merged = current.map((a) => {
    const next = byId.get(a.id);
    if (next) byId.delete(a.id);
    return next ?? a;
  });
  return byId.size === 0 ? merged : [...merged, ...byId.values()];
}

export function appendEvents(current: readonly InspectorEvent[], added: readonly InspectorEvent[], maxEvents: number): readonly InspectorEvent[] {
  // A snapshot and the events right after it may overlap: seq tells what is new.
  const last = current.at(-1)?.seq ?? -Infinity;
  const fresh = added.filter((e) => e.seq > last);
  if (fresh.length === 0) return current;
  const all = current.length === 0 ? fresh : [...current, ...fresh];
  return all.length > maxEvents ? all.slice(all.length - maxEvents) : all;
}

/** One line of the supervisor tree: the actor and how deep it sits. */
export interface TreeRow {
  readonly actor: ActorView;
  readonly depth: number;
}

/**
 * The actors depth first from the roots, children in the server's order.
 * An actor whose parent is unknown (a delta that came before its parent)
 * is shown as a root rather than hidden.
 */
export function treeRows(actors: readonly ActorView[]): TreeRow[] {
  const ids = new Set(actors.map((a) => a.id));
  const children = new Map<string | null, ActorView[]>();
  for (const a of actors) {
    const parent = a.parent !== null && ids.has(a.parent) && a.parent !== a.id ? a.parent : null;
    const list = children.get(parent) ?? [];
    list.push(a);
    children.set(parent, list);
  }
  const rows: TreeRow[] = [];
  const seen = new Set<string>();
  const visit = (a: ActorView, depth: number) => {
    if (seen.has(a.id)) return; // a cycle in bad data must not hang the terminal
    seen.add(a.id);
    rows.push({ actor: a, depth });
    for (const c of children.get(a.id) ?? []) visit(c, depth + 1);
  };
  for (const root of children.get(null) ?? []) visit(root, 0);
  // Whatever a cycle left unreachable still gets a line.
  for (const a of actors) if (!seen.has(a.id)) visit(a, 0);
  return rows;
}
