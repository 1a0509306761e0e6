/**
 * Every kind of component a config file may name: its logic, the schema of
 * its settings, and its contract with the others: the services it provides
 * and needs, the topics it publishes, reads (cannot work without) and hears
 * (listens to when someone publishes them). What a kind needs or reads must
 * come from a component in its dependsOn; `keel config check` refuses a
 * config where it does not.
 */
import type { z } from 'zod';
import type { AnyActorLogic } from 'xstate';
import type { ServiceName } from '../services.js';
import type { ChildSpec, Contract } from '../supervision/spec.js';
import {
  BOOK_QUALITY_TOPIC,
  BOOK_RESYNC_TOPIC,
  BOOK_TOPIC,
  CLUSTER_TOPIC,
  DEPTH_RESET_TOPIC,
  DEPTH_TOPIC,
  FEATURE_HEALTH_TOPIC,
  FEATURES_TOPIC,
  FEED_SILENT_TOPIC,
  GATE_TRANSITION_TOPIC,
  IB_STATUS_TOPIC,
  INSPECTOR_TOPIC,
  JOURNAL_RECORD_TOPIC,
  OPTIONS_CHAIN_TOPIC,
  OPTIONS_HEALTH_TOPIC,
  OPTIONS_INPUT_TOPIC,
  OPTIONS_LISTING_TOPIC,
  MODEL_SWAP_TOPIC,
  PORTFOLIO_TOPIC,
  PREDICTIONS_TOPIC,
  MODEL_DRIFT_TOPIC,
  MODEL_EVENT_TOPIC,
  QUOTE_TOPS_TOPIC,
  REDIS_STATUS_TOPIC,
  REGIME_TOPIC,
  SUBSCRIPTIONS_STATUS_TOPIC,
  TOPIC_NAMES,
  TRADES_TOPIC,
} from '../topics.js';
import { featureHealthLogic, featureHealthSettings } from './feature-health.js';
import { featuresLogic, featuresSettings } from './features.js';
import { ibConnectionLogic, ibConnectionSettings } from './ib-connection.js';
import { inspectorLogic, inspectorSettings } from './inspector.js';
import { journalLogic, journalSettings } from './journal.js';
import { l2MicrostructureLogic, l2MicrostructureSettings } from './l2-microstructure.js';
import { optionChainLogic, optionChainSettings } from './option-chain.js';
import { paperTraderLogic, paperTraderSettings } from './paper-trader.js';
import { placeholderLogic, placeholderSettings } from './placeholder.js';
import { predictorLogic, predictorSettings } from './predictor.js';
import { recorderLogic, recorderSettings } from './recorder.js';
import { retrainerLogic, retrainerSettings } from './retrainer.js';
import { redisLogic, redisSettings } from './redis.js';
import { regimeLogic, regimeSettings } from './regime.js';
import { riskGateLogic, riskGateSettings } from './risk-gate.js';
import { shardMarketLogic, shardMarketSettings } from './shard-market.js';
import { shardPublisherLogic, shardPublisherSettings } from './shard-publisher.js';
import { shardReaderLogic, shardReaderSettings } from './shard-reader.js';
import { shardWorkerLogic, shardWorkerSettings } from './shard-worker.js';
import { simulatorLogic, simulatorSettings } from './simulator.js';
import { subscriptionsLogic, subscriptionsSettings } from './subscriptions.js';

/** Services needed only when a setting has a value (paper_trader's IB link in ib mode). */
interface NeedsWhen {
  readonly setting: string;
  readonly equals: unknown;
  readonly needs: readonly ServiceName[];
}

export interface ComponentKind {
  readonly logic: AnyActorLogic;
  readonly settings: z.ZodType;
  readonly description: string;
  readonly contract: Partial<Contract> & { readonly needsWhen?: NeedsWhen };
}

export const componentKinds = {
  redis: {
    logic: redisLogic,
    settings: redisSettings,
    description: 'mirrors features, regime, predictions, health, portfolio and the journal to Redis (msgpack); Redis down halts trading',
    contract: { publishes: [REDIS_STATUS_TOPIC], hears: [...TOPIC_NAMES] },
  },
  simulator: {
    logic: simulatorLogic,
    settings: simulatorSettings,
    description: 'the TWS wire-protocol simulator on loopback: a seeded market, orders, IB limits and faults',
    contract: {},
  },
  ib_connection: {
    logic: ibConnectionLogic,
    settings: ibConnectionSettings,
    description: 'the socket to TWS / IB Gateway: reconnects, probes liveness, classifies IB codes, keeps order ids unique',
    contract: { provides: ['ibLink'], publishes: [IB_STATUS_TOPIC] },
  },
  subscriptions: {
    logic: subscriptionsLogic,
    settings: subscriptionsSettings,
    description: "every market-data request to IB, paced and under IB's budgets, re-requested after reconnects and silence",
    contract: {
      provides: ['instruments', 'optionLines'],
      needs: ['ibLink'],
      publishes: [DEPTH_TOPIC, TRADES_TOPIC, QUOTE_TOPS_TOPIC, DEPTH_RESET_TOPIC, FEED_SILENT_TOPIC, SUBSCRIPTIONS_STATUS_TOPIC],
      reads: [IB_STATUS_TOPIC],
      hears: [BOOK_RESYNC_TOPIC],
    },
  },
  option_chain: {
    logic: optionChainLogic,
    settings: optionChainSettings,
    description: "an underlying's option chain: discovered for the day, a band around the money streamed within the line budget and re-centred as it moves, IV and greeks by keel beside IB's",
    // From IB it needs the link and the lines; from a replayed recording it hears what the replay plays back.
    contract: {
      needsWhen: { setting: 'source', equals: 'ib', needs: ['ibLink', 'optionLines'] },
      publishes: [OPTIONS_CHAIN_TOPIC, OPTIONS_LISTING_TOPIC, OPTIONS_INPUT_TOPIC],
      hears: [OPTIONS_LISTING_TOPIC, OPTIONS_INPUT_TOPIC],
    },
  },
  l2_microstructure: {
    logic: l2MicrostructureLogic,
    settings: l2MicrostructureSettings,
    description: 'order books per instrument from IB depth rows: typed arrays, bad updates rejected, locked/crossed flagged',
    contract: {
      provides: ['books'],
      needs: ['instruments'],
      publishes: [BOOK_TOPIC, BOOK_RESYNC_TOPIC, BOOK_QUALITY_TOPIC],
      reads: [DEPTH_TOPIC],
      hears: [DEPTH_RESET_TOPIC],
    },
  },
  features: {
    logic: featuresLogic,
    settings: featuresSettings,
    description: 'microstructure features updated per book and trade batch, sampled on clocks for the models',
    contract: {
      provides: ['featureEngine'],
      needs: ['instruments', 'books'],
      publishes: [FEATURES_TOPIC],
      reads: [BOOK_TOPIC],
      hears: [TRADES_TOPIC, QUOTE_TOPS_TOPIC, DEPTH_RESET_TOPIC],
    },
  },
  feature_health: {
    logic: featureHealthLogic,
    settings: featureHealthSettings,
    description: 'scores every feature, sweeps for stale data and silent feeds, tells the risk gate what must stop trading',
    contract: { needs: ['featureEngine', 'instruments'], publishes: [FEATURE_HEALTH_TOPIC, OPTIONS_HEALTH_TOPIC], reads: [FEATURES_TOPIC], hears: [FEED_SILENT_TOPIC, OPTIONS_CHAIN_TOPIC] },
  },
  regime: {
    logic: regimeLogic,
    settings: regimeSettings,
    description: 'the market regime of every instrument by the online Statistical Jump Model, one O(K) step per frame',
    contract: { needs: ['featureEngine', 'instruments'], publishes: [REGIME_TOPIC], reads: [FEATURES_TOPIC] },
  },
  predictor: {
    logic: predictorLogic,
    settings: predictorSettings,
    description: 'the tiered ensemble of ONNX models in worker threads: hot swap, rollback, shadow mode, sector LRU, high-vol specialist',
    contract: { provides: ['predictor'], needs: ['featureEngine', 'instruments'], publishes: [PREDICTIONS_TOPIC, MODEL_SWAP_TOPIC, MODEL_DRIFT_TOPIC, MODEL_EVENT_TOPIC], reads: [FEATURES_TOPIC] },
  },
  retrainer: {
    logic: retrainerLogic,
    settings: retrainerSettings,
    description: "trains a challenger for a predictor slot from the recorder's recent recordings in a low-priority child process, on drift or a schedule, and hands it to the predictor to shadow",
    contract: { needs: ['predictor'], publishes: [MODEL_EVENT_TOPIC], hears: [MODEL_EVENT_TOPIC] },
  },
  risk_gate: {
    logic: riskGateLogic,
    settings: riskGateSettings,
    description: 'the ACTIVE / REDUCING / HALTED kill switch every order path asks; halts in the call that saw bad data',
    contract: { provides: ['riskGate'], publishes: [GATE_TRANSITION_TOPIC], hears: [FEATURE_HEALTH_TOPIC, OPTIONS_HEALTH_TOPIC, IB_STATUS_TOPIC, REDIS_STATUS_TOPIC, CLUSTER_TOPIC] },
  },
  journal: {
    logic: journalLogic,
    settings: journalSettings,
    description: 'the durable ledger: an fsynced append-only file of checksummed records, replayed at start into orders, positions, cash and P&L',
    contract: { provides: ['journal', 'ledger'], publishes: [JOURNAL_RECORD_TOPIC], hears: [GATE_TRANSITION_TOPIC, INSPECTOR_TOPIC, MODEL_EVENT_TOPIC] },
  },
  paper_trader: {
    logic: paperTraderLogic,
    settings: paperTraderSettings,
    description: 'predictions to orders through the risk gate; fills against the live book (book) or at TWS (ib), reconciled with the broker',
    contract: {
      provides: ['trader'],
      needs: ['ledger', 'riskGate', 'instruments', 'books'],
      needsWhen: { setting: 'mode', equals: 'ib', needs: ['ibLink'] },
      publishes: [PORTFOLIO_TOPIC],
      reads: [PREDICTIONS_TOPIC],
      hears: [REGIME_TOPIC, BOOK_TOPIC, TRADES_TOPIC, IB_STATUS_TOPIC, OPTIONS_CHAIN_TOPIC],
    },
  },
  recorder: {
    logic: recorderLogic,
    settings: recorderSettings,
    description: 'writes what the books, the features and the option chain receive to a chunked msgpack recording for `keel replay`',
    contract: { needs: ['instruments', 'featureEngine'], reads: [DEPTH_TOPIC], hears: [TRADES_TOPIC, DEPTH_RESET_TOPIC, OPTIONS_LISTING_TOPIC, OPTIONS_INPUT_TOPIC] },
  },
  inspector: {
    logic: inspectorLogic,
    settings: inspectorSettings,
    description: 'HTTP + WebSocket on loopback: the live actor tree, /health, /metrics, the web page, and token-guarded control',
    contract: { needs: ['inspection'], publishes: [INSPECTOR_TOPIC], hears: [DEPTH_TOPIC, TRADES_TOPIC, QUOTE_TOPS_TOPIC, PREDICTIONS_TOPIC, SUBSCRIPTIONS_STATUS_TOPIC, FEATURE_HEALTH_TOPIC, REGIME_TOPIC, PORTFOLIO_TOPIC, IB_STATUS_TOPIC, REDIS_STATUS_TOPIC, OPTIONS_CHAIN_TOPIC, CLUSTER_TOPIC] },
  },
  shard_publisher: {
    logic: shardPublisherLogic,
    settings: shardPublisherSettings,
    description: "a data node's market data to Redis Streams: one msgpack entry per instrument shard per tick, for the shard workers",
    contract: { needs: ['instruments', 'books'], reads: [BOOK_TOPIC], hears: [TRADES_TOPIC, QUOTE_TOPS_TOPIC, DEPTH_RESET_TOPIC] },
  },
  shard_market: {
    logic: shardMarketLogic,
    settings: shardMarketSettings,
    description: "a trading node's books and prints from the data node's shard tapes: book-mode fills and the collar without a second IB market-data session",
    contract: { provides: ['instruments', 'books'], publishes: [BOOK_TOPIC, TRADES_TOPIC] },
  },
  shard_worker: {
    logic: shardWorkerLogic,
    settings: shardWorkerSettings,
    description: 'features, feature health, regime and predictor for the instrument shards this worker leases; outputs, checkpoint and acks committed together, fenced',
    contract: {},
  },
  shard_reader: {
    logic: shardReaderLogic,
    settings: shardReaderSettings,
    description: "a trading node's predictions and regimes from every shard worker's outputs; a shard older than its freshness bound halts the risk gate",
    contract: { needs: ['instruments'], publishes: [PREDICTIONS_TOPIC, REGIME_TOPIC, CLUSTER_TOPIC] },
  },
  placeholder: {
    logic: placeholderLogic,
    settings: placeholderSettings,
    description: 'stands in for a component not built yet: starts, beats, stops',
    contract: {},
  },
} satisfies Record<string, ComponentKind>;

export type ComponentKindName = keyof typeof componentKinds;

/** A kind's contract for a component with these settings. */
export function contractOf(kind: ComponentKindName, settings: unknown): Contract {
  const { contract }: ComponentKind = componentKinds[kind];
  const when = contract.needsWhen;
  const applies = when !== undefined && typeof settings === 'object' && settings !== null && Reflect.get(settings, when.setting) === when.equals;
  return {
    provides: contract.provides ?? [],
    needs: [...(contract.needs ?? []), ...(applies ? when.needs : [])],
    publishes: contract.publishes ?? [],
    reads: contract.reads ?? [],
    hears: contract.hears ?? [],
  };
}

/** The kinds that provide a service or publish a topic, for the config check's messages. */
export function kindsProviding(need: { service: ServiceName } | { topic: string }): string[] {
  const kinds: Record<string, ComponentKind> = componentKinds;
  return Object.entries(kinds)
    .filter(([, k]) => ('service' in need ? (k.contract.provides ?? []).includes(need.service) : (k.contract.publishes ?? []).some((t) => t === need.topic)))
    .map(([name]) => name);
}

/** A supervised child of a kind: its logic and its contract for these settings. */
export function componentSpec(id: string, kind: ComponentKindName, options: Omit<ChildSpec, 'id' | 'kind' | 'logic' | 'contract'> = {}): ChildSpec {
  return { ...options, id, kind, logic: componentKinds[kind].logic, contract: contractOf(kind, options.settings) };
}
