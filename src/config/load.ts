/**
 * Reads a YAML config file and checks all of it at once: YAML syntax, every
 * key against the schema, each component's own settings, and the component
 * graph. A bad file gives one line per problem naming the file, the key path,
 * the value found and what was expected; a good one gives a typed config.
 *
 * A file may start from another (`extends: default.yaml`, relative to it):
 * maps merge key by key, anything else (lists included) replaces, and `null`
 * removes a key (`simulator: null` takes the simulator out). A problem is
 * reported against the file that set the key.
 */
import { dirname, resolve } from 'node:path';
import { paperTraderSettings, unservedHorizon } from '../actors/paper-trader.js';
import { horizonTiers, predictorSettings } from '../actors/predictor.js';
import { componentKinds, componentSpec, kindsProviding } from '../actors/registry.js';
import { horizonLabel } from '../models/horizon.js';
import { ROOT_SERVICES } from '../services.js';
import { findUnmetNeeds } from '../supervision/needs.js';
import { findTreeProblems } from '../supervision/tree.js';
import { configSchema, type KeelConfig } from './schema.js';
import { ConfigError, parseYaml, readConfigFile, type YamlFile } from './yaml.js';

/** The most components a config may have: a real tree has a dozen or so. */
export const MAX_COMPONENTS = 1_000;

/** How many files one config may stack: a base and an overlay or two is the use. */
export const MAX_EXTENDS_DEPTH = 4;

export function loadConfig(file: string): KeelConfig {
  return parseConfig(readConfigFile(file), file);
}

export function parseConfig(text: string, file: string): KeelConfig {
  const { raw, describe, describeAt } = layered(text, file);
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
    problems.push(...unservedHorizons(parsed.data.components).map((p) => describeAt(['components', p.id, 'settings', ...p.key.split('.')], p.text)));
  }

  if (problems.length > 0 || !parsed.success) throw new ConfigError(file, problems);
  return parsed.data;
}

/** A paper trader reading a horizon the predictor it depends on does not serve: found here rather than at the first frame, a minute after the start. */
function unservedHorizons(components: KeelConfig['components']): { id: string; key: string; text: string }[] {
  const problems = [];
  for (const [id, c] of Object.entries(components)) {
    if (c.kind !== 'paper_trader') continue;
    const predictorId = c.dependsOn.find((d) => components[d]?.kind === 'predictor');
    if (predictorId === undefined) continue;
    const served = horizonTiers(predictorSettings.parse(components[predictorId]!.settings)).map((h) => h.horizonMs);
    const unserved = unservedHorizon(paperTraderSettings.parse(c.settings), served);
    if (!unserved) continue;
    const text = `${horizonLabel(unserved.horizonMs)}, but ${predictorId} serves ${served.map(horizonLabel).join(', ')}: serve it in components.${predictorId}.settings.horizons, or trade one of those`;
    problems.push({ id, key: unserved.key, text });
  }
  return problems;
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

interface Layer {
  readonly file: string;
  readonly yaml: YamlFile;
}

/**
 * The file and those it extends, merged; problems are described by the
 * layer that holds the deepest part of their key path (the top file on a
 * tie, and for keys no file has).
 */
function layered(text: string, file: string): YamlFile {
  const layers: Layer[] = [{ file, yaml: parseYaml(text, file) }];
  for (;;) {
    const top = layers.at(-1)!;
    const base = extendsOf(top);
    if (base === undefined) break;
    const path = resolve(dirname(top.file), base);
    if (layers.some((l) => resolve(l.file) === path)) throw new ConfigError(file, [`extends: ${top.file} extends ${base}, which is already in the chain (${layers.map((l) => l.file).join(' -> ')})`]);
    if (layers.length > MAX_EXTENDS_DEPTH) throw new ConfigError(file, [`extends: more than ${MAX_EXTENDS_DEPTH} files deep (${layers.map((l) => l.file).join(' -> ')})`]);
    layers.push({ file: path, yaml: parseYaml(readConfigFile(path), path) });
  }
  if (layers.length === 1) return layers[0]!.yaml;
  const raw = layers.reduceRight<unknown>((merged, layer) => overlay(merged, withoutExtends(layer.yaml.raw)), {});
  const owner = (path: readonly PropertyKey[]): Layer => {
    let best = layers[0]!;
    let bestDepth = -1;
    for (const layer of layers) {
      const depth = depthIn(layer.yaml.raw, path);
      if (depth > bestDepth) [best, bestDepth] = [layer, depth];
    }
    return best;
  };
  const from = (layer: Layer) => (layer === layers[0] ? '' : `(in ${layer.file}) `);
  return {
    raw,
    describe: (issue, prefix = []) => {
      const layer = owner([...prefix, ...issue.path]);
      return from(layer) + layer.yaml.describe(issue, prefix);
    },
    describeAt: (path, message) => {
      const layer = owner(path);
      return from(layer) + layer.yaml.describeAt(path, message);
    },
  };
}

function extendsOf(layer: Layer): string | undefined {
  const value = isMap(layer.yaml.raw) ? layer.yaml.raw.extends : undefined;
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value === '') throw new ConfigError(layer.file, [layer.yaml.describeAt(['extends'], `expected the path of the config file this one starts from (got ${JSON.stringify(value)})`)]);
  return value;
}

function withoutExtends(raw: unknown): unknown {
  if (!isMap(raw) || !Object.hasOwn(raw, 'extends')) return raw;
  const rest = { ...raw };
  delete rest.extends;
  return rest;
}

/** `top` over `base`: maps merge, null removes, anything else replaces. */
function overlay(base: unknown, top: unknown): unknown {
  if (!isMap(base) || !isMap(top)) return top;
  const merged: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(base)) define(merged, key, value);
  for (const [key, value] of Object.entries(top)) {
    if (value === null) delete merged[key];
    else define(merged, key, overlay(merged[key], value));
  }
  return merged;
}

/** As an own property, so a key named __proto__ stays a key the schema refuses. */
function define(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/** How many leading keys of `path` exist in `raw`. */
function depthIn(raw: unknown, path: readonly PropertyKey[]): number {
  let node = raw;
  for (let i = 0; i < path.length; i++) {
    if (typeof node !== 'object' || node === null || !Object.hasOwn(node, path[i]!)) return i;
    node = (node as Record<PropertyKey, unknown>)[path[i]!];
  }
  return path.length;
}

function isMap(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
