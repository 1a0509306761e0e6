/**
 * The day's P&L for the daily loss limit: the ledger's net P&L less what it
 * was when the trading day began. A day is a UTC calendar date; the first
 * reading on a new date starts it, so a position's gains from yesterday do
 * not count against (or for) today.
 */
export class TradingDay {
  private day: string;
  private startPnl: number;

  constructor(wallNow: number, netPnl: number) {
    this.day = dayOf(wallNow);
    this.startPnl = netPnl;
  }

  /** The P&L of the day `wallNow` falls in, given the ledger's net P&L now. */
  pnl(wallNow: number, netPnl: number): number {
    const today = dayOf(wallNow);
    if (today !== this.day) {
      this.day = today;
      this.startPnl = netPnl;
    }
    return netPnl - this.startPnl;
  }
}

const dayOf = (wallMs: number) => new Date(wallMs).toISOString().slice(0, 10);
