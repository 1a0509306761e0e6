/**
 * A keel recording of the simulator's market, written in process as the
 * recorder would write a live session: every depth row and print of the
 * first `instruments` of the universe, at its simulated time, on a wall
 * clock anchored at `wallAt`. Minutes of market in well under a second.
 */
import { DEFAULT_FEATURE_OPTIONS, featureSchema } from '../../src/market/features.js';
import { DEPTH_ROW, RECORDING_FORMAT, RECORDING_VERSION, RecordingWriter, TRADE_ROW } from '../../src/replay/recording.js';
import { InstrumentUniverse } from '../../src/sim/instruments.js';
import { ASK, BID, INSERT, Market, ROWS, type Dynamics, type MarketListener } from '../../src/sim/market.js';

export interface SimulatedRecording {
  readonly seed: number;
  readonly instruments: number;
  readonly seconds: number;
  readonly updatesPerSecond: number;
  /** Epoch ms of the recording's first instant. */
  readonly wallAt: number;
  /** A planted drift: from `atSeconds` every instrument's market moves by `dynamics`. */
  readonly drift?: { readonly atSeconds: number; readonly dynamics: Dynamics };
}

export async function recordSimulatedMarket(path: string, o: SimulatedRecording): Promise<void> {
  const universe = new InstrumentUniverse().all.slice(0, o.instruments);
  const errors: Error[] = [];
  const writer = await RecordingWriter.create(
    path,
    {
      format: RECORDING_FORMAT,
      version: RECORDING_VERSION,
      instruments: universe.map((u) => u.symbol),
      booked: universe.map(() => true),
      featureSchema: featureSchema(DEFAULT_FEATURE_OPTIONS),
      wallAt: o.wallAt,
      monotonicAt: 0,
      source: `keel test-recorder (simulator seed ${o.seed})`,
    },
    8_192,
    (e) => errors.push(e),
  );
  let now = 0;
  const listener: MarketListener = {
    depth: (i, side, position, operation, priceTicks, size) => writer.add(DEPTH_ROW, i, position, operation, side, 0, priceTicks / 100, size, now),
    trade: (i, priceTicks, size) => writer.add(TRADE_ROW, i, 0, 0, 0, 0, priceTicks / 100, size, now),
  };
  const market = new Market({ seed: o.seed, updatesPerSecond: o.updatesPerSecond }, listener);
  for (const instrument of universe) {
    const book = market.book(instrument);
    market.watch(book, 0);
    for (let row = 0; row < ROWS; row++) for (const side of [ASK, BID] as const) listener.depth(instrument.index, side, row, INSERT, book.price[side][row]!, book.size[side][row]!);
  }
  for (now = 10; now <= o.seconds * 1000; now += 10) {
    if (o.drift && now === o.drift.atSeconds * 1000) for (const instrument of universe) market.book(instrument).dynamics = o.drift.dynamics;
    market.advanceTo(now);
    if (now % 10_000 === 0) await writer.drain();
  }
  await writer.close();
  if (errors.length > 0) throw errors[0];
}
