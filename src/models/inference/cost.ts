/**
 * What a model's batch costs, learnt from the batches it ran: a line,
 * time = fixed + perRow * rows, fitted by exponentially weighted least
 * squares over the batches seen (in-thread and in the workers alike: the
 * time inside onnxruntime is the same work on either thread). While every
 * batch had the same number of rows the line goes through the origin, which
 * overestimates a bigger batch: the safe side, as the estimate decides what
 * may run on the main thread.
 *
 * On a busy machine a thread is now and then descheduled in the middle of a
 * run, and that run takes many times what the model costs. So the line
 * starts from the fastest of the first SEED batches (per row), and a later
 * batch counts for at most CLIP times the estimate: one such run cannot make
 * a cheap model look expensive, while a model that really got slower moves
 * the estimate within a few dozen batches.
 */

/** Weight of the newest batch. */
const ALPHA = 0.1;
const SEED = 3;
const CLIP = 4;

export class BatchCost {
  private seeds = 0;
  private seedRows = 0;
  private seedMs = 0;
  private samples = 0;
  private rows = 0;
  private ms = 0;
  private rows2 = 0;
  private rowsMs = 0;

  observe(rows: number, ms: number): void {
    if (!(rows > 0) || !(ms >= 0)) return;
    if (this.seeds < SEED) {
      if (this.seeds++ === 0 || ms * this.seedRows < this.seedMs * rows) {
        this.seedRows = rows;
        this.seedMs = ms;
      }
      if (this.seeds < SEED) return;
      rows = this.seedRows;
      ms = this.seedMs;
    } else {
      ms = Math.min(ms, CLIP * this.estimate(rows));
    }
    const a = this.samples++ === 0 ? 1 : ALPHA;
    this.rows += a * (rows - this.rows);
    this.ms += a * (ms - this.ms);
    this.rows2 += a * (rows * rows - this.rows2);
    this.rowsMs += a * (rows * ms - this.rowsMs);
  }

  /** Estimated ms for a batch of `rows`; Infinity before any batch was seen. */
  estimate(rows: number): number {
    if (this.samples === 0) return this.seeds === 0 ? Infinity : (this.seedMs / this.seedRows) * rows;
    const variance = this.rows2 - this.rows * this.rows;
    let slope = variance > 1e-9 * this.rows2 ? (this.rowsMs - this.rows * this.ms) / variance : NaN;
    let fixed = this.ms - slope * this.rows;
    if (!(slope >= 0) || !(fixed >= 0)) {
      slope = this.ms / this.rows;
      fixed = 0;
    }
    return fixed + slope * rows;
  }
}

/** An exponentially weighted mean; NaN before the first value. */
export class Ewma {
  private n = 0;
  value = NaN;

  observe(x: number): void {
    if (!Number.isFinite(x)) return;
    this.value = this.n++ === 0 ? x : this.value + ALPHA * (x - this.value);
  }
}
