/**
 * YAML config files checked by a zod schema, with every problem reported on
 * one line naming the file, the YAML line, the key path, the value found and
 * what was expected. Shared by keel's config (load.ts) and the simulator's.
 */
import { readFileSync } from 'node:fs';
import { isNode, LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';

export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`${file}: ${problems.length} problem${problems.length === 1 ? '' : 's'}\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
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
  /** A problem of the key at `path` in words: `line N: path: message`. */
  describeAt(path: readonly PropertyKey[], message: string): string;
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
  const describeAt = (path: readonly PropertyKey[], message: string): string => `${at(path)}${formatPath(path)}: ${message}`;
  return { raw, describe, describeAt };
}

/** Parses YAML text and checks all of it against `schema`: the typed value, or a ConfigError with one line per problem. */
export function parseWithSchema<S extends z.ZodType>(text: string, file: string, schema: S): z.output<S> {
  const { raw, describe } = parseYaml(text, file);
  const parsed = schema.safeParse(raw, { reportInput: true });
  if (!parsed.success) throw new ConfigError(file, parsed.error.issues.map((issue) => describe(issue)));
  return parsed.data;
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
