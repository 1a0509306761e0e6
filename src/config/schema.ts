import { z } from 'zod';
import { componentKinds, type ComponentKindName } from '../actors/registry.js';
import { clockSettings } from './clock.js';

const id = z.string().regex(/^[a-z][a-z0-9_]*$/, 'expected a lower_snake_case name');
const ms = z.number().int().min(0);
const positiveMs = z.number().int().positive();

const backoff = z
  .object({
    minMs: positiveMs,
    maxMs: positiveMs,
    randomFactor: z.number().min(0).max(1),
    resetAfterMs: ms,
  })
  .strict()
  .partial();

const restart = z.enum(['permanent', 'transient', 'temporary']);

const component = z
  .object({
    kind: z.enum(Object.keys(componentKinds) as [ComponentKindName, ...ComponentKindName[]]),
    dependsOn: z.array(id).default([]),
    restart: restart.optional(),
    startTimeoutMs: positiveMs.optional(),
    shutdownTimeoutMs: positiveMs.optional(),
    backoff: backoff.optional(),
    settings: z.record(z.string(), z.unknown()).default({}),
  })
  .strict();

export const configSchema = z
  .object({
    instance: z.string().regex(/^[A-Za-z0-9_-]+$/, 'expected letters, digits, _ or -').default('keel'),
    log: z
      .object({
        level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
        pretty: z.boolean().optional(),
      })
      .strict()
      .default({ level: 'info' }),
    /** Market time running fast from an anchor (config/clock.ts); none: the system clock. */
    clock: clockSettings.optional(),
    supervisor: z
      .object({
        strategy: z.enum(['one_for_one', 'rest_for_one']).default('rest_for_one'),
        startOrder: z.enum(['parallel', 'sequential']).default('parallel'),
        intensity: z.object({ maxRestarts: z.number().int().min(0), periodMs: positiveMs }).strict().default({ maxRestarts: 5, periodMs: 30_000 }),
        defaults: z
          .object({
            restart: restart.optional(),
            startTimeoutMs: positiveMs.optional(),
            shutdownTimeoutMs: positiveMs.optional(),
            backoff: backoff.optional(),
          })
          .strict()
          .default({}),
      })
      .strict()
      .prefault({}),
    components: z.record(id, component).refine((c) => Object.keys(c).length > 0, 'expected at least one component'),
  })
  .strict();

export type KeelConfig = z.infer<typeof configSchema>;
export type ComponentConfig = KeelConfig['components'][string];
