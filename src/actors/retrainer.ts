/**
 * retrainer: trains a challenger for one predictor slot from the recorder's
 * recent recordings, when the slot's model drifts or goes beyond its bound
 * (models.event) or on a schedule, and hands it to the predictor to shadow;
 * the predictor's referee then promotes or rejects it (promotion.ts).
 *
 * Training runs `keel models train` in a child process at the lowest CPU
 * priority (nice 19) with a capped heap, never in the daemon's thread: the
 * event loop keeps serving while it runs. One training at a time, at most
 * one per `minIntervalMinutes`; every step (trained, or why not) is a
 * models.event, so it is logged and journaled.
 */
import { execFile } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { setPriority } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { horizonLabel } from '../models/horizon.js';
import type { ModelEvent } from '../models/monitor.js';
import { serviceLogic } from '../supervision/service.js';
import { MODEL_EVENT_TOPIC } from '../topics.js';

export const retrainerSettings = z
  .object({
    /** The predictor slot whose challenger it trains, e.g. 10s/base/0 (horizon/tier/member). */
    slot: z.string().min(1).default('10s/base/0'),
    /** Where the recorder writes (its `dir`): files changed within `lookbackMinutes` are trained on. */
    recordings: z.string().min(1).default('var/recordings'),
    /** The market time trained on: the last this many minutes of the recordings. */
    lookbackMinutes: z.number().positive().default(120),
    /** Where challengers go, one directory per training. */
    out: z.string().min(1).default('var/models'),
    /** What starts a training: the slot's live model drifting, going beyond its bound, and/or a schedule. */
    on: z.array(z.enum(['drift', 'beyond-bound', 'schedule'])).min(1).default(['drift', 'beyond-bound']),
    /** The schedule's period, when `on` has it. */
    everyMinutes: z.number().positive().default(1_440),
    /** No two trainings closer than this. */
    minIntervalMinutes: z.number().min(0).default(30),
    /** The child's heap, MB. */
    maxHeapMb: z.number().int().min(64).default(1_024),
    /** Training's seed. */
    seed: z.number().int().min(0).default(1),
  })
  .strict();

export type RetrainerSettings = z.infer<typeof retrainerSettings>;

/** The keel command line: the child runs what a user would. */
const KEEL = fileURLToPath(new URL('../../bin/keel.js', import.meta.url));
/** The lowest priority: the daemon's own work comes first. */
const LOWEST_PRIORITY = 19;

/** Recordings in `dir` changed in the last `minutes`, oldest first. */
function recentRecordings(dir: string, minutes: number, now: number): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((n) => n.endsWith('.keelrec'))
    .map((n) => ({ path: join(dir, n), mtime: statSync(join(dir, n)).mtimeMs }))
    .filter((f) => now - f.mtime <= minutes * 60_000)
    .sort((a, b) => a.mtime - b.mtime)
    .map((f) => f.path);
}

export const retrainerLogic = serviceLogic<RetrainerSettings>(async (ctx) => {
  const { bus, clock, log, settings } = ctx;
  const predictor = () => ctx.need('predictor');
  let running = false;
  let lastStart = -Infinity;
  let stopped = false;
  let child: ReturnType<typeof execFile> | undefined;

  const say = (e: Omit<ModelEvent, 'at'>, level: 'info' | 'warn') => {
    log[level]({ model: e.model, kind: e.kind }, `model ${e.model}: ${e.reason}`);
    bus.publish(MODEL_EVENT_TOPIC, { at: clock.now(), ...e });
  };

  const train = (why: string) => {
    const now = clock.now();
    if (running || stopped || now - lastStart < settings.minIntervalMinutes * 60_000) return;
    const status = predictor();
    const live = status.registry.live(settings.slot);
    const { horizonMs } = live.manifest;
    const name = live.manifest.name;
    if (horizonMs === undefined) {
      say({ model: live.id, kind: 'training-failed', reason: `${settings.slot}: ${live.id} has no horizon in its manifest: nothing to train a challenger for` }, 'warn');
      return;
    }
    const files = recentRecordings(settings.recordings, settings.lookbackMinutes, clock.wallNow());
    if (files.length === 0) {
      say({ model: live.id, kind: 'training-failed', reason: `${settings.slot}: no recording in ${settings.recordings} changed in the last ${settings.lookbackMinutes} min (is the recorder running?)` }, 'warn');
      return;
    }
    running = true;
    lastStart = now;
    const version = `retrained-${new Date(clock.wallNow()).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}`;
    const out = resolve(settings.out, version);
    const args = [`--max-old-space-size=${settings.maxHeapMb}`, KEEL, 'models', 'train', '--from', ...files, '--last', `${settings.lookbackMinutes}m`, '--horizons', horizonLabel(horizonMs), '--only', name, '--seed', String(settings.seed), '--version', version, '--out', out];
    log.info({ slot: settings.slot, files, out }, `training a challenger for ${settings.slot} (${why}) from ${files.length} recording(s)`);
    child = execFile(process.execPath, args, { maxBuffer: 16 * 1024 * 1024 }, (error, _stdout, stderr) => {
      child = undefined;
      running = false;
      if (stopped) return;
      if (error) {
        const tail = stderr.trim().split('\n').slice(-3).join(' | ');
        say({ model: live.id, kind: 'training-failed', reason: `${settings.slot}: keel models train exited ${error.code ?? error.signal}: ${tail}` }, 'warn');
        return;
      }
      const manifest = join(out, name, 'manifest.json');
      predictor()
        .registry.shadow(settings.slot, manifest, 1)
        .then((model) => {
          const m = model.manifest.metrics;
          say({ model: model.id, kind: 'trained', reason: `${settings.slot}: trained (${why}) on ${model.manifest.training.data}; held out RMSE ${m.model.rmse?.toFixed(3)} against the zero forecast's ${m.baseline.rmse?.toFixed(3)}; now shadowing ${live.id}` }, 'info');
        })
        .catch((err: unknown) => say({ model: `${name}@${version}`, kind: 'training-failed', reason: `${settings.slot}: the trained model was refused: ${(err as Error).message}` }, 'warn'));
    });
    // Its CPU comes after the daemon's: the lowest priority, set as soon as it exists.
    if (child.pid !== undefined) {
      try {
        setPriority(child.pid, LOWEST_PRIORITY);
      } catch (err) {
        log.warn({ err }, 'cannot lower the training process priority');
      }
    }
  };

  const unsubscribe = bus.subscribe(MODEL_EVENT_TOPIC, (e) => {
    if (e.kind !== 'drift' && e.kind !== 'beyond-bound') return;
    if (!settings.on.includes(e.kind)) return;
    // Only the slot's live model: a challenger's own drift is the referee's business.
    if (predictor().registry.live(settings.slot).id !== e.model) return;
    train(`${e.kind}: ${e.reason}`);
  });
  let timer: unknown;
  const schedule = () => {
    timer = clock.setTimeout(() => {
      train('schedule');
      schedule();
    }, settings.everyMinutes * 60_000);
  };
  if (settings.on.includes('schedule')) schedule();
  log.info({ slot: settings.slot, on: settings.on, recordings: settings.recordings }, `retrainer ready for ${settings.slot}`);
  return {
    stop() {
      stopped = true;
      unsubscribe();
      if (timer !== undefined) clock.clearTimeout(timer);
      child?.kill('SIGTERM');
    },
  };
});
