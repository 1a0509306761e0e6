/**
 * keel's depth handler: where IB's depth updates leave @stoqey/ib and enter
 * the data plane. Each update becomes one row in a columnar batch of typed
 * arrays (no allocation per update), stamped with a sequence number and a
 * monotonic receive time, published on the bus (`depth`) by a BatchPublisher.
 */
import type { Bus } from '../bus.js';
import type { Clock } from '../clock.js';
import { DEPTH_TOPIC } from '../topics.js';
import { BatchPublisher } from './batch-publisher.js';

/** 317: TWS says empty the book before applying new entries. */
export interface DepthReset {
  readonly instrument: number;
}

/** One batch of depth updates, column by column; rows [0, count) are valid. */
export class DepthBatch {
  count = 0;
  readonly instrument: Int32Array;
  readonly position: Int32Array;
  /** 0 insert, 1 update, 2 delete (IB's codes). */
  readonly operation: Uint8Array;
  /** 0 ask, 1 bid (IB's codes). */
  readonly side: Uint8Array;
  /** 1 when the row came from smart depth (MARKET_DEPTH_L2), to be aggregated by price. */
  readonly smart: Uint8Array;
  readonly price: Float64Array;
  readonly size: Float64Array;
  readonly seq: Float64Array;
  readonly receivedAt: Float64Array;

  constructor(readonly capacity: number) {
    this.instrument = new Int32Array(capacity);
    this.position = new Int32Array(capacity);
    this.operation = new Uint8Array(capacity);
    this.side = new Uint8Array(capacity);
    this.smart = new Uint8Array(capacity);
    this.price = new Float64Array(capacity);
    this.size = new Float64Array(capacity);
    this.seq = new Float64Array(capacity);
    this.receivedAt = new Float64Array(capacity);
  }
}

/** Where a request's data goes, and when it last came (for silent-feed detection). */
export interface Route {
  readonly instrument: number;
  lastAt: number;
  updates: number;
}

export class DepthFeed {
  private readonly routes = new Map<number, Route>();
  private readonly batches: BatchPublisher<typeof DEPTH_TOPIC, DepthBatch>;
  private seq = 0;
  /** Updates for a request id keel no longer routes (late after a cancel): counted, dropped. */
  unrouted = 0;

  constructor(
    bus: Bus,
    private readonly clock: Clock,
    capacity = 4096,
  ) {
    this.batches = new BatchPublisher(bus, DEPTH_TOPIC, () => new DepthBatch(capacity));
  }

  route(reqId: number, route: Route): void {
    this.routes.set(reqId, route);
  }

  unroute(reqId: number): void {
    this.routes.delete(reqId);
  }

  /** IBApi `updateMktDepth` listener. */
  readonly onDepth = (reqId: number, position: number, operation: number, side: number, price: number, size: number): void => {
    this.append(reqId, position, operation, side, 0, price, size);
  };

  /** IBApi `updateMktDepthL2` listener. */
  readonly onDepthL2 = (reqId: number, position: number, _marketMaker: string, operation: number, side: number, price: number, size: number): void => {
    this.append(reqId, position, operation, side, 1, price, size);
  };

  /** Publishes what is batched now. */
  flush(): void {
    this.batches.flush();
  }

  private append(reqId: number, position: number, operation: number, side: number, smart: number, price: number, size: number): void {
    const route = this.routes.get(reqId);
    if (route === undefined) {
      this.unrouted++;
      return;
    }
    const now = this.clock.now();
    route.lastAt = now;
    route.updates++;
    const b = this.batches.open();
    const row = b.count;
    b.instrument[row] = route.instrument;
    b.position[row] = position;
    b.operation[row] = operation;
    b.side[row] = side;
    b.smart[row] = smart;
    b.price[row] = price;
    b.size[row] = size;
    b.seq[row] = ++this.seq;
    b.receivedAt[row] = now;
    this.batches.written();
  }
}
