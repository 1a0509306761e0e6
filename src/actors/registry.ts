/**
 * Every kind of component a config file may name, with the schema of its
 * settings. Each later part of keel adds its kind here and takes over its
 * placeholder's place in config/default.yaml.
 */
import type { z } from 'zod';
import type { AnyActorLogic } from 'xstate';
import { featureHealthLogic, featureHealthSettings } from './feature-health.js';
import { featuresLogic, featuresSettings } from './features.js';
import { ibConnectionLogic, ibConnectionSettings } from './ib-connection.js';
import { inspectorLogic, inspectorSettings } from './inspector.js';
import { journalLogic, journalSettings } from './journal.js';
import { l2MicrostructureLogic, l2MicrostructureSettings } from './l2-microstructure.js';
import { paperTraderLogic, paperTraderSettings } from './paper-trader.js';
import { placeholderLogic, placeholderSettings } from './placeholder.js';
import { predictorLogic, predictorSettings } from './predictor.js';
import { recorderLogic, recorderSettings } from './recorder.js';
import { redisLogic, redisSettings } from './redis.js';
import { regimeLogic, regimeSettings } from './regime.js';
import { riskGateLogic, riskGateSettings } from './risk-gate.js';
import { simulatorLogic, simulatorSettings } from './simulator.js';
import { subscriptionsLogic, subscriptionsSettings } from './subscriptions.js';

export interface ComponentKind {
  readonly logic: AnyActorLogic;
  readonly settings: z.ZodType;
  readonly description: string;
}

export const componentKinds = {
  redis: {
    logic: redisLogic,
    settings: redisSettings,
    description: 'mirrors features, regime, predictions, health, portfolio and the journal to Redis (msgpack); Redis down halts trading',
  },
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
  l2_microstructure: {
    logic: l2MicrostructureLogic,
    settings: l2MicrostructureSettings,
    description: 'order books per instrument from IB depth rows: typed arrays, bad updates rejected, locked/crossed flagged',
  },
  features: {
    logic: featuresLogic,
    settings: featuresSettings,
    description: 'microstructure features updated per book and trade batch, sampled on clocks for the models',
  },
  feature_health: {
    logic: featureHealthLogic,
    settings: featureHealthSettings,
    description: 'scores every feature, sweeps for stale data and silent feeds, tells the risk gate what must stop trading',
  },
  regime: {
    logic: regimeLogic,
    settings: regimeSettings,
    description: 'the market regime of every instrument by the online Statistical Jump Model, one O(K) step per frame',
  },
  predictor: {
    logic: predictorLogic,
    settings: predictorSettings,
    description: 'the tiered ensemble of ONNX models in worker threads: hot swap, rollback, shadow mode, sector LRU, high-vol specialist',
  },
  risk_gate: {
    logic: riskGateLogic,
    settings: riskGateSettings,
    description: 'the ACTIVE / REDUCING / HALTED kill switch every order path asks; halts in the call that saw bad data',
  },
  journal: {
    logic: journalLogic,
    settings: journalSettings,
    description: 'the durable ledger: an fsynced append-only file of checksummed records, replayed at start into orders, positions, cash and P&L',
  },
  paper_trader: {
    logic: paperTraderLogic,
    settings: paperTraderSettings,
    description: 'predictions to orders through the risk gate; fills against the live book (sim) or at TWS (ib), reconciled with the broker',
  },
  recorder: {
    logic: recorderLogic,
    settings: recorderSettings,
    description: 'writes what the books and features receive to a chunked msgpack recording for `keel replay`',
  },
  inspector: {
    logic: inspectorLogic,
    settings: inspectorSettings,
    description: 'HTTP + WebSocket on loopback: the live actor tree, /health, /metrics, the web page, and token-guarded control',
  },
  placeholder: {
    logic: placeholderLogic,
    settings: placeholderSettings,
    description: 'stands in for a component not built yet: starts, beats, stops',
  },
} satisfies Record<string, ComponentKind>;

export type ComponentKindName = keyof typeof componentKinds;
