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
 * Some trouble is evidence rather than data: an execution report refused
 * before it could be journaled says nothing that a later report takes back.
 * Such a condition is latched (`latch`): it halts like any other, no
 * healthy period ends it, and it is cleared by an operator's resume, which
 * acknowledges it (it never refuses the resume, unlike a data condition).
 *
 * `reason` is always what holds the gate now, never a stale one: while
 * HALTED, the first condition present (data, then latched), else the
 * operator's halt, else the cleared cause waiting for a resume; `holds()`
 * lists all of them.
 *
 * Option trading has conditions of its own (`reportOptions`: the chain's
 * health, options/chain-health.ts): while any is present, option orders
 * are refused and stock orders go on as the state allows.
 *
 * The pre-trade limits (limits.ts) judge every order the state lets
 * through. The day's loss is reported to the gate (`reportDailyPnl`): beyond
 * `maxDailyLoss` it halts like an operator (only an explicit resume ends
 * it, and not while the loss is still beyond the limit); a P&L that is not
 * a number halts like any other bad data, until a real figure comes back.
 */
import type { Clock } from '../clock.js';
import { amount, figure, optionCombo, PreTradeLimits, shrinks, type RiskLimits } from './limits.js';
import { reducesGreeks, type ComboRisk, type OptionRisk } from './option-limits.js';

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
  /** IB's security type: options (OPT) and combos of them (BAG) also answer to the option conditions. Default STK. */
  readonly secType?: 'STK' | 'OPT' | 'BAG';
  /** An option order's greeks, contracts and premium, and the portfolio's (option-limits.ts); quantity is then contracts, price and mid per share. */
  readonly option?: OptionRisk;
  /**
   * A combo's (secType BAG) legs with their greeks and quotes, and the
   * portfolio's; quantity is then combos, price and mid the net a share
   * (a credit negative), position and working 0 (each leg carries its own).
   */
  readonly combo?: ComboRisk;
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
  /** The reason given for the last transition; `reason` is what holds the gate now. */
  private movedFor: string;
  /** Monotonic time of the last transition. */
  since: number;
  /** The operator's halt in force (its reason, and who), or undefined: only an explicit resume ends it. */
  private operatorHalt: { readonly reason: string; readonly by: string } | undefined;
  private readonly conditions = new Map<string, ReadonlyMap<string, string>>();
  /** Conditions that stop option trading only, by source. */
  private readonly optionConditions = new Map<string, ReadonlyMap<string, string>>();
  /** Latched conditions, by source then key: only an operator's resume clears them. */
  private readonly latched = new Map<string, Map<string, string>>();
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
    this.movedFor = initial.reason;
    this.since = clock.now();
    this.clearSince = this.since;
    this.operatorHalt = initial.state === 'HALTED' ? { reason: initial.reason, by: 'start' } : undefined;
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

  /**
   * A source's full set of option conditions now: while any is present,
   * option orders are refused; they go on by themselves once none is.
   * Returns whether option trading was allowed before and is not now, or
   * the other way round.
   */
  reportOptions(source: string, problems: ReadonlyMap<string, string>): boolean {
    const before = this.optionConditions.size === 0;
    if (problems.size === 0) this.optionConditions.delete(source);
    else this.optionConditions.set(source, problems);
    return before !== (this.optionConditions.size === 0);
  }

  /** What stops option trading now, `source: reason`; empty when options may trade as the state allows. */
  optionHolds(): string[] {
    const out: string[] = [];
    for (const [source, problems] of this.optionConditions) for (const reason of problems.values()) out.push(`${source}: ${reason}`);
    return out;
  }

  /**
   * A condition only an operator's resume clears (evidence, such as an
   * execution report refused): halts at once, with working orders cancelled
   * before this returns, unless already halted. The same key again changes
   * nothing.
   */
  latch(source: string, key: string, reason: string): void {
    let problems = this.latched.get(source);
    if (!problems) this.latched.set(source, (problems = new Map()));
    if (problems.has(key)) return;
    problems.set(key, reason);
    if (this.state !== 'HALTED') this.move('HALTED', reason, source);
  }

  /** Every condition present now, `source: reason`: data conditions, then latched ones (marked as waiting for a resume). */
  activeConditions(): string[] {
    const out = this.dataConditions();
    for (const [source, problems] of this.latched) for (const reason of problems.values()) out.push(`${source}: ${reason} (until an operator resumes)`);
    return out;
  }

  /**
   * What holds the gate out of ACTIVE now, `who: why`, most binding first:
   * the conditions present, then an operator's halt (or reduce-only), or,
   * with nothing left, the cause that has cleared and the resume it waits
   * for. Empty when ACTIVE.
   */
  holds(): string[] {
    if (this.state === 'ACTIVE') return [];
    const out = this.activeConditions();
    if (this.state === 'REDUCING') out.push(`reduce-only: ${this.movedFor}`);
    else if (this.operatorHalt !== undefined) out.push(`${this.operatorHalt.by}: ${this.operatorHalt.reason}`);
    if (out.length === 0) out.push(this.clearedCause());
    return out;
  }

  /**
   * Why the gate is in its state now. While HALTED it follows what holds
   * it: the first condition present (with how many more), else the
   * operator's halt, else the cleared cause; otherwise the reason it moved.
   */
  get reason(): string {
    if (this.state !== 'HALTED') return this.movedFor;
    const present: string[] = [];
    for (const problems of this.conditions.values()) present.push(...problems.values());
    for (const problems of this.latched.values()) present.push(...problems.values());
    if (present.length > 0) return present[0]! + (present.length > 1 ? ` (and ${present.length - 1} more)` : '');
    return this.operatorHalt?.reason ?? this.clearedCause();
  }

  /** An operator's halt: only an explicit resume ends it. */
  halt(reason: string, by = 'operator'): void {
    this.operatorHalt = { reason, by };
    if (this.state !== 'HALTED') this.move('HALTED', reason, by);
  }

  /** Refused from HALTED while any condition is present, latched ones included: only a resume acknowledges those. */
  reduceOnly(reason: string, by = 'operator'): Decision {
    if (this.state === 'REDUCING') return OK;
    if (this.state === 'HALTED') {
      const blocked = this.blockedBy(true);
      if (blocked) return blocked;
    }
    this.move('REDUCING', reason, by);
    return OK;
  }

  /**
   * Back to ACTIVE, refused while any data condition is present. A resume
   * acknowledges the latched conditions: they are cleared, and named in the
   * transition's reason.
   */
  resume(reason: string, by = 'operator'): Decision {
    if (this.state === 'ACTIVE') return OK;
    const blocked = this.blockedBy(false);
    if (blocked) return blocked;
    const acknowledged: string[] = [];
    for (const [source, problems] of this.latched) for (const problem of problems.values()) acknowledged.push(`${source}: ${problem}`);
    this.latched.clear();
    this.move('ACTIVE', acknowledged.length === 0 ? reason : `${reason} (acknowledged: ${acknowledged.join('; ')})`, by);
    return OK;
  }

  /** Called on a timer: the configured healthy period may end a halt, never an operator's or one latched. */
  tick(now: number): void {
    if (!this.options.autoResume || this.state !== 'HALTED' || this.operatorHalt !== undefined || this.latched.size > 0) return;
    const clear = this.clearSince;
    if (clear === clear && now - clear >= this.options.healthyPeriodMs && now - this.since >= this.options.healthyPeriodMs) {
      this.move('ACTIVE', `no condition for ${Math.round(this.options.healthyPeriodMs / 1000)} s`, 'gate');
    }
  }

  /**
   * May this order be sent? The state first (HALTED refuses, REDUCING only
   * lets through what shrinks the position, or for an option or a combo
   * what brings every greek of its underlying closer to zero), then, for an
   * option order or a combo, the option conditions, then every pre-trade limit. An
   * order it allows counts against the order rate. Cancels are never asked:
   * they are always allowed.
   */
  check(order: OrderIntent): Decision {
    if (this.state === 'HALTED') return { ok: false, reason: `trading halted: ${this.reason}` };
    if (order.secType !== undefined && order.secType !== 'STK' && this.optionConditions.size > 0) {
      const holds = this.optionHolds();
      return { ok: false, reason: `option trading halted: ${holds[0]}${holds.length > 1 ? ` (and ${holds.length - 1} more)` : ''}` };
    }
    const combo = this.state === 'REDUCING' ? optionCombo(order) : undefined;
    if (combo) {
      if (!reducesGreeks(combo, order.quantity)) return { ok: false, reason: `reduce-only (${this.reason}): ${order.symbol} order of ${order.quantity} would not bring every greek of ${combo.underlying} closer to zero` };
    } else if (this.state === 'REDUCING') {
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
      this.lossReason = `max daily loss: ${amount(-pnl)} > ${figure(max)}`;
      this.operatorHalt = { reason: `${this.lossReason} (until an operator resumes)`, by: DAILY_LOSS };
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

  private dataConditions(): string[] {
    const out: string[] = [];
    for (const [source, problems] of this.conditions) for (const reason of problems.values()) out.push(`${source}: ${reason}`);
    return out;
  }

  /** Nothing holds the halt but the want of a resume. */
  private clearedCause(): string {
    const waits = this.options.autoResume ? `resumes by itself after ${Math.round(this.options.healthyPeriodMs / 1000)} s without a condition` : 'waiting for a resume';
    return `${this.movedFor} (cleared; ${waits})`;
  }

  private blockedBy(latchedToo: boolean): Decision | undefined {
    const present = latchedToo ? this.activeConditions() : this.dataConditions();
    if (present.length === 0) return undefined;
    const hint = latchedToo && this.latched.size > 0 ? ' (latched conditions are acknowledged by a resume)' : '';
    return { ok: false, reason: `${present.length} condition${present.length > 1 ? 's' : ''} still present: ${present.join('; ')}${hint}` };
  }

  private move(to: GateState, reason: string, by: string): void {
    const transition: GateTransition = { from: this.state, to, reason, by, at: this.clock.wallNow() };
    this.state = to;
    this.movedFor = reason;
    if (to !== 'HALTED') this.operatorHalt = undefined;
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
