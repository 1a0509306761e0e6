/**
 * What the main thread and the inference workers both run, so that a batch
 * packed and read on either side is the same batch: packing a model's input
 * rows out of a frame history in shared memory, and reading a session's
 * outputs (non-finite values refused).
 *
 * The frame history (history.ts owns it on the main thread) is one
 * SharedArrayBuffer: a small Int32 control block, then Float64 values laid
 * out instrument by instrument, `depth` frames each, `width` features a frame:
 * `((instrument * depth) + frame % depth) * width + feature`. Frame numbers
 * count the frames observed, from 0. The main thread is its only writer; a
 * worker packing frame F reads frames F - window + 1 to F, which frame
 * F - window + 1 + depth overwrites: `framesBehind` tells a worker whether
 * that has begun (the main thread announces a frame in WRITING before it
 * writes it), so a batch that waited too long is refused, never read torn.
 *
 * Imported by worker.ts: nothing here but arithmetic and types.
 */
import type { InferenceSession, Tensor } from 'onnxruntime-node';

/** How a model's rows are cut from the history: its columns in input order, its standardisation, its window of frames. */
export interface Packing {
  readonly columns: Int32Array;
  /** Row value = (x - mean[c]) * scale[c], in float64, then stored as float32. */
  readonly mean: Float64Array;
  readonly scale: Float64Array;
  readonly window: number;
}

export interface HistoryLayout {
  readonly instruments: number;
  readonly width: number;
  /** Frames kept per instrument. */
  readonly depth: number;
}

/** Int32 index of the control block: the number (| 0) of the frame being written, or last written. */
export const WRITING = 0;
/** Control block bytes: a multiple of 8, so the Float64 values after it are aligned. */
const CONTROL_BYTES = 16;

export const historyBytes = (l: HistoryLayout) => CONTROL_BYTES + l.instruments * l.depth * l.width * Float64Array.BYTES_PER_ELEMENT;

export interface HistoryViews {
  readonly layout: HistoryLayout;
  readonly control: Int32Array;
  readonly values: Float64Array;
}

export function historyViews(buffer: SharedArrayBuffer, layout: HistoryLayout): HistoryViews {
  return {
    layout,
    control: new Int32Array(buffer, 0, CONTROL_BYTES / Int32Array.BYTES_PER_ELEMENT),
    values: new Float64Array(buffer, CONTROL_BYTES, layout.instruments * layout.depth * layout.width),
  };
}

/** Frames the writer has started since `frame` (wraps safely past 2^31 frames). */
export const framesBehind = (h: HistoryViews, frame: number) => (Atomics.load(h.control, WRITING) - (frame | 0)) | 0;

/** Whether frame `frame`'s window of `window` frames may already be overwritten. */
export const overwritten = (h: HistoryViews, frame: number, window: number) => framesBehind(h, frame) > h.layout.depth - window;

/** Float32 values one packed row of this model takes. */
export const rowLength = (p: Packing) => p.window * p.columns.length;

/**
 * Packs the rows of `count` instruments for frame `frame` into `out`, oldest
 * frame first, standardised; an instrument with a non-finite input is left
 * out (it would make onnxruntime's whole batch non-finite), so it sits this
 * frame out alone. Writes the instruments packed to `kept` and returns how
 * many. The caller lists only instruments warm for the whole window.
 */
export function packWindow(h: HistoryViews, frame: number, instruments: Int32Array, count: number, p: Packing, out: Float32Array, kept: Int32Array): number {
  const { columns, mean, scale, window } = p;
  const f = columns.length;
  const { depth, width } = h.layout;
  const values = h.values;
  let o = 0;
  let rows = 0;
  for (let n = 0; n < count; n++) {
    const i = instruments[n]!;
    const start = o;
    let finite = true;
    for (let step = window - 1; step >= 0 && finite; step--) {
      const base = (i * depth + ((frame - step) % depth)) * width;
      for (let c = 0; c < f; c++) {
        const x = values[base + columns[c]!]!;
        // x - x is 0 for a finite x only: NaN and ±Infinity give NaN.
        if (x - x !== 0) {
          finite = false;
          break;
        }
        out[o++] = (x - mean[c]!) * scale[c]!;
      }
    }
    if (finite) kept[rows++] = i;
    else o = start;
  }
  return rows;
}

/** An output refused: NaN or ±Infinity in it, or not a number tensor. */
export class OutputFault extends Error {
  constructor(
    readonly kind: 'non-finite' | 'session',
    message: string,
  ) {
    super(message);
  }
}

export interface Outputs {
  readonly outputs: Record<string, Float32Array>;
  readonly dims: Record<string, readonly number[]>;
}

/** A session's results by output name, as float32; throws OutputFault on a non-finite value. */
export function readOutputs(model: string, names: readonly string[], results: InferenceSession.OnnxValueMapType): Outputs {
  const outputs: Record<string, Float32Array> = {};
  const dims: Record<string, readonly number[]> = {};
  for (const name of names) {
    const tensor = results[name] as Tensor;
    const values = asFloat32(name, tensor);
    for (let k = 0; k < values.length; k++) {
      const v = values[k]!;
      if (v - v !== 0) throw new OutputFault('non-finite', `model "${model}" output "${name}" is ${v} at index ${k}`);
    }
    outputs[name] = values;
    dims[name] = tensor.dims;
  }
  return { outputs, dims };
}

/** Outputs as float32; classifiers' integer labels are widened (exact for any label below 2^24). */
function asFloat32(name: string, tensor: Tensor): Float32Array {
  const data = tensor.data;
  if (data instanceof Float32Array) return data;
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) return Float32Array.from(data, Number);
  if (ArrayBuffer.isView(data) && !(data instanceof DataView)) return Float32Array.from(data as ArrayLike<number>);
  throw new OutputFault('session', `output "${name}" is ${tensor.type}, not a number tensor`);
}
