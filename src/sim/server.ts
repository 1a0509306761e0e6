/**
 * The TWS wire-protocol simulator: a TCP server on loopback that the
 * unmodified @stoqey/ib client connects to as if it were TWS or IB Gateway.
 *
 * Built so far: framing, the handshake at server version 193 (or any from
 * 176), startApi with managed accounts, next valid id and farm status,
 * client-id-in-use (326), current time, request ids, and contract details for
 * the instrument universe (200 for unknown contracts). Market data, depth,
 * orders, limits and fault injection are still to come (issue 3).
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { systemClock, type Clock } from '../clock.js';
import { InstrumentUniverse, type Instrument } from './instruments.js';
import { encodeMessage, MessageReader, WireError, type Field, type Greeting } from './wire.js';

/** Message ids, client to server (encoder.js OUT_MSG_ID). */
export const OUT = { REQ_IDS: 8, REQ_CONTRACT_DATA: 9, REQ_CURRENT_TIME: 49, START_API: 71 } as const;
/** Message ids, server to client (decoder.js IN_MSG_ID). */
export const IN = { ERR_MSG: 4, NEXT_VALID_ID: 9, CONTRACT_DATA: 10, MANAGED_ACCTS: 15, CURRENT_TIME: 49, CONTRACT_DATA_END: 52 } as const;

export const SERVER_VERSION = 193;
/** The lowest server version whose message layouts the simulator writes. */
export const MIN_SERVER_VERSION = 176;
/** "No valid id": errors with this id reach the client as info, not as errors. */
const NO_ID = -1;

export interface SimulatorOptions {
  readonly serverVersion?: number;
  readonly accounts?: readonly string[];
  readonly firstOrderId?: number;
  /** Synthetic instruments beyond SPY, QQQ, AAPL and MSFT. */
  readonly syntheticInstruments?: number;
  readonly clock?: Clock;
  readonly log?: Logger;
}

export class TwsSimulator {
  readonly serverVersion: number;
  private readonly accounts: readonly string[];
  private readonly clock: Clock;
  private readonly log: Logger | undefined;
  private readonly nextOrderId: number;
  private readonly instruments: InstrumentUniverse;
  private server: Server | undefined;
  private readonly sessions = new Set<Session>();

  constructor(options: SimulatorOptions = {}) {
    this.serverVersion = options.serverVersion ?? SERVER_VERSION;
    if (this.serverVersion < MIN_SERVER_VERSION || this.serverVersion > SERVER_VERSION) {
      throw new RangeError(`server version must be from ${MIN_SERVER_VERSION} to ${SERVER_VERSION}, got ${this.serverVersion}`);
    }
    this.instruments = new InstrumentUniverse(options.syntheticInstruments ?? 0);
    this.accounts = options.accounts ?? ['DU1234567'];
    this.nextOrderId = options.firstOrderId ?? 1;
    this.clock = options.clock ?? systemClock;
    this.log = options.log;
  }

  /** Listens on 127.0.0.1; port 0 picks a free one. Resolves with the port. */
  async listen(port = 0): Promise<number> {
    const server = createServer((socket) => this.accept(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    const address = server.address();
    if (typeof address !== 'object' || address === null) throw new Error('simulator has no TCP address');
    this.log?.info({ port: address.port, serverVersion: this.serverVersion }, 'TWS simulator listening');
    return address.port;
  }

  async close(): Promise<void> {
    for (const session of this.sessions) session.socket.destroy();
    this.sessions.clear();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Client ids of the sessions that have started the API. */
  get clientIds(): number[] {
    return [...this.sessions].flatMap((s) => (s.clientId === undefined ? [] : [s.clientId]));
  }

  private accept(socket: Socket): void {
    const session = new Session(socket);
    this.sessions.add(session);
    socket.setNoDelay(true);
    const reader = new MessageReader(
      (greeting) => this.greet(session, greeting),
      (fields) => this.handle(session, fields),
    );
    socket.on('data', (chunk) => {
      try {
        reader.push(chunk);
      } catch (err) {
        // TWS drops a connection that sends what it cannot parse.
        this.log?.warn({ err: (err as Error).message }, 'closing a connection that sent bad framing');
        socket.destroy();
        if (!(err instanceof WireError)) throw err;
      }
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.sessions.delete(session));
  }

  private greet(session: Session, greeting: Greeting): void {
    const version = Math.min(this.serverVersion, greeting.maxVersion);
    session.serverVersion = version;
    session.send([version, connectionTime(this.clock.wallNow())]);
  }

  private handle(session: Session, fields: string[]): void {
    const id = Number(fields[0]);
    switch (id) {
      case OUT.START_API:
        return this.startApi(session, Number(fields[2]));
      case OUT.REQ_CURRENT_TIME:
        return session.send([IN.CURRENT_TIME, 1, Math.floor(this.clock.wallNow() / 1000)]);
      case OUT.REQ_IDS:
        return session.send([IN.NEXT_VALID_ID, 1, this.nextOrderId]);
      case OUT.REQ_CONTRACT_DATA:
        return this.contractDetails(session, fields);
      default:
        this.log?.debug({ messageId: id }, 'message not simulated yet');
    }
  }

  /** REQ_CONTRACT_DATA: `9, 8, reqId, conId, symbol, secType, ...` */
  private contractDetails(session: Session, fields: string[]): void {
    const reqId = Number(fields[2]);
    const instrument = this.instruments.find(Number(fields[3] || 0), fields[4] ?? '', fields[5] ?? '');
    if (!instrument) {
      session.error(reqId, 200, 'No security definition has been found for the request');
      return;
    }
    session.send(contractData(session.serverVersion, reqId, instrument));
    session.send([IN.CONTRACT_DATA_END, 1, reqId]);
  }

  private startApi(session: Session, clientId: number): void {
    if (this.clientIds.includes(clientId)) {
      session.error(NO_ID, 326, 'Unable to connect as the client id is already in use. Retry with a unique client id.');
      session.socket.end();
      return;
    }
    session.clientId = clientId;
    session.send([IN.MANAGED_ACCTS, 1, this.accounts.join(',')]);
    session.send([IN.NEXT_VALID_ID, 1, this.nextOrderId]);
    session.error(NO_ID, 2104, 'Market data farm connection is OK:usfarm');
    session.error(NO_ID, 2106, 'HMDS data farm connection is OK:ushmds');
    session.error(NO_ID, 2158, 'Sec-def data farm connection is OK:secdefnj');
  }
}

class Session {
  clientId: number | undefined;
  serverVersion = SERVER_VERSION;

  constructor(readonly socket: Socket) {}

  send(fields: readonly Field[]): void {
    if (!this.socket.destroyed) this.socket.write(encodeMessage(fields));
  }

  /** ERR_MSG at version 2, ending with the advanced-reject JSON (empty) as every version from 166 does. */
  error(id: number, code: number, message: string): void {
    this.send([IN.ERR_MSG, 2, id, code, message, '']);
  }
}

/** CONTRACT_DATA for a stock, field by field as decoder.js reads it (no version field from 164). */
function contractData(version: number, reqId: number, i: Instrument): Field[] {
  return [
    IN.CONTRACT_DATA, reqId, i.symbol, 'STK', '',
    ...(version >= 182 ? [''] : []), // lastTradeDate
    0, '', 'SMART', 'USD', i.symbol, i.symbol, i.symbol, i.conId, 0.01, '',
    'ACTIVETIM,AD,ADJUST,ALERT,ALGO,LMT,MKT,STP,STPLMT,TRAIL', `SMART,${i.primaryExch}`, 1, 0, i.longName, i.primaryExch,
    '', i.industry, '', '', 'US/Eastern',
    '20260105:0400-20260105:2000', '20260105:0930-20260105:1600',
    '', '', 0, // evRule, evMultiplier, no secIds
    1, '', '', '26', '', 'COMMON', // aggGroup, underSymbol, underSecType, marketRuleIds, realExpirationDate, stockType
    1, 1, 100, // minSize, sizeIncrement, suggestedSizeIncrement
    ...(version >= 186 ? [0] : []), // no ineligibility reasons
  ];
}

/** TWS's connection time, e.g. `20260105 14:30:00 UTC`. */
function connectionTime(epochMs: number): string {
  const iso = new Date(epochMs).toISOString();
  return `${iso.slice(0, 10).replaceAll('-', '')} ${iso.slice(11, 19)} UTC`;
}
