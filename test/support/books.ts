/** A fixed book for tests and benchmarks that trade without a market feed. */
import type { Logger } from 'pino';
import type { ManualClock } from '../../src/clock.js';
import type { Journal } from '../../src/journal/records.js';
import { OrderBooks } from '../../src/market/books.js';
import { ASK, BID, INSERT } from '../../src/market/order-book.js';
import { BookVenue } from '../../src/trading/book-venue.js';
import { Ledger } from '../../src/trading/ledger.js';
import { riskLimits } from '../../src/trading/limits.js';
import { policySettings, TradingPolicy } from '../../src/trading/policy.js';
import { RiskGate } from '../../src/trading/risk-gate.js';
import { PaperTrader } from '../../src/trading/trader.js';

/** One instrument, 99.99 / 100.01, ten levels a side 1 cent apart, 10,000 shares each: a two-bps spread. */
export function oneBook(): OrderBooks {
  const books = new OrderBooks(1, 10);
  const book = books.book(0)!;
  for (let level = 0; level < 10; level++) {
    book.apply(level, INSERT, ASK, 100.01 + level / 100, 10_000, false, 2 * level, 0);
    book.apply(level, INSERT, BID, 99.99 - level / 100, 10_000, false, 2 * level + 1, 0);
  }
  return books;
}

/**
 * A paper trader filling on `oneBook` (SPY) with no latency, a gate that
 * allows 10,000 shares and never resumes by itself, and `policy` settings
 * over the defaults. Records go to `journal`.
 */
export function bookTrader(o: { journal: Journal; clock: ManualClock; log: Logger; policy?: Record<string, unknown> }): { trader: PaperTrader; ledger: Ledger } {
  const books = oneBook();
  const ledger = new Ledger(o.journal, 1_000_000);
  const gate = new RiskGate(o.clock, { autoResume: false, healthyPeriodMs: 1_000, limits: riskLimits.parse({ maxPosition: 10_000 }) });
  const trader = new PaperTrader({
    ledger,
    gate,
    policy: new TradingPolicy(policySettings.parse(o.policy ?? {}), ['SPY']),
    clock: o.clock,
    log: o.log,
    symbols: ['SPY'],
    refPrefix: 'k',
    replaceAfterMs: 1e9,
    maxPredictionAgeMs: 1_000,
    books: () => books,
    fail: (error) => {
      throw error;
    },
  });
  trader.venue = new BookVenue({ clock: o.clock, instrumentOf: (s) => (s === 'SPY' ? 0 : undefined), books: () => books, latencyMs: 0, feePerShare: 0.005, minFeePerOrder: 1, onEvent: (e) => trader.onEvent(e) });
  return { trader, ledger };
}
