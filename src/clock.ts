import { AsyncResource } from 'node:async_hooks';

/**
 * The one source of time in keel. `now()` is monotonic (latencies, timeouts,
 * backoff), `wallNow()` is epoch milliseconds (records). XState takes the same
 * object as its `clock`, so delayed events follow it too: tests and replay
 * swap in a ManualClock and control time completely.
 */
export interface Clock {
  now(): number;
  wallNow(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  wallNow: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

interface PendingTimer {
  id: number;
  at: number;
  fn: () => void;
}

/** A clock that moves only when told to. Timers fire in time order, then insertion order. */
export class ManualClock implements Clock {
  private time: number;
  private readonly wallOrigin: number;
  private nextId = 1;
  private timers: PendingTimer[] = [];

  constructor(start = 0, wallOrigin = Date.UTC(2026, 0, 5, 14, 30)) {
    this.time = start;
    this.wallOrigin = wallOrigin;
  }

  now(): number {
    return this.time;
  }

  wallNow(): number {
    return this.wallOrigin + this.time;
  }

  setTimeout(fn: () => void, ms: number): number {
    const id = this.nextId++;
    // Keep the caller's async context, as a real timer would: failures inside
    // the callback must still be attributed to the component that set it.
    this.timers.push({ id, at: this.time + Math.max(0, ms), fn: AsyncResource.bind(fn) });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.timers = this.timers.filter((t) => t.id !== handle);
  }

  /**
   * Moves time forward by `ms`, firing every timer that comes due, and lets
   * promises settle after each one so async work chained on a timer runs at
   * the simulated instant it would have run.
   */
  async advance(ms: number): Promise<void> {
    const target = this.time + ms;
    await settle();
    for (;;) {
      const next = this.earliestDue(target);
      if (!next) break;
      this.timers = this.timers.filter((t) => t !== next);
      this.time = next.at;
      next.fn();
      await settle();
    }
    this.time = target;
  }

  private earliestDue(limit: number): PendingTimer | undefined {
    let best: PendingTimer | undefined;
    for (const t of this.timers) {
      if (t.at <= limit && (!best || t.at < best.at || (t.at === best.at && t.id < best.id))) best = t;
    }
    return best;
  }
}

/** Lets queued promise callbacks and immediates run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}
