/**
 * The inspector's HTTP and WebSocket server (routes in protocol.ts).
 *
 * One timer drives every client: each tick sends the actors changed since
 * the last tick and the new events, so however fast an actor changes, its
 * delta goes out at most ten times a second; panels go out once a second,
 * and the option chain (when one runs) at most twice a second, only when
 * it changed.
 * Every message is serialized once for all clients. A client that cannot
 * keep up is dropped rather than buffered without bound; it reconnects and
 * starts from a fresh snapshot.
 *
 * Every request is answered, never thrown: malformed, oversized and unknown
 * requests get a 4xx naming what was wrong, and the daemon keeps running.
 *
 * Only this inspector's own pages may read it: a request whose Host is not
 * one of its names is a 421 (a DNS-rebinding page names its own host), and
 * one whose Origin is another site's a 403 (browsers let any page open a
 * WebSocket to any address; CORS does not guard it).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIP, type AddressInfo, type Socket } from 'node:net';
import { extname, join } from 'node:path';
import type { Logger } from 'pino';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import type { Bus } from '../bus.js';
import type { ServiceLookup } from '../services.js';
import type { Clock } from '../clock.js';
import { checkSystemHealth } from '../health/system-health.js';
import type { ActorTree } from './actor-tree.js';
import { auditFields, authorized, isControlCommand, RequestError, runCommand } from './control.js';
import { EquityCurve } from './equity-curve.js';
import { createMetrics, type InspectorMetrics, type PerInstrument } from './metrics.js';
import { chainPanel } from './chain-panel.js';
import { buildPanels, clusterPanel, featuresReport, ordersReport, positionsReport } from './panels.js';
import { CHAIN_INTERVAL_MS, CONTROL_COMMANDS, DELTA_INTERVAL_MS, PANELS_INTERVAL_MS, RESYNC_BURST, RESYNC_REFILL_MS, type ChainPanel, type ClientMessage, type ServerMessage } from './protocol.js';
import { OPTIONS_CHAIN_TOPIC } from '../topics.js';

export interface InspectorServerOptions {
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  readonly token: string;
  readonly instance: string;
  readonly tree: ActorTree;
  readonly bus: Bus;
  readonly services: ServiceLookup;
  readonly clock: Clock;
  readonly log: Logger;
  /** Larger request bodies are refused with 413. */
  readonly maxBodyBytes: number;
  /** Names besides the bound address, localhost and IP addresses that a request's Host may give (see hostAllowed). */
  readonly allowedHosts: readonly string[];
  /** Which instruments get /metrics series of their own (default 'traded'). */
  readonly perInstrument?: PerInstrument;
  /** Where the web page's files are (default: ./web beside this module). */
  readonly webDir?: string;
  /**
   * Reports a bug found while answering a client (the component's ctx.fail,
   * so the supervisor restarts the inspector alone). Without it, only logged.
   */
  readonly fail?: (error: unknown) => void;
}

/** How long a stopping server lets WebSocket clients answer its close frame before cutting them. */
const CLOSE_GRACE_MS = 250;
/** How long a stopping server lets requests in flight finish (a restart-actor of the inspector answers its caller). */
const DRAIN_MS = 1000;
/** A client further behind than this is dropped, whatever was being sent to it. */
const MAX_CLIENT_BUFFER = 8 * 1024 * 1024;
const WEB_DIR = join(import.meta.dirname, 'web');
const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/**
 * The path of a request's URL. Only a path is accepted ('/health?x=1'): one
 * that does not parse, or that starts with '//' (which URL parsing would read
 * as a host and port, '//x:99999/ws'), is refused with 400.
 */
function pathOf(url: string | undefined): string {
  const target = url ?? '/';
  if (!target.startsWith('/') || target.startsWith('//')) throw new RequestError(400, `malformed request URL ${JSON.stringify(target.slice(0, 200))}: expected a path such as /health`);
  try {
    return new URL(`http://x${target}`).pathname;
  } catch {
    throw new RequestError(400, `malformed request URL ${JSON.stringify(target.slice(0, 200))}`);
  }
}

/** A host name (lower case; an IPv6 address in brackets) and the port if one was given. */
export interface HostName {
  readonly name: string;
  readonly port: number | null;
}

const HOST_SYNTAX = /^(\[[0-9a-f:.]+\]|[a-z0-9_.-]+)(?::(\d{1,5}))?$/i;

/** A Host header or an allowedHosts entry, `name` or `name:port`; null when it is neither (a URL, a path, a user). */
export function parseHost(text: string): HostName | null {
  const match = HOST_SYNTAX.exec(text);
  if (!match) return null;
  const port = match[2] === undefined ? null : Number(match[2]);
  if (port !== null && port > 65535) return null;
  try {
    // URL's own normal form: lower case, IPv4 shorthand and IPv6 spellings made one.
    return { name: new URL(`http://${match[1]}`).hostname, port };
  } catch {
    return null;
  }
}

/**
 * Whether a request's Host names this inspector: `localhost`, the address
 * it is bound to, any IP address (a page can only send an address as Host
 * when it came from that address: no rebinding), or an allowedHosts entry
 * (an entry with a port matches that port only). A DNS-rebinding page gives
 * its own name, which is none of these. Any port but an entry's is taken:
 * the name is what the attack controls.
 */
export function hostAllowed(host: string | undefined, bound: string, allowedHosts: readonly string[]): boolean {
  const given = host === undefined ? null : parseHost(host);
  if (!given) return false;
  const { name, port } = given;
  if (name === 'localhost' || isIP(name.replace(/^\[(.*)\]$/, '$1')) !== 0) return true;
  if (name === parseHost(bound.includes(':') ? `[${bound}]` : bound)?.name) return true;
  return allowedHosts.some((entry) => {
    const allowed = parseHost(entry);
    return allowed?.name === name && (allowed.port === null || allowed.port === port);
  });
}

/**
 * Whether a request's Origin is this inspector's own: none (a program, not
 * a page: `keel inspect`, curl, Prometheus), or an http(s) origin whose
 * host and port are the Host the request came to (the page was served from
 * here). `null` (a sandboxed or file page) and any other site are not.
 */
export function originAllowed(origin: string | undefined, host: string | undefined): boolean {
  if (origin === undefined) return true;
  if (host === undefined || !parseHost(host)) return false;
  try {
    const url = new URL(origin);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
    // The Host read with the origin's scheme, so that a default port (80, 443) is left out of both alike.
    return new URL(`${url.protocol}//${host}`).host === url.host;
  } catch {
    return false;
  }
}

/** A raw HTTP answer on a socket the HTTP server does not write to (an upgrade, a client error). */
function rawAnswer(socket: { writable: boolean; end(text: string): void; destroy(): void }, status: number, reason: string, body: string): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const text = `${body}\n`;
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`);
}

/** The page's files, read once: the set served never changes while running. */
function loadWebFiles(dir: string): Map<string, { body: Buffer; type: string }> {
  const files = new Map<string, { body: Buffer; type: string }>();
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return files;
  }
  for (const name of names) {
    const type = CONTENT_TYPES[extname(name)];
    if (type) files.set(`/${name}`, { body: readFileSync(join(dir, name)), type });
  }
  const index = files.get('/index.html');
  if (index) files.set('/', index);
  return files;
}

/** A WebSocket client's resync allowance: a token bucket of RESYNC_BURST, one back every RESYNC_REFILL_MS. */
interface Client {
  resyncs: number;
  /** clock.now() when `resyncs` was last brought up to date. */
  at: number;
  /** Told that a resync was ignored, since the last one answered: told once, not once per resync of a flood. */
  told: boolean;
}

export class InspectorServer {
  private readonly http: Server;
  private readonly wss: WebSocketServer;
  private readonly clients = new Map<WebSocket, Client>();
  private readonly metrics: InspectorMetrics;
  private readonly web: Map<string, { body: Buffer; type: string }>;
  private readonly equity = new EquityCurve(500);
  private readonly timers: NodeJS.Timeout[] = [];
  /** Responses not yet finished: a stopping server lets them finish (for a while) before cutting connections. */
  private readonly inFlight = new Set<ServerResponse>();
  private sentSeq: number;
  /** The last chain message sent: one that says the same again is not sent. */
  private sentChain = '';
  url = '';

  private constructor(private readonly options: InspectorServerOptions) {
    this.metrics = createMetrics({ bus: options.bus, services: options.services, actors: () => options.tree.actors(), perInstrument: options.perInstrument });
    this.web = loadWebFiles(options.webDir ?? WEB_DIR);
    this.sentSeq = options.tree.lastSeq;
    // Every handler of what a client sends is guarded: socket callbacks may
    // have lost the component's failure scope, and a throw escaping them
    // would be an unowned failure that stops the whole daemon.
    this.http = createServer((req, res) => {
      this.inFlight.add(res);
      res.once('close', () => this.inFlight.delete(res));
      this.answer(req, res).catch((err: unknown) => this.bug(err, 'answering a request', () => res.destroy()));
    });
    this.wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });
    this.http.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
      try {
        this.upgrade(req, socket, head);
      } catch (err) {
        this.bug(err, 'upgrading to a WebSocket', () => rawAnswer(socket, 500, 'Internal Server Error', 'inspector error: see the daemon log'));
      }
    });
    this.http.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      try {
        if (err.code === 'HPE_HEADER_OVERFLOW') rawAnswer(socket, 431, 'Request Header Fields Too Large', 'request headers too large');
        else if (err.code === 'ECONNRESET' || err.code === 'EPIPE') socket.destroy();
        else rawAnswer(socket, 400, 'Bad Request', `malformed HTTP request: ${err.message}`);
        options.log.debug({ err }, 'malformed HTTP request refused');
      } catch (error) {
        this.bug(error, 'refusing a malformed request', () => socket.destroy());
      }
    });
  }

  /**
   * An error nothing expected while serving a client: the client gets what
   * `answer` gives it (or its socket closed), the inspector component fails
   * (the supervisor restarts it), the daemon carries on.
   */
  private bug(err: unknown, doing: string, answer: () => void): void {
    try {
      answer();
    } catch {
      // The client is gone or its socket broken: nothing more to tell it.
    }
    this.options.log.error({ err }, `inspector failed ${doing}: ${err instanceof Error ? err.message : String(err)}`);
    this.options.fail?.(err);
  }

  static async start(options: InspectorServerOptions): Promise<InspectorServer> {
    const server = new InspectorServer(options);
    try {
      await new Promise<void>((resolve, reject) => {
        server.http.once('error', reject);
        server.http.listen(options.port, options.host, () => {
          server.http.off('error', reject);
          resolve();
        });
      });
    } catch (error) {
      // Not listening (the port in use, say): undo what the constructor started, then say why.
      server.metrics.stop();
      server.wss.close();
      throw error;
    }
    const { port } = server.http.address() as AddressInfo;
    server.url = `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}`;
    server.timers.push(
      setInterval(() => server.flush(), DELTA_INTERVAL_MS),
      setInterval(() => server.sendPanels(), PANELS_INTERVAL_MS),
      setInterval(() => server.sendChain(), CHAIN_INTERVAL_MS),
    );
    return server;
  }

  get clientCount(): number {
    return this.clients.size;
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.metrics.stop();
    // Stop listening; idle keep-alive connections are closed now, busy ones once their answer is out.
    const closed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    this.http.closeIdleConnections();
    // WebSocket clients get a close frame, and a moment to answer it; one that
    // is not reading never will, so whoever is left after that is cut.
    const clients = [...this.clients.keys()];
    for (const ws of clients) ws.close(1001, 'the inspector is stopping');
    await settleWithin(clients.map((ws) => (ws.readyState === ws.CLOSED ? Promise.resolve() : new Promise<void>((resolve) => ws.once('close', () => resolve())))), CLOSE_GRACE_MS);
    for (const ws of clients) ws.terminate();
    this.wss.close();
    // Requests in flight (a restart-actor of this inspector among them) get their answer out first.
    await settleWithin([...this.inFlight].map((res) => new Promise<void>((resolve) => res.once('close', () => resolve()))), DRAIN_MS);
    this.http.closeAllConnections();
    await closed;
  }

  private snapshot(): ServerMessage {
    const { tree, instance } = this.options;
    return { type: 'snapshot', instance, at: this.options.clock.wallNow(), actors: tree.actors(), events: tree.events(), panels: this.panels(), chain: this.chain(), control: true };
  }

  private chain(): ChainPanel | null {
    const view = this.options.bus.latest(OPTIONS_CHAIN_TOPIC);
    return view ? chainPanel(view) : null;
  }

  private panels() {
    const { bus, services, tree, clock } = this.options;
    return buildPanels(bus, services, tree.phase(), clock, this.equity.points());
  }

  private flush(): void {
    const { tree, clock } = this.options;
    const changed = tree.takeChanged();
    const events = tree.eventsSince(this.sentSeq);
    this.sentSeq = tree.lastSeq;
    if (this.clients.size === 0) return;
    if (changed.length > 0) this.broadcast({ type: 'actors', at: clock.wallNow(), actors: changed });
    if (events.length > 0) this.broadcast({ type: 'events', events });
  }

  private sendPanels(): void {
    const panels = this.panels();
    if (panels.account) this.equity.add(panels.at, panels.account.netPnl);
    if (this.clients.size > 0) this.broadcast({ type: 'panels', panels: { ...panels, equity: this.equity.points() } });
  }

  private sendChain(): void {
    if (this.clients.size === 0) return;
    const chain = this.chain();
    if (!chain) return;
    const text = JSON.stringify({ type: 'chain', chain } satisfies ServerMessage);
    if (text === this.sentChain) return;
    this.sentChain = text;
    this.broadcastText(text);
  }

  private broadcast(message: ServerMessage): void {
    this.broadcastText(JSON.stringify(message));
  }

  private broadcastText(text: string): void {
    for (const ws of this.clients.keys()) this.send(ws, text);
  }

  /** Every message to a client goes through here, so none can grow its buffer past MAX_CLIENT_BUFFER. */
  private send(ws: WebSocket, text: string): void {
    if (ws.readyState !== ws.OPEN) return;
    if (ws.bufferedAmount > MAX_CLIENT_BUFFER) {
      this.options.log.warn({ buffered: ws.bufferedAmount }, 'inspector client too slow: dropped (it will reconnect and resync)');
      ws.terminate();
      return;
    }
    ws.send(text);
  }

  /** Why a request (or upgrade) is not for this inspector, or null when it is. */
  private misdirected(req: IncomingMessage): RequestError | null {
    const { host, origin } = req.headers;
    if (!hostAllowed(host, this.options.host, this.options.allowedHosts)) {
      return new RequestError(421, `host ${JSON.stringify(host ?? '')} is not this inspector's: it answers to localhost, ${this.options.host}, IP addresses and the names in its allowedHosts setting (add the name you reach it by there)`);
    }
    if (!originAllowed(origin, host)) return new RequestError(403, `origin ${JSON.stringify(origin)} is not this inspector's: only its own page (http://${host}) may read it`);
    return null;
  }

  private upgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    socket.on('error', (err) => this.options.log.debug({ err }, 'inspector upgrade socket error'));
    const refused = this.misdirected(req);
    if (refused) {
      rawAnswer(socket, refused.status, refused.status === 421 ? 'Misdirected Request' : 'Forbidden', refused.message);
      return;
    }
    let path: string;
    try {
      path = pathOf(req.url);
    } catch (err) {
      if (!(err instanceof RequestError)) throw err;
      rawAnswer(socket, 400, 'Bad Request', err.message);
      return;
    }
    if (path !== '/ws') {
      rawAnswer(socket, 404, 'Not Found', 'the WebSocket stream is at /ws');
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      try {
        this.connected(ws);
      } catch (err) {
        this.bug(err, 'greeting a WebSocket client', () => ws.terminate());
      }
    });
  }

  private connected(ws: WebSocket): void {
    const { log, clock } = this.options;
    this.clients.set(ws, { resyncs: RESYNC_BURST, at: clock.now(), told: false });
    ws.on('error', (err) => log.debug({ err }, 'inspector client error'));
    ws.on('close', () => {
      this.clients.delete(ws);
      log.debug({ clients: this.clients.size }, 'inspector client left');
    });
    log.debug({ clients: this.clients.size }, 'inspector client attached');
    this.send(ws, JSON.stringify(this.snapshot()));
    ws.on('message', (data, isBinary) => {
      try {
        this.received(ws, data, isBinary);
      } catch (err) {
        this.bug(err, 'answering a WebSocket message', () => ws.close(1011, 'inspector error'));
      }
    });
  }

  private received(ws: WebSocket, data: RawData, isBinary: boolean): void {
    const reply = (m: ServerMessage) => this.send(ws, JSON.stringify(m));
    let message: Partial<ClientMessage>;
    try {
      message = JSON.parse(isBinary ? '' : data.toString()) as Partial<ClientMessage>;
    } catch {
      reply({ type: 'error', message: 'malformed JSON: expected {"type":"resync"}' });
      return;
    }
    if (message?.type === 'resync') this.resync(ws, reply);
    else reply({ type: 'error', message: `unknown message type ${JSON.stringify(message?.type)}: expected {"type":"resync"}` });
  }

  /**
   * A snapshot if the client's allowance has one, else nothing: a flood of
   * resyncs costs one JSON.parse each, not a serialization of the tree. The
   * first ignored one gets an error, so a client learns why; the rest of a
   * flood get nothing, so that answering it costs nothing either.
   */
  private resync(ws: WebSocket, reply: (m: ServerMessage) => void): void {
    const client = this.clients.get(ws);
    if (!client) return;
    const now = this.options.clock.now();
    client.resyncs = Math.min(RESYNC_BURST, client.resyncs + (now - client.at) / RESYNC_REFILL_MS);
    client.at = now;
    if (client.resyncs >= 1) {
      client.resyncs -= 1;
      client.told = false;
      reply(this.snapshot());
    } else if (!client.told) {
      client.told = true;
      reply({ type: 'error', message: `resync ignored: at most ${RESYNC_BURST} at once, then one every ${RESYNC_REFILL_MS} ms (the stream keeps you current meanwhile)` });
    }
  }

  private async answer(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const { status, body, type } = await this.route(req);
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    } catch (err) {
      if (!(err instanceof RequestError)) {
        // A bug: the client learns that much, the inspector fails and is restarted.
        this.bug(err, `answering ${req.method} ${req.url}`, () => {
          if (res.headersSent) res.destroy();
          else {
            res.writeHead(500, { 'content-type': 'application/json', connection: 'close' });
            res.end(JSON.stringify({ error: 'inspector error: see the daemon log' }));
          }
        });
        return;
      }
      if (res.headersSent) {
        res.destroy();
        return;
      }
      // Whatever is left of a refused body is not read: close the connection instead.
      res.writeHead(err.status, { 'content-type': 'application/json', ...err.headers, ...(req.complete ? {} : { connection: 'close' }) });
      res.end(JSON.stringify({ error: err.message }));
    }
  }

  private async route(req: IncomingMessage): Promise<{ status: number; body: string | Buffer; type: string }> {
    const { bus, services, tree, clock } = this.options;
    const refused = this.misdirected(req);
    if (refused) throw refused;
    const path = pathOf(req.url);
    const json = (value: unknown, status = 200) => ({ status, body: JSON.stringify(value), type: 'application/json' });
    const get = () => {
      if (req.method !== 'GET' && req.method !== 'HEAD') throw new RequestError(405, `${req.method} ${path}: only GET here`, { allow: 'GET, HEAD' });
    };

    if (path.startsWith('/api/control/')) return json(await this.control(req, path.slice('/api/control/'.length)));
    const file = this.web.get(path);
    if (file) {
      get();
      return { status: 200, body: file.body, type: file.type };
    }
    const actor = /^\/api\/actors\/([^/]+)$/.exec(path);
    if (actor) {
      get();
      let id: string;
      try {
        id = decodeURIComponent(actor[1]!);
      } catch {
        throw new RequestError(400, `malformed actor id '${actor[1]}' in the URL: a % must start an escape such as %20`);
      }
      const detail = tree.detail(id);
      if (!detail) throw new RequestError(404, `no actor '${id}' (actors: ${tree.actors().map((a) => a.id).join(', ')})`);
      return json(detail);
    }
    switch (path) {
      case '/health': {
        get();
        const health = checkSystemHealth(bus, services, tree.phase(), clock);
        return json(health, health.overall_status === 'CRITICAL' ? 503 : 200);
      }
      case '/metrics':
        get();
        return { status: 200, body: await this.metrics.render(), type: this.metrics.contentType };
      case '/api/actors':
        get();
        return json({ instance: this.options.instance, phase: tree.phase(), actors: tree.actors(), events: tree.events() });
      case '/api/features':
        get();
        return json(featuresReport(bus, services));
      case '/api/positions':
        get();
        return json(positionsReport(bus) ?? this.absent('positions', 'paper_trader'));
      case '/api/orders':
        get();
        return json(ordersReport(services) ?? this.absent('orders', 'journal'));
      case '/api/chain':
        get();
        return json(this.chain() ?? this.absent('option chain', 'option_chain'));
      case '/api/cluster':
        get();
        return json(clusterPanel(bus) ?? this.absent('cluster view', 'shard_reader'));
      case '/':
        throw new RequestError(404, `the web page is not installed (no index.html in ${this.options.webDir ?? WEB_DIR})`);
    }
    throw new RequestError(404, `no route ${path}: try /, /health, /metrics, /api/actors, /api/actors/<id>, /api/features, /api/positions, /api/orders, /api/chain, /api/cluster, POST /api/control/<command>, or the WebSocket /ws`);
  }

  private absent(what: string, component: string): never {
    throw new RequestError(503, `no ${what} yet: is the ${component} component configured and running?`);
  }

  private async control(req: IncomingMessage, command: string) {
    if (req.method !== 'POST') throw new RequestError(405, `control commands are POST requests`, { allow: 'POST' });
    if (!authorized(req.headers.authorization, this.options.token)) {
      this.options.log.warn({ command, from: req.socket.remoteAddress }, `inspector control refused: missing or wrong token (${command})`);
      throw new RequestError(401, 'control needs the header Authorization: Bearer <token> (the token is in the inspector tokenFile)', { 'www-authenticate': 'Bearer' });
    }
    if (!isControlCommand(command)) throw new RequestError(404, `no control command '${command}': one of ${Object.keys(CONTROL_COMMANDS).join(', ')}`);
    const body = await this.readJson(req);
    const result = await runCommand(command, body, this.options);
    this.options.log.info(auditFields(command, body), `inspector control: ${command} done`);
    return { ok: true, command, ...result };
  }

  /** The request's JSON object body ({} when empty), refusing more than maxBodyBytes. */
  private async readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
    const limit = this.options.maxBodyBytes;
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limit) throw new RequestError(413, `request body of ${declared} bytes is over the limit of ${limit}`);
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > limit) throw new RequestError(413, `request body is over the limit of ${limit} bytes`);
      chunks.push(chunk);
    }
    const text = Buffer.concat(chunks).toString('utf8').trim();
    if (text === '') return {};
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (err) {
      throw new RequestError(400, `malformed JSON body: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new RequestError(400, 'the body must be a JSON object, e.g. {"reason": "..."}');
    return body as Record<string, unknown>;
  }
}

/** Waits for all of `promises`, or `ms`, whichever comes first. */
async function settleWithin(promises: Promise<void>[], ms: number): Promise<void> {
  if (promises.length === 0) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([Promise.all(promises), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}
