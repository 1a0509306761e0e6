/**
 * A checkup of a TWS / IB Gateway (or the simulator) from outside keel, for
 * `keel doctor`: it connects as a client of its own and asks what keel will
 * need, one verdict a line. Every wait ends after `timeoutMs`; requests go
 * through keel's pacer, so the checkup never trips IB's message rate.
 *
 * The checkup's subscriptions are not cancelled one by one: its connection
 * closes before the client-id check, and TWS drops a closed client's
 * subscriptions with it.
 */
import { EventName, IBApi, MIN_SERVER_VER, type Contract } from './api.js';
import type { Clock } from '../clock.js';
import { accountRefusal, isPaperAccount, requestManagedAccounts } from './accounts.js';
import { classifyIbCode, farmName } from './codes.js';
import { firstAnswer, listenTo, type ClientListener } from './link.js';
import { Pacer, PRIORITY } from './pacer.js';
import { WireGuard } from './wire-guard.js';

/** @stoqey/ib's MAX_SUPPORTED_SERVER_VERSION (not exported): the version keel's client is built and tested for. */
export const KEEL_SERVER_VERSION: number = MIN_SERVER_VER.CME_TAGGING_FIELDS_IN_OPEN_ORDER;
/** Clock skew thresholds, ms: beyond the first keel's records and TWS's disagree visibly; beyond the second the clock is simply wrong. */
export const SKEW_WARN_MS = 1_000;
export const SKEW_FAIL_MS = 30_000;
/** Farm status arrives right after connecting: it is collected this long (at most the timeout). */
const FARM_WINDOW_MS = 1_000;
/** Instruments whose market-data permission is tried; a universe of thousands would take minutes at IB's rate. */
export const MAX_CHECKED_INSTRUMENTS = 20;
/** Request ids of the checkup's own subscriptions. */
const FIRST_REQ_ID = 1;
/** reqMarketDataType 3: live where permitted, else delayed (with 10167), so one request tells the two apart. */
const DELAYED_WHERE_NOT_LIVE = 3;
/** Tick types of delayed stock data (TickType.DELAYED_BID .. DELAYED_OPEN). */
const DELAYED_TICKS = { from: 66, to: 76 };
const DELAYED_ONLY = 10167;
const DEPTH_LIMIT = 309;
const CLIENT_ID_IN_USE = 326;
const MARKET_DATA_FARM_BROKEN = 2103;

export type Verdict = 'ok' | 'warn' | 'FAIL';

export interface CheckLine {
  readonly verdict: Verdict;
  readonly check: string;
  readonly detail: string;
}

export interface CheckedInstrument {
  readonly symbol: string;
  readonly contract: Contract;
  /** The book keel keeps of it, if any. */
  readonly depth: { readonly rows: number; readonly smart: boolean } | false;
}

export interface CheckupPlan {
  readonly host: string;
  readonly port: number;
  /** The checkup's own client id. */
  readonly clientId: number;
  /** keel's client id, tried last: is it free? */
  readonly keelClientId: number;
  readonly timeoutMs: number;
  /** The instruments keel subscribes to, in its order. */
  readonly instruments: readonly CheckedInstrument[];
  /** Books keel asks for at a time, and the key that says so. */
  readonly depthSlots: number;
  readonly depthSetting: string;
  /** How keel judges the accounts when it sends TWS orders; undefined when it sends none (book mode). */
  readonly orders: { readonly allowLiveAccount: boolean; readonly setting: string } | undefined;
  readonly clock: Clock;
}

type Connection = { readonly ready: true } | { readonly ready: false; readonly reason: string; readonly inUse: boolean };

/** Runs every check, handing each line to `report` in a fixed order as soon as it and those before it are known. */
export async function checkup(plan: CheckupPlan, report: (line: CheckLine) => void): Promise<void> {
  const { clock, timeoutMs } = plan;
  const api = newClient(plan);
  const farms = listenForFarms(api);
  const connected = await connect(api, plan.clientId, clock, timeoutMs);
  const at = `${plan.host}:${plan.port}`;
  const version = api.serverVersion;
  if (!connected.ready) {
    const hint = connected.inUse ? ': pass --client-id with another' : '';
    report(fail('reachable', `${at}: ${connected.reason}${hint}`));
    if (version) report(serverVersionLine(version));
    farms.stop();
    api.disconnect();
    return;
  }
  report(ok('reachable', `${at} answered as TWS / IB Gateway (client id ${plan.clientId})`));
  report(serverVersionLine(version));

  const pacer = new Pacer(clock);
  const ask = <T>(label: string, request: (ib: IBApi) => void, listeners: (settle: (value: T) => void) => readonly ClientListener[]): Promise<T | undefined> => {
    const answer = firstAnswer(api, clock, timeoutMs, listeners);
    pacer.submit(PRIORITY.control, label, () => request(api));
    return answer;
  };
  const send = (request: (ib: IBApi) => void) => {
    pacer.submit(PRIORITY.control, 'managed accounts', () => request(api));
    return true;
  };
  let nextReqId = FIRST_REQ_ID;
  const accounts = requestManagedAccounts(api, clock, timeoutMs, send).then(
    (ids) => accountsLine(ids, plan),
    (error: unknown) => fail('accounts', (error as Error).message),
  );
  const skew = clockSkew(ask, clock, timeoutMs);
  pacer.submit(PRIORITY.control, 'market data type', () => api.reqMarketDataType(DELAYED_WHERE_NOT_LIVE));
  const checked = plan.instruments.slice(0, MAX_CHECKED_INSTRUMENTS);
  const permissions = checked.map((i) => permission(ask, nextReqId++, i, timeoutMs));
  const depth = depthSlots(ask, () => nextReqId++, plan);
  const farmWindow = new Promise<void>((resolve) => clock.setTimeout(resolve, Math.min(FARM_WINDOW_MS, timeoutMs)));

  report(await accounts);
  await farmWindow;
  farms.stop();
  report(farms.line(timeoutMs));
  for (const line of permissions) report(await line);
  const unchecked = plan.instruments.length - checked.length;
  if (unchecked > 0) report(warn('market data', `${unchecked} more instruments not checked (the doctor tries the first ${MAX_CHECKED_INSTRUMENTS})`));
  report(await depth);
  report(await skew);
  pacer.clear();
  api.disconnect();
  report(await keelClientId(plan));
}

const ok = (check: string, detail: string): CheckLine => ({ verdict: 'ok', check, detail });
const warn = (check: string, detail: string): CheckLine => ({ verdict: 'warn', check, detail });
const fail = (check: string, detail: string): CheckLine => ({ verdict: 'FAIL', check, detail });

function newClient(plan: CheckupPlan): IBApi {
  // keel's pacer decides the rate, as in IbLink.
  const api = new IBApi({ host: plan.host, port: plan.port, maxReqPerSec: 10_000 });
  // Whatever is said to nobody in particular goes nowhere: an error event without a listener would throw.
  api.on(EventName.error, () => {});
  // Bytes that would hang or throw in the client end the connection instead.
  const guard = new WireGuard(api);
  guard.onFailure(() => api.disconnect());
  return api;
}

/** Connects as `clientId`: ready at nextValidId; 326, a socket error, a close or silence say why not. */
async function connect(api: IBApi, clientId: number, clock: Clock, timeoutMs: number): Promise<Connection> {
  const answer = firstAnswer<Connection>(api, clock, timeoutMs, (settle) => [
    [EventName.nextValidId, () => settle({ ready: true })],
    [EventName.info, (message: string, code: number) => code === CLIENT_ID_IN_USE && settle({ ready: false, reason: `client id ${clientId} is in use (326)`, inUse: true })],
    [EventName.error, (error: Error, code: number) => settle({ ready: false, reason: `${error.message} (${code})`, inUse: false })],
    [EventName.disconnected, () => settle({ ready: false, reason: 'the connection closed before TWS said it was ready', inUse: false })],
  ]);
  api.connect(clientId);
  const result = await answer;
  return result ?? { ready: false, reason: `no answer within ${timeoutMs} ms (is the API enabled, and this host trusted, in TWS's API settings?)`, inUse: false };
}

function serverVersionLine(version: number): CheckLine {
  if (version >= KEEL_SERVER_VERSION) return ok('server version', `${version} (keel's client is built for ${KEEL_SERVER_VERSION})`);
  return fail('server version', `${version}: keel's client is built for ${KEEL_SERVER_VERSION}; upgrade TWS / IB Gateway`);
}

function accountsLine(ids: readonly string[], plan: CheckupPlan): CheckLine {
  const listed = ids.map((id) => `${id} (${isPaperAccount(id) ? 'paper' : 'LIVE'})`).join(', ');
  if (ids.length > 0 && ids.every(isPaperAccount)) return ok('accounts', listed);
  if (!plan.orders) return warn('accounts', `${listed || 'none reported'}: keel's paper trader is in book mode and sends TWS no order`);
  const refusal = accountRefusal(ids, plan.orders.allowLiveAccount, plan.orders.setting);
  if (refusal !== undefined) return fail('accounts', `${listed ? `${listed}: ` : ''}${refusal}`);
  return warn('accounts', `${listed}: allowLiveAccount is set, so keel would trade it`);
}

/** Farm status messages from the start of the connection: the last word on each farm. */
function listenForFarms(api: IBApi) {
  const farms = new Map<string, { code: number; up: boolean }>();
  const stop = listenTo(api, [
    [
      EventName.info,
      (message: string, code: number) => {
        const kind = classifyIbCode(code);
        if (kind === 'farm-up' || kind === 'farm-down') farms.set(farmName(message), { code, up: kind === 'farm-up' });
      },
    ],
  ]);
  return {
    stop,
    line(timeoutMs: number): CheckLine {
      if (farms.size === 0) return warn('farms', `TWS reported no farm status within ${Math.min(FARM_WINDOW_MS, timeoutMs)} ms of connecting`);
      const listed = [...farms].map(([name, f]) => `${name} ${f.up ? 'OK' : 'BROKEN'} (${f.code})`).join(', ');
      const broken = [...farms.values()].filter((f) => !f.up);
      if (broken.some((f) => f.code === MARKET_DATA_FARM_BROKEN)) return fail('farms', `${listed}: no market data while the market data farm is broken`);
      if (broken.length > 0) return warn('farms', `${listed}: keel requests no historical data, so it can trade`);
      return ok('farms', listed);
    },
  };
}

type Ask = <T>(label: string, request: (ib: IBApi) => void, listeners: (settle: (value: T) => void) => readonly ClientListener[]) => Promise<T | undefined>;

type Answer = { readonly kind: 'data' } | { readonly kind: 'delayed' } | { readonly kind: 'refused'; readonly code: number; readonly message: string };

/** TWS's error about one request id: 10167 (delayed data follows) or a refusal. */
function errorAbout(reqId: number, settle: (answer: Answer) => void): ClientListener {
  return [
    EventName.error,
    (error: Error, code: number, id: number) => id === reqId && settle(code === DELAYED_ONLY ? { kind: 'delayed' } : { kind: 'refused', code, message: error.message }),
  ];
}

/** One instrument's quotes, asked for as keel does but taking delayed data where live is not permitted, so the answer tells which it has. */
async function permission(ask: Ask, reqId: number, instrument: CheckedInstrument, timeoutMs: number): Promise<CheckLine> {
  const check = `market data ${instrument.symbol}`;
  const tick = (settle: (answer: Answer) => void) => (id: number, field: number | undefined) =>
    id === reqId && settle({ kind: field !== undefined && field >= DELAYED_TICKS.from && field <= DELAYED_TICKS.to ? 'delayed' : 'data' });
  const answer = await ask<Answer>(check, (ib) => ib.reqMktData(reqId, instrument.contract, '', false, false), (settle) => [
    [EventName.tickPrice, tick(settle)],
    [EventName.tickSize, tick(settle)],
    [EventName.marketDataType, (id: number, type: number) => id === reqId && settle({ kind: type >= DELAYED_WHERE_NOT_LIVE ? 'delayed' : 'data' })],
    errorAbout(reqId, settle),
  ]);
  if (answer === undefined) return fail(check, `no answer within ${timeoutMs} ms`);
  if (answer.kind === 'data') return ok(check, 'live');
  if (answer.kind === 'delayed') return fail(check, 'delayed only (10167): the account has no live data for it, and keel asks for live');
  return fail(check, `none (${answer.code}: ${answer.message})`);
}

/** The books keel asks for at a time, each requested as keel requests it: granted at its first row, or refused. */
async function depthSlots(ask: Ask, nextReqId: () => number, plan: CheckupPlan): Promise<CheckLine> {
  const check = 'depth slots';
  const wanted = plan.instruments.filter((i) => i.depth !== false);
  if (wanted.length === 0) return ok(check, 'the config keeps no order book');
  const tried = wanted.slice(0, plan.depthSlots);
  if (tried.length === 0) return warn(check, `the config wants ${wanted.length} books but ${plan.depthSetting} is 0`);
  const answers = await Promise.all(
    tried.map((i) => {
      const reqId = nextReqId();
      const depth = i.depth as { rows: number; smart: boolean };
      const granted = (settle: (answer: Answer) => void) => (id: number) => id === reqId && settle({ kind: 'data' });
      return ask<Answer>(`depth ${i.symbol}`, (ib) => ib.reqMktDepth(reqId, i.contract, depth.rows, depth.smart, []), (settle) => [
        [EventName.updateMktDepth, granted(settle)],
        [EventName.updateMktDepthL2, granted(settle)],
        errorAbout(reqId, settle),
      ]);
    }),
  );
  const granted = answers.filter((a) => a?.kind === 'data').length;
  const overLimit = answers.find((a) => a?.kind === 'refused' && a.code === DEPTH_LIMIT);
  if (overLimit?.kind === 'refused') {
    return fail(check, `TWS granted ${granted} of the ${tried.length} books keel asks for at a time (309: ${overLimit.message}); set ${plan.depthSetting} to ${granted}, or free depth lines another client (a running keel?) holds`);
  }
  const problems = tried.flatMap((i, n) => {
    const a = answers[n];
    if (a === undefined) return [`${i.symbol}: no depth within ${plan.timeoutMs} ms`];
    return a.kind === 'refused' ? [`${i.symbol} refused (${a.code}: ${a.message})`] : [];
  });
  if (problems.length > 0) return fail(check, problems.join('; '));
  const waiting = wanted.slice(tried.length).map((i) => i.symbol);
  if (waiting.length > 0) return warn(check, `${granted} of ${granted} granted; the config wants ${wanted.length} books but ${plan.depthSetting} is ${plan.depthSlots}: ${waiting.join(', ')} wait for a slot`);
  return ok(check, `${granted} of ${granted} granted (the config wants ${wanted.length})`);
}

/**
 * reqCurrentTime against this machine's wall clock. TWS answers in whole
 * seconds, so the skew is known within an interval: TWS's time lies in
 * [s, s + 1 s) and it was read between sending and receiving. The verdict
 * goes by the smallest skew the interval allows.
 */
async function clockSkew(ask: Ask, clock: Clock, timeoutMs: number): Promise<CheckLine> {
  const check = 'clock skew';
  let sentAt = NaN;
  const seconds = await ask<number>(
    check,
    (ib) => {
      sentAt = clock.wallNow();
      ib.reqCurrentTime();
    },
    (settle) => [[EventName.currentTime, settle]],
  );
  if (seconds === undefined) return fail(check, `no answer to reqCurrentTime within ${timeoutMs} ms`);
  const receivedAt = clock.wallNow();
  // TWS minus this machine, at least and at most.
  const least = seconds * 1000 - receivedAt;
  const most = seconds * 1000 + 1000 - sentAt;
  const skew = least > 0 ? least : most < 0 ? -most : 0;
  if (skew <= SKEW_WARN_MS) return ok(check, `TWS and this machine agree within ${SKEW_WARN_MS / 1000} s (TWS tells whole seconds)`);
  const estimate = (least + most) / 2;
  const said = `TWS's clock is ${(Math.abs(estimate) / 1000).toFixed(1)} s ${estimate > 0 ? 'ahead of' : 'behind'} this machine's`;
  if (skew <= SKEW_FAIL_MS) return warn(check, `${said}: journal times and TWS's execution times disagree; sync the clock (NTP)`);
  return fail(check, `${said}, over ${SKEW_FAIL_MS / 1000} s: one of the clocks is wrong; the trading day and the executions asked for at reconciliation go by it`);
}

/** Connects briefly as keel would: 326 means a running keel (or another client) holds the id, and keel would take the next. */
async function keelClientId(plan: CheckupPlan): Promise<CheckLine> {
  const check = 'client id';
  const id = plan.keelClientId;
  const api = newClient(plan);
  try {
    const connected = await connect(api, id, plan.clock, plan.timeoutMs);
    if (connected.ready) return ok(check, `${id}, keel's, is free`);
    if (connected.inUse) {
      return warn(check, `${id}, keel's, is in use (326): a running keel holds it, or another API client; a keel starting now would take ${id + 1}`);
    }
    return warn(check, `could not tell whether ${id}, keel's, is free: ${connected.reason}`);
  } finally {
    api.disconnect();
  }
}
