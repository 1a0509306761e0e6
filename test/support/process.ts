import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';

/** A child process whose output is collected line by line, with a way to wait for a line. */
export class Running {
  readonly stdout: string[] = [];
  readonly stderr: string[] = [];
  private readonly waiters: { match: (line: string) => boolean; resolve: (line: string) => void }[] = [];
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
  }

  /** Resolves with the first line (past or future) that contains `text`. */
  waitFor(text: string): Promise<string> {
    const seen = [...this.stdout, ...this.stderr].find((l) => l.includes(text));
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => this.waiters.push({ match: (l) => l.includes(text), resolve }));
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

export function runKeel(args: string[]): Running {
  return new Running(spawn(process.execPath, ['bin/keel.js', ...args], { stdio: ['ignore', 'pipe', 'pipe'] }));
}

export function runScript(script: string, args: string[]): Running {
  return new Running(spawn(process.execPath, ['--import', 'tsx', script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] }));
}
