/**
 * One shard's compute, as a shard worker runs it: the tape's events into
 * the features, the tick into frames, the base frame into feature health,
 * the regime's and the predictor's clocks into their frames; one output
 * per tick (shard-output.ts).
 *
 * Everything is driven by the tape, never by this process's clock: event
 * times, tick times and the sampling clocks (a frame of interval I on every
 * tick whose seq is a multiple of I / tickMs) all come from the entries. So
 * a pipeline restored from a checkpoint and fed the entries after it gives
 * exactly what the uninterrupted one would have: the hand-over invariant.
 *
 * The parts are built by the caller (the shard worker component reads
 * their settings and models), so this module stays pure.
 */
import { Packr } from 'msgpackr';
import { packStates, rowsOf, sharedOf, unpackStates, withRows, type Restorable } from '../engine-state.js';
import { QuoteBoard } from '../ib/quote-board.js';
import type { FeatureHealth } from '../market/feature-health.js';
import { featureFrames, type FeatureEngine, type FeatureFrame } from '../market/features.js';
import type { PredictionFrame } from '../models/predictor.js';
import type { RegimeFrame } from '../models/regime-tracker.js';
import type { TapeEntry, TapeSegment } from './market-tape.js';
import type { ShardOutput } from './shard-output.js';
import { TapeBooks } from './tape-books.js';

const packr = new Packr({ useRecords: false });

export interface PipelineParts {
  readonly engine: FeatureEngine & Restorable;
  /** Feature sampling clocks, ms; the first is the tick. */
  readonly samplesMs: readonly number[];
  readonly health: FeatureHealth & Restorable;
  readonly regime?: { readonly intervalMs: number; readonly labels: readonly string[]; step(frame: FeatureFrame): RegimeFrame } & Restorable;
  readonly predictor?: { readonly intervalMs: number; predict(frame: FeatureFrame): Promise<PredictionFrame> } & Restorable;
  /** Frees what the parts hold (model sessions). */
  close?(): Promise<void>;
}

/** Builds the parts for a shard's instruments. */
export type PartsFactory = (symbols: readonly string[], booked: readonly boolean[]) => Promise<PipelineParts>;

/** The fields of a checkpoint other than the parts' states. */
interface CheckpointHead {
  /** The id of the last tape entry the state includes: a take-over re-reads the tape after it. */
  readonly input: string;
  readonly symbols: string[];
  readonly booked: boolean[];
  readonly seq: number;
  readonly lastAt: number;
  readonly since: number;
}

/** The checkpoint field of the shard's instruments and clocks. */
export const HEAD_FIELD = 'head';
/** The checkpoint field of an instrument's state. */
export const instrumentField = (symbol: string) => `i:${symbol}`;

const sameList = <T>(a: readonly T[], b: readonly T[]) => a.length === b.length && a.every((v, i) => v === b[i]);

export class ShardPipeline {
  /** The last tick applied (-Infinity before the first). */
  seq = -Infinity;
  /** Tape time of the last applied tick. */
  lastAt = NaN;
  /** Tape time of the first tick: feature health measures stalls from it. */
  private since = NaN;
  private readonly tape: TapeBooks;
  /** The tape numbers the shard's instruments as the pipeline does. */
  private readonly identity: Int32Array;
  private readonly quotes: QuoteBoard;
  private readonly frames: FeatureFrame[];

  private constructor(
    readonly shard: number,
    readonly symbols: readonly string[],
    readonly booked: readonly boolean[],
    private readonly parts: PipelineParts,
  ) {
    const { engine } = parts;
    this.tape = new TapeBooks(symbols.length);
    this.identity = Int32Array.from(symbols, (_, i) => i);
    this.quotes = new QuoteBoard(symbols, symbols.map(() => true));
    this.frames = featureFrames(engine, symbols, parts.samplesMs);
  }

  static async create(shard: number, symbols: readonly string[], booked: readonly boolean[], build: PartsFactory): Promise<ShardPipeline> {
    return new ShardPipeline(shard, symbols, booked, await build(symbols, booked));
  }

  /**
   * A pipeline in the state a checkpoint holds (see `checkpoint`), and the id
   * of the last tape entry in it. Given other instruments than the
   * checkpoint's (the data node's universe changed), those it shares with
   * the checkpoint keep their state and the new ones start fresh, in every
   * part whose state has rows by instrument; a part without them (feature
   * health) starts afresh whole.
   */
  static async restore(shard: number, fields: ReadonlyMap<string, Buffer>, build: PartsFactory, symbols?: readonly string[], booked?: readonly boolean[]): Promise<{ pipeline: ShardPipeline; input: string }> {
    const bytes = fields.get(HEAD_FIELD);
    if (!bytes) throw new Error(`shard ${shard}: the checkpoint has no '${HEAD_FIELD}' field`);
    const { head, shared } = packr.unpack(bytes) as { head: CheckpointHead; shared: Buffer };
    if (!head || typeof head.input !== 'string' || !Array.isArray(head.symbols) || !Array.isArray(head.booked) || typeof head.seq !== 'number') throw new Error(`shard ${shard}: the checkpoint is malformed`);
    const to = symbols ?? head.symbols;
    const toBooked = booked ?? head.booked;
    const same = sameList(to, head.symbols) && sameList(toBooked, head.booked);
    const pipeline = await ShardPipeline.create(shard, to, toBooked, build);
    const restorable = pipeline.restorable();
    const sharedStates = unpackStates(shared);
    if (sharedStates.length !== restorable.length) throw new Error(`shard ${shard}: the checkpoint holds ${sharedStates.length} part states, this worker runs ${restorable.length} parts (different regime or predictor settings?)`);
    const kept = new Set(head.symbols);
    const rows = to.map((symbol) => {
      if (!kept.has(symbol)) return undefined;
      const field = fields.get(instrumentField(symbol));
      if (!field) throw new Error(`shard ${shard}: the checkpoint has no state for ${symbol}`);
      const states = unpackStates(field);
      if (states.length !== restorable.length) throw new Error(`shard ${shard}: the checkpoint's state for ${symbol} has ${states.length} parts, expected ${restorable.length}`);
      return states;
    });
    restorable.forEach((part, p) => {
      const fresh = part.saveState();
      if (!fresh.rows) {
        if (same) part.loadState(sharedStates[p]!);
        return;
      }
      part.loadState(withRows(`shard ${shard} part ${p}`, fresh, to.length, sharedStates[p]!, rows.map((r) => r?.[p]!.arrays)));
    });
    pipeline.seq = head.seq;
    pipeline.lastAt = head.lastAt;
    pipeline.since = head.since;
    return { pipeline, input: head.input };
  }

  /** True when `entry` is for the instruments this pipeline was built for. */
  fits(entry: TapeEntry): boolean {
    return sameList(entry.symbols, this.symbols) && sameList(entry.booked, this.booked);
  }

  /**
   * The whole state after the last applied tick, as checkpoint fields: the
   * head (instruments, clocks, `input`: the id of the last tape entry in it,
   * and each part's state that is not by instrument), and per instrument its
   * rows of every part.
   */
  checkpoint(input: string): Map<string, Buffer> {
    const head: CheckpointHead = { input, symbols: [...this.symbols], booked: [...this.booked], seq: this.seq, lastAt: this.lastAt, since: this.since };
    const states = this.restorable().map((p) => p.saveState());
    const fields = new Map([[HEAD_FIELD, packr.pack({ head, shared: packStates(states.map(sharedOf)) })]]);
    this.symbols.forEach((symbol, i) => fields.set(instrumentField(symbol), packStates(states.map((state) => ({ arrays: rowsOf(state, this.symbols.length, i), numbers: [] })))));
    return fields;
  }

  async close(): Promise<void> {
    await this.parts.close?.();
  }

  /** Applies one tick's entry; an entry at or before the last tick is refused (it was applied already). */
  async apply(entry: TapeEntry): Promise<ShardOutput> {
    if (!(entry.seq > this.seq)) throw new Error(`shard ${this.shard}: tick ${entry.seq} is not after the last applied ${this.seq}`);
    if (!this.fits(entry)) throw new Error(`shard ${this.shard}: tick ${entry.seq} lists other instruments than the pipeline's`);
    const { engine, health, regime, predictor, samplesMs } = this.parts;
    if (entry.tickMs !== samplesMs[0]) throw new Error(`shard ${this.shard}: the tape ticks every ${entry.tickMs} ms; this worker's first sampling clock is ${samplesMs[0]} ms: they must be equal`);
    for (const segment of entry.segments) this.replay(segment);
    const at = entry.at;
    if (!(this.since === this.since)) this.since = at;
    engine.tick(at);
    let regimeFrame: RegimeFrame | undefined;
    let prediction: Promise<PredictionFrame> | undefined;
    for (const frame of this.frames) {
      if (entry.seq % (frame.intervalMs / entry.tickMs) !== 0) continue;
      frame.at = at;
      frame.wallAt = at;
      engine.copyTo(frame.values, frame.warm, at);
      if (frame.base) health.observe(frame.values, frame.warm, at);
      if (regime && frame.intervalMs === regime.intervalMs) regimeFrame = regime.step(frame);
      if (predictor && frame.intervalMs === predictor.intervalMs) prediction = predictor.predict(frame);
    }
    health.sweep(engine.lastDataAt, this.since, at, entry.depthAskedAt);
    this.seq = entry.seq;
    this.lastAt = at;
    const base = this.frames[0]!;
    const predicted = prediction && (await prediction);
    return {
      shard: this.shard,
      seq: entry.seq,
      at,
      symbols: this.symbols,
      features: engine.schema.features,
      values: base.values.slice(),
      warm: base.warm.slice(),
      problems: [...health.problems],
      regime: regimeFrame && regime && { labels: regime.labels, state: regimeFrame.state.slice() },
      predictions: predicted && { horizons: predicted.horizons.map((h) => ({ horizonMs: h.horizonMs, value: h.value.slice(), tier: [...h.tier], models: [...h.models] })), faults: [...predicted.faults] },
    };
  }

  private restorable(): Restorable[] {
    const { engine, health, regime, predictor } = this.parts;
    return [engine, health, ...(regime ? [regime] : []), ...(predictor ? [predictor] : [])];
  }

  private replay(segment: TapeSegment): void {
    const { engine } = this.parts;
    switch (segment.kind) {
      case 'book': {
        const books = this.tape.onBook(segment, this.identity, 0);
        if (books) engine.onBook(books);
        return;
      }
      case 'trades': {
        const trades = this.tape.onTrades(segment, this.identity, 0);
        if (trades) engine.onTrades(trades);
        return;
      }
      case 'quotes': {
        const q = this.quotes;
        segment.instrument.forEach((i, n) => {
          q.bid[i] = segment.bid[n]!;
          q.bidSize[i] = segment.bidSize[n]!;
          q.ask[i] = segment.ask[n]!;
          q.askSize[i] = segment.askSize[n]!;
          q.changed[n] = i;
        });
        q.changedCount = segment.instrument.length;
        q.changedAt = segment.at;
        engine.onQuotes(q);
        return;
      }
      case 'reset':
        engine.reset(segment.instrument);
        return;
    }
  }
}
