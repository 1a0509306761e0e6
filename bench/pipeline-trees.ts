/**
 * keel trees for the end-to-end benchmark, run in-process under the real
 * root supervisor, inspected as the daemon does, built from
 * config/default.yaml with three kinds of change:
 *
 *   the market     no simulator or inspector; ib_connection connects to the
 *                  bench's player; SPY, QQQ, AAPL depth and prints, no quotes
 *   the sampling   'clock': as configured (features every 100 ms, regime and
 *                  predictor on the 1 s frames). 'arrival' and 'naive': the
 *                  features component samples when a depth batch has been
 *                  applied, and regime and predictor take every frame
 *   the baseline   'naive' only: the books are an XState actor that takes one
 *                  event per depth update, and the predictor runs every
 *                  batch on the main thread (a pool without workers), every
 *                  frame, awaited
 *
 * Everything else (DepthFeed, books, features, feature health, risk gate,
 * regime, TieredPredictor, paper trader, journal) is keel's own component.
 * A TickToDecision probe on each tree's bus times every depth message from
 * its arrival (the DepthFeed's receive stamp) to the trader's decision on
 * the first prediction frame sampled after it.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { setup, createActor, type AnyActorLogic } from 'xstate';
import { stringify } from 'yaml';
import { horizonTiers, type PredictorSettings } from '../src/actors/predictor.js';
import { Bus } from '../src/bus.js';
import { systemClock, type Clock } from '../src/clock.js';
import { parseConfig } from '../src/config/load.js';
import { treeFromConfig } from '../src/daemon.js';
import { DepthBatch } from '../src/ib/depth-feed.js';
import { startInspection } from '../src/inspector/notable.js';
import { createLogger } from '../src/log.js';
import { OrderBooks } from '../src/market/books.js';
import { InferencePool } from '../src/models/inference/pool.js';
import { TieredPredictor, type PathCount } from '../src/models/predictor.js';
import { ModelRegistry } from '../src/models/registry.js';
import type { ComponentContext } from '../src/supervision/component.js';
import { serviceLogic } from '../src/supervision/service.js';
import { rootContext, supervisorMachine } from '../src/supervision/supervisor.js';
import { ServiceTable } from '../src/services.js';
import { defaultConfigIn } from './default-config.js';
import { BOOK_TOPIC, DEPTH_RESET_TOPIC, DEPTH_TOPIC, FEATURES_TOPIC, PREDICTIONS_TOPIC } from '../src/topics.js';


export type Variant = 'arrival' | 'clock' | 'naive';

/**
 * 'arrival' and 'naive' keep one features clock, at the default base (the
 * return horizons are multiples of it), fired on arrival; regime and
 * predictor listen to it, so they take every frame.
 */
const EVERY_FRAME_MS = 100;

/** The naive tree's feed silence threshold, ms: longer than the bench waits for it to drain. */
const NAIVE_SILENCE_MS = 300_000;

/**
 * The features component's clock in 'arrival' and 'naive': its sampling
 * timer waits for `sample()` instead of firing on time. Time itself is the
 * system's.
 */
class OnArrival implements Clock {
  private due: (() => void) | undefined;
  readonly now = systemClock.now;
  readonly wallNow = systemClock.wallNow;

  setTimeout(fn: () => void): unknown {
    this.due = fn;
    return fn;
  }

  clearTimeout(handle: unknown): void {
    if (handle === this.due) this.due = undefined;
  }

  sample(): void {
    const tick = this.due;
    this.due = undefined;
    tick?.();
  }
}

/** `logic` with its ComponentContext's clock replaced: the supervisor gives every child the tree's clock. */
function withClock(logic: AnyActorLogic, clock: Clock): AnyActorLogic {
  return Object.create(logic, {
    getInitialSnapshot: { value: (scope: unknown, input: ComponentContext) => logic.getInitialSnapshot(scope as never, { ...input, clock }) },
  }) as AnyActorLogic;
}

/**
 * The naive predictor: keel's TieredPredictor with every batch on the main
 * thread (a pool with no workers), every frame run and awaited, none
 * skipped. Tells `onPredictor` the predictor it made, for its counters.
 */
const inlinePredictorLogic = (onPredictor: (p: TieredPredictor) => void) =>
  serviceLogic<PredictorSettings>(async (ctx) => {
    const { bus, clock, log, settings } = ctx;
    const engine = ctx.need('featureEngine');
    const pool = await InferencePool.start({ workers: 0, timeoutMs: settings.timeoutMs });
    const registry = new ModelRegistry(pool, engine.schema, log, { latencyBudgetMs: settings.latencyBudgetMs, maxWindow: settings.historyFrames });
    const predictor = new TieredPredictor(registry, engine.schema, ctx.need('instruments').symbols, { horizons: horizonTiers(settings), historyFrames: settings.historyFrames }, log, () => clock.now());
    await predictor.start();
    onPredictor(predictor);
    const unsubscribe = bus.subscribe(FEATURES_TOPIC, (frame) => {
      if (frame.intervalMs !== settings.intervalMs) return;
      predictor
        .predict(frame)
        .then((p) => bus.retain(PREDICTIONS_TOPIC, p))
        .catch((err: unknown) => ctx.fail(err));
    });
    return {
      async stop() {
        unsubscribe();
        await pool.close();
      },
    };
  });

type NaiveBookEvent =
  | { type: 'depth'; instrument: number; position: number; operation: number; side: number; smart: number; price: number; size: number; seq: number; receivedAt: number }
  | { type: 'shutdown' };

/** The naive books: an XState actor in the tree that takes one event per depth update and applies it, then tells the features. */
const naiveBooksLogic = setup({
  types: {} as {
    context: { ctx: ComponentContext; books: OrderBooks; row: DepthBatch; unsubscribe: (() => void)[] };
    input: ComponentContext;
    events: NaiveBookEvent;
  },
}).createMachine({
  context: ({ input }) => ({ ctx: input, books: new OrderBooks(input.need('instruments').symbols.length, 10), row: new DepthBatch(1), unsubscribe: [] }),
  entry: ({ context, self }) => {
    const { bus } = context.ctx;
    context.unsubscribe.push(
      bus.subscribe(DEPTH_TOPIC, (b) => {
        for (let r = 0; r < b.count; r++) {
          self.send({ type: 'depth', instrument: b.instrument[r]!, position: b.position[r]!, operation: b.operation[r]!, side: b.side[r]!, smart: b.smart[r]!, price: b.price[r]!, size: b.size[r]!, seq: b.seq[r]!, receivedAt: b.receivedAt[r]! });
        }
      }),
      bus.subscribe(DEPTH_RESET_TOPIC, ({ instrument }) => context.books.reset(instrument)),
    );
    context.ctx.provide('books', context.books);
  },
  initial: 'running',
  states: {
    running: {
      tags: ['ready'],
      on: {
        depth: {
          actions: ({ context: { ctx, books, row }, event: e }) => {
            if (e.type !== 'depth') return;
            row.count = 1;
            row.instrument[0] = e.instrument;
            row.position[0] = e.position;
            row.operation[0] = e.operation;
            row.side[0] = e.side;
            row.smart[0] = e.smart;
            row.price[0] = e.price;
            row.size[0] = e.size;
            row.seq[0] = e.seq;
            row.receivedAt[0] = e.receivedAt;
            books.apply(row);
            ctx.bus.publish(BOOK_TOPIC, books);
          },
        },
        shutdown: 'stopped',
      },
    },
    stopped: { type: 'final', entry: ({ context }) => context.unsubscribe.forEach((u) => u()) },
  },
});

/**
 * Per depth message (by DepthFeed sequence number): when it arrived, when
 * the first features frame after it that the models predicted was sampled,
 * and when the trader decided on that frame's predictions. Each decision
 * keeps the last sequence number its frame saw, how long the models took
 * (send to result, and inside onnxruntime) and whether every instrument got
 * a prediction.
 */
export interface Decision {
  readonly at: number;
  readonly through: number;
  readonly modelsMs: number;
  readonly inferenceMs: number;
  readonly predictedAll: boolean;
}

export class TickToDecision {
  readonly arrivedAt: Float64Array;
  readonly sampledAt: Float64Array;
  readonly decidedAt: Float64Array;
  lastSeq = 0;
  decidedThrough = 0;
  readonly decisions: Decision[] = [];
  /** A decision with every instrument predicted by its whole tier (the LSTM's window full). */
  fullEnsembleSeen = false;
  private readonly sampledThrough = new Map<number, number>();

  constructor(bus: Bus, capacity: number) {
    this.arrivedAt = new Float64Array(capacity + 1).fill(NaN);
    this.sampledAt = new Float64Array(capacity + 1).fill(NaN);
    this.decidedAt = new Float64Array(capacity + 1).fill(NaN);
    // Subscribed before the tree starts, so it sees each batch before the books do.
    bus.subscribe(DEPTH_TOPIC, (b) => {
      for (let r = 0; r < b.count; r++) this.arrivedAt[b.seq[r]!] = b.receivedAt[r]!;
      if (b.count > 0) this.lastSeq = b.seq[b.count - 1]!;
    });
  }

  /** Subscribed once the tree runs, so the trader has handled a prediction frame when this hears it. */
  attach(bus: Bus, predictorIntervalMs: number): void {
    bus.subscribe(FEATURES_TOPIC, (f) => {
      if (f.intervalMs === predictorIntervalMs) this.sampledThrough.set(f.at, this.lastSeq);
    });
    bus.subscribe(PREDICTIONS_TOPIC, (p) => {
      const at = performance.now();
      const through = this.sampledThrough.get(p.frameAt);
      if (through === undefined) throw new Error('a prediction frame for a features frame the probe never saw');
      // Frames skipped by the predictor are never decided on: forget them with this one.
      for (const k of this.sampledThrough.keys()) if (k <= p.frameAt) this.sampledThrough.delete(k);
      for (let seq = this.decidedThrough + 1; seq <= through; seq++) {
        this.sampledAt[seq] = p.frameAt;
        this.decidedAt[seq] = at;
      }
      this.decidedThrough = Math.max(this.decidedThrough, through);
      const h = p.horizons[0]!;
      const predictedAll = h.value.every((v) => Number.isFinite(v));
      this.decisions.push({ at, through, modelsMs: p.latencyMs, inferenceMs: p.inferenceMs, predictedAll });
      this.fullEnsembleSeen ||= predictedAll && h.tier.every((t, i) => t === 'high_vol' || h.models[i]!.includes('lstm'));
    });
  }
}

/** Log lines, counted; warnings and errors kept (a restart would spoil the measurement). */
class LogTally extends Writable {
  lines = 0;
  readonly problems: string[] = [];
  override _write(chunk: Buffer, _enc: string, done: () => void): void {
    for (const line of chunk.toString().split('\n')) {
      if (!line) continue;
      this.lines++;
      const level = Number(/"level":(\d+)/.exec(line)?.[1]);
      if (level >= 40) this.problems.push(line);
    }
    done();
  }
}

export interface Pipeline {
  readonly variant: Variant;
  readonly clientId: number;
  readonly bus: Bus;
  readonly services: ServiceTable;
  readonly probe: TickToDecision;
  readonly log: LogTally;
  /** Failures no component owned, and a root that failed. */
  readonly failures: unknown[];
  /** Where the predictor ran its batches so far: the main thread, the workers. */
  paths(): { readonly here: PathCount; readonly workers: PathCount };
  /** Worker threads the predictor's pool runs. */
  workers(): number;
  stop(): Promise<void>;
}

/** The config of one bench tree: config/default.yaml with the changes in the module comment, its files in `dir`. */
function configFor(variant: Variant, symbols: readonly string[], port: number, clientId: number, dir: string) {
  mkdirSync(dir, { recursive: true });
  const raw = defaultConfigIn(dir);
  const c = raw.components;
  delete c.simulator;
  delete c.inspector;
  raw.instance = `bench-pipeline-${variant}`;
  c.ib_connection!.dependsOn = ['journal'];
  Object.assign(c.ib_connection!.settings, { port, clientId });
  c.subscriptions!.settings.instruments = symbols.map((symbol) => ({ symbol, depth: { rows: 10 }, ticks: 'AllLast', quotes: false }));
  // The naive tree falls seconds behind at 100,000/s, by design; working through that backlog, a quiet
  // instrument's prints would look silent (5 s by default) and be requested again, which voids the
  // depth sequence the probe counts and fails the bench on the contrast rather than on keel.
  if (variant === 'naive') c.subscriptions!.settings.silenceMs = NAIVE_SILENCE_MS;
  if (variant !== 'clock') {
    c.features!.settings.samplesMs = [EVERY_FRAME_MS];
    c.regime!.settings.intervalMs = EVERY_FRAME_MS;
    c.predictor!.settings.intervalMs = EVERY_FRAME_MS;
  }
  return parseConfig(stringify(raw), `config/default.yaml (bench pipeline, ${variant})`);
}

/** Starts one tree and resolves once every component is running. */
export async function startPipeline(variant: Variant, symbols: readonly string[], port: number, clientId: number, dir: string, capacity: number): Promise<Pipeline> {
  const config = configFor(variant, symbols, port, clientId, join(dir, variant));
  const tree = treeFromConfig(config);
  const onArrival = new OnArrival();
  const logic: Record<string, AnyActorLogic> = {};
  if (variant !== 'clock') logic.features = withClock(tree.children.find((c) => c.id === 'features')!.logic, onArrival);
  let naive: TieredPredictor | undefined;
  if (variant === 'naive') {
    logic.l2_microstructure = naiveBooksLogic;
    logic.predictor = inlinePredictorLogic((p) => (naive = p));
  }
  const settings = { ...tree, children: tree.children.map((c) => ({ ...c, logic: logic[c.id] ?? c.logic })) };

  const log = new LogTally();
  const logger = createLogger({ level: config.log.level, pretty: false, destination: log });
  const bus = new Bus();
  const services = new ServiceTable();
  const inspection = startInspection(bus, services, systemClock);
  const probe = new TickToDecision(bus, capacity);
  const failures: unknown[] = [];
  const root = createActor(supervisorMachine, {
    clock: systemClock,
    systemId: 'root',
    inspect: inspection.tree.observe,
    input: rootContext({ instance: config.instance, settings: { ...settings, services }, log: logger, clock: systemClock, bus, fail: (e) => failures.push(e) }),
  });
  const stopped = new Promise<void>((resolve) => root.subscribe({ complete: resolve, error: (e) => (failures.push(e), resolve()) }));
  const running = new Promise<void>((resolve, reject) => {
    root.subscribe((s) => s.value === 'running' && resolve());
    void stopped.then(() => reject(new Error(`the ${variant} tree stopped before it ran: ${failures.map(String).join('; ')} ${log.problems.join('\n')}`)));
  });
  root.start();
  await running;
  probe.attach(bus, config.components.predictor!.settings.intervalMs as number);
  // After the books' subscription: the frame is sampled once the batch is applied.
  if (variant !== 'clock') bus.subscribe(DEPTH_TOPIC, () => onArrival.sample());
  return {
    variant,
    clientId,
    bus,
    services,
    probe,
    log,
    failures,
    paths: () => (naive ?? services.current('predictor')!.predictor).paths,
    workers: () => (naive ? 0 : services.current('predictor')!.registry.pool.size),
    async stop() {
      root.send({ type: 'shutdown' });
      await stopped;
      inspection.stop();
    },
  };
}
