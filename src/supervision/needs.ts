/**
 * Whether every component gets what its contract needs: each service it
 * needs and topic it reads must come from a component it depends on,
 * directly or through others (so it is running before it starts, and a
 * restart of the provider restarts it under rest_for_one), or from the root.
 */
import { SERVICE_DESCRIPTIONS, type ServiceName } from '../services.js';
import type { TopicName } from '../topics.js';
import { NO_CONTRACT, type ChildSpec } from './spec.js';

export type Need = { readonly service: ServiceName } | { readonly topic: TopicName };

const describe = (need: Need) => ('service' in need ? `${SERVICE_DESCRIPTIONS[need.service]} (${need.service})` : `topic ${need.topic}`);

/**
 * One line per component with unmet needs, naming each and who could meet
 * it. `providers` names the kinds that provide a need; `fromRoot` are the
 * services the root provides to every component.
 */
export function findUnmetNeeds(children: readonly ChildSpec[], providers: (need: Need) => readonly string[], fromRoot: readonly ServiceName[] = []): { id: string; text: string }[] {
  const byId = new Map(children.map((c) => [c.id, c]));
  // Each component's upstream, built once from its dependencies' (registered before it is filled, so a cycle ends).
  const upstreamOf = new Map<string, Set<string>>();
  const closure = (id: string): ReadonlySet<string> => {
    const known = upstreamOf.get(id);
    if (known) return known;
    const set = new Set<string>();
    upstreamOf.set(id, set);
    for (const dep of byId.get(id)?.dependsOn ?? []) {
      set.add(dep);
      for (const up of closure(dep)) set.add(up);
    }
    return set;
  };
  const problems: { id: string; text: string }[] = [];
  for (const child of children) {
    const contract = child.contract ?? NO_CONTRACT;
    const upstream = [...closure(child.id)].map((id) => byId.get(id)?.contract ?? NO_CONTRACT);
    const unmet: Need[] = [
      ...contract.needs.filter((s) => !fromRoot.includes(s) && !upstream.some((c) => c.provides.includes(s))).map((service): Need => ({ service })),
      ...contract.reads.filter((t) => !upstream.some((c) => c.publishes.includes(t))).map((topic): Need => ({ topic })),
    ];
    if (unmet.length === 0) continue;
    const what = unmet.map((need) => {
      const kinds = providers(need);
      const inTree = children.filter((c) => kinds.includes(c.kind ?? '')).map((c) => c.id);
      const from = inTree.length > 0 ? `from ${inTree.join(' or ')}` : kinds.length > 0 ? `from a component of kind ${kinds.join(' or ')}` : 'which no kind provides';
      return `${describe(need)} ${from}`;
    });
    problems.push({ id: child.id, text: `${child.id} needs ${what.join(', ')}, and nothing in its dependsOn provides ${unmet.length === 1 ? 'it' : 'them'}: add the provider to its dependsOn` });
  }
  return problems;
}
