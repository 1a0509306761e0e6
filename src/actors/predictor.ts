/**
 * predictor: the tiered ensembles of ONNX models, one per horizon served
 * side by side, run on every features frame of its clock: each batch on
 * the main thread when it is cheap enough (`inThreadMaxMs` for a frame's
 * batches together), else in a worker thread. Workers start as they are
 * needed, up to `workers`: none while every batch runs on the main thread
 * (a few instruments), one from the start when a frame of the whole
 * universe could cost more. Publishes (retained) each frame's predictions
 * on `predictions`: every horizon's, with the tier and model versions that
 * served each instrument, and the batch latency. The registry (swap,
 * rollback, shadow, promote) and the serving status are the `predictor`
 * service.
 *
 * A frame arriving while `maxFramesInFlight` are still in the workers is
 * skipped and counted, never queued: late predictions are worse than none.
 *
 * A model refused at start (checksum mismatch, corrupt file, other features)
 * is left out and its tier serves without it, degraded: logged with the file
 * and the reason, and kept in the status's faults (so /health says DEGRADED).
 * Only when no model at all can serve does the start fail, permanently when
 * no retry could change that (exit 2: the files or the config are wrong).
 */
import { z } from 'zod';
import { InferencePool } from '../models/inference/pool.js';
import { parseHorizon } from '../models/horizon.js';
import { DEFAULT_IN_THREAD_MAX_MS, TieredPredictor, unavailableFault, type HorizonTiers, type PredictionFrame, type PredictorStatus } from '../models/predictor.js';
import { DEFAULT_MONITOR, type ModelDrift, type ModelEvent } from '../models/monitor.js';
import { DEFAULT_THREAD_ABOVE, startMonitor, type DaemonMonitor } from '../models/monitor-thread.js';
import { carryOut, DEFAULT_PROMOTION, Referee, type RefereeCall } from '../models/promotion.js';
import { ModelRegistry } from '../models/registry.js';
import type { UnavailableModel } from '../models/tiers.js';
import { PermanentFailure } from '../supervision/permanent.js';
import { serviceLogic } from '../supervision/service.js';
import { FEATURES_TOPIC, MODEL_DRIFT_TOPIC, MODEL_EVENT_TOPIC, MODEL_SWAP_TOPIC, PREDICTIONS_TOPIC } from '../topics.js';
import type { FeatureFrame } from '../market/features.js';

const paths = z.array(z.string().min(1)).min(1);

/** One horizon's tiers: manifests relative to the working directory. */
const horizonTierSettings = z
  .object({
    /** The base tier's members: their predictions are averaged. */
    base: paths,
    sectors: z.record(z.string(), z.object({ symbols: z.array(z.string()).min(1), models: paths }).strict()).default({}),
    /** The specialist: serves the instruments whose `feature` is above `above`. */
    highVol: z.object({ feature: z.string(), above: z.number(), models: paths }).strict().optional(),
  })
  .strict();

export const predictorSettings = z
  .object({
    /** The features clock the models were trained on, ms. */
    intervalMs: z.number().int().positive().default(1_000),
    /** Most worker threads; 0 runs every batch on the main thread, whatever it costs. */
    workers: z.number().int().min(0).max(32).default(2),
    /** A frame's batches run on the main thread while their estimated time adds up to no more than this, ms. */
    inThreadMaxMs: z.number().min(0).default(DEFAULT_IN_THREAD_MAX_MS),
    /** A batch not answered within this is a fault of its model, ms. */
    timeoutMs: z.number().int().positive().default(1_000),
    /** A candidate whose golden batch is slower than this is refused, ms. */
    latencyBudgetMs: z.number().positive().default(100),
    historyFrames: z.number().int().min(1).max(1_000).default(32),
    maxFramesInFlight: z.number().int().min(1).default(2),
    /**
     * The horizons served side by side ('10s', '5m', ...), each with its
     * tiers; every model's manifest must name that horizon. A trader's
     * policy says which horizon it reads.
     */
    horizons: z
      .record(z.string(), horizonTierSettings)
      .superRefine((horizons, ctx) => {
        const labels = Object.keys(horizons);
        if (labels.length === 0) ctx.addIssue({ code: 'custom', message: "serve at least one horizon, e.g. horizons: { 10s: { base: [models/gbdt-base-10s/manifest.json] } }" });
        for (const label of labels) if (parseHorizon(label) === undefined) ctx.addIssue({ code: 'custom', path: [label], message: `'${label}' is not a horizon like 10s, 5m or 15m` });
        const ms = labels.map(parseHorizon).filter((h) => h !== undefined);
        if (new Set(ms).size !== ms.length) ctx.addIssue({ code: 'custom', message: `two labels name the same horizon: ${labels.join(', ')}` });
      }),
    /** Sector models loaded at once, per horizon (least recently used evicted). */
    sectorCacheSize: z.number().int().min(1).default(2),
    /**
     * Drift and live error of every model it runs (monitor.ts): PSI over the
     * last windowFrames per instrument against the manifest's bins, above
     * psiAlert is drift; a model whose live RMSE over the last
     * errorWindowFrames (at least minErrorFrames with resolved predictions)
     * is above maxErrorRatio times the zero forecast's, and worse than it
     * with `confidence` by a Diebold–Mariano test, serves no instrument
     * until it is back within.
     */
    drift: z
      .object({
        windowFrames: z.number().int().min(10).default(DEFAULT_MONITOR.windowFrames),
        psiAlert: z.number().positive().default(DEFAULT_MONITOR.psiAlert),
        errorWindowFrames: z.number().int().min(10).default(DEFAULT_MONITOR.errorWindowFrames),
        minErrorFrames: z.number().int().min(2).default(DEFAULT_MONITOR.minErrorFrames),
        maxErrorRatio: z.number().positive().default(DEFAULT_MONITOR.maxErrorRatio),
        confidence: z.number().gt(0.5).lt(1).default(DEFAULT_MONITOR.confidence),
        pendingPerInstrument: z.number().int().min(1).max(1_000).default(DEFAULT_MONITOR.pendingPerInstrument),
        /** How often the report is published on models.drift, in frames. */
        reportEveryFrames: z.number().int().min(1).default(10),
        /**
         * Above this many instruments the monitor runs on a thread of its
         * own (about 0.5 µs per instrument and model a frame: 1 ms for two
         * models at 1,000); below, on the main thread, sparing a thread's
         * 10 MB where watching costs microseconds.
         */
        threadAbove: z.number().int().min(0).default(DEFAULT_THREAD_ABOVE),
      })
      .strict()
      .default({ ...DEFAULT_MONITOR, reportEveryFrames: 10, threadAbove: DEFAULT_THREAD_ABOVE }),
    /**
     * A challenger shadowing a slot (from `shadow`, or the inspector's
     * shadow-model) is judged every minFrames frames on the same realised
     * returns as the champion, promoted when better with `confidence`,
     * rejected when worse or not better after maxFrames; a promoted model
     * beyond its bound within probationFrames is rolled back (promotion.ts).
     */
    challenger: z
      .object({
        minFrames: z.number().int().min(10).default(DEFAULT_PROMOTION.minFrames),
        maxFrames: z.number().int().min(10).default(DEFAULT_PROMOTION.maxFrames),
        confidence: z.number().gt(0.5).lt(1).default(DEFAULT_PROMOTION.confidence),
        probationFrames: z.number().int().min(1).default(DEFAULT_PROMOTION.probationFrames),
      })
      .strict()
      .default(DEFAULT_PROMOTION),
    /** A candidate run beside a slot's live model on a share of instruments, for comparison before promotion. */
    shadow: z.object({ slot: z.string(), model: z.string(), share: z.number().gt(0).max(1) }).strict().optional(),
  })
  .strict();

export type PredictorSettings = z.infer<typeof predictorSettings>;

/** The horizons of the settings with their tiers, as the predictor takes them. */
export function horizonTiers(settings: Pick<PredictorSettings, 'horizons' | 'sectorCacheSize'>): HorizonTiers[] {
  return Object.entries(settings.horizons).map(([label, t]) => ({ horizonMs: parseHorizon(label)!, tiers: { ...t, sectorCacheSize: settings.sectorCacheSize } }));
}

/** The worst drifting instruments' PSI, in words. */
function driftFigures(m: ModelDrift, symbols: readonly string[]): string {
  const worst = symbols
    .map((symbol, i) => ({ symbol, input: m.inputPsi[i]!, feature: m.inputOf[i]!, prediction: m.predictionPsi[i]! }))
    .filter((w) => m.drifted.includes(w.symbol))
    .sort((a, b) => Math.max(b.input, b.prediction) - Math.max(a.input, a.prediction))
    .slice(0, 3);
  return worst.map((w) => `${w.symbol}: ${w.feature} PSI ${w.input.toFixed(2)}, prediction PSI ${w.prediction.toFixed(2)}`).join('; ');
}

/** How often a shadow candidate's agreement and latency are logged, in frames. */
const SHADOW_REPORT_FRAMES = 60;

/** Every start model was refused: permanent unless a retry could go differently (a latency budget, a lost worker). */
function nothingServes(unavailable: readonly UnavailableModel[], id: string): Error {
  const reasons = unavailable.map((u) => `${u.manifest}: ${u.reason}`).join('; ');
  const what = `no model can serve: ${unavailable.length === 1 ? 'the only model was' : `all ${unavailable.length} models were`} refused (${reasons})`;
  if (unavailable.some((u) => u.retryable)) return new Error(what);
  return new PermanentFailure(`${what}: fix or rebuild the model files (npm run models for the demo models) or point components.${id}.settings.horizons at good manifests`, 2);
}

export const predictorLogic = serviceLogic<PredictorSettings>(async (ctx) => {
  const { bus, clock, log, settings } = ctx;
  const engine = ctx.need('featureEngine');
  const { symbols } = ctx.need('instruments');
  const pool = await InferencePool.start({ workers: settings.workers, minWorkers: 0, timeoutMs: settings.timeoutMs });
  let status: PredictorStatus;
  let monitor: DaemonMonitor | undefined;
  const referee = new Referee(settings.challenger);
  /** True while a referee's call is carried out: its event was already said, with the figures. */
  let refereeing = false;
  const modelEvent = (e: ModelEvent, level: 'warn' | 'info') => {
    log[level]({ model: e.model, kind: e.kind }, `model ${e.model}: ${e.reason}`);
    bus.publish(MODEL_EVENT_TOPIC, e);
  };
  try {
    const registry = new ModelRegistry(pool, engine.schema, log, { latencyBudgetMs: settings.latencyBudgetMs, maxWindow: settings.historyFrames });
    registry.onSwap((event) => bus.publish(MODEL_SWAP_TOPIC, event));
    registry.onSwap((event) => {
      referee.onSwap(event);
      // What the referee did is said with its figures where it decides; every other step is said here.
      const at = clock.now();
      const { slot, from, to } = event;
      if (event.action === 'shadow') modelEvent({ at, model: to!, kind: 'shadowing', reason: `shadowing ${slot} against ${from}` }, 'info');
      if (event.action === 'swap') modelEvent({ at, model: to!, kind: 'swapped', reason: `swapped into ${slot} for ${from}` }, 'info');
      if (refereeing) return;
      if (event.action === 'promote') modelEvent({ at, model: to!, kind: 'promoted', reason: `${slot}: promoted by an operator over ${from}, on probation` }, 'warn');
      if (event.action === 'unshadow') modelEvent({ at, model: from!, kind: 'rejected', reason: `${slot}: ${event.reason ?? 'shadow ended'}` }, 'warn');
      if (event.action === 'rollback') modelEvent({ at, model: from!, kind: 'rolled-back', reason: `${slot}: rolled back by an operator to ${to}` }, 'warn');
    });
    monitor = await startMonitor(symbols, engine.schema.features.length, settings.intervalMs, settings.drift, (err) => ctx.fail(err));
    const predictor = new TieredPredictor(registry, engine.schema, symbols, { horizons: horizonTiers(settings), historyFrames: settings.historyFrames, inThreadMaxMs: settings.inThreadMaxMs, monitor }, log, () => clock.now());
    await predictor.start();
    if (registry.slotNames().length === 0) throw nothingServes(predictor.unavailable, ctx.id);
    // A refused candidate is logged by the registry; the live models serve regardless.
    if (settings.shadow) await registry.shadow(settings.shadow.slot, settings.shadow.model, settings.shadow.share).catch(() => undefined);
    const { unavailable } = predictor;
    status = { registry, predictor, intervalMs: settings.intervalMs, frames: 0, skipped: 0, late: 0, faults: unavailable.map(unavailableFault), unavailable, lastAt: NaN, monitor };
  } catch (err) {
    await Promise.all([pool.close(), monitor?.close()]);
    throw err;
  }
  const watching = monitor;

  let inFlight = 0;
  let newestFrame = -Infinity;
  let refereed = 0;
  // A degraded tier stays a fault for as long as this runs; frame faults come and go after it.
  const standing = status.unavailable.map(unavailableFault);
  let frameFaults: readonly string[] = [];
  let stopped = false;
  const publish = (p: PredictionFrame) => {
    inFlight--;
    if (stopped) return;
    // A slower batch finishing after a newer frame's: the newer one stands.
    if (p.frameAt < newestFrame) {
      status.late++;
      return;
    }
    newestFrame = p.frameAt;
    status.frames++;
    status.lastAt = p.at;
    const changed = p.faults.join() !== frameFaults.join();
    frameFaults = p.faults;
    status.faults = standing.length === 0 ? p.faults : [...standing, ...p.faults];
    if (changed && p.faults.length > 0) log.error({ faults: p.faults }, 'model fault: its instruments fall back to the other members of their tier');
    else if (changed) log.info('every model answering again');
    bus.retain(PREDICTIONS_TOPIC, p);
    if (status.frames % settings.drift.reportEveryFrames === 0) reportDrift(p.frameAt);
    // The referee counts the frames the monitor watched: the evidence, which a monitor behind has less of than the frames published.
    if (watching.watched > refereed) {
      refereed = watching.watched;
      for (const call of referee.step(refereed, watching)) judged(call, p.frameAt);
    }
    if (status.frames % SHADOW_REPORT_FRAMES === 0) {
      for (const slot of status.registry.slotNames()) {
        const report = status.registry.shadowReport(slot);
        if (report) log.info({ slot, ...report }, `shadow ${report.candidate} vs ${report.live}: same sign ${(100 * report.signAgreement).toFixed(1)} %`);
      }
    }
  };
  // What each model was at the last report: drifting instruments, beyond its bound.
  const was = new Map<string, { drifted: boolean; beyond: boolean }>();
  let skipped = 0;
  const reportDrift = (at: number) => {
    if (watching.skipped > skipped) log.warn({ skipped: watching.skipped }, `drift monitor behind: ${watching.skipped - skipped} frames not watched since the last report`);
    skipped = watching.skipped;
    watching
      .report()
      .then((report) => {
        if (!stopped) saidDrift(at, report);
      })
      .catch((err: unknown) => ctx.fail(err));
  };
  const saidDrift = (at: number, report: ModelDrift[]) => {
    for (const m of report) {
      const before = was.get(m.id) ?? { drifted: false, beyond: false };
      const drifted = m.drifted.length > 0;
      const beyond = m.beyondBound;
      if (drifted && !before.drifted) modelEvent({ at, model: m.id, kind: 'drift', reason: `drifting on ${m.drifted.length} instrument${m.drifted.length === 1 ? '' : 's'} (${driftFigures(m, symbols)})` }, 'warn');
      if (!drifted && before.drifted) modelEvent({ at, model: m.id, kind: 'drift-cleared', reason: 'no instrument drifting any more' }, 'info');
      const error = `live RMSE ${m.live.rmse.toFixed(3)}, zero forecast ${m.live.zeroRmse.toFixed(3)}, over ${m.live.n} predictions (DM ${m.live.dmVsZero.toFixed(2)}); held out ${m.heldOut.rmse.toFixed(3)} and ${m.heldOut.zeroRmse.toFixed(3)}`;
      if (beyond && !before.beyond) modelEvent({ at, model: m.id, kind: 'beyond-bound', reason: `${error}: beyond ${settings.drift.maxErrorRatio}x the zero forecast, its instruments fall back to the other members of their tier` }, 'warn');
      if (!beyond && before.beyond) modelEvent({ at, model: m.id, kind: 'within-bound', reason: `${error}: back within its bound, serving again` }, 'info');
      was.set(m.id, { drifted, beyond });
    }
    bus.retain(MODEL_DRIFT_TOPIC, { at, symbols, models: report, challengers: watching.challengers() });
  };
  const judged = (call: RefereeCall, at: number) => {
    const kind = call.action === 'promote' ? 'promoted' : call.action === 'reject' ? 'rejected' : 'rolled-back';
    modelEvent({ at, model: call.model, kind, reason: `${call.slot}: ${call.reason}` }, call.action === 'promote' ? 'info' : 'warn');
    refereeing = true;
    try {
      carryOut(call, status.registry);
    } catch (err) {
      // A slot the operator changed meanwhile: the call no longer applies.
      log.warn({ slot: call.slot, action: call.action }, `model ${call.model}: ${call.action} not carried out: ${(err as Error).message}`);
    } finally {
      refereeing = false;
    }
  };
  const onFrame = (frame: FeatureFrame) => {
    if (frame.intervalMs !== settings.intervalMs) return;
    if (inFlight >= settings.maxFramesInFlight) {
      status.predictor.observe(frame);
      if (status.skipped++ % 100 === 0) log.warn({ skipped: status.skipped, inFlight }, 'inference behind: frame skipped');
      return;
    }
    inFlight++;
    // The predictor catches each member's fault; a throw here or in publish is a bug and fails the component.
    status.predictor
      .predict(frame)
      .then(publish)
      .catch((err: unknown) => ctx.fail(err));
  };
  const unsubscribe = bus.subscribe(FEATURES_TOPIC, onFrame);
  ctx.provide('predictor', status);
  const slots = status.registry.slotNames().map((s) => `${s}=${status.registry.live(s).id}`);
  const workers = pool.size;
  if (standing.length === 0) log.info({ slots, workers }, 'predictor serving');
  else log.warn({ slots, workers, notServing: standing }, `predictor serving DEGRADED: ${slots.join(', ')}; not serving: ${status.unavailable.map((u) => u.slot).join(', ')}`);
  return {
    async stop() {
      stopped = true;
      unsubscribe();
      await Promise.all([pool.close(), watching.close()]);
    },
  };
});
