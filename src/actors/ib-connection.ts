/**
 * ib_connection: the socket to TWS / IB Gateway through @stoqey/ib.
 *
 *   connecting -> connected <-> degraded      (ready in both: orders work)
 *        ^            |             |
 *        +-- reconnecting <---------+          (backoff with jitter, attempt limit)
 *
 * Ready only after nextValidId. A liveness probe (reqCurrentTime) finds a
 * half-open socket; 1300, 2110, a decode failure, bytes the wire guard
 * refuses or a pacing violation also mean the stream can no longer be
 * trusted, so the link is rebuilt. 326
 * moves to the next client id. Farm outages (2103..2108) and 1100 degrade
 * data but keep orders; an options farm's outage (usopt) leaves the link
 * connected, listed in `farmsDown`: the risk gate stops option trading on it. 1101 voids every subscription (`dataEpoch` bumps).
 * Request errors belong to whoever made the request and are left to them.
 */
import { EventName } from '../ib/api.js';
import { assign, fromCallback, sendTo, setup } from 'xstate';
import { z } from 'zod';
import { classifyIbCode, farmName, isOptionFarm } from '../ib/codes.js';
import { IbLink, listenTo, type IbConnectionState, type IbStatus } from '../ib/link.js';
import { OrderIdLedger } from '../ib/order-ids.js';
import { PRIORITY } from '../ib/pacer.js';
import { FileLocked } from '../journal/file-lock.js';
import { RepeatMerger } from '../log.js';
import { backoffDelay } from '../supervision/backoff.js';
import type { ComponentContext } from '../supervision/component.js';
import { pathFailure, PermanentFailure } from '../supervision/permanent.js';
import { IB_STATUS_TOPIC } from '../topics.js';

export const ibConnectionSettings = z
  .object({
    host: z.string().min(1).default('127.0.0.1'),
    /** TWS paper 7497, live 7496; Gateway paper 4002, live 4001. */
    port: z.number().int().min(1).max(65_535).default(7497),
    clientId: z.number().int().min(0).default(0),
    connectTimeoutMs: z.number().int().positive().default(5_000),
    reconnect: z
      .object({
        minMs: z.number().int().positive().default(250),
        maxMs: z.number().int().positive().default(30_000),
        randomFactor: z.number().min(0).max(1).default(0.2),
        /** Failed attempts in a row before the component gives up and its supervisor takes over; 0 = never. */
        maxAttempts: z.number().int().min(0).default(0),
      })
      .strict()
      .default({ minMs: 250, maxMs: 30_000, randomFactor: 0.2, maxAttempts: 0 }),
    probeIntervalMs: z.number().int().positive().default(5_000),
    probeTimeoutMs: z.number().int().positive().default(3_000),
    /** Outgoing messages per second; IB disconnects above 50. */
    maxMessagesPerSecond: z.number().int().min(1).max(50).default(45),
    /** Where the order-id high-water mark is kept, so ids are never reused across sessions. */
    orderIdFile: z.string().min(1).default('var/order-ids.json'),
  })
  .strict();

export type IbConnectionSettings = z.infer<typeof ibConnectionSettings>;

export class IbConnectionGaveUp extends Error {
  constructor(attempts: number, reason: string) {
    super(`gave up connecting to TWS after ${attempts} failed attempts; last: ${reason}`);
    this.name = 'IbConnectionGaveUp';
  }
}

type ApiEvent =
  | { type: 'api.ready'; nextValidId: number }
  | { type: 'api.closed'; reason: string }
  | { type: 'api.code'; code: number; message: string; reqId: number }
  | { type: 'api.time' };

type Event = ApiEvent | { type: 'shutdown' } | { type: 'probe.failed' };

interface Context {
  readonly ctx: ComponentContext<IbConnectionSettings>;
  readonly link: IbLink;
  /** What TWS says is logged through it: a flood of one message is one line and a count. */
  readonly lines: RepeatMerger;
  readonly clientId: number;
  /** Failed attempts since the last good connection. */
  readonly failures: number;
  readonly reason: string;
  readonly farmsDown: readonly string[];
  /** TWS has lost IB (1100) and not reported it back (1101/1102). */
  readonly ibUnreachable: boolean;
  readonly dataEpoch: number;
}

/** Turns the client's events into machine events, for as long as the actor lives. */
const listen = fromCallback<Event, { link: IbLink; lines: RepeatMerger }>(({ input: { link, lines }, sendBack }) => {
  const { api } = link;
  link.wire.onFailure((reason) => sendBack({ type: 'api.closed', reason }));
  const stopListening = listenTo(api, [
    [EventName.nextValidId, (id: number) => sendBack({ type: 'api.ready', nextValidId: id })],
    [EventName.disconnected, () => sendBack({ type: 'api.closed', reason: 'socket closed' })],
    [EventName.currentTime, () => sendBack({ type: 'api.time' })],
    [EventName.info, (message: string, code: number) => sendBack({ type: 'api.code', code, message, reqId: -1 })],
    [EventName.error, (error: Error, code: number, reqId: number) => sendBack({ type: 'api.code', code, message: error.message, reqId })],
  ]);
  return () => {
    stopListening();
    link.wire.onFailure(undefined);
    lines.flush();
    // However the actor ends, its socket goes with it; a late socket error then has a listener and goes nowhere.
    api.on(EventName.error, () => {});
    api.disconnect();
  };
});

/** Sends reqCurrentTime every interval; no answer within the timeout means the socket is dead, open or not. */
const probe = fromCallback<Event, { link: IbLink; intervalMs: number; timeoutMs: number; ctx: ComponentContext }, Event>(
  ({ input, sendBack, receive }) => {
    const { clock } = input.ctx;
    let deadline: unknown;
    // The deadline starts when the probe leaves the pacer, not when it is queued behind a full window.
    const ask = () => {
      input.link.send(PRIORITY.control, 'liveness probe', (api) => {
        api.reqCurrentTime();
        deadline = clock.setTimeout(() => sendBack({ type: 'probe.failed' }), input.timeoutMs);
      });
    };
    receive(() => {
      clock.clearTimeout(deadline);
      deadline = clock.setTimeout(ask, input.intervalMs);
    });
    deadline = clock.setTimeout(ask, input.intervalMs);
    return () => clock.clearTimeout(deadline);
  },
);

const codeIs =
  (...classes: ReturnType<typeof classifyIbCode>[]) =>
  ({ event }: { event: Event }) =>
    event.type === 'api.code' && classes.includes(classifyIbCode(event.code));

/** Liveness, and why the link must be rebuilt: the same in connected and degraded. */
const LIVE = {
  'api.time': { actions: 'answerProbe' },
  'api.closed': { target: 'reconnecting', actions: 'noteClosed' },
  'probe.failed': { target: 'reconnecting', actions: 'noteProbeFailed' },
} as const;

export const ibConnectionLogic = setup({
  types: {} as { context: Context; input: ComponentContext<IbConnectionSettings>; events: Event },
  actors: { listen, probe },
  delays: {
    connectTimeout: ({ context }) => context.ctx.settings.connectTimeoutMs,
    backoff: ({ context }) => backoffDelay({ ...context.ctx.settings.reconnect, resetAfterMs: 0 }, context.failures - 1, Math.random()),
  },
  guards: {
    exhausted: ({ context }) => context.ctx.settings.reconnect.maxAttempts > 0 && context.failures >= context.ctx.settings.reconnect.maxAttempts,
    streamBroken: codeIs('socket-reset', 'protocol-failure', 'pacing-violation'),
    clientIdInUse: codeIs('client-id-in-use'),
    farmDown: codeIs('farm-down'),
    farmUp: codeIs('farm-up'),
    connectivityLost: codeIs('connectivity-lost'),
    dataLost: codeIs('restored-data-lost'),
    restored: codeIs('restored-data-kept', 'restored-data-lost'),
    optionFarm: ({ event }) => event.type === 'api.code' && (classifyIbCode(event.code) === 'farm-down' || classifyIbCode(event.code) === 'farm-up') && isOptionFarm(farmName(event.message)),
    healthy: ({ context }) => context.farmsDown.every(isOptionFarm) && !context.ibUnreachable,
  },
  actions: {
    answerProbe: sendTo('probe', ({ event }) => event),
    noteClosed: assign({ reason: ({ event }) => (event.type === 'api.closed' ? event.reason : 'socket closed') }),
    noteProbeFailed: assign({ reason: 'liveness probe unanswered: the socket is half-open' }),
    connect: ({ context }) => {
      context.ctx.log.info({ host: context.ctx.settings.host, port: context.ctx.settings.port, clientId: context.clientId }, 'connecting to TWS');
      context.link.api.connect(context.clientId);
    },
    drop: ({ context }) => {
      context.link.ready = false;
      context.link.pacer.clear();
      context.link.api.disconnect();
    },
    recordCode: assign(({ context, event }) => {
      if (event.type !== 'api.code') return {};
      const farm = farmName(event.message);
      switch (classifyIbCode(event.code)) {
        case 'farm-down':
          return { farmsDown: [...new Set([...context.farmsDown, farm])], reason: `${event.code}: ${event.message}` };
        case 'farm-up':
          return { farmsDown: context.farmsDown.filter((f) => f !== farm) };
        case 'connectivity-lost':
          return { ibUnreachable: true, reason: `${event.code}: ${event.message}` };
        case 'restored-data-kept':
        case 'restored-data-lost':
          return { ibUnreachable: false, reason: `${event.code}: ${event.message}` };
        default:
          return { reason: `${event.code}: ${event.message}` };
      }
    }),
    logCode: ({ context, event }) => {
      if (event.type !== 'api.code') return;
      const kind = classifyIbCode(event.code);
      if (kind === 'request') context.lines.line('debug', { code: event.code, reqId: event.reqId }, event.message);
      else if (kind === 'farm-up' || kind === 'restored-data-kept') context.lines.line('info', { code: event.code, kind }, event.message);
      else context.lines.line('warn', { code: event.code, kind }, event.message);
    },
    publish: ({ context }, params: { state: IbConnectionState }) => {
      const status: IbStatus = {
        state: params.state,
        clientId: context.clientId,
        reason: context.reason,
        farmsDown: context.farmsDown,
        dataEpoch: context.dataEpoch,
        since: context.ctx.clock.now(),
      };
      context.ctx.bus.retain(IB_STATUS_TOPIC, status);
    },
  },
}).createMachine({
  id: 'ib_connection',
  context: ({ input }) => ({
    ctx: input,
    link: new IbLink(input.settings, input.clock, openOrderIds(input)),
    lines: new RepeatMerger(input.log, input.clock),
    clientId: input.settings.clientId,
    failures: 0,
    reason: 'starting',
    farmsDown: [],
    ibUnreachable: false,
    dataEpoch: 0,
  }),
  entry: ({ context }) => context.ctx.provide('ibLink', context.link),
  invoke: { src: 'listen', input: ({ context }) => ({ link: context.link, lines: context.lines }) },
  initial: 'connecting',
  on: {
    shutdown: '.stopped',
    'api.code': { actions: 'logCode' },
  },
  states: {
    connecting: {
      entry: [{ type: 'publish', params: { state: 'connecting' } }, 'connect'],
      after: { connectTimeout: { target: 'reconnecting', actions: assign({ reason: 'no nextValidId before the connect timeout' }) } },
      on: {
        'api.ready': {
          target: 'connected',
          actions: [
            assign(({ context }) => ({ failures: 0, farmsDown: [], ibUnreachable: false, reason: 'nextValidId received', dataEpoch: context.dataEpoch + 1 })),
            ({ context, event }) => {
              context.link.orderIds.start(event.nextValidId);
              context.link.ready = true;
              context.ctx.log.info({ clientId: context.clientId, nextValidId: event.nextValidId }, 'connected to TWS: ready');
            },
          ],
        },
        'api.closed': { target: 'reconnecting', actions: 'noteClosed' },
        'api.code': [
          {
            guard: 'clientIdInUse',
            target: 'reconnecting',
            actions: [
              'logCode',
              assign(({ context }) => ({ clientId: context.clientId + 1, reason: `client id ${context.clientId} in use (326): trying ${context.clientId + 1}` })),
            ],
          },
          { guard: 'streamBroken', target: 'reconnecting', actions: ['logCode', 'recordCode'] },
          { actions: 'logCode' },
        ],
      },
    },
    connected: {
      tags: ['ready'],
      entry: { type: 'publish', params: { state: 'connected' } },
      invoke: { id: 'probe', src: 'probe', input: ({ context }) => probeInput(context) },
      on: {
        ...LIVE,
        'api.code': [
          { guard: 'streamBroken', target: 'reconnecting', actions: ['logCode', 'recordCode'] },
          // The options farm carries no stock data: the link stays connected, the risk gate stops option trading on it.
          { guard: 'optionFarm', actions: ['logCode', 'recordCode', { type: 'publish', params: { state: 'connected' } }] },
          { guard: 'farmDown', target: 'degraded', actions: ['logCode', 'recordCode'] },
          { guard: 'connectivityLost', target: 'degraded', actions: ['logCode', 'recordCode'] },
          { guard: 'dataLost', target: 'connected', reenter: true, actions: ['logCode', 'recordCode', assign({ dataEpoch: ({ context }) => context.dataEpoch + 1 })] },
          { actions: 'logCode' },
        ],
      },
    },
    degraded: {
      tags: ['ready'],
      entry: { type: 'publish', params: { state: 'degraded' } },
      invoke: { id: 'probe', src: 'probe', input: ({ context }) => probeInput(context) },
      on: {
        ...LIVE,
        'api.code': [
          { guard: 'streamBroken', target: 'reconnecting', actions: ['logCode', 'recordCode'] },
          {
            guard: 'dataLost',
            actions: ['logCode', 'recordCode', assign({ dataEpoch: ({ context }) => context.dataEpoch + 1 }), { type: 'publish', params: { state: 'degraded' } }],
          },
          { guard: 'restored', actions: ['logCode', 'recordCode'] },
          { guard: 'farmUp', actions: ['logCode', 'recordCode', { type: 'publish', params: { state: 'degraded' } }] },
          { guard: 'farmDown', actions: ['logCode', 'recordCode', { type: 'publish', params: { state: 'degraded' } }] },
          { actions: 'logCode' },
        ],
      },
      always: { guard: 'healthy', target: 'connected' },
    },
    reconnecting: {
      entry: [
        'drop',
        assign({ failures: ({ context }) => context.failures + 1 }),
        ({ context }) => context.ctx.log.warn({ reason: context.reason, failures: context.failures }, `connection to TWS lost (${context.reason}): reconnecting`),
        { type: 'publish', params: { state: 'reconnecting' } },
      ],
      always: {
        guard: 'exhausted',
        actions: ({ context }) => {
          throw new IbConnectionGaveUp(context.failures, context.reason);
        },
      },
      after: { backoff: 'connecting' },
    },
    stopped: {
      type: 'final',
      entry: ['drop', ({ context }) => context.link.orderIds.close(), { type: 'publish', params: { state: 'stopped' } }],
    },
  },
});

/**
 * The order-id mark, locked for this component. Another keel on the same
 * file would hand out the same ids: that is refused for good (exit 2), not
 * retried. An incarnation that died without stopping leaves the lock to the
 * next one (same owner).
 */
function openOrderIds(ctx: ComponentContext<IbConnectionSettings>): OrderIdLedger {
  let orderIds: OrderIdLedger;
  try {
    orderIds = new OrderIdLedger(ctx.settings.orderIdFile, { owner: `${ctx.instance}/${ctx.id}` });
  } catch (error) {
    if (error instanceof FileLocked) {
      throw new PermanentFailure(`${error.message}: stop it, or set components.${ctx.id}.settings.orderIdFile to another file`, 2, { cause: error });
    }
    throw pathFailure(error, { doing: `cannot lock the order-id file ${ctx.settings.orderIdFile}`, setting: `components.${ctx.id}.settings.orderIdFile`, want: 'a file in a directory keel can write' });
  }
  const dead = orderIds.tookOverFrom;
  if (dead) ctx.log.warn({ file: ctx.settings.orderIdFile, holder: dead }, `${ctx.settings.orderIdFile}: took over the lock of pid ${dead.pid} (started ${dead.startedAt}), which is gone`);
  return orderIds;
}

function probeInput(context: Context) {
  const { probeIntervalMs, probeTimeoutMs } = context.ctx.settings;
  return { link: context.link, intervalMs: probeIntervalMs, timeoutMs: probeTimeoutMs, ctx: context.ctx };
}

