/**
 * Forecast horizons as people write them ("10s", "5m", "15m") and as the
 * manifests and frames carry them (ms). A horizon's label names its models
 * (`gbdt-base-5m`), its predictor slots (`5m/base/0`) and its column in the
 * inspector.
 */
import { z } from 'zod';

/** 10000 → "10s", 300000 → "5m". */
export function horizonLabel(ms: number): string {
  return ms % 60_000 === 0 ? `${ms / 60_000}m` : `${ms / 1000}s`;
}

/** "10s", "5m", "1h" → ms; undefined when the text is not one. */
export function parseHorizon(text: string): number | undefined {
  const m = /^(\d+)(s|m|h)$/.exec(text.trim());
  if (!m) return undefined;
  const ms = Number(m[1]) * { s: 1_000, m: 60_000, h: 3_600_000 }[m[2] as 's' | 'm' | 'h'];
  return ms > 0 ? ms : undefined;
}

/** A horizon in a config, read as ms: a label ("10s", "5m") or ms already (so parsed settings parse again to themselves). */
export const horizonSetting = z.union([
  z.number().int().positive(),
  z.string().transform((text, ctx) => {
    const ms = parseHorizon(text);
    if (ms === undefined) {
      ctx.addIssue({ code: 'custom', message: `'${text}' is not a horizon like 10s, 5m or 15m` });
      return z.NEVER;
    }
    return ms;
  }),
]);
