/**
 * Health: how fast bad data stops trading, and what a health check costs.
 *
 *   halt         a feature frame carrying a NaN is published on the bus as
 *                the features actor does; feature health judges it and
 *                publishes its conditions; the gate halts and its canceller
 *                hands 10 cancels to the IB pacer. Timed from the publish to
 *                the return, i.e. HALTED with every cancel issued.
 *   halt by poll the same bad frame, with the gate polling health every
 *                100 ms (a 10 Hz loop, the usual alternative) instead of
 *                hearing it in the same call stack.
 *   check        checkSystemHealth over a daemon's retained state
 *                (100 instruments x 16 features), against the 87 ms the
 *                production system this learns from takes for its /health.
 */
import { Bus } from '../src/bus.js';
import { ServiceTable } from '../src/services.js';
import { systemClock } from '../src/clock.js';
import { checkSystemHealth } from '../src/health/system-health.js';
import type { IbStatus } from '../src/ib/link.js';
import { Pacer, PRIORITY } from '../src/ib/pacer.js';
import { DEFAULT_THRESHOLDS, FeatureHealth } from '../src/market/feature-health.js';
import { FeatureEngine, type FeatureFrame } from '../src/market/features.js';
import { RiskGate } from '../src/trading/risk-gate.js';
import { fmt, median, percentile, type BenchOptions } from './stats.js';
import { FEATURE_HEALTH_TOPIC, FEATURES_TOPIC, IB_STATUS_TOPIC } from '../src/topics.js';

const INSTRUMENTS = 100;
const WORKING_ORDERS = 10;
const HALTS = 20_000;
const POLLED_HALTS = 40;
const CHECKS = 100_000;
/** The production system's figure for its health check. */
const THEIR_CHECK_MS = 87;

function daemonState() {
  const bus = new Bus();
  const services = new ServiceTable();
  const symbols = Array.from({ length: INSTRUMENTS }, (_, i) => `SYM${i}`);
  const engine = new FeatureEngine(INSTRUMENTS);
  engine.lastDataAt.fill(systemClock.now());
  const health = new FeatureHealth(symbols, engine.schema, { thresholds: DEFAULT_THRESHOLDS, advisory: [], maxDataAgeMs: 5_000 });
  const gate = new RiskGate(systemClock, { autoResume: false, healthyPeriodMs: 1_000 });
  const pacer = new Pacer(systemClock, 1_000_000);
  let cancels = 0;
  gate.onHalt(() => {
    for (let k = 0; k < WORKING_ORDERS; k++) pacer.submit(PRIORITY.orders, 'cancel', () => cancels++);
  });
  const frame: FeatureFrame = {
    intervalMs: 100,
    at: 0,
    wallAt: 0,
    schema: engine.schema,
    symbols,
    values: new Float64Array(INSTRUMENTS * engine.width).fill(1),
    warm: new Uint8Array(INSTRUMENTS).fill(1),
    base: true,
  };
  const status: IbStatus = { state: 'connected', clientId: 0, reason: 'nextValidId received', farmsDown: [], dataEpoch: 1, since: 0 };
  bus.retain(IB_STATUS_TOPIC, status);
  services.provide('features', 'featureEngine', engine);
  services.provide('risk_gate', 'riskGate', gate);
  bus.retain(FEATURE_HEALTH_TOPIC, health);
  return { bus, services, engine, health, gate, pacer, frame, cancelsIssued: () => cancels + pacer.waiting };
}

/** Publishes a good frame and then a bad one; returns the ms from the bad publish to HALTED with cancels issued. */
function timedHalts(count: number) {
  const s = daemonState();
  // As the actors wire it: health judges frames and republishes when conditions change; the gate hears that.
  s.bus.subscribe(FEATURES_TOPIC, (f) => {
    const before = s.health.problems;
    s.health.observe(f.values, f.warm, f.at);
    if (s.health.problems !== before) s.bus.retain(FEATURE_HEALTH_TOPIC, s.health);
  });
  s.bus.subscribe(FEATURE_HEALTH_TOPIC, (h) => s.gate.report('feature_health', h.problems));
  const samples: number[] = [];
  for (let n = 0; n < count; n++) {
    s.frame.values[7] = 1;
    s.frame.at = n;
    s.bus.publish(FEATURES_TOPIC, s.frame);
    s.gate.resume('bench');
    s.pacer.clear();
    s.frame.values[7] = NaN;
    const started = performance.now();
    s.bus.publish(FEATURES_TOPIC, s.frame);
    const took = performance.now() - started;
    if (s.gate.state !== 'HALTED' || s.cancelsIssued() < WORKING_ORDERS) throw new Error('the bad frame did not halt the gate');
    samples.push(took);
  }
  return samples;
}

/** The same bad frame, with the gate reading health on a 100 ms poll instead. */
async function polledHalts(count: number) {
  const s = daemonState();
  const samples: number[] = [];
  let pending: number | undefined;
  const poll = setInterval(() => {
    s.gate.report('feature_health', s.health.problems);
    if (pending !== undefined && s.gate.state === 'HALTED') {
      samples.push(performance.now() - pending);
      pending = undefined;
    }
  }, 100);
  try {
    for (let n = 0; n < count; n++) {
      s.frame.values[7] = 1;
      s.health.observe(s.frame.values, s.frame.warm, n);
      s.gate.report('feature_health', s.health.problems);
      s.gate.resume('bench');
      // Bad data arrives at a random moment of the poll cycle.
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 100));
      s.frame.values[7] = NaN;
      pending = performance.now();
      s.health.observe(s.frame.values, s.frame.warm, n);
      while (pending !== undefined) await new Promise((resolve) => setTimeout(resolve, 5));
    }
  } finally {
    clearInterval(poll);
  }
  return samples;
}

function timedChecks(count: number) {
  const s = daemonState();
  // Every feature judged once, so the quality share has something to count.
  s.health.observe(s.frame.values, s.frame.warm, 0);
  const samples: number[] = [];
  for (let n = 0; n < count; n++) {
    const started = performance.now();
    const report = checkSystemHealth(s.bus, s.services, 'running', systemClock);
    samples.push(performance.now() - started);
    if (report.overall_status !== 'OK') throw new Error(`unexpected health: ${JSON.stringify(report)}`);
  }
  return samples;
}

const us = (ms: number) => `${fmt(ms * 1000, 1)} µs`;

export async function healthBench({ runs, progress }: BenchOptions) {
  const p99s: number[] = [];
  let halt: number[] = [];
  let check: number[] = [];
  const checkP99s: number[] = [];
  timedHalts(1_000); // warm-up
  timedChecks(10_000);
  for (let run = 1; run <= runs; run++) {
    halt = timedHalts(HALTS);
    check = timedChecks(CHECKS);
    p99s.push(percentile(halt, 99));
    checkP99s.push(percentile(check, 99));
    progress(`health: run ${run}/${runs}: halt p99 ${us(percentile(halt, 99))}, check p99 ${us(percentile(check, 99))}`);
  }
  progress(`health: ${POLLED_HALTS} halts with a 100 ms poll instead (about ${POLLED_HALTS * 0.1} s)`);
  const polled = await polledHalts(POLLED_HALTS);
  const haltP99 = median(p99s);
  const checkP99 = median(checkP99s);
  const rows = [
    { measure: 'halt', samples: HALTS, p50Ms: percentile(halt, 50), p99Ms: haltP99, p999Ms: percentile(halt, 99.9) },
    { measure: 'halt by 10 Hz poll', samples: POLLED_HALTS, p50Ms: percentile(polled, 50), p99Ms: percentile(polled, 99), p999Ms: NaN },
    { measure: 'system health check', samples: CHECKS, p50Ms: percentile(check, 50), p99Ms: checkP99, p999Ms: percentile(check, 99.9) },
  ];
  const table = [
    '| measure | samples | p50 | p99 | p99.9 | target | against |',
    '|---|---|---|---|---|---|---|',
    `| bad frame to HALTED with ${WORKING_ORDERS} cancels issued (same call stack) | ${fmt(HALTS)} | ${us(rows[0]!.p50Ms)} | ${us(haltP99)} | ${us(rows[0]!.p999Ms)} | p99 <= 1 ms | ${fmt(percentile(polled, 50) / rows[0]!.p50Ms)}x faster than the 10 Hz poll at p50 |`,
    `| the same with the gate polling health at 10 Hz | ${POLLED_HALTS} | ${fmt(percentile(polled, 50), 1)} ms | ${fmt(percentile(polled, 99), 1)} ms | | | |`,
    `| system health check (${INSTRUMENTS} instruments x 16 features) | ${fmt(CHECKS)} | ${us(rows[2]!.p50Ms)} | ${us(checkP99)} | ${us(rows[2]!.p999Ms)} | p99 <= 1 ms | theirs ${THEIR_CHECK_MS} ms: ${fmt(THEIR_CHECK_MS / checkP99)}x faster at p99 |`,
  ].join('\n');
  return { rows, table };
}
