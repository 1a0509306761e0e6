/**
 * Horizons side by side: what each horizon served adds to a frame. The
 * predictor serves the shipped GBDTs for 10 s, then 10 s and 5 min, then
 * 10 s, 5 min and 15 min, for a frame of every instrument on the main
 * thread with the drift monitor on the same thread (so its CPU is counted;
 * the daemon runs it on a thread of its own, bench drift), the variants
 * alternated in one run. One frame's history, copy and routing serve every
 * horizon; each horizon adds its models' batches and their monitoring.
 */
import { DEFAULT_MONITOR, ModelMonitor } from '../src/models/monitor.js';
import { InferencePool } from '../src/models/inference/pool.js';
import type { HorizonTiers } from '../src/models/predictor.js';
import { DEFAULT_FEATURE_OPTIONS, featureSchema } from '../src/market/features.js';
import { INSTRUMENTS, symbols, timedFrames } from './drift.js';
import { fmt, median, percentile, type BenchOptions } from './stats.js';

const width = featureSchema(DEFAULT_FEATURE_OPTIONS).features.length;
const gbdt = (label: string, horizonMs: number): HorizonTiers => ({ horizonMs, tiers: { base: [`models/gbdt-base-${label}/manifest.json`], sectors: {}, sectorCacheSize: 1 } });
const VARIANTS: readonly { name: string; horizons: HorizonTiers[] }[] = [
  { name: '10s', horizons: [gbdt('10s', 10_000)] },
  { name: '10s + 5m', horizons: [gbdt('10s', 10_000), gbdt('5m', 300_000)] },
  { name: '10s + 5m + 15m', horizons: [gbdt('10s', 10_000), gbdt('5m', 300_000), gbdt('15m', 900_000)] },
];

export async function horizonsBench({ runs, progress }: BenchOptions) {
  progress(`horizons: ${VARIANTS.map((v) => v.name).join(' / ')} at ${fmt(INSTRUMENTS)} instruments, drift monitor on`);
  const pool = await InferencePool.start({ workers: 0, timeoutMs: 60_000 });
  const frames = VARIANTS.map(() => [] as number[]);
  try {
    for (let run = 1; run <= runs; run++) {
      // Alternated, so a drifting machine does not favour one.
      for (const [k, v] of VARIANTS.entries()) frames[k]!.push(median((await timedFrames(pool, new ModelMonitor(symbols, width, 1_000, DEFAULT_MONITOR), v.horizons)).frameMs));
      progress(`horizons: run ${run}/${runs}: ${VARIANTS.map((v, k) => `${v.name} ${fmt(frames[k]!.at(-1)!, 2)} ms`).join(', ')}`);
    }
  } finally {
    await pool.close();
  }
  const one = median(frames[0]!);
  const rows = VARIANTS.map((v, k) => ({ variant: v.name, frameMs: median(frames[k]!), p99Ms: percentile(frames[k]!, 99) }));
  const table = [
    `| ${fmt(INSTRUMENTS)} instruments, one GBDT per horizon, drift monitor on, main thread | ms per frame | vs 10s alone |`,
    '|---|---|---|',
    ...rows.map((r) => `| ${r.variant} | ${fmt(r.frameMs, 2)} | ${fmt(r.frameMs / one, 2)}x |`),
  ].join('\n');
  return { rows, table };
}
