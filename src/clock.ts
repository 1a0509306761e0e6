import { AsyncResource } from 'node:async_hooks';

/**
 * The one source of time in keel. `now()` is monotonic (latencies, timeouts,
 * backoff, ages), `wallNow()` is epoch milliseconds (records, the market's
 * calendar: expiries, the trading day), which a market clock may run faster
 * than real time, so never subtract one from the other. XState takes the same
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

/**
 * Where market time stands: at real time `realStart` (epoch ms) the market
 * reads `marketStart`, and it runs `speed` times as fast as real time.
 */
export interface MarketAnchor {
  readonly speed: number;
  readonly marketStart: number;
  readonly realStart: number;
}

/**
 * A market whose calendar runs fast: wallNow() = marketStart + (real -
 * realStart) × speed, so a whole expiry day passes in seconds. now() and the
 * timers stay real: heartbeats, timeouts, backoff and staleness bounds keep
 * their meaning, only the market's calendar moves faster. The anchor is
 * absolute, so two processes (a simulator and keel, either restarted) given
 * the same one read the same market time. `realNow` is the real epoch time
 * (tests inject their own).
 */
export function marketClock(anchor: MarketAnchor, realNow: () => number = Date.now): Clock {
  const { speed, marketStart, realStart } = anchor;
  return { ...systemClock, wallNow: () => marketStart + (realNow() - realStart) * speed };
}

interface PendingTimer {
  id: number;
  at: number;
  fn: () => void;
  /** The caller's async context, which the callback runs in. */
  context: AsyncResource;
}

/** A clock that moves only when told to. Timers fire in time order, then insertion order. */
export class ManualClock implements Clock {
  private time: number;
  private readonly wallOrigin: number;
  private nextId = 1;
  private timers: PendingTimer[] = [];
  /** When the earliest timer is due: replay asks before every row, so it is kept, not searched for. */
  private soonest = Infinity;

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
    // the callback must still be attributed to the component that set it. A
    // resource, not AsyncResource.bind: bind builds two deprecation wrappers per
    // call, a tenth of a replay's time at thousands of timers a second.
    const at = this.time + Math.max(0, ms);
    this.timers.push({ id, at, fn, context: new AsyncResource('ManualClock.timer') });
    this.soonest = Math.min(this.soonest, at);
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.timers = this.timers.filter((t) => t.id !== handle);
    this.findSoonest();
  }

  /**
   * Moves time forward by `ms`, firing every timer that comes due, and lets
   * promises settle after each one so async work chained on a timer runs at
   * the simulated instant it would have run.
   */
  async advance(ms: number): Promise<void> {
    await settle();
    await this.runUntil(this.time + ms, settle);
  }

  /** When the next timer is due (Infinity: none). */
  nextTimerAt(): number {
    return this.soonest;
  }

  private findSoonest(): void {
    let at = Infinity;
    for (const t of this.timers) at = Math.min(at, t.at);
    this.soonest = at;
  }

  /** Moves time to `target` when no timer falls due on the way: replay's fast path between timers. */
  jumpTo(target: number): void {
    if (this.nextTimerAt() <= target) throw new Error(`jumpTo(${target}) would skip a timer due at ${this.nextTimerAt()}: use runUntil`);
    this.time = Math.max(this.time, target);
  }

  /** Fires every timer due up to `target` in time order, awaiting `between` after each, then sets the time to `target`. */
  async runUntil(target: number, between: () => Promise<void>): Promise<void> {
    for (;;) {
      const next = this.earliestDue(target);
      if (!next) break;
      this.timers = this.timers.filter((t) => t !== next);
      this.findSoonest();
      this.time = next.at;
      next.context.runInAsyncScope(next.fn);
      await between();
    }
    this.time = Math.max(this.time, target);
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
