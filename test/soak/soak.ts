/**
 * The soak: keel trades on the simulator for N minutes while faults hit it
 * on a schedule (plan.ts), then the broker's record is held against keel's
 * journal (verdicts.ts). Every part is real and runs as its own process:
 * a private redis-server on a free port, `keel sim` with its control API,
 * and `keel run` in ib mode, so orders go over the wire to the simulated
 * broker, whose executions are the truth. Faults come from the sim's
 * control API (drops, 1100/1101, farm outages, NaN depth, silent feeds,
 * late order news, duplicate executions) and from here (Redis and the
 * daemon SIGKILLed and started again, the daemon on the same journal and
 * order-id file).
 *
 * The soak watches the daemon through its inspector: the WebSocket panels
 * say where the gate, the IB link and Redis stand, /metrics gives memory.
 * A fault starts only once the gate is ACTIVE with no condition, so the
 * gate transitions the journal records while it lasts are its doing; they
 * are judged after the run, from the journal, with the fills.
 *
 * The daemon is configured to show a lot in little time: a model that
 * follows the top-of-book imbalance (its sign flips often, so it trades
 * often), short feature horizons, and a 2 s healthy period before trading
 * resumes by itself. It trades SPY's 0DTE options too, held through the
 * close: both processes run one market clock, {@link MARKET_SPEED} times
 * real time, anchored so that the expiry's close falls
 * {@link CLOSE_AFTER_MS} into the run. The broker exercises, assigns or
 * expires them without an event, as IB does; keel must recognise that from
 * the broker's positions, and at the end the journal's account must equal
 * the broker's, shares delivered at the strike included.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, copyFileSync, createWriteStream, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import type { Panels, ServerMessage } from '../../src/inspector/protocol.js';
import { FileJournal } from '../../src/journal/file-journal.js';
import type { GateRecord, LedgerRecord } from '../../src/journal/records.js';
import { writeAffineModel } from '../support/models.js';
import { freePort, startRedis, type TestRedis } from '../support/redis.js';
import { FAULTS, planSoak, type PlannedFault, type SoakPlan } from './plan.js';
import type { Check, DaemonLife, FaultOutcome, SoakReport } from './report.js';
import { compareAccounts, compareFills, compareOrders, judgeFault, judgeMemory, type BrokerExecution, type BrokerOrder, type FillComparison, type MemorySample, type OrderComparison } from './verdicts.js';

export interface SoakOptions {
  readonly minutes: number;
  readonly seed: number;
  /** Keep the run's files (configs, journal, logs) in this directory; without it a temp dir is used, removed after a clean pass. */
  readonly keep?: string;
  /** Progress lines: one per fault, and where things stand every 10 s. */
  readonly progress: (line: string) => void;
}

const INSTANCE = 'soak';
/** Every order of the daemon carries an orderRef starting with its instance. */
const REF_PREFIX = `${INSTANCE}.`;
const SYMBOLS = ['SPY', 'QQQ', 'AAPL'] as const;
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const KEEL = join(ROOT, 'bin', 'keel.js');
/**
 * Memory is judged from 45 s into a daemon's life (the JIT, the heap and the
 * allocator's arenas are still finding their size before that, and the
 * first faults add a reconnect, a resync and a reconciliation to what it
 * has seen) to its end, over at least 45 s: the peak of the resident set in
 * the second half may be at most 20 % above the peak in the first half
 * (verdicts.ts says why peaks and halves). On the 2-core machine this was
 * written on, the peaks of a 10-minute life stayed within 5 %, and those of
 * the CI run's first life within 9 %, its RSS still settling; the bound
 * leaves room for a busier machine. 20 % of a ~200 MB daemon is 40 MB: the
 * CI run's ~70 s window catches a leak of about 70 MB a minute, a
 * ten-minute life one of about 8 MB a minute. Slower leaks need a longer
 * soak.
 */
const MEMORY_WARM_UP_MS = 45_000;
const MEMORY_LIMITS = { minWindowMs: 45_000, maxGrowth: 0.2 };
/** Fewer fills than this and the ledger checks prove nothing. */
const MIN_FILLS = 20;
/** Generous: the machine may be loaded, and nothing here is a timing assertion. */
const DEADLINE_MS = { start: 90_000, halt: 20_000, recover: 45_000, calm: 45_000, stop: 30_000, brokerFault: 30_000 };
/** Bursts of 1,000 resyncs, 100 ms apart (5 s), unless the inspector drops the client first. */
const RESYNC_FLOOD_ROUNDS = 50;
/** How long a fault that the soak ends itself (NaN depth, Redis down) is held once the gate has halted. */
const HOLD_MS = 1_500;
/**
 * A fault is over once the gate has been ACTIVE with no condition for this
 * long: a relapse (trading resumed on a book still damaged, then halted
 * again) is the fault's doing and is shown with it, not counted as a halt
 * without a fault.
 */
const SETTLE_MS = 5_000;
/** A broker fault lasts at least this, and until it has touched an execution. */
const BROKER_FAULT_MS = 5_000;
/** Market time per real time: the close of an expiry day comes within a CI soak. */
const MARKET_SPEED = 10;
/** Real time from the soak's start to the expiry's close: the daemon is up and has bought options by then. */
const CLOSE_AFTER_MS = 55_000;
/** The expiry day the soak crosses: Monday 2026-12-07, which closes at 16:00 New York (21:00 UTC). */
const EXPIRY_CLOSE = Date.UTC(2026, 11, 7, 21, 0);
const SAMPLE_EVERY_MS = 5_000;
const PROGRESS_EVERY_MS = 10_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type LogLine = { msg?: string } & Record<string, unknown>;

/** A `keel` child process: its output goes to a file, JSON lines are handed to listeners, a line can be waited for. */
class KeelProcess {
  readonly child: ChildProcess;
  /** Resolves with the exit code once the output is closed too. */
  readonly exited: Promise<number | null>;
  running = true;
  private readonly listeners = new Set<(line: LogLine) => void>();
  private readonly stderrTail: string[] = [];

  constructor(
    readonly name: string,
    args: readonly string[],
    logFile: string,
  ) {
    const log = createWriteStream(logFile, { flags: 'a' });
    this.child = spawn(process.execPath, [KEEL, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const split = (onLine: (line: string) => void) => {
      let partial = '';
      return (chunk: Buffer) => {
        log.write(chunk);
        const parts = (partial + chunk.toString()).split('\n');
        partial = parts.pop() ?? '';
        parts.forEach(onLine);
      };
    };
    this.child.stdout!.on('data', split((line) => this.onLine(line)));
    this.child.stderr!.on(
      'data',
      split((line) => {
        this.stderrTail.push(line);
        if (this.stderrTail.length > 20) this.stderrTail.shift();
      }),
    );
    this.exited = new Promise((resolve) =>
      this.child.once('close', (code) => {
        this.running = false;
        log.end();
        resolve(code);
      }),
    );
  }

  /** Every JSON log line from now on, until the returned function is called. */
  listen(listener: (line: LogLine) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The first line from now on whose msg starts with `prefix`; rejects after the deadline or when the process ends first. */
  waitFor(prefix: string, timeoutMs: number): Promise<LogLine> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const finish = (error: Error | undefined, line?: LogLine) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        stop();
        if (error) reject(error);
        else resolve(line!);
      };
      const timer = setTimeout(() => finish(new Error(`${this.name}: no '${prefix}' within ${timeoutMs / 1000} s`)), timeoutMs);
      const stop = this.listen((line) => {
        if (line.msg?.startsWith(prefix)) finish(undefined, line);
      });
      void this.exited.then((code) => finish(new Error(`${this.name} exited (${code}) before '${prefix}'; stderr: ${this.stderr()}`)));
    });
  }

  stderr(): string {
    return this.stderrTail.join('\n').slice(-2_000) || '(nothing)';
  }

  private onLine(text: string): void {
    let line: LogLine;
    try {
      line = JSON.parse(text) as LogLine;
    } catch {
      return;
    }
    for (const listener of this.listeners) listener(line);
  }
}

/** The simulator's control API. */
class SimControl {
  constructor(readonly url: string) {}

  async post(path: string): Promise<void> {
    const res = await fetch(`${this.url}${path}`, { method: 'POST' });
    if (!res.ok) throw new Error(`sim control POST ${path}: ${res.status} ${((await res.json()) as { error?: string }).error ?? ''}`);
  }

  async get<T>(path: string): Promise<T> {
    const res = await fetch(`${this.url}${path}`);
    if (!res.ok) throw new Error(`sim control GET ${path}: ${res.status}`);
    return (await res.json()) as T;
  }
}

/** The daemon's inspector stream, kept connected across daemon restarts (the port stays the same); the latest panels. */
class InspectorWatch {
  panels: Panels | undefined;
  private socket: WebSocket | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(readonly url: string) {
    this.connect();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.socket?.terminate();
  }

  private connect(): void {
    const socket = new WebSocket(`${this.url.replace(/^http/, 'ws')}/ws`);
    this.socket = socket;
    socket.on('message', (data) => {
      const message = JSON.parse(String(data)) as ServerMessage;
      if (message.type === 'snapshot' || message.type === 'panels') this.panels = message.panels;
    });
    // A refused or broken connection closes too: try again until the daemon answers.
    socket.on('error', () => {});
    socket.on('close', () => {
      this.panels = undefined;
      if (!this.closed) this.timer = setTimeout(() => this.connect(), 250);
    });
  }
}

/** The `clock` section both processes run on: the same three values, the same market time. */
interface MarketAnchor {
  readonly speed: number;
  readonly marketStart: string;
  readonly realStart: string;
}

function daemonConfig(o: { dir: string; simPort: number; redisUrl: string; inspectorPort: number; model: string; clock: MarketAnchor }): string {
  const instruments = SYMBOLS.map((s) => `        - { symbol: ${s}, depth: { rows: 10 }, ticks: AllLast }`).join('\n');
  return `# Written by the soak (test/soak/soak.ts).
instance: ${INSTANCE}
log: { level: info }
clock: { speed: ${o.clock.speed}, marketStart: '${o.clock.marketStart}', realStart: '${o.clock.realStart}' }
supervisor:
  intensity: { maxRestarts: 20, periodMs: 60000 }
components:
  redis:
    kind: redis
    settings: { url: '${o.redisUrl}', maxBackoffMs: 250, pingMs: 500, pingTimeoutMs: 1500 }
  journal:
    kind: journal
    dependsOn: [redis]
    settings: { path: ${join(o.dir, 'journal.keel')} }
  ib_connection:
    kind: ib_connection
    dependsOn: [journal]
    settings:
      port: ${o.simPort}
      orderIdFile: ${join(o.dir, 'order-ids.json')}
      reconnect: { minMs: 100, maxMs: 1000, randomFactor: 0.2, maxAttempts: 0 }
  subscriptions:
    kind: subscriptions
    dependsOn: [ib_connection]
    # silenceMs stays at its default (5 s): prints can pause for a second or two on a calm tape.
    settings:
      instruments:
${instruments}
  l2_microstructure: { kind: l2_microstructure, dependsOn: [subscriptions] }
  features:
    kind: features
    dependsOn: [l2_microstructure]
    settings: { samplesMs: [200], volHalfLivesMs: [1000], returnHorizonsMs: [1000], flowHalfLifeMs: 1000 }
  feature_health:
    kind: feature_health
    dependsOn: [features, risk_gate]
    # The 1 s return is flat in many windows on a tick grid: judged, never a reason to halt.
    settings: { maxDataAgeMs: 2000, advisory: [ret_1s] }
  predictor:
    kind: predictor
    dependsOn: [features]
    settings: { intervalMs: 200, workers: 1, horizons: { 10s: { base: [${o.model}] } } }
  risk_gate:
    kind: risk_gate
    dependsOn: [journal]
    settings:
      autoResume: true
      healthyPeriodMs: 2000
      # Room for shares delivered by exercise; the portfolio delta counts the stocks' shares too. Near
      # the close an option's theta per day is huge: the greek limits are out of the way, the rest stand.
      limits:
        maxPosition: 2000
        maxOrdersPerSecond: 20
        collarBps: 100
        maxDailyLoss: 1000000
        options: { maxTheta: 1000000000, maxGamma: 1000000, maxVega: 1000000, maxDelta: 5000 }
  paper_trader:
    kind: paper_trader
    dependsOn: [predictor, risk_gate, l2_microstructure]
    settings:
      mode: ib
      replaceAfterMs: 400
      policy: { entryBps: 0.5, exitBps: 0.2, shares: 100, minHoldMs: 0, maxSpreadBps: 50 }
      # 0DTE options on the same signal, held through the close (wide exits: something is held then) for the broker to settle.
      options: { enabled: true, entryBps: 0.5, minMinutesToExpiry: 1, holdThroughExpiry: true, maxHoldMinutes: 30, cooldownMs: 2000, takeProfitPct: 300, stopLossPct: 90 }
      reconcile: { afterExpiryMs: 3000 }
  option_chain:
    kind: option_chain
    dependsOn: [subscriptions]
    settings: { underlying: SPY, expiries: 0..1, strikes: atm ± 5, publishMs: 250 }
  inspector:
    kind: inspector
    settings: { port: ${o.inspectorPort}, tokenFile: ${join(o.dir, 'inspector.token')} }
`;
}

/** What the journal file holds (opening cuts a torn tail off: never open one a daemon has open or is about to replay). */
async function readJournal(path: string): Promise<LedgerRecord[]> {
  const opened = await FileJournal.open(path);
  await opened.journal.close();
  return opened.entries.map((e) => e.record);
}

const distinctFills = (records: readonly LedgerRecord[]) => new Set(records.flatMap((r) => (r.type === 'fill' ? [r.execId] : []))).size;

class Soak {
  private readonly journalPath: string;
  private readonly configPath: string;
  private redis: TestRedis | undefined;
  private sim: KeelProcess | undefined;
  private control: SimControl | undefined;
  private daemon: KeelProcess | undefined;
  private watch: InspectorWatch | undefined;
  private inspectorUrl = '';
  private incarnation = 0;
  /** Wall time the first daemon was ready: the plan's zero. */
  private t0 = 0;
  private readonly started = Date.now();
  private lifeStartedAt = 0;
  private samples: MemorySample[] = [];
  private lastRss: number | undefined;
  private readonly lives: DaemonLife[] = [];
  private readonly outcomes: FaultOutcome[] = [];
  private readonly windows: { outcome: number; startedAt: number; endedAt: number | undefined }[] = [];
  /** Each restart: what it replayed, and the broker's execution count when it was ready (it must trade on). */
  private readonly restarts: { line: string; exact: boolean; executionsAtStart: number }[] = [];
  private readonly reconciliations = { agreed: 0, disagreed: [] as string[] };
  private unexpectedExit: string | undefined;
  private brokerExecutions = 0;
  private simClients: number[] = [];
  private current = 'warm-up';
  private polling = true;
  private clock!: MarketAnchor;
  /** Real time of the expiry's close. */
  private closeAt = 0;

  constructor(
    private readonly plan: SoakPlan,
    private readonly dir: string,
    private readonly options: SoakOptions,
  ) {
    this.journalPath = join(dir, 'journal.keel');
    this.configPath = join(dir, 'keel.yaml');
  }

  /** The whole soak: start, faults, stop, judgement. Whatever goes wrong becomes a failed check. */
  async run(): Promise<Omit<SoakReport, 'kept' | 'dir'>> {
    const checks: Check[] = [];
    let fills: FillComparison | undefined;
    let orders: OrderComparison | undefined;
    let poller: Promise<void> | undefined;
    try {
      await this.start();
      poller = this.poll();
      for (const fault of this.plan.faults) await this.inject(fault);
      // Trading goes on after the last fault (a restarted daemon must trade too) until the minutes are up.
      const end = Math.max(this.t0 + this.plan.durationMs, Date.now() + this.plan.quietTailMs);
      this.current = 'quiet tail';
      await this.waitUntil(() => Date.now() >= end, 'the end of the run', Infinity);
      checks.push(await this.stopDaemon());
    } catch (error) {
      checks.push({ name: 'the soak ran to the end', ok: false, detail: (error as Error).message });
      if (this.daemon?.running) this.daemon.child.kill('SIGKILL');
      await this.daemon?.exited;
    } finally {
      this.polling = false;
      await poller;
      this.closeLife();
    }
    if (this.control) {
      try {
        const judged = await this.judge();
        ({ fills, orders } = judged);
        checks.unshift(...judged.checks);
      } catch (error) {
        checks.push({ name: 'the journal and the broker were read', ok: false, detail: (error as Error).message });
      }
    }
    return {
      ok: checks.every((c) => c.ok),
      minutes: this.options.minutes,
      seed: this.options.seed,
      elapsedMs: Date.now() - this.started,
      checks,
      faults: this.outcomes,
      fills,
      orders,
      lives: this.lives,
    };
  }

  async cleanup(): Promise<void> {
    this.watch?.close();
    if (this.daemon?.running) this.daemon.child.kill('SIGKILL');
    await this.daemon?.exited;
    if (this.sim?.running) this.sim.child.kill('SIGTERM');
    await this.sim?.exited;
    await this.redis?.dispose();
  }

  private async start(): Promise<void> {
    const say = this.options.progress;
    this.redis = await startRedis();
    say(`redis-server on ${this.redis.url}`);
    const realStart = Date.now();
    this.clock = { speed: MARKET_SPEED, marketStart: new Date(EXPIRY_CLOSE - CLOSE_AFTER_MS * MARKET_SPEED).toISOString(), realStart: new Date(realStart).toISOString() };
    this.closeAt = realStart + CLOSE_AFTER_MS;
    const clockFlags = ['--speed', String(this.clock.speed), '--market-start', this.clock.marketStart, '--real-start', this.clock.realStart];
    this.sim = new KeelProcess('keel sim', ['sim', '--port', '0', '--control-port', '0', '--seed', String(this.options.seed), '--updates-per-second', '50', ...clockFlags], join(this.dir, 'sim.log'));
    const [listening, control] = await Promise.all([this.sim.waitFor('TWS simulator listening', DEADLINE_MS.start), this.sim.waitFor('sim control API listening', DEADLINE_MS.start)]);
    this.control = new SimControl(`http://127.0.0.1:${String(control.port)}`);
    say(`keel sim on port ${String(listening.port)}, control ${this.control.url}`);
    // A model that follows the top-of-book imbalance: its sign flips often, so the policy trades a lot.
    const model = writeAffineModel(this.dir, { name: 'imbalance', version: '1', features: ['imbalance_l1'], weights: [4], bias: 0 });
    const inspectorPort = await freePort();
    this.inspectorUrl = `http://127.0.0.1:${inspectorPort}`;
    writeFileSync(this.configPath, daemonConfig({ dir: this.dir, simPort: listening.port as number, redisUrl: this.redis.url, inspectorPort, model, clock: this.clock }));
    this.watch = new InspectorWatch(this.inspectorUrl);
    await this.startDaemon();
    this.t0 = Date.now();
    say(`keel run ready (inspector ${this.inspectorUrl}); ${this.plan.faults.length} faults over ${this.options.minutes} min, files in ${this.dir}`);
  }

  /** Starts a daemon on the config and waits until it trades; returns what it replayed from the journal. */
  private async startDaemon(): Promise<{ records: number; fills: number }> {
    this.incarnation++;
    const daemon = new KeelProcess(`keel run #${this.incarnation}`, ['run', '--config', this.configPath], join(this.dir, `keel-${this.incarnation}.log`));
    this.daemon = daemon;
    daemon.listen((line) => {
      if (line.msg?.startsWith('reconciled with the broker')) this.reconciliations.agreed++;
      if (line.msg?.startsWith('the journal and the broker disagree')) this.reconciliations.disagreed.push(`#${this.incarnation}: ${line.msg}`);
    });
    const [replayed] = await Promise.all([daemon.waitFor('journal replayed', DEADLINE_MS.start), daemon.waitFor('paper trader running', DEADLINE_MS.start)]);
    void daemon.exited.then((code) => {
      if (this.daemon === daemon && this.polling && !this.unexpectedExit) this.unexpectedExit = `${daemon.name} exited (${code}) on its own; stderr: ${daemon.stderr()}`;
    });
    await this.waitUntil(() => this.watch!.panels !== undefined, 'the inspector stream', DEADLINE_MS.start);
    this.lifeStartedAt = Date.now();
    this.samples = [];
    this.lastRss = undefined;
    return { records: replayed.records as number, fills: replayed.fills as number };
  }

  /** Ends the current daemon's life for the memory judgement; its readings go to memory.csv for a closer look. */
  private closeLife(): void {
    if (this.incarnation === 0 || this.lives.some((l) => l.incarnation === this.incarnation)) return;
    this.lives.push({ incarnation: this.incarnation, memory: judgeMemory(this.samples, MEMORY_LIMITS) });
    const csv = join(this.dir, 'memory.csv');
    if (this.incarnation === 1) writeFileSync(csv, 'daemon,seconds_into_life,rss_bytes,heap_used_bytes\n');
    appendFileSync(csv, this.samples.map((m) => `${this.incarnation},${((m.at - this.lifeStartedAt) / 1000).toFixed(1)},${m.rssBytes},${m.heapUsedBytes}\n`).join(''));
  }

  /** Background: the broker's execution count every second, memory every few seconds, a progress line every so often. */
  private async poll(): Promise<void> {
    let lastSample = 0;
    let lastProgress = Date.now();
    while (this.polling) {
      const now = Date.now();
      try {
        const status = await this.control!.get<{ executions: number; clientIds: number[] }>('/status');
        this.brokerExecutions = status.executions;
        this.simClients = status.clientIds;
      } catch {
        // The sim answers unless it is gone; the checks at the end will say so.
      }
      if (now - lastSample >= SAMPLE_EVERY_MS && this.daemon?.running) {
        lastSample = now;
        const sample = await this.sampleMemory();
        this.lastRss = sample?.rssBytes;
        // Only readings past the warm-up are judged; the others are for the progress line.
        if (sample && now - this.lifeStartedAt >= MEMORY_WARM_UP_MS) this.samples.push(sample);
      }
      if (now - lastProgress >= PROGRESS_EVERY_MS) {
        lastProgress = now;
        this.options.progress(this.progressLine());
      }
      await sleep(1_000);
    }
  }

  private async sampleMemory(): Promise<MemorySample | undefined> {
    try {
      const text = await (await fetch(`${this.inspectorUrl}/metrics`)).text();
      const read = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
      const sample = { at: Date.now(), rssBytes: read('process_resident_memory_bytes'), heapUsedBytes: read('nodejs_heap_size_used_bytes') };
      return Number.isFinite(sample.rssBytes) ? sample : undefined;
    } catch {
      return undefined; // restarting
    }
  }

  private progressLine(): string {
    const clock = (ms: number) => `${Math.floor(ms / 60_000)}:${String(Math.floor((ms % 60_000) / 1000)).padStart(2, '0')}`;
    const p = this.watch?.panels;
    const gate = p?.gate ? `${p.gate.state}${p.gate.state === 'ACTIVE' ? '' : ` (${p.gate.reason.slice(0, 60)})`}` : 'unknown';
    const rss = this.lastRss;
    const done = this.outcomes.length;
    return `soak ${clock(Date.now() - this.t0)}/${clock(this.plan.durationMs)}  fills ${this.brokerExecutions}  faults ${done}/${this.plan.faults.length} (${this.current})  gate ${gate}  RSS ${rss ? `${(rss / 1048576).toFixed(0)} MB` : '-'}  keel #${this.incarnation}`;
  }

  private crossed(): boolean {
    return Date.now() > this.closeAt;
  }

  private gateIs(state: string, calm = false): boolean {
    const p = this.watch?.panels;
    if (!p?.gate || p.gate.state !== state) return false;
    return !calm || (p.gate.conditions.length === 0 && p.ib?.state === 'connected' && p.redis?.state === 'connected');
  }

  /** Polls `check`; throws after the deadline, or at once if the daemon died on its own. */
  private async waitUntil(check: () => boolean, what: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      if (this.unexpectedExit) throw new Error(this.unexpectedExit);
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
      await sleep(50);
    }
  }

  /** When the gate became calm (ACTIVE, no condition, IB and Redis connected) and stayed so for SETTLE_MS; undefined if that did not happen in time. */
  private async settled(timeoutMs: number): Promise<number | undefined> {
    let calmSince: number | undefined;
    const calm = () => {
      if (!this.gateIs('ACTIVE', true)) calmSince = undefined;
      else calmSince ??= Date.now();
      return calmSince !== undefined && Date.now() - calmSince >= SETTLE_MS;
    };
    return (await this.within(calm, 'the gate to stay calm', timeoutMs)) ? calmSince : undefined;
  }

  /** Like waitUntil, but a timeout is an answer (false), not an error. */
  private async within(check: () => boolean, what: string, timeoutMs: number): Promise<boolean> {
    try {
      await this.waitUntil(check, what, timeoutMs);
      return true;
    } catch (error) {
      if (this.unexpectedExit) throw error;
      return false;
    }
  }

  private async inject(fault: PlannedFault): Promise<void> {
    await this.waitUntil(() => Date.now() >= this.t0 + fault.atMs, `the time of ${fault.kind}`, Infinity);
    const record = (o: Omit<FaultOutcome, 'atMs' | 'kind' | 'symbol'>) => this.outcomes.push({ atMs: fault.atMs, kind: fault.kind, symbol: fault.symbol, ...o }) - 1;
    // The run may overrun its minutes while faults recover, but not without bound.
    const cap = this.t0 + this.plan.durationMs + Math.max(60_000, this.plan.durationMs / 4);
    if (Date.now() > cap - DEADLINE_MS.recover) {
      record({ startedMs: undefined, observed: '-', recoveredInMs: undefined, ok: false, problem: 'not injected: the run ran out of time' });
      return;
    }
    if (!(await this.within(() => this.gateIs('ACTIVE', true), 'a calm gate', DEADLINE_MS.calm))) {
      const gate = this.watch?.panels?.gate;
      record({ startedMs: undefined, observed: gate?.state ?? 'unknown', recoveredInMs: undefined, ok: false, problem: `not injected: the gate was not ACTIVE without conditions (${gate?.state ?? 'unknown'}: ${gate?.reason ?? ''})` });
      return;
    }
    this.current = fault.kind;
    this.options.progress(`fault: ${fault.kind}${fault.kind === 'nan-burst' || fault.kind === 'silent-feed' ? ` on ${fault.symbol}` : ''}: ${FAULTS[fault.kind].what}`);
    const startedAt = Date.now();
    const problem = await this.carryOut(fault);
    const calmSince = await this.settled(DEADLINE_MS.recover);
    const endedAt = calmSince === undefined ? undefined : Date.now();
    const index = record({
      startedMs: startedAt - this.t0,
      observed: '(judged from the journal at the end)',
      recoveredInMs: calmSince === undefined ? undefined : calmSince - startedAt,
      ok: problem === undefined,
      ...(problem === undefined ? {} : { problem }),
    });
    this.windows.push({ outcome: index, startedAt, endedAt });
    this.current = 'between faults';
  }

  /** Injects the fault and ends it; returns a problem found on the way (judged with the journal's gate records later). */
  private async carryOut(fault: PlannedFault): Promise<string | undefined> {
    const sim = this.control!;
    const halted = () => this.within(() => this.gateIs('HALTED'), 'the gate to halt', DEADLINE_MS.halt);
    switch (fault.kind) {
      case 'drop':
        await sim.post('/faults/drop');
        await halted();
        return undefined;
      case 'connectivity':
        await sim.post('/faults/connectivity?restoreAfterMs=2000&dataLost=true');
        await halted();
        return undefined;
      case 'farm':
        await sim.post('/faults/farm?restoreAfterMs=2000');
        await halted();
        return undefined;
      case 'silent-feed':
        await sim.post(`/faults/silence?symbol=${fault.symbol}`);
        await halted();
        return undefined;
      case 'nan-burst':
        await sim.post(`/faults/corrupt-depth?symbol=${fault.symbol}&mode=nan-prices`);
        if (await halted()) await sleep(HOLD_MS);
        await sim.post(`/faults/corrupt-depth?symbol=${fault.symbol}&mode=clean`);
        return undefined;
      case 'redis-kill':
        await this.redis!.kill();
        if (await halted()) await sleep(HOLD_MS);
        await this.redis!.restart();
        return undefined;
      case 'late-order-news':
        return this.brokerFault('/faults/late-order-news?delayMs=500', '/faults/late-order-news?delayMs=0');
      case 'duplicate-executions':
        return this.brokerFault('/faults/duplicate-executions?enabled=true', '/faults/duplicate-executions?enabled=false');
      case 'malformed-message':
        await sim.post('/faults/malformed?kind=reject-not-json');
        if (!(await halted())) return 'the link was not rebuilt after a reject whose JSON is not JSON';
        if (!(await this.settled(DEADLINE_MS.recover))) return 'no recovery after a reject whose JSON is not JSON';
        await sim.post('/faults/malformed?kind=length-sign-bit');
        await halted();
        return undefined;
      case 'resync-flood':
        return this.resyncFlood();
      case 'daemon-kill':
        return this.killDaemon();
    }
  }

  /**
   * A client that asks for the whole picture 1,000 times every 100 ms and
   * never reads the answers. The inspector must shed it; the gate must not
   * notice (no halt in the fault's window, judged from the journal).
   */
  private async resyncFlood(): Promise<string | undefined> {
    const socket = new WebSocket(`${this.inspectorUrl.replace(/^http/, 'ws')}/ws`);
    let dropped = false;
    socket.on('error', () => {});
    socket.on('close', () => (dropped = true));
    await new Promise<void>((resolve) => {
      socket.once('open', () => resolve());
      socket.once('close', () => resolve());
    });
    // Never reads: the replies pile up on the daemon's side of the socket.
    socket.pause();
    const burst = JSON.stringify({ type: 'resync' });
    for (let round = 0; round < RESYNC_FLOOD_ROUNDS && !dropped; round++) {
      for (let i = 0; i < 1_000; i++) socket.send(burst);
      await sleep(100);
    }
    socket.terminate();
    return undefined;
  }

  /** A broker fault holds until it has touched at least one execution (or its deadline), then ends. */
  private async brokerFault(on: string, off: string): Promise<string | undefined> {
    const before = this.brokerExecutions;
    const since = Date.now();
    await this.control!.post(on);
    const touched = await this.within(() => Date.now() - since >= BROKER_FAULT_MS && this.brokerExecutions > before, 'an execution under the fault', DEADLINE_MS.brokerFault);
    await this.control!.post(off);
    // The late news still on its way lands inside the fault's window.
    await sleep(1_000);
    return touched ? undefined : `not exercised: no execution in ${DEADLINE_MS.brokerFault / 1000} s under the fault`;
  }

  /** SIGKILL, then a new daemon on the same journal: it must replay exactly what the file holds and reconcile without a mismatch. */
  private async killDaemon(): Promise<string | undefined> {
    const old = this.daemon!;
    this.daemon = undefined;
    old.child.kill('SIGKILL');
    await old.exited;
    this.closeLife();
    // Read from a copy: a torn last record is the restarted daemon's to find and cut, not ours.
    const copy = join(this.dir, `journal-at-kill-${this.incarnation}.keel`);
    copyFileSync(this.journalPath, copy);
    const records = await readJournal(copy);
    // TWS notices a dead client at once; the new one must not find its client id still taken.
    await this.waitUntil(() => this.simClients.length === 0, 'the simulator to see keel gone', 10_000);
    const disagreedBefore = this.reconciliations.disagreed.length;
    const replayed = await this.startDaemon();
    const expected = { records: records.length, fills: distinctFills(records) };
    const exact = replayed.records === expected.records && replayed.fills === expected.fills;
    const line = `#${this.incarnation}: replayed ${replayed.records} records and ${replayed.fills} fills; the file held ${expected.records} and ${expected.fills}`;
    this.restarts.push({ line, exact, executionsAtStart: this.brokerExecutions });
    if (!exact) return `the restart did not replay the journal exactly: ${line}`;
    if (this.reconciliations.disagreed.length > disagreedBefore) return `reconciliation after the restart: ${this.reconciliations.disagreed.at(-1)}`;
    return undefined;
  }

  private async stopDaemon(): Promise<Check> {
    this.current = 'stopping';
    const daemon = this.daemon!;
    this.closeLife();
    this.polling = false;
    daemon.child.kill('SIGTERM');
    const code = await Promise.race([daemon.exited, sleep(DEADLINE_MS.stop).then(() => 'timeout' as const)]);
    if (code === 'timeout') daemon.child.kill('SIGKILL');
    const ok = code === 0 && this.unexpectedExit === undefined;
    const detail = code === 0 ? `${this.incarnation} daemons; the last stopped with exit 0 on SIGTERM` : `the last daemon ${code === 'timeout' ? `did not stop within ${DEADLINE_MS.stop / 1000} s of SIGTERM` : `exited ${code} on SIGTERM`}; stderr: ${daemon.stderr()}`;
    return { name: 'clean stop', ok, detail };
  }

  /** Everything judged after the run: the journal against the broker, each fault, restarts, reconciliations, memory. */
  private async judge(): Promise<{ checks: Check[]; fills: FillComparison; orders: OrderComparison }> {
    const records = await readJournal(this.journalPath);
    const { executions } = await this.control!.get<{ executions: BrokerExecution[] }>('/executions');
    const { orders } = await this.control!.get<{ orders: BrokerOrder[] }>('/orders');
    const { accounts } = await this.control!.get<{ accounts: { positions: Record<string, number> }[] }>('/positions');
    const fills = compareFills(executions, records, REF_PREFIX);
    const sent = compareOrders(orders, records, REF_PREFIX);
    // The close crossed is EXPIRY_CLOSE's New York date (16:00 there).
    const expiredBy = this.crossed() ? new Date(EXPIRY_CLOSE).toISOString().slice(0, 10).replaceAll('-', '') : '';
    const account = compareAccounts(Object.assign({}, ...accounts.map((a) => a.positions)) as Record<string, number>, records, expiredBy);
    // The journal's times are market time: the fault windows are real time.
    const realTime = (at: number) => Date.parse(this.clock.realStart) + (at - Date.parse(this.clock.marketStart)) / this.clock.speed;
    const gateRecords = records.filter((r): r is GateRecord => r.type === 'gate').map((g) => ({ ...g, at: realTime(g.at) }));
    for (const w of this.windows) {
      const outcome = this.outcomes[w.outcome]!;
      const verdict = judgeFault({ kind: outcome.kind, startedAt: w.startedAt, endedAt: w.endedAt }, gateRecords);
      const problem = outcome.problem ?? verdict.problem;
      this.outcomes[w.outcome] = { ...outcome, observed: verdict.observed, ok: outcome.ok && verdict.ok, ...(problem === undefined ? {} : { problem }) };
    }
    // Halts no fault explains: the gate stopping trading on good data is a fault of keel's.
    const inWindow = (at: number) => this.windows.some((w) => at >= w.startedAt && at <= (w.endedAt ?? Infinity));
    const stray = gateRecords.filter((g) => g.to === 'HALTED' && g.at >= this.t0 && g.by !== 'risk_gate' && !inWindow(g.at));

    const few = (ids: readonly string[]) => (ids.length === 0 ? '' : ` (${ids.slice(0, 3).join(', ')}${ids.length > 3 ? ', ...' : ''})`);
    const failed = this.outcomes.filter((o) => !o.ok);
    const judged = this.lives.filter((l) => l.memory.judged);
    const memoryLine = (l: DaemonLife) =>
      `#${l.incarnation}: peak ${(l.memory.earlyPeakRss / 1048576).toFixed(0)} -> ${(l.memory.latePeakRss / 1048576).toFixed(0)} MB (${(l.memory.rssGrowth * 100).toFixed(1)} %) over ${(l.memory.windowMs / 1000).toFixed(0)} s`;
    const lostOrDoubled = fills.lost.length + fills.doubled.length + fills.phantom.length + fills.misrecorded.length;
    const restarts = this.restarts.map((r, i) => {
      const tradedOn = (this.restarts[i + 1]?.executionsAtStart ?? executions.length) - r.executionsAtStart;
      return { ok: r.exact && tradedOn > 0, line: `${r.line}${r.exact ? '' : ' (MISMATCH)'}; then ${tradedOn} executions` };
    });
    const checks: Check[] = [
      {
        name: 'no fill lost or doubled',
        ok: lostOrDoubled === 0,
        detail:
          `${fills.atBroker} executions at the broker, ${fills.journaled} fills in the journal: ${fills.lost.length} lost${few(fills.lost)}, ` +
          `${fills.doubled.length} doubled${few(fills.doubled.map((d) => `${d.execId} x${d.times}`))}, ${fills.phantom.length} unknown to the broker${few(fills.phantom)}, ` +
          `${fills.misrecorded.length} recorded wrong${few(fills.misrecorded)}`,
      },
      { name: 'enough trading to judge', ok: fills.atBroker >= MIN_FILLS, detail: `${fills.atBroker} executions (at least ${MIN_FILLS})` },
      {
        name: 'every order recorded first and sent once',
        ok: sent.sentTwice.length === 0 && sent.unrecorded.length === 0,
        detail: `${sent.atBroker} orders at the broker: ${sent.sentTwice.length} sent twice${few(sent.sentTwice)}, ${sent.unrecorded.length} not in the journal${few(sent.unrecorded)}`,
      },
      { name: 'no order left working after the stop', ok: sent.leftWorking.length === 0, detail: `${sent.leftWorking.length} working at the broker${few(sent.leftWorking)}` },
      {
        name: 'every fault led to the right gate state',
        ok: failed.length === 0 && this.outcomes.length === this.plan.faults.length,
        detail: `${this.outcomes.length - failed.length} of ${this.plan.faults.length} as expected${failed.length > 0 ? `; ${failed[0]!.kind}: ${failed[0]!.problem ?? ''}` : ''}`,
      },
      { name: 'no halt without a fault', ok: stray.length === 0, detail: stray.length === 0 ? 'none' : `${stray.length}: ${stray.slice(0, 2).map((g) => `by ${g.by}: ${g.reason}`).join('; ')}` },
      { name: 'restarts replayed the journal exactly and traded on', ok: restarts.length > 0 && restarts.every((r) => r.ok), detail: restarts.map((r) => r.line).join('; ') || 'no restart happened' },
      {
        name: 'reconciliations agreed with the broker',
        ok: this.reconciliations.disagreed.length === 0 && this.reconciliations.agreed > 0,
        detail: `${this.reconciliations.agreed} agreed, ${this.reconciliations.disagreed.length} disagreed${few(this.reconciliations.disagreed)}`,
      },
      {
        // The strategy may close its 0DTE before the close: then nothing is left to settle, and the account check below still holds.
        name: 'options traded and settled at the expiry',
        ok: account.optionFills > 0 && this.crossed() && (account.heldAtExpiry === 0 || account.settled > 0),
        detail: `${account.optionFills} option fills; ${account.heldAtExpiry} contracts held into the close; settlements at the close ${this.crossed() ? 'passed' : 'not yet reached'}: ${account.settlements}`,
      },
      { name: "the journal's account equals the broker's", ok: account.differ.length === 0, detail: account.differ.length === 0 ? 'every position, options and shares delivered included' : account.differ.join('; ') },
      {
        name: 'memory flat',
        ok: judged.length > 0 && judged.every((l) => l.memory.ok),
        detail:
          judged.length === 0
            ? `no daemon lived ${MEMORY_LIMITS.minWindowMs / 1000} s past its first ${MEMORY_WARM_UP_MS / 1000} s`
            : `${judged.map(memoryLine).join('; ')}; limit +${MEMORY_LIMITS.maxGrowth * 100} %`,
      },
    ];
    return { checks, fills, orders: sent };
  }
}

/** Runs a soak; never throws for what it finds: every finding is a failed check in the report. */
export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const plan = planSoak(options.minutes, options.seed, SYMBOLS);
  const dir = options.keep === undefined ? mkdtempSync(join(tmpdir(), 'keel-soak-')) : resolve(options.keep);
  mkdirSync(dir, { recursive: true });
  const soak = new Soak(plan, dir, options);
  let report: Omit<SoakReport, 'kept' | 'dir'>;
  try {
    report = await soak.run();
  } finally {
    await soak.cleanup();
  }
  const kept = options.keep !== undefined || !report.ok;
  if (!kept) rmSync(dir, { recursive: true, force: true });
  return { ...report, dir, kept };
}
