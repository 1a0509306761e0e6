/**
 * What the ledger is made of: every record the journal keeps, in the order
 * it was appended. A record counts once it is durable; replaying the records
 * of a journal rebuilds orders, positions, cash and P&L exactly.
 *
 * Quantities are signed (positive buys, negative sells: shares, or option
 * contracts); times are wall-clock ms; prices are in the instrument's
 * currency, per share (an option's premium too). An order is known by our own
 * client order id, `ref`, which is also its `orderRef` at IB.
 */

/**
 * An option as the journal keeps it: enough to book, value and settle it
 * without asking anyone. Its `symbol` in records is its OSI local symbol
 * (`SPY   260105C00580000`), never the underlying's.
 */
export interface OptionContract {
  readonly conId: number;
  /** The underlying's symbol: `SPY`. */
  readonly underlying: string;
  /** YYYYMMDD. */
  readonly expiry: string;
  readonly strike: number;
  readonly right: 'C' | 'P';
  /** Shares per contract: prices are per share, cash moves price × quantity × multiplier. */
  readonly multiplier: number;
}

/**
 * One leg of a combo order (IB's BAG): an option and how many of it one
 * combo holds, signed (+1 bought, -1 sold when the combo is bought; the
 * other way round when it is sold). Its fills are the option's own, under
 * its own symbol.
 */
export interface ComboLeg {
  /** The option's OSI local symbol, as its fills and position are filed. */
  readonly symbol: string;
  readonly option: OptionContract;
  /** Contracts per combo, signed, a non-zero whole number. */
  readonly ratio: number;
  /** The leg's price a share when the order was judged (its touch then): what a working combo's bought legs count as premium at risk. */
  readonly price: number;
}

/** A new order, recorded before it goes anywhere. */
export interface OrderRecord {
  readonly type: 'order';
  readonly at: number;
  readonly ref: string;
  /** The stock's symbol, an option's OSI local symbol, or a combo's name (its legs in words). */
  readonly symbol: string;
  /** Present for an option: what `symbol` is. */
  readonly option?: OptionContract;
  /** Present for a combo (journals before combos have none): its legs, filled all at once, each booked as its own position. */
  readonly legs?: readonly ComboLeg[];
  /** Shares or contracts; for a combo, combos (each leg fills quantity × ratio contracts). */
  readonly quantity: number;
  readonly orderType: 'LMT' | 'MKT';
  /** NaN for a market order. A combo's is the net price a share of its legs (Σ ratio × price): a debit positive, a credit negative. */
  readonly limitPrice: number;
  /** The IB order id reserved for it (ib mode); absent in book mode. */
  readonly brokerOrderId?: number;
  /** Why the trader wants it, in words. */
  readonly reason: string;
}

/**
 * Where an order stands, as the broker (or the book venue) told us,
 * or as we decided: `cancel-requested` is ours, `lost` is what reconciliation
 * records for an order the broker never had.
 */
export type OrderState = 'working' | 'cancel-requested' | 'cancelled' | 'rejected' | 'lost';

export interface OrderStatusRecord {
  readonly type: 'order.status';
  readonly at: number;
  readonly ref: string;
  readonly state: OrderState;
  /** IB's permanent id once the broker has it. */
  readonly permId?: number;
  readonly reason?: string;
}

export interface FillRecord {
  readonly type: 'fill';
  readonly at: number;
  readonly ref: string;
  /** The broker's execution id: a fill is counted once per execId. */
  readonly execId: string;
  readonly symbol: string;
  readonly quantity: number;
  readonly price: number;
  /** Known at once in book mode; in ib mode 0 here and a CommissionRecord follows. */
  readonly commission: number;
}

/** IB reports what a fill cost after the fill itself. */
export interface CommissionRecord {
  readonly type: 'commission';
  readonly at: number;
  readonly execId: string;
  readonly commission: number;
}

/** A risk gate transition, for the record. */
export interface GateRecord {
  readonly type: 'gate';
  readonly at: number;
  readonly from: string;
  readonly to: string;
  readonly reason: string;
  readonly by: string;
}

/**
 * An execution report refused before it could count: not finite and
 * positive in price and size, not for the order's own contract, the wrong
 * side, more than the order's quantity, or a commission that is not a
 * finite amount >= 0. Kept as evidence, exactly as reported (NaN
 * included); replay never moves a position, cash or P&L for it. The gate
 * halts on it until an operator's resume acknowledges it (a later gate
 * record from HALTED to ACTIVE).
 */
export interface ExecutionRefusedRecord {
  readonly type: 'execution.refused';
  readonly at: number;
  /** The order it claimed to be for, when it named one. */
  readonly ref?: string;
  readonly execId: string;
  readonly symbol: string;
  /** Signed, as reported (NaN when the report's size was not a number). */
  readonly quantity: number;
  readonly price: number;
  /** Present when the commission report was what was refused. */
  readonly commission?: number;
  /** What was wrong, in words. */
  readonly reason: string;
}

/**
 * An option position settled at its expiry (src/options/settlement.ts):
 * the option closes at no price (its premium stays realized as paid or
 * received) and, when it was exercised or assigned, the underlying's
 * shares are delivered at the strike, moving cash like a fill at the
 * strike without a commission (IB charges none on exercise or assignment).
 */
export interface OptionSettlementRecord {
  readonly type: 'option.settlement';
  readonly at: number;
  /** The option's OSI symbol, as its orders were recorded. */
  readonly symbol: string;
  /** exercised: long, in the money; assigned: short, in the money; expired: out of the money, or not exercised by instruction. */
  readonly outcome: 'exercised' | 'assigned' | 'expired';
  /** The contracts settled, signed as the position was. */
  readonly contracts: number;
  /** The underlying's closing price it was judged at; absent when recognised from the broker's positions (ib mode), which carry none. */
  readonly underlyingClose?: number;
  /** Shares of the underlying received (+) or delivered (−) at the strike; 0 when it expired. */
  readonly shares: number;
  readonly reason: string;
}

/**
 * A contrary instruction: a long option not to be exercised at its expiry
 * even if it closes in the money (it then expires). Given before 16:30 New
 * York time on the expiry day, 30 minutes after an early close.
 */
export interface OptionInstructionRecord {
  readonly type: 'option.instruction';
  readonly at: number;
  /** The option's OSI symbol. */
  readonly symbol: string;
  readonly instruction: 'do-not-exercise';
  readonly reason: string;
}

/**
 * A step in a model's life (models.event): drift, its live error crossing
 * its bound, a challenger shadowing, promoted, rejected, rolled back, and
 * why with the figures. For the record; replay moves nothing for it.
 */
export interface ModelRecord {
  readonly type: 'model';
  readonly at: number;
  /** name@version. */
  readonly model: string;
  readonly kind: string;
  readonly reason: string;
}

export type LedgerRecord = OrderRecord | OrderStatusRecord | FillRecord | CommissionRecord | GateRecord | ExecutionRefusedRecord | DayRecord | OptionSettlementRecord | OptionInstructionRecord | ModelRecord;

/**
 * A trading day began (src/trading/trading-day.ts): its New York session
 * date and the ledger's net P&L (realized + unrealized - fees since the
 * journal began) at that moment, the opening P&L the daily loss limit counts
 * from. Written once per day, at the day's first P&L reading; a restart the
 * same day continues from the latest one. Replay never moves a position,
 * cash or P&L for it.
 */
export interface DayRecord {
  readonly type: 'day';
  readonly at: number;
  /** `YYYY-MM-DD`, the session date in New York. */
  readonly day: string;
  readonly openingPnl: number;
}

/** A record with the sequence number the journal gave it (1, 2, 3, ... with no gap). */
export interface JournalEntry {
  readonly seq: number;
  readonly record: LedgerRecord;
}

/** Where records are made durable. */
export interface Journal {
  /**
   * Queues the record for the next batch and resolves with its sequence
   * number once it is durable. Promises resolve in sequence order. Rejects
   * (and so does every later append) if the store fails: nothing counts that
   * is not durable.
   */
  append(record: LedgerRecord): Promise<number>;
  /** The highest sequence number that is durable. */
  readonly durableSeq: number;
  /** Every durable entry with a sequence number above `seq`, oldest first. */
  entriesSince(seq: number): Promise<JournalEntry[]>;
  /** Makes everything queued durable, then closes the store. */
  close(): Promise<void>;
}

