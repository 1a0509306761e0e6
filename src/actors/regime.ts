/**
 * regime: the market regime of every instrument, by the online Statistical
 * Jump Model: one O(K) update per warm instrument per features frame of the
 * model's clock, no look-ahead. Publishes (retained) each frame's states
 * and probabilities on `regime`. State 0 is the calm regime (the model's
 * states are sorted by its stated rule when it is fitted); -1 means no
 * regime yet (not warm since the model last saw it, or a non-finite input).
 */
import { z } from 'zod';
import { FEATURES_ENGINE_TOPIC, FEATURES_TOPIC, type FeatureFrame } from './features.js';
import { requireInstruments } from './subscriptions.js';
import type { FeatureEngine } from '../market/features.js';
import { inputColumns, ModelRefused, readModelSource } from '../models/manifest.js';
import { OnlineJumpModel, parseJumpModel } from '../models/sjm.js';
import { serviceLogic } from '../supervision/service.js';

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

export const REGIME_TOPIC = 'regime';

/** One frame's regimes. Reused: read it synchronously. */
export interface RegimeFrame {
  readonly model: string;
  readonly intervalMs: number;
  readonly labels: readonly string[];
  readonly symbols: readonly string[];
  readonly k: number;
  at: number;
  /** State per instrument, -1 when none. */
  readonly state: Int32Array;
  /** `instrument * k + state`: the probability of each state (NaN when none). */
  readonly probabilities: Float64Array;
  /** Regime changes seen since start, all instruments together. */
  switches: number;
}

export const regimeLogic = serviceLogic<RegimeSettings>(async (ctx) => {
  const { bus, log, settings } = ctx;
  const engine = bus.latest<FeatureEngine>(FEATURES_ENGINE_TOPIC);
  if (!engine) throw new Error('regime needs the features: is features configured and listed in dependsOn?');
  const symbols = requireInstruments(ctx);
  const source = readModelSource(settings.model);
  const { manifest } = source;
  if (manifest.kind !== 'sjm') throw new ModelRefused(settings.model, `is a ${manifest.kind} model; regime runs a jump model (kind sjm)`);
  if (manifest.input.window !== 1 || manifest.input.standardize) {
    throw new ModelRefused(settings.model, 'a jump model reads one frame and standardises inside its file: input.window must be 1 and input.standardize absent');
  }
  const model = parseJumpModel(JSON.parse(Buffer.from(source.bytes).toString('utf8')), source.filePath);
  if (model.features.join() !== manifest.input.features.join()) {
    throw new ModelRefused(settings.model, `the manifest lists ${manifest.input.features.join(', ')} but the model file reads ${model.features.join(', ')}`);
  }
  if (settings.labels.length !== model.k) throw new Error(`regime labels name ${settings.labels.length} states; the model has ${model.k}`);
  const columns = inputColumns(manifest, engine.schema, settings.model);
  const online = new OnlineJumpModel(model, symbols.length);
  const width = engine.schema.features.length;
  const k = model.k;
  const frame: RegimeFrame = {
    model: `${manifest.name}@${manifest.version}`,
    intervalMs: settings.intervalMs,
    labels: settings.labels,
    symbols,
    k,
    at: NaN,
    state: new Int32Array(symbols.length).fill(-1),
    probabilities: new Float64Array(symbols.length * k).fill(NaN),
    switches: 0,
  };
  const x = new Float64Array(columns.length);
  const wasWarm = new Uint8Array(symbols.length);
  // The model's state survives a non-finite frame (published as -1): a change across it is still a switch.
  const lastState = new Int32Array(symbols.length).fill(-1);

  const onFrame = (f: FeatureFrame) => {
    if (f.intervalMs !== settings.intervalMs) return;
    for (let i = 0; i < symbols.length; i++) {
      if (!f.warm[i]) {
        // A gap in the data: the recursion starts afresh when the instrument is warm again.
        if (wasWarm[i]) online.reset(i);
        wasWarm[i] = 0;
        lastState[i] = -1;
        frame.state[i] = -1;
        frame.probabilities.fill(NaN, i * k, i * k + k);
        continue;
      }
      wasWarm[i] = 1;
      for (let c = 0; c < columns.length; c++) x[c] = f.values[i * width + columns[c]!]!;
      const before = lastState[i]!;
      const state = online.update(i, x);
      frame.state[i] = state;
      if (state < 0) frame.probabilities.fill(NaN, i * k, i * k + k);
      else {
        frame.probabilities.set(online.probabilities(i), i * k);
        lastState[i] = state;
        if (before >= 0 && before !== state) {
          frame.switches++;
          log.info({ symbol: symbols[i], from: settings.labels[before], to: settings.labels[state] }, `${symbols[i]} regime ${settings.labels[before]} -> ${settings.labels[state]}`);
        }
      }
    }
    frame.at = f.at;
    bus.retain(REGIME_TOPIC, frame);
  };
  const unsubscribe = bus.subscribe(FEATURES_TOPIC, onFrame);
  log.info({ model: frame.model, k, lambda: model.lambda, continuous: model.continuous, features: model.features }, 'regime model running');
  return { stop: unsubscribe };
});
