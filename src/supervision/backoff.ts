export interface BackoffSettings {
  /** First delay. */
  readonly minMs: number;
  /** Ceiling before jitter. */
  readonly maxMs: number;
  /** Jitter: the delay is stretched by up to this fraction, so restarts of many children spread out. */
  readonly randomFactor: number;
  /** Running this long without failing resets the failure count. */
  readonly resetAfterMs: number;
}

/**
 * Delay before restart number `attempt` (0 for the first):
 * min(maxMs, minMs * 2^attempt) * (1 + random * randomFactor), random in [0, 1).
 */
export function backoffDelay(settings: BackoffSettings, attempt: number, random: number): number {
  const base = Math.min(settings.maxMs, settings.minMs * 2 ** attempt);
  return base * (1 + random * settings.randomFactor);
}
