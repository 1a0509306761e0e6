/**
 * Every kind of component a config file may name, with the schema of its
 * settings. Each later part of keel adds its kind here and takes over its
 * placeholder's place in config/default.yaml.
 */
import type { z } from 'zod';
import type { AnyActorLogic } from 'xstate';
import { ibConnectionLogic, ibConnectionSettings } from './ib-connection.js';
import { placeholderLogic, placeholderSettings } from './placeholder.js';
import { simulatorLogic, simulatorSettings } from './simulator.js';
import { subscriptionsLogic, subscriptionsSettings } from './subscriptions.js';

export interface ComponentKind {
  readonly logic: AnyActorLogic;
  readonly settings: z.ZodType;
  readonly description: string;
}

export const componentKinds = {
  simulator: {
    logic: simulatorLogic,
    settings: simulatorSettings,
    description: 'the TWS wire-protocol simulator on loopback: a seeded market, orders, IB limits and faults',
  },
  ib_connection: {
    logic: ibConnectionLogic,
    settings: ibConnectionSettings,
    description: 'the socket to TWS / IB Gateway: reconnects, probes liveness, classifies IB codes, keeps order ids unique',
  },
  subscriptions: {
    logic: subscriptionsLogic,
    settings: subscriptionsSettings,
    description: "every market-data request to IB, paced and under IB's budgets, re-requested after reconnects and silence",
  },
  placeholder: {
    logic: placeholderLogic,
    settings: placeholderSettings,
    description: 'stands in for a component not built yet: starts, beats, stops',
  },
} satisfies Record<string, ComponentKind>;

export type ComponentKindName = keyof typeof componentKinds;
