/**
 * The happenings the event log takes from the bus rather than from XState:
 * gate transitions, model swaps, IB link and Redis state changes, books
 * turning locked or crossed. The daemon starts this with the tree, so the
 * log covers the whole run.
 */
import type { Bus } from '../bus.js';
import type { Clock } from '../clock.js';
import type { ServiceTable } from '../services.js';
import { BOOK_QUALITY_TOPIC, GATE_TRANSITION_TOPIC, IB_STATUS_TOPIC, MODEL_EVENT_TOPIC, MODEL_SWAP_TOPIC, REDIS_STATUS_TOPIC } from '../topics.js';
import { ActorTree } from './actor-tree.js';

/**
 * The tree for a root about to be created (pass `tree.observe` as its
 * `inspect`), provided by the root as the `inspection` service, with the
 * bus's happenings in its log until `stop`.
 */
export function startInspection(bus: Bus, services: ServiceTable, clock: Pick<Clock, 'now' | 'wallNow'>): { tree: ActorTree; stop: () => void } {
  const tree = new ActorTree(clock);
  services.provide('root', 'inspection', tree);
  return { tree, stop: noteFromBus(tree, bus) };
}

function noteFromBus(tree: ActorTree, bus: Bus): () => void {
  let ib: string | undefined;
  let redis: string | undefined;
  const unsubscribe = [
    bus.subscribe(GATE_TRANSITION_TOPIC, (t) => tree.note('gate', 'risk_gate', `gate ${t.from} -> ${t.to} by ${t.by}: ${t.reason}`)),
    bus.subscribe(MODEL_SWAP_TOPIC, (e) =>
      tree.note('model', 'predictor', `model ${e.action} in ${e.slot}: ${e.from ?? '-'} -> ${e.to ?? '-'}${e.reason ? ` (${e.reason})` : ''}`),
    ),
    // Drift, the bound, training, promotion and rollback, with their figures.
    bus.subscribe(MODEL_EVENT_TOPIC, (e) => tree.note('model', 'predictor', `model ${e.model} ${e.kind}: ${e.reason}`)),
    bus.subscribe(IB_STATUS_TOPIC, (s) => {
      if (s.state === ib) return;
      ib = s.state;
      tree.note('reconnect', 'ib_connection', `IB link ${s.state}: ${s.reason}`);
    }),
    bus.subscribe(REDIS_STATUS_TOPIC, (s) => {
      if (s.state === redis) return;
      redis = s.state;
      tree.note('reconnect', 'redis', `Redis ${s.state}: ${s.reason}`);
    }),
    bus.subscribe(BOOK_QUALITY_TOPIC, (q) => tree.note('book', 'l2_microstructure', q.quality === 'ok' ? `${q.symbol} book no longer locked or crossed` : `${q.symbol} book ${q.quality}: bid ${q.bid} ask ${q.ask}`)),
  ];
  return () => unsubscribe.forEach((u) => u());
}
