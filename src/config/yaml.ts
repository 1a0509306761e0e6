/**
 * YAML config files checked by a zod schema, with every problem reported on
 * one line naming the file, the YAML line, the key path, the value found and
 * what was expected. Shared by keel's config (load.ts) and the simulator's.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Node, type Pair } from 'yaml';
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

/** The largest config file read: a config is a few kilobytes, and checking one is linear in its size. */
export const MAX_CONFIG_BYTES = 1024 * 1024;
/**
 * How many alias resolutions (scaled by the size of what each alias stands
 * for) building the value may take: a few anchors are fine, a "billion laughs"
 * that expands a small file into gigabytes is refused.
 */
export const MAX_ALIAS_COUNT = 100;

const tooBig = (bytes: number, atLeast = false): string =>
  `the file is ${atLeast ? 'over ' : ''}${bytes.toLocaleString('en-US')} bytes, more than the limit of ${MAX_CONFIG_BYTES.toLocaleString('en-US')} bytes (1 MiB) for a config file`;

/**
 * The text of a config file, or a ConfigError saying why it cannot be read or
 * that it is too big to be a config. At most MAX_CONFIG_BYTES + 1 bytes are
 * read: a huge file (or a device that never ends) is refused, not read into memory.
 */
export function readConfigFile(file: string): string {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const stat = fstatSync(fd);
    if (stat.isFile() && stat.size > MAX_CONFIG_BYTES) throw new ConfigError(file, [tooBig(stat.size)]);
    const buffer = Buffer.alloc(MAX_CONFIG_BYTES + 1);
    let length = 0;
    for (let n = -1; n !== 0 && length < buffer.length; length += n) n = readSync(fd, buffer, length, buffer.length - length, null);
    if (length > MAX_CONFIG_BYTES) throw new ConfigError(file, [tooBig(stat.isFile() ? Math.max(stat.size, length) : MAX_CONFIG_BYTES, !stat.isFile())]);
    return buffer.toString('utf8', 0, length);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(file, [`cannot read the file: ${(err as NodeJS.ErrnoException).code ?? String(err)}`]);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function checkSize(text: string, file: string): void {
  // Cheap test first: a UTF-8 byte is at most one UTF-16 unit, and a unit at most 3 bytes.
  if (text.length * 3 <= MAX_CONFIG_BYTES) return;
  const bytes = Buffer.byteLength(text);
  if (bytes > MAX_CONFIG_BYTES) throw new ConfigError(file, [tooBig(bytes)]);
}

/** A parsed YAML file: its plain value, and a way to describe a zod issue with the line of its key. */
export interface YamlFile {
  readonly raw: unknown;
  describe(issue: z.core.$ZodIssue, prefix?: PropertyKey[]): string;
  /** A problem of the key at `path` in words: `line N: path: message`. */
  describeAt(path: readonly PropertyKey[], message: string): string;
}

/**
 * Parses YAML text; a syntax error is a ConfigError with its line. An empty file is `{}`.
 * Linear in the size of the text: a file over MAX_CONFIG_BYTES or whose aliases
 * expand too far is a ConfigError, and lines are looked up through an index.
 */
export function parseYaml(text: string, file: string): YamlFile {
  checkSize(text, file);
  const lines = new LineCounter();
  // The yaml package's own duplicate-key check compares each key with every earlier one (quadratic); ours is a Set per map.
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: false });
  const lineOf = (node: Node | Pair | null | undefined): number | undefined => {
    const range = isPair(node) ? (node.key as Node | null)?.range : node?.range;
    return range ? lines.linePos(range[0]).line : undefined;
  };
  const problems = doc.errors.map((e) => `line ${e.linePos?.[0].line ?? '?'}: ${e.message.split('\n')[0]}`);
  if (problems.length === 0) problems.push(...duplicateKeys(doc.contents, lineOf));
  if (problems.length > 0) throw new ConfigError(file, problems);
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT }) ?? {};
  } catch (err) {
    // The yaml package throws a ReferenceError when aliases expand past maxAliasCount.
    if (err instanceof ReferenceError) {
      throw new ConfigError(file, [
        `aliases (*name) expand too far: ${err.message.split('\n')[0]} (more than ${MAX_ALIAS_COUNT} alias expansions); write the values out instead`,
      ]);
    }
    if (err instanceof RangeError) throw new ConfigError(file, [`the YAML is nested too deeply: ${err.message.split('\n')[0]}`]);
    throw err;
  }
  // The line of the key, or of the nearest enclosing key for one that is missing.
  const index = new WeakMap<Node, Map<string, Pair>>();
  const child = (node: unknown, key: PropertyKey): Node | Pair | undefined => {
    if (isMap(node)) {
      let keys = index.get(node);
      if (!keys) {
        keys = new Map();
        for (const pair of node.items) {
          const k = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
          if (!keys.has(k)) keys.set(k, pair);
        }
        index.set(node, keys);
      }
      return keys.get(String(key));
    }
    if (isSeq(node) && typeof key === 'number') return node.items[key] as Node | undefined;
    return undefined;
  };
  const at = (path: readonly PropertyKey[]): string => {
    let line: number | undefined;
    let node: unknown = doc.contents;
    for (const key of path) {
      const found = child(node, key);
      if (found === undefined) break;
      const l = isPair(found) ? (lineOf(found.value as Node | null) ?? lineOf(found)) : lineOf(found);
      if (l !== undefined) line = l;
      node = isPair(found) ? found.value : found;
    }
    return line === undefined ? '' : `line ${line}: `;
  };
  const describe = (issue: z.core.$ZodIssue, prefix: PropertyKey[] = []): string => {
    const full = [...prefix, ...issue.path];
    if (issue.code === 'unrecognized_keys') return issue.keys.map((key) => `${at([...full, key])}${formatPath([...full, key])}: unknown key`).join('\n  ');
    return at(full) + describeIssue(issue, full);
  };
  const describeAt = (path: readonly PropertyKey[], message: string): string => `${at(path)}${formatPath(path)}: ${message}`;
  return { raw, describe, describeAt };
}

/** Each key given twice in one map, with its line; linear, walking the nodes without recursion. */
function duplicateKeys(root: unknown, lineOf: (node: Node | Pair) => number | undefined): string[] {
  const problems: string[] = [];
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const node = stack.pop();
    if (isAlias(node)) continue;
    if (isMap(node)) {
      const seen = new Set<string>();
      for (const pair of node.items) {
        if (isScalar(pair.key)) {
          const v = pair.key.value;
          const k = `${typeof v}:${String(v)}`;
          if (seen.has(k)) problems.push(`line ${lineOf(pair) ?? '?'}: ${formatKey(v)}: the key is given twice in the same map`);
          seen.add(k);
        } else if (pair.key !== null) stack.push(pair.key);
        stack.push(pair.value);
      }
    } else if (isSeq(node)) {
      for (const item of node.items) stack.push(item);
    }
  }
  return problems.sort((a, b) => lineNumber(a) - lineNumber(b));
}

const lineNumber = (problem: string): number => Number(/^line (\d+)/.exec(problem)?.[1] ?? 0);
const formatKey = (key: unknown): string => (typeof key === 'string' ? key : JSON.stringify(key) ?? String(key));

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
