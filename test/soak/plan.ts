/**
 * The soak's fault schedule, and what each fault must do to the risk gate.
 * Pure: the same duration and seed give the same plan, and the plan is
 * tested apart from the processes that carry it out (soak.ts).
 *
 * A run is a warm-up with no fault (the models warm, trading starts, the
 * memory baseline settles), then rounds of faults spread evenly over the
 * time left, then a quiet tail before the graceful stop. Each round has
 * every fault but the daemon kill once, in a seeded order. The daemon is
 * killed at the end of a round, at least once a run and at most once every
 * ten minutes: memory is judged within one daemon's life, so those lives
 * must be long enough to show a leak.
 */
import { Random } from '../../src/random.js';

export type FaultKind =
  | 'drop'
  | 'connectivity'
  | 'farm'
  | 'nan-burst'
  | 'silent-feed'
  | 'late-order-news'
  | 'duplicate-executions'
  | 'redis-kill'
  | 'malformed-message'
  | 'resync-flood'
  | 'daemon-kill';

export interface FaultSpec {
  /** What happens, in the trader's words. */
  readonly what: string;
  /** The gate's source that must halt trading, or null: trading must go on (the gate stays ACTIVE). */
  readonly haltedBy: 'ib' | 'feature_health' | 'redis' | null;
}

export const FAULTS: Readonly<Record<FaultKind, FaultSpec>> = {
  drop: { what: 'TWS drops the connection', haltedBy: 'ib' },
  connectivity: { what: 'TWS loses IB (1100), back with data lost (1101)', haltedBy: 'ib' },
  farm: { what: 'market data farm down (2103), then OK (2104)', haltedBy: 'ib' },
  'nan-burst': { what: "NaN prices in one symbol's depth", haltedBy: 'feature_health' },
  'silent-feed': { what: 'every feed of one symbol goes quiet', haltedBy: 'feature_health' },
  'late-order-news': { what: 'order news late: fills arrive before their orders', haltedBy: null },
  'duplicate-executions': { what: 'every execution reported twice', haltedBy: null },
  'redis-kill': { what: 'Redis SIGKILLed, then started again (empty)', haltedBy: 'redis' },
  'malformed-message': { what: 'TWS sends a reject whose JSON is not JSON, then a length with its sign bit', haltedBy: 'ib' },
  'resync-flood': { what: 'an inspector client sends 1,000 resyncs every 100 ms and never reads', haltedBy: null },
  'daemon-kill': { what: 'keel SIGKILLed, then started again on the same journal', haltedBy: null },
};

/** Every fault of a round, in a fixed order before shuffling (the daemon kill is placed apart). */
const ROUND: readonly FaultKind[] = ['drop', 'connectivity', 'farm', 'nan-burst', 'silent-feed', 'late-order-news', 'duplicate-executions', 'redis-kill', 'malformed-message', 'resync-flood'];

export const WARM_UP_MS = 20_000;
export const QUIET_TAIL_MS = 10_000;
/**
 * The time a round gives each fault. Most take about 10 s on a loaded
 * 2-core machine (halt, hold, recover, the healthy period, the settle); a
 * NaN burst can take 30 s, as the damaged book heals. A fault never starts
 * before the one ahead of it is over, so a slow one delays the rest.
 */
export const FAULT_SLOT_MS = 15_000;
const DAEMON_KILL_EVERY_MS = 600_000;
/** The shortest soak that holds one full round. */
export const MIN_MINUTES = 2;

export interface PlannedFault {
  /** Earliest start, ms after the daemon was first ready; a fault never starts before the one ahead of it is over. */
  readonly atMs: number;
  readonly kind: FaultKind;
  /** The symbol a NaN burst or a silent feed hits. */
  readonly symbol: string;
}

export interface SoakPlan {
  readonly durationMs: number;
  readonly warmUpMs: number;
  readonly quietTailMs: number;
  readonly faults: readonly PlannedFault[];
}

export function planSoak(minutes: number, seed: number, symbols: readonly string[]): SoakPlan {
  if (!Number.isFinite(minutes) || minutes < MIN_MINUTES) {
    throw new RangeError(`a soak needs at least ${MIN_MINUTES} minutes (one round of ${ROUND.length + 1} faults after a ${WARM_UP_MS / 1000} s warm-up), got ${minutes}`);
  }
  if (symbols.length === 0) throw new RangeError('a soak needs at least one symbol to corrupt and silence');
  const durationMs = Math.round(minutes * 60_000);
  const span = durationMs - WARM_UP_MS - QUIET_TAIL_MS;
  const rounds = Math.max(1, Math.floor(span / ((ROUND.length + 1) * FAULT_SLOT_MS)));
  const kills = Math.min(rounds, Math.max(1, Math.floor(durationMs / DAEMON_KILL_EVERY_MS)));
  // The rounds that end with a kill, spread evenly; the last round always has one.
  const killAfter = new Set(Array.from({ length: kills }, (_, i) => Math.ceil(((i + 1) * rounds) / kills) - 1));
  const random = new Random(seed);
  const order: { kind: FaultKind; symbol: string }[] = [];
  for (let r = 0; r < rounds; r++) {
    const round = shuffled(ROUND, random);
    if (killAfter.has(r)) round.push('daemon-kill');
    for (const kind of round) order.push({ kind, symbol: symbols[Math.floor(random.next() * symbols.length)]! });
  }
  const step = span / order.length;
  return {
    durationMs,
    warmUpMs: WARM_UP_MS,
    quietTailMs: QUIET_TAIL_MS,
    faults: order.map((f, i) => ({ ...f, atMs: Math.round(WARM_UP_MS + i * step) })),
  };
}

/** Fisher-Yates on a copy. */
function shuffled<T>(items: readonly T[], random: Random): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random.next() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
