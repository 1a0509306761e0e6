/**
 * Every bus topic, declared once: its name, its payload type, whether it is
 * a stream (delivered, never kept) or a state (the latest value retained
 * for late readers), and, for data topics, its codec: the one encoding the
 * Redis mirror (and, next, Redis Streams between machines) writes for it.
 *
 * The Bus is generic over this catalogue: publishing on a topic not listed
 * here, or a payload of another shape, does not compile. Which component
 * publishes or reads a topic is declared with its kind (src/actors/registry.ts).
 *
 * Payloads of the data plane are reused objects (batches, frames, the
 * books): read them synchronously in the handler, copy what you keep.
 */
import { featureFrameCodec, featureHealthCodec, depthBatchCodec, plainCodec, predictionFrameCodec, regimeFrameCodec, tradeBatchCodec, type Codec } from './codecs.js';
import type { InspectorAddress } from './inspector/protocol.js';
import type { DepthBatch, DepthReset } from './ib/depth-feed.js';
import type { IbStatus } from './ib/link.js';
import type { QuoteBoard } from './ib/quote-board.js';
import type { FeedSilence, SubscriptionsStatus } from './ib/subscription-plan.js';
import type { TradeBatch } from './ib/trade-feed.js';
import type { JournalEntry } from './journal/records.js';
import type { ChainHealth } from './options/chain-health.js';
import type { ChainInputBatch, ChainListing } from './options/chain-input.js';
import type { OptionChainView } from './options/chain-view.js';
import type { BookQualityEvent, BookResync, OrderBooks } from './market/books.js';
import type { FeatureHealth } from './market/feature-health.js';
import type { FeatureFrame } from './market/features.js';
import type { DriftReport, ModelEvent } from './models/monitor.js';
import type { PredictionFrame } from './models/predictor.js';
import type { RegimeFrame } from './models/regime-tracker.js';
import type { SwapEvent } from './models/registry.js';
import type { RedisStatus } from './redis/bridge.js';
import type { ClusterView } from './scaleout/shard-reader.js';
import type { PortfolioView } from './trading/portfolio.js';
import type { GateTransition } from './trading/risk-gate.js';

// --- names -------------------------------------------------------------------

export const DEPTH_TOPIC = 'depth';
export const TRADES_TOPIC = 'trades';
export const QUOTE_TOPS_TOPIC = 'quotes.tops';
export const DEPTH_RESET_TOPIC = 'depth.reset';
export const FEED_SILENT_TOPIC = 'feed.silent';
export const BOOK_TOPIC = 'book';
export const BOOK_RESYNC_TOPIC = 'book.resync';
export const BOOK_QUALITY_TOPIC = 'book.quality';
export const FEATURES_TOPIC = 'features';
export const MODEL_SWAP_TOPIC = 'predictor.swap';
export const MODEL_DRIFT_TOPIC = 'models.drift';
export const MODEL_EVENT_TOPIC = 'models.event';
export const GATE_TRANSITION_TOPIC = 'risk.gate.transition';
export const JOURNAL_RECORD_TOPIC = 'journal.record';
export const IB_STATUS_TOPIC = 'ib.status';
export const SUBSCRIPTIONS_STATUS_TOPIC = 'subscriptions.status';
export const FEATURE_HEALTH_TOPIC = 'feature.health';
export const REGIME_TOPIC = 'regime';
export const PREDICTIONS_TOPIC = 'predictions';
export const REDIS_STATUS_TOPIC = 'redis.status';
export const PORTFOLIO_TOPIC = 'portfolio';
export const INSPECTOR_TOPIC = 'inspector';
export const OPTIONS_CHAIN_TOPIC = 'options.chain';
export const OPTIONS_HEALTH_TOPIC = 'options.health';
export const OPTIONS_LISTING_TOPIC = 'options.listing';
export const OPTIONS_INPUT_TOPIC = 'options.input';
export const CLUSTER_TOPIC = 'cluster';

// --- payloads ----------------------------------------------------------------

/** Delivered to whoever listens at the time; never kept. */
export interface Streams {
  /** IB depth rows, a typed-array batch per socket read. */
  [DEPTH_TOPIC]: DepthBatch;
  /** Prints, a typed-array batch per socket read. */
  [TRADES_TOPIC]: TradeBatch;
  /** Level-1 quotes changed for instruments without a book (the board itself, with its change list). */
  [QUOTE_TOPS_TOPIC]: QuoteBoard;
  /** 317: empty this instrument's book before the next rows. */
  [DEPTH_RESET_TOPIC]: DepthReset;
  /** A feed quiet while others tick: requested again; feature health holds it as a condition. */
  [FEED_SILENT_TOPIC]: FeedSilence;
  /** The books after every applied depth batch, with that batch's top-of-book changes. */
  [BOOK_TOPIC]: OrderBooks;
  /** A book rejected an update and no longer matches TWS: its depth is requested again. */
  [BOOK_RESYNC_TOPIC]: BookResync;
  /** A book became locked or crossed, or stopped being so. */
  [BOOK_QUALITY_TOPIC]: BookQualityEvent;
  /** Every instrument's features, one frame per sampling clock per tick. */
  [FEATURES_TOPIC]: FeatureFrame;
  /** Every model install, swap, rollback, promotion, shadow and refusal. */
  [MODEL_SWAP_TOPIC]: SwapEvent;
  /** A model drifting or recovering, its live error crossing its bound or coming back within it. */
  [MODEL_EVENT_TOPIC]: ModelEvent;
  /** Every risk gate transition, in the call that made it. */
  [GATE_TRANSITION_TOPIC]: GateTransition;
  /** Every journal entry, once durable. */
  [JOURNAL_RECORD_TOPIC]: JournalEntry;
  /** What an option chain was priced from, in the order applied: quotes, sizes, IB's computations, the underlying's quote, each pricing (the recorder writes it, a replay plays it back). */
  [OPTIONS_INPUT_TOPIC]: ChainInputBatch;
}

/** The latest value is retained for late readers and cleared when its publisher stops. */
export interface States {
  [IB_STATUS_TOPIC]: IbStatus;
  [SUBSCRIPTIONS_STATUS_TOPIC]: SubscriptionsStatus;
  [FEATURE_HEALTH_TOPIC]: FeatureHealth;
  [REGIME_TOPIC]: RegimeFrame;
  [PREDICTIONS_TOPIC]: PredictionFrame;
  [REDIS_STATUS_TOPIC]: RedisStatus;
  [PORTFOLIO_TOPIC]: PortfolioView;
  /** Where the inspector listens. */
  [INSPECTOR_TOPIC]: InspectorAddress;
  /** The streamed option band: quotes, keel's IV and greeks, IB's beside them (a reused object, re-priced in place). */
  [OPTIONS_CHAIN_TOPIC]: OptionChainView;
  /** What stops option trading now (a stale or missing chain, a crossed quote, a mid without IV); the risk gate acts on it. */
  [OPTIONS_HEALTH_TOPIC]: ChainHealth;
  /** An option chain's listing for the day, as discovered (or as recorded, in a replay). */
  [OPTIONS_LISTING_TOPIC]: ChainListing;
  /** Each model's drift: input and prediction PSI per instrument, live error after its horizon, held-out figures. */
  [MODEL_DRIFT_TOPIC]: DriftReport;
  /** A trading node's view of the shard workers' outputs: each shard's age, and what must stop trading (the risk gate acts on it). */
  [CLUSTER_TOPIC]: ClusterView;
}

export type Topics = Streams & States;
export type StreamTopic = keyof Streams;
export type StateTopic = keyof States;
export type TopicName = keyof Topics;

// --- codecs ------------------------------------------------------------------

/** The encoding of every data topic; control topics (books, boards, swaps) have none. */
export const CODECS: { readonly [K in TopicName]?: Codec<Topics[K]> } = {
  [DEPTH_TOPIC]: depthBatchCodec,
  [TRADES_TOPIC]: tradeBatchCodec,
  [DEPTH_RESET_TOPIC]: plainCodec(),
  [FEATURES_TOPIC]: featureFrameCodec,
  [REGIME_TOPIC]: regimeFrameCodec,
  [PREDICTIONS_TOPIC]: predictionFrameCodec,
  [FEATURE_HEALTH_TOPIC]: featureHealthCodec,
  [PORTFOLIO_TOPIC]: plainCodec(),
  [JOURNAL_RECORD_TOPIC]: plainCodec(),
  [GATE_TRANSITION_TOPIC]: plainCodec(),
  [IB_STATUS_TOPIC]: plainCodec(),
  [REDIS_STATUS_TOPIC]: plainCodec(),
  [SUBSCRIPTIONS_STATUS_TOPIC]: plainCodec(),
  [FEED_SILENT_TOPIC]: plainCodec(),
  [BOOK_QUALITY_TOPIC]: plainCodec(),
  [OPTIONS_CHAIN_TOPIC]: plainCodec(),
  [OPTIONS_HEALTH_TOPIC]: plainCodec(),
  [OPTIONS_LISTING_TOPIC]: plainCodec(),
  [OPTIONS_INPUT_TOPIC]: plainCodec(),
  [CLUSTER_TOPIC]: plainCodec(),
  [MODEL_DRIFT_TOPIC]: plainCodec(),
  [MODEL_EVENT_TOPIC]: plainCodec(),
};

const STATE_TOPICS = [
  IB_STATUS_TOPIC,
  SUBSCRIPTIONS_STATUS_TOPIC,
  FEATURE_HEALTH_TOPIC,
  REGIME_TOPIC,
  PREDICTIONS_TOPIC,
  REDIS_STATUS_TOPIC,
  PORTFOLIO_TOPIC,
  INSPECTOR_TOPIC,
  OPTIONS_CHAIN_TOPIC,
  OPTIONS_HEALTH_TOPIC,
  OPTIONS_LISTING_TOPIC,
  CLUSTER_TOPIC,
  MODEL_DRIFT_TOPIC,
] as const satisfies readonly StateTopic[];

const STREAM_TOPICS = [
  DEPTH_TOPIC,
  TRADES_TOPIC,
  QUOTE_TOPS_TOPIC,
  DEPTH_RESET_TOPIC,
  FEED_SILENT_TOPIC,
  BOOK_TOPIC,
  BOOK_RESYNC_TOPIC,
  BOOK_QUALITY_TOPIC,
  FEATURES_TOPIC,
  MODEL_SWAP_TOPIC,
  MODEL_EVENT_TOPIC,
  GATE_TRANSITION_TOPIC,
  JOURNAL_RECORD_TOPIC,
  OPTIONS_INPUT_TOPIC,
] as const satisfies readonly StreamTopic[];

// Both lists name every topic of their interface: a topic added above and not here does not compile.
const everyTopicListed: [Exclude<TopicName, (typeof STATE_TOPICS)[number] | (typeof STREAM_TOPICS)[number]>] extends [never] ? true : false = true;
void everyTopicListed;

/** Every topic name, for configs that name topics (the Redis mirror's list). */
export const TOPIC_NAMES: readonly TopicName[] = [...STATE_TOPICS, ...STREAM_TOPICS];
const STATES: ReadonlySet<string> = new Set(STATE_TOPICS);
const ALL: ReadonlySet<string> = new Set(TOPIC_NAMES);

export const isTopic = (name: string): name is TopicName => ALL.has(name);
export const isStateTopic = (name: string): name is StateTopic => STATES.has(name);

/** The codec of a topic, or undefined for a topic that is not data. */
export function codecOf<K extends TopicName>(topic: K): Codec<Topics[K]> | undefined {
  return CODECS[topic];
}
