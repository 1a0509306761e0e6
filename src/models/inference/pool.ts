/**
 * ONNX inference on the main thread or in worker threads. onnxruntime's
 * session.run blocks the thread it runs on: a batch of tens of microseconds
 * is cheaper run right here than sent anywhere, and a large one must not
 * hold the event loop. So every model has a session on the main thread and
 * one in each worker, and each run says where it goes ('here' or 'worker');
 * the predictor chooses per batch from what the pool measured (costOf, hopMs).
 *
 * Workers start as the load asks for them: `minWorkers` with the pool, then
 * one more (up to `workers`) whenever a run finds every worker busy, so a
 * process whose batches all run here never starts one. A frame run is
 * packed by the worker from a FrameHistory in shared memory (packing.ts),
 * with the code the main thread packs its own frame runs with: the message
 * carries only the instruments. Messages, not shared-memory rings, carry
 * the runs: both were built and measured on two busy cores, and waking a
 * worker asleep in Atomics.wait (Atomics.notify, about 13 µs a call) cost
 * the main thread more than postMessage of a small request (66 to 89 µs of
 * main-thread time a run, against 41 to 75 µs), while a 4-row batch's round
 * trip was no shorter (4 to 86 % longer at the median, 100 and 1,000 rows
 * level).
 *
 * Faults, as InferenceError kinds:
 * - 'timeout': a worker run got no answer within timeoutMs. Its worker is
 *   stuck inside session.run, so a fresh worker takes its place at once and
 *   the stuck one is told to exit, which it does when that run ends (it cannot
 *   be cut short: terminating a thread inside onnxruntime aborts the whole
 *   process). The other runs it held reject with 'timeout' too, not retried:
 *   the next worker could get stuck the same way. A run still waiting for a
 *   ready worker when its time runs out rejects with 'timeout' and no worker is
 *   touched. A run on the main thread has no timeout: nothing can interrupt it,
 *   which is why only small batches run here.
 * - 'non-finite': NaN or ±Infinity in any output; the message names the model and output.
 * - 'session': onnxruntime refused the run, or the worker died (it is replaced).
 * - 'stale': a frame run waited in a worker until newer frames overwrote its window.
 * - 'load': the model file was refused; nothing else changes.
 * - 'closed': the pool closed before the answer came.
 * Replacement workers reload every model from the bytes kept here and take no
 * runs until they have.
 *
 * For the same reason, await close() before the process exits: exiting while a
 * worker is inside session.run aborts the process.
 */
import type { Worker } from 'node:worker_threads';
import type * as Ort from 'onnxruntime-node';
import { startThread } from '../../threads.js';
import { BatchCost, Ewma } from './cost.js';
import type { FrameHistory } from './history.js';
import { OutputFault, packWindow, readOutputs, rowLength, type Packing } from './packing.js';
import type { Reply, Request, Stop, WorkerSettings } from './worker.js';

export type { Packing } from './packing.js';

export interface ModelInfo {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
}

export interface InferenceResult {
  /** By output name; the caller's to keep. */
  readonly outputs: Readonly<Record<string, Float32Array>>;
  readonly dims: Readonly<Record<string, readonly number[]>>;
  /** Time inside session.run, on whichever thread ran it. */
  readonly inferenceMs: number;
  /** From the run() call to the result on the main thread. */
  readonly totalMs: number;
  /** Which worker answered, 0 to workers - 1; -1 for the main thread. */
  readonly worker: number;
}

export interface FrameResult extends InferenceResult {
  /** The instruments packed, in row order; one with a non-finite input is left out (none packed: no outputs). */
  readonly rows: Int32Array;
}

/** Where a run goes: the main thread, or a worker. */
export type Where = 'here' | 'worker';

export type InferenceFault = 'timeout' | 'non-finite' | 'session' | 'stale' | 'load' | 'closed';

export class InferenceError extends Error {
  constructor(
    readonly model: string,
    readonly kind: InferenceFault,
    message: string,
  ) {
    super(message);
    this.name = 'InferenceError';
  }
}

export interface PoolOptions {
  /** Most worker threads; 0 runs everything on the main thread. */
  readonly workers: number;
  /** Workers started with the pool; more start as runs find every worker busy. Default: all of them. */
  readonly minWorkers?: number;
  readonly timeoutMs: number;
  /** Threads inside one session.run; 1 is fastest for small batches. Default 1. */
  readonly intraOpNumThreads?: number;
}

/** The worker's 'ready' message answers this request id, which no request uses. */
const BOOT = 0;

/**
 * onnxruntime on the main thread, loaded with the first model: a process that
 * imports the pool and never loads a model (keel sim, keel inspect, a config
 * check) does not map its native library (about 11 MB of RSS).
 */
let ort: typeof Ort | undefined;
async function onnxruntime(): Promise<typeof Ort> {
  ort ??= await import('onnxruntime-node');
  return ort;
}

const NO_ROWS = new Int32Array(0);

/** A request sent to one worker, waiting for its reply. */
interface Waiter {
  readonly model: string;
  answer(reply: Reply): void;
  fail(error: InferenceError): void;
}

interface Model {
  readonly key: string;
  /** The workers' name for it. */
  readonly number: number;
  /** Kept to load it into replacement workers. */
  readonly bytes: Uint8Array;
  readonly packing: Packing | undefined;
  readonly cost: BatchCost;
  /** The main thread's session, once created; then every worker is sent the model. */
  session?: Ort.InferenceSession;
  outputNames: readonly string[];
  /** Loaded everywhere: runs may go. */
  ready: boolean;
  /** Runs on the main thread not finished; an unloaded model's session is released after the last. */
  here: number;
  unloaded: boolean;
  /** Its main-thread session has run once (onnxruntime sets up on the first run: not a measure of cost). */
  ranHere: boolean;
}

interface Slot {
  readonly index: number;
  readonly worker: Worker;
  /** Requests in flight on this worker (nearly all runs), by id. */
  readonly waiters: Map<number, Waiter>;
  /** Started and holding every model: runs may go to it. */
  ready: boolean;
  /** Replaced or closed, and told to exit: its messages and exit no longer matter. */
  retired: boolean;
  /** Settles when the worker is ready; rejects if it dies first. */
  booted: Promise<void>;
}

interface Run {
  readonly id: number;
  readonly model: Model;
  /** The message that sends it, but for its id. */
  readonly request: Extract<Request, { type: 'run' | 'frame' }>;
  /** Transferred with the request: buffers only this run holds. */
  readonly transfer: ArrayBuffer[];
  /** Rows of the batch, for the cost estimate (frame runs: known from the reply). */
  readonly rows: number;
  readonly startedAt: number;
  /** When it was posted to its worker. */
  sentAt: number;
  readonly timer: NodeJS.Timeout;
  /** The worker it was sent to; none while waiting for a ready worker. */
  slot?: Slot;
  readonly resolve: (result: FrameResult) => void;
  readonly reject: (error: Error) => void;
}

export class InferencePool {
  /** By worker index; undefined: not started. */
  private readonly slots: (Slot | undefined)[];
  private readonly models = new Map<string, Model>();
  /** Histories the workers know, to tell replacements. */
  private readonly histories = new Map<number, FrameHistory>();
  /** Every worker run not yet answered. */
  private readonly runs = new Set<Run>();
  /** Runs waiting for a ready worker, oldest first. */
  private readonly waiting: Run[] = [];
  /** Main-thread runs not yet answered; close() waits for them before releasing the sessions. */
  private readonly here = new Set<Promise<FrameResult>>();
  /** One per worker thread not yet exited, replaced ones included: close() waits for them all. */
  private readonly exits = new Set<Promise<void>>();
  private readonly hop = new Ewma();
  private readonly sessionOptions: Ort.InferenceSession.SessionOptions;
  private nextId = BOOT + 1;
  private loadedModels = 0;
  /** Where the next search for the least busy worker starts, so ties go round robin. */
  private nextSlot = 0;
  private closed = false;
  private closing: Promise<void> | undefined;

  private constructor(private readonly options: PoolOptions) {
    this.sessionOptions = { intraOpNumThreads: options.intraOpNumThreads ?? 1, interOpNumThreads: 1, graphOptimizationLevel: 'all', executionMode: 'sequential' };
    this.slots = Array.from({ length: options.workers }, () => undefined);
    for (let i = 0; i < (options.minWorkers ?? options.workers); i++) this.slots[i] = this.spawn(i);
  }

  /** Starts `minWorkers` workers and resolves once every one is ready. */
  static async start(options: PoolOptions): Promise<InferencePool> {
    if (!Number.isInteger(options.workers) || options.workers < 0) throw new Error(`workers must be a whole number, not ${options.workers}`);
    const min = options.minWorkers ?? options.workers;
    if (!Number.isInteger(min) || min < 0 || min > options.workers) throw new Error(`minWorkers must be a whole number from 0 to workers (${options.workers}), not ${min}`);
    if (!(options.timeoutMs > 0)) throw new Error(`timeoutMs must be positive, not ${options.timeoutMs}`);
    const pool = new InferencePool(options);
    try {
      await Promise.all(pool.started().map((slot) => slot.booted));
    } catch (err) {
      await pool.close();
      throw err;
    }
    return pool;
  }

  /** Workers running or starting. */
  get size(): number {
    return this.started().length;
  }

  /** Most workers the pool may run (0: everything runs on the main thread). */
  get maxWorkers(): number {
    return this.options.workers;
  }

  /** Runs not yet answered, on either thread. */
  pending(): number {
    return this.runs.size + this.here.size;
  }

  has(key: string): boolean {
    return this.models.get(key)?.ready === true;
  }

  /** Estimated ms inside onnxruntime for a batch of `rows` of this model, from the batches it ran; Infinity before any. */
  costOf(key: string, rows: number): number {
    return this.models.get(key)?.cost.estimate(rows) ?? Infinity;
  }

  /** Mean ms a worker run spends outside onnxruntime, from its post to its reply (its packing included); NaN before any. */
  get hopMs(): number {
    return this.hop.value;
  }

  /** Starts workers until `count` run (at most `workers`); resolves once they have started, or failed to (they are replaced). */
  async grow(count: number): Promise<void> {
    if (this.closed) return;
    for (let i = 0; i < this.slots.length && this.size < count; i++) if (!this.slots[i]) this.slots[i] = this.spawn(i);
    await Promise.allSettled(this.started().map((slot) => slot.booted));
  }

  /**
   * Loads the model on the main thread and into every worker, so any thread
   * can serve it; `packing` lets it serve frame runs. A file onnxruntime
   * refuses rejects with kind 'load' and its message.
   */
  async load(key: string, bytes: Uint8Array, packing?: Packing): Promise<ModelInfo> {
    if (this.closed) throw new InferenceError(key, 'closed', 'the inference pool is closed');
    if (this.models.has(key)) throw new InferenceError(key, 'load', `model "${key}" is already loaded or loading; unload it first or use a new key`);
    // Our own copy, as the caller may reuse theirs.
    const model: Model = { key, number: ++this.loadedModels, bytes: bytes.slice(), packing, cost: new BatchCost(), outputNames: [], ready: false, here: 0, unloaded: false, ranHere: false };
    this.models.set(key, model);
    let session: Ort.InferenceSession;
    try {
      session = await (await onnxruntime()).InferenceSession.create(model.bytes, this.sessionOptions);
    } catch (err) {
      if (this.models.get(key) === model) this.models.delete(key);
      throw new InferenceError(key, 'load', `model "${key}": ${(err as Error).message}`);
    }
    const refusal = this.closed
      ? new InferenceError(key, 'closed', 'the inference pool closed')
      : this.models.get(key) !== model
        ? new InferenceError(key, 'load', `model "${key}" was unloaded while it loaded`)
        : session.inputNames.length !== 1
          ? new InferenceError(key, 'load', `model "${key}": the model has ${session.inputNames.length} inputs; the pool runs single-input models`)
          : undefined;
    if (refusal) {
      if (this.models.get(key) === model) this.models.delete(key);
      await session.release();
      throw refusal;
    }
    model.session = session;
    model.outputNames = session.outputNames;
    // Workers running now are sent it here; one started from now on gets it from spawn().
    const answers = await Promise.allSettled(this.started().map((slot) => this.send(slot, this.loadRequest(model), key)));
    if (this.closed) throw new InferenceError(key, 'closed', 'the inference pool closed');
    let failure: Error | undefined;
    for (const answer of answers) {
      if (answer.status === 'rejected') failure ??= answer.reason as Error;
      else if (answer.value.type === 'failed') failure ??= new InferenceError(key, answer.value.kind, `model "${key}": ${answer.value.message}`);
    }
    if (failure) {
      await this.unload(key);
      throw failure;
    }
    model.ready = true;
    return { inputNames: session.inputNames, outputNames: session.outputNames };
  }

  /** Releases the model's sessions on every thread; runs already made still finish. */
  async unload(key: string): Promise<void> {
    const model = this.models.get(key);
    if (!model) return;
    this.models.delete(key);
    model.ready = false;
    model.unloaded = true;
    if (model.here === 0) await model.session?.release();
    if (this.closed) return;
    // A worker that dies meanwhile is replaced without the model, which is what unloading wants.
    await Promise.allSettled(this.started().map((slot) => this.send(slot, { type: 'unload', id: this.nextId++, model: model.number }, key)));
  }

  /**
   * Runs a single-input model on `input` shaped by dims, on the main thread
   * or in a worker. A worker run takes the input over, as runFrame takes its
   * instruments (its buffer is transferred: do not use it afterwards; pass a
   * copy to keep one); a run here leaves it as it is. A copy per run was
   * measured: at 2,000-row LSTM batches it doubled what the main thread
   * allocates, and the collections that followed took the event loop's p99
   * from 2-4 ms to 9 ms (bench models).
   */
  run(key: string, input: Float32Array, dims: readonly number[], where: Where = 'worker'): Promise<InferenceResult> {
    const model = this.runnable(key);
    if (model instanceof Error) return Promise.reject(model);
    if (input.length !== dims.reduce((a, b) => a * b, 1)) return Promise.reject(new Error(`input has ${input.length} values for dims [${dims.join(', ')}]`));
    if (where === 'here' || this.options.workers === 0) return this.runHere(model, input, dims, NO_ROWS);
    return this.enqueue(model, { type: 'run', id: 0, model: model.number, input, dims }, [input.buffer as ArrayBuffer], dims[0] ?? 0);
  }

  /**
   * Runs the model on the history's latest frame for `instruments` (each warm
   * for the model's whole window), packed where it runs: on the main thread,
   * or by the worker from the history's shared memory. A worker run takes
   * `instruments` over (it is transferred): do not use it afterwards.
   */
  runFrame(key: string, history: FrameHistory, instruments: Int32Array, where: Where): Promise<FrameResult> {
    const model = this.runnable(key);
    if (model instanceof Error) return Promise.reject(model);
    const p = model.packing;
    if (!p) return Promise.reject(new Error(`model "${key}" was loaded without a packing: it runs on inputs only`));
    const frame = history.latest;
    if (frame < 0) return Promise.reject(new Error('the history has no frame yet'));
    // Nothing to pack; and a list already given to a worker run reads as empty (a worker would drop a
    // message whose buffer is gone, and the run would only time out).
    if (instruments.length === 0) return Promise.resolve({ outputs: {}, dims: {}, inferenceMs: 0, totalMs: 0, worker: -1, rows: NO_ROWS });
    if (where === 'worker' && this.options.workers > 0) {
      this.share(history);
      return this.enqueue(model, { type: 'frame', id: 0, model: model.number, history: history.id, frame, instruments }, [instruments.buffer as ArrayBuffer], NaN);
    }
    const width = rowLength(p);
    const rows = new Float32Array(instruments.length * width);
    const kept = new Int32Array(instruments.length);
    const packed = packWindow(history.views, frame, instruments, instruments.length, p, rows, kept);
    if (packed === 0) return Promise.resolve({ outputs: {}, dims: {}, inferenceMs: 0, totalMs: 0, worker: -1, rows: NO_ROWS });
    const dims = p.window > 1 ? [packed, p.window, p.columns.length] : [packed, p.columns.length];
    return this.runHere(model, rows.subarray(0, packed * width), dims, kept.subarray(0, packed));
  }

  /**
   * Rejects every unanswered worker run and load with kind 'closed', and
   * resolves once every worker thread has exited (one inside session.run
   * finishes it first) and the main thread's runs are done.
   */
  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    this.closed = true;
    for (const slot of this.started()) this.retire(slot, 'closed', 'the inference pool closed');
    for (const run of this.waiting.splice(0)) this.settle(run, new InferenceError(run.model.key, 'closed', 'the inference pool closed'));
    await Promise.all(this.exits);
    await Promise.allSettled(this.here);
    for (const model of this.models.values()) await model.session?.release();
    this.models.clear();
  }

  private runnable(key: string): Model | Error {
    if (this.closed) return new InferenceError(key, 'closed', 'the inference pool is closed');
    const model = this.models.get(key);
    return model?.ready ? model : new Error(`no model is loaded as "${key}"`);
  }

  private started(): Slot[] {
    return this.slots.filter((slot): slot is Slot => slot !== undefined);
  }

  /** A run on the main thread: onnxruntime defers it to a setImmediate, then blocks this thread while it runs. */
  private runHere(model: Model, input: Float32Array, dims: readonly number[], rows: Int32Array): Promise<FrameResult> {
    const session = model.session!;
    const startedAt = performance.now();
    let began = NaN;
    // Scheduled before onnxruntime schedules its own, so it runs just before it: the time inside
    // onnxruntime is measured, not the wait for the loop's turn.
    setImmediate(() => (began = performance.now()));
    model.here++;
    const result: Promise<FrameResult> = session
      .run({ [session.inputNames[0]!]: new ort!.Tensor('float32', input, dims) })
      .then(
        (results) => {
          const inferenceMs = performance.now() - began;
          const { outputs, dims: outputDims } = readOutputs(model.key, model.outputNames, results);
          if (model.ranHere) model.cost.observe(dims[0]!, inferenceMs);
          model.ranHere = true;
          return { outputs, dims: outputDims, inferenceMs, totalMs: performance.now() - startedAt, worker: -1, rows };
        },
        (err: unknown) => {
          throw new InferenceError(model.key, 'session', `model "${model.key}": ${(err as Error).message}`);
        },
      )
      .catch((err: unknown) => {
        throw err instanceof OutputFault ? new InferenceError(model.key, err.kind, err.message) : err;
      })
      .finally(() => {
        this.here.delete(result);
        if (--model.here === 0 && model.unloaded) void session.release();
      });
    this.here.add(result);
    return result;
  }

  private enqueue(model: Model, request: Run['request'], transfer: ArrayBuffer[], rows: number): Promise<FrameResult> {
    return new Promise((resolve, reject) => {
      const run: Run = {
        id: this.nextId++,
        model,
        request,
        transfer,
        rows,
        startedAt: performance.now(),
        sentAt: NaN,
        timer: setTimeout(() => this.timedOut(run), this.options.timeoutMs),
        resolve,
        reject,
      };
      this.runs.add(run);
      if (!this.dispatch(run)) {
        this.waiting.push(run);
        this.growIfBusy();
      }
    });
  }

  /** Sends the run to the ready worker with the fewest requests in flight; false when none is ready. */
  private dispatch(run: Run): boolean {
    const slot = this.leastBusy();
    if (!slot) return false;
    const busy = slot.waiters.size > 0;
    run.slot = slot;
    run.sentAt = performance.now();
    slot.waiters.set(run.id, {
      model: run.model.key,
      answer: (reply) => this.answered(run, slot, reply),
      fail: (error) => this.settle(run, error),
    });
    slot.worker.postMessage({ ...run.request, id: run.id } satisfies Request, run.transfer);
    // Two runs at once on one worker: the load would keep another busy.
    if (busy) this.growIfBusy();
    return true;
  }

  private dispatchWaiting(): void {
    while (this.waiting.length > 0 && this.dispatch(this.waiting[0]!)) this.waiting.shift();
  }

  private leastBusy(): Slot | undefined {
    let best: Slot | undefined;
    for (let i = 0; i < this.slots.length; i++) {
      const slot = this.slots[(this.nextSlot + i) % this.slots.length];
      if (slot?.ready && (!best || slot.waiters.size < best.waiters.size)) best = slot;
    }
    if (best) this.nextSlot = (best.index + 1) % this.slots.length;
    return best;
  }

  /** Starts one more worker, if the pool may have more and none is starting already. */
  private growIfBusy(): void {
    if (this.closed || this.started().some((slot) => !slot.ready && !slot.retired)) return;
    const free = this.slots.indexOf(undefined);
    if (free >= 0) this.slots[free] = this.spawn(free);
  }

  private answered(run: Run, slot: Slot, reply: Reply): void {
    if (reply.type === 'failed') {
      this.settle(run, new InferenceError(run.model.key, reply.kind === 'load' ? 'session' : reply.kind, reply.message));
      return;
    }
    if (reply.type !== 'result') return;
    const { outputs, dims, inferenceMs } = reply;
    const rows = reply.rows ?? NO_ROWS;
    const batch = reply.rows ? rows.length : run.rows;
    const now = performance.now();
    if (!reply.first && batch > 0) {
      run.model.cost.observe(batch, inferenceMs);
      this.hop.observe(now - run.sentAt - inferenceMs);
    }
    this.settle(run, { outputs, dims, inferenceMs, totalMs: now - run.startedAt, worker: slot.index, rows });
  }

  /** Tells every worker about a history the first time a run reads it. */
  private share(history: FrameHistory): void {
    if (this.histories.has(history.id)) return;
    this.histories.set(history.id, history);
    for (const slot of this.started()) slot.worker.postMessage(this.historyRequest(history) satisfies Request);
  }

  private loadRequest(model: Model): Extract<Request, { type: 'load' }> {
    return { type: 'load', id: this.nextId++, key: model.key, model: model.number, bytes: model.bytes, packing: model.packing };
  }

  private historyRequest(history: FrameHistory): Extract<Request, { type: 'history' }> {
    return { type: 'history', history: history.id, buffer: history.buffer, layout: history.layout };
  }

  /** Starts a worker and sends it every history and model; it takes runs once it has loaded them all. */
  private spawn(index: number): Slot {
    const worker = startThread(import.meta.url, 'worker', {
      workerData: { intraOpNumThreads: this.options.intraOpNumThreads ?? 1 } satisfies WorkerSettings,
    });
    const slot: Slot = { index, worker, waiters: new Map(), ready: false, retired: false, booted: Promise.resolve() };
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    this.exits.add(exited);
    void exited.then(() => this.exits.delete(exited));
    worker.on('message', (reply: Reply) => this.received(slot, reply));
    // Listening to 'error' is what keeps a worker's uncaught exception from taking the process down.
    worker.on('error', (err) => this.died(slot, `failed: ${err.message}`));
    worker.on('exit', (code) => this.died(slot, `exited with code ${code}`));

    const started = this.expect(slot, BOOT, '');
    // Messages queue until the worker listens, and it answers in order: these land before any run.
    for (const history of this.histories.values()) worker.postMessage(this.historyRequest(history) satisfies Request);
    const reloads = [...this.models.values()].filter((m) => m.session && !m.unloaded).map((m) => this.send(slot, this.loadRequest(m), m.key));
    slot.booted = Promise.all([started, ...reloads]).then(() => {
      slot.ready = true;
      this.dispatchWaiting();
    });
    // A worker that dies while starting is replaced by its exit handler; start() reads the failure itself.
    slot.booted.catch(() => {});
    return slot;
  }

  private send(slot: Slot, request: Extract<Request, { id: number }>, model: string): Promise<Reply> {
    const reply = this.expect(slot, request.id, model);
    slot.worker.postMessage(request satisfies Request);
    return reply;
  }

  private expect(slot: Slot, id: number, model: string): Promise<Reply> {
    return new Promise((answer, fail) => slot.waiters.set(id, { model, answer, fail }));
  }

  private received(slot: Slot, reply: Reply): void {
    const id = reply.type === 'ready' ? BOOT : reply.id;
    const waiter = slot.waiters.get(id);
    slot.waiters.delete(id);
    waiter?.answer(reply);
    if (reply.type === 'result' || reply.type === 'failed') this.dispatchWaiting();
  }

  private died(slot: Slot, why: string): void {
    if (slot.retired || this.closed) return;
    this.replace(slot, 'session', why);
  }

  /** Retires the worker and starts a fresh one in its place. */
  private replace(slot: Slot, kind: 'timeout' | 'session', why: string): void {
    this.retire(slot, kind, `worker ${slot.index} ${why}`);
    this.slots[slot.index] = this.spawn(slot.index);
  }

  /** Tells the worker to exit (never terminate(): see worker.ts) and rejects what it held with `kind`. */
  private retire(slot: Slot, kind: InferenceFault, message: string): void {
    slot.retired = true;
    slot.ready = false;
    slot.worker.postMessage({ type: 'stop' } satisfies Stop);
    const waiters = [...slot.waiters.values()];
    slot.waiters.clear();
    for (const waiter of waiters) waiter.fail(new InferenceError(waiter.model, kind, message));
  }

  private timedOut(run: Run): void {
    const why = `model "${run.model.key}" gave no answer within ${this.options.timeoutMs} ms`;
    if (run.slot) {
      this.replace(run.slot, 'timeout', `restarted: ${why}`);
    } else {
      this.waiting.splice(this.waiting.indexOf(run), 1);
      this.settle(run, new InferenceError(run.model.key, 'timeout', `${why}: no worker was ready`));
    }
  }

  private settle(run: Run, outcome: FrameResult | Error): void {
    if (!this.runs.delete(run)) return;
    clearTimeout(run.timer);
    if (outcome instanceof Error) run.reject(outcome);
    else run.resolve(outcome);
  }
}
