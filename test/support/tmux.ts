/** A private tmux server (its own socket) for terminal UI tests: run a command in a session, read the screen with capture-pane. */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';

export interface Tmux {
  /** A tmux command on this server, e.g. `run('send-keys', '-t', 's', 'q')`; its stdout. */
  run(...args: string[]): string;
  /** Starts `command` in a detached session `name` of `width` x `height` in the working directory. */
  session(name: string, command: string, width?: number, height?: number): void;
  /** Polls session `name`'s screen until `check` holds; fails with the last screen when the deadline passes. */
  screenUntil(name: string, check: (text: string) => boolean, what: string, timeoutMs?: number): Promise<string>;
  /** Ends the server and every session on it. */
  kill(): void;
}

export function tmuxServer(socket: string): Tmux {
  assert.ok(spawnSync('tmux', ['-V']).status === 0, 'tmux is not installed: apt-get install tmux (.ci/run installs it)');
  const run = (...args: string[]) => execFileSync('tmux', ['-L', socket, ...args], { encoding: 'utf8' });
  return {
    run,
    session(name, command, width = 170, height = 60) {
      run('-f', '/dev/null', 'new-session', '-d', '-s', name, '-x', String(width), '-y', String(height), '-c', process.cwd(), command);
    },
    async screenUntil(name, check, what, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const text = run('capture-pane', '-p', '-t', name);
        if (check(text)) return text;
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; the screen:\n${text}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    kill() {
      spawnSync('tmux', ['-L', socket, 'kill-server']);
    },
  };
}
