/**
 * The shard tape, the shard outputs, the pure shard pipeline and the
 * trading node's merger: the data node's bus events split by shard and
 * replayed by a worker; a pipeline restored from a checkpoint goes on
 * exactly as the one that never stopped (the hand-over invariant).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Packr } from 'msgpackr';
import { DepthBatch } from '../../src/ib/depth-feed.js';
import { QuoteBoard } from '../../src/ib/quote-board.js';
import { TradeBatch } from '../../src/ib/trade-feed.js';
import { OrderBooks } from '../../src/market/books.js';
import { DEFAULT_THRESHOLDS, FeatureHealth } from '../../src/market/feature-health.js';
import { FeatureEngine } from '../../src/market/features.js';
import { writeBatch } from '../../src/market/lobster.js';
import { ASK, BID, INSERT, UPDATE } from '../../src/market/order-book.js';
import { RegimeTracker } from '../../src/models/regime-tracker.js';
import type { JumpModelFile } from '../../src/models/sjm.js';
import { Random } from '../../src/random.js';
import { decodeTape, TapeWriter, type BookSegment, type QuoteSegment, type TapeEntry, type TradeSegment } from '../../src/scaleout/market-tape.js';
import { decodeOutput, encodeOutput, type ShardOutput } from '../../src/scaleout/shard-output.js';
import { HEAD_FIELD, instrumentField, ShardPipeline, type PartsFactory, type PipelineParts } from '../../src/scaleout/shard-pipeline.js';
import { OutputMerger } from '../../src/scaleout/shard-reader.js';
import { shardOf } from '../../src/scaleout/shards.js';
import { TapeBooks } from '../../src/scaleout/tape-books.js';
import { single } from '../support/predictions.js';

const packr = new Packr({ useRecords: false });

// --- 1. TapeWriter ----------------------------------------------------------------

const UNIVERSE = ['SPY', 'QQQ', 'IWM', 'AAPL', 'MSFT', 'DIA', 'TLT'];
const UNIVERSE_BOOKED = [true, true, false, true, true, false, true];

test('TapeWriter splits the universe by shard, keeps the bus order and local numbers, and decodes to the same numbers', () => {
  // Shard 0: IWM; 1: SPY, DIA; 2: QQQ; 3: AAPL, MSFT, TLT.
  assert.deepEqual(
    UNIVERSE.map((s) => shardOf(s, 4)),
    [1, 2, 0, 3, 3, 1, 3],
  );
  const writer = new TapeWriter(UNIVERSE, UNIVERSE_BOOKED, 4, 100);
  assert.deepEqual(writer.shards, [0, 1, 2, 3]);
  const toTape = 1_000_000;

  // A book batch: TLT (shard 3, local 2) two-sided, SPY (shard 1, local 0) bids only.
  const books = new OrderBooks(UNIVERSE.length, 3);
  const depth = new DepthBatch(16);
  writeBatch(
    depth,
    [
      { position: 0, operation: INSERT, side: ASK, price: 90.02, size: 300 },
      { position: 0, operation: INSERT, side: BID, price: 90.0, size: 200 },
      { position: 1, operation: INSERT, side: BID, price: 89.99, size: 100 },
    ],
    0,
    3,
    6,
    500,
  );
  depth.instrument[depth.count] = 0;
  depth.position[depth.count] = 0;
  depth.operation[depth.count] = INSERT;
  depth.side[depth.count] = BID;
  depth.price[depth.count] = 400.5;
  depth.size[depth.count] = 7;
  depth.receivedAt[depth.count] = 510;
  depth.count++;
  books.apply(depth);
  writer.onBook(books, toTape);

  // Prints of AAPL, SPY, TLT, AAPL.
  const trades = new TradeBatch(8);
  [
    [3, 180.1, 10, 520],
    [0, 400.5, 3, 521],
    [6, 90.01, 50, 522],
    [3, 180.2, 20, 523],
  ].forEach(([i, price, size, at], n) => {
    trades.instrument[n] = i!;
    trades.price[n] = price!;
    trades.size[n] = size!;
    trades.receivedAt[n] = at!;
  });
  trades.count = 4;
  writer.onTrades(trades, toTape);

  // A level-1 quote of DIA (shard 1, local 1) whose bid size is not known yet.
  const board = new QuoteBoard(UNIVERSE, UNIVERSE_BOOKED.map((b) => !b));
  board.top(5, 350.1, 350.2, NaN, 40);
  board.changedAt = 530;
  writer.onQuotes(board, toTape);
  board.clearChanges();

  writer.onReset(6);
  writer.onReset(0);

  const asked = new Float64Array(UNIVERSE.length).fill(NaN);
  asked[6] = toTape + 400;
  const first = writer.tick(toTape + 550, asked);
  assert.equal(first.seq, Math.floor((toTape + 550) / 100));
  assert.deepEqual(
    first.entries.map((e) => e.shard),
    [0, 1, 2, 3],
    'one entry per shard with an instrument, quiet ones included',
  );
  const [s0, s1, s2, s3] = first.entries.map((e) => decodeTape(e.body)) as [TapeEntry, TapeEntry, TapeEntry, TapeEntry];

  // Quiet shards: their tick, their instruments, no segments.
  assert.deepEqual(s0.symbols, ['IWM']);
  assert.deepEqual(s0.booked, [false]);
  assert.deepEqual(s0.segments, []);
  assert.deepEqual(s2.symbols, ['QQQ']);
  assert.deepEqual(s2.segments, []);
  for (const e of [s0, s1, s2, s3]) {
    assert.equal(e.seq, first.seq);
    assert.equal(e.at, toTape + 550);
    assert.equal(e.tickMs, 100);
    assert.equal(e.format, 1);
  }

  // Shard 1: SPY, DIA; book, trades, quotes, reset.
  assert.equal(s1.shard, 1);
  assert.deepEqual(s1.symbols, ['SPY', 'DIA']);
  assert.deepEqual(s1.booked, [true, false]);
  assert.deepEqual(s1.depthAskedAt, Float64Array.of(NaN, NaN));
  assert.deepEqual(
    s1.segments.map((s) => s.kind),
    ['book', 'trades', 'quotes', 'reset'],
  );
  const b1 = s1.segments[0] as BookSegment;
  assert.deepEqual(b1.top, {
    instrument: Int32Array.of(0),
    bidPrice: Float64Array.of(400.5),
    bidSize: Float64Array.of(7),
    askPrice: Float64Array.of(NaN),
    askSize: Float64Array.of(NaN),
    at: Float64Array.of(toTape + 510),
  });
  assert.equal(b1.rows, 3);
  assert.deepEqual(b1.touched, Int32Array.of(0));
  assert.deepEqual(b1.count, Int32Array.of(0, 1));
  assert.deepEqual(b1.updatedAt, Float64Array.of(toTape + 510));
  assert.deepEqual(b1.price, books.books[0]!.price.slice(0, 6));
  assert.deepEqual(b1.size, books.books[0]!.size.slice(0, 6));
  assert.deepEqual(s1.segments[1], { kind: 'trades', instrument: Int32Array.of(0), price: Float64Array.of(400.5), size: Float64Array.of(3), at: Float64Array.of(toTape + 521) });
  assert.deepEqual(s1.segments[2], {
    kind: 'quotes',
    at: toTape + 530,
    instrument: Int32Array.of(1),
    bid: Float64Array.of(350.1),
    bidSize: Float64Array.of(NaN),
    ask: Float64Array.of(350.2),
    askSize: Float64Array.of(40),
  });
  assert.deepEqual(s1.segments[3], { kind: 'reset', instrument: 0 });

  // Shard 3: AAPL, MSFT, TLT; book (TLT's two top changes), trades, reset.
  assert.deepEqual(s3.symbols, ['AAPL', 'MSFT', 'TLT']);
  assert.deepEqual(s3.depthAskedAt, Float64Array.of(NaN, NaN, toTape + 400));
  assert.deepEqual(
    s3.segments.map((s) => s.kind),
    ['book', 'trades', 'reset'],
  );
  const b3 = s3.segments[0] as BookSegment;
  assert.deepEqual(b3.top.instrument, Int32Array.of(2, 2));
  assert.deepEqual(b3.top.bidPrice, Float64Array.of(NaN, 90));
  assert.deepEqual(b3.top.askPrice, Float64Array.of(90.02, 90.02));
  assert.deepEqual(b3.top.at, Float64Array.of(toTape + 500, toTape + 500));
  assert.deepEqual(b3.touched, Int32Array.of(2));
  assert.deepEqual(b3.count, Int32Array.of(1, 2));
  // OrderBook's layout: asks best first in [0, rows), bids best first in [rows, 2 rows).
  assert.deepEqual(b3.price.subarray(0, 1), Float64Array.of(90.02));
  assert.deepEqual(b3.price.subarray(3, 5), Float64Array.of(90, 89.99));
  assert.deepEqual(b3.size.subarray(3, 5), Float64Array.of(200, 100));
  const t3 = s3.segments[1] as TradeSegment;
  assert.deepEqual(t3.instrument, Int32Array.of(0, 2, 0));
  assert.deepEqual(t3.price, Float64Array.of(180.1, 90.01, 180.2));
  assert.deepEqual(t3.size, Float64Array.of(10, 50, 20));
  assert.deepEqual(t3.at, Float64Array.of(toTape + 520, toTape + 522, toTape + 523));
  assert.deepEqual(s3.segments[2], { kind: 'reset', instrument: 2 });

  // Decoded columns are typed arrays of their own, aligned.
  for (const column of [b3.top.instrument, b3.top.bidPrice, b3.price, b3.count, t3.price, t3.instrument, (s1.segments[2] as QuoteSegment).bid, s3.depthAskedAt]) {
    assert.ok(column instanceof Float64Array || column instanceof Int32Array);
    assert.equal(column.byteOffset, 0);
    assert.equal(column.buffer.byteLength, column.byteLength);
  }

  // The draft empties at the tick; the next tick in the same 100 ms still rises.
  const second = writer.tick(toTape + 580);
  assert.equal(second.seq, first.seq + 1);
  for (const e of second.entries) {
    const d = decodeTape(e.body);
    assert.equal(d.seq, second.seq);
    assert.deepEqual(d.segments, []);
    assert.ok(d.depthAskedAt.every((v) => Number.isNaN(v)), 'not asked');
  }
  // Back on the clock once it has caught up: floor(at / tickMs).
  assert.equal(writer.tick(toTape + 850).seq, Math.floor((toTape + 850) / 100));
  assert.equal(writer.tick(toTape + 860).seq, Math.floor((toTape + 850) / 100) + 1);
  // An earlier time never takes the sequence back.
  assert.equal(writer.tick(toTape).seq, Math.floor((toTape + 850) / 100) + 2);

  assert.throws(() => new TapeWriter(UNIVERSE, UNIVERSE_BOOKED, 4, 0), /tape: tickMs must be a positive integer, got 0/);
  assert.throws(() => new TapeWriter(UNIVERSE, UNIVERSE_BOOKED, 4, 2.5), /tape: tickMs must be a positive integer, got 2.5/);
});

// --- 2. decodeTape refuses garbage -----------------------------------------------------

test('decodeTape refuses garbage, naming what is wrong', () => {
  const writer = new TapeWriter(['SPY'], [true], 1, 100);
  const trades = new TradeBatch(1);
  trades.count = 1;
  trades.price[0] = 1;
  writer.onTrades(trades, 0);
  const good = packr.unpack(writer.tick(1000).entries[0]!.body) as Record<string, unknown>;
  const bad = (change: Record<string, unknown>) => packr.pack({ ...good, ...change });
  assert.doesNotThrow(() => decodeTape(bad({})));

  assert.throws(() => decodeTape(packr.pack({ symbols: ['abcdefgh'] }).subarray(0, 6)), /^Error: tape entry: not msgpack \(/);
  assert.throws(() => decodeTape(packr.pack(5)), { message: 'tape entry: not a map' });
  assert.throws(() => decodeTape(bad({ format: 2 })), { message: 'tape entry: format 2, this keel reads format 1' });
  assert.throws(() => decodeTape(bad({ format: undefined })), /tape entry: format undefined, this keel reads format 1/);
  assert.throws(() => decodeTape(bad({ symbols: [1] })), { message: 'tape entry: symbols is not a list of strings' });
  assert.throws(() => decodeTape(bad({ symbols: 'SPY' })), { message: 'tape entry: symbols is not a list of strings' });
  assert.throws(() => decodeTape(bad({ booked: [] })), { message: 'tape entry: booked does not match symbols' });
  assert.throws(() => decodeTape(bad({ segments: {} })), { message: 'tape entry: segments is not a list' });
  assert.throws(() => decodeTape(bad({ asked: Buffer.alloc(16) })), { message: 'tape entry: asked does not match symbols' });
  assert.throws(() => decodeTape(bad({ asked: Buffer.alloc(5) })), { message: 'tape entry: asked is not a float64 array' });
  assert.throws(() => decodeTape(bad({ seq: '7' })), { message: 'tape entry: seq is not a number' });
  assert.throws(() => decodeTape(bad({ segments: [{ k: 'bogus' }] })), { message: 'tape entry: segment 0 has unknown kind bogus' });
  const segment = (good.segments as Record<string, unknown>[])[0]!;
  assert.throws(() => decodeTape(bad({ segments: [segment, { ...segment, i: Buffer.alloc(3) }] })), { message: 'tape entry: segment 1 instruments is not an int32 array' });
  assert.throws(() => decodeTape(bad({ segments: [{ ...segment, f: [] }] })), { message: 'tape entry: segment 0 column 0 is not a float64 array' });
  assert.throws(() => decodeTape(bad({ segments: [{ k: 'reset', i: 'x' }] })), { message: 'tape entry: segment 0 instrument is not a number' });
});

// --- 3. shard outputs ----------------------------------------------------------------

function output(extra: Partial<ShardOutput> = {}): ShardOutput {
  return {
    shard: 5,
    seq: 17_000_000_123,
    at: 1_700_000_012_345.5,
    symbols: ['SPY', 'QQQ'],
    features: ['mid', 'spread_bps', 'ofi'],
    values: Float64Array.of(400.5, 1.2, NaN, NaN, -0, Infinity),
    warm: Uint8Array.of(1, 0),
    problems: [
      ['stale QQQ', 'QQQ data is 2.0 s old'],
      ['nan ofi', 'ofi is NaN 5 % of the time'],
    ],
    regime: undefined,
    predictions: undefined,
    ...extra,
  };
}

test('encodeOutput / decodeOutput round trip, with and without regime and predictions', () => {
  const plain = output();
  const decoded = decodeOutput(encodeOutput(plain));
  assert.deepEqual(decoded, plain);
  assert.ok(decoded.values instanceof Float64Array && decoded.warm instanceof Uint8Array);
  // Without the optional fields at all, as a worker's tick off the regime's clock has them.
  const bare = Object.fromEntries(Object.entries(plain).filter(([key]) => key !== 'regime' && key !== 'predictions')) as unknown as ShardOutput;
  assert.equal('regime' in bare, false);
  assert.deepEqual(decodeOutput(encodeOutput(bare)), plain);

  const full = output({
    regime: { labels: ['calm', 'turbulent'], state: Int32Array.of(1, -1) },
    predictions: {
      horizons: [
        { horizonMs: 10_000, value: Float64Array.of(0.0003, NaN), tier: ['base', ''], models: ['m@1', ''] },
        { horizonMs: 300_000, value: Float64Array.of(-2.5, NaN), tier: ['base', ''], models: ['m-5m@1', ''] },
      ],
      faults: ['QQQ: not warm'],
    },
  });
  const back = decodeOutput(encodeOutput(full));
  assert.deepEqual(back, full);
  assert.ok(back.regime!.state instanceof Int32Array && back.predictions!.horizons.every((h) => h.value instanceof Float64Array));
  assert.equal(back.values.byteOffset, 0);
});

test('decodeOutput refuses malformed outputs, naming what is wrong', () => {
  const good = packr.unpack(encodeOutput(output({ regime: { labels: ['a'], state: Int32Array.of(0, 0) } }))) as Record<string, unknown>;
  const bad = (change: Record<string, unknown>) => packr.pack({ ...good, ...change });
  assert.doesNotThrow(() => decodeOutput(bad({})));
  assert.throws(() => decodeOutput(encodeOutput(output()).subarray(0, 10)), /^Error: shard output: not msgpack \(/);
  assert.throws(() => decodeOutput(packr.pack('x')), { message: 'shard output: not a map' });
  assert.throws(() => decodeOutput(bad({ format: 9 })), { message: 'shard output: format 9, this keel reads format 2' });
  assert.throws(() => decodeOutput(bad({ symbols: ['SPY', 2] })), { message: 'shard output: symbols is not a list of strings' });
  assert.throws(() => decodeOutput(bad({ predictions: { horizons: [{ value: Buffer.alloc(16), tier: ['', ''], models: ['', ''] }], faults: [] } })), { message: 'shard output: a prediction horizon has no horizonMs' });
  assert.throws(() => decodeOutput(bad({ predictions: { horizons: [{ horizonMs: 10_000, value: Buffer.alloc(8), tier: [''], models: [''] }], faults: [] } })), { message: 'shard output: the 10000 ms predictions do not match symbols' });
  assert.throws(() => decodeOutput(bad({ features: null })), { message: 'shard output: features is not a list of strings' });
  assert.throws(() => decodeOutput(bad({ values: Buffer.alloc(12) })), { message: 'shard output: values is malformed' });
  assert.throws(() => decodeOutput(bad({ values: Buffer.alloc(8) })), { message: 'shard output: values or warm do not match symbols and features' });
  assert.throws(() => decodeOutput(bad({ warm: Buffer.alloc(3) })), { message: 'shard output: values or warm do not match symbols and features' });
  assert.throws(() => decodeOutput(bad({ problems: 'none' })), { message: 'shard output: problems is not a list' });
  assert.throws(() => decodeOutput(bad({ problems: [['only a key']] })), { message: 'shard output: a problem is not a [key, reason] pair' });
  assert.throws(() => decodeOutput(bad({ seq: '1' })), { message: 'shard output: seq is not a number' });
  assert.throws(() => decodeOutput(bad({ regime: { labels: ['a'], state: Buffer.alloc(3) } })), { message: 'shard output: regime state is malformed' });
  assert.throws(() => decodeOutput(bad({ predictions: { horizons: [], faults: [1] } })), { message: 'shard output: faults is not a list of strings' });
});

// --- 4. the pure pipeline and the hand-over invariant -------------------------------------

const T0 = 1_700_000_000_000;
const TICK_MS = 100;
const SYMBOLS = ['SPY', 'QQQ', 'IWM'];
/** SPY and QQQ have books; IWM only level-1 quotes. */
const BOOKED = [true, true, false];
const TICKS = 300;
const CUT = 137;

/**
 * A data node's tape of one shard (shardCount 1): random-walk books, prints
 * and quotes every tick, QQQ silent from tick 120 to 160 (a stale condition
 * across the cut), SPY's book reset at tick 200 and asked again.
 */
function tape(symbols = SYMBOLS, ticks = TICKS, from = 0): Buffer[] {
  const random = new Random(7);
  const writer = new TapeWriter(symbols, BOOKED, 1, TICK_MS);
  const rows = 5;
  const books = new OrderBooks(symbols.length, rows);
  const depth = new DepthBatch(64);
  const trades = new TradeBatch(8);
  const board = new QuoteBoard(symbols, BOOKED.map((b) => !b));
  const mids = [400, 350, 200];
  const fresh = [true, true];
  const asked = Float64Array.of(T0 - 500, T0 - 500, NaN);
  const bodies: Buffer[] = [];
  for (let t = from; t < from + ticks; t++) {
    const mono = t * TICK_MS;
    for (let i = 0; i < 2; i++) {
      if (i === 1 && t >= 120 && t < 160) continue;
      mids[i]! += Math.round(random.normal()) / 100;
      const mid = mids[i]!;
      const ops = fresh[i]
        ? Array.from({ length: 2 * rows }, (_, n) => ({ position: n >> 1, operation: INSERT, side: n & 1 ? BID : ASK, price: mid + (n & 1 ? -1 : 1) * (1 + (n >> 1)) / 100, size: 100 + n }))
        : [
            { position: 0, operation: UPDATE, side: ASK, price: mid + 0.01, size: 1 + Math.floor(random.next() * 500) },
            { position: 0, operation: UPDATE, side: BID, price: mid - 0.01, size: 1 + Math.floor(random.next() * 500) },
            ...(random.next() < 0.3 ? [{ position: 2, operation: UPDATE, side: ASK, price: mid + 0.03, size: 1 + Math.floor(random.next() * 900) }] : []),
          ];
      fresh[i] = false;
      writeBatch(depth, ops, 0, ops.length, i, mono + 10 + i);
      books.apply(depth);
      writer.onBook(books, T0);
    }
    trades.count = 0;
    for (let n = Math.floor(random.next() * 4); n > 0; n--) {
      const i = Math.floor(random.next() * 3);
      if (i === 1 && t >= 120 && t < 160) continue;
      const k = trades.count++;
      trades.instrument[k] = i;
      trades.price[k] = mids[i]! + (random.next() - 0.5) / 50;
      trades.size[k] = 1 + Math.floor(random.next() * 300);
      trades.receivedAt[k] = mono + 20 + k;
    }
    if (trades.count > 0) writer.onTrades(trades, T0);
    mids[2]! += Math.round(random.normal()) / 100;
    board.top(2, mids[2]! - 0.01, mids[2]! + 0.01, random.next() < 0.05 ? NaN : 10 + Math.floor(random.next() * 90), 20);
    board.changedAt = mono + 30;
    writer.onQuotes(board, T0);
    board.clearChanges();
    if (t === 200) {
      books.reset(0);
      writer.onReset(0);
      fresh[0] = true;
      asked[0] = T0 + mono + 40;
    }
    const { seq, entries } = writer.tick(T0 + mono + 50, asked);
    assert.equal(seq, T0 / TICK_MS + t);
    bodies.push(entries[0]!.body);
  }
  return bodies;
}

const OPTIONS = { baseMs: TICK_MS, volHalfLivesMs: [1000, 5000], returnHorizonsMs: [500, 1000], flowHalfLifeMs: 1000 };

const REGIME_MODEL: JumpModelFile = {
  format: 'keel.sjm',
  version: 1,
  features: ['spread_bps', 'rv_1s'],
  k: 2,
  lambda: 1.5,
  continuous: false,
  mean: [0.5, 0],
  std: [0.5, 1],
  clip: 3,
  centroids: [
    [-0.5, -0.5],
    [1, 1.2],
  ],
  stateOrder: 'calm first',
  training: { rows: 0, objective: 0, iterations: 0, seed: 0 },
};

function factory(withRegime: boolean): PartsFactory {
  return async (symbols, booked) => {
    const engine = new FeatureEngine(symbols.length, OPTIONS);
    const parts: { -readonly [K in keyof PipelineParts]: PipelineParts[K] } = {
      engine,
      samplesMs: [TICK_MS, 1000],
      health: new FeatureHealth(symbols, engine.schema, { thresholds: { ...DEFAULT_THRESHOLDS, window: 20 }, advisory: [], maxDataAgeMs: 1000, booked }),
    };
    if (withRegime) {
      const columns = Int32Array.from(REGIME_MODEL.features, (f) => engine.schema.features.indexOf(f));
      const tracker = new RegimeTracker(REGIME_MODEL, symbols, { model: 'test@1', intervalMs: 1000, labels: ['calm', 'turbulent'], columns, width: engine.schema.features.length });
      parts.regime = { intervalMs: 1000, labels: ['calm', 'turbulent'], step: (f) => tracker.step(f), saveState: () => tracker.saveState(), loadState: (s) => tracker.loadState(s) };
    }
    return parts;
  };
}

/** Checkpoint fields as hex: Buffers from msgpackr carry a property that deepEqual would compare. */
const hex = (fields: ReadonlyMap<string, Buffer>) => new Map([...fields].map(([field, bytes]) => [field, bytes.toString('hex')]));

async function run(pipeline: ShardPipeline, bodies: readonly Buffer[]): Promise<ShardOutput[]> {
  const outputs: ShardOutput[] = [];
  for (const body of bodies) outputs.push(await pipeline.apply(decodeTape(body)));
  return outputs;
}

test('a pipeline restored from a checkpoint goes on exactly as the one that never stopped', async () => {
  const bodies = tape();
  const first = decodeTape(bodies[0]!);
  assert.deepEqual(first.symbols, SYMBOLS);
  assert.ok(
    bodies.some((b) => decodeTape(b).segments.some((s) => s.kind === 'reset')),
    'a reset on the tape',
  );

  for (const withRegime of [true, false]) {
    const build = factory(withRegime);
    const a = await ShardPipeline.create(0, first.symbols, first.booked, build);
    const whole = await run(a, bodies);

    const b = await ShardPipeline.create(0, first.symbols, first.booked, build);
    await run(b, bodies.slice(0, CUT));
    const checkpoint = b.checkpoint('1-0');
    const { pipeline: c, input } = await ShardPipeline.restore(0, checkpoint, build);
    assert.equal(input, '1-0');
    assert.equal(c.seq, b.seq);
    assert.equal(c.lastAt, b.lastAt);
    assert.deepEqual(c.symbols, SYMBOLS);
    assert.deepEqual(hex(c.checkpoint('1-0')), hex(checkpoint), 'restored as it was saved');
    const rest = await run(c, bodies.slice(CUT));

    assert.equal(rest.length, TICKS - CUT);
    rest.forEach((o, k) => {
      const expected = whole[CUT + k]!;
      assert.equal(o.seq, expected.seq);
      assert.deepEqual(o.values, expected.values, `values at tick ${CUT + k}`);
      assert.deepEqual(o.warm, expected.warm, `warm at tick ${CUT + k}`);
      assert.deepEqual(o.problems, expected.problems, `problems at tick ${CUT + k}`);
      assert.deepEqual(o, expected, `output at tick ${CUT + k}`);
    });
    assert.deepEqual(hex(a.checkpoint('2-0')), hex(c.checkpoint('2-0')), 'the same state, byte for byte');
    // Without the checkpoint the same entries give other outputs: the state carried is what matters.
    const cold = await run(await ShardPipeline.create(0, first.symbols, first.booked, build), bodies.slice(CUT));
    assert.notDeepEqual(
      cold.map((o) => [o.values, o.warm, o.problems]),
      rest.map((o) => [o.values, o.warm, o.problems]),
    );

    // The test is not vacuous: the stale QQQ straddles the cut, values move, regimes come on their clock.
    assert.ok(
      whole[CUT]!.problems.some(([key]) => key === 'stale QQQ'),
      'stale QQQ at the cut',
    );
    assert.ok(!whole.at(-1)!.problems.some(([key]) => key === 'stale QQQ'), 'QQQ fresh again');
    assert.deepEqual(whole.at(-1)!.warm, Uint8Array.of(1, 1, 1));
    assert.ok(whole.at(-1)!.values.some((v) => Number.isNaN(v)) && whole.at(-1)!.values.some((v) => Number.isFinite(v) && v !== 0));
    const regimes = whole.filter((o) => o.regime);
    if (withRegime) {
      assert.equal(regimes.length, TICKS / 10, 'one regime per 1 s clock tick');
      assert.ok(regimes.every((o) => o.seq % 10 === 0));
      assert.ok(
        regimes.some((o) => o.regime!.state.some((state) => state >= 0)),
        'some instrument in a regime',
      );
    } else assert.equal(regimes.length, 0);
  }
});

test('apply refuses a tick already applied and an entry for other instruments; restore refuses other parts', async () => {
  const bodies = tape(SYMBOLS, 20);
  const first = decodeTape(bodies[0]!);
  const pipeline = await ShardPipeline.create(0, first.symbols, first.booked, factory(false));
  await run(pipeline, bodies.slice(0, 10));
  const before = pipeline.checkpoint('1-0');
  const last = T0 / TICK_MS + 9;
  await assert.rejects(pipeline.apply(decodeTape(bodies[9]!)), { message: `shard 0: tick ${last} is not after the last applied ${last}` });
  await assert.rejects(pipeline.apply(decodeTape(bodies[3]!)), { message: `shard 0: tick ${last - 6} is not after the last applied ${last}` });
  const other = decodeTape(tape(['SPY', 'QQQ', 'DIA'], 1, 15)[0]!);
  assert.equal(other.seq, last + 6);
  assert.equal(pipeline.fits(other), false);
  await assert.rejects(pipeline.apply(other), { message: `shard 0: tick ${last + 6} lists other instruments than the pipeline's` });
  const rebooked = { ...decodeTape(bodies[10]!), booked: [true, true, true] };
  await assert.rejects(pipeline.apply(rebooked), /lists other instruments than the pipeline's/);
  assert.deepEqual(hex(pipeline.checkpoint('1-0')), hex(before), 'refused entries change nothing');
  await pipeline.apply(decodeTape(bodies[10]!));
  assert.equal(pipeline.seq, last + 1);

  // Another tick than the first sampling clock.
  const slow: PartsFactory = async (symbols, booked) => ({ ...(await factory(false)(symbols, booked)), samplesMs: [200] });
  const wrongClock = await ShardPipeline.create(0, first.symbols, first.booked, slow);
  await assert.rejects(wrongClock.apply(first), { message: "shard 0: the tape ticks every 100 ms; this worker's first sampling clock is 200 ms: they must be equal" });

  // A checkpoint restores only into the same set of parts.
  await assert.rejects(ShardPipeline.restore(3, before, factory(true)), {
    message: 'shard 3: the checkpoint holds 2 part states, this worker runs 3 parts (different regime or predictor settings?)',
  });
  const withRegime = await ShardPipeline.create(0, first.symbols, first.booked, factory(true));
  await withRegime.apply(first);
  await assert.rejects(ShardPipeline.restore(3, withRegime.checkpoint('1-0'), factory(false)), /shard 3: the checkpoint holds 3 part states, this worker runs 2 parts/);
  const head = (body: unknown) => new Map([[HEAD_FIELD, packr.pack(body)]]);
  await assert.rejects(ShardPipeline.restore(4, head({ head: { symbols: 'SPY' }, shared: Buffer.alloc(0) }), factory(false)), { message: 'shard 4: the checkpoint is malformed' });
  await assert.rejects(ShardPipeline.restore(4, new Map(), factory(false)), { message: "shard 4: the checkpoint has no 'head' field" });
  const withoutQQQ = new Map(before);
  withoutQQQ.delete(instrumentField('QQQ'));
  await assert.rejects(ShardPipeline.restore(4, withoutQQQ, factory(false)), { message: 'shard 4: the checkpoint has no state for QQQ' });
});

test("when the shard's instruments change, those that stay keep their state and new ones start fresh", async () => {
  const bodies = tape();
  const first = decodeTape(bodies[0]!);
  const build = factory(true);
  const whole = await run(await ShardPipeline.create(0, first.symbols, first.booked, build), bodies);
  const b = await ShardPipeline.create(0, first.symbols, first.booked, build);
  await run(b, bodies.slice(0, CUT));
  const checkpoint = b.checkpoint('1-0');
  assert.deepEqual([...checkpoint.keys()], [HEAD_FIELD, 'i:SPY', 'i:QQQ', 'i:IWM'], 'a field per instrument');

  // Rows move with their instruments: IWM and SPY change places, QQQ leaves, DIA joins.
  const moved = ['IWM', 'DIA', 'SPY'];
  const bookedOf = (symbol: string) => (symbol === 'IWM' ? false : true);
  const { pipeline: r } = await ShardPipeline.restore(0, checkpoint, build, moved, moved.map(bookedOf));
  const fresh = await ShardPipeline.create(0, moved, moved.map(bookedOf), build);
  const after = r.checkpoint('1-0');
  assert.deepEqual([...after.keys()], [HEAD_FIELD, 'i:IWM', 'i:DIA', 'i:SPY']);
  for (const kept of ['i:IWM', 'i:SPY']) assert.deepEqual(hex(after).get(kept), hex(checkpoint).get(kept), `${kept} carried over`);
  assert.deepEqual(hex(after).get('i:DIA'), hex(fresh.checkpoint('1-0')).get('i:DIA'), 'DIA starts fresh');
  assert.equal(r.seq, b.seq);

  // IWM's place taken by DIA from the cut on: SPY and QQQ go on exactly as if nothing changed, DIA starts cold.
  const renamed = ['SPY', 'QQQ', 'DIA'];
  const { pipeline: c } = await ShardPipeline.restore(0, checkpoint, build, renamed, BOOKED);
  const rest: ShardOutput[] = [];
  for (const body of bodies.slice(CUT)) rest.push(await c.apply({ ...decodeTape(body), symbols: renamed }));
  const width = whole[0]!.features.length;
  rest.forEach((o, k) => {
    const expected = whole[CUT + k]!;
    assert.deepEqual(o.values.slice(0, 2 * width), expected.values.slice(0, 2 * width), `SPY and QQQ features at tick ${CUT + k}`);
    assert.deepEqual(o.warm.slice(0, 2), expected.warm.slice(0, 2));
    if (expected.regime) assert.deepEqual(o.regime!.state.slice(0, 2), expected.regime.state.slice(0, 2), `SPY and QQQ regimes at tick ${CUT + k}`);
  });
  assert.equal(whole[CUT]!.warm[2], 1, 'IWM was warm at the cut');
  assert.equal(rest[0]!.warm[2], 0, 'DIA in its place is not');
});

// --- 5. OutputMerger -------------------------------------------------------------------

/** Trading node's universe over 4 shards: IWM 0; SPY, DIA 1; QQQ 2; AAPL 3. */
const NODE = ['SPY', 'QQQ', 'IWM', 'AAPL', 'DIA'];

function shardOutput(shard: number, seq: number, at: number, symbols: string[], value: number[], problems: [string, string][] = []): ShardOutput {
  return {
    shard,
    seq,
    at,
    symbols,
    features: ['mid'],
    values: new Float64Array(symbols.length).fill(1),
    warm: new Uint8Array(symbols.length).fill(1),
    problems,
    predictions: { horizons: [{ horizonMs: 10_000, value: Float64Array.from(value), tier: symbols.map(() => 'base'), models: symbols.map(() => 'm@1') }], faults: [] },
  };
}

const sameNumbers = (actual: Float64Array, expected: number[], message: string) => assert.deepEqual(actual, Float64Array.from(expected), message);

test('OutputMerger: predictions by symbol, stale shards by halt scope, worker problems, redis, out-of-order outputs', () => {
  assert.deepEqual(
    NODE.map((s) => shardOf(s, 4)),
    [1, 2, 0, 3, 1],
  );
  const startedAt = 10_000;
  for (const halt of ['all', 'instruments'] as const) {
    const merger = new OutputMerger(NODE, 4, 1_000, halt, startedAt);
    assert.deepEqual(merger.shards, [0, 1, 2, 3]);

    // Shard 1 lists DIA before SPY, and an instrument this node does not trade.
    merger.onOutput(shardOutput(1, 105, 10_400, ['DIA', 'XLF', 'SPY'], [0.2, 0.9, 0.1]));
    merger.onOutput(shardOutput(2, 100, 9_000, ['QQQ'], [0.3], [['stale QQQ', 'QQQ data is 3.0 s old']]));
    merger.onOutput(shardOutput(3, 104, 10_300, ['AAPL'], [0.4], [['nan ofi', 'ofi is NaN']]));
    // Older and equal ticks of shard 1 are ignored.
    merger.onOutput(shardOutput(1, 104, 10_450, ['DIA', 'XLF', 'SPY'], [-1, -1, -1], [['x', 'y']]));
    merger.onOutput(shardOutput(1, 105, 10_450, ['DIA', 'XLF', 'SPY'], [-1, -1, -1], [['x', 'y']]));
    // One for a shard this node has no instrument in.
    merger.onOutput(shardOutput(9, 1, 10_450, ['ZZZ'], [5]));

    // At 10.5 s: shard 2 is 1.5 s old (stale), shard 0 was never heard from but only for 0.5 s.
    const view = merger.view(10_500);
    assert.deepEqual(
      view.shards.map((s) => [s.shard, s.seq, s.fresh, s.outputs]),
      [
        [0, NaN, true, 0],
        [1, 105, true, 1],
        [2, 100, false, 1],
        [3, 104, true, 1],
      ],
    );
    assert.equal(view.shards[1]!.ageMs, 100);
    assert.equal(view.shards[0]!.ageMs, 500);
    assert.deepEqual(view.shards[1]!.symbols, ['SPY', 'DIA']);
    const expected = new Map<string, string>();
    if (halt === 'all') expected.set('shard s2 stale', 'shard 2 (QQQ): outputs are 1.5 s old (limit 1.0 s): its worker died or fell behind, or the data node stopped');
    // A stale shard's own problems are not its worker's word any more: only fresh shards'.
    expected.set('s3 nan ofi', 'shard 3: ofi is NaN');
    assert.deepEqual(view.problems, expected, halt);

    const p = merger.predictions(10_500, 77);
    assert.deepEqual(p.symbols, NODE);
    sameNumbers(single(p).value, [0.1, NaN, NaN, 0.4, 0.2], `stale QQQ and never-heard IWM are NaN (${halt})`);
    assert.deepEqual(single(p).tier, ['base', 'base', '', 'base', 'base']);
    assert.equal(p.at, 77);

    // At 11.5 s: shard 0 has been silent since the start for 1.5 s; 1 and 3 went stale too.
    const late = merger.view(11_500);
    assert.deepEqual(
      late.shards.map((s) => s.fresh),
      [false, false, false, false],
    );
    if (halt === 'all') {
      assert.deepEqual([...late.problems.keys()], ['shard s0 stale', 'shard s1 stale', 'shard s2 stale', 'shard s3 stale']);
      assert.equal(late.problems.get('shard s0 stale'), 'shard 0 (IWM): no output for 1.5 s (limit 1.0 s): its worker died or fell behind, or the data node stopped');
    } else assert.deepEqual(late.problems, new Map());
    sameNumbers(single(merger.predictions(11_500, 0)).value, [NaN, NaN, NaN, NaN, NaN], 'all stale');

    // Shard 2 catches up: its predictions and its worker's problems come back.
    merger.onOutput(shardOutput(2, 110, 11_400, ['QQQ'], [0.35], [['stale QQQ', 'QQQ data is 1.1 s old']]));
    assert.equal(merger.view(11_500).problems.get('s2 stale QQQ'), 'shard 2: QQQ data is 1.1 s old');
    sameNumbers(single(merger.predictions(11_500, 0)).value, [NaN, 0.35, NaN, NaN, NaN], 'shard 2 fresh again');

    // Redis down, then back.
    merger.onRedis('connect ECONNREFUSED 127.0.0.1:6379');
    assert.equal(merger.view(11_500).problems.get('cluster redis'), 'Redis of the shard streams unreachable: connect ECONNREFUSED 127.0.0.1:6379');
    merger.onRedis(undefined);
    assert.equal(merger.view(11_500).problems.has('cluster redis'), false);
  }
});

test('OutputMerger: a shard never heard from is stale once freshnessMs has passed since the start', () => {
  const merger = new OutputMerger(['SPY'], 4, 2_000, 'all', 50_000);
  assert.equal(merger.view(52_000).problems.size, 0, 'exactly at the bound: fresh');
  assert.deepEqual([...merger.view(52_001).problems.keys()], ['shard s1 stale']);
  assert.equal(merger.regime(1000, 0), undefined, 'no regime before a worker sent one');
});

test('TapeBooks: a tape with deeper books fills shallower ones best first, maps instruments and shifts times', () => {
  const rows = 3;
  const asks = [101, 102, 103];
  const bids = [100, 99, 98];
  const segment: BookSegment = {
    kind: 'book',
    top: { instrument: Int32Array.of(1), bidPrice: Float64Array.of(100), bidSize: Float64Array.of(5), askPrice: Float64Array.of(101), askSize: Float64Array.of(7), at: Float64Array.of(1_000) },
    rows,
    touched: Int32Array.of(1),
    updatedAt: Float64Array.of(1_000),
    count: Int32Array.of(3, 3),
    price: Float64Array.from([...asks, ...bids]),
    size: Float64Array.from([7, 8, 9, 5, 6, 4]),
  };
  // Tape instrument 0 is not kept here; tape instrument 1 is our instrument 0.
  const tape = new TapeBooks(1, 2);
  const books = tape.onBook(segment, Int32Array.of(-1, 0), -900)!;
  const book = books.books[0]!;
  assert.equal(books.touchedCount, 1);
  assert.equal(books.tops.count, 1);
  assert.equal(books.tops.at[0], 100);
  assert.equal(book.bestAsk(), 101);
  assert.equal(book.bestBid(), 100);
  assert.deepEqual([book.count[0], book.count[1]], [2, 2]);
  assert.deepEqual(Array.from(book.price), [101, 102, 100, 99]);
  assert.equal(book.updatedAt, 100);
  assert.equal(tape.onBook({ ...segment, touched: Int32Array.of(0), top: { ...segment.top, instrument: Int32Array.of(0) } }, Int32Array.of(-1, 0), 0), undefined, 'a segment of instruments not kept gives nothing');
});
