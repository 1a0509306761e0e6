/**
 * The trading node's view of the shard workers: the newest output of every
 * shard its instruments live in, merged into one prediction frame and one
 * regime frame over its own universe, and the conditions that must stop
 * trading.
 *
 * A shard whose newest output is older than the freshness bound (its
 * worker died and the lease has not moved yet, or the worker or the data
 * node fell behind) is a condition: with `halt: all` the risk gate halts
 * everything until the shard's new owner catches up; with `halt:
 * instruments` only its instruments lose their predictions (NaN: no order
 * is placed on them) while the rest trade on. A worker's own feature-health
 * conditions travel with its outputs and halt as they would in one process.
 * Ages are this node's wall clock minus the tick's tape time (the data
 * node's): machines must keep their clocks in sync (NTP), as IB requires.
 */
import type { PredictionFrame } from '../models/predictor.js';
import type { RegimeFrame } from '../models/regime-tracker.js';
import type { ShardOutput } from './shard-output.js';
import { shardOf } from './shards.js';
import type { ClusterStatus } from './status.js';

export type HaltScope = 'all' | 'instruments';

export interface ShardView {
  readonly shard: number;
  readonly symbols: readonly string[];
  /** Newest output's tick and tape time (NaN before the first). */
  readonly seq: number;
  readonly at: number;
  readonly ageMs: number;
  readonly fresh: boolean;
  readonly outputs: number;
}

/** What the trading node knows of the shards, on `cluster` (retained). */
export interface ClusterView {
  readonly shards: readonly ShardView[];
  /** Conditions that stop trading: key -> reason (the risk gate's `cluster` source). */
  readonly problems: ReadonlyMap<string, string>;
  /**
   * The cluster's status as Redis last told it (owners, epochs, lag,
   * pending, heartbeats), read every `statusMs` by the shard_reader
   * component and attached to what it publishes; absent before the first
   * read succeeds. Never part of `OutputMerger.view`.
   */
  readonly status?: ClusterStatus;
}

interface ShardState {
  readonly shard: number;
  readonly symbols: string[];
  /** Universe index of each of the shard's instruments, in output order once known. */
  readonly members: number[];
  seq: number;
  at: number;
  outputs: number;
  problems: readonly (readonly [string, string])[];
}

/** A horizon's latest prediction per instrument of the universe, merged from the shards. */
interface Latest {
  readonly value: Float64Array;
  readonly tier: string[];
  readonly models: string[];
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

export class OutputMerger {
  readonly shards: readonly number[];
  private readonly states = new Map<number, ShardState>();
  private readonly indexOf = new Map<string, number>();
  /** Each horizon the workers predict, as first seen: the latest prediction per instrument. */
  private readonly horizons = new Map<number, Latest>();
  private readonly regimeState: Int32Array;
  private labels: readonly string[] = [];
  private redisProblem: string | undefined;
  private switches = 0;

  constructor(
    private readonly symbols: readonly string[],
    shardCount: number,
    private readonly freshnessMs: number,
    private readonly halt: HaltScope,
    private readonly startedAt: number,
  ) {
    symbols.forEach((symbol, i) => {
      this.indexOf.set(symbol, i);
      const shard = shardOf(symbol, shardCount);
      let state = this.states.get(shard);
      if (!state) this.states.set(shard, (state = { shard, symbols: [], members: [], seq: NaN, at: NaN, outputs: 0, problems: [] }));
      state.symbols.push(symbol);
      state.members.push(i);
    });
    this.shards = [...this.states.keys()].sort((a, b) => a - b);
    this.regimeState = new Int32Array(symbols.length).fill(-1);
  }

  /** One output entry of a shard, in stream order. */
  onOutput(o: ShardOutput): void {
    const state = this.states.get(o.shard);
    if (!state || !(o.seq > state.seq || state.seq !== state.seq)) return;
    state.seq = o.seq;
    state.at = o.at;
    state.outputs++;
    state.problems = o.problems;
    const horizons = (o.predictions?.horizons ?? []).map((h) => ({ from: h, to: this.horizon(h.horizonMs) }));
    o.symbols.forEach((symbol, k) => {
      const i = this.indexOf.get(symbol);
      if (i === undefined) return;
      for (const { from, to } of horizons) {
        to.value[i] = from.value[k]!;
        to.tier[i] = from.tier[k]!;
        to.models[i] = from.models[k]!;
      }
      if (o.regime) {
        const next = o.regime.state[k]!;
        if (next >= 0 && this.regimeState[i]! >= 0 && next !== this.regimeState[i]) this.switches++;
        this.regimeState[i] = next;
      }
    });
    if (o.regime) this.labels = o.regime.labels;
  }

  /** Redis unreachable (a message) or reachable again (undefined). */
  onRedis(problem: string | undefined): void {
    this.redisProblem = problem;
  }

  /** The shards and the conditions as of wall time `now`. */
  view(now: number): ClusterView {
    const problems = new Map<string, string>();
    if (this.redisProblem) problems.set('cluster redis', `Redis of the shard streams unreachable: ${this.redisProblem}`);
    const shards = this.shards.map((shard) => {
      const s = this.states.get(shard)!;
      const ageMs = s.at === s.at ? now - s.at : now - this.startedAt;
      const fresh = ageMs <= this.freshnessMs;
      const tag = `s${shard}`;
      if (!fresh && this.halt === 'all') {
        const what = s.at === s.at ? `outputs are ${seconds(ageMs)} old` : `no output for ${seconds(ageMs)}`;
        problems.set(`shard ${tag} stale`, `shard ${shard} (${s.symbols.join(', ')}): ${what} (limit ${seconds(this.freshnessMs)}): its worker died or fell behind, or the data node stopped`);
      }
      if (fresh) for (const [key, reason] of s.problems) problems.set(`${tag} ${key}`, `shard ${shard}: ${reason}`);
      return { shard, symbols: s.symbols, seq: s.seq, at: s.at, ageMs, fresh, outputs: s.outputs };
    });
    return { shards, problems };
  }

  private horizon(horizonMs: number): Latest {
    let h = this.horizons.get(horizonMs);
    if (!h) this.horizons.set(horizonMs, (h = { value: new Float64Array(this.symbols.length).fill(NaN), tier: this.symbols.map(() => ''), models: this.symbols.map(() => '') }));
    return h;
  }

  /** The merged predictions of every horizon as of wall time `now`: NaN for the instruments of stale shards. */
  predictions(now: number, monotonicNow: number): PredictionFrame {
    const stale = [...this.states.values()].filter((s) => !(s.at === s.at && now - s.at <= this.freshnessMs));
    const horizons = [...this.horizons]
      .sort(([a], [b]) => a - b)
      .map(([horizonMs, h]) => {
        const value = h.value.slice();
        for (const s of stale) for (const i of s.members) value[i] = NaN;
        return { horizonMs, value, tier: [...h.tier], models: [...h.models] };
      });
    return { frameAt: monotonicNow, at: monotonicNow, symbols: this.symbols, horizons, latencyMs: 0, inferenceMs: 0, faults: [] };
  }

  /** The merged regimes, once a worker sent one. */
  regime(intervalMs: number, monotonicNow: number): RegimeFrame | undefined {
    if (this.labels.length === 0) return undefined;
    const k = this.labels.length;
    return {
      model: 'shard workers',
      intervalMs,
      labels: this.labels,
      symbols: this.symbols,
      k,
      at: monotonicNow,
      state: this.regimeState.slice(),
      probabilities: new Float64Array(this.symbols.length * k).fill(NaN),
      switches: this.switches,
    };
  }
}
