/**
 * The published regime's rule (regime-tracker.ts): a change needs the
 * model's new state, confidently, on several frames in a row. First on a
 * hand-made two-state model whose state each frame is set by one input;
 * then the shipped model on a seeded simulated market it was not fitted
 * on, counted against the simulator's true regime.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readRegimeModel, regimeTracker, regimeSettings } from '../../src/actors/regime.js';
import { DEFAULT_FEATURE_OPTIONS, featureSchema } from '../../src/market/features.js';
import { FOLLOW_THE_MODEL, RegimeTracker, type RegimeStability } from '../../src/models/regime-tracker.js';
import type { JumpModelFile } from '../../src/models/sjm.js';
import { eachFrame } from '../../src/models/dataset.js';
import { simulateDataset } from '../../src/models/training-data.js';

/** Two states at -1 and +1 of one feature, a switch cost too small to hold a state: the model follows the input's sign. */
const SIGN: JumpModelFile = {
  format: 'keel.sjm',
  version: 1,
  k: 2,
  lambda: 0.01,
  continuous: false,
  features: ['x'],
  mean: [0],
  std: [1],
  clip: 5,
  centroids: [[-1], [1]],
  stateOrder: 'by x ascending',
  training: { rows: 0, objective: 0, iterations: 0, seed: 0 },
};

function run(rule: RegimeStability, inputs: readonly number[]): { states: number[]; switches: number } {
  const tracker = new RegimeTracker(SIGN, ['A'], { model: 'sign@1', intervalMs: 1000, labels: ['calm', 'volatile'], columns: Int32Array.of(0), width: 1, stability: rule });
  const frame = { at: 0, values: new Float64Array(1), warm: Uint8Array.of(1) };
  const states = inputs.map((x, t) => {
    frame.at = t * 1000;
    frame.values[0] = x;
    return tracker.step(frame).state[0]!;
  });
  return { states, switches: tracker.frame.switches };
}

test('following the model publishes every flip; the rule waits for confirmFrames frames in a row', () => {
  const blip = [-1, -1, 1, -1, -1, 1, 1, -1, 1, 1, 1, -1];
  assert.deepEqual(run(FOLLOW_THE_MODEL, blip).states, [0, 0, 1, 0, 0, 1, 1, 0, 1, 1, 1, 0]);
  const held = run({ minConfidence: 0, confirmFrames: 3 }, blip);
  assert.deepEqual(held.states, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1]);
  assert.equal(held.switches, 1);
});

test('a frame below minConfidence breaks the run, and its state is not published', () => {
  // At +-2 the model is 98 % sure; near 0 either state is close to 50 %.
  const rule = { minConfidence: 0.9, confirmFrames: 2 };
  assert.deepEqual(run(rule, [-2, 2, 0.001, 2, 2]).states, [0, 0, 0, 0, 1]);
  assert.deepEqual(run(rule, [-2, 0.001, 0.001, 0.001]).states, [0, 0, 0, 0]);
  assert.deepEqual(run({ ...rule, minConfidence: 0 }, [-2, 2, 0.001, 2, 2]).states, [0, 0, 1, 1, 1]);
});

test('a gap starts afresh: the first warm frame after it is published at once', () => {
  const tracker = new RegimeTracker(SIGN, ['A'], { model: 'sign@1', intervalMs: 1000, labels: ['calm', 'volatile'], columns: Int32Array.of(0), width: 1, stability: { minConfidence: 0, confirmFrames: 5 } });
  const step = (x: number, warm = 1) => tracker.step({ at: 0, values: Float64Array.of(x), warm: Uint8Array.of(warm) }).state[0];
  assert.equal(step(-1), 0);
  assert.equal(step(1), 0);
  assert.equal(step(1, 0), -1);
  assert.equal(step(1), 1);
  assert.equal(tracker.frame.switches, 0, 'a regime before a gap and one after it are not a switch');
});

test('the rule is refused when it is not one', () => {
  const make = (stability: RegimeStability) => new RegimeTracker(SIGN, ['A'], { model: 'sign@1', intervalMs: 1000, labels: ['calm', 'volatile'], columns: Int32Array.of(0), width: 1, stability });
  assert.throws(() => make({ minConfidence: 1.5, confirmFrames: 2 }), /minConfidence must be from 0 to 1, got 1.5/);
  assert.throws(() => make({ minConfidence: 0.5, confirmFrames: 0 }), /confirmFrames must be a whole number of at least 1, got 0/);
});

test('the shipped regime model on a seeded market it was not fitted on: switches near the true rate, agreement at least 0.894, no regime shorter than the rule allows', () => {
  const settings = regimeSettings.parse({ model: 'models/regime-sjm/manifest.json' });
  const read = readRegimeModel(settings.model);
  const rule = read.manifest.regime;
  assert.ok(rule, 'the shipped manifest states its rule');
  // The simulator's rate in config/default.yaml, which the model was fitted at; another seed than its training data's.
  const data = simulateDataset({ seed: 7, instruments: 4, seconds: 3 * 3600, sampleMs: 1000, horizonMs: 1000, updatesPerSecond: 50 });
  const schema = featureSchema(DEFAULT_FEATURE_OPTIONS);
  const published = regimeTracker(settings, read, data.symbols, schema);
  const followed = regimeTracker(settings, { ...read, manifest: { ...read.manifest, regime: undefined } }, data.symbols, schema);

  const n = data.symbols.length;
  const count = () => ({ agree: 0, frames: 0, switches: 0, shortStays: 0, last: new Int32Array(n).fill(-1), stay: new Int32Array(n) });
  const tallies = { truth: count(), published: count(), followed: count() };
  const add = (t: ReturnType<typeof count>, i: number, state: number, truth: number) => {
    t.frames++;
    if (state === truth) t.agree++;
    if (t.last[i]! >= 0 && t.last[i] !== state) {
      t.switches++;
      if (t.stay[i]! < rule.confirmFrames) t.shortStays++;
      t.stay[i] = 0;
    }
    t.stay[i]!++;
    t.last[i] = state;
  };
  eachFrame(data, (frame) => {
    const p = published.step(frame).state;
    const f = followed.step(frame).state;
    frame.row.forEach((r, i) => {
      if (r < 0) return;
      const truth = data.regime[r]!;
      add(tallies.truth, i, truth, truth);
      add(tallies.published, i, p[i]!, truth);
      add(tallies.followed, i, f[i]!, truth);
    });
  });
  const { truth, published: pub, followed: raw } = tallies;
  const report = `true switches ${truth.switches}, published ${pub.switches} (agreement ${(pub.agree / pub.frames).toFixed(3)}, ${pub.shortStays} short), model ${raw.switches} (agreement ${(raw.agree / raw.frames).toFixed(3)}, ${raw.shortStays} short)`;
  console.log(report);
  assert.ok(truth.switches >= 20, `a seeded run with enough true switches to count (${report})`);
  assert.ok(pub.switches <= 1.5 * truth.switches && pub.switches >= truth.switches / 1.5, `published switches within 1.5x the true count (${report})`);
  assert.ok(pub.agree / pub.frames >= 0.894, `agreement with the truth at least 0.894 (${report})`);
  // Every published regime but the first lasted at least the rule's frames, and the followed model did have shorter ones.
  assert.equal(pub.shortStays, 0, report);
  assert.ok(raw.shortStays > 0, `the model alone has stays shorter than ${rule.confirmFrames} frames for the rule to remove (${report})`);
});
