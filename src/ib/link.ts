/**
 * The link to TWS / IB Gateway that the rest of keel uses: the one IBApi
 * client, the one outgoing pacer every request goes through, and the order
 * id ledger. The ib_connection actor owns its lifecycle and provides it as
 * the `ibLink` service; the link's state is on `ib.status`.
 */
import { IBApi, type EventName } from './api.js';
import type { Clock } from '../clock.js';
import type { OrderIdLedger } from './order-ids.js';
import { Pacer } from './pacer.js';
import { WireGuard } from './wire-guard.js';

export type IbConnectionState = 'disconnected' | 'connecting' | 'connected' | 'degraded' | 'reconnecting' | 'stopped';

/** What the connection is doing, published (retained) on `ib.status` at every change. */
export interface IbStatus {
  readonly state: IbConnectionState;
  readonly clientId: number;
  /** Why it is in this state, in words (the last code, the failed probe, ...). */
  readonly reason: string;
  /** Data farms reported down (2103, 2105, 2107) and not back yet. */
  readonly farmsDown: readonly string[];
  /**
   * Bumped whenever every market-data request made before is void: a new
   * connection, or 1101 (restored, data lost). Whoever owns subscriptions
   * requests them all again when it changes.
   */
  readonly dataEpoch: number;
  readonly since: number;
}

export class IbLink {
  readonly api: IBApi;
  readonly pacer: Pacer;
  /** Between the socket and the client's decoder: what TWS sends cannot hang or throw out of the client. */
  readonly wire: WireGuard;
  /** True between nextValidId and the loss of the connection: requests may be sent. */
  ready = false;

  constructor(
    options: { host: string; port: number; maxMessagesPerSecond: number },
    clock: Clock,
    readonly orderIds: OrderIdLedger,
  ) {
    // The client's own limiter is opened wide: keel's pacer decides, visibly and by priority.
    this.api = new IBApi({ host: options.host, port: options.port, maxReqPerSec: 10_000 });
    this.pacer = new Pacer(clock, options.maxMessagesPerSecond);
    this.wire = new WireGuard(this.api);
  }

  /**
   * Sends a request through the pacer. Returns false, sending nothing, when
   * the link is not ready: the caller keeps its intent and asks again when
   * `ib.status` says so.
   */
  send(priority: number, label: string, request: (api: IBApi) => void): boolean {
    if (!this.ready) return false;
    this.pacer.submit(priority, label, () => {
      if (this.ready) request(this.api);
    });
    return true;
  }
}

export type ClientListener = readonly [EventName, (...args: never[]) => void];

/**
 * Adds listeners to the client's events and returns what removes them.
 * IBApi types each event on its own; a list of them needs this one cast.
 */
export function listenTo(api: IBApi, listeners: readonly ClientListener[]): () => void {
  const emitter = api as unknown as { on(name: string, fn: (...args: never[]) => void): void; off(name: string, fn: (...args: never[]) => void): void };
  for (const [name, fn] of listeners) emitter.on(name, fn);
  return () => {
    for (const [name, fn] of listeners) emitter.off(name, fn);
  };
}

/**
 * Waits for TWS's answer to one request: the value the first of `listeners`
 * settles with, or undefined once `timeoutMs` has passed with none (TWS
 * answers some requests with silence). Call it in the turn the request is
 * sent or queued: answers only arrive with a later socket read. The
 * listeners go either way.
 */
export function firstAnswer<T>(api: IBApi, clock: Clock, timeoutMs: number, listeners: (settle: (value: T) => void) => readonly ClientListener[]): Promise<T | undefined> {
  return new Promise((resolve) => {
    let stop = () => {};
    const timer = clock.setTimeout(() => settle(undefined), timeoutMs);
    const settle = (value: T | undefined) => {
      clock.clearTimeout(timer);
      stop();
      resolve(value);
    };
    stop = listenTo(api, listeners(settle));
  });
}
