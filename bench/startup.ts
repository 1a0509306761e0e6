/**
 * Startup: time to all components running, starting each as soon as its
 * dependencies are ready ('parallel') against one at a time ('sequential'),
 * in the same run, each in a fresh `keel run` process. Placeholders stand in
 * for the components with start delays like the real ones'.
 *
 * Then the real default tree (config/default.yaml: simulator, IB connection,
 * models in their worker pool, trader, inspector, ...) in a fresh process
 * per sample, on free ports and with its files in a temp directory: time to
 * all components running, from the tree's start and from the process's, with
 * where the time goes (before the tree starts; the slowest component). Both
 * ways bin/keel.js runs keel, in the same run, alternating: compiled (dist/,
 * as `npm start` does) and the sources through tsx (KEEL_SOURCE=1), with the
 * ratio. Everything else runs compiled, so dist/ must be current.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { buildState } from '../bin/build-state.js';
import { criticalPath, type TreeNode } from '../src/supervision/tree.js';
import { runKeel } from '../test/support/process.js';
import { defaultConfigIn, freePort } from './default-config.js';
import { fmt, median, type BenchOptions } from './stats.js';

interface Shape {
  readonly name: string;
  readonly components: readonly (TreeNode & { readonly startMs: number })[];
}

const c = (id: string, startMs: number, ...dependsOn: string[]) => ({ id, startMs, dependsOn });

/** The design's tree (less the inspector: 10 components), delays as the real parts are expected to take. */
const design: Shape = {
  name: 'design tree',
  components: [
    c('journal', 50),
    c('ib_connection', 250, 'journal'),
    c('subscriptions', 40, 'ib_connection'),
    c('l2_microstructure', 10, 'subscriptions'),
    c('features', 10, 'l2_microstructure'),
    c('feature_health', 10, 'features'),
    c('regime', 80, 'features'),
    c('predictor', 200, 'features', 'regime'),
    c('risk_gate', 20, 'journal'),
    c('paper_trader', 20, 'predictor', 'risk_gate', 'l2_microstructure'),
  ],
};

/** A wide tree: one root, eight independent services, one component that needs them all. */
const wide: Shape = {
  name: 'wide tree',
  components: [
    c('journal', 50),
    ...[120, 80, 200, 60, 150, 90, 40, 110].map((ms, i) => c(`service_${i + 1}`, ms, 'journal')),
    c('paper_trader', 20, ...Array.from({ length: 8 }, (_, i) => `service_${i + 1}`)),
  ],
};

/** All components running within this; the production system takes 8 s. */
const REAL_TARGET_MS = 1_000;
const THEIR_STARTUP_MS = 8_000;

function configFor(shape: Shape, startOrder: 'parallel' | 'sequential'): string {
  const lines = ['instance: bench-startup', 'log: { level: info }', `supervisor: { startOrder: ${startOrder} }`, 'components:'];
  for (const comp of shape.components) {
    lines.push(`  ${comp.id}:`, '    kind: placeholder', `    dependsOn: [${comp.dependsOn.join(', ')}]`, `    settings: { startDelayMs: ${comp.startMs} }`);
  }
  return `${lines.join('\n')}\n`;
}

interface Timing {
  readonly startupMs: number;
  readonly sinceProcessStartMs: number;
}

/** How bin/keel.js runs keel: the build in dist/, or the sources through tsx. */
type Runner = 'compiled' | 'source';
const RUNNER_ENV: Record<Runner, NodeJS.ProcessEnv> = { compiled: {}, source: { KEEL_SOURCE: '1' } };

/** One `keel run` to all components ready; the log's JSON lines up to then, and the root's timings. */
async function timeOnce(configFile: string, runner: Runner = 'compiled'): Promise<Timing & { spawnToRunningMs: number; lines: Record<string, unknown>[] }> {
  const spawnedAt = performance.now();
  const keel = runKeel(['run', '--config', configFile], RUNNER_ENV[runner]);
  const line = await keel.waitFor('keel running');
  const spawnToRunningMs = performance.now() - spawnedAt;
  // bin/keel.js says so when it runs the sources instead of a stale build: then this is no sample of the build.
  const fellBack = keel.stderr.find((l) => l.includes('running the sources through tsx'));
  if (runner === 'compiled' && fellBack) throw new Error(`startup bench: dist/ went stale during the run (${fellBack}): npm run build, and run it again`);
  const lines = keel.stdout.map((l) => JSON.parse(l) as Record<string, unknown>);
  keel.child.kill('SIGTERM');
  const code = await keel.exited;
  if (code !== 0) throw new Error(`keel run exited ${code}: ${keel.stderr.join('\n')}`);
  const { startupMs, sinceProcessStartMs } = JSON.parse(line) as Timing;
  return { startupMs, sinceProcessStartMs, spawnToRunningMs, lines };
}

/** The default tree on free ports (never 7497/7499/7500, which tests and a user's daemon use), its files in `dir`. */
async function realTreeConfig(dir: string): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const raw = defaultConfigIn(dir);
  const c = raw.components;
  const [market, control, inspector] = [await freePort(), await freePort(), await freePort()];
  Object.assign(c.simulator!.settings, { port: market, controlPort: control });
  c.ib_connection!.settings.port = market;
  c.inspector!.settings.port = inspector;
  const file = join(dir, 'keel.yaml');
  writeFileSync(file, stringify(raw));
  return file;
}

interface RealSample extends Timing {
  /** From spawn() in this process to the line arriving here: includes exec and Node's start before its own clock begins. */
  readonly spawnToRunningMs: number;
  /** From process start to the root supervisor's start: Node, the module graph (compiled by tsx, for 'source'), the config. */
  readonly beforeTreeMs: number;
  /** Each component's own start, from the supervisor's `ready` lines. */
  readonly componentMs: Readonly<Record<string, number>>;
}

async function timeRealTree(dir: string, runner: Runner): Promise<RealSample> {
  const { startupMs, sinceProcessStartMs, spawnToRunningMs, lines } = await timeOnce(await realTreeConfig(dir), runner);
  const componentMs = Object.fromEntries(lines.filter((l) => typeof l.startMs === 'number' && typeof l.child === 'string').map((l) => [l.child as string, l.startMs as number]));
  return { startupMs, sinceProcessStartMs, spawnToRunningMs, beforeTreeMs: sinceProcessStartMs - startupMs, componentMs };
}

/** The real tree, `runs` fresh processes of each runner, alternating so drift on the machine hits both alike; medians. */
async function realTree(dir: string, options: BenchOptions) {
  const samples: Record<Runner, RealSample[]> = { compiled: [], source: [] };
  for (let run = 1; run <= options.runs; run++) {
    for (const runner of ['compiled', 'source'] as const) {
      const s = await timeRealTree(join(dir, `real-${runner}-${run}`), runner);
      samples[runner].push(s);
      options.progress(`startup: real default tree, ${runner}, run ${run}/${options.runs}: ${fmt(s.startupMs)} ms from the tree's start, ${fmt(s.sinceProcessStartMs)} ms from the process's`);
    }
  }
  return { compiled: summary(samples.compiled), source: summary(samples.source) };
}

/** Medians of one runner's samples, and its slowest component. */
function summary(samples: RealSample[]) {
  const of = (f: (s: RealSample) => number) => median(samples.map(f));
  const components = Object.keys(samples[0]!.componentMs);
  const componentMs = Object.fromEntries(components.map((id) => [id, of((s) => s.componentMs[id] ?? NaN)]));
  const slowest = components.reduce((a, b) => (componentMs[a]! >= componentMs[b]! ? a : b));
  return {
    components: components.length,
    startupMs: of((s) => s.startupMs),
    sinceProcessStartMs: of((s) => s.sinceProcessStartMs),
    spawnToRunningMs: of((s) => s.spawnToRunningMs),
    beforeTreeMs: of((s) => s.beforeTreeMs),
    componentMs,
    slowest,
  };
}


export async function startupBench(options: BenchOptions) {
  const build = buildState(process.cwd());
  if (!build.current) throw new Error(`startup bench: ${build.reason}; it times the build (as npm start runs it): npm run build first`);
  const dir = mkdtempSync(join(tmpdir(), 'keel-bench-startup-'));
  const rows = [];
  for (const shape of [design, wide]) {
    const sum = shape.components.reduce((t, x) => t + x.startMs, 0);
    const critical = criticalPath(shape.components, (id) => shape.components.find((x) => x.id === id)!.startMs);
    const files = {
      parallel: join(dir, `${shape.name}-parallel.yaml`),
      sequential: join(dir, `${shape.name}-sequential.yaml`),
    };
    writeFileSync(files.parallel, configFor(shape, 'parallel'));
    writeFileSync(files.sequential, configFor(shape, 'sequential'));
    const samples = { parallel: [] as Timing[], sequential: [] as Timing[] };
    // Alternate the variants so drift on the machine hits both alike.
    for (let run = 1; run <= options.runs; run++) {
      for (const variant of ['parallel', 'sequential'] as const) {
        samples[variant].push(await timeOnce(files[variant]));
      }
      options.progress(`startup: ${shape.name} run ${run}/${options.runs}`);
    }
    const parallelMs = median(samples.parallel.map((s) => s.startupMs));
    const sequentialMs = median(samples.sequential.map((s) => s.startupMs));
    const speedup = sequentialMs / parallelMs;
    const idealSpeedup = sum / critical;
    rows.push({
      shape: shape.name,
      components: shape.components.length,
      sumOfDelaysMs: sum,
      criticalPathMs: critical,
      parallelMs,
      sequentialMs,
      parallelFromProcessStartMs: median(samples.parallel.map((s) => s.sinceProcessStartMs)),
      sequentialFromProcessStartMs: median(samples.sequential.map((s) => s.sinceProcessStartMs)),
      speedup,
      idealSpeedup,
      shareOfIdeal: speedup / idealSpeedup,
    });
  }
  const real = await realTree(dir, options);
  const target = (ms: number) => (ms <= REAL_TARGET_MS ? 'met' : '**missed**');
  const ratio = (f: (r: typeof real.compiled) => number) => `${fmt(f(real.source) / f(real.compiled), 2)}x`;
  const realRow = (runner: Runner) => {
    const r = real[runner];
    return `| real default tree, ${runner === 'compiled' ? 'compiled (dist/)' : 'sources through tsx'} | ${r.components} | ${fmt(r.startupMs)} ms | ${fmt(r.sinceProcessStartMs)} ms | ${fmt(r.spawnToRunningMs)} ms | ${fmt(r.beforeTreeMs)} ms | ${r.slowest} ${fmt(r.componentMs[r.slowest]!)} ms | ${target(r.startupMs)} / ${target(r.sinceProcessStartMs)} | ${fmt(THEIR_STARTUP_MS / r.startupMs, 1)}x / ${fmt(THEIR_STARTUP_MS / r.sinceProcessStartMs, 1)}x faster |`;
  };
  return {
    rows: { placeholders: rows, real },
    table: [
      '| tree | components | sum of delays | critical path | parallel start | one-by-one start | speedup | ideal (sum / critical) | share of ideal | process start to running (parallel / one-by-one) |',
      '|---|---|---|---|---|---|---|---|---|---|',
      ...rows.map(
        (r) =>
          `| ${r.shape} | ${r.components} | ${r.sumOfDelaysMs} ms | ${r.criticalPathMs} ms | ${r.parallelMs.toFixed(1)} ms | ${r.sequentialMs.toFixed(1)} ms | ${r.speedup.toFixed(2)}x | ${r.idealSpeedup.toFixed(2)}x | ${(100 * r.shareOfIdeal).toFixed(1)} % | ${r.parallelFromProcessStartMs} / ${r.sequentialFromProcessStartMs} ms |`,
      ),
      '',
      '| tree | components | tree start to all running | process start to all running | spawn to the running line | before the tree starts | slowest component | target <= 1 s (tree / process) | theirs 8 s (tree / process) |',
      '|---|---|---|---|---|---|---|---|---|',
      realRow('compiled'),
      realRow('source'),
      '',
      `Sources through tsx / compiled: ${ratio((r) => r.sinceProcessStartMs)} process start to all running, ${ratio((r) => r.beforeTreeMs)} before the tree starts, ${ratio((r) => r.startupMs)} tree start to all running.`,
      '',
      ...(['compiled', 'source'] as const).map(
        (runner) => `Each component's own start, ${runner} (median ms): ${Object.entries(real[runner].componentMs).map(([id, ms]) => `${id} ${fmt(ms)}`).join(', ')}.`,
      ),
    ].join('\n'),
  };
}
