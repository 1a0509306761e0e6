/**
 * Startup: time to all components running, starting each as soon as its
 * dependencies are ready ('parallel') against one at a time ('sequential'),
 * in the same run, each in a fresh `keel run` process. Placeholders stand in
 * for the components with start delays like the real ones'.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { criticalPath, type TreeNode } from '../src/supervision/tree.js';
import { runKeel } from '../test/support/process.js';
import { median, type BenchOptions } from './stats.js';

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

async function timeOnce(configFile: string): Promise<Timing> {
  const keel = runKeel(['run', '--config', configFile]);
  const line = await keel.waitFor('keel running');
  keel.child.kill('SIGTERM');
  const code = await keel.exited;
  if (code !== 0) throw new Error(`keel run exited ${code}: ${keel.stderr.join('\n')}`);
  const { startupMs, sinceProcessStartMs } = JSON.parse(line) as Timing;
  return { startupMs, sinceProcessStartMs };
}


export async function startupBench(options: BenchOptions) {
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
  return {
    rows,
    table: [
      '| tree | components | sum of delays | critical path | parallel start | one-by-one start | speedup | ideal (sum / critical) | share of ideal | process start to running (parallel / one-by-one) |',
      '|---|---|---|---|---|---|---|---|---|---|',
      ...rows.map(
        (r) =>
          `| ${r.shape} | ${r.components} | ${r.sumOfDelaysMs} ms | ${r.criticalPathMs} ms | ${r.parallelMs.toFixed(1)} ms | ${r.sequentialMs.toFixed(1)} ms | ${r.speedup.toFixed(2)}x | ${r.idealSpeedup.toFixed(2)}x | ${(100 * r.shareOfIdeal).toFixed(1)} % | ${r.parallelFromProcessStartMs} / ${r.sequentialFromProcessStartMs} ms |`,
      ),
    ].join('\n'),
  };
}
