/**
 * Prediction frames in tests: the one horizon of a predictor that serves a
 * single one, and frames to publish where a test needs predictions without
 * a predictor.
 */
import assert from 'node:assert/strict';
import type { HorizonPredictions, PredictionFrame } from '../../src/models/predictor.js';

/** The predictions of a frame that carries exactly one horizon. */
export function single(frame: PredictionFrame): HorizonPredictions {
  assert.equal(frame.horizons.length, 1, `expected one horizon, the frame carries ${frame.horizons.length}`);
  return frame.horizons[0]!;
}

/** A frame of one horizon (10 s unless said), no tier nor model named unless given. */
export function predictionFrame(p: { frameAt: number; at?: number; symbols: readonly string[]; value: ArrayLike<number>; horizonMs?: number; tier?: readonly string[]; models?: readonly string[]; latencyMs?: number; inferenceMs?: number; faults?: readonly string[] }): PredictionFrame {
  const n = p.symbols.length;
  return {
    frameAt: p.frameAt,
    at: p.at ?? p.frameAt,
    symbols: p.symbols,
    horizons: [{ horizonMs: p.horizonMs ?? 10_000, value: Float64Array.from(p.value), tier: p.tier ?? new Array<string>(n).fill(''), models: p.models ?? new Array<string>(n).fill('') }],
    latencyMs: p.latencyMs ?? 0,
    inferenceMs: p.inferenceMs ?? 0,
    faults: p.faults ?? [],
  };
}
