/**
 * The shipped Prometheus setup, for real: Debian's `prometheus` and
 * `promtool` against a running daemon (the built-in simulator, the demo
 * models). promtool accepts the rules, the config and a scrape; Prometheus
 * scrapes the daemon with the shipped config and rules; the gate-halted
 * alert fires after a NaN burst from the simulator; and every query of the
 * Grafana dashboard (config/grafana/keel.json) returns data, so the
 * dashboard names no metric that does not exist.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { parse, stringify } from 'yaml';
import { runKeel } from '../support/process.js';
import { freePort } from '../support/redis.js';

const PROMETHEUS_YML = 'config/prometheus/prometheus.yml';
const RULES_YML = 'config/prometheus/keel-rules.yml';
const DASHBOARD = 'config/grafana/keel.json';
const INSTANCE = 'keel-prometheus-test';
/** Generous: the machine may be busy with other tests. */
const DEADLINE_MS = 40_000;

/** A daemon on the simulator with horizons short enough to be warm in about 10 s (the demo models read ret_10s). */
function daemonConfig(o: { dir: string; simPort: number; controlPort: number; inspectorPort: number }): string {
  return `# Written by test/inspector/prometheus.test.ts.
instance: ${INSTANCE}
log: { level: info }
components:
  journal:
    kind: journal
    settings: { path: ${join(o.dir, 'journal.keel')} }
  simulator:
    kind: simulator
    settings: { port: ${o.simPort}, seed: 3, updatesPerSecond: 50, controlPort: ${o.controlPort} }
  ib_connection:
    kind: ib_connection
    dependsOn: [journal, simulator]
    settings: { port: ${o.simPort}, orderIdFile: ${join(o.dir, 'order-ids.json')} }
  subscriptions:
    kind: subscriptions
    dependsOn: [ib_connection]
    settings:
      instruments:
        - { symbol: SPY, depth: { rows: 10 }, ticks: AllLast }
        - { symbol: QQQ, depth: { rows: 10 }, ticks: AllLast }
        - { symbol: MSFT }
  l2_microstructure: { kind: l2_microstructure, dependsOn: [subscriptions] }
  features:
    kind: features
    dependsOn: [l2_microstructure]
    settings: { samplesMs: [100, 1000], volHalfLivesMs: [1000], returnHorizonsMs: [1000, 10000] }
  feature_health:
    kind: feature_health
    dependsOn: [features, risk_gate]
    settings: { maxDataAgeMs: 5000, advisory: [ret_1s, ret_10s] }
  regime:
    kind: regime
    dependsOn: [features]
    settings: { model: models/regime-sjm/manifest.json, intervalMs: 1000 }
  predictor:
    kind: predictor
    dependsOn: [features, regime]
    settings: { intervalMs: 1000, workers: 1, horizons: { 10s: { base: [models/gbdt-base-10s/manifest.json] } } }
  risk_gate:
    kind: risk_gate
    dependsOn: [journal]
    # Held once halted, so the alert has time to fire.
    settings: { autoResume: true, healthyPeriodMs: 60000 }
  paper_trader:
    kind: paper_trader
    dependsOn: [predictor, risk_gate, l2_microstructure]
    settings:
      mode: book
      policy: { entryBps: 0.5, exitBps: 0.2, shares: 100, minHoldMs: 0, maxSpreadBps: 50 }
  inspector:
    kind: inspector
    settings: { port: ${o.inspectorPort}, tokenFile: ${join(o.dir, 'inspector.token')} }
`;
}

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
}

/** The shipped config with the test's target and a 1 s interval; its rules are the shipped ones but for one `for:`. */
function prometheusConfig(dir: string, inspectorPort: number): string {
  const rules = parse(readFileSync(RULES_YML, 'utf8')) as { groups: { rules: Rule[] }[] };
  const halted = rules.groups.flatMap((g) => g.rules).find((r) => r.alert === 'KeelGateHalted');
  assert.ok(halted?.for, `${RULES_YML} has no KeelGateHalted alert with a for:`);
  // The shipped 5m is for people; a test cannot wait five minutes, and what is tested is that the expression holds and the alert fires.
  halted.for = '2s';
  const rulesFile = join(dir, 'keel-rules.yml');
  writeFileSync(rulesFile, stringify(rules));

  const config = parse(readFileSync(PROMETHEUS_YML, 'utf8')) as {
    global: Record<string, string>;
    rule_files: string[];
    scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[];
  };
  assert.deepEqual(config.rule_files, ['keel-rules.yml'], 'the shipped config loads the shipped rules');
  config.global.scrape_interval = '1s';
  config.global.evaluation_interval = '1s';
  config.rule_files = [rulesFile];
  const job = config.scrape_configs.find((s) => s.job_name === 'keel');
  assert.ok(job, `${PROMETHEUS_YML} has no keel job`);
  job.static_configs = [{ targets: [`127.0.0.1:${inspectorPort}`] }];
  const file = join(dir, 'prometheus.yml');
  writeFileSync(file, stringify(config));
  return file;
}

function promtool(args: string[], input?: string): { status: number | null; output: string } {
  const run = spawnSync('promtool', args, { input, encoding: 'utf8' });
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

/** Polls `probe` until it gives a value, or fails naming `what`. */
async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = DEADLINE_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

interface Sample {
  metric: Record<string, string>;
}

class PrometheusApi {
  constructor(readonly url: string) {}

  async get<T>(path: string): Promise<T> {
    const response = await fetch(`${this.url}${path}`);
    const body = (await response.json()) as { status: string; data: T; error?: string };
    if (body.status !== 'success') throw new Error(`${path}: ${body.error ?? response.status}`);
    return body.data;
  }

  async query(expr: string): Promise<Sample[]> {
    return (await this.get<{ result: Sample[] }>(`/api/v1/query?query=${encodeURIComponent(expr)}`)).result;
  }
}

/** Every PromQL query of the dashboard, with the panel it is in. */
function dashboardQueries(dashboard: DashboardJson): { panel: string; expr: string }[] {
  const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
  return panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));
}

interface DashboardJson {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: { id: number; type: string; title: string; gridPos?: unknown; datasource?: { uid: string }; targets?: { expr: string; refId: string }[]; panels?: DashboardJson['panels'] }[];
  templating: { list: { name: string; type: string; query?: string | { query: string } }[] };
}

test('the dashboard is importable: ids, positions, the datasource variable, and no variable it does not define', () => {
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as DashboardJson;
  assert.equal(dashboard.uid, 'keel-overview');
  assert.ok(dashboard.schemaVersion >= 36);
  const ids = dashboard.panels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
  const defined = new Set(dashboard.templating.list.map((v) => v.name));
  for (const p of dashboard.panels) {
    assert.ok(p.gridPos, `${p.title} has a position`);
    if (p.type === 'row') continue;
    assert.equal(p.datasource?.uid, '${datasource}', `${p.title} uses the datasource variable`);
    assert.ok((p.targets ?? []).length > 0, `${p.title} has a query`);
    for (const t of p.targets!) {
      for (const [, name] of t.expr.matchAll(/\$(\w+)/g)) assert.ok(name!.startsWith('__') || defined.has(name!), `${p.title}: $${name} is not a variable of the dashboard`);
    }
  }
});

test('prometheus scrapes a running daemon: promtool passes, the gate-halted alert fires on a NaN burst, every dashboard query returns data', { timeout: 120_000 }, async () => {
  const prometheusBin = spawnSync('prometheus', ['--version'], { encoding: 'utf8' });
  assert.ok(prometheusBin.status === 0 && promtool(['--version']).status === 0, "prometheus and promtool are missing: install Debian's package (apt-get install prometheus), as .ci/run does");

  for (const args of [['check', 'rules', RULES_YML], ['check', 'config', PROMETHEUS_YML]]) {
    const run = promtool(args);
    assert.equal(run.status, 0, `promtool ${args.join(' ')}:\n${run.output}`);
  }

  const dir = mkdtempSync(join(tmpdir(), 'keel-prometheus-'));
  const [simPort, controlPort, inspectorPort, prometheusPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const configPath = join(dir, 'keel.yaml');
  writeFileSync(configPath, daemonConfig({ dir, simPort, controlPort, inspectorPort }));
  const keel = runKeel(['run', '--config', configPath]);
  let prometheus: ChildProcess | undefined;
  const prometheusLog: string[] = [];
  try {
    await Promise.race([keel.waitFor('keel running: all components ready'), sleep(DEADLINE_MS).then(() => assert.fail(`keel did not start; stderr: ${keel.stderr.join('\n')}`))]);
    const inspector = `http://127.0.0.1:${inspectorPort}`;

    const promConfig = prometheusConfig(dir, inspectorPort);
    const checked = promtool(['check', 'config', promConfig]);
    assert.equal(checked.status, 0, `promtool check config (the test's copy):\n${checked.output}`);
    prometheus = spawn(
      'prometheus',
      [`--config.file=${promConfig}`, `--storage.tsdb.path=${join(dir, 'tsdb')}`, `--web.listen-address=127.0.0.1:${prometheusPort}`, '--log.level=warn'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    prometheus.stderr!.on('data', (chunk: Buffer) => prometheusLog.push(String(chunk)));
    const api = new PrometheusApi(`http://127.0.0.1:${prometheusPort}`);
    await eventually('prometheus ready', async () => ((await fetch(`${api.url}/-/ready`)).ok ? true : undefined)).catch((error: Error) => {
      throw new Error(`${error.message}; its log:\n${prometheusLog.join('')}`);
    });

    // Warm and trading: features judged, a regime and a prediction for the traded instruments, the gate ACTIVE, as Prometheus sees them.
    await eventually('the daemon warm and trading, as scraped', async () => {
      for (const expr of ['keel_feature_health_score{symbol="SPY"}', 'keel_regime_state{symbol="SPY"}', 'keel_prediction{symbol="SPY"}', 'keel_predicted_instruments', 'keel_risk_gate_state{state="ACTIVE"} == 1']) {
        if ((await api.query(expr)).length === 0) return undefined;
      }
      return true;
    });
    const targets = await api.get<{ activeTargets: { health: string; scrapeUrl: string }[] }>('/api/v1/targets');
    assert.deepEqual(
      targets.activeTargets.map((t) => [t.scrapeUrl, t.health]),
      [[`${inspector}/metrics`, 'up']],
    );

    // A scrape passes promtool's lint (names, units, types, reserved labels).
    const body = await (await fetch(`${inspector}/metrics`)).text();
    const lint = promtool(['check', 'metrics'], body);
    assert.equal(lint.status, 0, `promtool check metrics:\n${lint.output}`);

    // A NaN burst on SPY's depth: its features go CRITICAL, the gate HALTED, and (after the shortened for:) the alert fires.
    type Alert = { labels: Record<string, string>; state: string; annotations: Record<string, string> };
    const before = await api.get<{ alerts: Alert[] }>('/api/v1/alerts');
    assert.deepEqual(before.alerts.filter((a) => a.labels.alertname === 'KeelGateHalted'), [], 'not pending before the burst');
    const control = `http://127.0.0.1:${controlPort}`;
    assert.equal((await fetch(`${control}/faults/corrupt-depth?symbol=SPY&mode=nan-prices`, { method: 'POST' })).status, 200);
    const fired = await eventually('KeelGateHalted firing', async () => {
      const { alerts } = await api.get<{ alerts: Alert[] }>('/api/v1/alerts');
      return alerts.find((a) => a.labels.alertname === 'KeelGateHalted' && a.state === 'firing');
    });
    assert.equal(fired.labels.severity, 'critical');
    assert.equal(fired.labels.instance, `127.0.0.1:${inspectorPort}`);
    assert.doesNotMatch(JSON.stringify(fired.annotations), /error|<no value>/, 'the annotations expand');
    assert.equal((await fetch(`${control}/faults/corrupt-depth?symbol=SPY&mode=clean`, { method: 'POST' })).status, 200);

    // The dashboard's variables as Grafana fills them, then every query: each must return at least one series.
    const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as DashboardJson;
    const instances = await api.get<string[]>(`/api/v1/label/instance/values?match[]=${encodeURIComponent('keel_risk_gate_state')}`);
    assert.deepEqual(instances, [`127.0.0.1:${inspectorPort}`], 'label_values(keel_risk_gate_state, instance)');
    const instance = instances[0]!;
    const symbols = await api.get<string[]>(`/api/v1/label/symbol/values?match[]=${encodeURIComponent(`keel_feature_health_score{instance="${instance}"}`)}`);
    assert.deepEqual(symbols, ['QQQ', 'SPY'], 'label_values(keel_feature_health_score, symbol): the instruments with a book, not MSFT');
    const fill = (expr: string) =>
      expr
        .replaceAll('$instance', instance)
        .replaceAll('$symbol', symbols.join('|'))
        // Grafana's: a window of a few scrapes, and the dashboard's time range.
        .replaceAll('$__rate_interval', '30s')
        .replaceAll('$__range', '1m');
    const queries = dashboardQueries(dashboard);
    assert.ok(queries.length >= 40, `${queries.length} queries`);
    const empty: string[] = [];
    for (const { panel, expr } of queries) {
      if ((await api.query(fill(expr))).length === 0) empty.push(`${panel}: ${expr}`);
    }
    assert.deepEqual(empty, [], 'dashboard queries that return nothing');
  } finally {
    if (prometheus && prometheus.exitCode === null) {
      prometheus.kill('SIGTERM');
      await once(prometheus, 'exit');
    }
    keel.child.kill('SIGTERM');
    await keel.exited;
    rmSync(dir, { recursive: true, force: true });
  }
  assert.ok(!prometheusLog.join('').includes('level=error'), `prometheus logged errors:\n${prometheusLog.join('')}`);
});
