/**
 * The mutable state of a compute engine (features, health, regimes, the
 * predictor's history) as plain typed arrays and numbers, so a shard worker
 * (src/scaleout) can checkpoint its pipeline every few seconds and another
 * process can take the shard over and go on exactly where it stopped, bit
 * for bit.
 *
 * The wire form is msgpack without records: per engine `{ a, n }`, each array
 * `{ t, b }` with `t` its type and `b` its bytes as in memory (little-endian
 * on every platform Node runs on), and `n` the numbers as the bytes of a
 * Float64Array, since msgpackr writes whole numbers as integers and -0
 * would come back 0.
 */
import { Packr } from 'msgpackr';

export type StateArray = Float64Array | Float32Array | Int32Array | Uint32Array | Int16Array | Uint16Array | Int8Array | Uint8Array;

/**
 * Every mutable field of an engine: arrays in a fixed order, and its scalar
 * counters/cursors. `saveState` gives the engine's own arrays, not copies:
 * pack the state (packStates copies) before the engine moves on.
 */
export interface EngineState {
  readonly arrays: readonly StateArray[];
  readonly numbers: readonly number[];
  /**
   * Per array, true if it is one equal row per instrument, in the engine's
   * instrument order: those rows are checkpointed per instrument and carried
   * over by instrument when a shard's instruments change (`withRows`).
   * Absent: the state only goes whole, and such a change starts it afresh.
   */
  readonly rows?: readonly boolean[];
}

export interface Restorable {
  saveState(): EngineState;
  loadState(state: EngineState): void;
}

const TYPES = {
  f64: Float64Array,
  f32: Float32Array,
  i32: Int32Array,
  u32: Uint32Array,
  i16: Int16Array,
  u16: Uint16Array,
  i8: Int8Array,
  u8: Uint8Array,
} as const;
type TypeTag = keyof typeof TYPES;
const TAGS = Object.keys(TYPES) as TypeTag[];

const packr = new Packr({ useRecords: false });

const bytesOf = (a: ArrayBufferView) => Buffer.from(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));

function tagOf(a: StateArray): TypeTag {
  const tag = TAGS.find((t) => a instanceof TYPES[t]);
  if (!tag) throw new Error(`a state array must be one of ${TAGS.join(', ')} typed arrays, got ${a.constructor.name}`);
  return tag;
}

export function packStates(states: readonly EngineState[]): Buffer {
  return packr.pack(
    states.map((s) => ({
      a: s.arrays.map((a) => ({ t: tagOf(a), b: bytesOf(a) })),
      n: bytesOf(Float64Array.from(s.numbers)),
    })),
  );
}

/** Fresh typed arrays of the bytes `b`, in a buffer of their own (so aligned). */
function arrayOf(tag: TypeTag, b: Uint8Array, what: string): StateArray {
  const Type = TYPES[tag];
  if (b.byteLength % Type.BYTES_PER_ELEMENT !== 0) throw new Error(`${what}: ${b.byteLength} bytes are not a whole number of ${tag} values`);
  const array = new Type(b.byteLength / Type.BYTES_PER_ELEMENT);
  new Uint8Array(array.buffer).set(b);
  return array;
}

export function unpackStates(bytes: Buffer | Uint8Array): EngineState[] {
  const list: unknown = packr.unpack(bytes);
  if (!Array.isArray(list)) throw new Error('engine states: expected a list of states');
  return list.map((state: unknown, s) => {
    const what = `engine state ${s}`;
    const { a, n } = (state ?? {}) as { a?: unknown; n?: unknown };
    if (!Array.isArray(a)) throw new Error(`${what}: 'a' must be a list of arrays`);
    if (!(n instanceof Uint8Array)) throw new Error(`${what}: 'n' must be the bytes of its numbers`);
    const arrays = a.map((entry: unknown, i) => {
      const { t, b } = (entry ?? {}) as { t?: unknown; b?: unknown };
      if (typeof t !== 'string' || !TAGS.includes(t as TypeTag)) throw new Error(`${what} array ${i}: type must be one of ${TAGS.join(', ')}, got ${String(t)}`);
      if (!(b instanceof Uint8Array)) throw new Error(`${what} array ${i}: 'b' must be its bytes`);
      return arrayOf(t as TypeTag, b, `${what} array ${i}`);
    });
    return { arrays, numbers: Array.from(arrayOf('f64', n, `${what} numbers`)) };
  });
}

/** Instrument `i`'s rows of the row arrays of `state` (an engine of `instruments` instruments), in order; copies. */
export function rowsOf(state: EngineState, instruments: number, i: number): StateArray[] {
  const rows: StateArray[] = [];
  state.arrays.forEach((a, k) => {
    if (!state.rows?.[k]) return;
    const width = a.length / instruments;
    rows.push(a.slice(i * width, (i + 1) * width));
  });
  return rows;
}

/** The arrays of `state` that are not rows (all of them when it has none), with its numbers. */
export function sharedOf(state: EngineState): EngineState {
  return { arrays: state.arrays.filter((_, k) => !state.rows?.[k]), numbers: state.numbers };
}

/**
 * A state shaped as `fresh` (an engine's own state just built, for `instruments`
 * instruments): its non-row arrays and numbers from `shared` (see sharedOf),
 * instrument i's rows from `rows[i]` (see rowsOf) where given and from `fresh`
 * where not (an instrument new to the engine). Copies; `owner` names it in errors.
 */
export function withRows(owner: string, fresh: EngineState, instruments: number, shared: EngineState, rows: readonly (readonly StateArray[] | undefined)[]): EngineState {
  const flags = fresh.rows;
  if (!flags) throw new Error(`${owner}: its state has no rows by instrument`);
  if (rows.length !== instruments) throw new Error(`${owner}: ${rows.length} instruments' rows for ${instruments} instruments`);
  const sharedIn = fresh.arrays.filter((_, k) => !flags[k]);
  checkArrays(owner, sharedIn, shared, fresh.numbers.length);
  let s = 0;
  let r = 0;
  const arrays = fresh.arrays.map((a, k) => {
    if (!flags[k]) return shared.arrays[s++]!;
    const copy = a.slice();
    const width = a.length / instruments;
    rows.forEach((row, i) => {
      if (!row) return;
      const from = row[r];
      if (!from || from.constructor !== a.constructor || from.length !== width) throw new Error(`${owner}: instrument ${i}'s row ${r} is not ${a.constructor.name}[${width}]`);
      copy.set(from, i * width);
    });
    r++;
    return copy;
  });
  return { arrays, numbers: shared.numbers, rows: flags };
}

/** Throws unless `state` fits the engine's own arrays `into` (count, each type and length) and its count of numbers. */
export function checkArrays(owner: string, into: readonly StateArray[], state: EngineState, numbers: number): void {
  const { arrays } = state;
  if (arrays.length !== into.length) throw new Error(`${owner}: state has ${arrays.length} arrays, expected ${into.length}`);
  const shape = (a: StateArray) => `${a.constructor.name}[${a.length}]`;
  for (let i = 0; i < into.length; i++) {
    const from = arrays[i]!;
    const to = into[i]!;
    if (from.constructor !== to.constructor || from.length !== to.length) throw new Error(`${owner}: state array ${i} is ${shape(from)}, expected ${shape(to)}`);
  }
  if (state.numbers.length !== numbers) throw new Error(`${owner}: state has ${state.numbers.length} numbers, expected ${numbers}`);
}

/** checkArrays, then copies every array in place: nothing is written unless all of it fits. */
export function restoreArrays(owner: string, into: readonly StateArray[], state: EngineState, numbers: number): void {
  checkArrays(owner, into, state, numbers);
  for (let i = 0; i < into.length; i++) into[i]!.set(state.arrays[i]!);
}
