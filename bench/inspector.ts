/**
 * Inspector: what attaching the inspector costs the hot path, then what one
 * /metrics scrape costs at 5,000 instruments (bench/metrics-scrape.ts).
 *
 * The same depth ingest (the unmodified IB client reading a recording from
 * a socket, keel's DepthFeed, the bus, the order books) runs two ways in
 * the same process, alternating:
 *   detached  a bare bus, no XState inspection, no inspector;
 *   attached  the bus of a supervised tree inspected as the daemon does,
 *             the inspector component serving it, a WebSocket client (in
 *             a worker, as another process would be) taking every delta
 *             and panel, and /metrics scraped every 250 ms.
 */
import { Worker } from 'node:worker_threads';
import { createActor } from 'xstate';
import { inspectorSettings } from '../src/actors/inspector.js';
import { Bus } from '../src/bus.js';
import { systemClock } from '../src/clock.js';
import { DepthFeed } from '../src/ib/depth-feed.js';
import { startInspection } from '../src/inspector/notable.js';
import { createLogger } from '../src/log.js';
import { OrderBooks } from '../src/market/books.js';
import { serviceLogic } from '../src/supervision/service.js';
import { rootContext, supervisorMachine } from '../src/supervision/supervisor.js';
import { ServiceTable } from '../src/services.js';
import { playDepth, recordDepth, startPlayer } from './ingest.js';
import { scrapeBench } from './metrics-scrape.js';
import { fmt, median, type BenchOptions } from './stats.js';
import { DEPTH_TOPIC, INSPECTOR_TOPIC } from '../src/topics.js';
import { componentSpec } from '../src/actors/registry.js';

const MESSAGES = 600_000;
const TOKEN = 'bench-token-0123456789abcdef';

/** The attached client: takes the stream, scrapes /metrics, reports what it got when told to stop. */
const CLIENT = `
const { parentPort, workerData } = require('node:worker_threads');
const WebSocket = require('ws');
const counts = { snapshot: 0, actors: 0, events: 0, panels: 0, scrapes: 0, bytes: 0 };
const ws = new WebSocket(workerData.url.replace(/^http/, 'ws') + '/ws');
ws.on('message', (data) => {
  counts.bytes += data.length;
  counts[JSON.parse(String(data)).type]++;
});
ws.on('open', () => parentPort.postMessage('open'));
const scrape = setInterval(() => fetch(workerData.url + '/metrics').then((r) => r.text()).then(() => counts.scrapes++, () => {}), 250);
parentPort.on('message', () => {
  clearInterval(scrape);
  ws.close();
  parentPort.postMessage(counts);
});
`;

type Variant = 'detached' | 'attached';

/** The books fed from the feed on `bus`, as l2_microstructure does; returns how to unhook. */
function hookBooks(bus: Bus, services: ServiceTable): { feed: DepthFeed; unhook: () => void } {
  const feed = new DepthFeed(bus, systemClock);
  feed.route(1, { instrument: 0, lastAt: 0, updates: 0 });
  const books = new OrderBooks(1, 10);
  services.provide('bench', 'books', books);
  return { feed, unhook: bus.subscribe(DEPTH_TOPIC, (batch) => books.apply(batch)) };
}

/** A daemon's tree with the inspector serving and a client attached. */
async function attachInspector() {
  const bus = new Bus();
  const services = new ServiceTable();
  services.provide('bench', 'instruments', { symbols: ['SPY'], booked: [true] });
  const inspection = startInspection(bus, services, systemClock);
  const idle = serviceLogic(async () => ({ stop() {} }));
  const root = createActor(supervisorMachine, {
    systemId: 'root',
    inspect: inspection.tree.observe,
    input: rootContext({
      instance: 'bench',
      settings: {
        children: [
          { id: 'journal', kind: 'journal', logic: idle },
          { id: 'ib_connection', kind: 'ib_connection', logic: idle, dependsOn: ['journal'] },
          { id: 'l2_microstructure', kind: 'l2_microstructure', logic: idle, dependsOn: ['ib_connection'] },
          componentSpec('inspector', 'inspector', { settings: inspectorSettings.parse({ port: 0, token: TOKEN }) }),
        ],
        services,
      },
      log: createLogger({ level: 'silent' }),
      clock: systemClock,
      bus,
      fail: (error) => {
        throw error;
      },
    }),
  });
  root.start();
  while (!bus.latest(INSPECTOR_TOPIC) || root.getSnapshot().value !== 'running') await new Promise((resolve) => setTimeout(resolve, 10));
  const { url } = bus.latest(INSPECTOR_TOPIC)!;
  const client = new Worker(CLIENT, { eval: true, workerData: { url } });
  await new Promise((resolve) => client.once('message', resolve));
  return {
    bus,
    services,
    async detach(): Promise<Record<string, number>> {
      client.postMessage('stop');
      const counts = await new Promise<Record<string, number>>((resolve) => client.once('message', resolve));
      await client.terminate();
      root.send({ type: 'shutdown' });
      while (root.getSnapshot().status === 'active') await new Promise((resolve) => setTimeout(resolve, 10));
      inspection.stop();
      return counts;
    },
  };
}

export async function inspectorBench({ runs, progress }: BenchOptions) {
  progress(`inspector: recording ${fmt(MESSAGES)} depth messages from the simulated market`);
  const player = await startPlayer(recordDepth(MESSAGES));
  const attached = await attachInspector();
  const rates: Record<Variant, number[]> = { detached: [], attached: [] };
  const once = async (variant: Variant) => {
    const { feed, unhook } = hookBooks(variant === 'attached' ? attached.bus : new Bus(), variant === 'attached' ? attached.services : new ServiceTable());
    const rate = await playDepth(player.port, MESSAGES, feed.onDepth);
    unhook();
    return rate;
  };
  let counts: Record<string, number>;
  try {
    await once('detached'); // warm-up: JIT and socket buffers
    await once('attached');
    for (let run = 1; run <= runs; run++) {
      for (const variant of ['detached', 'attached'] as const) {
        const rate = await once(variant);
        rates[variant].push(rate);
        progress(`inspector: run ${run}/${runs} ${variant}: ${fmt(rate)} messages/s`);
      }
    }
  } finally {
    counts = await attached.detach();
    await player.stop();
  }
  const detached = median(rates.detached);
  const withInspector = median(rates.attached);
  const slower = (1 - withInspector / detached) * 100;
  const rows = [{ messages: MESSAGES, detachedPerSecond: detached, attachedPerSecond: withInspector, ratio: withInspector / detached, slowerPct: slower, client: counts }];
  const table = [
    '| depth messages per run | detached | attached (inspector serving, 1 WebSocket client, /metrics every 250 ms) | attached / detached | cost of attaching | target |',
    '|---|---|---|---|---|---|',
    `| ${fmt(MESSAGES)} | ${fmt(detached)} msg/s | ${fmt(withInspector)} msg/s | ${(withInspector / detached).toFixed(3)} | ${slower.toFixed(1)} % | <= 5 % |`,
    '',
    `The client took ${fmt(counts.actors ?? 0)} delta, ${fmt(counts.events ?? 0)} event and ${fmt(counts.panels ?? 0)} panel messages (${fmt((counts.bytes ?? 0) / 1024)} KiB) and ${fmt(counts.scrapes ?? 0)} /metrics scrapes over the attached runs.`,
  ].join('\n');
  const scrapes = await scrapeBench({ runs, progress });
  return { rows: [...rows, ...scrapes.rows], table: `${table}\n\n${scrapes.table}` };
}
