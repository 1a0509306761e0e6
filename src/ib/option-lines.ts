/**
 * Option market-data lines: which contracts a chain wants streamed, which
 * of them IB was asked for, and which wait. The pure bookkeeping that
 * subscriptions keeps beside its plan of stock feeds: the same budget (an
 * option line is a market-data line, as at IB), the same pacer, one owner
 * of every request.
 *
 * The lines options may hold are the market-data budget less the stock
 * quote lines wanted (`allowance`). The chain says what it wants as a whole
 * (`want`); lines no longer wanted are handed back to be cancelled before
 * any new one is asked for, so a moving band never holds more lines than
 * the allowance, even for a moment. A 101 (or another "not now") puts a
 * line back to wait; a "never" (200, 354, 10090, ...) refuses it until it
 * is wanted again.
 */
import type { BandContract } from '../options/chain-band.js';
import type { QuoteBoard } from './quote-board.js';
import { BUDGET_RETRY_MS, NOT_NOW_CODES, REFUSAL_CODES } from './codes.js';

/** A contract to stream: keel asks IB by conId. */
export interface OptionLineContract extends BandContract {
  readonly conId: number;
  readonly localSymbol: string;
  /** Shares per contract, as the contract details say (absent when they do not, as in a listing recorded before it was kept). */
  readonly multiplier?: number;
}

export type OptionLineStatus = 'waiting' | 'requested' | 'live' | 'refused';

export interface OptionLine {
  readonly contract: OptionLineContract;
  status: OptionLineStatus;
  reqId: number | undefined;
  /** True once the request left through the pacer (a line still queued there is dropped, not cancelled). */
  asked: boolean;
  note: string;
  notBefore: number;
}

export interface OptionLineCounts {
  readonly allowance: number;
  readonly wanted: number;
  readonly waiting: number;
  readonly requested: number;
  readonly live: number;
  readonly refused: number;
}

/** Request ids of option lines: above the stock feeds' (1,000,000,000 up) and the chain's own reference requests. */
export const FIRST_OPTION_REQUEST_ID = 1_500_000_000;
/** "Not now", and 10197: a competing live session holds the data for now. */
const BUDGET_CODES = new Set([...NOT_NOW_CODES, 10197]);

export class OptionLinePlan {
  /** In the order wanted (nearest the money first). */
  private lines: OptionLine[] = [];
  private readonly byReqId = new Map<number, OptionLine>();
  private byConId = new Map<number, OptionLine>();
  private nextReqId: number;
  /** Generic ticks asked with every line (e.g. `100,101,106`). */
  genericTicks = '';

  constructor(
    readonly allowance: number,
    firstReqId = FIRST_OPTION_REQUEST_ID,
  ) {
    this.nextReqId = firstReqId;
  }

  /**
   * The contracts wanted now, in priority order; replaces the last set.
   * Returns the lines no longer wanted that IB was asked for: cancel them.
   */
  want(contracts: readonly OptionLineContract[]): OptionLine[] {
    const kept = new Map(this.lines.map((l) => [l.contract.conId, l]));
    const next: OptionLine[] = [];
    for (const contract of contracts) {
      const held = kept.get(contract.conId);
      if (held) {
        kept.delete(contract.conId);
        next.push(held);
      } else {
        next.push({ contract, status: 'waiting', reqId: undefined, asked: false, note: 'not requested yet', notBefore: 0 });
      }
    }
    const dropped: OptionLine[] = [];
    for (const line of kept.values()) {
      if (line.reqId !== undefined) {
        this.byReqId.delete(line.reqId);
        if (line.asked) dropped.push(line);
      }
    }
    this.lines = next;
    this.byConId = new Map(next.map((l) => [l.contract.conId, l]));
    return dropped;
  }

  /** Lines IB holds or was asked for. */
  get held(): number {
    return this.byReqId.size;
  }

  /**
   * Waiting lines to ask for now, at most `limit`, never more held than the
   * allowance: each gets a request id and counts as requested.
   */
  due(now: number, limit = Infinity): OptionLine[] {
    const out: OptionLine[] = [];
    for (const line of this.lines) {
      if (out.length >= limit || this.held >= this.allowance) break;
      if (line.status !== 'waiting' || line.notBefore > now) continue;
      line.reqId = this.nextReqId++;
      line.asked = false;
      line.status = 'requested';
      line.note = 'asked';
      this.byReqId.set(line.reqId, line);
      out.push(line);
    }
    return out;
  }

  /** The line of a wanted contract. */
  lineOf(conId: number): OptionLine | undefined {
    return this.byConId.get(conId);
  }

  line(reqId: number): OptionLine | undefined {
    return this.byReqId.get(reqId);
  }

  /** Data arrived on a request id: its line is live. Returns whether the id is an option line's. */
  data(reqId: number): boolean {
    const line = this.byReqId.get(reqId);
    if (!line) return false;
    if (line.status === 'requested') {
      line.status = 'live';
      line.note = '';
    }
    return true;
  }

  /** IB refused a line: it waits (a budget) or is refused (no such contract, no permission). Undefined: not an option line. */
  refused(reqId: number, code: number, message: string, now: number): OptionLine | undefined {
    const line = this.byReqId.get(reqId);
    if (!line) return undefined;
    if (!BUDGET_CODES.has(code) && !REFUSAL_CODES.has(code)) return undefined; // a warning on a live line (10167 and the like)
    this.byReqId.delete(reqId);
    line.reqId = undefined;
    line.asked = false;
    line.note = `${code}: ${message}`;
    if (BUDGET_CODES.has(code)) {
      line.status = 'waiting';
      line.notBefore = now + BUDGET_RETRY_MS;
    } else {
      line.status = 'refused';
    }
    return line;
  }

  /** A new data epoch (reconnect, 1101): nothing IB held is held now; every wanted line is asked for again. */
  voidAll(): void {
    this.byReqId.clear();
    for (const line of this.lines) {
      line.reqId = undefined;
      line.asked = false;
      line.status = 'waiting';
      line.note = 'requested again after a reconnect';
      line.notBefore = 0;
    }
  }

  /** Every line IB was asked for and holds, to cancel at stop. */
  heldLines(): OptionLine[] {
    return [...this.byReqId.values()].filter((l) => l.asked);
  }

  counts(): OptionLineCounts {
    let waiting = 0;
    let requested = 0;
    let live = 0;
    let refused = 0;
    for (const l of this.lines) {
      if (l.status === 'waiting') waiting++;
      else if (l.status === 'requested') requested++;
      else if (l.status === 'live') live++;
      else refused++;
    }
    return { allowance: this.allowance, wanted: this.lines.length, waiting, requested, live, refused };
  }
}

/**
 * What subscriptions offers the option chain (the `optionLines` service):
 * the lines options may hold, a way to say which contracts to stream, the
 * request id of each, and the underlying's quotes.
 */
export interface OptionLines {
  /** Market-data lines options may hold: the budget less the stock quote lines. */
  readonly allowance: number;
  /** The contracts to stream now, nearest the money first (replaces the last set); `genericTicks` asked with each. */
  want(contracts: readonly OptionLineContract[], genericTicks?: string): void;
  /** The contract of an option line's request id (undefined: not one of them). */
  contractOf(reqId: number): OptionLineContract | undefined;
  counts(): OptionLineCounts;
  /** The status of a wanted contract's line (undefined: not wanted). */
  statusOf(conId: number): OptionLineStatus | undefined;
  /** Level-1 quotes of the stock instruments (the underlying's among them), latest values. */
  readonly quotes: QuoteBoard;
}
