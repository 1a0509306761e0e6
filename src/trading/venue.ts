/**
 * Where the paper trader's orders go: the book venue, which fills them
 * against the live L2 book (`book` mode), or TWS / Gateway (`ib` mode). Both
 * take tickets and answer with the same events; the trader journals each
 * event before it counts.
 */
import type { ComboLeg, FillRecord, OptionContract, OrderRecord, OrderState } from '../journal/records.js';

/** An order as the trader hands it to a venue, after the journal has it: its record's order fields. */
export type OrderTicket = Pick<OrderRecord, 'ref' | 'symbol' | 'quantity' | 'orderType' | 'limitPrice' | 'brokerOrderId'>;

/** A combo order (IB's BAG): `quantity` combos at a net `limitPrice` a share, a debit positive; its fills are its legs'. */
export type ComboTicket = OrderTicket & { readonly legs: readonly ComboLeg[] };

export type VenueEvent =
  | { readonly kind: 'status'; readonly ref: string; readonly state: OrderState; readonly permId?: number; readonly reason?: string; readonly at: number }
  /** A fill as the journal records it (commission 0 when a commission event follows, in ib mode). */
  | ({ readonly kind: 'fill' } & Omit<FillRecord, 'type'>)
  | { readonly kind: 'commission'; readonly execId: string; readonly commission: number; readonly at: number };

export interface Venue {
  /** Whether it can take option tickets (their symbol an OSI symbol the ledger knows as an option). */
  readonly tradesOptions: boolean;
  /** Sends the order on; everything that happens to it comes back as events. */
  submit(ticket: OrderTicket): void;
  /**
   * Sends a combo on, filled all legs at once or not at all, each leg's
   * fill an event of its own. Absent where combos are not traded (the
   * stock book venue): the trader refuses them there.
   */
  readonly submitCombo?: (ticket: ComboTicket) => void;
  /** Asks for the rest of a working order to be cancelled; a 'cancelled' status confirms it. */
  cancel(ref: string): void;
  /** Tells the broker not to exercise `contracts` of a long option at its expiry; absent where keel settles expiries itself. */
  readonly lapse?: (option: OptionContract, symbol: string, contracts: number) => void;
  /** Stops listening; working orders are left as they are (the trader cancels them first). */
  close(): void;
}

export type VenueListener = (event: VenueEvent) => void;

/** Stocks to one venue, options to another: one venue to the trader, as both answer with the same events. */
export class OptionRouting implements Venue {
  readonly tradesOptions = true;
  readonly submitCombo?: (ticket: ComboTicket) => void;

  constructor(
    private readonly stocks: Venue,
    private readonly options: Venue,
    private readonly isOption: (symbol: string) => boolean,
  ) {
    // Combos are options: the option venue's, if it trades them.
    this.submitCombo = options.submitCombo?.bind(options);
  }

  submit(ticket: OrderTicket): void {
    (this.isOption(ticket.symbol) ? this.options : this.stocks).submit(ticket);
  }

  /** Each venue ignores a ref it does not hold. */
  cancel(ref: string): void {
    this.stocks.cancel(ref);
    this.options.cancel(ref);
  }

  close(): void {
    this.stocks.close();
    this.options.close();
  }
}
