/**
 * The portfolio as the trader's ledger sees it: positions, average prices,
 * realized and unrealized P&L, exposure and fees. Published (retained) on
 * `portfolio` after every change; read it synchronously.
 */

export interface PositionView {
  readonly symbol: string;
  /** Shares, or option contracts, signed. */
  readonly quantity: number;
  /** Shares per unit of quantity: 1 for a stock, 100 for an SPY option. */
  readonly multiplier: number;
  /** Average price of the open quantity (0 when flat), fees excluded. */
  readonly averagePrice: number;
  /** The mid it is marked at (NaN before any). */
  readonly mark: number;
  readonly realizedPnl: number;
  readonly unrealizedPnl: number;
  readonly fees: number;
}

export interface PortfolioView {
  /** Wall-clock ms of the last change. */
  readonly at: number;
  readonly cash: number;
  readonly positions: readonly PositionView[];
  readonly realizedPnl: number;
  readonly unrealizedPnl: number;
  readonly fees: number;
  /** Realized + unrealized − fees. */
  readonly netPnl: number;
  /** Sum of |quantity × multiplier × mark|. */
  readonly grossExposure: number;
  readonly netExposure: number;
  /** The journal sequence number this view includes. */
  readonly seq: number;
}

/**
 * One instrument's position. The average price is of the open quantity
 * (per share: an option's premium), fees kept apart, so that cash +
 * Σ quantity × multiplier × mark = starting cash + realized + unrealized −
 * fees at all times.
 */
export class Position {
  quantity = 0;
  averagePrice = 0;
  realizedPnl = 0;
  fees = 0;
  mark = NaN;

  constructor(
    readonly symbol: string,
    /** Shares per unit of quantity: 1 for a stock, an option's contract multiplier. */
    readonly multiplier = 1,
  ) {}

  /** Books a fill (signed quantity); returns the P&L it realized (0 when it only opened or added). */
  fill(quantity: number, price: number, fee: number): number {
    this.fees += fee;
    const before = this.quantity;
    const after = before + quantity;
    this.quantity = after;
    if (before === 0 || Math.sign(before) === Math.sign(quantity)) {
      this.averagePrice = (before * this.averagePrice + quantity * price) / after;
      return 0;
    }
    const closed = Math.min(Math.abs(quantity), Math.abs(before));
    const realized = (price - this.averagePrice) * closed * Math.sign(before) * this.multiplier;
    this.realizedPnl += realized;
    // Flat: no average; flipped: the new side opened at this price.
    if (after === 0) this.averagePrice = 0;
    else if (Math.sign(after) !== Math.sign(before)) this.averagePrice = price;
    return realized;
  }

  /** Marked at cost (0) until the first mid arrives. */
  unrealizedPnl(): number {
    if (this.quantity === 0 || Number.isNaN(this.mark)) return 0;
    return (this.mark - this.averagePrice) * this.quantity * this.multiplier;
  }

  /** |quantity × multiplier| at the mark, or at cost before the first mid. */
  exposure(): number {
    return Math.abs(this.quantity * this.multiplier * (Number.isNaN(this.mark) ? this.averagePrice : this.mark));
  }

  view(): PositionView {
    return {
      symbol: this.symbol,
      quantity: this.quantity,
      multiplier: this.multiplier,
      averagePrice: this.averagePrice,
      mark: this.mark,
      realizedPnl: this.realizedPnl,
      unrealizedPnl: this.unrealizedPnl(),
      fees: this.fees,
    };
  }
}
