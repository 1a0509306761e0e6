/**
 * A stand-in for a component that has not been built yet. It really starts
 * (after `startDelayMs`), runs (a heartbeat on the clock) and stops (after
 * `stopDelayMs`), so the tree, its order and its supervision are real while
 * the parts arrive one issue at a time.
 */
import { z } from 'zod';
import { serviceLogic } from '../supervision/service.js';

export const placeholderSettings = z
  .object({
    startDelayMs: z.number().int().min(0).default(0),
    stopDelayMs: z.number().int().min(0).default(0),
    heartbeatMs: z.number().int().positive().default(5_000),
  })
  .strict();

export type PlaceholderSettings = z.infer<typeof placeholderSettings>;

const sleep = (clock: { setTimeout(fn: () => void, ms: number): unknown }, ms: number) =>
  new Promise<void>((resolve) => clock.setTimeout(resolve, ms));

export const placeholderLogic = serviceLogic<PlaceholderSettings>(async ({ id, settings, clock, log }) => {
  await sleep(clock, settings.startDelayMs);
  log.info({ placeholder: true }, `${id} is a placeholder: it starts, beats and stops, and does nothing else yet`);
  let beats = 0;
  let timer: unknown;
  const beat = () => {
    beats += 1;
    log.debug({ beats }, 'heartbeat');
    timer = clock.setTimeout(beat, settings.heartbeatMs);
  };
  timer = clock.setTimeout(beat, settings.heartbeatMs);
  return {
    async stop() {
      clock.clearTimeout(timer);
      await sleep(clock, settings.stopDelayMs);
    },
  };
});
