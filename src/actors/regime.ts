/**
 * regime: the market regime of every instrument, by the online Statistical
 * Jump Model (RegimeTracker: one O(K) update per warm instrument per
 * features frame of the model's clock, no look-ahead). Publishes (retained)
 * each frame's states and probabilities on `regime`. State 0 is the calm
 * regime; -1 means no regime yet (not warm since the model last saw it, or
 * a non-finite input).
 */
import { z } from 'zod';
import { FileRefused, inputColumns, ModelRefused, parseJsonFile, readModelSource, type Manifest } from '../models/manifest.js';
import { RegimeTracker } from '../models/regime-tracker.js';
import { parseJumpModel, type JumpModelFile } from '../models/sjm.js';
import { serviceLogic } from '../supervision/service.js';
import { FEATURES_TOPIC, REGIME_TOPIC } from '../topics.js';
import type { FeatureFrame, FeatureSchema } from '../market/features.js';

export const regimeSettings = z
  .object({
    /** The jump model's manifest, relative to the working directory. */
    model: z.string().min(1),
    /** The features clock the model was fitted on, ms. */
    intervalMs: z.number().int().positive().default(1_000),
    /** A name per state, calm first. */
    labels: z.array(z.string().min(1)).min(2).default(['calm', 'volatile']),
  })
  .strict();

export type RegimeSettings = z.infer<typeof regimeSettings>;

/**
 * The jump model a manifest names, checked against it. A model file that is
 * not JSON is refused naming the file, without quoting any of it (it may be
 * any file a config points at).
 */
export function readRegimeModel(manifestPath: string): { manifest: Manifest; model: JumpModelFile } {
  const source = readModelSource(manifestPath);
  const { manifest } = source;
  if (manifest.kind !== 'sjm') throw new ModelRefused(manifestPath, `is a ${manifest.kind} model; regime runs a jump model (kind sjm)`);
  if (manifest.input.window !== 1 || manifest.input.standardize) {
    throw new ModelRefused(manifestPath, 'a jump model reads one frame and standardises inside its file: input.window must be 1 and input.standardize absent');
  }
  let json: unknown;
  try {
    json = parseJsonFile(source.bytes, 'model file', source.filePath);
  } catch (err) {
    throw err instanceof FileRefused ? new ModelRefused(manifestPath, err.message) : err;
  }
  const model = parseJumpModel(json, source.filePath);
  if (model.features.join() !== manifest.input.features.join()) {
    throw new ModelRefused(manifestPath, `the manifest lists ${manifest.input.features.join(', ')} but the model file reads ${model.features.join(', ')}`);
  }
  return { manifest, model };
}

/** A tracker of `symbols` running the model `settings` name, on frames of `schema`, published as its manifest says. */
export function regimeTracker(settings: RegimeSettings, read: { manifest: Manifest; model: JumpModelFile }, symbols: readonly string[], schema: FeatureSchema): RegimeTracker {
  const { manifest, model } = read;
  return new RegimeTracker(model, symbols, {
    model: `${manifest.name}@${manifest.version}`,
    intervalMs: settings.intervalMs,
    labels: settings.labels,
    columns: inputColumns(manifest, schema, settings.model),
    width: schema.features.length,
    stability: manifest.regime,
  });
}

export const regimeLogic = serviceLogic<RegimeSettings>(async (ctx) => {
  const { bus, log, settings } = ctx;
  const engine = ctx.need('featureEngine');
  const { symbols, booked } = ctx.need('instruments');
  const read = readRegimeModel(settings.model);
  const { model } = read;
  const tracker = regimeTracker(settings, read, symbols, engine.schema);
  const { labels } = settings;
  const onSwitch = (i: number, from: number, to: number) => {
    const line = { symbol: symbols[i], from: labels[from], to: labels[to] };
    const message = `${symbols[i]} regime ${labels[from]} -> ${labels[to]}`;
    // Thousands of quotes-only names switch every second somewhere: news only for the instruments traded.
    if (booked[i] === false) log.debug(line, message);
    else log.info(line, message);
  };

  const onFrame = (f: FeatureFrame) => {
    if (f.intervalMs !== settings.intervalMs) return;
    bus.retain(REGIME_TOPIC, tracker.step(f, onSwitch));
  };
  const unsubscribe = bus.subscribe(FEATURES_TOPIC, onFrame);
  const stability = read.manifest.regime ?? 'follows the model';
  log.info({ model: tracker.frame.model, k: model.k, lambda: model.lambda, continuous: model.continuous, features: model.features, stability }, 'regime model running');
  return { stop: unsubscribe };
});
