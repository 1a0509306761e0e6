/**
 * `npm run models`: keel's demo models, `keel models train --simulator` with
 * a fixed seed at the rate config/default.yaml runs the simulator, into
 * models/. Run it again and every file comes out the same, byte for byte;
 * `--check` rebuilds into a temp dir and fails if anything differs from
 * what is committed.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadData } from '../src/cli/models.js';
import { horizonLabel } from '../src/models/horizon.js';
import { modelsReadme, trainModels } from '../src/models/train.js';

const HELP = `npm run models [-- --out DIR] [-- --check]

Builds the demo models from a seeded simulation (4 instruments, 6 simulated
hours at 50 updates/s, one row per instrument per second) for horizons of
10 s, 5 min and 15 min, each model file with its manifest (inputs, sha256,
training data, horizon, held-out metrics, golden rows), into models/ (or
--out DIR). --check builds into a temp dir and exits 1 if any file differs
from models/. The same as keel models train --simulator --seed 20261121.`;

const SEED = 20_261_121;
const SIMULATOR = { seed: SEED, instruments: 4, hours: 6, updatesPerSecond: 50 };
const HORIZONS_MS = [10_000, 300_000, 900_000];
const HELD_OUT = 0.25;
const SCRIPT = 'npm run models (scripts/models.ts)';

const { values: flags } = parseArgs({ options: { out: { type: 'string' }, check: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } });
if (flags.help) {
  console.log(HELP);
  process.exit(0);
}
const out = flags.check ? mkdtempSync(join(tmpdir(), 'keel-models-')) : (flags.out ?? 'models');
const started = performance.now();
const progress = (line: string) => console.error(`[${((performance.now() - started) / 1000).toFixed(1)} s] ${line}`);

const data = await loadData({ files: [], simulator: SIMULATOR }, progress);
const report = trainModels(data, out, { seed: SEED, horizonsMs: HORIZONS_MS, heldOutShare: HELD_OUT, version: `seed-${SEED}`, script: SCRIPT, progress });
const intro =
  `Built by \`${SCRIPT}\` from ${data.description}, for horizons of ${HORIZONS_MS.map(horizonLabel).join(', ')}; ` +
  `the first ${Math.round((1 - HELD_OUT) * 100)} % of the simulated time trains, the rest is held out. Rebuilding gives these files byte for byte (\`npm run models -- --check\`). ` +
  'The predictor serves horizons side by side, each with its own tiers (`predictor.settings.horizons`), and the trader reads the one its `policy.horizon` names; ' +
  '`config/default.yaml` serves 10s alone: on this simulated market, a random walk past a few seconds, the 5m and 15m models do no better than the zero forecast (see Warnings).';
writeFileSync(join(out, 'README.md'), modelsReadme('keel demo models', intro, report));
progress(`done: ${report.built.map((b) => b.name).join(', ')} in ${out}`);

if (flags.check) {
  const differ = compareTrees('models', out);
  rmSync(out, { recursive: true, force: true });
  if (differ.length > 0) {
    console.error(`models/ differs from a fresh build: ${differ.join(', ')}`);
    process.exit(1);
  }
  console.error('models/ is exactly what the script builds');
}

function compareTrees(a: string, b: string): string[] {
  const files = (dir: string) => readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.includes('.')).sort();
  const names = new Set([...files(a), ...files(b)]);
  return [...names].filter((f) => {
    try {
      return !readFileSync(join(a, f)).equals(readFileSync(join(b, f)));
    } catch {
      return true;
    }
  });
}
