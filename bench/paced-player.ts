/**
 * A market for the end-to-end benchmarks: the simulated market's depth and
 * prints for a few instruments, recorded once, and a TWS stand-in in a
 * worker thread that plays them to any number of unmodified IB clients over
 * real sockets, each at its own paced rate of depth messages per second.
 *
 * The worker answers what a keel tree asks at connect (handshake, startApi,
 * the liveness probe) and routes by the request ids of the client's own
 * reqMktDepth and reqTickByTickData. A client is fed from the moment every
 * instrument's depth is requested; each client has its own cursor into the
 * recording, so every tree sees one continuous market. It logs when each
 * socket write went out, so the bench can tell socket and event-loop wait
 * apart from processing.
 */
import { Worker } from 'node:worker_threads';
import { InstrumentUniverse } from '../src/sim/instruments.js';
import { INSERT, Market, ROWS } from '../src/sim/market.js';

/** Events in play order, column by column: kind 0 depth, 1 print. Prices in cents. */
export interface Recording {
  readonly symbols: readonly string[];
  readonly events: number;
  readonly depthMessages: number;
  readonly kind: Uint8Array;
  readonly instrument: Uint8Array;
  readonly position: Uint8Array;
  readonly operation: Uint8Array;
  readonly side: Uint8Array;
  readonly priceTicks: Int32Array;
  readonly size: Int32Array;
}

/**
 * The market's opening books (inserts, as a subscription snapshot) and then
 * its events, advanced a millisecond at a time so the instruments interleave,
 * until `depthMessages` depth messages are recorded.
 */
export function recordMarket(symbols: readonly string[], depthMessages: number, seed = 7): Recording {
  let capacity = Math.ceil(depthMessages * 1.3);
  const columns = () => ({
    kind: new Uint8Array(capacity),
    instrument: new Uint8Array(capacity),
    position: new Uint8Array(capacity),
    operation: new Uint8Array(capacity),
    side: new Uint8Array(capacity),
    priceTicks: new Int32Array(capacity),
    size: new Int32Array(capacity),
  });
  let c = columns();
  let events = 0;
  let depth = 0;
  const push = (kind: number, instrument: number, position: number, operation: number, side: number, priceTicks: number, size: number) => {
    if (events === capacity) {
      const old = c;
      capacity *= 2;
      c = columns();
      for (const key of Object.keys(c) as (keyof typeof c)[]) c[key].set(old[key]);
    }
    c.kind[events] = kind;
    c.instrument[events] = instrument;
    c.position[events] = position;
    c.operation[events] = operation;
    c.side[events] = side;
    c.priceTicks[events] = priceTicks;
    c.size[events] = size;
    events++;
    if (kind === 0) depth++;
  };
  const universe = new InstrumentUniverse();
  const index = new Map(symbols.map((s, i) => [universe.all.find((x) => x.symbol === s)!.index, i]));
  const market = new Market(
    { seed, updatesPerSecond: 1_000 },
    {
      depth: (i, side, position, operation, priceTicks, size) => push(0, index.get(i)!, position, operation, side, priceTicks, size),
      trade: (i, priceTicks, size) => push(1, index.get(i)!, 0, 0, 0, priceTicks, size),
    },
  );
  for (const symbol of symbols) {
    const book = market.book(universe.all.find((x) => x.symbol === symbol)!);
    for (const side of [0, 1]) for (let row = 0; row < ROWS; row++) push(0, index.get(book.index)!, row, INSERT, side, book.price[side]![row]!, book.size[side]![row]!);
    market.watch(book, 0);
  }
  for (let t = 1; depth < depthMessages; t++) market.advanceTo(t);
  const trim = <T extends Uint8Array | Int32Array>(a: T) => a.slice(0, events) as T;
  return {
    symbols,
    events,
    depthMessages: depth,
    kind: trim(c.kind),
    instrument: trim(c.instrument),
    position: trim(c.position),
    operation: trim(c.operation),
    side: trim(c.side),
    priceTicks: trim(c.priceTicks),
    size: trim(c.size),
  };
}

/**
 * When each socket write of a run went out, in epoch ms (performance.timeOrigin
 * + now, comparable across threads): write k carried the run's depth
 * messages [ends[k-1], ends[k]).
 */
export interface RunWrites {
  readonly ends: Int32Array;
  readonly atEpochMs: Float64Array;
}

/**
 * TWS framing for the bench players (plain JavaScript, pasted into their
 * workers): \`frame(fields)\` encodes a message; \`onTwsMessages\` answers the
 * handshake at server version 193, then hands each client message's fields
 * to \`handle\`.
 */
export const TWS_FRAMES = `
const frame = (fields) => {
  const body = Buffer.from(fields.map((f) => f + '\\0').join(''));
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length);
  return Buffer.concat([head, body]);
};
function onTwsMessages(socket, handle) {
  let buffered = Buffer.alloc(0);
  let greeted = false;
  socket.on('data', (chunk) => {
    buffered = Buffer.concat([buffered, chunk]);
    if (!greeted) {
      if (buffered.length < 8) return;
      const length = buffered.readUInt32BE(4);
      if (buffered.length < 8 + length) return;
      buffered = buffered.subarray(8 + length);
      greeted = true;
      socket.write(frame([193, '20260105 14:30:00 UTC']));
    }
    while (buffered.length >= 4 && buffered.length >= 4 + buffered.readUInt32BE(0)) {
      const fields = buffered.subarray(4, 4 + buffered.readUInt32BE(0)).toString().split('\\0');
      buffered = buffered.subarray(4 + buffered.readUInt32BE(0));
      handle(fields);
    }
  });
}
`;

/** Plain JavaScript, so the worker needs no loader. */
const PLAYER = `
const { parentPort, workerData } = require('node:worker_threads');
const net = require('node:net');
const r = workerData.recording;
const symbols = r.symbols;
const epoch = () => performance.timeOrigin + performance.now();
${TWS_FRAMES}
const clients = new Map();
const server = net.createServer((socket) => {
  socket.setNoDelay(true);
  const client = { socket, live: false, depthReq: symbols.map(() => undefined), tickReq: symbols.map(() => undefined), event: 0, sent: 0, rate: 0, from: 0, fromCount: 0, run: undefined, id: -1 };
  onTwsMessages(socket, (f) => {
    const id = Number(f[0]);
    if (id === 71) {
      client.id = Number(f[2]);
      clients.set(client.id, client);
      socket.write(Buffer.concat([frame([15, 1, 'DU0000000']), frame([9, 1, 1])]));
    } else if (id === 49) socket.write(frame([49, 1, Math.floor(Date.now() / 1000)]));
    else if (id === 10) client.depthReq[symbols.indexOf(f[4])] = f[2];
    else if (id === 97) client.tickReq[symbols.indexOf(f[3])] = f[1];
    else if (id === 98) client.tickReq = client.tickReq.map((x) => (x === f[1] ? undefined : x));
    if (!client.live && client.depthReq.every((x) => x !== undefined)) {
      client.live = true;
      pace(client, workerData.trickle);
    }
  });
  socket.on('error', () => socket.destroy());
  socket.on('close', () => clients.delete(client.id));
});

/** Sends every depth message due by now (and the prints between them) in one write. */
function pump(client) {
  if (!client.live || client.socket.destroyed) return;
  const paced = client.fromCount + Math.floor(((performance.now() - client.from) * client.rate) / 1000);
  const due = client.run ? Math.min(paced, client.run.end) : paced;
  const parts = [];
  let bytes = 0;
  while (client.sent < due && client.event < r.events) {
    const e = client.event++;
    const i = r.instrument[e];
    let body;
    if (r.kind[e] === 0) {
      body = '12\\u00001\\u0000' + client.depthReq[i] + '\\u0000' + r.position[e] + '\\u0000' + r.operation[e] + '\\u0000' + r.side[e] + '\\u0000' + r.priceTicks[e] / 100 + '\\u0000' + r.size[e] + '\\u0000';
      client.sent++;
    } else if (client.tickReq[i] !== undefined) {
      body = '99\\u0000' + client.tickReq[i] + '\\u00002\\u0000' + Math.floor(Date.now() / 1000) + '\\u0000' + r.priceTicks[e] / 100 + '\\u0000' + r.size[e] + '\\u00000\\u0000NSDQ\\u0000\\u0000';
    } else continue;
    parts.push(body);
    bytes += 4 + body.length;
  }
  if (parts.length === 0) return;
  const out = Buffer.allocUnsafe(bytes);
  let o = 0;
  for (const body of parts) {
    out.writeUInt32BE(body.length, o);
    out.latin1Write(body, o + 4);
    o += 4 + body.length;
  }
  client.socket.write(out);
  const run = client.run;
  if (!run) return;
  run.ends.push(client.sent - run.first);
  run.at.push(epoch());
  if (client.sent >= run.end) {
    client.run = undefined;
    pace(client, workerData.trickle);
    parentPort.postMessage({ type: 'done', client: client.id, writes: { ends: Int32Array.from(run.ends), atEpochMs: Float64Array.from(run.at) } });
  }
  if (client.event >= r.events) parentPort.postMessage({ type: 'exhausted', client: client.id });
}

function pace(client, rate) {
  client.from = performance.now();
  client.fromCount = client.sent;
  client.rate = rate;
}

setInterval(() => {
  for (const client of clients.values()) pump(client);
}, 1);

server.listen(0, '127.0.0.1', () => parentPort.postMessage({ type: 'port', port: server.address().port }));
parentPort.on('message', (m) => {
  if (m.type === 'stop') process.exit(0);
  const client = clients.get(m.client);
  if (!client || !client.live) return parentPort.postMessage({ type: 'refused', client: m.client });
  if (m.type === 'pause') {
    pace(client, 0);
    return parentPort.postMessage({ type: 'paused', client: m.client, sent: client.sent });
  }
  // A run of exactly m.count depth messages at m.rate a second, then back to the trickle.
  pace(client, m.rate);
  client.run = { first: client.sent, end: client.sent + m.count, ends: [], at: [] };
  parentPort.postMessage({ type: 'started', client: m.client, firstIndex: client.sent });
});
`;

type Message =
  | { type: 'port'; port: number }
  | { type: 'started'; client: number; firstIndex: number }
  | { type: 'done'; client: number; writes: RunWrites }
  | { type: 'paused'; client: number; sent: number }
  | { type: 'refused'; client: number }
  | { type: 'exhausted'; client: number };

export interface PacedPlayer {
  readonly port: number;
  /**
   * Plays `count` depth messages to the client with this IB client id at
   * `rate` a second (between runs every client gets `trickle` a second).
   * Resolves when the run starts with the 0-based index of its first depth
   * message on this client (DepthFeed sequence number `firstIndex + 1`), and
   * `done` for when its last write went out.
   */
  run(client: number, rate: number, count: number): Promise<{ firstIndex: number; done: Promise<RunWrites> }>;
  /** Stops feeding the client; resolves with the depth messages it was sent in all. */
  pause(client: number): Promise<number>;
  stop(): Promise<void>;
}

export async function startPacedPlayer(recording: Recording, trickle: number): Promise<PacedPlayer> {
  const worker = new Worker(PLAYER, { eval: true, workerData: { recording, trickle } });
  const listeners = new Set<(m: Message) => void>();
  const next = <T extends Message>(match: (m: Message) => m is T) =>
    new Promise<T>((resolve) => {
      const listener = (m: Message) => {
        if (!match(m)) return;
        listeners.delete(listener);
        resolve(m);
      };
      listeners.add(listener);
    });
  worker.on('message', (m: Message) => {
    if (m.type === 'exhausted') throw new Error(`the recording ran out for IB client ${m.client}: record more depth messages`);
    for (const listener of [...listeners]) listener(m);
  });
  const { port } = await next((m): m is Extract<Message, { type: 'port' }> => m.type === 'port');
  return {
    port,
    async run(client, rate, count) {
      const started = next((m): m is Extract<Message, { type: 'started' }> | Extract<Message, { type: 'refused' }> => (m.type === 'started' || m.type === 'refused') && m.client === client);
      const done = next((m): m is Extract<Message, { type: 'done' }> => m.type === 'done' && m.client === client).then((m) => m.writes);
      worker.postMessage({ type: 'run', client, rate, count });
      const m = await started;
      if (m.type === 'refused') throw new Error(`IB client ${client} is not connected to the player, or has not asked for every instrument's depth`);
      return { firstIndex: m.firstIndex, done };
    },
    async pause(client) {
      const paused = next((m): m is Extract<Message, { type: 'paused' }> => m.type === 'paused' && m.client === client);
      worker.postMessage({ type: 'pause', client });
      return (await paused).sent;
    },
    async stop() {
      worker.postMessage({ type: 'stop' });
      await new Promise((resolve) => worker.once('exit', resolve));
    },
  };
}
