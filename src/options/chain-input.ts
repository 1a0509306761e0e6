/**
 * What an option chain is priced from, whatever it comes from: the listing
 * (the day's expiries and the band expiries' contracts, as discovered) and
 * a stream of inputs, one row each: a contract's bid, ask, their sizes,
 * its last print's price or size, volume or open interest, one field of
 * IB's model computation, the underlying's bid or
 * ask, and `PRICED`, the instant the chain was priced and published. Live,
 * option_chain makes these from IB and publishes them (`options.listing`,
 * `options.input`) for the recorder; a replay publishes them back from the
 * recording, and the same OptionChain (chain.ts) prices them.
 *
 * Rows are stamped with the monotonic time they were applied at; the
 * order of the rows is the order they were applied in, so a replay that
 * applies them in order and prices at each `PRICED` row sees what the live
 * chain saw at each of its pricings.
 */
import type { OptionLineContract } from '../ib/option-lines.js';
import type { ListedStrikes } from './chain-band.js';

/** Input codes (the `field` of a row). Append only: recordings keep them. */
export const CHAIN_INPUT = {
  BID: 0,
  ASK: 1,
  VOLUME: 2,
  OPEN_INTEREST: 3,
  IB_IV: 4,
  IB_DELTA: 5,
  IB_PRICE: 6,
  IB_GAMMA: 7,
  IB_VEGA: 8,
  IB_THETA: 9,
  /** The underlying price IB's computation used. */
  IB_UNDERLYING: 10,
  /** The underlying's own quote (conId 0): what the chain is priced at. */
  UNDERLYING_BID: 11,
  UNDERLYING_ASK: 12,
  /** The chain was priced and published here (conId 0); the value is the pricing's wall-clock ms, the time its years to expiry are counted from. */
  PRICED: 13,
  /** The contracts displayed at the bid and at the ask. */
  BID_SIZE: 14,
  ASK_SIZE: 15,
  /** A print (tick 4): its price; each one counts as a new print. */
  LAST: 16,
  /** The last print's size (tick 5). */
  LAST_SIZE: 17,
  /** The last price a line reports as it starts: a print from before the line, not a new one. */
  LAST_BEFORE_LINE: 18,
} as const;

export const LAST_CHAIN_INPUT = CHAIN_INPUT.LAST_BEFORE_LINE;

/** The day's chain of one underlying as discovered, and the option lines it could hold. */
export interface ChainListing {
  readonly underlying: string;
  /** The session date it was discovered for (YYYY-MM-DD). */
  readonly day: string;
  /** Every live expiry (YYYYMMDD), nearest first. */
  readonly expiries: readonly string[];
  /** Per band expiry (the `expiries` range of the chain that discovered it), nearest first: its strikes. */
  readonly strikes: readonly ListedStrikes[];
  /** Every contract of the expiries discovered: the band's and those priced off the surface. */
  readonly contracts: readonly OptionLineContract[];
  /** The option lines the chain could hold when it was discovered. */
  readonly allowance: number;
}

/** A batch of inputs, column by column; rows [0, count) are valid. A reused object: read it in the handler. */
export class ChainInputBatch {
  count = 0;
  /** The underlying's symbol: whose chain these inputs are. */
  underlying = '';
  readonly conId: Int32Array;
  readonly field: Uint8Array;
  readonly value: Float64Array;
  /** Monotonic ms. */
  readonly at: Float64Array;

  constructor(readonly capacity: number) {
    this.conId = new Int32Array(capacity);
    this.field = new Uint8Array(capacity);
    this.value = new Float64Array(capacity);
    this.at = new Float64Array(capacity);
  }

  /** Writes row `row`; the writer moves `count` (BatchPublisher's `written`, or by hand) and publishes before it reaches `capacity`. */
  set(row: number, conId: number, field: number, value: number, at: number): void {
    this.conId[row] = conId;
    this.field[row] = field;
    this.value[row] = value;
    this.at[row] = at;
  }
}
