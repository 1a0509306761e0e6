/**
 * Ingest: L2 depth messages per second from a socket, through the
 * unmodified @stoqey/ib client, into keel's depth handler (DepthFeed: typed
 * array batches published on the bus to a consumer that reads them), against
 * the same client with a handler that does nothing ('raw'), in the same run.
 *
 * The messages are the simulator market's own (seeded), encoded once; a
 * worker thread plays them to each client as fast as the socket takes them,
 * so the main thread does only what a keel process does: decode and handle.
 */
import { EventName, IBApi, SecType } from '@stoqey/ib';
import { Worker } from 'node:worker_threads';
import { Bus } from '../src/bus.js';
import { systemClock } from '../src/clock.js';
import { DepthFeed } from '../src/ib/depth-feed.js';
import { InstrumentUniverse } from '../src/sim/instruments.js';
import { Market } from '../src/sim/market.js';
import { encodeMessage } from '../src/sim/wire.js';
import { TWS_FRAMES } from './paced-player.js';
import { median, type BenchOptions } from './stats.js';
import { DEPTH_TOPIC } from '../src/topics.js';

const MESSAGES = 300_000;
const MARKET_DEPTH = 12;
const CURRENT_TIME = 49;

/** The market's first `count` depth updates for SPY as MARKET_DEPTH frames, and an end marker. */
export function recordDepth(count: number): Buffer {
  const frames: Buffer[] = [];
  const market = new Market(
    { seed: 7, updatesPerSecond: 1_000 },
    {
      depth: (_i, side, position, operation, priceTicks, size) => {
        if (frames.length < count) frames.push(encodeMessage([MARKET_DEPTH, 1, 1, position, operation, side, priceTicks / 100, size]));
      },
      trade: () => {},
    },
  );
  const book = market.book(new InstrumentUniverse().all[0]!);
  market.watch(book, 0);
  for (let t = 1; frames.length < count; t += 100) market.advanceTo(t);
  frames.push(encodeMessage([CURRENT_TIME, 1, 0]));
  return Buffer.concat(frames);
}

/**
 * The player, in plain JavaScript so the worker needs no loader: answers the
 * handshake and startApi like TWS, then sends the recording on any request.
 */
const PLAYER = `
const { parentPort, workerData } = require('node:worker_threads');
const net = require('node:net');
const recording = Buffer.from(workerData.recording);
${TWS_FRAMES}
const server = net.createServer((socket) => {
  onTwsMessages(socket, (fields) => {
    if (fields[0] === '71') socket.write(frame([9, 1, 1]));
    else socket.write(recording);
  });
  socket.on('error', () => socket.destroy());
});
server.listen(0, '127.0.0.1', () => parentPort.postMessage(server.address().port));
parentPort.on('message', () => server.close(() => process.exit(0)));
`;

type Variant = 'raw' | 'keel';

/** The player in a worker thread, listening on a free port. */
export async function startPlayer(recording: Buffer): Promise<{ port: number; stop: () => Promise<void> }> {
  const player = new Worker(PLAYER, { eval: true, workerData: { recording } });
  const port = await new Promise<number>((resolve) => player.once('message', resolve));
  return {
    port,
    async stop() {
      player.postMessage('stop');
      await new Promise((resolve) => player.once('exit', resolve));
    },
  };
}

/**
 * Connects an unmodified IB client to the player, hands every depth update
 * to `onDepth`, and resolves with messages per second once the whole
 * recording is through.
 */
export async function playDepth(port: number, messages: number, onDepth: DepthFeed['onDepth'] | undefined): Promise<number> {
  const ib = new IBApi({ host: '127.0.0.1', port, maxReqPerSec: 10_000 });
  await new Promise<void>((resolve) => {
    ib.once(EventName.nextValidId, () => resolve());
    ib.connect(1);
  });
  ib.on(EventName.updateMktDepth, onDepth ?? (() => {}));
  const done = new Promise<void>((resolve) => ib.once(EventName.currentTime, () => resolve()));
  const started = performance.now();
  ib.reqMktDepth(1, { symbol: 'SPY', secType: SecType.STK, exchange: 'SMART', currency: 'USD' }, 10, false, []);
  await done;
  const seconds = (performance.now() - started) / 1000;
  ib.disconnect();
  return messages / seconds;
}

/** One client reads the whole recording; resolves with messages per second. */
async function ingest(port: number, variant: Variant): Promise<number> {
  if (variant === 'raw') return playDepth(port, MESSAGES, undefined);
  let handled = 0;
  const bus = new Bus();
  const feed = new DepthFeed(bus, systemClock);
  feed.route(1, { instrument: 0, lastAt: 0, updates: 0 });
  // A consumer that touches every row, as the order book will.
  bus.subscribe(DEPTH_TOPIC, (batch) => {
    for (let row = 0; row < batch.count; row++) if (batch.size[row]! >= 0) handled++;
  });
  const rate = await playDepth(port, MESSAGES, feed.onDepth);
  if (handled !== MESSAGES) throw new Error(`keel's handler saw ${handled} of ${MESSAGES} depth updates`);
  return rate;
}

export async function ingestBench({ runs, progress }: BenchOptions) {
  progress(`ingest: recording ${MESSAGES.toLocaleString('en-US')} depth messages from the simulated market`);
  const recording = recordDepth(MESSAGES);
  const player = await startPlayer(recording);
  const port = player.port;
  const rates: Record<Variant, number[]> = { raw: [], keel: [] };
  try {
    await ingest(port, 'raw'); // warm-up: JIT and socket buffers
    await ingest(port, 'keel');
    for (let run = 1; run <= runs; run++) {
      for (const variant of ['raw', 'keel'] as const) {
        const rate = await ingest(port, variant);
        rates[variant].push(rate);
        progress(`ingest: run ${run}/${runs} ${variant}: ${Math.round(rate).toLocaleString('en-US')} messages/s`);
      }
    }
  } finally {
    await player.stop();
  }
  const raw = median(rates.raw);
  const keel = median(rates.keel);
  const fmt = (x: number) => Math.round(x).toLocaleString('en-US');
  const mb = (recording.length / 2 ** 20).toFixed(1);
  const rows = [{ messages: MESSAGES, bytesMiB: Number(mb), rawPerSecond: raw, keelPerSecond: keel, ratio: keel / raw }];
  const table = [
    '| depth messages | bytes | raw @stoqey/ib decode (no-op handler) | through keel\'s depth handler | keel / raw | keel\'s handler cost |',
    '|---|---|---|---|---|---|',
    `| ${fmt(MESSAGES)} | ${mb} MiB | ${fmt(raw)} msg/s | ${fmt(keel)} msg/s | ${(keel / raw).toFixed(3)} | ${((1 - keel / raw) * 100).toFixed(1)} % of the raw rate |`,
  ].join('\n');
  return { rows, table };
}
