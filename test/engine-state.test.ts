/**
 * Checkpoints of the shard pipeline's engines: an engine restored from a
 * packed state in a fresh object goes on exactly as the one that never
 * stopped, bit for bit (deepStrictEqual on typed arrays is Object.is per
 * element: NaN equals NaN, -0 is not 0).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Packr } from 'msgpackr';
import pino from 'pino';
import { packStates, restoreArrays, rowsOf, sharedOf, unpackStates, withRows, type EngineState, type Restorable } from '../src/engine-state.js';
import { DepthBatch } from '../src/ib/depth-feed.js';
import { QuoteBoard } from '../src/ib/quote-board.js';
import { TradeBatch } from '../src/ib/trade-feed.js';
import { OrderBooks } from '../src/market/books.js';
import { DEFAULT_THRESHOLDS, FeatureHealth } from '../src/market/feature-health.js';
import { FeatureEngine, featureSchema, type FeatureFrame } from '../src/market/features.js';
import { writeBatch } from '../src/market/lobster.js';
import { ASK, BID, INSERT, UPDATE } from '../src/market/order-book.js';
import { FrameHistory } from '../src/models/inference/history.js';
import { WRITING } from '../src/models/inference/packing.js';
import { TieredPredictor } from '../src/models/predictor.js';
import type { ModelRegistry } from '../src/models/registry.js';
import { RegimeTracker } from '../src/models/regime-tracker.js';
import type { JumpModelFile } from '../src/models/sjm.js';
import { Random } from '../src/random.js';

/** Through the wire and back, as a shard checkpoint goes. */
const throughWire = (engine: Restorable): EngineState => unpackStates(packStates([engine.saveState()]))[0]!;

test('a packed state keeps every array type and every number, NaN, ±Infinity and -0 included, in fresh aligned arrays', () => {
  const arrays = [
    Float64Array.of(NaN, Infinity, -Infinity, -0, 1.5, Number.MIN_VALUE),
    Float32Array.of(NaN, -Infinity, 0.1),
    Int32Array.of(-1, 2 ** 31 - 1),
    Uint32Array.of(2 ** 32 - 1),
    Int16Array.of(-32768),
    Uint16Array.of(65535),
    Int8Array.of(-128, 127),
    Uint8Array.of(0, 255, 7),
    new Float64Array(0),
  ];
  const numbers = [NaN, Infinity, -Infinity, -0, 0, 3, 2 ** 53, 0.1];
  const [a, b] = unpackStates(packStates([{ arrays, numbers }, { arrays: [], numbers: [] }]));
  assert.deepEqual(a!.arrays, arrays);
  assert.deepEqual(a!.numbers, numbers);
  assert.deepEqual(b, { arrays: [], numbers: [] });
  for (const array of a!.arrays) {
    assert.equal(array.byteOffset, 0);
    assert.equal(array.buffer.byteLength, array.byteLength, 'a buffer of its own');
  }
});

test('malformed packed states are refused, naming what is wrong', () => {
  const packr = new Packr({ useRecords: false });
  const numbers = Buffer.alloc(0);
  assert.throws(() => unpackStates(packr.pack({ a: [] })), /^Error: engine states: expected a list of states$/);
  assert.throws(() => unpackStates(packr.pack([{ a: 1, n: numbers }])), /engine state 0: 'a' must be a list of arrays/);
  assert.throws(() => unpackStates(packr.pack([{ a: [], n: [1] }])), /engine state 0: 'n' must be the bytes of its numbers/);
  assert.throws(() => unpackStates(packr.pack([{ a: [{ t: 'f16', b: Buffer.alloc(2) }], n: numbers }])), /engine state 0 array 0: type must be one of f64, .*, got f16/);
  assert.throws(() => unpackStates(packr.pack([{ a: [{ t: 'f64', b: Buffer.alloc(12) }], n: numbers }])), /engine state 0 array 0: 12 bytes are not a whole number of f64 values/);
  assert.throws(() => unpackStates(packr.pack([{ a: [], n: Buffer.alloc(3) }])), /engine state 0 numbers: 3 bytes/);
});

test('restoreArrays checks the count, each type and length, and the numbers before it writes anything', () => {
  const into = [new Float64Array(2), new Int32Array(2)];
  const check = (state: EngineState, message: string) => {
    assert.throws(() => restoreArrays('Thing', into, state, 1), { message });
    assert.deepEqual(into, [new Float64Array(2), new Int32Array(2)], 'untouched');
  };
  check({ arrays: [Float64Array.of(1, 2)], numbers: [0] }, 'Thing: state has 1 arrays, expected 2');
  check({ arrays: [Float64Array.of(1, 2), Float64Array.of(1, 2)], numbers: [0] }, 'Thing: state array 1 is Float64Array[2], expected Int32Array[2]');
  check({ arrays: [Float64Array.of(1, 2), Int32Array.of(1, 2, 3)], numbers: [0] }, 'Thing: state array 1 is Int32Array[3], expected Int32Array[2]');
  check({ arrays: [Float64Array.of(1, 2), Int32Array.of(1, 2)], numbers: [] }, 'Thing: state has 0 numbers, expected 1');
  restoreArrays('Thing', into, { arrays: [Float64Array.of(NaN, -0), Int32Array.of(-1, 1)], numbers: [7] }, 1);
  assert.deepEqual(into, [Float64Array.of(NaN, -0), Int32Array.of(-1, 1)]);
});

// --- FeatureEngine: two booked instruments and a quotes-only one, books, trades, quotes and ticks.

const OPTIONS = { baseMs: 100, volHalfLivesMs: [1000, 5000], returnHorizonsMs: [500, 1000], flowHalfLifeMs: 1000 };
const SYMBOLS = ['SPY', 'QQQ', 'IWM'];

/** Book updates, trades, quotes and a tick every 100 ms, the same for a given step whoever plays it. */
function market() {
  const books = new OrderBooks(2, 10);
  const depth = new DepthBatch(64);
  const trades = new TradeBatch(16);
  const board = new QuoteBoard(SYMBOLS, [false, false, true]);
  const apply = (engine: FeatureEngine | undefined, instrument: number, at: number, ops: { position: number; operation: number; side: number; price: number; size: number }[]) => {
    writeBatch(depth, ops, 0, ops.length, instrument, at);
    books.apply(depth);
    engine?.onBook(books);
  };
  /** Plays steps [from, to) into `engine` (undefined: only the books move, to replay what a restored engine had seen). */
  const play = (engine: FeatureEngine | undefined, from: number, to: number) => {
    for (let step = from; step < to; step++) {
      const random = new Random(step + 1);
      const at = step * 100;
      for (let i = 0; i < 2; i++) {
        const drift = Math.round(random.normal() * 2) / 100;
        const ops =
          step === 0
            ? Array.from({ length: 20 }, (_, n) => ({ position: n >> 1, operation: INSERT, side: n & 1 ? BID : ASK, price: 100 + (n & 1 ? -1 : 1) * (1 + (n >> 1)) / 100, size: 100 }))
            : [
                { position: 0, operation: UPDATE, side: ASK, price: 100.01 + drift, size: 1 + Math.floor(random.next() * 500) },
                { position: 0, operation: UPDATE, side: BID, price: 99.99 + drift, size: random.next() < 0.1 ? 0 : 1 + Math.floor(random.next() * 500) },
              ];
        apply(engine, i, at + 10 * i, ops);
      }
      trades.count = 0;
      for (let n = 0; n < 3; n++) {
        const i = Math.floor(random.next() * 3);
        trades.instrument[n] = i;
        // Some prints at the mid, where the tick rule remembers the last side.
        trades.price[n] = random.next() < 0.3 ? 100 : 100 + (random.next() - 0.5) / 20;
        trades.size[n] = 1 + Math.floor(random.next() * 300);
        trades.receivedAt[n] = at + 20 + n;
        trades.count++;
      }
      engine?.onTrades(trades);
      board.bid[2] = 50 + random.normal() / 100;
      board.ask[2] = board.bid[2]! + 0.02;
      board.bidSize[2] = random.next() < 0.05 ? NaN : 10;
      board.askSize[2] = 20;
      board.changed[0] = 2;
      board.changedCount = 1;
      board.changedAt = at + 30;
      engine?.onQuotes(board);
      if (step === 45) engine?.reset(1);
      engine?.tick(at + 50);
    }
  };
  return { play };
}

test('rows by instrument: split out, and put back in another order with new instruments fresh; wrong rows refused', () => {
  // Three instruments: a row of 2 values each, a flag each, a shared array, and a shared number.
  const state: EngineState = { arrays: [Float64Array.of(1, 2, 3, 4, 5, 6), Uint8Array.of(7, 8, 9), Int32Array.of(42)], numbers: [5], rows: [true, true, false] };
  assert.deepEqual(rowsOf(state, 3, 1), [Float64Array.of(3, 4), Uint8Array.of(8)]);
  assert.deepEqual(sharedOf(state), { arrays: [Int32Array.of(42)], numbers: [5] });
  // The new layout: instrument 2, a new one, instrument 0.
  const fresh: EngineState = { arrays: [new Float64Array(6).fill(NaN), new Uint8Array(3), new Int32Array(1)], numbers: [0], rows: [true, true, false] };
  const moved = withRows('test', fresh, 3, sharedOf(state), [rowsOf(state, 3, 2), undefined, rowsOf(state, 3, 0)]);
  assert.deepEqual(moved.arrays, [Float64Array.of(5, 6, NaN, NaN, 1, 2), Uint8Array.of(9, 0, 7), Int32Array.of(42)]);
  assert.deepEqual(moved.numbers, [5]);
  assert.deepEqual(fresh.arrays[0], new Float64Array(6).fill(NaN), 'the fresh state is copied, not written');
  assert.throws(() => withRows('test', fresh, 3, sharedOf(state), [[Float64Array.of(1), Uint8Array.of(1)], undefined, undefined]), { message: "test: instrument 0's row 0 is not Float64Array[2]" });
  assert.throws(() => withRows('test', fresh, 3, sharedOf(state), [[Float64Array.of(1, 2)], undefined, undefined]), { message: "test: instrument 0's row 1 is not Uint8Array[1]" });
  assert.throws(() => withRows('test', { ...fresh, rows: undefined }, 3, sharedOf(state), [undefined, undefined, undefined]), { message: 'test: its state has no rows by instrument' });
  assert.throws(() => withRows('test', fresh, 3, { arrays: [], numbers: [5] }, [undefined, undefined, undefined]), /test: state has 0 arrays, expected 1/);
});

test('FeatureEngine: restored from a checkpoint in a fresh engine, it goes on exactly as one that never stopped', () => {
  const a = new FeatureEngine(3, OPTIONS);
  market().play(a, 0, 60);

  const b = new FeatureEngine(3, OPTIONS);
  const bMarket = market();
  bMarket.play(b, 0, 30);
  const state = throughWire(b);
  const c = new FeatureEngine(3, OPTIONS);
  c.loadState(state);
  assert.deepEqual(c.values, b.values);
  // c's books stand where b's do: the checkpoint carries the engine, its books are theirs to restore.
  bMarket.play(c, 30, 60);

  assert.deepEqual(c.values, a.values);
  assert.ok(a.values.some((v) => Number.isNaN(v)) && a.values.some((v) => v !== 0 && Number.isFinite(v)), 'a mix of known and unknown features');
  const frame = (engine: FeatureEngine) => {
    const values = new Float64Array(engine.values.length);
    const warm = new Uint8Array(3);
    engine.copyTo(values, warm, 5_950);
    return { values, warm };
  };
  assert.deepEqual(frame(c), frame(a));
  assert.deepEqual(frame(a).warm, Uint8Array.of(1, 1, 1));
  assert.deepEqual(c.saveState(), a.saveState());
});

test('FeatureEngine refuses the state of an engine with another instrument count, naming the array', () => {
  const c = new FeatureEngine(3, OPTIONS);
  const w = c.width;
  assert.throws(() => c.loadState(throughWire(new FeatureEngine(2, OPTIONS))), { message: `FeatureEngine: state array 0 is Float64Array[${2 * w}], expected Float64Array[${3 * w}]` });
  assert.ok(c.values.every((v) => Number.isNaN(v)), 'untouched');
});

// --- FeatureHealth: zeros, NaNs, staleness, a stall and a silent feed.

const SCHEMA = { name: 'test', version: 1, features: ['a', 'b', 'c'] };

function health(symbols = SYMBOLS) {
  return new FeatureHealth(symbols, SCHEMA, { thresholds: { ...DEFAULT_THRESHOLDS, window: 20 }, advisory: ['c'], maxDataAgeMs: 1000, booked: symbols.map((_, i) => i !== 2) });
}

function judge(h: FeatureHealth, from: number, to: number): void {
  const values = new Float64Array(9);
  const warm = new Uint8Array(3);
  const lastDataAt = new Float64Array(3);
  for (let step = from; step < to; step++) {
    const random = new Random(step + 1);
    // A stall of 2.5 s at step 10.
    const now = step * 100 + (step >= 10 ? 2_500 : 0);
    for (let k = 0; k < 9; k++) {
      const r = random.next();
      values[k] = r < 0.25 * (k % 3) ? 0 : r > 0.97 ? NaN : r > 0.96 ? Infinity : 1 + r;
    }
    for (let i = 0; i < 3; i++) warm[i] = step > 2 + i ? 1 : 0;
    h.observe(values, warm, now);
    // QQQ's data stops between steps 15 and 40.
    lastDataAt.set([now - 50, step >= 15 && step < 40 ? 15 * 100 + 2_500 : now - 30, now]);
    h.sweep(lastDataAt, 0, now + 10);
    if (step === 25) h.feedSilent('QQQ', now + 20, { kind: 'depth', silentForMs: 1_234, wallAt: Date.UTC(2026, 0, 2, 14, 30, 5) });
  }
}

const healthView = (h: FeatureHealth) => ({
  scores: h.scores,
  status: h.status,
  counts: [h.zeroCount, h.badCount, h.consecutiveZeros, h.lastBadAt],
  changed: h.changed.slice(0, h.changedCount),
  problems: [...h.problems],
  quality: h.qualityPct(),
  explained: Array.from(h.scores, (_, k) => h.explain(k)),
});

test('FeatureHealth: restored from a checkpoint, its scores, statuses and problems (in their words) go on as if it never stopped', () => {
  for (const cut of [15, 30]) {
    const a = health();
    judge(a, 0, 60);
    const b = health();
    judge(b, 0, cut);
    const c = health();
    c.loadState(throughWire(b));
    assert.deepEqual(healthView(c), healthView(b), `right after the load, cut at ${cut}`);
    judge(c, cut, 60);
    assert.deepEqual(healthView(c), healthView(a), `cut at ${cut}`);
    assert.deepEqual(c.saveState(), a.saveState());
  }
  // The cut at 30 carried a stale QQQ (worded with its age when it went stale) and its silent feed.
  const b = health();
  judge(b, 0, 30);
  const c = health();
  c.loadState(throughWire(b));
  assert.deepEqual([...c.problems.keys()].filter((key) => !key.startsWith('nan') && !key.startsWith('feature')), ['stale QQQ', 'silent QQQ']);
  assert.match(c.problems.get('silent QQQ')!, /^QQQ depth feed sent nothing for 1\.2 s while other feeds ticked; requested again at 14:30:05 UTC/);
});

test('FeatureHealth refuses another universe or garbled words, and is left as it was', () => {
  const c = health();
  judge(c, 0, 10);
  const before = healthView(c);
  const other = health(['SPY', 'QQQ', 'IWM', 'DIA']);
  assert.throws(() => c.loadState(throughWire(other)), { message: 'FeatureHealth: state array 0 is Float64Array[12], expected Float64Array[9]' });
  const state = throughWire(c);
  const garbled = { arrays: [...state.arrays.slice(0, -1), new TextEncoder().encode('[["", ""], []]')], numbers: state.numbers };
  assert.throws(() => c.loadState(garbled), { message: "FeatureHealth: state array 13 is not the words of 3 instruments' silences and of the problems" });
  assert.deepEqual(healthView(c), before);
});

// --- RegimeTracker, with a discrete and a continuous model.

function model(continuous: boolean): JumpModelFile {
  return {
    format: 'keel.sjm',
    version: 1,
    features: ['x', 'y'],
    k: 2,
    lambda: 1.5,
    continuous,
    ...(continuous ? { gridStep: 0.25 } : {}),
    mean: [0, 1],
    std: [1, 2],
    clip: 3,
    centroids: [
      [-0.5, -0.5],
      [1, 1.2],
    ],
    stateOrder: 'calm first',
    training: { rows: 0, objective: 0, iterations: 0, seed: 0 },
  };
}

function tracker(continuous: boolean, symbols = SYMBOLS): RegimeTracker {
  return new RegimeTracker(model(continuous), symbols, { model: 'test@1', intervalMs: 1000, labels: ['calm', 'turbulent'], columns: Int32Array.of(0, 2), width: 3 });
}

function regimes(t: RegimeTracker, from: number, to: number): { at: number; state: Int32Array; probabilities: Float64Array; switches: number }[] {
  const values = new Float64Array(9);
  const warm = new Uint8Array(3);
  const frame: FeatureFrame = { intervalMs: 1000, at: 0, wallAt: 0, schema: SCHEMA, symbols: SYMBOLS, values, warm, base: false };
  const seen = [];
  for (let step = from; step < to; step++) {
    const random = new Random(step + 1);
    // Regimes that persist for a while, a gap for IWM, a non-finite input now and then.
    const turbulent = Math.floor(step / 7) % 2 === 1;
    for (let k = 0; k < 9; k++) values[k] = (turbulent ? 1.5 : -0.5) + random.normal() * 0.8 + (random.next() < 0.03 ? NaN : 0);
    warm.set([1, step % 13 === 5 ? 0 : 1, step >= 20 && step < 24 ? 0 : 1]);
    frame.at = step * 1000;
    const f = t.step(frame);
    seen.push({ at: f.at, state: f.state.slice(), probabilities: f.probabilities.slice(), switches: f.switches });
  }
  return seen;
}

test('RegimeTracker: restored from a checkpoint, its frames go on as if it never stopped', () => {
  for (const continuous of [false, true]) {
    const a = tracker(continuous);
    const whole = regimes(a, 0, 50);
    const b = tracker(continuous);
    regimes(b, 0, 22);
    const c = tracker(continuous);
    c.loadState(throughWire(b));
    assert.deepEqual({ ...c.frame }, { ...b.frame });
    assert.deepEqual(regimes(c, 22, 50), whole.slice(22), continuous ? 'continuous' : 'discrete');
    assert.ok(whole.at(-1)!.switches > 0, 'regimes switched');
    assert.deepEqual(c.saveState(), a.saveState());
  }
});

test('RegimeTracker refuses the state of another universe, naming the array', () => {
  const c = tracker(false);
  assert.throws(() => c.loadState(throughWire(tracker(false, ['SPY', 'QQQ']))), { message: 'RegimeTracker: state array 0 is Float64Array[4], expected Float64Array[6]' });
});

// --- FrameHistory, and the predictor that holds it.

function frames(h: { observe(values: Float64Array, warm: Uint8Array): void }, from: number, to: number): void {
  const values = new Float64Array(6);
  const warm = new Uint8Array(3);
  for (let step = from; step < to; step++) {
    const random = new Random(step + 1);
    for (let k = 0; k < 6; k++) values[k] = random.next() < 0.05 ? NaN : random.normal();
    for (let i = 0; i < 3; i++) warm[i] = random.next() < 0.15 ? 0 : 1;
    h.observe(values, warm);
  }
}

const historyView = (h: FrameHistory) => ({ values: h.views.values, streak: h.streak, latest: h.latest, writing: Atomics.load(h.views.control, WRITING) });

test('FrameHistory: restored from a checkpoint, its frames, streaks, count and write marker go on as if it never stopped', () => {
  const a = new FrameHistory(3, 2, 4);
  frames(a, 0, 40);
  const b = new FrameHistory(3, 2, 4);
  frames(b, 0, 25);
  const c = new FrameHistory(3, 2, 4);
  c.loadState(throughWire(b));
  assert.deepEqual(historyView(c), historyView(b));
  frames(c, 25, 40);
  assert.deepEqual(historyView(c), historyView(a));
  assert.equal(c.latest, 39);

  // An empty history restores as a fresh one.
  const fresh = new FrameHistory(3, 2, 4);
  c.loadState(throughWire(new FrameHistory(3, 2, 4)));
  assert.deepEqual(historyView(c), historyView(fresh));
  assert.throws(() => c.loadState(throughWire(new FrameHistory(3, 2, 5))), { message: 'FrameHistory: state array 0 is Float64Array[78], expected Float64Array[72]' });
});

test('TieredPredictor checkpoints its history', () => {
  const schema = featureSchema({ baseMs: 100, volHalfLivesMs: [], returnHorizonsMs: [], flowHalfLifeMs: 1000 });
  const predictor = () => new TieredPredictor({} as ModelRegistry, schema, SYMBOLS, { horizons: [{ horizonMs: 10_000, tiers: { base: [], sectors: {}, sectorCacheSize: 1 } }], historyFrames: 3 }, pino({ level: 'silent' }), () => 0);
  const w = schema.features.length;
  const observe = (p: TieredPredictor, from: number, to: number) => {
    const values = new Float64Array(3 * w);
    for (let step = from; step < to; step++) {
      values.fill(step);
      p.observe({ intervalMs: 100, at: step * 100, wallAt: 0, schema, symbols: SYMBOLS, values, warm: Uint8Array.of(1, step % 4 === 0 ? 0 : 1, 1), base: true });
    }
  };
  const a = predictor();
  observe(a, 0, 30);
  const b = predictor();
  observe(b, 0, 17);
  const c = predictor();
  c.loadState(throughWire(b));
  observe(c, 17, 30);
  assert.deepEqual(historyView(c.history), historyView(a.history));
});
