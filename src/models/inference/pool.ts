/**
 * ONNX inference off the event loop. onnxruntime's session.run blocks the
 * thread it runs on, so sessions live in worker threads: every worker holds a
 * session for every loaded model, and the main thread only posts messages,
 * with input and output buffers transferred rather than copied.
 *
 * Faults, as InferenceError kinds:
 * - 'timeout': a run got no answer within timeoutMs. Its worker is stuck inside
 *   session.run, so a fresh worker takes its place at once and the stuck one is
 *   told to exit, which it does when that run ends (it cannot be cut short:
 *   terminating a thread inside onnxruntime aborts the whole process). The other
 *   runs it held reject with 'timeout' too, not retried: the next worker could
 *   get stuck the same way. A run still waiting for a ready worker when its time
 *   runs out rejects with 'timeout' and no worker is touched.
 * - 'non-finite': NaN or ±Infinity in any output; the message names the model and output.
 * - 'session': onnxruntime refused the run, or the worker died (it is replaced).
 * - 'load': the model file was refused; nothing else changes.
 * - 'closed': the pool closed before the answer came.
 * Replacement workers reload every model from the bytes kept here and take no
 * runs until they have.
 *
 * For the same reason, await close() before the process exits: exiting while a
 * worker is inside session.run aborts the process.
 */
import { Worker } from 'node:worker_threads';
import type { Reply, Request, Stop, WorkerSettings } from './worker.js';

export interface ModelInfo {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
}

export interface InferenceResult {
  /** The input given to run(), handed back by the worker (its buffer went there and back): reuse it for the next batch. */
  readonly input?: Float32Array;
  /** By output name. */
  readonly outputs: Readonly<Record<string, Float32Array>>;
  readonly dims: Readonly<Record<string, readonly number[]>>;
  /** Time inside session.run in the worker. */
  readonly inferenceMs: number;
  /** From the run() call to the result on the main thread. */
  readonly totalMs: number;
  /** Which worker answered, 0 to size - 1. */
  readonly worker: number;
}

export type InferenceFault = 'timeout' | 'non-finite' | 'session' | 'load' | 'closed';

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
  readonly workers: number;
  readonly timeoutMs: number;
  /** Threads inside one session.run; 1 is fastest for small batches. Default 1. */
  readonly intraOpNumThreads?: number;
}

// Compiled (this module is dist/.../pool.js, run by bin/keel.js) the worker entry is
// worker.js beside it, imported as it is. From the sources it is TypeScript, and Node 20
// does not apply an inherited `--import tsx` to a worker's entry (nodejs/node#47747): so
// each worker registers tsx itself, then imports the entry (under `node --import tsx` and
// bin/keel.js's tsx fallback alike).
const BOOTSTRAP = import.meta.url.endsWith('.js')
  ? `import(${JSON.stringify(new URL('./worker.js', import.meta.url).href)});`
  : `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))})
  .then((tsx) => { tsx.register(); return import(${JSON.stringify(new URL('./worker.ts', import.meta.url).href)}); });`;

/** The worker's 'ready' message answers this request id, which no request uses. */
const BOOT = 0;

/** A request sent to one worker, waiting for its reply. */
interface Waiter {
  readonly model: string;
  answer(reply: Reply): void;
  fail(error: InferenceError): void;
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
  readonly key: string;
  readonly input: Float32Array;
  readonly dims: readonly number[];
  readonly startedAt: number;
  readonly timer: NodeJS.Timeout;
  /** The worker it was sent to; none while waiting for a ready worker. */
  slot?: Slot;
  readonly resolve: (result: InferenceResult) => void;
  readonly reject: (error: Error) => void;
}

export class InferencePool {
  private readonly slots: Slot[] = [];
  /** Bytes of every model the workers should hold (loaded or loading), to reload replacements. */
  private readonly models = new Map<string, Uint8Array>();
  private readonly loading = new Set<string>();
  /** Every run not yet answered. */
  private readonly runs = new Set<Run>();
  /** Runs waiting for a ready worker, oldest first. */
  private readonly waiting: Run[] = [];
  /** One per worker thread not yet exited, replaced ones included: close() waits for them all. */
  private readonly exits = new Set<Promise<void>>();
  private nextId = BOOT + 1;
  /** Where the next search for the least busy worker starts, so ties go round robin. */
  private nextSlot = 0;
  private closed = false;
  private closing: Promise<void> | undefined;

  private constructor(private readonly options: PoolOptions) {
    for (let i = 0; i < options.workers; i++) this.slots.push(this.spawn(i));
  }

  /** Starts the workers and resolves once every one is ready. */
  static async start(options: PoolOptions): Promise<InferencePool> {
    if (!Number.isInteger(options.workers) || options.workers < 1) throw new Error(`workers must be a positive integer, not ${options.workers}`);
    if (!(options.timeoutMs > 0)) throw new Error(`timeoutMs must be positive, not ${options.timeoutMs}`);
    const pool = new InferencePool(options);
    try {
      await Promise.all(pool.slots.map((slot) => slot.booted));
    } catch (err) {
      await pool.close();
      throw err;
    }
    return pool;
  }

  /** Workers in the pool. */
  get size(): number {
    return this.slots.length;
  }

  /** Runs not yet answered. */
  pending(): number {
    return this.runs.size;
  }

  has(key: string): boolean {
    return this.models.has(key) && !this.loading.has(key);
  }

  /**
   * Loads the model into every worker, so any worker can serve it. A file
   * onnxruntime refuses rejects with kind 'load' and its message.
   */
  async load(key: string, bytes: Uint8Array): Promise<ModelInfo> {
    if (this.closed) throw new InferenceError(key, 'closed', 'the inference pool is closed');
    if (this.models.has(key)) throw new InferenceError(key, 'load', `model "${key}" is already loaded or loading; unload it first or use a new key`);
    // Our own copy, as the caller may reuse theirs; listed before it is sent, so a worker replaced meanwhile reloads it too.
    const copy = bytes.slice();
    this.models.set(key, copy);
    this.loading.add(key);
    const answers = await Promise.allSettled(this.slots.map((slot) => this.send(slot, { type: 'load', id: this.nextId++, key, bytes: copy }, key)));
    this.loading.delete(key);
    if (this.closed) throw new InferenceError(key, 'closed', 'the inference pool closed');

    let info: ModelInfo | undefined;
    let failure: Error | undefined;
    for (const answer of answers) {
      if (answer.status === 'rejected') failure ??= answer.reason as Error;
      else if (answer.value.type === 'failed') failure ??= new InferenceError(key, answer.value.kind, `model "${key}": ${answer.value.message}`);
      else if (answer.value.type === 'loaded') info ??= { inputNames: answer.value.inputNames, outputNames: answer.value.outputNames };
    }
    if (failure || !info) {
      await this.unload(key);
      throw failure ?? new InferenceError(key, 'load', `model "${key}": no worker loaded it`);
    }
    return info;
  }

  /** Releases the model's sessions in every worker; runs already sent still finish. */
  async unload(key: string): Promise<void> {
    if (!this.models.delete(key) || this.closed) return;
    // A worker that dies meanwhile is replaced without the model, which is what unloading wants.
    await Promise.allSettled(this.slots.map((slot) => this.send(slot, { type: 'unload', id: this.nextId++, key }, key)));
  }

  /**
   * Runs a single-input model on input shaped by dims. The input's buffer is
   * transferred to a worker, so afterwards it is detached here: the caller must
   * not read or reuse it (copy first if needed) until the result hands it back.
   */
  run(key: string, input: Float32Array, dims: readonly number[]): Promise<InferenceResult> {
    if (this.closed) return Promise.reject(new InferenceError(key, 'closed', 'the inference pool is closed'));
    if (!this.has(key)) return Promise.reject(new Error(`no model is loaded as "${key}"`));
    // Caught here because a worker silently drops a message whose buffer was already transferred.
    if (input.length !== dims.reduce((a, b) => a * b, 1)) {
      return Promise.reject(new Error(`input has ${input.length} values for dims [${dims.join(', ')}]; an input already given to run() reads as empty`));
    }
    return new Promise((resolve, reject) => {
      const run: Run = {
        id: this.nextId++,
        key,
        input,
        dims,
        startedAt: performance.now(),
        timer: setTimeout(() => this.timedOut(run), this.options.timeoutMs),
        resolve,
        reject,
      };
      this.runs.add(run);
      this.dispatch(run);
    });
  }

  /**
   * Rejects every unanswered run and load with kind 'closed', and resolves once
   * every worker thread has exited; one inside session.run finishes it first.
   */
  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    this.closed = true;
    for (const slot of this.slots) this.retire(slot, 'closed', 'the inference pool closed');
    for (const run of this.waiting.splice(0)) this.settle(run, new InferenceError(run.key, 'closed', 'the inference pool closed'));
    await Promise.all(this.exits);
  }

  /** Starts a worker and sends it every model; it takes runs once it has answered them all. */
  private spawn(index: number): Slot {
    const worker = new Worker(BOOTSTRAP, {
      eval: true,
      execArgv: [], // the bootstrap loads tsx; inherited loader flags do not work in a Node 20 worker
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
    // Messages queue until the worker listens, and it answers in order: these reloads land before any run.
    const reloads = [...this.models].map(([key, bytes]) => this.send(slot, { type: 'load', id: this.nextId++, key, bytes }, key));
    slot.booted = Promise.all([started, ...reloads]).then(() => {
      slot.ready = true;
      this.dispatchWaiting();
    });
    // A worker that dies while starting is replaced by its exit handler; start() reads the failure itself.
    slot.booted.catch(() => {});
    return slot;
  }

  private send(slot: Slot, request: Request, model: string): Promise<Reply> {
    const reply = this.expect(slot, request.id, model);
    slot.worker.postMessage(request);
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

  /** Sends the run to the ready worker with the fewest requests in flight, or queues it until one is ready. */
  private dispatch(run: Run): void {
    const slot = this.leastBusy();
    if (!slot) {
      this.waiting.push(run);
      return;
    }
    run.slot = slot;
    slot.waiters.set(run.id, {
      model: run.key,
      answer: (reply) => this.answered(run, slot, reply),
      fail: (error) => this.settle(run, error),
    });
    try {
      const request: Request = { type: 'run', id: run.id, key: run.key, input: run.input, dims: run.dims };
      slot.worker.postMessage(request, [run.input.buffer as ArrayBuffer]);
    } catch (err) {
      // e.g. an input on a SharedArrayBuffer, which cannot be transferred
      slot.waiters.delete(run.id);
      this.settle(run, err as Error);
    }
  }

  private dispatchWaiting(): void {
    while (this.waiting.length > 0 && this.slots.some((slot) => slot.ready)) this.dispatch(this.waiting.shift()!);
  }

  private leastBusy(): Slot | undefined {
    let best: Slot | undefined;
    for (let i = 0; i < this.slots.length; i++) {
      const slot = this.slots[(this.nextSlot + i) % this.slots.length]!;
      if (slot.ready && (!best || slot.waiters.size < best.waiters.size)) best = slot;
    }
    if (best) this.nextSlot = (best.index + 1) % this.slots.length;
    return best;
  }

  private answered(run: Run, slot: Slot, reply: Reply): void {
    if (reply.type === 'result') {
      const { input, outputs, dims, inferenceMs } = reply;
      this.settle(run, { input, outputs, dims, inferenceMs, totalMs: performance.now() - run.startedAt, worker: slot.index });
    } else if (reply.type === 'failed') {
      this.settle(run, new InferenceError(run.key, reply.kind, reply.message));
    }
  }

  private timedOut(run: Run): void {
    const why = `model "${run.key}" gave no answer within ${this.options.timeoutMs} ms`;
    if (run.slot) {
      this.replace(run.slot, 'timeout', `restarted: ${why}`);
    } else {
      this.waiting.splice(this.waiting.indexOf(run), 1);
      this.settle(run, new InferenceError(run.key, 'timeout', `${why}: no worker was ready`));
    }
  }

  private settle(run: Run, outcome: InferenceResult | Error): void {
    if (!this.runs.delete(run)) return;
    clearTimeout(run.timer);
    if (outcome instanceof Error) run.reject(outcome);
    else run.resolve(outcome);
  }
}
