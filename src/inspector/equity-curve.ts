/**
 * Net P&L over the daemon's life in at most `capacity` points: when full,
 * every other point is dropped and samples are taken half as often, so the
 * curve always spans the whole run at a bounded size.
 */
export class EquityCurve {
  private readonly samples: [number, number][] = [];
  /** Take one sample in `stride`. */
  private stride = 1;
  private seen = 0;

  constructor(readonly capacity: number) {
    if (!(capacity >= 2)) throw new Error(`equity curve capacity must be at least 2, got ${capacity}`);
  }

  add(at: number, netPnl: number): void {
    if (this.seen++ % this.stride !== 0) return;
    this.samples.push([at, netPnl]);
    if (this.samples.length < this.capacity) return;
    for (let i = 1, j = 2; j < this.samples.length; i++, j += 2) this.samples[i] = this.samples[j]!;
    this.samples.length = Math.ceil(this.samples.length / 2);
    this.stride *= 2;
  }

  points(): readonly (readonly [number, number])[] {
    return this.samples.slice();
  }
}
