/**
 * Reads a YAML config file and checks all of it at once: YAML syntax, every
 * key against the schema, each component's own settings, and the component
 * graph. A bad file gives one line per problem naming the file, the key path,
 * the value found and what was expected; a good one gives a typed config.
 */
import { componentKinds, componentSpec, kindsProviding } from '../actors/registry.js';
import { ROOT_SERVICES } from '../services.js';
import { findUnmetNeeds } from '../supervision/needs.js';
import { findTreeProblems } from '../supervision/tree.js';
import { configSchema, type KeelConfig } from './schema.js';
import { ConfigError, parseYaml, readConfigFile } from './yaml.js';

/** The most components a config may have: a real tree has a dozen or so. */
export const MAX_COMPONENTS = 1_000;

export function loadConfig(file: string): KeelConfig {
  return parseConfig(readConfigFile(file), file);
}

export function parseConfig(text: string, file: string): KeelConfig {
  const { raw, describe, describeAt } = parseYaml(text, file);
  const count = componentCount(raw);
  if (count > MAX_COMPONENTS) {
    throw new ConfigError(file, [describeAt(['components'], `${count.toLocaleString('en-US')} components, more than the limit of ${MAX_COMPONENTS.toLocaleString('en-US')}`)]);
  }
  const parsed = configSchema.safeParse(raw, { reportInput: true });
  const problems = parsed.success ? [] : parsed.error.issues.map((issue) => describe(issue));

  // Settings and the graph are checked even when other keys are wrong, so one run shows every problem.
  const components = rawComponents(raw);
  for (const [id, component] of components) {
    const kind = componentKinds[component.kind as keyof typeof componentKinds];
    if (!kind) continue;
    const settings = kind.settings.safeParse(component.settings ?? {}, { reportInput: true });
    if (!settings.success) problems.push(...settings.error.issues.map((issue) => describe(issue, ['components', id, 'settings'])));
    else if (parsed.success) parsed.data.components[id]!.settings = settings.data as Record<string, unknown>;
  }
  const nodes = components.map(([id, c]) => ({ id, dependsOn: Array.isArray(c.dependsOn) ? c.dependsOn.map(String) : [] }));
  problems.push(...findTreeProblems(nodes).map((p) => `components: ${p}`));
  // What each component needs must come from its dependsOn: judged once the rest is sound (needs can depend on settings).
  if (parsed.success && problems.length === 0) {
    const specs = Object.entries(parsed.data.components).map(([id, c]) => componentSpec(id, c.kind, { settings: c.settings, dependsOn: c.dependsOn }));
    problems.push(...findUnmetNeeds(specs, kindsProviding, ROOT_SERVICES).map((p) => describeAt(['components', p.id, 'dependsOn'], p.text)));
  }

  if (problems.length > 0 || !parsed.success) throw new ConfigError(file, problems);
  return parsed.data;
}

function componentCount(raw: unknown): number {
  const components = (raw as { components?: unknown } | null)?.components;
  return typeof components === 'object' && components !== null ? Object.keys(components).length : 0;
}

function rawComponents(raw: unknown): [string, { kind?: unknown; settings?: unknown; dependsOn?: unknown }][] {
  const components = (raw as { components?: unknown } | null)?.components;
  if (typeof components !== 'object' || components === null) return [];
  return Object.entries(components as Record<string, unknown>).map(([id, c]) => [id, typeof c === 'object' && c !== null ? c : {}]);
}
