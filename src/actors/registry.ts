/**
 * Every kind of component a config file may name, with the schema of its
 * settings. Each later part of keel adds its kind here and takes over its
 * placeholder's place in config/default.yaml.
 */
import type { z } from 'zod';
import type { AnyActorLogic } from 'xstate';
import { placeholderLogic, placeholderSettings } from './placeholder.js';

export interface ComponentKind {
  readonly logic: AnyActorLogic;
  readonly settings: z.ZodType;
  readonly description: string;
}

export const componentKinds = {
  placeholder: {
    logic: placeholderLogic,
    settings: placeholderSettings,
    description: 'stands in for a component not built yet: starts, beats, stops',
  },
} satisfies Record<string, ComponentKind>;

export type ComponentKindName = keyof typeof componentKinds;
