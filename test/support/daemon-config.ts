/**
 * The config of a trading daemon in ib mode on a simulator the test runs
 * (the crash tests): journal, IB link, books, fast features and a model
 * that follows the top-of-book imbalance (its sign flips often, so it
 * trades a lot), the gate and the paper trader, with what each test adds.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeAffineModel } from './models.js';

export interface TradingDaemon {
  readonly dir: string;
  readonly instance: string;
  readonly port: number;
  readonly symbols: readonly string[];
  /** Top-level YAML lines before `components:` (a clock, say). */
  readonly top?: string;
  /** The gate's settings, as YAML under `settings:`. */
  readonly riskGate: string;
  /** The paper trader's settings beyond `mode: ib`, as YAML under `settings:`. */
  readonly paperTrader: string;
  /** More components, as YAML under `components:`. */
  readonly more?: string;
}

/** Writes the config to `<dir>/<instance>.yaml` and returns its path. */
export function writeTradingDaemonConfig(o: TradingDaemon): string {
  const model = writeAffineModel(o.dir, { name: 'imbalance', version: '1', features: ['imbalance_l1'], weights: [4], bias: 0 });
  const path = join(o.dir, `${o.instance}.yaml`);
  const indent = (yaml: string, spaces: number) => yaml.trim().split('\n').map((l) => ' '.repeat(spaces) + l).join('\n');
  writeFileSync(
    path,
    `instance: ${o.instance}
log: { level: info }
${o.top ?? ''}
components:
  journal:
    kind: journal
    settings: { path: ${join(o.dir, 'journal.keel')} }
  ib_connection:
    kind: ib_connection
    dependsOn: [journal]
    settings: { port: ${o.port}, orderIdFile: ${join(o.dir, 'order-ids.json')} }
  subscriptions:
    kind: subscriptions
    dependsOn: [ib_connection]
    settings:
      instruments:
${o.symbols.map((s) => `        - { symbol: ${s}, depth: { rows: 10 }, ticks: AllLast }`).join('\n')}
  l2_microstructure: { kind: l2_microstructure, dependsOn: [subscriptions] }
  features:
    kind: features
    dependsOn: [l2_microstructure]
    # Short horizons: warm within a second or two.
    settings: { samplesMs: [200], volHalfLivesMs: [1000], returnHorizonsMs: [1000], flowHalfLifeMs: 1000 }
  predictor:
    kind: predictor
    dependsOn: [features]
    settings: { intervalMs: 200, workers: 1, horizons: { 10s: { base: [${model}] } } }
  risk_gate:
    kind: risk_gate
    dependsOn: [journal]
    settings:
${indent(o.riskGate, 6)}
  paper_trader:
    kind: paper_trader
    dependsOn: [predictor, risk_gate, l2_microstructure]
    settings:
      mode: ib
${indent(o.paperTrader, 6)}
${o.more ? indent(o.more, 2) : ''}
`,
  );
  return path;
}
