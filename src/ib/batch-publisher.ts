/**
 * Double-buffered columnar batches for the data plane. A producer writes
 * rows into the open batch; the batch is published on its topic once the
 * current socket read is decoded (a microtask) or when it is full. The two
 * batches swap, so nothing is allocated per row. Consumers read a batch
 * synchronously: once their handler returns, its arrays are reused.
 */
import type { Bus } from '../bus.js';
import type { StreamTopic, Streams } from '../topics.js';

export interface Batch {
  count: number;
  readonly capacity: number;
}

export class BatchPublisher<K extends StreamTopic, B extends Streams[K] & Batch> {
  private batch: B;
  private spare: B;
  private queued = false;

  constructor(
    private readonly bus: Bus,
    private readonly topic: K,
    make: () => B,
  ) {
    this.batch = make();
    this.spare = make();
  }

  /** The batch to write the next row into: write row `count`, then call `written()`. */
  open(): B {
    return this.batch;
  }

  written(): void {
    if (++this.batch.count === this.batch.capacity) this.flush();
    else if (!this.queued) {
      this.queued = true;
      queueMicrotask(this.flush);
    }
  }

  /** Publishes what is batched now. */
  readonly flush = (): void => {
    this.queued = false;
    const full = this.batch;
    if (full.count === 0) return;
    this.batch = this.spare;
    this.spare = full;
    try {
      this.bus.publish(this.topic, full);
    } finally {
      full.count = 0;
    }
  };
}
