/**
 * Outgoing pacing: a token bucket holding `burst` tokens and refilled at
 * `perSecond - burst` a second, so no window of one second ever carries
 * more than `perSecond` messages, and they are spread out: a burst of 45 at
 * the end of one second and 45 at the start of the next would reach TWS
 * closer together than they left (network jitter) and trip its 50-a-second
 * rule (error 100, then a disconnect). The rest wait in a priority queue
 * (lower number first, then arrival order), visible to the inspector.
 */
import type { Clock } from '../clock.js';

export const PRIORITY = { control: 0, orders: 1, subscriptions: 2, reference: 3 } as const;

interface Waiting {
  readonly priority: number;
  readonly label: string;
  readonly send: () => void;
}

export class Pacer {
  private queue: Waiting[] = [];
  private timer: unknown;
  private tokens: number;
  private refilledAt: number;
  private readonly ratePerMs: number;
  sent = 0;

  constructor(
    private readonly clock: Clock,
    readonly perSecond = 45,
    readonly burst = 5,
  ) {
    if (burst < 1 || burst >= perSecond) throw new RangeError(`pacer burst must be from 1 to below ${perSecond}, got ${burst}`);
    this.tokens = burst;
    this.refilledAt = clock.now();
    this.ratePerMs = (perSecond - burst) / 1000;
  }

  /** Sends now if the window allows and nothing more urgent waits, else queues. */
  submit(priority: number, label: string, send: () => void): void {
    const waiting: Waiting = { priority, label, send };
    // After every waiting request of the same or higher urgency: first come, first served within a priority.
    const at = this.queue.findIndex((w) => w.priority > priority);
    if (at < 0) this.queue.push(waiting);
    else this.queue.splice(at, 0, waiting);
    this.drain();
  }

  get waiting(): number {
    return this.queue.length;
  }

  /** What waits, most urgent first (for status and the inspector). */
  waitingLabels(limit = 20): string[] {
    return this.queue.slice(0, limit).map((w) => w.label);
  }

  /** Forgets everything queued (the connection is gone; its requests mean nothing now). */
  clear(): void {
    this.queue = [];
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private drain(): void {
    if (this.timer !== undefined) return;
    for (;;) {
      const next = this.queue[0];
      if (!next) return;
      const now = this.clock.now();
      this.tokens = Math.min(this.burst, this.tokens + (now - this.refilledAt) * this.ratePerMs);
      this.refilledAt = now;
      if (this.tokens < 1) {
        this.timer = this.clock.setTimeout(() => {
          this.timer = undefined;
          this.drain();
        }, Math.ceil((1 - this.tokens) / this.ratePerMs));
        return;
      }
      this.queue.shift();
      this.tokens -= 1;
      this.sent++;
      try {
        next.send();
      } catch (err) {
        // The rest of the queue must not stall behind one failed send.
        if (this.timer === undefined) this.timer = this.clock.setTimeout(() => ((this.timer = undefined), this.drain()), 0);
        throw err;
      }
      // A send that submitted more may have armed the timer already.
      if (this.timer !== undefined) return;
    }
  }
}
