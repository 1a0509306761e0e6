/**
 * The simulator's HTTP control API, on 127.0.0.1 only: faults are injected
 * into a running `keel sim` from outside (by hand with curl, or by the
 * soak) and its state is read back, the broker's orders and executions
 * included: the truth the soak holds keel's journal against. Parameters go
 * in the query string; every answer is JSON, and a malformed request gets a
 * JSON error (400, 404, 405, 413) while the server keeps running.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { BAD_EXECUTION_KINDS, type BadExecutionKind } from './broker.js';
import { MALFORMED_KINDS, type MalformedKind } from './faults.js';
import { NORMAL_DYNAMICS, type Dynamics } from './market.js';
import { PERMISSIONS, type Permission } from './market-data.js';
import type { TwsSimulator } from './server.js';

/** Requests carry no body; one larger than this is refused with 413. */
export const MAX_BODY_BYTES = 1024;
const MAX_RESTORE_MS = 86_400_000;
const MAX_DELAY_MS = 600_000;
const MAX_CLOCK_OFFSET_MS = 86_400_000;
const MAX_ACCOUNTS = 10;

type Method = 'GET' | 'POST';
type Params = Record<string, string | number | boolean>;

interface Param {
  readonly name: string;
  /** What is expected, for help and for 400s. */
  readonly expected: string;
  /** How `keel sim --help` shows the value. */
  readonly placeholder: string;
  /** The value, or undefined when the text is not one. */
  parse(text: string, sim: TwsSimulator): string | number | boolean | undefined;
}

interface Endpoint {
  readonly method: Method;
  readonly path: string;
  readonly params: readonly Param[];
  readonly does: string;
  run(sim: TwsSimulator, params: Params): unknown;
}

class BadRequest extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

function whole(name: string, min: number, max: number, unit = ''): Param {
  return {
    name,
    expected: `a whole number${unit} from ${min} to ${max}`,
    placeholder: 'N',
    parse: (text) => {
      if (!/^-?\d+$/.test(text)) return undefined;
      const n = Number(text);
      return n >= min && n <= max ? n : undefined;
    },
  };
}

const bool = (name: string): Param => ({
  name,
  expected: 'true or false',
  placeholder: 'true|false',
  parse: (text) => (text === 'true' ? true : text === 'false' ? false : undefined),
});

const oneOf = (name: string, values: readonly string[]): Param => ({
  name,
  expected: `one of ${values.join(', ')}`,
  placeholder: values.join('|'),
  parse: (text) => (values.includes(text) ? text : undefined),
});

const symbol: Param = {
  name: 'symbol',
  expected: 'a symbol of the simulator (SPY, QQQ, AAPL, MSFT or SYNnnnn)',
  placeholder: 'SYMBOL',
  parse: (text, sim) => sim.instruments.find(0, text, 'STK')?.symbol,
};

/** The planted drifts `/faults/drift` offers, by name. */
const DRIFTS = {
  flip: { ...NORMAL_DYNAMICS, resting: 'away' },
  volatile: { ...NORMAL_DYNAMICS, volatilityScale: 2 },
  normal: NORMAL_DYNAMICS,
} as const satisfies Record<string, Dynamics>;

const restoreAfterMs = whole('restoreAfterMs', 0, MAX_RESTORE_MS, ' of ms');

const accountIds: Param = {
  name: 'ids',
  expected: `1 to ${MAX_ACCOUNTS} account ids of letters and digits, comma-separated, like U1234567`,
  placeholder: 'ID,...',
  parse: (text) => {
    const ids = text.split(',');
    return ids.length <= MAX_ACCOUNTS && ids.every((id) => /^[A-Za-z0-9]+$/.test(id)) ? text : undefined;
  },
};

export const ENDPOINTS: readonly Endpoint[] = [
  {
    method: 'GET',
    path: '/status',
    params: [],
    does: 'server version, client ids, sessions with their live feeds, faults',
    run: (sim) => status(sim),
  },
  {
    method: 'GET',
    path: '/help',
    params: [],
    does: 'these endpoints (also GET /)',
    run: () => help(),
  },
  {
    method: 'GET',
    path: '/executions',
    params: [],
    does: "the broker's own record of fills, oldest first",
    run: (sim) => executions(sim),
  },
  {
    method: 'GET',
    path: '/positions',
    params: [],
    does: "each account's cash and positions (options by OSI symbol)",
    run: (sim) => positions(sim),
  },
  {
    method: 'GET',
    path: '/orders',
    params: [],
    does: 'every order the broker was sent, oldest first, with where it stands',
    run: (sim) => orders(sim),
  },
  {
    method: 'POST',
    path: '/faults/drop',
    params: [],
    does: 'close every client connection at once, as when TWS restarts',
    run: (sim) => ({ dropped: sim.faults.dropConnections() }),
  },
  {
    method: 'POST',
    path: '/faults/connectivity',
    params: [restoreAfterMs, bool('dataLost')],
    does: 'IB lost (1100); back after restoreAfterMs: 1101 if dataLost, else 1102',
    run: (sim, p) => {
      sim.faults.connectivityLost(p.restoreAfterMs as number, p.dataLost as boolean);
      return {};
    },
  },
  {
    method: 'POST',
    path: '/faults/farm',
    params: [restoreAfterMs],
    does: 'market data farm broken (2103); OK again (2104) after restoreAfterMs',
    run: (sim, p) => {
      sim.faults.farmOutage(p.restoreAfterMs as number);
      return {};
    },
  },
  {
    method: 'POST',
    path: '/faults/silence',
    params: [symbol],
    does: 'every feed on the symbol goes quiet, with no error, until re-requested',
    run: (sim, p) => ({ feeds: sim.faults.silence(p.symbol as string) }),
  },
  {
    method: 'POST',
    path: '/faults/corrupt-depth',
    params: [symbol, oneOf('mode', ['zero-sizes', 'nan-prices', 'clean'])],
    does: "the symbol's depth sends size 0 or price NaN ('clean' ends it)",
    run: (sim, p) => {
      sim.faults.corruptDepth(p.symbol as string, p.mode as 'zero-sizes' | 'nan-prices' | 'clean');
      return {};
    },
  },
  {
    method: 'POST',
    path: '/faults/drift',
    params: [symbol, oneOf('kind', Object.keys(DRIFTS))],
    does: "the market drifts: imbalance turns on the move (flip), 2x volatility",
    run: (sim, p) => {
      sim.faults.drift(p.symbol as string, DRIFTS[p.kind as keyof typeof DRIFTS]);
      return {};
    },
  },
  {
    method: 'POST',
    path: '/faults/options-farm',
    params: [restoreAfterMs],
    does: 'options farm broken (2103 usopt); OK (2104) after restoreAfterMs',
    run: (sim, p) => {
      sim.faults.optionsFarmOutage(p.restoreAfterMs as number);
      return {};
    },
  },
  {
    method: 'POST',
    path: '/faults/options-stale',
    params: [bool('enabled')],
    does: 'option lines get nothing, with no error (false ends it)',
    run: (sim, p) => {
      sim.faults.optionsStale(p.enabled as boolean);
      return {};
    },
  },
  {
    method: 'POST',
    path: '/faults/options-crossed',
    params: [bool('enabled')],
    does: 'option quotes are sent crossed, bid above ask (false ends it)',
    run: (sim, p) => {
      sim.faults.optionsCrossed(p.enabled as boolean);
      return {};
    },
  },
  {
    method: 'POST',
    path: '/faults/options-permission',
    params: [oneOf('level', PERMISSIONS)],
    does: 'SPY option data from now on: live, delayed (10167), none (354)',
    run: (sim, p) => {
      sim.faults.optionPermission(p.level as Permission);
      return {};
    },
  },
  {
    method: 'POST',
    path: '/faults/competing-session',
    params: [bool('enabled')],
    does: 'live session in use elsewhere: new market data gets 10197',
    run: (sim, p) => {
      sim.faults.competingSession(p.enabled as boolean);
      return {};
    },
  },
  {
    method: 'POST',
    path: '/faults/restore',
    params: [],
    does: 'end every connectivity or farm outage now (1101/1102, 2104)',
    run: (sim) => ({ restored: sim.faults.restore() }),
  },
  {
    method: 'POST',
    path: '/faults/accounts',
    params: [accountIds],
    does: 'TWS logs in to these accounts: clients dropped, the next see them',
    run: (sim, p) => ({ dropped: sim.faults.login((p.ids as string).split(',')) }),
  },
  {
    method: 'POST',
    path: '/faults/permission',
    params: [symbol, oneOf('level', PERMISSIONS)],
    does: "the symbol's market data from now on: live, delayed (10167), none (354)",
    run: (sim, p) => {
      sim.faults.permission(p.symbol as string, p.level as Permission);
      return {};
    },
  },
  {
    method: 'POST',
    path: '/faults/clock',
    params: [whole('offsetMs', -MAX_CLOCK_OFFSET_MS, MAX_CLOCK_OFFSET_MS, ' of ms')],
    does: "TWS's clock runs offsetMs ahead, behind when negative (0 ends it)",
    run: (sim, p) => {
      sim.faults.clockOffset(p.offsetMs as number);
      return {};
    },
  },
  {
    method: 'POST',
    path: '/faults/depth-limit',
    params: [whole('slots', 0, 1_000_000)],
    does: 'depth subscriptions a connection may hold from now on (IB: 3)',
    run: (sim, p) => {
      sim.faults.depthLimit(p.slots as number);
      return {};
    },
  },
  {
    method: 'POST',
    path: '/faults/garbage',
    params: [],
    does: 'send every client bytes no TWS message starts with',
    run: (sim) => {
      sim.faults.sendGarbage();
      return { sessions: sim.sessions.size };
    },
  },
  {
    method: 'POST',
    path: '/faults/malformed',
    params: [oneOf('kind', MALFORMED_KINDS)],
    does: 'one malformed message to every client (reject JSON; sign-bit length)',
    run: (sim, p) => {
      sim.faults.malformed(p.kind as MalformedKind);
      return { sessions: sim.sessions.size };
    },
  },
  {
    method: 'POST',
    path: '/faults/reject-client',
    params: [whole('clientId', 0, 2_147_483_647)],
    does: 'refuse the next connections with this client id (326, as if in use)',
    run: (sim, p) => {
      sim.faults.rejectClientId(p.clientId as number);
      return {};
    },
  },
  {
    method: 'POST',
    path: '/faults/slow',
    params: [whole('delayMs', 0, MAX_DELAY_MS, ' of ms')],
    does: 'delay every message to clients by delayMs (0 ends it)',
    run: (sim, p) => {
      sim.faults.slowDown(p.delayMs as number);
      return {};
    },
  },
  {
    method: 'POST',
    path: '/faults/late-order-news',
    params: [whole('delayMs', 0, MAX_DELAY_MS, ' of ms')],
    does: 'order news goes delayMs late, fills at once (0 ends it)',
    run: (sim, p) => {
      sim.broker.orderNewsDelayMs = p.delayMs as number;
      return {};
    },
  },
  {
    method: 'POST',
    path: '/faults/duplicate-executions',
    params: [bool('enabled')],
    does: 'send every execution report and its commission twice (false ends it)',
    run: (sim, p) => {
      sim.broker.duplicateExecutions = p.enabled as boolean;
      return {};
    },
  },
  {
    method: 'POST',
    path: '/faults/bad-execution',
    params: [oneOf('kind', [...BAD_EXECUTION_KINDS, 'off'])],
    does: "one bad report after the next fill ('abc' price, TSLA, overfill; off)",
    run: (sim, p) => {
      sim.faults.badExecution(p.kind === 'off' ? undefined : (p.kind as BadExecutionKind));
      return {};
    },
  },
];

/** Each endpoint with its parameters, then what it does on the next line, for `keel sim --help`. */
export function endpointLines(): string[] {
  return ENDPOINTS.flatMap((e) => {
    const query = e.params.map((p) => `${p.name}=${p.placeholder}`).join('&');
    return [`${e.method.padEnd(4)} ${e.path}${query ? `?${query}` : ''}`, `       ${e.does}`];
  });
}

function help() {
  return {
    service: 'keel sim control',
    endpoints: ENDPOINTS.map((e) => ({
      method: e.method,
      path: e.path,
      does: e.does,
      parameters: Object.fromEntries(e.params.map((p) => [p.name, p.expected])),
    })),
    notes: 'parameters go in the query string; every parameter listed is required; answers are JSON',
  };
}

function status(sim: TwsSimulator) {
  return {
    serverVersion: sim.serverVersion,
    clientIds: sim.clientIds,
    sessions: [...sim.sessions].map((s) => ({
      clientId: s.clientId ?? null,
      serverVersion: s.serverVersion,
      feeds: sim.marketData.feedsOf(s),
      optionLines: sim.options.linesOf(s),
    })),
    accounts: sim.broker.accounts.codes,
    faults: {
      marketDataPaused: sim.marketData.paused,
      marketFarmBroken: sim.marketFarmBroken,
      permissions: Object.fromEntries([...sim.marketData.restricted].map(([index, level]) => [sim.instruments.all[index]!.symbol, level])),
      optionsFarmBroken: sim.options.farmBroken,
      optionsStale: sim.options.stale,
      optionsCrossed: sim.options.crossed,
      optionsPermission: sim.options.permission,
      competingLiveSession: sim.marketData.competingLiveSession,
      clockOffsetMs: sim.clockOffsetMs,
      depthLimit: sim.marketData.limits.depthSubscriptions,
      delayMs: sim.delayMs,
      rejectedClientIds: [...sim.rejectedClientIds],
      orderNewsDelayMs: sim.broker.orderNewsDelayMs,
      duplicateExecutions: sim.broker.duplicateExecutions,
      badExecution: sim.broker.badExecution ?? null,
      badExecutionsSent: sim.broker.badExecutionsSent,
    },
    options: { ...sim.options.state, day: sim.options.listing.day, expiries: sim.options.listing.allExpiries.length, contracts: sim.options.listing.contracts.length },
    orders: sim.broker.allOrders().length,
    executions: sim.broker.executions.length,
  };
}

/** The fields of an execution a client sees, plus what it cost; the time in ISO 8601. */
function executions(sim: TwsSimulator) {
  const list = sim.broker.executions.map((e) => ({
    execId: e.execId,
    orderId: e.orderId,
    clientId: e.clientId,
    permId: e.permId,
    orderRef: e.orderRef,
    account: e.account,
    symbol: e.contract.localSymbol,
    side: e.side,
    shares: e.shares,
    price: e.price,
    commission: e.commission,
    time: e.time.toISOString(),
  }));
  return { count: list.length, executions: list };
}

function positions(sim: TwsSimulator) {
  const accounts = [...sim.broker.accounts.all()].map((a) => ({
    account: a.code,
    cash: a.cash,
    positions: Object.fromEntries([...a.holdings.values()].filter((h) => h.position !== 0).map((h) => [h.contract.localSymbol, h.position])),
  }));
  return { accounts };
}

function orders(sim: TwsSimulator) {
  const list = sim.broker.allOrders().map((o) => ({
    orderId: o.orderId,
    clientId: o.clientId,
    permId: o.permId,
    orderRef: o.orderRef,
    account: o.account,
    symbol: o.contract.localSymbol,
    action: o.action,
    quantity: o.totalQuantity,
    orderType: o.orderType,
    limitPrice: o.lmtPrice ?? null,
    status: o.status,
    filled: o.filled,
    remaining: o.remaining,
  }));
  return { count: list.length, orders: list };
}

export interface ControlServer {
  readonly port: number;
  /** http://127.0.0.1:port/ */
  readonly url: string;
  close(): Promise<void>;
}

/** Serves the control API for `sim` on 127.0.0.1; port 0 picks a free one. */
export async function startControlServer(sim: TwsSimulator, options: { port?: number; log?: Logger } = {}): Promise<ControlServer> {
  const log = options.log;
  const server = createServer((req, res) => {
    handle(sim, req, res).then(
      (status) => log?.debug({ method: req.method, url: req.url, status }, 'control request'),
      (err: unknown) => {
        log?.error({ err, method: req.method, url: req.url }, 'control request failed');
        if (!res.headersSent) reply(res, 500, { error: `internal error: ${(err as Error).message}` });
        else res.destroy();
      },
    );
  });
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{"error":"malformed HTTP request"}');
    else socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('control server has no TCP address');
  const port = address.port;
  return {
    port,
    url: `http://127.0.0.1:${port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Answers one request; resolves with the status sent. */
async function handle(sim: TwsSimulator, req: IncomingMessage, res: ServerResponse): Promise<number> {
  try {
    const target = req.url ?? '/';
    const q = target.indexOf('?');
    let path = q === -1 ? target : target.slice(0, q);
    if (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
    if (path === '/') path = '/help';
    const query = new URLSearchParams(q === -1 ? '' : target.slice(q + 1));

    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > MAX_BODY_BYTES) throw tooLarge();
    const candidates = ENDPOINTS.filter((e) => e.path === path);
    if (candidates.length === 0) {
      throw new BadRequest(404, `no endpoint ${path}`, { help: 'GET /help lists the endpoints' });
    }
    const endpoint = candidates.find((e) => e.method === req.method);
    if (!endpoint) {
      const allowed = candidates.map((e) => e.method).join(', ');
      res.setHeader('Allow', allowed);
      throw new BadRequest(405, `${req.method ?? '?'} is not allowed on ${path}; use ${allowed}`, { allowed });
    }
    const bodyBytes = await readBody(req);
    const result = endpoint.run(sim, parseParams(sim, endpoint, query, bodyBytes > 0));
    const status = 200;
    reply(res, status, endpoint.method === 'POST' ? { ok: true, fault: path.slice('/faults/'.length), ...(result as object) } : result);
    return status;
  } catch (err) {
    if (!(err instanceof BadRequest)) throw err;
    if (err.status === 413) res.setHeader('Connection', 'close');
    reply(res, err.status, { error: err.message, ...err.details });
    return err.status;
  }
}

function parseParams(sim: TwsSimulator, endpoint: Endpoint, query: URLSearchParams, hadBody: boolean): Params {
  const known = new Set(endpoint.params.map((p) => p.name));
  for (const name of new Set(query.keys())) {
    if (!known.has(name)) {
      const expected = endpoint.params.length === 0 ? 'it takes no parameters' : `it takes ${[...known].join(', ')}`;
      throw new BadRequest(400, `unknown parameter '${name}' for ${endpoint.path}: ${expected}`, { parameter: name });
    }
  }
  const params: Params = {};
  for (const param of endpoint.params) {
    const values = query.getAll(param.name);
    if (values.length === 0) {
      const hint = hadBody ? ' (parameters go in the query string; the body is ignored)' : '';
      throw badParam(param, `missing ${param.name}: expected ${param.expected}${hint}`);
    }
    if (values.length > 1) throw badParam(param, `${param.name} given ${values.length} times: expected it once`);
    const text = values[0]!;
    const value = param.parse(text, sim);
    if (value === undefined) throw badParam(param, `bad ${param.name}: expected ${param.expected}, got '${text}'`);
    params[param.name] = value;
  }
  return params;
}

function badParam(param: Param, message: string): BadRequest {
  return new BadRequest(400, message, { parameter: param.name, expected: param.expected });
}

function tooLarge(): BadRequest {
  return new BadRequest(413, `request body too large: at most ${MAX_BODY_BYTES} bytes (parameters go in the query string)`);
}

/** Reads and discards the body, refusing one over the limit (the rest of it is then dropped unread). Resolves with its size. */
function readBody(req: IncomingMessage): Promise<number> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const done = (err?: Error) => {
      req.off('data', onData).off('end', onEnd).off('close', onClose).off('error', done);
      if (err) reject(err);
      else resolve(size);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) done(tooLarge());
    };
    const onEnd = () => done();
    const onClose = () => done(new BadRequest(400, 'the request ended before its body did'));
    req.on('data', onData).once('end', onEnd).once('close', onClose).once('error', done);
  });
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  const text = `${JSON.stringify(body, null, 2)}\n`;
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store' });
  res.end(text);
}
