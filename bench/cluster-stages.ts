/** What bench/cluster.ts and its worker processes (bench/cluster-worker.ts) share. */
import { resolve } from 'node:path';

export interface ClusterWorkerArgs {
  readonly url: string;
  readonly instance: string;
  readonly worker: string;
  readonly shards?: number;
  readonly leaseMs?: number;
  readonly roundMs?: number;
  readonly readCount?: number;
  readonly checkpointEvery?: number;
  readonly pollMs?: number;
  readonly idlePollMs?: number;
}

const models = (name: string) => resolve('models', name, 'manifest.json');

/** The stages every bench worker runs (the in-process comparison builds the same). */
export const benchStages = () => ({
  features: { samplesMs: [100, 1_000] },
  health: {},
  regime: { model: models('regime-sjm'), intervalMs: 1_000 },
  predictor: { intervalMs: 1_000, workers: 0, horizons: { '10s': { base: [models('gbdt-base-10s')] } } },
});
