/** The dependency graph of a supervisor's children: checked once, then read. */

export interface TreeNode {
  readonly id: string;
  readonly dependsOn: readonly string[];
}

/** A tree that cannot be started; `problems` has one line per thing wrong. */
export class TreeError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid component tree:\n  ${problems.join('\n  ')}`);
    this.name = 'TreeError';
  }
}

/**
 * Every problem in the graph: duplicate ids, unknown dependencies, and each
 * dependency cycle spelled out in full (`a -> b -> c -> a`).
 */
export function findTreeProblems(nodes: readonly TreeNode[]): string[] {
  const problems: string[] = [];
  const known = new Set<string>();
  for (const node of nodes) {
    if (known.has(node.id)) problems.push(`component '${node.id}' is defined twice`);
    known.add(node.id);
  }
  for (const node of nodes) {
    for (const dep of node.dependsOn) {
      if (!known.has(dep)) problems.push(`component '${node.id}' depends on unknown component '${dep}'`);
    }
  }
  for (const cycle of findCycles(nodes, known)) {
    problems.push(`dependency cycle: ${cycle.join(' -> ')}`);
  }
  return problems;
}

export function checkTree(nodes: readonly TreeNode[]): void {
  const problems = findTreeProblems(nodes);
  if (problems.length > 0) throw new TreeError(problems);
}

function findCycles(nodes: readonly TreeNode[], known: Set<string>): string[][] {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const cycles: string[][] = [];

  const visit = (id: string): void => {
    state.set(id, 'visiting');
    stack.push(id);
    for (const dep of byId.get(id)?.dependsOn ?? []) {
      if (!known.has(dep)) continue;
      const seen = state.get(dep);
      if (seen === 'visiting') cycles.push([...stack.slice(stack.indexOf(dep)), dep]);
      else if (seen === undefined) visit(dep);
    }
    stack.pop();
    state.set(id, 'done');
  };
  for (const node of nodes) if (!state.has(node.id)) visit(node.id);
  return cycles;
}

/** Start levels: level 0 depends on nothing, level n on something at level n-1. Declaration order within a level. */
export function startLevels(nodes: readonly TreeNode[]): string[][] {
  checkTree(nodes);
  const level = new Map<string, number>();
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const levelOf = (id: string): number => {
    const cached = level.get(id);
    if (cached !== undefined) return cached;
    const deps = byId.get(id)?.dependsOn ?? [];
    const value = deps.length === 0 ? 0 : 1 + Math.max(...deps.map(levelOf));
    level.set(id, value);
    return value;
  };
  const levels: string[][] = [];
  for (const node of nodes) (levels[levelOf(node.id)] ??= []).push(node.id);
  return levels;
}

/** A start order in which every component comes after what it depends on. */
export function startOrder(nodes: readonly TreeNode[]): string[] {
  return startLevels(nodes).flat();
}

/** Direct dependents of each component. */
export function dependentsMap(nodes: readonly TreeNode[]): Map<string, string[]> {
  const map = new Map<string, string[]>(nodes.map((n) => [n.id, []]));
  for (const node of nodes) for (const dep of node.dependsOn) map.get(dep)?.push(node.id);
  return map;
}

/** Everything that depends on `id`, directly or through others. */
export function transitiveDependents(dependents: ReadonlyMap<string, readonly string[]>, id: string): string[] {
  const found = new Set<string>();
  const walk = (from: string): void => {
    for (const next of dependents.get(from) ?? []) {
      if (!found.has(next)) {
        found.add(next);
        walk(next);
      }
    }
  };
  walk(id);
  return [...found];
}

/** Longest chain of start delays through the graph: the best any start order can do. */
export function criticalPath(nodes: readonly TreeNode[], delayOf: (id: string) => number): number {
  const finish = new Map<string, number>();
  for (const id of startOrder(nodes)) {
    const node = nodes.find((n) => n.id === id);
    const ready = Math.max(0, ...(node?.dependsOn ?? []).map((d) => finish.get(d) ?? 0));
    finish.set(id, ready + delayOf(id));
  }
  return Math.max(0, ...finish.values());
}
