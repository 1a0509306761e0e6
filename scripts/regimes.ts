/**
 * `npm run regimes -- [--minutes N]`: the regime keel publishes, held live
 * against the simulator's own. The simulator runs in this process, so its
 * hidden regime can be read; keel's tree (IB link, subscriptions, books,
 * features, regime) talks to it over the TWS wire as in the daemon. Each
 * regime frame is compared with the truth at that moment, for the rule the
 * model's manifest states and, from the same frames, for the model followed
 * as it is.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createActor } from 'xstate';
import { stringify } from 'yaml';
import { readRegimeModel, regimeTracker, type RegimeSettings } from '../src/actors/regime.js';
import { Bus } from '../src/bus.js';
import { systemClock } from '../src/clock.js';
import { parseConfig } from '../src/config/load.js';
import { treeFromConfig } from '../src/daemon.js';
import { createLogger } from '../src/log.js';
import type { RegimeFrame } from '../src/models/regime-tracker.js';
import { ServiceTable } from '../src/services.js';
import { InstrumentUniverse } from '../src/sim/instruments.js';
import { VOLATILE } from '../src/sim/market.js';
import { TwsSimulator } from '../src/sim/server.js';
import { rootContext, supervisorMachine } from '../src/supervision/supervisor.js';
import { FEATURES_TOPIC, REGIME_TOPIC } from '../src/topics.js';
import { defaultConfigIn } from '../bench/default-config.js';

const HELP = `Usage: npm run regimes -- [--minutes N] [--seed N] [--model MANIFEST]

Runs the simulator and keel's market-data tree from config/default.yaml (IB
link, subscriptions, books, features, regime) for N real minutes, and counts,
per instrument, how often keel's regime agrees with the simulator's true one
and how many times each switched. Two rules are counted on the same frames:
the one the model's manifest states (what keel publishes) and the model
followed as it is. Market time is real time: true regimes last minutes, so
runs shorter than 20 minutes see few switches.

Options:
  --minutes N       how long to run (default 20)
  --seed N          the simulator's seed (default 1)
  --model MANIFEST  the jump model (default: the config's)
  -h, --help        this text`;

const { values } = parseArgs({ options: { minutes: { type: 'string' }, seed: { type: 'string' }, model: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
if (values.help) {
  console.log(HELP);
  process.exit(0);
}
const positive = (flag: string, text: string | undefined, fallback: number): number => {
  const n = text === undefined ? fallback : Number(text);
  if (!(n > 0) || !Number.isFinite(n)) {
    console.error(`regimes: --${flag} must be a number above 0, got '${text}'\nRun 'npm run regimes -- --help' for the options.`);
    process.exit(2);
  }
  return n;
};
const minutes = positive('minutes', values.minutes, 20);
const seed = Math.round(positive('seed', values.seed, 1));

const dir = mkdtempSync(join(tmpdir(), 'keel-regimes-'));
const raw = defaultConfigIn(dir);
const simSettings = raw.components.simulator!.settings as { updatesPerSecond: number };
const keep = ['journal', 'ib_connection', 'subscriptions', 'l2_microstructure', 'features', 'regime'];
for (const id of Object.keys(raw.components)) if (!keep.includes(id)) delete raw.components[id];
const c = raw.components;
raw.instance = 'regimes-check';
c.ib_connection!.dependsOn = ['journal'];
if (values.model) c.regime!.settings.model = values.model;

const log = createLogger({ level: 'warn', pretty: false });
const sim = new TwsSimulator({ seed, updatesPerSecond: simSettings.updatesPerSecond });
c.ib_connection!.settings.port = await sim.listen(0);
const config = parseConfig(stringify(raw), 'config/default.yaml (regimes check)');
const regime = config.components.regime!.settings as RegimeSettings;
const read = readRegimeModel(regime.model);
const bus = new Bus();
const services = new ServiceTable();
const failures: unknown[] = [];
const root = createActor(supervisorMachine, {
  clock: systemClock,
  systemId: 'root',
  input: rootContext({ instance: config.instance, settings: { ...treeFromConfig(config), services }, log, clock: systemClock, bus, fail: (e) => failures.push(e) }),
});

/** Per instrument: frames with a regime, frames agreeing with the truth, switches. */
class Tally {
  readonly frames: Int32Array;
  readonly agree: Int32Array;
  readonly switches: Int32Array;
  private readonly last: Int32Array;
  constructor(n: number) {
    this.frames = new Int32Array(n);
    this.agree = new Int32Array(n);
    this.switches = new Int32Array(n);
    this.last = new Int32Array(n).fill(-1);
  }
  add(i: number, state: number, truth: number): void {
    if (state < 0) return;
    this.frames[i]!++;
    if (state === truth) this.agree[i]!++;
    if (this.last[i]! >= 0 && this.last[i] !== state) this.switches[i]!++;
    this.last[i] = state;
  }
  total(a: Int32Array): number {
    return a.reduce((s, v) => s + v, 0);
  }
}

const running = new Promise<void>((resolve, reject) => {
  root.subscribe({ next: (s) => s.value === 'running' && resolve(), error: reject });
});
root.start();
await running;
const { symbols } = services.current('instruments')!;
const schema = services.current('featureEngine')!.schema;
/** The simulator's true regime of keel's instrument `i` now (calm until its book exists). */
const universe = new InstrumentUniverse();
const indexes = symbols.map((symbol) => {
  const instrument = universe.find(0, symbol, 'STK');
  if (!instrument) throw new Error(`the simulator does not list ${symbol}`);
  return instrument.index;
});
const truthOf = (i: number) => (sim.marketData.market.bookAt(indexes[i]!)?.regime === VOLATILE ? 1 : 0);
const published = new Tally(symbols.length);
const followed = new Tally(symbols.length);
const truth = new Tally(symbols.length);
// The same model with no rule of its own, on the same frames.
const model = regimeTracker(regime, { ...read, manifest: { ...read.manifest, regime: undefined } }, symbols, schema);
bus.subscribe(FEATURES_TOPIC, (f) => {
  if (f.intervalMs !== regime.intervalMs) return;
  const frame = model.step(f);
  for (let i = 0; i < symbols.length; i++) followed.add(i, frame.state[i]!, truthOf(i));
});
bus.subscribe(REGIME_TOPIC, (frame: RegimeFrame) => {
  for (let i = 0; i < symbols.length; i++) {
    truth.add(i, truthOf(i), truthOf(i));
    published.add(i, frame.state[i]!, truthOf(i));
  }
});

const rule = read.manifest.regime ? `confidence >= ${read.manifest.regime.minConfidence}, ${read.manifest.regime.confirmFrames} frames to confirm` : 'none in the manifest';
console.error(`${read.manifest.name}@${read.manifest.version} (rule: ${rule}) on the simulator (seed ${seed}, ${simSettings.updatesPerSecond} updates/s) for ${minutes} min: ${symbols.join(', ')}`);
const started = Date.now();
const progress = setInterval(() => {
  const m = (Date.now() - started) / 60_000;
  console.error(`[${m.toFixed(0)} min] true switches ${truth.total(truth.switches)}, published ${published.total(published.switches)}, model ${followed.total(followed.switches)}`);
}, 60_000);
await new Promise((resolve) => setTimeout(resolve, minutes * 60_000));
clearInterval(progress);
root.send({ type: 'shutdown' });
await sim.close();
rmSync(dir, { recursive: true, force: true });
if (failures.length > 0) {
  console.error(`regimes: the tree failed: ${failures.map(String).join('; ')}`);
  process.exit(1);
}

const row = (name: string, i?: number) => {
  const pick = (t: Tally, a: Int32Array) => (i === undefined ? symbols.reduce((sum, s, j) => sum + (fed.has(s) ? a[j]! : 0), 0) : a[i]!);
  const perHour = (t: Tally) => (pick(t, t.switches) / (pick(t, t.frames) * (regime.intervalMs / 3_600_000))).toFixed(1);
  const agreement = (t: Tally) => (pick(t, t.agree) / pick(t, t.frames)).toFixed(3);
  return `| ${name} | ${pick(truth, truth.frames)} | ${pick(truth, truth.switches)} (${perHour(truth)}/h) | ${pick(published, published.switches)} (${perHour(published)}/h) | ${agreement(published)} | ${pick(followed, followed.switches)} (${perHour(followed)}/h) | ${agreement(followed)} |`;
};
// The model reads trade intensity: an instrument without depth and prints is outside what it was fitted on.
const fed = new Set((c.subscriptions!.settings.instruments as { symbol: string; depth?: unknown; ticks?: string }[]).filter((e) => e.depth && e.ticks === 'AllLast').map((e) => e.symbol));
console.log('| instrument | frames | true switches | published switches | published agreement | model switches | model agreement |');
console.log('|---|---|---|---|---|---|---|');
symbols.forEach((s, i) => console.log(row(s, i)));
console.log(row(`all with depth and prints (${[...fed].join(', ')})`));
process.exit(0);
