/**
 * Replay: a recording fed through the daemon's own actors (books, features,
 * feature health, regime, predictor, risk gate, paper trader in book mode,
 * journal, an option chain when the config has one) under a simulated
 * clock. What talked to IB (simulator, ib_connection, subscriptions) is
 * replaced by `replay_source`, which only announces the recorded universe;
 * the player then publishes the recorded rows on the bus as the depth and
 * trade feeds would, moving the clock to each row's time. An option chain
 * runs from the recording (its `source` set to `recording`): the player
 * publishes the recorded listings and inputs as the live chain did, and
 * the chain prices at each recorded pricing.
 *
 * Every timer due before a row fires first, at its simulated instant; after
 * each, the player waits until the actors are done with what it started (a
 * prediction frame in the workers, orders on their way to the journal), so
 * a replay gives the same decisions however fast the machine is. At
 * `speed` 1 or 10 it also waits in real time; at Infinity it goes as fast
 * as the actors do.
 */
import type { Logger } from 'pino';
import { Bus } from '../bus.js';
import { ManualClock } from '../clock.js';
import type { KeelConfig } from '../config/schema.js';
import { runDaemon, treeFromConfig } from '../daemon.js';
import { DepthBatch } from '../ib/depth-feed.js';
import { TradeBatch } from '../ib/trade-feed.js';
import { CHAIN_INPUT, ChainInputBatch } from '../options/chain-input.js';
import { serviceLogic } from '../supervision/service.js';
import { NO_CONTRACT, type ChildSpec } from '../supervision/spec.js';
import { ServiceTable, type ServiceLookup } from '../services.js';
import type { Ledger } from '../trading/ledger.js';
import { DEPTH_ROW, OPTION_ROW, RESET_ROW, TRADE_ROW, type RecordedChunk, type RecordedListing, type Recording, type RecordingHeader } from './recording.js';
import {
  DEPTH_RESET_TOPIC,
  DEPTH_TOPIC,
  FEATURE_HEALTH_TOPIC,
  FEATURES_TOPIC,
  GATE_TRANSITION_TOPIC,
  OPTIONS_INPUT_TOPIC,
  OPTIONS_LISTING_TOPIC,
  PREDICTIONS_TOPIC,
  TRADES_TOPIC,
} from '../topics.js';

/** The kinds that talk to IB or the outside, left out of a replay. */
const LEFT_OUT = new Set(['simulator', 'ib_connection', 'subscriptions', 'redis', 'inspector', 'recorder']);
const SOURCE_ID = 'replay_source';

export interface ReplayProgress {
  readonly rows: number;
  /** How far the source has been read, of `total` (bytes of a file, rows of LOBSTER). */
  readonly done: number;
  readonly total: number;
  readonly wallMs: number;
  /** Simulated time covered so far, ms. */
  readonly simulatedMs: number;
}

export interface ReplaySummary {
  readonly source: string;
  readonly instruments: number;
  readonly rows: number;
  readonly depthRows: number;
  readonly tradeRows: number;
  /** Option chain inputs played (quotes, sizes, IB's computations, the underlying's quotes, pricings). */
  readonly optionRows: number;
  /** Of those, the pricings: each one an `options.chain` the replay's chain published. */
  readonly optionPricings: number;
  /** Option chain listings played. */
  readonly optionListings: number;
  readonly wallMs: number;
  readonly rowsPerSecond: number;
  readonly simulatedMs: number;
  readonly predictionFrames: number;
  readonly orders: number;
  readonly fills: number;
  readonly realizedPnl: number;
  readonly netPnl: number;
  readonly fees: number;
  /** Conditions feature health raised (each new one counts once). */
  readonly healthConditions: number;
  readonly gateTransitions: readonly { to: string; reason: string }[];
  /** Each instrument's best bid and ask when the tape ended (NaN: an empty side). */
  readonly lastQuotes: readonly { symbol: string; bid: number; ask: number }[];
  /** Bytes at the end of the file that were not a whole chunk (a recording cut short). */
  readonly truncatedBytes: number;
  /** The process's peak resident memory so far, bytes: the replay's, when it ran in a process of its own (keel replay). */
  readonly peakRssBytes: number;
}

export interface ReplayOptions {
  readonly recording: Recording;
  /** The daemon config whose actors the recording goes through. */
  readonly config: KeelConfig;
  /** Simulated ms per real ms; Infinity: as fast as the actors go. */
  readonly speed: number;
  /** Where the replay's own journal goes (never the daemon's). */
  readonly journalPath: string;
  readonly log: Logger;
  readonly onProgress?: (progress: ReplayProgress) => void;
  /** How often onProgress is called, real ms. */
  readonly progressMs?: number;
  /** Aborting stops the replay where it is; the summary covers what was played. */
  readonly stop?: AbortSignal;
  /** The bus the replay's actors run on, for a caller that reads what they publish (a new one by default). */
  readonly bus?: Bus;
}

/** The config's tree with the IB side replaced by the recording's source. */
export function replayTree(config: KeelConfig, journalPath: string): KeelConfig {
  const kept = Object.entries(config.components).filter(([, c]) => !LEFT_OUT.has(c.kind));
  const removed = new Set(Object.keys(config.components).filter((id) => LEFT_OUT.has(config.components[id]!.kind)));
  const feeds = new Set(Object.entries(config.components).filter(([, c]) => c.kind === 'subscriptions').map(([id]) => id));
  const components: KeelConfig['components'] = {};
  for (const [id, c] of kept) {
    const dependsOn = [...new Set(c.dependsOn.flatMap((d) => (feeds.has(d) ? [SOURCE_ID] : removed.has(d) ? [] : [d])))];
    let settings = c.settings;
    // A replay's journal is made again by replaying: no fsync per batch, each a wait of milliseconds.
    if (c.kind === 'journal') settings = { ...settings, path: journalPath, fsync: false };
    if (c.kind === 'paper_trader') settings = { ...settings, mode: 'book' };
    // The chain is fed what was recorded (a recording without option data leaves it waiting for a listing).
    if (c.kind === 'option_chain') settings = { ...settings, source: 'recording' };
    components[id] = { ...c, dependsOn, settings };
  }
  for (const kind of ['l2_microstructure', 'features'] as const) {
    if (!kept.some(([, c]) => c.kind === kind)) throw new Error(`the config has no ${kind} component: a replay needs the books and the features`);
  }
  return { ...config, components };
}

/** Announces the recorded universe as subscriptions would. */
function sourceSpec(header: RecordingHeader): ChildSpec {
  return {
    id: SOURCE_ID,
    kind: 'replay_source',
    dependsOn: [],
    settings: {},
    // The player publishes the recording's rows on its behalf.
    contract: { ...NO_CONTRACT, provides: ['instruments'], publishes: [DEPTH_TOPIC, TRADES_TOPIC, DEPTH_RESET_TOPIC, OPTIONS_LISTING_TOPIC, OPTIONS_INPUT_TOPIC] },
    logic: serviceLogic(async ({ provide }) => {
      provide('instruments', { symbols: header.instruments, booked: header.booked });
      return { stop() {} };
    }),
  };
}

export async function replay(options: ReplayOptions): Promise<ReplaySummary> {
  const { recording, speed, log } = options;
  const { header } = recording;
  const config = replayTree(options.config, options.journalPath);
  const tree = treeFromConfig(config);
  const bus = options.bus ?? new Bus();
  const services = new ServiceTable();
  const chunks = recording.chunks();
  const first = await chunks.next();
  // Time starts at the first row; wall time is the day it was recorded.
  const startAt = first.done ? header.monotonicAt : 'chunk' in first.value ? first.value.chunk.at[0]! : first.value.at;
  const clock = new ManualClock(startAt, header.wallAt - header.monotonicAt);
  const watch = watchActors(bus, services);
  const stopTree = new AbortController();
  let running!: () => void;
  const ready = new Promise<void>((resolve) => (running = resolve));
  const exited = runDaemon({
    instance: `${config.instance}-replay`,
    tree: { ...tree, children: [sourceSpec(header), ...tree.children] },
    log,
    clock,
    bus,
    services,
    signals: [],
    onRunning: running,
    stop: stopTree.signal,
  });
  const failedEarly = exited.then((code) => {
    throw new Error(`the replay's actors stopped before the recording was played (exit code ${code}); see the log above`);
  });
  // Raced below; once the tree stops at the end, nobody is listening any more.
  failedEarly.catch(() => {});
  await Promise.race([ready, failedEarly]);

  const player = new Player(bus, services, clock, watch, speed, header.instruments);
  const startedAt = performance.now();
  let lastProgress = startedAt;
  let done = 0;
  let wallMs = 0;
  let simulatedMs = 0;
  let lastQuotes: ReplaySummary['lastQuotes'] = [];
  let ledger: Ledger | undefined;
  const progress = () =>
    options.onProgress?.({ rows: player.rows, done, total: recording.total, wallMs: performance.now() - startedAt, simulatedMs: clock.now() - startAt });
  try {
    for (let next = first; !next.done; next = await chunks.next()) {
      if (options.stop?.aborted) break;
      const piece = next.value;
      await Promise.race(['chunk' in piece ? player.play(piece.chunk) : player.list(piece), failedEarly]);
      done = piece.done;
      if (performance.now() - lastProgress >= (options.progressMs ?? 200)) {
        lastProgress = performance.now();
        progress();
      }
    }
    player.flush();
    // The last frames of the tape still reach the models and the trader.
    await Promise.race([player.runFor(watch.predictorIntervalMs() ?? 1_000), failedEarly]);
    progress();
    simulatedMs = clock.now() - startAt;
    watch.stopCounting();
    const books = services.current('books');
    lastQuotes = header.instruments.map((symbol, i) => ({ symbol, bid: books?.books[i]?.bestBid() ?? NaN, ask: books?.books[i]?.bestAsk() ?? NaN }));
  } finally {
    await chunks.return(undefined);
    wallMs = performance.now() - startedAt;
    // Time goes on while the actors stop: the trader's cancels are answered on the clock.
    const ticking = setInterval(() => void clock.advance(10), 1);
    // Taken before the stop (the journal withdraws it as it stops); read after, with the trader's cancels booked.
    ledger = services.current('ledger');
    stopTree.abort();
    const code = await exited;
    clearInterval(ticking);
    if (code !== 0) log.warn({ code }, 'the replay tree did not stop cleanly');
  }
  const view = ledger?.view(clock.wallNow());
  return {
    source: header.source,
    instruments: header.instruments.length,
    rows: player.rows,
    depthRows: player.depthRows,
    tradeRows: player.tradeRows,
    optionRows: player.optionRows,
    optionPricings: player.optionPricings,
    optionListings: player.optionListings,
    wallMs,
    rowsPerSecond: player.rows / (wallMs / 1000),
    simulatedMs,
    predictionFrames: watch.predictionFrames,
    orders: ledger?.orders.size ?? 0,
    fills: ledger?.fills.size ?? 0,
    realizedPnl: view?.realizedPnl ?? 0,
    netPnl: view?.netPnl ?? 0,
    fees: view?.fees ?? 0,
    healthConditions: watch.healthConditions,
    gateTransitions: watch.gateTransitions,
    lastQuotes,
    truncatedBytes: recording.truncated,
    // maxRSS is in KiB.
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
  };
}

/** What the player waits for and the summary counts, read off the bus. */
function watchActors(bus: Bus, services: ServiceLookup) {
  let awaited = -Infinity;
  let answered = -Infinity;
  let wake: (() => void) | undefined;
  let seen = new Set<string>();
  let counting = true;
  const watch = {
    predictionFrames: 0,
    healthConditions: 0,
    gateTransitions: [] as { to: string; reason: string }[],
    /** The tape has ended: what the actors do while they stop is not part of it. */
    stopCounting: () => (counting = false),
    predictorIntervalMs: () => services.current('predictor')?.intervalMs,
    /** Resolves once the predictor answered the last frame it was given (at once when none is out, or it skipped it), and its drift monitor watched it. */
    async predictions(): Promise<void> {
      const status = services.current('predictor');
      if (!status) return;
      if (answered >= awaited) return status.monitor.caughtUp();
      const skipped = status.skipped;
      // A predictor that fails is restarted by its supervisor and logs why; the tape does not wait for ever.
      const giveUpAt = performance.now() + 10_000;
      while (answered < awaited && status.skipped === skipped && performance.now() < giveUpAt) {
        await new Promise<void>((resolve) => {
          wake = resolve;
          // A frame the predictor dropped gets no answer: look again shortly.
          setTimeout(resolve, 5);
        });
      }
      await status.monitor.caughtUp();
    },
  };
  bus.subscribe(FEATURES_TOPIC, (frame) => {
    if (frame.intervalMs === watch.predictorIntervalMs()) awaited = frame.at;
  });
  bus.subscribe(PREDICTIONS_TOPIC, (p) => {
    watch.predictionFrames++;
    answered = Math.max(answered, p.frameAt);
    wake?.();
  });
  bus.subscribe(FEATURE_HEALTH_TOPIC, (health) => {
    for (const key of health.problems.keys()) if (!seen.has(key)) watch.healthConditions++;
    seen = new Set(health.problems.keys());
  });
  bus.subscribe(GATE_TRANSITION_TOPIC, (t) => {
    if (counting) watch.gateTransitions.push({ to: t.to, reason: t.reason });
  });
  return watch;
}

/** Publishes recorded rows as the depth and trade feeds (and a live option chain) would, in arrival order, moving the clock. */
class Player {
  private readonly depth = new DepthBatch(4_096);
  private readonly trades = new TradeBatch(1_024);
  private readonly options = new ChainInputBatch(1_024);
  private realStart = NaN;
  private tapeStart = NaN;
  rows = 0;
  depthRows = 0;
  tradeRows = 0;
  optionRows = 0;
  optionPricings = 0;
  optionListings = 0;

  constructor(
    private readonly bus: Bus,
    private readonly services: ServiceLookup,
    private readonly clock: ManualClock,
    private readonly watch: ReturnType<typeof watchActors>,
    private readonly speed: number,
    /** The recording's instruments: an option row names its underlying by index. */
    private readonly underlyings: readonly string[],
  ) {}

  /** An option chain's listing, as its chain published it. */
  async list(listed: RecordedListing): Promise<void> {
    await this.reach(listed.at);
    this.flush();
    this.bus.retain(OPTIONS_LISTING_TOPIC, listed.listing);
    this.optionListings++;
  }

  async play(chunk: RecordedChunk): Promise<void> {
    for (let i = 0; i < chunk.count; i++) {
      const moving = this.reach(chunk.at[i]!);
      if (moving) await moving;
      const kind = chunk.kind[i]!;
      // Rows of one kind go out in batches; another kind's rows first go out as they came.
      if (kind !== DEPTH_ROW && this.depth.count > 0) this.flushDepth();
      if (kind !== TRADE_ROW && this.trades.count > 0) this.flushTrades();
      if (kind !== OPTION_ROW && this.options.count > 0) this.flushOptions();
      if (kind === DEPTH_ROW) {
        const d = this.depth;
        const row = d.count++;
        d.instrument[row] = chunk.instrument[i]!;
        d.position[row] = chunk.position[i]!;
        d.operation[row] = chunk.operation[i]!;
        d.side[row] = chunk.side[i]!;
        d.smart[row] = chunk.smart[i]!;
        d.price[row] = chunk.price[i]!;
        d.size[row] = chunk.size[i]!;
        d.seq[row] = this.rows + 1;
        d.receivedAt[row] = this.clock.now();
        this.depthRows++;
        if (d.count === d.capacity) this.flushDepth();
      } else if (kind === RESET_ROW) {
        this.bus.publish(DEPTH_RESET_TOPIC, { instrument: chunk.instrument[i]! });
      } else if (kind === OPTION_ROW) {
        const o = this.options;
        const underlying = this.underlyings[chunk.instrument[i]!]!;
        if (o.underlying !== underlying && o.count > 0) this.flushOptions();
        o.underlying = underlying;
        o.set(o.count++, chunk.contract[i]!, chunk.side[i]!, chunk.price[i]!, chunk.at[i]!);
        this.optionRows++;
        if (chunk.side[i] === CHAIN_INPUT.PRICED) this.optionPricings++;
        if (o.count === o.capacity) this.flushOptions();
      } else {
        const t = this.trades;
        const row = t.count++;
        t.instrument[row] = chunk.instrument[i]!;
        t.price[row] = chunk.price[i]!;
        t.size[row] = chunk.size[i]!;
        t.seq[row] = this.rows + 1;
        t.receivedAt[row] = this.clock.now();
        this.tradeRows++;
        if (t.count === t.capacity) this.flushTrades();
      }
      this.rows++;
    }
  }

  flush(): void {
    this.flushDepth();
    this.flushTrades();
    this.flushOptions();
  }

  /** Moves the clock to a row's time (never back); a promise only when timers fall due or the pace waits. */
  private reach(at: number): Promise<void> | undefined {
    if (at <= this.clock.now()) return undefined;
    this.flush();
    // Most rows need no timer and no pacing: move the clock without an await (no promise per row).
    if (this.clock.nextTimerAt() > at && !Number.isFinite(this.speed)) {
      this.clock.jumpTo(at);
      return undefined;
    }
    return this.moveTo(at);
  }

  /** Lets simulated time run on with no data, firing what falls due. */
  async runFor(ms: number): Promise<void> {
    await this.moveTo(this.clock.now() + ms);
  }

  private async moveTo(at: number): Promise<void> {
    this.flush();
    if (this.clock.nextTimerAt() > at) this.clock.jumpTo(at);
    else await this.clock.runUntil(at, this.quiesce);
    if (Number.isFinite(this.speed)) await this.pace(at);
  }

  /** After a timer: let its async work finish at this simulated instant. */
  private readonly quiesce = async (): Promise<void> => {
    await this.watch.predictions();
    await this.services.current('trader')?.settled();
  };

  private async pace(at: number): Promise<void> {
    if (Number.isNaN(this.tapeStart)) {
      this.tapeStart = at;
      this.realStart = performance.now();
    }
    const ahead = (at - this.tapeStart) / this.speed - (performance.now() - this.realStart);
    if (ahead > 1) await new Promise((resolve) => setTimeout(resolve, ahead));
  }

  private flushDepth(): void {
    if (this.depth.count === 0) return;
    this.bus.publish(DEPTH_TOPIC, this.depth);
    this.depth.count = 0;
  }

  private flushTrades(): void {
    if (this.trades.count === 0) return;
    this.bus.publish(TRADES_TOPIC, this.trades);
    this.trades.count = 0;
  }

  private flushOptions(): void {
    if (this.options.count === 0) return;
    this.bus.publish(OPTIONS_INPUT_TOPIC, this.options);
    this.options.count = 0;
  }
}
