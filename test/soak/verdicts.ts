/**
 * The soak's judgements, pure: the broker's record against keel's journal,
 * each fault against the gate transitions the journal recorded while it
 * lasted, and memory within one daemon's life. soak.ts gathers the facts;
 * these decide, so each can be tested on facts made up to fail.
 */
import type { GateRecord, LedgerRecord } from '../../src/journal/records.js';
import { FAULTS, type FaultKind } from './plan.js';

/** One execution as the simulator's broker recorded it (GET /executions). */
export interface BrokerExecution {
  readonly execId: string;
  readonly orderRef: string;
  readonly symbol: string;
  readonly side: 'BOT' | 'SLD';
  readonly shares: number;
  readonly price: number;
}

/** One order as the simulator's broker holds it (GET /orders). */
export interface BrokerOrder {
  readonly orderId: number;
  readonly orderRef: string;
  readonly symbol: string;
  readonly status: string;
}

export interface FillComparison {
  /** Executions of ours at the broker. */
  readonly atBroker: number;
  /** Fill records in the journal. */
  readonly journaled: number;
  /** At the broker, not in the journal. */
  readonly lost: readonly string[];
  /** In the journal more than once: execId and how many times. */
  readonly doubled: readonly { execId: string; times: number }[];
  /** In the journal, never made by the broker. */
  readonly phantom: readonly string[];
  /** In both, but the journal's symbol, signed quantity or price differs from the broker's. */
  readonly misrecorded: readonly string[];
}

/**
 * Every execution the broker made for our orders (orderRef starting with
 * `refPrefix`) must be in the journal exactly once, as the broker made it.
 */
export function compareFills(broker: readonly BrokerExecution[], journal: readonly LedgerRecord[], refPrefix: string): FillComparison {
  const ours = broker.filter((e) => e.orderRef.startsWith(refPrefix));
  const byExecId = new Map(ours.map((e) => [e.execId, e]));
  const times = new Map<string, number>();
  const misrecorded: string[] = [];
  let journaled = 0;
  for (const r of journal) {
    if (r.type !== 'fill') continue;
    journaled++;
    times.set(r.execId, (times.get(r.execId) ?? 0) + 1);
    const e = byExecId.get(r.execId);
    if (!e || times.get(r.execId)! > 1) continue;
    const quantity = e.side === 'BOT' ? e.shares : -e.shares;
    if (r.symbol !== e.symbol || r.quantity !== quantity || Math.abs(r.price - e.price) > 1e-9) {
      misrecorded.push(`${r.execId}: journal ${r.quantity} ${r.symbol} at ${r.price}, broker ${quantity} ${e.symbol} at ${e.price}`);
    }
  }
  return {
    atBroker: ours.length,
    journaled,
    lost: ours.filter((e) => !times.has(e.execId)).map((e) => e.execId),
    doubled: [...times].filter(([, n]) => n > 1).map(([execId, n]) => ({ execId, times: n })),
    phantom: [...times.keys()].filter((id) => !byExecId.has(id)),
    misrecorded,
  };
}

export interface OrderComparison {
  readonly atBroker: number;
  /** orderRefs the broker was sent more than once. */
  readonly sentTwice: readonly string[];
  /** Orders of ours at the broker that the journal never recorded (it must record before sending). */
  readonly unrecorded: readonly string[];
  /** Orders of ours still working at the broker after the graceful stop (it cancels them). */
  readonly leftWorking: readonly string[];
}

const WORKING_AT_BROKER = new Set(['PreSubmitted', 'Submitted', 'Inactive']);

export function compareOrders(broker: readonly BrokerOrder[], journal: readonly LedgerRecord[], refPrefix: string): OrderComparison {
  const ours = broker.filter((o) => o.orderRef.startsWith(refPrefix));
  const recorded = new Set(journal.flatMap((r) => (r.type === 'order' ? [r.ref] : [])));
  const seen = new Set<string>();
  const sentTwice = new Set<string>();
  for (const o of ours) {
    if (seen.has(o.orderRef)) sentTwice.add(o.orderRef);
    seen.add(o.orderRef);
  }
  return {
    atBroker: ours.length,
    sentTwice: [...sentTwice],
    unrecorded: ours.filter((o) => !recorded.has(o.orderRef)).map((o) => o.orderRef),
    leftWorking: ours.filter((o) => WORKING_AT_BROKER.has(o.status)).map((o) => `${o.orderRef} (${o.symbol}, ${o.status})`),
  };
}

export interface AccountComparison {
  /** Symbols whose position in the journal (fills and settlements summed) differs from the broker's, in words. */
  readonly differ: readonly string[];
  readonly optionFills: number;
  /** Settlement records by outcome, e.g. `exercised 1, expired 2`. */
  readonly settlements: string;
  readonly settled: number;
  /** Contracts held into their expiry's close (net fills of options expiring by `expiredBy`): those must settle. */
  readonly heldAtExpiry: number;
}

/**
 * The account as the journal books it (every fill, every exercise,
 * assignment and expiry) against the broker's positions at the end: options
 * gone and shares delivered at their expiry must match exactly, whatever
 * restarts and reconciliations happened on the way.
 */
export function compareAccounts(brokerPositions: Readonly<Record<string, number>>, journal: readonly LedgerRecord[], expiredBy = ''): AccountComparison {
  const positions = new Map<string, number>();
  const expiring = new Map<string, number>();
  const add = (symbol: string, n: number) => positions.set(symbol, (positions.get(symbol) ?? 0) + n);
  const underlyingOf = new Map<string, string>();
  const outcomes = new Map<string, number>();
  let optionFills = 0;
  for (const r of journal) {
    if (r.type === 'order' && r.option) {
      underlyingOf.set(r.symbol, r.option.underlying);
      if (r.option.expiry <= expiredBy) expiring.set(r.symbol, expiring.get(r.symbol) ?? 0);
    }
    if (r.type === 'fill') {
      add(r.symbol, r.quantity);
      if (expiring.has(r.symbol)) expiring.set(r.symbol, expiring.get(r.symbol)! + r.quantity);
      if (underlyingOf.has(r.symbol)) optionFills++;
    }
    if (r.type === 'option.settlement') {
      add(r.symbol, -r.contracts);
      add(underlyingOf.get(r.symbol) ?? '?', r.shares);
      outcomes.set(r.outcome, (outcomes.get(r.outcome) ?? 0) + 1);
    }
  }
  const symbols = [...new Set([...positions.keys(), ...Object.keys(brokerPositions)])].sort();
  const differ = symbols.flatMap((symbol) => {
    const ours = positions.get(symbol) ?? 0;
    const theirs = brokerPositions[symbol] ?? 0;
    return ours === theirs ? [] : [`${symbol}: journal ${ours}, broker ${theirs}`];
  });
  return {
    differ,
    optionFills,
    settlements: [...outcomes].map(([o, n]) => `${o} ${n}`).join(', ') || 'none',
    settled: [...outcomes.values()].reduce((a, b) => a + b, 0),
    heldAtExpiry: [...expiring.values()].reduce((a, n) => a + Math.abs(n), 0),
  };
}

/** When a fault was injected and when the gate was seen ACTIVE again after it (undefined: never, within its deadline). Wall ms. */
export interface FaultWindow {
  readonly kind: FaultKind;
  readonly startedAt: number;
  readonly endedAt: number | undefined;
}

export interface FaultVerdict {
  readonly ok: boolean;
  /** What the gate did, in words. */
  readonly observed: string;
  readonly problem?: string;
}

/**
 * A fault is judged by the gate transitions the journal recorded between
 * its start and the gate being seen ACTIVE again (the soak starts a fault
 * only once the gate is ACTIVE with no condition, so nothing else is in
 * the window). A halting fault must halt first by its expected source and
 * end ACTIVE; the others must not halt at all.
 */
export function judgeFault(window: FaultWindow, gateRecords: readonly GateRecord[]): FaultVerdict {
  const end = window.endedAt ?? Infinity;
  const moves = gateRecords.filter((g) => g.at >= window.startedAt && g.at <= end);
  const expected = FAULTS[window.kind].haltedBy;
  const halts = moves.filter((g) => g.to === 'HALTED');
  const observed = moves.length === 0 ? 'ACTIVE throughout' : moves.map((g) => `${g.to}${g.to === 'HALTED' ? ` by ${g.by}` : ''}`).join(' -> ');
  const problem = (text: string): FaultVerdict => ({ ok: false, observed, problem: text });
  if (expected === null) {
    if (halts.length > 0) return problem(`trading must go on, but the gate halted by ${halts[0]!.by}: ${halts[0]!.reason}`);
    if (window.endedAt === undefined) return problem('the gate was not seen ACTIVE afterwards');
    return { ok: true, observed };
  }
  if (halts.length === 0) return problem(`expected HALTED by ${expected}, the gate never halted`);
  if (halts[0]!.by !== expected) return problem(`expected HALTED by ${expected}, the first halt was by ${halts[0]!.by}: ${halts[0]!.reason}`);
  if (window.endedAt === undefined || moves.at(-1)!.to !== 'ACTIVE') return problem('the gate did not come back to ACTIVE');
  return { ok: true, observed };
}

/** One reading of the daemon's memory, from its /metrics. */
export interface MemorySample {
  /** Wall ms. */
  readonly at: number;
  readonly rssBytes: number;
  readonly heapUsedBytes: number;
}

export interface MemoryVerdict {
  /** false: too short a life, or too few readings, to judge; not a failure of the daemon, but not a pass either. */
  readonly judged: boolean;
  readonly ok: boolean;
  readonly windowMs: number;
  /** The highest resident set in the first half of the window, and in the second. */
  readonly earlyPeakRss: number;
  readonly latePeakRss: number;
  /** latePeakRss / earlyPeakRss - 1. */
  readonly rssGrowth: number;
  readonly earlyPeakHeap: number;
  readonly latePeakHeap: number;
}

/**
 * Memory is flat when the resident set's high-water mark in the second half
 * of a daemon's life (after its warm-up) is within `maxGrowth` of the
 * high-water mark in the first half. High-water marks, because a garbage
 * collection can hand memory back at any moment, so one low reading says
 * nothing while a leak keeps raising the peak; halves, because what a
 * daemon still grows into after its warm-up shows up early, and a leak
 * keeps growing late.
 */
export function judgeMemory(samples: readonly MemorySample[], options: { minWindowMs: number; maxGrowth: number }): MemoryVerdict {
  const windowMs = samples.length < 2 ? 0 : samples.at(-1)!.at - samples[0]!.at;
  const middle = (samples[0]?.at ?? 0) + windowMs / 2;
  const early = samples.filter((s) => s.at < middle);
  const late = samples.filter((s) => s.at >= middle);
  const peak = (list: readonly MemorySample[], of: (s: MemorySample) => number) => (list.length === 0 ? NaN : Math.max(...list.map(of)));
  const earlyPeakRss = peak(early, (s) => s.rssBytes);
  const latePeakRss = peak(late, (s) => s.rssBytes);
  const rssGrowth = latePeakRss / earlyPeakRss - 1;
  const judged = early.length >= 3 && late.length >= 3 && windowMs >= options.minWindowMs;
  return {
    judged,
    ok: judged && rssGrowth <= options.maxGrowth,
    windowMs,
    earlyPeakRss,
    latePeakRss,
    rssGrowth,
    earlyPeakHeap: peak(early, (s) => s.heapUsedBytes),
    latePeakHeap: peak(late, (s) => s.heapUsedBytes),
  };
}
