/**
 * One shard worker process for bench/cluster.ts: a ShardWorker with the
 * stages of `openParts` (features, feature health, regime SJM, predictor
 * with the GBDT base model only, in-thread inference) against the bench's
 * Redis. Settings come as one JSON argument. Prints `ready` on stdout once
 * its ShardWorker runs; on SIGTERM it stops cleanly (hands its shards back)
 * and prints one JSON line with its CPU time and per-shard commits.
 *
 *   node --import tsx bench/cluster-worker.ts '{"url":"redis://127.0.0.1:1234","instance":"b","worker":"w1"}'
 */
import pino from 'pino';
import { openShardWorker, shardWorkerSettings } from '../src/actors/shard-worker.js';
import { systemClock } from '../src/clock.js';
import { benchStages, type ClusterWorkerArgs } from './cluster-stages.js';

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? '{}') as ClusterWorkerArgs;
  const settings = shardWorkerSettings.parse({
    redis: { url: args.url },
    shards: args.shards ?? 128,
    worker: args.worker,
    leaseMs: args.leaseMs,
    roundMs: args.roundMs,
    readCount: args.readCount,
    checkpointEvery: args.checkpointEvery,
    pollMs: args.pollMs,
    idlePollMs: args.idlePollMs,
    ...benchStages(),
  });
  const log = pino({ level: 'warn' }, pino.destination(2));
  const opened = await openShardWorker(settings, args.instance, log, systemClock);
  const worker = opened.shards;
  worker.start();
  process.stdout.write('ready\n');
  let stopping = false;
  process.on('SIGTERM', () => {
    if (stopping) return;
    stopping = true;
    const runs = worker.runs();
    void opened
      .stop()
      .then(() => {
        const cpu = process.cpuUsage();
        process.stdout.write(`${JSON.stringify({ worker: args.worker, cpuUs: cpu.user + cpu.system, commits: runs.map((r) => [r.shard, r.commits]) })}\n`);
        process.exit(0);
      })
      .catch((error: unknown) => {
        process.stderr.write(`${String(error)}\n`);
        process.exit(1);
      });
  });
}

await main();
