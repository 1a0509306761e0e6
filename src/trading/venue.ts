/**
 * Where the paper trader's orders go: the book venue, which fills them
 * against the live L2 book (`book` mode), or TWS / Gateway (`ib` mode). Both
 * take tickets and answer with the same events; the trader journals each
 * event before it counts.
 */
import type { FillRecord, OrderRecord, OrderState } from '../journal/records.js';

/** An order as the trader hands it to a venue, after the journal has it: its record's order fields. */
export type OrderTicket = Pick<OrderRecord, 'ref' | 'symbol' | 'quantity' | 'orderType' | 'limitPrice' | 'brokerOrderId'>;

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
  /** Asks for the rest of a working order to be cancelled; a 'cancelled' status confirms it. */
  cancel(ref: string): void;
  /** Stops listening; working orders are left as they are (the trader cancels them first). */
  close(): void;
}

export type VenueListener = (event: VenueEvent) => void;

/** Stocks to one venue, options to another: one venue to the trader, as both answer with the same events. */
export class OptionRouting implements Venue {
  readonly tradesOptions = true;

  constructor(
    private readonly stocks: Venue,
    private readonly options: Venue,
    private readonly isOption: (symbol: string) => boolean,
  ) {}

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
