/**
 * Reads a YAML config file and checks all of it at once: YAML syntax, every
 * key against the schema, each component's own settings, and the component
 * graph. A bad file gives one line per problem naming the file, the key path,
 * the value found and what was expected; a good one gives a typed config.
 */
import { readFileSync } from 'node:fs';
import { isNode, LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import { componentKinds } from '../actors/registry.js';
import { findTreeProblems } from '../supervision/tree.js';
import { configSchema, type KeelConfig } from './schema.js';

export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`${file}: ${problems.length} problem${problems.length === 1 ? '' : 's'}\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

export function loadConfig(file: string): KeelConfig {
  return parseConfig(readConfigFile(file), file);
}

/** The text of a config file, or a ConfigError saying why it cannot be read. */
export function readConfigFile(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [`cannot read the file: ${(err as NodeJS.ErrnoException).code ?? String(err)}`]);
  }
}

/** A parsed YAML file: its plain value, and a way to describe a zod issue with the line of its key. */
export interface YamlFile {
  readonly raw: unknown;
  describe(issue: z.core.$ZodIssue, prefix?: PropertyKey[]): string;
}

/** Parses YAML text; a syntax error is a ConfigError with its line. An empty file is `{}`. */
export function parseYaml(text: string, file: string): YamlFile {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      doc.errors.map((e) => `line ${e.linePos?.[0].line ?? '?'}: ${e.message.split('\n')[0]}`),
    );
  }
  const raw: unknown = doc.toJS() ?? {};
  // The line of the key, or of the nearest enclosing key for one that is missing.
  const at = (path: readonly PropertyKey[]): string => {
    for (let n = path.length; n > 0; n--) {
      const node = doc.getIn(path.slice(0, n) as unknown[], true);
      if (isNode(node) && node.range) return `line ${lines.linePos(node.range[0]).line}: `;
    }
    return '';
  };
  const describe = (issue: z.core.$ZodIssue, prefix: PropertyKey[] = []): string => {
    const full = [...prefix, ...issue.path];
    if (issue.code === 'unrecognized_keys') return issue.keys.map((key) => `${at([...full, key])}${formatPath([...full, key])}: unknown key`).join('\n  ');
    return at(full) + describeIssue(issue, full);
  };
  return { raw, describe };
}

/** Parses YAML text and checks all of it against `schema`: the typed value, or a ConfigError with one line per problem. */
export function parseWithSchema<S extends z.ZodType>(text: string, file: string, schema: S): z.output<S> {
  const { raw, describe } = parseYaml(text, file);
  const parsed = schema.safeParse(raw, { reportInput: true });
  if (!parsed.success) throw new ConfigError(file, parsed.error.issues.map((issue) => describe(issue)));
  return parsed.data;
}

export function parseConfig(text: string, file: string): KeelConfig {
  const { raw, describe } = parseYaml(text, file);
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

  if (problems.length > 0 || !parsed.success) throw new ConfigError(file, problems);
  return parsed.data;
}

function rawComponents(raw: unknown): [string, { kind?: unknown; settings?: unknown; dependsOn?: unknown }][] {
  const components = (raw as { components?: unknown } | null)?.components;
  if (typeof components !== 'object' || components === null) return [];
  return Object.entries(components as Record<string, unknown>).map(([id, c]) => [id, typeof c === 'object' && c !== null ? c : {}]);
}

function describeIssue(issue: z.core.$ZodIssue, path: readonly PropertyKey[]): string {
  const where = formatPath(path);
  const input = (issue as { input?: unknown }).input;
  if ('input' in issue && input === undefined) {
    return `${where}: missing; ${issue.message.replace(/^Invalid (input|option): /, '').replace(/, received undefined$/, '')}`;
  }
  const got = input === undefined ? '' : ` (got ${show(input)})`;
  return `${where}: ${issue.message}${got}`;
}

function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(top level)';
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`)).join('');
}

function show(value: unknown): string {
  const text = JSON.stringify(value);
  return text === undefined ? String(value) : text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
