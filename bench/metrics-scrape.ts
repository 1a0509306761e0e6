/**
 * One /metrics scrape at 5,000 instruments: what it costs the daemon's
 * event loop and how big the body is.
 *
 * The bus and services hold what a daemon on config/universe-5000.yaml
 * holds once warm: SPY, QQQ and AAPL with a book, 4,997 instruments with
 * quotes only, every feature judged, a regime and a prediction for every
 * instrument, three positions, the gate, the actor tree. Two variants,
 * alternating in one process:
 *   traded  the default: per-instrument series for the instruments with a
 *           book or a position, the rest counted;
 *   all     `metrics.perInstrument: all`: every instrument its own series
 *           (the cardinality every scrape had before the option existed).
 *
 * Each variant runs in a worker thread of its own, as in a daemon of its
 * own: its own heap, so the garbage of one (5 MB of text a scrape for `all`)
 * is not collected in the other's time. The workers take turns, a block of
 * scrapes each, with a pause between blocks. The loop is blocked for the whole scrape: collecting and
 * rendering read memory only (no I/O to wait on), and the response encodes
 * the text in the same call stack, so both are timed together (wall time:
 * on a busy machine it includes time the thread was not scheduled; the CPU
 * time beside it does not).
 */
import { parentPort, Worker, workerData } from 'node:worker_threads';
import { Bus } from '../src/bus.js';
import { ManualClock } from '../src/clock.js';
import { createMetrics, type PerInstrument } from '../src/inspector/metrics.js';
import type { ActorView } from '../src/inspector/protocol.js';
import { DEFAULT_THRESHOLDS, FeatureHealth } from '../src/market/feature-health.js';
import { DEFAULT_FEATURE_OPTIONS, DEPTH_FEATURES, featureSchema } from '../src/market/features.js';
import type { PredictionFrame } from '../src/models/predictor.js';
import type { RegimeFrame } from '../src/models/regime-tracker.js';
import { Random } from '../src/random.js';
import { ServiceTable } from '../src/services.js';
import type { PortfolioView } from '../src/trading/portfolio.js';
import { RiskGate } from '../src/trading/risk-gate.js';
import { FEATURE_HEALTH_TOPIC, PORTFOLIO_TOPIC, PREDICTIONS_TOPIC, REGIME_TOPIC } from '../src/topics.js';
import { fmt, median, percentile, type BenchOptions } from './stats.js';

const INSTRUMENTS = 5_000;
const BOOKED = ['SPY', 'QQQ', 'AAPL'];
const SCRAPES_PER_RUN = 20;
const SETTLE_MS = 1000;
const TARGET_MS = 5;
const TARGET_BYTES = 200 * 1024;
const VARIANTS: readonly PerInstrument[] = ['traded', 'all'];
const COMPONENTS = ['journal', 'simulator', 'ib_connection', 'subscriptions', 'l2_microstructure', 'features', 'feature_health', 'regime', 'predictor', 'risk_gate', 'paper_trader', 'inspector'];

/** A warm 5,000-instrument daemon's bus and services. */
function warmDaemon(): { bus: Bus; services: ServiceTable; actors: ActorView[] } {
  const rng = new Random(7);
  const random = () => rng.next();
  const symbols = [...BOOKED, 'MSFT', ...Array.from({ length: INSTRUMENTS - BOOKED.length - 1 }, (_, i) => `SYN${String(i + 1).padStart(4, '0')}`)];
  const booked = symbols.map((_, i) => i < BOOKED.length);
  const bus = new Bus();
  const services = new ServiceTable();
  services.provide('subscriptions', 'instruments', { symbols, booked });
  services.provide('risk_gate', 'riskGate', new RiskGate(new ManualClock(), { autoResume: true, healthyPeriodMs: 30_000 }));

  const schema = featureSchema(DEFAULT_FEATURE_OPTIONS);
  const width = schema.features.length;
  const health = new FeatureHealth(symbols, schema, { thresholds: DEFAULT_THRESHOLDS, advisory: ['ret_1s', 'ret_10s', 'ret_1m'], maxDataAgeMs: 5000, booked });
  // Values as the features give them: depth features NaN without a book, and some zeros so that scores vary.
  const values = new Float64Array(symbols.length * width);
  for (let i = 0; i < symbols.length; i++) {
    for (let f = 0; f < width; f++) values[i * width + f] = !booked[i] && DEPTH_FEATURES.includes(schema.features[f]!) ? NaN : random() < 0.05 ? 0 : 1 + random();
  }
  const warm = new Uint8Array(symbols.length).fill(1);
  for (let t = 0; t < 20; t++) health.observe(values, warm, t * 100);
  bus.retain(FEATURE_HEALTH_TOPIC, health);

  const regime: RegimeFrame = {
    model: 'regime-sjm@1',
    intervalMs: 1000,
    labels: ['calm', 'volatile'],
    symbols,
    k: 2,
    at: 0,
    state: Int32Array.from(symbols, () => (random() < 0.7 ? 0 : 1)),
    probabilities: Float64Array.from({ length: symbols.length * 2 }, () => random()),
    switches: 1234,
  };
  bus.retain(REGIME_TOPIC, regime);
  const prediction: PredictionFrame = {
    frameAt: 0,
    at: 10,
    symbols,
    horizons: [{ horizonMs: 10_000, value: Float64Array.from(symbols, () => random() - 0.5), tier: symbols.map(() => 'base'), models: symbols.map(() => 'gbdt-base-10s@1+lstm-base-10s@1') }],
    latencyMs: 10,
    inferenceMs: 2,
    faults: [],
  };
  bus.retain(PREDICTIONS_TOPIC, prediction);
  const portfolio: PortfolioView = {
    at: 0,
    cash: 1_000_000,
    positions: BOOKED.map((symbol) => ({ symbol, quantity: 100, multiplier: 1, averagePrice: 100, mark: 100, realizedPnl: 0, unrealizedPnl: 0, fees: 1 })),
    realizedPnl: 0,
    unrealizedPnl: 0,
    fees: 3,
    netPnl: -3,
    grossExposure: 30_000,
    netExposure: 30_000,
    seq: 1,
  };
  bus.retain(PORTFOLIO_TOPIC, portfolio);
  const actors = ['root', ...COMPONENTS].map(
    (id): ActorView => ({ id, parent: id === 'root' ? null : 'root', kind: id === 'root' ? 'supervisor' : id, state: null, status: 'running', restarts: 0, backoffUntil: null, lastError: null, health: null, since: 0 }),
  );
  return { bus, services, actors };
}

interface Scrape {
  readonly ms: number;
  readonly cpuMs: number;
  readonly bytes: number;
  readonly series: number;
}

/** Times one scrape: collect and render, then encode as the response does. */
async function scrape(render: () => Promise<string>): Promise<Scrape> {
  const cpu = process.cpuUsage();
  const started = performance.now();
  const text = await render();
  const body = Buffer.from(text);
  const ms = performance.now() - started;
  const used = process.cpuUsage(cpu);
  let series = 0;
  for (const line of text.split('\n')) if (line !== '' && !line.startsWith('#')) series++;
  return { ms, cpuMs: (used.user + used.system) / 1000, bytes: body.length, series };
}

/** A worker: a warm daemon's metrics with `perInstrument`, scraped a block at a time when asked. */
export async function serveScrapes(): Promise<void> {
  const { perInstrument } = workerData as { perInstrument: PerInstrument };
  const daemon = warmDaemon();
  const metrics = createMetrics({ ...daemon, actors: () => daemon.actors, perInstrument });
  for (let i = 0; i < 3; i++) await scrape(metrics.render); // warm-up: JIT
  const scrapeBlock = async () => {
    const block: Scrape[] = [];
    for (let i = 0; i < SCRAPES_PER_RUN; i++) {
      block.push(await scrape(metrics.render));
      // Between scrapes, as a daemon has: timers run.
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    parentPort!.postMessage(block);
  };
  parentPort!.on('message', (message: 'block' | 'stop') => {
    if (message === 'block') return void scrapeBlock();
    metrics.stop();
    parentPort!.close();
  });
  parentPort!.postMessage('ready');
}

/** This module in a worker thread, TypeScript through tsx (inherited loader flags do not work in a Node 20 worker). */
const WORKER = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))})
  .then((tsx) => { tsx.register(); return import(${JSON.stringify(import.meta.url)}); })
  .then((m) => m.serveScrapes());`;

function startWorker(perInstrument: PerInstrument) {
  const worker = new Worker(WORKER, { eval: true, execArgv: [], workerData: { perInstrument } });
  const next = <T>() =>
    new Promise<T>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
  return {
    ready: next<'ready'>(),
    block() {
      const reply = next<Scrape[]>();
      worker.postMessage('block');
      return reply;
    },
    async stop() {
      worker.postMessage('stop');
      await new Promise((resolve) => worker.once('exit', resolve));
    },
  };
}

export async function scrapeBench({ runs, progress }: BenchOptions) {
  progress(`inspector: a warm ${fmt(INSTRUMENTS)}-instrument daemon's bus for /metrics, one worker per variant`);
  const workers = Object.fromEntries(VARIANTS.map((v) => [v, startWorker(v)])) as Record<PerInstrument, ReturnType<typeof startWorker>>;
  const scrapes: Record<PerInstrument, Scrape[]> = { traded: [], all: [] };
  try {
    for (const v of VARIANTS) await workers[v].ready;
    for (let run = 1; run <= runs; run++) {
      for (const v of VARIANTS) {
        // V8 collects on helper threads after the other worker's block: let it finish before this one is timed.
        await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
        const block = await workers[v].block();
        scrapes[v].push(...block);
        progress(`inspector: run ${run}/${runs} scrape (${v}): ${median(block.map((s) => s.ms)).toFixed(2)} ms, ${fmt(block[0]!.bytes / 1024)} KiB`);
      }
    }
  } finally {
    for (const v of VARIANTS) await workers[v].stop();
  }
  const rows = VARIANTS.map((v) => {
    const times = scrapes[v].map((s) => s.ms);
    const last = scrapes[v].at(-1)!;
    return {
      instruments: INSTRUMENTS,
      perInstrument: v,
      blockMs: median(times),
      p95Ms: percentile(times, 95),
      worstMs: Math.max(...times),
      cpuMs: median(scrapes[v].map((s) => s.cpuMs)),
      cpuP95Ms: percentile(scrapes[v].map((s) => s.cpuMs), 95),
      bytes: last.bytes,
      series: last.series,
    };
  });
  const [traded, all] = rows as [(typeof rows)[0], (typeof rows)[0]];
  const ms = (x: number) => `${x.toFixed(2)} ms`;
  const met = (x: number) => (x <= TARGET_MS ? 'met' : '**missed**');
  const table = [
    `| /metrics at ${fmt(INSTRUMENTS)} instruments, ${fmt(runs * SCRAPES_PER_RUN)} scrapes each | series | body | loop blocked (wall): median | p95 | worst | CPU: median | p95 | target: <= ${TARGET_MS} ms, <= ${TARGET_BYTES / 1024} KiB |`,
    '|---|---|---|---|---|---|---|---|---|',
    `| traded (default): own series for instruments with a book or a position, the rest counted | ${fmt(traded.series)} | ${fmt(traded.bytes / 1024)} KiB | ${ms(traded.blockMs)} | ${ms(traded.p95Ms)} | ${ms(traded.worstMs)} | ${ms(traded.cpuMs)} | ${ms(traded.cpuP95Ms)} | body ${traded.bytes <= TARGET_BYTES ? 'met' : '**missed**'}; median ${met(traded.blockMs)}, p95 ${met(traded.p95Ms)} (CPU ${met(traded.cpuP95Ms)}) |`,
    `| all (opt-in): own series for every instrument | ${fmt(all.series)} | ${fmt(all.bytes / 1024)} KiB | ${ms(all.blockMs)} | ${ms(all.p95Ms)} | ${ms(all.worstMs)} | ${ms(all.cpuMs)} | ${ms(all.cpuP95Ms)} | |`,
    '',
    `all / traded: ${(all.bytes / traded.bytes).toFixed(0)}x the bytes, ${(all.blockMs / traded.blockMs).toFixed(0)}x the blocked time (medians).`,
  ].join('\n');
  return { rows, table };
}
