/**
 * Prints (tick-by-tick Last / AllLast) into the data plane: one row per
 * trade in a columnar batch, stamped with a sequence number and a monotonic
 * receive time, published on `trades`. The features read trade flow from it.
 */
import type { Bus } from '../bus.js';
import type { Clock } from '../clock.js';
import { TRADES_TOPIC } from '../topics.js';
import { BatchPublisher } from './batch-publisher.js';


/** One batch of trades; rows [0, count) are valid. */
export class TradeBatch {
  count = 0;
  readonly instrument: Int32Array;
  readonly price: Float64Array;
  readonly size: Float64Array;
  readonly seq: Float64Array;
  readonly receivedAt: Float64Array;

  constructor(readonly capacity: number) {
    this.instrument = new Int32Array(capacity);
    this.price = new Float64Array(capacity);
    this.size = new Float64Array(capacity);
    this.seq = new Float64Array(capacity);
    this.receivedAt = new Float64Array(capacity);
  }
}

export class TradeFeed {
  private readonly batches: BatchPublisher<typeof TRADES_TOPIC, TradeBatch>;
  private seq = 0;

  constructor(
    bus: Bus,
    private readonly clock: Clock,
    capacity = 1024,
  ) {
    this.batches = new BatchPublisher(bus, TRADES_TOPIC, () => new TradeBatch(capacity));
  }

  /** A print for `instrument` (-1: a request keel no longer routes, dropped). */
  trade(instrument: number, price: number, size: number): void {
    if (instrument < 0) return;
    const b = this.batches.open();
    const row = b.count;
    b.instrument[row] = instrument;
    b.price[row] = price;
    b.size[row] = size;
    b.seq[row] = ++this.seq;
    b.receivedAt[row] = this.clock.now();
    this.batches.written();
  }

  flush(): void {
    this.batches.flush();
  }
}
