/**
 * The happenings the event log takes from the bus rather than from XState:
 * gate transitions, model swaps, IB link and Redis state changes. The daemon
 * starts this with the tree, so the log covers the whole run.
 */
import type { Bus } from '../bus.js';
import { MODEL_SWAP_TOPIC } from '../actors/predictor.js';
import { GATE_TRANSITION_TOPIC } from '../actors/risk-gate.js';
import { STATUS_TOPIC, type IbStatus } from '../ib/link.js';
import type { SwapEvent } from '../models/registry.js';
import { REDIS_STATUS_TOPIC, type RedisStatus } from '../redis/bridge.js';
import type { GateTransition } from '../trading/risk-gate.js';
import type { Clock } from '../clock.js';
import { ActorTree, INSPECTION_TOPIC } from './actor-tree.js';

/**
 * The tree for a root about to be created (pass `tree.observe` as its
 * `inspect`), retained on the bus for the inspector, with the bus's
 * happenings in its log until `stop`.
 */
export function startInspection(bus: Bus, clock: Pick<Clock, 'now' | 'wallNow'>): { tree: ActorTree; stop: () => void } {
  const tree = new ActorTree(clock);
  bus.retain(INSPECTION_TOPIC, tree);
  return { tree, stop: noteFromBus(tree, bus) };
}

function noteFromBus(tree: ActorTree, bus: Bus): () => void {
  let ib: string | undefined;
  let redis: string | undefined;
  const unsubscribe = [
    bus.subscribe<GateTransition>(GATE_TRANSITION_TOPIC, (t) => tree.note('gate', 'risk_gate', `gate ${t.from} -> ${t.to} by ${t.by}: ${t.reason}`)),
    bus.subscribe<SwapEvent>(MODEL_SWAP_TOPIC, (e) =>
      tree.note('model', 'predictor', `model ${e.action} in ${e.slot}: ${e.from ?? '-'} -> ${e.to ?? '-'}${e.reason ? ` (${e.reason})` : ''}`),
    ),
    bus.subscribe<IbStatus>(STATUS_TOPIC, (s) => {
      if (s.state === ib) return;
      ib = s.state;
      tree.note('reconnect', 'ib_connection', `IB link ${s.state}: ${s.reason}`);
    }),
    bus.subscribe<RedisStatus>(REDIS_STATUS_TOPIC, (s) => {
      if (s.state === redis) return;
      redis = s.state;
      tree.note('reconnect', 'redis', `Redis ${s.state}: ${s.reason}`);
    }),
  ];
  return () => unsubscribe.forEach((u) => u());
}
