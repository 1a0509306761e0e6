/**
 * Universe: one full cycle of features, feature health, regime and
 * prediction for a universe of 5,000 instruments, beside 500 and 50 to see
 * how it scales; the target is 50 ms for the whole cycle at 5,000.
 *
 * A cycle is what happens at a 1 s boundary of the features clock, with the
 * settings of config/universe-5000.yaml, in the order the daemon does it:
 *
 *   features    FeatureEngine.tick, then the 100 ms and 1 s frames copied out
 *   health      FeatureHealth judging the 100 ms frame, then its data-age sweep
 *   regime      RegimeTracker: one online jump-model step per instrument
 *   prediction  TieredPredictor.predict on the 1 s frame, through the real
 *               InferencePool with the shipped demo models (GBDT + LSTM base
 *               tier, GBDT high-volatility specialist), each batch on the
 *               main thread or in a worker as its measured cost says, until
 *               the predictions are back; "main thread" is the part of it
 *               that holds the event loop (history, routing, sending; the
 *               workers pack their batches from shared memory)
 *
 * Every instrument here has a full book (the simulator's market at the
 * config's synthetic rate, 5 events a second each, through keel's books and
 * features), so every instrument is warm and every one is predicted: the
 * heaviest case. In the daemon's
 * 5,000 universe most instruments have level-1 quotes only and the demo
 * models (which read depth features) predict only the booked ones.
 *
 * Between cycles the market runs on a simulated clock (untimed), with the
 * features ticking and health judging every 100 ms as in the daemon.
 * Stages are medians over a run's cycles, then the median of runs; p99 is
 * over every cycle of every run.
 */
import pino from 'pino';
import { loadConfig } from '../src/config/load.js';
import { featureHealthSettings } from '../src/actors/feature-health.js';
import { featuresSettings } from '../src/actors/features.js';
import { horizonTiers, predictorSettings } from '../src/actors/predictor.js';
import { readRegimeModel, regimeSettings, regimeTracker } from '../src/actors/regime.js';
import { DepthBatch } from '../src/ib/depth-feed.js';
import { TradeBatch } from '../src/ib/trade-feed.js';
import { OrderBooks } from '../src/market/books.js';
import { FeatureHealth } from '../src/market/feature-health.js';
import { FeatureEngine, type FeatureFrame } from '../src/market/features.js';
import { InferencePool } from '../src/models/inference/pool.js';
import { TieredPredictor } from '../src/models/predictor.js';
import { ModelRegistry } from '../src/models/registry.js';
import { simConfigSchema } from '../src/sim/config.js';
import { InstrumentUniverse } from '../src/sim/instruments.js';
import { ASK, BID, INSERT, Market, ROWS, type MarketListener } from '../src/sim/market.js';
import { fmt, median, percentile, type BenchOptions } from './stats.js';

const CONFIG = 'config/universe-5000.yaml';
const SIZES = [5_000, 500, 50];
const CYCLES_PER_RUN = 50;
const TARGET_MS = 50;
const STAGES = ['features', 'health', 'regime', 'predictMain', 'prediction'] as const;
type Stage = (typeof STAGES)[number];

/** The component settings of the universe config, as the daemon parses them. */
function universeSettings() {
  const components = loadConfig(CONFIG).components;
  const of = (id: string) => {
    const c = components[id];
    if (!c) throw new Error(`${CONFIG} has no ${id} component`);
    return c.settings;
  };
  return {
    features: featuresSettings.parse(of('features')),
    health: featureHealthSettings.parse(of('feature_health')),
    regime: regimeSettings.parse(of('regime')),
    predictor: predictorSettings.parse(of('predictor')),
    sim: simConfigSchema.parse(of('simulator')),
  };
}

/** The simulator's market for `n` instruments feeding keel's books, trades and features, on a clock of its own. */
class UniverseMarket implements MarketListener {
  readonly books: OrderBooks;
  private readonly market: Market;
  private readonly depthBatch = new DepthBatch(16_384);
  private readonly tradeBatch = new TradeBatch(4_096);
  private now = 0;

  constructor(
    n: number,
    market: { readonly seed: number; readonly updatesPerSecond: number },
    private readonly engine: FeatureEngine,
  ) {
    this.books = new OrderBooks(n, ROWS);
    this.market = new Market(market, this);
    for (const instrument of new InstrumentUniverse(n - 4).all) {
      const book = this.market.book(instrument);
      // The opening book, row by row, as a depth subscription's snapshot brings it.
      for (let row = 0; row < ROWS; row++) {
        for (const side of [ASK, BID] as const) this.depth(instrument.index, side, row, INSERT, book.price[side][row]!, book.size[side][row]!);
      }
      this.market.watch(book, 0);
    }
  }

  /** Runs the market to `t` (ms) and hands what it did to the books and features. */
  advanceTo(t: number): void {
    this.now = t;
    this.market.advanceTo(t);
    this.flush();
  }

  depth(instrument: number, side: number, position: number, operation: number, priceTicks: number, size: number): void {
    const b = this.depthBatch;
    const row = b.count++;
    b.instrument[row] = instrument;
    b.position[row] = position;
    b.operation[row] = operation;
    b.side[row] = side;
    b.smart[row] = 0;
    b.price[row] = priceTicks / 100;
    b.size[row] = size;
    b.seq[row] = row;
    b.receivedAt[row] = this.now;
    if (b.count === b.capacity) this.flush();
  }

  trade(instrument: number, priceTicks: number, size: number): void {
    const b = this.tradeBatch;
    const row = b.count++;
    b.instrument[row] = instrument;
    b.price[row] = priceTicks / 100;
    b.size[row] = size;
    b.seq[row] = row;
    b.receivedAt[row] = this.now;
    if (b.count === b.capacity) this.flush();
  }

  private flush(): void {
    this.books.apply(this.depthBatch);
    this.engine.onBook(this.books);
    this.engine.onTrades(this.tradeBatch);
    this.depthBatch.count = 0;
    this.tradeBatch.count = 0;
  }
}

interface SizeResult {
  readonly instruments: number;
  /** Per stage, the median of the runs' medians, ms. */
  readonly stages: Readonly<Record<Stage, number>>;
  readonly cycleMs: number;
  readonly cycleP99Ms: number;
  readonly predicted: number;
  readonly withRegime: number;
}

async function universeCycles(n: number, runs: number, progress: (line: string) => void): Promise<SizeResult> {
  const s = universeSettings();
  const log = pino({ level: 'silent' });
  const baseMs = s.features.samplesMs[0]!;
  const engine = new FeatureEngine(n, { baseMs, ...s.features });
  // Every instrument as busy as the config's synthetic names.
  const market = new UniverseMarket(n, { seed: s.sim.seed, updatesPerSecond: s.sim.syntheticUpdatesPerSecond ?? s.sim.updatesPerSecond }, engine);
  const symbols = new InstrumentUniverse(n - 4).all.map((i) => i.symbol);
  const frameOf = (intervalMs: number): FeatureFrame => ({
    intervalMs,
    at: NaN,
    wallAt: NaN,
    schema: engine.schema,
    symbols,
    values: new Float64Array(engine.values.length),
    warm: new Uint8Array(n),
    base: intervalMs === baseMs,
  });
  const base = frameOf(baseMs);
  const second = frameOf(s.predictor.intervalMs);
  const health = new FeatureHealth(symbols, engine.schema, { ...s.health, booked: symbols.map(() => true) });

  const regime = regimeTracker(s.regime, readRegimeModel(s.regime.model), symbols, engine.schema);

  // As the predictor actor starts it: workers only as the load asks.
  const pool = await InferencePool.start({ workers: s.predictor.workers, minWorkers: 0, timeoutMs: s.predictor.timeoutMs });
  try {
    const registry = new ModelRegistry(pool, engine.schema, log, { latencyBudgetMs: s.predictor.latencyBudgetMs, maxWindow: s.predictor.historyFrames });
    const predictor = new TieredPredictor(registry, engine.schema, symbols, { horizons: horizonTiers(s.predictor), historyFrames: s.predictor.historyFrames, inThreadMaxMs: s.predictor.inThreadMaxMs }, log, () => performance.now());
    await predictor.start();

    let t = 0;
    /** One 100 ms step of the daemon's data plane, untimed. */
    const step = () => {
      t += baseMs;
      market.advanceTo(t);
      engine.tick(t);
      engine.copyTo(base.values, base.warm, t);
      base.at = t;
      health.observe(base.values, base.warm, t);
      health.sweep(engine.lastDataAt, 0, t);
    };
    // Warm: the longest return horizon covered, then the LSTM's window of 1 s frames.
    progress(`universe: warming ${fmt(n)} instruments (${fmt(engine.warmupMs / 1000 + 12)} simulated s)`);
    while (t < engine.warmupMs + 12_000) {
      step();
      if (t % s.predictor.intervalMs === 0) {
        engine.copyTo(second.values, second.warm, t);
        second.at = t;
        predictor.observe(second);
      }
    }

    const cycles: Record<Stage, number>[] = [];
    const runMedians: Record<Stage, number>[] = [];
    let predicted = 0;
    let withRegime = 0;
    for (let run = 0; run < runs; run++) {
      const mine: Record<Stage, number>[] = [];
      for (let c = 0; c < CYCLES_PER_RUN; c++) {
        while ((t + baseMs) % s.predictor.intervalMs !== 0) step();
        t += baseMs;
        market.advanceTo(t);
        const t0 = performance.now();
        engine.tick(t);
        engine.copyTo(base.values, base.warm, t);
        engine.copyTo(second.values, second.warm, t);
        base.at = second.at = t;
        const t1 = performance.now();
        health.observe(base.values, base.warm, t);
        health.sweep(engine.lastDataAt, 0, t);
        const t2 = performance.now();
        const regimes = regime.step(second);
        const t3 = performance.now();
        const answer = predictor.predict(second);
        const t4 = performance.now();
        const p = await answer;
        const t5 = performance.now();
        if (p.faults.length > 0) throw new Error(`model faults at ${n} instruments: ${p.faults.join('; ')}`);
        mine.push({ features: t1 - t0, health: t2 - t1, regime: t3 - t2, predictMain: t4 - t3, prediction: t5 - t3 });
        predicted = p.horizons[0]!.value.reduce((k, v) => k + (Number.isFinite(v) ? 1 : 0), 0);
        withRegime = regimes.state.reduce((k, v) => k + (v >= 0 ? 1 : 0), 0);
      }
      cycles.push(...mine);
      runMedians.push(Object.fromEntries(STAGES.map((st) => [st, median(mine.map((m) => m[st]))])) as Record<Stage, number>);
      progress(`universe: ${fmt(n)} instruments, run ${run + 1}/${runs}: cycle ${fmt(median(mine.map(total)), 1)} ms`);
    }
    const stages = Object.fromEntries(STAGES.map((st) => [st, median(runMedians.map((m) => m[st]))])) as Record<Stage, number>;
    const totals = cycles.map(total);
    return { instruments: n, stages, cycleMs: total(stages), cycleP99Ms: percentile(totals, 99), predicted, withRegime };
  } finally {
    await pool.close();
  }
}

/** The cycle: every stage but the main-thread share, which is inside prediction. */
const total = (m: Readonly<Record<Stage, number>>) => m.features + m.health + m.regime + m.prediction;

export async function universeBench({ runs, progress }: BenchOptions) {
  const results: SizeResult[] = [];
  for (const n of SIZES) results.push(await universeCycles(n, runs, progress));
  const ms = (x: number) => fmt(x, x < 10 ? 2 : 1);
  const lines = [
    '| instruments | features (tick + frames) | health | regime | prediction (main thread) | prediction (until answered) | cycle | cycle p99 | predicted / with a regime | target |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|',
    ...results.map((r) => {
      const st = r.stages;
      const target = r.instruments === SIZES[0] ? `<= ${TARGET_MS} ms: ${r.cycleMs <= TARGET_MS ? 'met' : 'MISSED'} (p99 ${r.cycleP99Ms <= TARGET_MS ? 'met' : 'missed'})` : '';
      return `| ${fmt(r.instruments)} | ${ms(st.features)} ms | ${ms(st.health)} ms | ${ms(st.regime)} ms | ${ms(st.predictMain)} ms | ${ms(st.prediction)} ms | **${ms(r.cycleMs)} ms** | ${ms(r.cycleP99Ms)} ms | ${fmt(r.predicted)} / ${fmt(r.withRegime)} | ${target} |`;
    }),
  ];
  const scale = results.length > 1 ? `\n\nFrom ${fmt(results.at(-1)!.instruments)} to ${fmt(results[0]!.instruments)} instruments (x${fmt(results[0]!.instruments / results.at(-1)!.instruments)}) the cycle grows x${fmt(results[0]!.cycleMs / results.at(-1)!.cycleMs, 1)}.` : '';
  const table = `One cycle at a 1 s boundary of the features clock, settings of ${CONFIG}; ${CYCLES_PER_RUN} cycles per run, stages are medians, p99 over all cycles. Every instrument has a full book here, so all are warm and predicted.\n\n${lines.join('\n')}${scale}`;
  return { table, rows: results };
}
