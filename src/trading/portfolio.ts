/**
 * The portfolio as the trader's ledger sees it: positions, average prices,
 * realized and unrealized P&L, exposure and fees. Published (retained) on
 * `portfolio` after every change; read it synchronously.
 */

export const PORTFOLIO_TOPIC = 'portfolio';

export interface PositionView {
  readonly symbol: string;
  /** Shares, signed. */
  readonly quantity: number;
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
  /** Sum of |quantity × mark|. */
  readonly grossExposure: number;
  readonly netExposure: number;
  /** The journal sequence number this view includes. */
  readonly seq: number;
}
