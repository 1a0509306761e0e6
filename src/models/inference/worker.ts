/**
 * An inference worker: holds onnxruntime sessions and runs them, one request
 * at a time, off the main thread (session.run blocks the thread it is on).
 * Started by InferencePool; it speaks only the messages below.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';

export interface WorkerSettings {
  readonly intraOpNumThreads: number;
}

/** Each is answered by one Reply with the same id. */
export type Request =
  | { readonly type: 'load'; readonly id: number; readonly key: string; readonly bytes: Uint8Array }
  | { readonly type: 'unload'; readonly id: number; readonly key: string }
  | { readonly type: 'run'; readonly id: number; readonly key: string; readonly input: Float32Array; readonly dims: readonly number[] };

/** Asks the worker to exit; no reply. */
export interface Stop {
  readonly type: 'stop';
}

export type Fault = 'non-finite' | 'session' | 'load';

export type Reply =
  | { readonly type: 'ready' }
  | { readonly type: 'loaded'; readonly id: number; readonly inputNames: readonly string[]; readonly outputNames: readonly string[] }
  | { readonly type: 'unloaded'; readonly id: number }
  | {
      readonly type: 'result';
      readonly id: number;
      /** The run's input, handed back: the caller packs its next batch into the same buffer. */
      readonly input: Float32Array;
      readonly outputs: Record<string, Float32Array>;
      readonly dims: Record<string, readonly number[]>;
      readonly inferenceMs: number;
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
const sessions = new Map<string, ort.InferenceSession>();

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
  try {
    if (request.type === 'load') await load(request.id, request.key, request.bytes);
    else if (request.type === 'unload') await unload(request.id, request.key);
    else await run(request.id, request.key, request.input, request.dims);
  } catch (err) {
    const kind = err instanceof Failure ? err.kind : request.type === 'load' ? 'load' : 'session';
    const message = err instanceof Error ? err.message : String(err);
    port.postMessage({ type: 'failed', id: request.id, kind, message } satisfies Reply);
  }
}

async function load(id: number, key: string, bytes: Uint8Array): Promise<void> {
  const session = await ort.InferenceSession.create(bytes, sessionOptions);
  if (session.inputNames.length !== 1) {
    await session.release();
    throw new Failure('load', `the model has ${session.inputNames.length} inputs; the pool runs single-input models`);
  }
  sessions.set(key, session);
  port.postMessage({ type: 'loaded', id, inputNames: session.inputNames, outputNames: session.outputNames } satisfies Reply);
}

async function unload(id: number, key: string): Promise<void> {
  const session = sessions.get(key);
  sessions.delete(key);
  await session?.release();
  port.postMessage({ type: 'unloaded', id } satisfies Reply);
}

async function run(id: number, key: string, input: Float32Array, dims: readonly number[]): Promise<void> {
  const session = sessions.get(key);
  if (!session) throw new Failure('session', `model "${key}" is not loaded in this worker`);
  const feeds = { [session.inputNames[0] as string]: new ort.Tensor('float32', input, dims) };
  const started = performance.now();
  const results = await session.run(feeds);
  const inferenceMs = performance.now() - started;

  const outputs: Record<string, Float32Array> = {};
  const outputDims: Record<string, readonly number[]> = {};
  for (const name of session.outputNames) {
    const tensor = results[name] as ort.Tensor;
    const values = asFloat32(name, tensor);
    const bad = values.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) throw new Failure('non-finite', `model "${key}" output "${name}" is ${values[bad]} at index ${bad}`);
    outputs[name] = values;
    outputDims[name] = tensor.dims;
  }
  // Hand the output buffers over rather than copying them: each output tensor owns its buffer. The input,
  // done with once session.run has returned, goes back the same way.
  const transfer = [...Object.values(outputs).map((values) => values.buffer as ArrayBuffer), input.buffer as ArrayBuffer];
  port.postMessage({ type: 'result', id, input, outputs, dims: outputDims, inferenceMs } satisfies Reply, transfer);
}

/** Outputs as float32; classifiers' integer labels are widened (exact for any label below 2^24). */
function asFloat32(name: string, tensor: ort.Tensor): Float32Array {
  const data = tensor.data;
  if (data instanceof Float32Array) return data;
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) return Float32Array.from(data, Number);
  if (ArrayBuffer.isView(data) && !(data instanceof DataView)) return Float32Array.from(data as ArrayLike<number>);
  throw new Failure('session', `output "${name}" is ${tensor.type}, not a number tensor`);
}
