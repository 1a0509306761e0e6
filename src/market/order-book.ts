/**
 * One instrument's L2 book, kept the way IB sends it: rows by position
 * (insert at row i shifts the rows below down, delete shifts them up,
 * update writes in place), up to the subscribed number of rows per side.
 *
 * Storage is flat typed arrays indexed `side * maxRows + row`, allocated
 * once; applying an update allocates nothing. Smart depth (MARKET_DEPTH_L2)
 * may carry several market makers' rows at one price: for such a book the
 * level view (`price`, `size`, `count`) aggregates rows by price, while a
 * plain book's level view is its rows themselves.
 *
 * An update that does not fit the book (row out of range, a gap, negative
 * or non-finite size, non-finite or non-positive price, unknown operation
 * or side) is rejected with a reason and counted, never applied.
 */

/** IB's side codes. */
export const ASK = 0;
export const BID = 1;
/** IB's operation codes. */
export const INSERT = 0;
export const UPDATE = 1;
export const DELETE = 2;

export const REJECTIONS = ['side', 'operation', 'position', 'price', 'size'] as const;
export type Rejection = (typeof REJECTIONS)[number];
/** 0 when applied, else 1 + the index of the reason in REJECTIONS. */
export type ApplyResult = number;
export const APPLIED = 0;

/** Book quality at the end of a batch. */
export const BOOK_OK = 0;
/** Best bid equals best ask. */
export const BOOK_LOCKED = 1;
/** Best bid above best ask. */
export const BOOK_CROSSED = 2;

const REJECT_SIDE = 1;
const REJECT_OPERATION = 2;
const REJECT_POSITION = 3;
const REJECT_PRICE = 4;
const REJECT_SIZE = 5;

export class OrderBook {
  /** Rows exactly as IB positions them. */
  readonly rowPrice: Float64Array;
  readonly rowSize: Float64Array;
  readonly rowCount = new Int32Array(2);
  /** Price levels, best first: the rows themselves, or rows aggregated by price for smart depth. */
  price: Float64Array;
  size: Float64Array;
  count: Int32Array;
  /** True once a smart-depth row arrived: the level view is then aggregated. */
  smart = false;
  /** Sequence number and monotonic receive time of the last applied update (NaN before any). */
  seq = NaN;
  updatedAt = NaN;
  applied = 0;
  /** Rejected updates by reason, indexed like REJECTIONS. */
  readonly rejected = new Uint32Array(REJECTIONS.length);
  /** BOOK_OK, BOOK_LOCKED or BOOK_CROSSED, as of the last `checkQuality`. */
  quality = BOOK_OK;

  constructor(readonly maxRows: number) {
    this.rowPrice = new Float64Array(2 * maxRows);
    this.rowSize = new Float64Array(2 * maxRows);
    this.price = this.rowPrice;
    this.size = this.rowSize;
    this.count = this.rowCount;
  }

  /** Applies one depth update; returns APPLIED or the rejection code (see `rejectionOf`). */
  apply(position: number, operation: number, side: number, price: number, size: number, smart: boolean, seq: number, receivedAt: number): ApplyResult {
    const result = this.write(position, operation, side, price, size);
    if (result !== APPLIED) {
      this.rejected[result - 1]!++;
      return result;
    }
    if (smart) {
      if (!this.smart) this.becomeSmart();
      this.aggregate(side);
    }
    this.seq = seq;
    this.updatedAt = receivedAt;
    this.applied++;
    return APPLIED;
  }

  /** Empties the book (IB's 317, or a new subscription): rows and levels, not the counters. */
  clear(): void {
    this.rowCount[0] = 0;
    this.rowCount[1] = 0;
    this.count[0] = 0;
    this.count[1] = 0;
    this.quality = BOOK_OK;
  }

  bestBid(): number {
    return this.count[BID]! > 0 ? this.price[this.maxRows]! : NaN;
  }

  bestAsk(): number {
    return this.count[ASK]! > 0 ? this.price[0]! : NaN;
  }

  bidSize(): number {
    return this.count[BID]! > 0 ? this.size[this.maxRows]! : NaN;
  }

  askSize(): number {
    return this.count[ASK]! > 0 ? this.size[0]! : NaN;
  }

  twoSided(): boolean {
    return this.count[BID]! > 0 && this.count[ASK]! > 0;
  }

  /** Re-evaluates locked / crossed; returns true when that changed. Called at the end of a batch, since IB's row operations may cross a book for an instant. */
  checkQuality(): boolean {
    const bid = this.bestBid();
    const ask = this.bestAsk();
    const quality = bid > ask ? BOOK_CROSSED : bid === ask ? BOOK_LOCKED : BOOK_OK;
    if (quality === this.quality) return false;
    this.quality = quality;
    return true;
  }

  totalRejected(): number {
    let total = 0;
    for (const n of this.rejected) total += n;
    return total;
  }

  private write(position: number, operation: number, side: number, price: number, size: number): ApplyResult {
    if (side !== ASK && side !== BID) return REJECT_SIDE;
    if (operation !== INSERT && operation !== UPDATE && operation !== DELETE) return REJECT_OPERATION;
    const count = this.rowCount[side]!;
    // Whole rows only; a delete or update must name a row that exists, an insert may append but leave no gap.
    if ((position | 0) !== position || position < 0 || position >= this.maxRows) return REJECT_POSITION;
    if (operation === INSERT ? position > count : position >= count) return REJECT_POSITION;
    const base = side * this.maxRows;
    const prices = this.rowPrice;
    const sizes = this.rowSize;
    // Plain loops, not copyWithin: for ten rows the builtin's call costs more than the copy.
    if (operation === DELETE) {
      for (let r = base + position, end = base + count - 1; r < end; r++) {
        prices[r] = prices[r + 1]!;
        sizes[r] = sizes[r + 1]!;
      }
      this.rowCount[side] = count - 1;
      return APPLIED;
    }
    if (!(price > 0) || price === Infinity) return REJECT_PRICE;
    if (!(size >= 0) || size === Infinity) return REJECT_SIZE;
    if (operation === INSERT) {
      // A full book drops its last row to make room, as TWS's own book does.
      const last = Math.min(count, this.maxRows - 1);
      for (let r = base + last, start = base + position; r > start; r--) {
        prices[r] = prices[r - 1]!;
        sizes[r] = sizes[r - 1]!;
      }
      this.rowCount[side] = last + 1;
    }
    prices[base + position] = price;
    sizes[base + position] = size;
    return APPLIED;
  }

  private becomeSmart(): void {
    this.smart = true;
    this.price = new Float64Array(2 * this.maxRows);
    this.size = new Float64Array(2 * this.maxRows);
    this.count = new Int32Array(2);
    this.aggregate(ASK);
    this.aggregate(BID);
  }

  /** Rows at one price (adjacent, since IB sorts rows by price) become one level. */
  private aggregate(side: number): void {
    const base = side * this.maxRows;
    const rows = this.rowCount[side]!;
    let levels = 0;
    for (let row = 0; row < rows; row++) {
      const price = this.rowPrice[base + row]!;
      const size = this.rowSize[base + row]!;
      if (levels > 0 && this.price[base + levels - 1] === price) this.size[base + levels - 1]! += size;
      else {
        this.price[base + levels] = price;
        this.size[base + levels] = size;
        levels++;
      }
    }
    this.count[side] = levels;
  }
}

export function rejectionOf(result: ApplyResult): Rejection | undefined {
  return result === APPLIED ? undefined : REJECTIONS[result - 1];
}
