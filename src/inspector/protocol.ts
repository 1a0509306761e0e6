/**
 * What the inspector says on the wire, shared by the daemon's server, the
 * web page (src/inspector/web/app.js reads the same JSON) and `keel inspect`.
 *
 * WebSocket `/ws`, JSON text frames:
 *   server -> client
 *     snapshot  on connect and after each `resync`: the whole tree, the event
 *               ring, the panels, and whether control commands are enabled
 *     actors    coalesced deltas: the actors that changed, each at most 10
 *               times a second
 *     events    new entries of the event ring, in seq order
 *     panels    the market and trading panels, once a second
 *     chain     the option chain panel, when it changed, at most every
 *               CHAIN_INTERVAL_MS (none while no option_chain publishes)
 *     error     a client message that could not be taken (malformed JSON, unknown type)
 *   client -> server
 *     resync    send the snapshot again (RESYNC_BURST at once, then one per
 *               RESYNC_REFILL_MS; more are ignored, with one `error` saying so)
 *
 * HTTP: GET /health, /metrics, /api/actors, /api/actors/<id>, /api/features,
 * /api/positions, /api/orders, /api/chain, /api/cluster; POST /api/control/<command> with
 * `Authorization: Bearer <token>` (see CONTROL_COMMANDS).
 *
 * Every request and upgrade must name this inspector in its Host (see
 * hostAllowed in server.ts) or it is a 421; one with an Origin of another
 * site is a 403.
 */

/** One actor of the tree as the supervisor and XState see it. Times are wall-clock epoch ms. */
export interface ActorView {
  /** The XState systemId: 'root' or the component's id. */
  readonly id: string;
  /** The supervisor above it; null for the root. */
  readonly parent: string | null;
  /** The component kind from the config ('supervisor' for the root). */
  readonly kind: string;
  /** The actor's XState state value ('running', {connected: 'live'}, ...); null before it started or for logic without states. */
  readonly state: unknown;
  /** Lifecycle: the supervisor's view (starting, running, stopping, backoff, failed, stopped, exited); the phase for a supervisor. */
  readonly status: string;
  /** Times restarted since the daemon started. */
  readonly restarts: number;
  /** When a child in backoff will be started again, else null. */
  readonly backoffUntil: number | null;
  readonly lastError: string | null;
  /** The supervisor's health check of the child, when it has one. */
  readonly health: { readonly status: 'ok' | 'degraded' | 'failing'; readonly detail?: string } | null;
  /** When status or state last changed. */
  readonly since: number;
}

export type InspectorEventKind = 'transition' | 'status' | 'restart' | 'gate' | 'model' | 'reconnect' | 'book';

/** Where a running inspector listens (the `inspector` state topic). */
export interface InspectorAddress {
  readonly url: string;
}

/** One line of the event log: what changed, where, and why. */
export interface InspectorEvent {
  readonly seq: number;
  readonly at: number;
  readonly kind: InspectorEventKind;
  readonly actor: string;
  readonly text: string;
}

/** A state machine's shape for the detail view: nested states and their transitions. */
export interface MachineShape {
  readonly key: string;
  readonly type: 'atomic' | 'compound' | 'parallel' | 'final' | 'history';
  readonly tags: readonly string[];
  /** Event type -> target state keys (dotted path from the machine root); [] for a transition that stays. */
  readonly on: Readonly<Record<string, readonly string[]>>;
  readonly states: readonly MachineShape[];
}

/** GET /api/actors/<id>. */
export interface ActorDetail {
  readonly actor: ActorView;
  /** Null for logic that is not a state machine. */
  readonly machine: MachineShape | null;
  /** The actor's context, top-level fields only, each summarized to a short string. */
  readonly context: Readonly<Record<string, string>>;
  readonly events: readonly InspectorEvent[];
}

/** A measure and its limit, null where it is not a number. */
export interface Against {
  readonly value: number | null;
  readonly limit: number;
}

export interface OptionRiskPanel {
  readonly underlying: string;
  /** Shares-equivalent, shares per $1, $ per volatility point, $ per day. */
  readonly delta: Against;
  readonly gamma: Against;
  readonly vega: Against;
  readonly theta: Against;
  readonly premiumAtRisk: Against;
  /** The most contracts held and working in one expiry. */
  readonly contractsInExpiry: Against;
}

export interface GatePanel {
  readonly state: 'ACTIVE' | 'REDUCING' | 'HALTED';
  readonly reason: string;
  /** Conditions holding the gate, each `source: reason`. */
  readonly conditions: readonly string[];
  /** What stops option trading alone (the gate may be ACTIVE meanwhile), each `source: reason`. */
  readonly options: readonly string[];
}

/** One instrument's line: what the models think and what we hold. Null where nothing is known yet. */
export interface InstrumentPanel {
  readonly symbol: string;
  readonly bid: number | null;
  readonly ask: number | null;
  readonly regime: string | null;
  /** The ensemble's forecast at each horizon of `Panels.horizons`, in that order (bps over the horizon). */
  readonly predictions: readonly (number | null)[];
  readonly position: number;
  readonly averagePrice: number | null;
  readonly unrealizedPnl: number;
  readonly realizedPnl: number;
}

export interface FeatureHealthPanel {
  readonly symbols: readonly string[];
  readonly features: readonly string[];
  /** Per symbol, per feature: 0-100, or null while not judged. */
  readonly scores: readonly (readonly (number | null)[])[];
  /** Per symbol, per feature: HEALTHY, WARNING, CRITICAL, DISABLED, or '' while not judged. */
  readonly status: readonly (readonly string[])[];
  readonly qualityPct: number | null;
  /** What stops trading now, key -> reason. */
  readonly problems: Readonly<Record<string, string>>;
}

export interface Panels {
  readonly at: number;
  readonly phase: string;
  /** Overall system health (the /health rollup's overall_status). */
  readonly health: 'OK' | 'DEGRADED' | 'CRITICAL';
  readonly gate: GatePanel | null;
  readonly ib: { readonly state: string; readonly reason: string } | null;
  readonly redis: { readonly state: string; readonly reason: string } | null;
  readonly featureHealth: FeatureHealthPanel | null;
  /** The horizons the predictions carry ('10s', '5m', ...), shortest first: the columns of each instrument's `predictions`. */
  readonly horizons: readonly string[];
  readonly instruments: readonly InstrumentPanel[];
  readonly account: {
    readonly cash: number;
    readonly netPnl: number;
    readonly realizedPnl: number;
    readonly unrealizedPnl: number;
    readonly fees: number;
    readonly grossExposure: number;
    readonly netExposure: number;
    readonly workingOrders: number;
  } | null;
  /** [wall ms, net P&L] samples, oldest first, bounded. */
  readonly equity: readonly (readonly [number, number])[];
  /** The portfolio's option risk in the chain's underlying beside the gate's option limits; absent without an option chain. */
  readonly optionRisk?: OptionRiskPanel;
  /** The predictor's model slots; absent when no predictor runs. */
  readonly models?: readonly ModelSlotPanel[];
  /** The shard workers (the `cluster` state of a shard_reader); absent on a node that does not scale out. */
  readonly cluster?: ClusterPanel;
}

/** One shard: what this node reads of it, and what Redis says of it. Null where nothing is known. */
export interface ClusterShardPanel {
  readonly shard: number;
  /** This node's instruments in it; [] for a shard of the cluster this node does not read. */
  readonly symbols: readonly string[];
  /** The lease holder and its epoch (from the last status read). */
  readonly owner: string | null;
  readonly epoch: number | null;
  /** Age of the newest output this node read, and whether it is within the freshness bound; null for a shard it does not read. */
  readonly ageMs: number | null;
  readonly fresh: boolean | null;
  /** Input entries not yet delivered to a worker, and delivered but not committed (XINFO GROUPS). */
  readonly lag: number | null;
  readonly pending: number | null;
}

export interface ClusterWorkerPanel {
  readonly worker: string;
  readonly shards: number;
  readonly heartbeatAgeMs: number;
}

/** The scale-out as a trading node sees it: its shards, the workers, and what halts trading. */
export interface ClusterPanel {
  /** The shards this node reads, and any other of the cluster's active shards, ascending. */
  readonly shards: readonly ClusterShardPanel[];
  /** Empty before the first status read. */
  readonly workers: readonly ClusterWorkerPanel[];
  /** Redis time of the last status read; null before one succeeded. */
  readonly statusAt: number | null;
  /** Conditions that stop trading, key -> reason. */
  readonly problems: Readonly<Record<string, string>>;
}

/** What serves one model slot, so a swap into the wrong slot shows. */
export interface ModelSlotPanel {
  readonly slot: string;
  /** Live model: name@version, its family (from its ONNX operators) and its input, `frames x features`. */
  readonly model: string;
  readonly family: string;
  readonly input: string;
  /** The rollback target and the shadow candidate, by name@version. */
  readonly previous: string | null;
  readonly shadow: string | null;
  /** The live model's drift (models.drift), null before its first report. */
  readonly drift: ModelDriftPanel | null;
}

/** A model's drift and live error in numbers, null where not known yet. */
export interface ModelDriftPanel {
  /** Instruments whose input or prediction PSI is above the alert. */
  readonly drifting: number;
  /** The largest input PSI of any instrument, and which input and instrument. */
  readonly maxInputPsi: number | null;
  readonly worst: string | null;
  readonly horizonMs: number | null;
  /** Over the error window: predictions resolved, RMSE, the zero forecast's, hit rate, Diebold-Mariano against zero. */
  readonly resolved: number;
  readonly liveRmse: number | null;
  readonly zeroRmse: number | null;
  readonly hitRate: number | null;
  readonly dmVsZero: number | null;
  readonly heldOutRmse: number | null;
  readonly beyondBound: boolean;
}

/** One contract of the streamed band. Volatilities are decimals (0.15 = 15 %), delta in IB's units; null where there is nothing. */
export interface ChainQuote {
  readonly conId: number;
  /** Its market-data line: waiting, requested, live or refused. Only a live one's quotes are current. */
  readonly line: string;
  readonly bid: number | null;
  readonly ask: number | null;
  /** The mid's implied volatility, and why there is none. */
  readonly midIv: number | null;
  readonly ivReason: string | null;
  /** Keel's volatility (the fitted smile's) and its delta there. */
  readonly iv: number | null;
  readonly delta: number | null;
}

/** One strike of an expiry: its call and put, where the band streams them. */
export interface ChainStrike {
  readonly strike: number;
  readonly call: ChainQuote | null;
  readonly put: ChainQuote | null;
}

export interface ChainExpiry {
  /** YYYYMMDD. */
  readonly expiry: string;
  readonly years: number | null;
  /** The band's strike nearest the underlying. */
  readonly atmStrike: number | null;
  readonly atmIv: number | null;
  readonly riskReversal25: number | null;
  readonly butterfly25: number | null;
  /** Quotes the smile was fitted to (0: no fit yet), and the price error it leaves in dollars. */
  readonly fitPoints: number;
  readonly fitRmsPrice: number | null;
  /** The band's strikes, ascending. */
  readonly strikes: readonly ChainStrike[];
  /** The fitted smile as [strike, volatility] at the listed strikes around the band, ascending; [] before a fit. */
  readonly smile: readonly (readonly [number, number])[];
}

/** The option chain (the `options.chain` state) as the page and `keel inspect` show it. */
export interface ChainPanel {
  readonly underlying: string;
  /** discovering, waiting-for-underlying or streaming. */
  readonly phase: string;
  readonly spot: number | null;
  /** Wall-clock ms of the last pricing and of the last quote. */
  readonly pricedAt: number | null;
  readonly quotedAt: number | null;
  readonly lines: { readonly allowance: number; readonly wanted: number; readonly waiting: number; readonly requested: number; readonly live: number; readonly refused: number };
  /** The band's expiries, nearest first. */
  readonly expiries: readonly ChainExpiry[];
  /** The band's net greeks, long one of each (chain-features.ts): dollars per +1 % move, dollar delta per +1 %, dollars per vol point, dollars per day. */
  readonly net: { readonly delta1Pct: number | null; readonly gamma1Pct: number | null; readonly vega: number | null; readonly theta: number | null };
  /** Largest |keel − IB| over the band: volatility (decimal) and price. */
  readonly maxDiff: { readonly iv: number | null; readonly price: number | null };
}

export type ServerMessage =
  | {
      readonly type: 'snapshot';
      readonly instance: string;
      readonly at: number;
      readonly actors: readonly ActorView[];
      readonly events: readonly InspectorEvent[];
      readonly panels: Panels;
      /** The option chain; null when no option_chain publishes one. */
      readonly chain: ChainPanel | null;
      /** True when control commands are accepted (with the token). */
      readonly control: boolean;
    }
  | { readonly type: 'actors'; readonly at: number; readonly actors: readonly ActorView[] }
  | { readonly type: 'events'; readonly events: readonly InspectorEvent[] }
  | { readonly type: 'panels'; readonly panels: Panels }
  | { readonly type: 'chain'; readonly chain: ChainPanel }
  /** A client message the server could not take; the connection stays open. */
  | { readonly type: 'error'; readonly message: string };

export type ClientMessage = { readonly type: 'resync' };

/**
 * POST /api/control/<command>, JSON body. Answers 200 {ok: true, ...},
 * 401 without the token, 400 for a bad body, 409 when refused (a resume
 * while a condition holds), 503 when the component it needs is not running.
 */
export const CONTROL_COMMANDS = {
  halt: 'halt trading: {reason?}',
  resume: 'resume trading (refused while a condition holds): {reason?}',
  'reduce-only': 'allow only orders that shrink a position: {reason?}',
  'swap-model': 'validate a model and make it live: {path, slot?}',
  'rollback-model': 'back to the model before the last swap: {slot?}',
  'shadow-model': 'run a challenger beside a slot\'s model, judged for promotion: {path, slot?}',
  'promote-model': 'make the slot\'s challenger live now (an operator\'s force; on probation like any promotion): {slot?, reason?}',
  'veto-model': 'end the slot\'s challenger: it is never promoted: {slot?, reason?}',
  'restart-actor': 'stop an actor (and what depends on it) and start it again: {actor}',
  'do-not-exercise': 'a long option not to be exercised at its expiry (until 30 min after its close): {symbol, reason?}',
} as const;

export type ControlCommand = keyof typeof CONTROL_COMMANDS;

/** How often deltas of one actor may go out; the panels' period. */
export const DELTA_INTERVAL_MS = 100;
export const PANELS_INTERVAL_MS = 1000;
/** The chain is re-priced every 250 ms; a screen needs no more than two of them a second. */
export const CHAIN_INTERVAL_MS = 500;

/**
 * Resyncs a client may ask at once, and how often one more comes back: each
 * serializes the whole tree and event ring, so a flood of them would stall
 * the daemon's event loop.
 */
export const RESYNC_BURST = 3;
export const RESYNC_REFILL_MS = 1000;
