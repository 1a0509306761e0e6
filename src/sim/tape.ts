/**
 * The simulated market written straight to a recording, with no socket and
 * no real time in between: minutes of a seeded market in a moment, for
 * replay tests and the replay benchmarks. The rows are what a daemon's
 * recorder would have written had it watched the same market (depth for
 * every instrument, prints), stamped with the market's own clock.
 */
import { DEFAULT_FEATURE_OPTIONS, featureSchema } from '../market/features.js';
import { DEPTH_ROW, RECORDING_FORMAT, RECORDING_VERSION, RecordingWriter, TRADE_ROW } from '../replay/recording.js';
import { InstrumentUniverse } from './instruments.js';
import { ASK, BID, INSERT, Market, ROWS } from './market.js';

export interface TapeOptions {
  readonly seed: number;
  /** How many instruments, from SPY, QQQ, AAPL, MSFT, then synthetic names. */
  readonly instruments: number;
  /** Market events a second per instrument. */
  readonly updatesPerSecond: number;
  /** Stop after this many rows. */
  readonly rows: number;
  /** How often the market is pumped, ms of market time: the rows of one pump share a time. */
  readonly stepMs?: number;
  readonly onProgress?: (rows: number) => void;
}

/** Writes the tape to `path`; resolves with the rows written and the market time they cover. */
export async function writeMarketTape(path: string, options: TapeOptions): Promise<{ rows: number; marketMs: number }> {
  const universe = new InstrumentUniverse(Math.max(0, options.instruments - 4));
  const instruments = universe.all.slice(0, options.instruments);
  let failure: Error | undefined;
  const writer = await RecordingWriter.create(
    path,
    {
      format: RECORDING_FORMAT,
      version: RECORDING_VERSION,
      instruments: instruments.map((i) => i.symbol),
      booked: instruments.map(() => true),
      featureSchema: featureSchema(DEFAULT_FEATURE_OPTIONS),
      wallAt: Date.UTC(2026, 0, 5, 14, 30),
      monotonicAt: 0,
      source: `simulated market, seed ${options.seed}`,
    },
    8_192,
    (err) => (failure = err),
  );
  let now = 0;
  const market = new Market(
    { seed: options.seed, updatesPerSecond: options.updatesPerSecond },
    {
      depth: (instrument, side, position, operation, priceTicks, size) => {
        if (writer.rows < options.rows) writer.add(DEPTH_ROW, instrument, position, operation, side, 0, priceTicks / 100, size, now);
      },
      trade: (instrument, priceTicks, size) => {
        if (writer.rows < options.rows) writer.add(TRADE_ROW, instrument, 0, 0, 0, 0, priceTicks / 100, size, now);
      },
    },
  );
  // Each book opens with its whole snapshot, as a new depth subscription does.
  for (const instrument of instruments) {
    const book = market.book(instrument);
    for (const side of [ASK, BID]) {
      for (let row = 0; row < ROWS; row++) writer.add(DEPTH_ROW, instrument.index, row, INSERT, side, 0, book.price[side]![row]! / 100, book.size[side]![row]!, now);
    }
    market.watch(book, 0);
  }
  const stepMs = options.stepMs ?? 10;
  let reported = 0;
  while (writer.rows < options.rows && failure === undefined) {
    now += stepMs;
    market.advanceTo(now);
    if (writer.rows - reported >= 100_000) {
      reported = writer.rows;
      options.onProgress?.(writer.rows);
      // Memory stays flat however long the tape.
      await writer.drain();
    }
  }
  await writer.close();
  if (failure) throw failure;
  return { rows: writer.rows, marketMs: now };
}
