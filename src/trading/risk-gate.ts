/**
 * The risk gate: one synchronous object that every order path asks before
 * sending, and that stops trading in the same call stack that saw trouble.
 *
 *   ACTIVE    orders within the pre-trade limits pass
 *   REDUCING  only orders that shrink a position, within the limits
 *   HALTED    nothing but cancels
 *
 * Trouble arrives as conditions, level-triggered: each source (feature
 * health, the IB link, later Redis and the journal) reports the full set of
 * what is wrong now, key -> reason. A new condition halts at once and every
 * working order is cancelled before `report` returns. The gate resumes by an
 * explicit command once no condition remains, or by itself after a healthy
 * period when the config allows and the halt was not an operator's.
 *
 * The pre-trade limits (limits.ts) judge every order the state lets
 * through. The day's loss is reported to the gate (`reportDailyPnl`): beyond
 * `maxDailyLoss` it halts like an operator (only an explicit resume ends
 * it, and not while the loss is still beyond the limit); a P&L that is not
 * a number halts like any other bad data, until a real figure comes back.
 */
import type { Clock } from '../clock.js';
import { amount, figure, PreTradeLimits, shrinks, type RiskLimits } from './limits.js';

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

/** What the gate needs to know about an order to judge it: its state rules and every pre-trade limit. */
export interface OrderIntent {
  readonly symbol: string;
  /** Signed: positive buys, negative sells. A non-zero whole number. */
  readonly quantity: number;
  /** The position before the order, signed. */
  readonly position: number;
  /** The order's limit price, or the price expected for a market order. */
  readonly price: number;
  /** The instrument's mid now; NaN when unknown (refused: never trade without a mid). */
  readonly mid: number;
  /** Signed quantity still open in this instrument's other working orders. */
  readonly working: number;
  /** The portfolio's gross exposure now, sum of |quantity x mark|, account currency. */
  readonly grossExposure: number;
}

export interface GateOptions {
  /** Resume by itself after `healthyPeriodMs` with no condition (never after an operator's halt). */
  readonly autoResume: boolean;
  readonly healthyPeriodMs: number;
  /** Pre-trade limits; without them the gate judges its state only (unit tests, benchmarks). The risk_gate actor always has them. */
  readonly limits?: RiskLimits;
}

export type Decision = { readonly ok: true } | { readonly ok: false; readonly reason: string };
const OK: Decision = { ok: true };
const NONE: ReadonlyMap<string, string> = new Map();
/** The condition source of the day's P&L, and who halts on it. */
const DAILY_LOSS = 'daily loss';

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
  readonly limits: PreTradeLimits | undefined;
  /** The last daily P&L reported (NaN before any), and what it means for the gate. */
  dailyPnl = NaN;
  private lossBeyondLimit = false;
  private lossReason = '';
  private pnlUnknown = false;

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
    this.limits = options.limits ? new PreTradeLimits(options.limits) : undefined;
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

  /**
   * May this order be sent? The state first (HALTED refuses, REDUCING only
   * lets through what shrinks the position), then every pre-trade limit. An
   * order it allows counts against the order rate. Cancels are never asked:
   * they are always allowed.
   */
  check(order: OrderIntent): Decision {
    if (this.state === 'HALTED') return { ok: false, reason: `trading halted: ${this.reason}` };
    if (this.state === 'REDUCING') {
      // Working orders count as filled: two reducing orders must not flip the position together.
      if (!shrinks(order.position + order.working, order.quantity)) {
        const working = order.working !== 0 ? ` and working ${order.working}` : '';
        return { ok: false, reason: `reduce-only (${this.reason}): ${order.symbol} order of ${order.quantity} would not shrink the position of ${order.position}${working}` };
      }
    }
    return this.limits ? this.limits.check(order, this.clock.now()) : OK;
  }

  /**
   * The day's P&L (realized + unrealized - fees, account currency), each
   * time it changes. A loss beyond `maxDailyLoss` halts in this call, working
   * orders cancelled first, by 'daily loss'; like an operator's halt it never
   * ends by itself, and a resume is refused while the loss is still beyond
   * the limit. A P&L that is not a finite number (a position without a mark)
   * halts too: the loss cannot be judged. That one is an ordinary condition,
   * lifted by the next finite figure, after which the usual resume rules
   * apply; the last finite figure still decides whether the loss is beyond
   * the limit.
   */
  reportDailyPnl(pnl: number): void {
    this.dailyPnl = pnl;
    const unknown = !Number.isFinite(pnl);
    const max = this.limits?.limits.maxDailyLoss ?? Infinity;
    const beyond = unknown ? this.lossBeyondLimit : pnl < -max;
    if (beyond === this.lossBeyondLimit && unknown === this.pnlUnknown) return;
    const problems = new Map<string, string>();
    if (beyond && !this.lossBeyondLimit) {
      // A new breach latches the halt as an operator's; one already in force has done so.
      this.haltedByOperator = true;
      this.lossReason = `max daily loss: ${amount(-pnl)} > ${figure(max)}`;
    }
    if (beyond) problems.set('beyond limit', this.lossReason);
    if (unknown) problems.set('unknown', `daily P&L is ${pnl}: the daily loss limit cannot be judged`);
    this.lossBeyondLimit = beyond;
    this.pnlUnknown = unknown;
    this.report(DAILY_LOSS, problems.size > 0 ? problems : NONE);
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
