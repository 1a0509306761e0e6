import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';

/** A child process whose output is collected line by line, with a way to wait for a line. */
export class Running {
  readonly stdout: string[] = [];
  readonly stderr: string[] = [];
  private readonly waiters: { text: string; match: (line: string) => boolean; resolve: (line: string) => void; reject: (error: Error) => void }[] = [];
  readonly exited: Promise<number | null>;

  constructor(readonly child: ChildProcess) {
    const collect = (into: string[]) => {
      let partial = '';
      return (chunk: Buffer) => {
        const parts = (partial + chunk.toString()).split('\n');
        partial = parts.pop() ?? '';
        for (const line of parts) {
          into.push(line);
          for (const w of [...this.waiters]) {
            if (w.match(line)) {
              this.waiters.splice(this.waiters.indexOf(w), 1);
              w.resolve(line);
            }
          }
        }
      };
    };
    child.stdout?.on('data', collect(this.stdout));
    child.stderr?.on('data', collect(this.stderr));
    this.exited = once(child, 'exit').then(([code]) => code as number | null);
    // Once its output is closed, a line not seen will never come.
    child.on('close', (code) => {
      for (const w of this.waiters.splice(0)) w.reject(new Error(`the process exited (${code}) without printing '${w.text}'; stderr: ${this.stderr.join('\n').slice(0, 2000)}`));
    });
  }

  /** Resolves with the first line (past or future) that contains `text`. */
  waitFor(text: string): Promise<string> {
    const seen = [...this.stdout, ...this.stderr].find((l) => l.includes(text));
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => this.waiters.push({ text, match: (l) => l.includes(text), resolve, reject }));
  }

  /** Log messages from JSON lines on stdout. */
  messages(): string[] {
    return this.stdout.flatMap((l) => {
      try {
        return [String((JSON.parse(l) as { msg?: unknown }).msg)];
      } catch {
        return [];
      }
    });
  }
}

/** `node FLAGS bin/keel.js ARGS`, with the flags of its #! line, as a user's `keel` runs; `env` is added to this process's environment (e.g. KEEL_SOURCE=1: run the sources through tsx). */
export function runKeel(args: string[], env: NodeJS.ProcessEnv = {}): Running {
  return new Running(spawn(process.execPath, [...keelNodeFlags(), 'bin/keel.js', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } }));
}

/** `node FLAGS SCRIPT ARGS` with plain node: no tsx (a .js file). */
export function runNode(flags: string[], script: string, args: string[]): Running {
  return new Running(spawn(process.execPath, [...flags, script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] }));
}

/** The node flags of bin/keel.js's #! line (`#!/usr/bin/env -S node --flag=value ...`), which V8 reads only at start. */
export function keelNodeFlags(): string[] {
  const shebang = readFileSync('bin/keel.js', 'utf8').split('\n')[0]!;
  const match = /^#!\/usr\/bin\/env -S node((?: --[\w-]+=\S+)*)$/.exec(shebang);
  if (!match) throw new Error(`bin/keel.js starts with "${shebang}", not "#!/usr/bin/env -S node --flag=value ..."`);
  return match[1]!.trim().split(' ').filter(Boolean);
}

export function runScript(script: string, args: string[]): Running {
  return new Running(spawn(process.execPath, ['--import', 'tsx', script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] }));
}
