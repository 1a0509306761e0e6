/**
 * The risk gate: one synchronous object that every order path asks before
 * sending, and that stops trading in the same call stack that saw trouble.
 *
 *   ACTIVE    orders pass (pre-trade limits come with the trader)
 *   REDUCING  only orders that shrink a position
 *   HALTED    nothing but cancels
 *
 * Trouble arrives as conditions, level-triggered: each source (feature
 * health, the IB link, later Redis and the journal) reports the full set of
 * what is wrong now, key -> reason. A new condition halts at once and every
 * working order is cancelled before `report` returns. The gate resumes by an
 * explicit command once no condition remains, or by itself after a healthy
 * period when the config allows and the halt was not an operator's.
 */
import type { Clock } from '../clock.js';

export type GateState = 'ACTIVE' | 'REDUCING' | 'HALTED';

export interface GateTransition {
  readonly from: GateState;
  readonly to: GateState;
  readonly reason: string;
  /** Who moved it: a condition source, 'operator', or 'gate' (auto-resume). */
  readonly by: string;
  /** Wall-clock time, ms. */
  readonly at: number;
}

/** What the gate needs to know about an order to judge it. */
export interface OrderIntent {
  readonly symbol: string;
  /** Signed: positive buys, negative sells. */
  readonly quantity: number;
  /** The position before the order, signed. */
  readonly position: number;
}

export interface GateOptions {
  /** Resume by itself after `healthyPeriodMs` with no condition (never after an operator's halt). */
  readonly autoResume: boolean;
  readonly healthyPeriodMs: number;
}

export type Decision = { readonly ok: true } | { readonly ok: false; readonly reason: string };
const OK: Decision = { ok: true };

export class RiskGate {
  state: GateState;
  reason: string;
  /** Monotonic time of the last transition. */
  since: number;
  private haltedByOperator = false;
  private readonly conditions = new Map<string, ReadonlyMap<string, string>>();
  /** Monotonic time since which no condition was present (NaN while one is). */
  private clearSince: number;
  private readonly cancellers = new Set<() => void>();
  private readonly listeners = new Set<(t: GateTransition) => void>();

  constructor(
    private readonly clock: Pick<Clock, 'now' | 'wallNow'>,
    private readonly options: GateOptions,
    initial: { state: GateState; reason: string } = { state: 'ACTIVE', reason: 'started' },
  ) {
    this.state = initial.state;
    this.reason = initial.reason;
    this.since = clock.now();
    this.clearSince = this.since;
    this.haltedByOperator = initial.state === 'HALTED';
  }

  /**
   * A source's full set of conditions now. Any key not reported before
   * halts the gate (if it is not halted already), with working orders
   * cancelled before this returns.
   */
  report(source: string, problems: ReadonlyMap<string, string>): void {
    const before = this.conditions.get(source);
    if (problems.size === 0) {
      if (before === undefined) return;
      this.conditions.delete(source);
      if (this.conditions.size === 0) this.clearSince = this.clock.now();
      return;
    }
    this.conditions.set(source, problems);
    this.clearSince = NaN;
    if (this.state === 'HALTED') return;
    for (const [key, reason] of problems) {
      if (before?.has(key)) continue;
      const more = problems.size > 1 ? ` (and ${problems.size - 1} more)` : '';
      this.move('HALTED', reason + more, source);
      return;
    }
  }

  /** Every condition present now, `source: reason`. */
  activeConditions(): string[] {
    const out: string[] = [];
    for (const [source, problems] of this.conditions) for (const reason of problems.values()) out.push(`${source}: ${reason}`);
    return out;
  }

  /** An operator's halt: only an explicit resume ends it. */
  halt(reason: string, by = 'operator'): void {
    this.haltedByOperator = true;
    if (this.state !== 'HALTED') this.move('HALTED', reason, by);
  }

  reduceOnly(reason: string, by = 'operator'): Decision {
    if (this.state === 'REDUCING') return OK;
    if (this.state === 'HALTED') {
      const blocked = this.blockedBy();
      if (blocked) return blocked;
    }
    this.move('REDUCING', reason, by);
    return OK;
  }

  /** Back to ACTIVE, refused while any condition is present. */
  resume(reason: string, by = 'operator'): Decision {
    if (this.state === 'ACTIVE') return OK;
    const blocked = this.blockedBy();
    if (blocked) return blocked;
    this.move('ACTIVE', reason, by);
    return OK;
  }

  /** Called on a timer: the configured healthy period may end a halt. */
  tick(now: number): void {
    if (!this.options.autoResume || this.state !== 'HALTED' || this.haltedByOperator) return;
    const clear = this.clearSince;
    if (clear === clear && now - clear >= this.options.healthyPeriodMs && now - this.since >= this.options.healthyPeriodMs) {
      this.move('ACTIVE', `no condition for ${Math.round(this.options.healthyPeriodMs / 1000)} s`, 'gate');
    }
  }

  /** May this order be sent? Cancels are never asked: they are always allowed. */
  check(order: OrderIntent): Decision {
    if (this.state === 'HALTED') return { ok: false, reason: `trading halted: ${this.reason}` };
    if (this.state === 'REDUCING') {
      const after = order.position + order.quantity;
      const shrinks = order.position !== 0 && Math.sign(after) !== -Math.sign(order.position) && Math.abs(after) < Math.abs(order.position);
      if (!shrinks) {
        return { ok: false, reason: `reduce-only (${this.reason}): ${order.symbol} order of ${order.quantity} would not shrink the position of ${order.position}` };
      }
    }
    return OK;
  }

  /** `cancelAll` runs on every halt, synchronously; returns what unregisters it. */
  onHalt(cancelAll: () => void): () => void {
    this.cancellers.add(cancelAll);
    return () => this.cancellers.delete(cancelAll);
  }

  onTransition(listener: (t: GateTransition) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private blockedBy(): Decision | undefined {
    const present = this.activeConditions();
    if (present.length === 0) return undefined;
    return { ok: false, reason: `${present.length} condition${present.length > 1 ? 's' : ''} still present: ${present.join('; ')}` };
  }

  private move(to: GateState, reason: string, by: string): void {
    const transition: GateTransition = { from: this.state, to, reason, by, at: this.clock.wallNow() };
    this.state = to;
    this.reason = reason;
    if (to !== 'HALTED') this.haltedByOperator = false;
    this.since = this.clock.now();
    let failure: unknown;
    // Cancels first: they are the point of halting. One canceller failing must not spare the others' orders.
    if (to === 'HALTED') {
      for (const cancelAll of this.cancellers) {
        try {
          cancelAll();
        } catch (error) {
          failure ??= error;
        }
      }
    }
    for (const listener of this.listeners) listener(transition);
    if (failure !== undefined) throw failure;
  }
}
