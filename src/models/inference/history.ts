/**
 * The last frames of every instrument's features, in shared memory, so that
 * a model's rows are packed where the batch runs: on the main thread for a
 * small batch, in the worker for a large one, by the same code (packing.ts),
 * and the main thread never packs a large batch. The main thread writes it
 * (observe, once per frame); workers only read it.
 *
 * `depth` frames are kept: the longest window served plus slack, because a
 * worker reads frame F's window a little later than F was observed, while
 * newer frames go on being written. A batch that waited so long that its
 * window is being overwritten is refused by the worker as stale (see
 * packing.ts); slack frames of margin make that a batch more than `slack`
 * frames late, which the predictor would discard as late anyway.
 */
import { restoreArrays, type EngineState, type Restorable } from '../../engine-state.js';
import { historyBytes, historyViews, WRITING, type HistoryLayout, type HistoryViews } from './packing.js';

/** Frames kept beyond the longest window. */
export const HISTORY_SLACK = 8;

let histories = 0;

export class FrameHistory implements Restorable {
  /** Unique in this process: the pool's workers know histories by it. */
  readonly id = ++histories;
  readonly buffer: SharedArrayBuffer;
  readonly layout: HistoryLayout;
  readonly views: HistoryViews;
  /** Consecutive warm frames per instrument, up to the depth (main thread only). */
  readonly streak: Int32Array;
  private observed = 0;

  /** `window`: the longest window any model may read. */
  constructor(instruments: number, width: number, window: number) {
    this.layout = { instruments, width, depth: window + HISTORY_SLACK };
    this.buffer = new SharedArrayBuffer(historyBytes(this.layout));
    this.views = historyViews(this.buffer, this.layout);
    this.streak = new Int32Array(instruments);
  }

  /** Number of the last frame observed (they count from 0); -1 before the first. */
  get latest(): number {
    return this.observed - 1;
  }

  /** The frames kept, the streaks and the frame count: for a shard checkpoint. */
  saveState(): EngineState {
    // Both laid out instrument by instrument (packing.ts); the frame count is shared.
    return { arrays: [this.views.values, this.streak], numbers: [this.observed], rows: [true, true] };
  }

  /** Call it before any batch reads the history: a worker may be reading the values it overwrites. */
  loadState(state: EngineState): void {
    restoreArrays('FrameHistory', [this.views.values, this.streak], state, 1);
    this.observed = state.numbers[0]!;
    // The write marker is the last frame's number, as observe left it (0 before the first): workers judge a window's age by it.
    Atomics.store(this.views.control, WRITING, this.observed > 0 ? (this.observed - 1) | 0 : 0);
  }

  /** Adds a frame: the values of its warm instruments; a cold one's streak starts again. */
  observe(values: Float64Array, warm: Uint8Array): void {
    const { instruments, width, depth } = this.layout;
    const frame = this.observed++;
    // Announced before it is written: a worker reading an older window checks this after reading.
    Atomics.store(this.views.control, WRITING, frame | 0);
    const slot = frame % depth;
    const history = this.views.values;
    const { streak } = this;
    for (let i = 0; i < instruments; i++) {
      if (!warm[i]) {
        streak[i] = 0;
        continue;
      }
      // A plain loop: a subarray view per instrument per frame is garbage at thousands of instruments.
      const from = i * width;
      const to = (i * depth + slot) * width;
      for (let c = 0; c < width; c++) history[to + c] = values[from + c]!;
      streak[i] = Math.min(streak[i]! + 1, depth);
    }
  }
}
