/**
 * An inference worker: holds onnxruntime sessions and runs them, one request
 * at a time, off the main thread (session.run blocks the thread it is on).
 * Started by InferencePool; it speaks only the messages below.
 *
 * A frame run is packed here, from the frame history in shared memory, with
 * the code the main thread packs its own batches with (packing.ts): the
 * request carries only the instruments, the reply only their outputs.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import { historyViews, OutputFault, overwritten, packWindow, readOutputs, rowLength, type HistoryLayout, type HistoryViews, type Packing } from './packing.js';

export interface WorkerSettings {
  readonly intraOpNumThreads: number;
}

/** Each but 'history' is answered by one Reply with the same id. Models are known by the pool's number for them. */
export type Request =
  | { readonly type: 'load'; readonly id: number; readonly key: string; readonly model: number; readonly bytes: Uint8Array; readonly packing?: Packing }
  | { readonly type: 'unload'; readonly id: number; readonly model: number }
  | { readonly type: 'history'; readonly history: number; readonly buffer: SharedArrayBuffer; readonly layout: HistoryLayout }
  | { readonly type: 'run'; readonly id: number; readonly model: number; readonly input: Float32Array; readonly dims: readonly number[] }
  /** Pack frame `frame` of the history for these instruments (transferred), then run. */
  | { readonly type: 'frame'; readonly id: number; readonly model: number; readonly history: number; readonly frame: number; readonly instruments: Int32Array };

/** Asks the worker to exit; no reply. */
export interface Stop {
  readonly type: 'stop';
}

export type Fault = 'non-finite' | 'session' | 'stale' | 'load';

export type Reply =
  | { readonly type: 'ready' }
  | { readonly type: 'loaded'; readonly id: number }
  | { readonly type: 'unloaded'; readonly id: number }
  | {
      readonly type: 'result';
      readonly id: number;
      readonly outputs: Record<string, Float32Array>;
      readonly dims: Record<string, readonly number[]>;
      /** Frame runs: the instruments packed, in row order (none packed: no outputs). */
      readonly rows?: Int32Array;
      readonly inferenceMs: number;
      /** The session's first run, which onnxruntime spends partly setting up: not a measure of its cost. */
      readonly first: boolean;
    }
  | { readonly type: 'failed'; readonly id: number; readonly kind: Fault; readonly message: string };

class Failure extends Error {
  constructor(
    readonly kind: Fault,
    message: string,
  ) {
    super(message);
  }
}

if (!parentPort) throw new Error('worker.ts is an inference worker entry; start it through InferencePool');
const port = parentPort;

const settings = workerData as WorkerSettings;
const sessionOptions: ort.InferenceSession.SessionOptions = {
  intraOpNumThreads: settings.intraOpNumThreads,
  interOpNumThreads: 1,
  graphOptimizationLevel: 'all',
  executionMode: 'sequential',
};

interface Model {
  readonly key: string;
  readonly session: ort.InferenceSession;
  readonly packing: Packing | undefined;
  ran: boolean;
}
const models = new Map<number, Model>();
const histories = new Map<number, HistoryViews>();
/** Scratch for the rows of the frame run at hand. */
let rows = new Float32Array(0);

// One request at a time, in arrival order: a model's reload always lands before the runs sent after it.
let queue = Promise.resolve();
port.on('message', (request: Request | Stop) => {
  // Ending the thread while onnxruntime is in native code aborts the whole process, so the pool never
  // terminates a worker: it asks. A message handler never runs mid-session.run, so exiting here is safe,
  // and it skips whatever is still queued.
  if (request.type === 'stop') process.exit(0);
  queue = queue.then(() => answer(request));
});
port.postMessage({ type: 'ready' } satisfies Reply);

async function answer(request: Request): Promise<void> {
  if (request.type === 'history') {
    histories.set(request.history, historyViews(request.buffer, request.layout));
    return;
  }
  try {
    if (request.type === 'load') await load(request);
    else if (request.type === 'unload') await unload(request.id, request.model);
    else if (request.type === 'run') await run(request.id, modelOf(request.model), request.input, request.dims, undefined);
    else await frame(request.id, modelOf(request.model), request.history, request.frame, request.instruments);
  } catch (err) {
    const kind = err instanceof Failure ? err.kind : err instanceof OutputFault ? err.kind : request.type === 'load' ? 'load' : 'session';
    const message = err instanceof Error ? err.message : String(err);
    port.postMessage({ type: 'failed', id: request.id, kind, message } satisfies Reply);
  }
}

function modelOf(number: number): Model {
  const model = models.get(number);
  if (!model) throw new Failure('session', `model #${number} is not loaded in this worker`);
  return model;
}

async function load(request: Extract<Request, { type: 'load' }>): Promise<void> {
  const session = await ort.InferenceSession.create(request.bytes, sessionOptions);
  if (session.inputNames.length !== 1) {
    await session.release();
    throw new Failure('load', `the model has ${session.inputNames.length} inputs; the pool runs single-input models`);
  }
  models.set(request.model, { key: request.key, session, packing: request.packing, ran: false });
  port.postMessage({ type: 'loaded', id: request.id } satisfies Reply);
}

async function unload(id: number, number: number): Promise<void> {
  const model = models.get(number);
  models.delete(number);
  await model?.session.release();
  port.postMessage({ type: 'unloaded', id } satisfies Reply);
}

/** Packs the frame's rows from shared memory, refusing a window newer frames may have overwritten meanwhile. */
async function frame(id: number, model: Model, history: number, frame: number, instruments: Int32Array): Promise<void> {
  const p = model.packing;
  const h = histories.get(history);
  if (!p || !h) throw new Failure('session', `model "${model.key}" has no packing, or history ${history} is unknown here`);
  if (overwritten(h, frame, p.window)) throw new Failure('stale', `frame ${frame} was overwritten before its batch ran`);
  const width = rowLength(p);
  if (rows.length < instruments.length * width) rows = new Float32Array(instruments.length * width);
  // Kept instruments go back in the array that brought them.
  const packed = packWindow(h, frame, instruments, instruments.length, p, rows, instruments);
  // The writer may have reached the window while it was read: then some rows may be torn.
  if (overwritten(h, frame, p.window)) throw new Failure('stale', `frame ${frame} was overwritten while its batch was packed`);
  const kept = instruments.subarray(0, packed);
  if (packed === 0) {
    port.postMessage({ type: 'result', id, outputs: {}, dims: {}, rows: kept, inferenceMs: 0, first: false } satisfies Reply, [instruments.buffer as ArrayBuffer]);
    return;
  }
  const dims = p.window > 1 ? [packed, p.window, p.columns.length] : [packed, p.columns.length];
  await run(id, model, rows.subarray(0, packed * width), dims, kept);
}

async function run(id: number, model: Model, input: Float32Array, dims: readonly number[], packed: Int32Array | undefined): Promise<void> {
  const { session } = model;
  const feeds = { [session.inputNames[0] as string]: new ort.Tensor('float32', input, dims) };
  const started = performance.now();
  const results = await session.run(feeds);
  const inferenceMs = performance.now() - started;
  const first = !model.ran;
  model.ran = true;
  const { outputs, dims: outputDims } = readOutputs(model.key, session.outputNames, results);
  // Hand the output buffers over rather than copying them: each output tensor owns its buffer.
  const transfer = Object.values(outputs).map((values) => values.buffer as ArrayBuffer);
  if (packed) transfer.push(packed.buffer as ArrayBuffer);
  port.postMessage({ type: 'result', id, outputs, dims: outputDims, rows: packed, inferenceMs, first } satisfies Reply, transfer);
}
