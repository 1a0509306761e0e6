/**
 * What the detail view draws of one actor: its machine's states and
 * transitions, and a one-line summary of each field of its context.
 */
import type { AnyActorLogic } from 'xstate';
import type { MachineShape } from './protocol.js';

interface StateNodeLike {
  readonly key: string;
  readonly type: MachineShape['type'];
  readonly tags: readonly string[];
  readonly path: readonly string[];
  readonly states: Readonly<Record<string, StateNodeLike>>;
  readonly transitions: ReadonlyMap<string, readonly { readonly target?: readonly StateNodeLike[] }[]>;
  readonly always?: readonly { readonly target?: readonly StateNodeLike[] }[];
}

const shapes = new WeakMap<object, MachineShape | null>();

/** Null for logic that is not a state machine (promises, callbacks). Computed once per machine. */
export function machineShape(logic: AnyActorLogic): MachineShape | null {
  let shape = shapes.get(logic);
  if (shape === undefined) {
    const root = (logic as { root?: StateNodeLike }).root;
    shape = root && root.states ? shapeOf(root) : null;
    shapes.set(logic, shape);
  }
  return shape;
}

function shapeOf(node: StateNodeLike): MachineShape {
  const on: Record<string, string[]> = {};
  const add = (event: string, targets: readonly { readonly target?: readonly StateNodeLike[] }[]) => {
    const into = (on[event] ??= []);
    for (const t of targets) for (const target of t.target ?? []) if (!into.includes(target.path.join('.'))) into.push(target.path.join('.'));
  };
  for (const [event, transitions] of node.transitions) add(event.startsWith('xstate.after.') ? `after ${event.split('.')[2]} ms` : event, transitions);
  if (node.always?.length) add('(always)', node.always);
  return { key: node.key, type: node.type, tags: [...node.tags], on, states: Object.values(node.states).map(shapeOf) };
}

/** Each top-level context field as a short string; the component's own input (`ctx`) is left out. */
export function describeContext(context: unknown): Record<string, string> {
  if (!context || typeof context !== 'object') return {};
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(context)) {
    if (key === 'ctx') continue;
    out[key] = summarize(value);
  }
  return out;
}

function summarize(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  switch (typeof value) {
    case 'number':
    case 'boolean':
    case 'bigint':
      return String(value);
    case 'string':
      return value.length > 120 ? `${value.slice(0, 117)}...` : value;
    case 'function':
      return 'function';
  }
  if (Array.isArray(value)) return `[${value.length} items]`;
  if (value instanceof Map || value instanceof Set) return `${value.constructor.name}(${value.size})`;
  if (ArrayBuffer.isView(value)) return `${value.constructor.name}(${(value as unknown as { length: number }).length})`;
  const name = (value as object).constructor?.name;
  if (name && name !== 'Object') return name;
  const keys = Object.keys(value as object);
  return `{${keys.slice(0, 6).join(', ')}${keys.length > 6 ? ', ...' : ''}}`;
}
