/**
 * shard_worker: features, feature health, regime and predictor for the
 * shards this process holds, read from the data node's shard tapes and
 * written to the shards' output streams (src/scaleout/worker.ts). Any
 * number run, on any machine; shards spread evenly over the live ones and
 * move within the lease time when one dies or joins.
 *
 * The stages take the settings of their single-process components (the
 * same schemas), so a worker computes what the embedded daemon would. The
 * predictor runs on this process's thread: a worker is the unit of
 * parallelism here.
 */
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Clock } from '../clock.js';
import { FeatureEngine } from '../market/features.js';
import { FeatureHealth } from '../market/feature-health.js';
import { InferencePool } from '../models/inference/pool.js';
import { TieredPredictor } from '../models/predictor.js';
import { ModelRegistry } from '../models/registry.js';
import { closeRedis, connectRedis, scaleoutSettings } from '../scaleout/connect.js';
import type { PartsFactory, PipelineParts } from '../scaleout/shard-pipeline.js';
import { ShardWorker } from '../scaleout/worker.js';
import { serviceLogic } from '../supervision/service.js';
import { featureHealthSettings } from './feature-health.js';
import { featuresSettings } from './features.js';
import { horizonTiers, predictorSettings } from './predictor.js';
import { readRegimeModel, regimeSettings, regimeTracker } from './regime.js';

export const shardWorkerSettings = z
  .object({
    ...scaleoutSettings,
    /** This worker's name in leases and the membership set; default `<host>-<pid>`. Unique among live workers. */
    worker: z.string().min(1).regex(/^[^#\s]+$/, 'no # nor spaces').optional(),
    /** A dead worker's shards move after this (plus one round). */
    leaseMs: z.number().int().positive().default(3_000),
    /** Renew, heartbeat and rebalance this often; at most half the lease. */
    roundMs: z.number().int().positive().default(1_000),
    /** Entries per read and commit: up to a second of ticks at 100 ms. */
    readCount: z.number().int().positive().default(10),
    /** Ticks between a shard's checkpoints (50: every 5 s at 100 ms). A take-over re-computes up to this many ticks; each checkpoint is about 12 kB an instrument. */
    checkpointEvery: z.number().int().positive().default(50),
    /** Wait after a read that found nothing; doubled while reads stay empty, up to idlePollMs (a hand-over's catch-up waits at most that). */
    pollMs: z.number().int().positive().default(50),
    idlePollMs: z.number().int().positive().default(1_000),
    features: featuresSettings.prefault({}),
    health: featureHealthSettings.prefault({}),
    regime: regimeSettings.optional(),
    predictor: predictorSettings.optional(),
  })
  .strict();

export type ShardWorkerSettings = z.infer<typeof shardWorkerSettings>;

/**
 * The stages of a shard's pipeline from a worker's settings: models read
 * once (a bad file fails here, naming it, before any shard is taken), an
 * in-thread inference pool, and a factory building each shard's parts.
 */
export async function openParts(settings: Pick<ShardWorkerSettings, 'features' | 'health' | 'regime' | 'predictor'>, log: Logger, clock: Clock): Promise<{ build: PartsFactory; close(): Promise<void> }> {
  const { features, health, regime, predictor } = settings;
  const regimeModel = regime && readRegimeModel(regime.model);
  const pool = predictor ? await InferencePool.start({ workers: 0, minWorkers: 0, timeoutMs: predictor.timeoutMs }) : undefined;
  const build: PartsFactory = async (symbols, booked) => {
    const baseMs = features.samplesMs[0]!;
    const engine = new FeatureEngine(symbols.length, { baseMs, ...features });
    const parts: { -readonly [K in keyof PipelineParts]: PipelineParts[K] } = {
      engine,
      samplesMs: features.samplesMs,
      health: new FeatureHealth(symbols, engine.schema, { ...health, booked }),
    };
    if (regime && regimeModel) {
      const tracker = regimeTracker(regime, regimeModel, symbols, engine.schema);
      parts.regime = { intervalMs: regime.intervalMs, labels: regime.labels, step: (f) => tracker.step(f), saveState: () => tracker.saveState(), loadState: (s) => tracker.loadState(s) };
    }
    if (predictor && pool) {
      const registry = new ModelRegistry(pool, engine.schema, log, { latencyBudgetMs: predictor.latencyBudgetMs, maxWindow: predictor.historyFrames });
      const tiered = new TieredPredictor(registry, engine.schema, symbols, { horizons: horizonTiers(predictor), historyFrames: predictor.historyFrames, inThreadMaxMs: Infinity }, log, () => clock.now());
      await tiered.start();
      if (registry.slotNames().length === 0) throw new Error(`no model can serve: ${tiered.unavailable.map((u) => `${u.manifest}: ${u.reason}`).join('; ')}`);
      parts.predictor = { intervalMs: predictor.intervalMs, predict: (f) => tiered.predict(f), saveState: () => tiered.saveState(), loadState: (s) => tiered.loadState(s) };
      parts.close = async () => {
        for (const slot of registry.slotNames()) registry.evict(slot);
      };
    }
    return parts;
  };
  return { build, close: async () => void (await pool?.close()) };
}

/**
 * A shard worker from its settings, not yet started: its stages (openParts)
 * and its Redis connection. `stop` hands its shards back and closes both.
 */
export async function openShardWorker(settings: ShardWorkerSettings, instance: string, log: Logger, clock: Clock): Promise<{ readonly name: string; readonly shards: ShardWorker; stop(): Promise<void> }> {
  const name = settings.worker ?? `${hostname()}-${process.pid}`;
  const parts = await openParts(settings, log, clock);
  const client = await connectRedis(settings.redis, `keel:${instance}:worker:${name}`, (error) => log.debug({ err: error.message }, 'redis')).catch(async (error: unknown) => {
    await parts.close();
    throw error;
  });
  const shards = new ShardWorker({
    client,
    clock,
    log,
    instance,
    worker: name,
    shardCount: settings.shards,
    leaseTtlMs: settings.leaseMs,
    roundMs: settings.roundMs,
    readCount: settings.readCount,
    checkpointEvery: settings.checkpointEvery,
    pollMs: settings.pollMs,
    idlePollMs: settings.idlePollMs,
    build: parts.build,
  });
  return {
    name,
    shards,
    async stop() {
      await shards.stop();
      closeRedis(client);
      await parts.close();
    },
  };
}

export const shardWorkerLogic = serviceLogic<ShardWorkerSettings>(async (ctx) => {
  const { clock, log, settings, instance } = ctx;
  const opened = await openShardWorker(settings, instance, log, clock);
  const { name: worker, shards } = opened;
  shards.start();
  log.info({ worker, redis: settings.redis.url, leaseMs: settings.leaseMs, regime: settings.regime?.model, horizons: settings.predictor && Object.keys(settings.predictor.horizons) }, `shard worker ${worker} running`);
  return {
    stop: () => opened.stop(),
  };
});
