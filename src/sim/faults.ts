import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import type { BadExecutionKind } from './broker.js';
import type { TwsSimulator } from './server.js';
import type { DepthCorruption, Permission } from './market-data.js';
import type { Dynamics } from './market.js';
import { ERR_MSG, NO_ID } from './session.js';
import { encodeMessage } from './wire.js';

export const MALFORMED_KINDS = ['reject-not-json', 'length-sign-bit'] as const;
export type MalformedKind = (typeof MALFORMED_KINDS)[number];

/**
 * Fault injection: what goes wrong with a real TWS, on demand. Each fault
 * that ends by itself schedules its end on the simulator's clock.
 */
export class Faults {
  /** Outages still running: their timer and what ends them. */
  private readonly pending = new Map<unknown, () => void>();

  constructor(
    private readonly sim: TwsSimulator,
    private readonly clock: Clock,
    private readonly log: Logger | undefined,
  ) {}

  /** Every client socket is destroyed at once, as when TWS restarts. */
  dropConnections(): number {
    const count = this.sim.sessions.size;
    for (const session of this.sim.sessions) session.socket.destroy();
    this.log?.warn({ count }, 'fault: dropped every connection');
    return count;
  }

  /**
   * TWS loses its link to IB (1100); after `restoreAfterMs` it is back with
   * its market data lost (1101: every subscription must be requested again)
   * or kept (1102).
   */
  connectivityLost(restoreAfterMs: number, dataLost: boolean): void {
    this.broadcast(1100, 'Connectivity between IB and Trader Workstation has been lost.');
    this.sim.marketData.paused = true;
    this.after(restoreAfterMs, () => {
      if (dataLost) for (const session of this.sim.sessions) this.sim.marketData.dropSession(session);
      this.sim.marketData.resume();
      if (dataLost) {
        this.broadcast(1101, 'Connectivity between IB and TWS has been restored- data lost.');
      } else {
        this.broadcast(1102, 'Connectivity between IB and TWS has been restored- data maintained.');
      }
    });
    this.log?.warn({ restoreAfterMs, dataLost }, 'fault: connectivity lost (1100)');
  }

  /** The market data farm breaks (2103) and comes back (2104); orders keep working. */
  farmOutage(restoreAfterMs: number): void {
    this.broadcast(2103, 'Market data farm connection is broken:usfarm');
    this.sim.marketData.paused = true;
    this.sim.marketFarmBroken = true;
    this.after(restoreAfterMs, () => {
      this.sim.marketFarmBroken = false;
      this.sim.marketData.resume();
      this.broadcast(2104, 'Market data farm connection is OK:usfarm');
    });
    this.log?.warn({ restoreAfterMs }, 'fault: market data farm broken (2103)');
  }

  /** The options farm breaks (2103 usopt): option lines go quiet; after `restoreAfterMs` it is OK (2104 usopt) and they are sent afresh. */
  optionsFarmOutage(restoreAfterMs: number): void {
    this.sim.options.breakFarm(this.sim.sessions);
    this.after(restoreAfterMs, () => this.sim.options.restoreFarm(this.sim.sessions));
    this.log?.warn({ restoreAfterMs }, 'fault: options data farm broken (2103 usopt)');
  }

  /** The option chain goes stale: its lines get nothing, with no error, until `false`; stocks go on. */
  optionsStale(enabled: boolean): void {
    this.sim.options.stale = enabled;
    this.log?.warn({ enabled }, enabled ? 'fault: option chain stale' : 'fault: option chain live again');
  }

  /** Option lines are sent crossed quotes (bid above ask) until `false`. */
  optionsCrossed(enabled: boolean): void {
    this.sim.options.crossed = enabled;
    this.sim.options.resend();
    this.log?.warn({ enabled }, enabled ? 'fault: option quotes crossed' : 'fault: option quotes sound again');
  }

  /** The account's SPY option data (OPRA) from now on: live, delayed (10167 to a client taking delayed data, else 354) or none (354). */
  optionPermission(permission: Permission): void {
    this.sim.options.permission = permission;
    this.log?.warn({ permission }, `fault: option market data permission is ${permission}`);
  }

  /** The live account is logged in elsewhere: new market-data requests get 10197 and no data until `false`. */
  competingSession(enabled: boolean): void {
    this.sim.marketData.competingLiveSession = enabled;
    this.log?.warn({ enabled }, enabled ? 'fault: competing live session (10197)' : 'fault: competing live session over');
  }

  /** Every feed on `symbol` goes quiet, without an error, until it is requested again. */
  silence(symbol: string): number {
    const instrument = this.instrument(symbol);
    const count = this.sim.marketData.silence(instrument.index);
    this.log?.warn({ symbol, feeds: count }, 'fault: feeds silenced');
    return count;
  }

  /**
   * The symbol's depth starts lying: every size 0 or every price NaN, as a
   * broken feed handler upstream would send. `clean` ends it. Quotes and
   * trades stay true, so only the book's consumers can notice.
   */
  corruptDepth(symbol: string, mode: DepthCorruption | 'clean'): void {
    const instrument = this.instrument(symbol);
    this.sim.marketData.corrupt(instrument.index, mode === 'clean' ? undefined : mode);
    this.log?.warn({ symbol, mode }, 'fault: depth corrupted');
  }

  /**
   * The symbol's market changes how it moves (a planted drift): its fair
   * value moves `volatilityScale` times as much, and with `resting: away`
   * passive orders rest against the coming move. `normal` ends it.
   */
  drift(symbol: string, dynamics: Dynamics): void {
    const instrument = this.instrument(symbol);
    this.sim.marketData.market.book(instrument).dynamics = dynamics;
    this.log?.warn({ symbol, ...dynamics }, `fault: ${symbol}'s market drifts`);
  }

  /** The symbol's price jumps by `amount` dollars at once (news): its whole book moves, and with SPY the option chain's spot. */
  jumpPrice(symbol: string, amount: number): void {
    const instrument = this.instrument(symbol);
    this.sim.marketData.market.book(instrument).jump(Math.round(amount * 100));
    this.log?.warn({ symbol, amount }, `fault: ${symbol} jumps ${amount > 0 ? 'up' : 'down'} ${Math.abs(amount)}`);
  }

  /**
   * The account lacks live market data for `symbol`: new requests get 354,
   * or, with `delayed`, 10167 for quotes from a client that takes delayed
   * data. `live` gives it back. Feeds already running go on.
   */
  permission(symbol: string, permission: Permission): void {
    this.sim.marketData.permit(this.instrument(symbol).index, permission);
    this.log?.warn({ symbol, permission }, `fault: market data permission for ${symbol} is ${permission}`);
  }

  /**
   * TWS logs in to other accounts, as after a restart under another user:
   * every client is dropped, and the next see these in managedAccounts.
   */
  login(accounts: readonly string[]): number {
    this.sim.broker.accounts.login(accounts);
    this.log?.warn({ accounts }, `fault: TWS logged in to ${accounts.join(', ')}`);
    return this.dropConnections();
  }

  /** TWS's clock runs `offsetMs` ahead of the simulator's (behind when negative; 0 ends it): current time and connection time. */
  clockOffset(offsetMs: number): void {
    this.sim.clockOffsetMs = offsetMs;
    this.log?.warn({ offsetMs }, 'fault: TWS clock offset');
  }

  /** Depth subscriptions each connection may hold from now on (IB's default: 3); those held already stay. */
  depthLimit(slots: number): void {
    this.sim.marketData.limits = { ...this.sim.marketData.limits, depthSubscriptions: slots };
    this.log?.warn({ slots }, 'fault: depth limit');
  }

  /** Bytes no TWS message starts with: the client cannot decode them. */
  sendGarbage(): void {
    for (const session of this.sim.sessions) {
      session.write(encodeMessage(['\u0007garbage', '\u00ff\u00fe', 'not a message']));
    }
    this.log?.warn('fault: sent garbage bytes');
  }

  /**
   * One message a broken TWS could send, each of which once took a client
   * down: a reject whose advanced-order JSON is not JSON, or a length prefix
   * with its top bit set (read as negative by a signed reader) followed by
   * ordinary traffic.
   */
  malformed(kind: MalformedKind): void {
    const bytes =
      kind === 'reject-not-json'
        ? encodeMessage([ERR_MSG, 2, 1, 201, 'Order rejected - reason:x', '{bad json'])
        : Buffer.concat([Buffer.from([0x80, 0, 0, 0]), encodeMessage([ERR_MSG, 2, NO_ID, 2104, 'Market data farm connection is OK:usfarm', ''])]);
    for (const session of this.sim.sessions) session.write(bytes);
    this.log?.warn({ kind }, `fault: sent a malformed message (${kind})`);
  }

  /** The next connections with this client id are refused with 326 as if it were in use. */
  rejectClientId(clientId: number): void {
    this.sim.rejectedClientIds.add(clientId);
    this.log?.warn({ clientId }, 'fault: client id refused as in use');
  }

  /** Every message to clients is delayed by `delayMs` (0 ends it). */
  slowDown(delayMs: number): void {
    this.sim.delayMs = delayMs;
    for (const session of this.sim.sessions) session.delayMs = delayMs;
    this.log?.warn({ delayMs }, 'fault: slow responses');
  }

  /**
   * The next execution the broker makes is followed by a report TWS should
   * never send about the same order: its price `abc`, 1,000,000 shares of
   * TSLA, or one share more than the order has left (broker.ts
   * BAD_EXECUTION_KINDS). Once; `undefined` disarms it. The broker's own
   * record and accounts stay true.
   */
  badExecution(kind: BadExecutionKind | undefined): void {
    this.sim.broker.badExecution = kind;
    this.log?.warn({ kind: kind ?? 'off' }, kind ? `fault: the next execution is followed by a bad report (${kind})` : 'fault: bad execution report disarmed');
  }

  /** Ends every outage still running now, as if its time had come. */
  restore(): number {
    const ends = [...this.pending.values()];
    this.clear();
    for (const end of ends) end();
    return ends.length;
  }

  /** Cancels faults still waiting to end. */
  clear(): void {
    for (const timer of this.pending.keys()) this.clock.clearTimeout(timer);
    this.pending.clear();
  }

  private instrument(symbol: string) {
    const instrument = this.sim.instruments.find(0, symbol, 'STK');
    if (!instrument) throw new Error(`unknown symbol ${symbol}`);
    return instrument;
  }

  private broadcast(code: number, message: string): void {
    for (const session of this.sim.sessions) session.error(NO_ID, code, message);
  }

  private after(ms: number, fn: () => void): void {
    const timer = this.clock.setTimeout(() => {
      this.pending.delete(timer);
      fn();
    }, ms);
    this.pending.set(timer, fn);
  }
}
