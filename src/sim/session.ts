/** One client connection to the simulator: its socket, its version, and IB's per-connection rules. */
import type { Socket } from 'node:net';
import type { Clock } from '../clock.js';
import { encodeMessage, type Field } from './wire.js';

export const ERR_MSG = 4;
/** "No valid id": errors with this id reach the client as info, not as errors. */
export const NO_ID = -1;
/** IB's limit on messages a client may send per second. */
export const MAX_CLIENT_MESSAGES_PER_SECOND = 50;

export class Session {
  clientId: number | undefined;
  serverVersion = 0;
  /** What reqMarketDataType asked for: 1 live (the default), 3 or 4 delayed where live is not permitted. */
  marketDataType = 1;
  /** The client has called reqMarketDataType: TWS then says each option line's data type (58). */
  marketDataTypeRequested = false;
  /** The session has been told the state of the options farm (2104/2103 usopt), which TWS does on first use. */
  toldOptionsFarm = false;
  /** Outgoing delay in ms (the "slow down" fault); order is kept. */
  delayMs = 0;
  /** Arrival times of the client's last messages, for the 50-per-second rule. */
  private readonly arrivals: number[] = [];
  /** Writes held back by the slow-down fault, cancelled when the socket closes. */
  private readonly delayed = new Set<unknown>();

  constructor(
    readonly socket: Socket,
    private readonly clock: Clock,
  ) {}

  get open(): boolean {
    return !this.socket.destroyed;
  }

  send(fields: readonly Field[]): void {
    this.write(encodeMessage(fields));
  }

  /** Writes bytes as they are (framed messages, or garbage on purpose). */
  write(bytes: Buffer): void {
    if (!this.open) return;
    if (this.delayMs > 0) this.later(() => this.socket.write(bytes));
    else this.socket.write(bytes);
  }

  /** ERR_MSG at version 2, ending with the advanced-reject JSON (empty) as every version from 166 does. */
  error(id: number, code: number, message: string): void {
    this.send([ERR_MSG, 2, id, code, message, '']);
  }

  /**
   * Counts one client message. Returns false when it is the 51st within a
   * second: IB then answers 100 and drops the connection.
   */
  admit(): boolean {
    const now = this.clock.now();
    this.arrivals.push(now);
    if (this.arrivals.length <= MAX_CLIENT_MESSAGES_PER_SECOND) return true;
    const oldest = this.arrivals.shift()!;
    return now - oldest >= 1000;
  }

  /** Ends the connection after what was already written has gone out. */
  close(): void {
    if (this.delayMs > 0) this.later(() => this.socket.end());
    else this.socket.end();
  }

  /** Forgets what the slow-down fault still holds (the socket is gone). */
  dispose(): void {
    for (const timer of this.delayed) this.clock.clearTimeout(timer);
    this.delayed.clear();
  }

  private later(fn: () => void): void {
    const timer = this.clock.setTimeout(() => {
      this.delayed.delete(timer);
      if (this.open) fn();
    }, this.delayMs);
    this.delayed.add(timer);
  }
}
