/**
 * The ledger: orders, fills, positions, cash and P&L, rebuilt from nothing
 * but journal entries. `record` appends to the journal and applies the
 * record only once it is durable, so what the ledger shows is exactly what a
 * replay of the journal gives after a crash, never more.
 *
 * A combo order (its record has `legs`) moves no position of its own:
 * each leg's fill is booked under the leg's symbol, at its own price, with
 * its own commission; the order counts whole combos filled (every leg's
 * share of them) and is filled once every leg is.
 *
 * Every journal append goes through one ledger, so entries are applied in
 * sequence order (the journal resolves appends in that order); a gap is a
 * bug and throws.
 *
 * The ledger never computes with a bad execution (executions.ts says what
 * that is). `record` refuses to journal one. A journal written before those
 * checks may still hold one (a fill at price NaN, for a symbol not its
 * order's, beyond its order's quantity, or a commission below 0): replay
 * sets it aside as evidence, moving nothing, and so does it with an
 * `execution.refused` record. Evidence waits for an operator: it is
 * acknowledged by the first operator's resume journaled after it (a gate
 * record HALTED -> ACTIVE not made by the gate itself); `unacknowledged()`
 * is what the trader halts the gate on at start.
 */
import type { ComboLeg, DayRecord, ExecutionRefusedRecord, FillRecord, GateRecord, Journal, JournalEntry, LedgerRecord, OptionContract, OptionSettlementRecord, OrderRecord, OrderState } from '../journal/records.js';
import { commissionProblem, fillNumbersProblem, fillProblem } from './executions.js';
import { Position, type PortfolioView } from './portfolio.js';

/** A refused execution report, or a record replay could not book: kept, never counted. */
export interface Evidence {
  /** The journal entry that holds it. */
  readonly seq: number;
  /** refused: an `execution.refused` record; set-aside: a fill or commission record that replay did not book. */
  readonly kind: 'refused' | 'set-aside';
  /** What it is known by: the execId, or `<execId> commission` when the commission was what was wrong. */
  readonly key: string;
  readonly execId: string;
  readonly ref: string | undefined;
  /** What was wrong. */
  readonly reason: string;
  /** The whole story in words, for the log and the gate. */
  readonly text: string;
  /** An operator's resume was journaled after it. */
  acknowledged: boolean;
}

/** The key of a refused report: its execId, apart for a refused commission. */
export function refusalKey(execId: string, commission: boolean): string {
  return commission ? `${execId} commission` : execId;
}

/** How a refused report is told, live and after a restart alike. */
export function refusalText(execId: string, ref: string | undefined, reason: string, commission: boolean): string {
  const what = commission ? `the commission of execution ${execId}` : `execution ${execId}`;
  return `${what}${ref ? ` for ${ref}` : ''} refused: ${reason}`;
}

export type LedgerOrderState = 'pending' | OrderState | 'filled';

/** A combo's leg as the ledger knows it: filled contracts of it, signed, and their average price a share. */
export interface LedgerLeg extends ComboLeg {
  filled: number;
  averageFillPrice: number;
}

/** An order as the ledger knows it. */
export interface LedgerOrder {
  readonly ref: string;
  readonly symbol: string;
  readonly quantity: number;
  readonly orderType: 'LMT' | 'MKT';
  readonly limitPrice: number;
  readonly brokerOrderId: number | undefined;
  readonly reason: string;
  readonly at: number;
  state: LedgerOrderState;
  permId: number | undefined;
  /** Signed, like the quantity; a combo's, whole combos (every leg's share of them filled). */
  filled: number;
  /** A combo's: the net of its legs' average prices (Σ ratio × average), a debit positive. */
  averageFillPrice: number;
  /** A combo's legs, each filled on its own. */
  readonly legs?: readonly LedgerLeg[];
  /** Why it is in its state, when something said so. */
  note: string;
  updatedAt: number;
}

/** Where an order can no longer move from. */
const FINAL: ReadonlySet<LedgerOrderState> = new Set(['filled', 'cancelled', 'rejected', 'lost']);

export function isWorking(order: LedgerOrder): boolean {
  return !FINAL.has(order.state);
}

/** What the order has filled of `symbol`, signed: its own fills, or a combo leg's. */
export function filledOf(order: LedgerOrder, symbol: string): number {
  return order.legs ? (order.legs.find((l) => l.symbol === symbol)?.filled ?? 0) : order.filled;
}

/** What is still open of each instrument the order trades (signed contracts or shares), and the price a share it was judged at. */
export function openOf(order: LedgerOrder): { symbol: string; open: number; price: number }[] {
  if (!order.legs) return [{ symbol: order.symbol, open: order.quantity - order.filled, price: order.limitPrice }];
  return order.legs.map((l) => ({ symbol: l.symbol, open: order.quantity * l.ratio - l.filled, price: l.price }));
}

const average = (price: number, filled: number, fillPrice: number, quantity: number) => (price * filled + fillPrice * quantity) / (filled + quantity);

export class Ledger {
  readonly orders = new Map<string, LedgerOrder>();
  /** The orders that may still fill, by ref: decisions ask about these, not the whole day's orders. */
  private readonly working = new Map<string, LedgerOrder>();
  readonly positions = new Map<string, Position>();
  /** Every option an order was recorded for, by its symbol (OSI): a symbol not here is a stock. */
  readonly options = new Map<string, OptionContract>();
  /** Long options told not to exercise at their expiry (a contrary instruction). */
  readonly doNotExercise = new Set<string>();
  /** Every fill by execId: a second report of the same execution is not counted again. */
  readonly fills = new Map<string, FillRecord>();
  cash: number;
  /** The last applied sequence number. */
  seq = 0;
  /** Wall time of the latest fill (0 before any): reconciliation asks the broker for executions since. */
  lastFillAt = 0;
  /** Refused reports and records set aside, oldest first. */
  readonly evidence: Evidence[] = [];
  private readonly evidenceKeys = new Set<string>();
  /** The latest trading day record: the daily loss limit of a restart the same day counts from its opening P&L. */
  day: DayRecord | undefined;
  private readonly listeners = new Set<(entry: JournalEntry) => void>();

  constructor(
    private readonly journal: Journal,
    readonly startingCash: number,
  ) {
    this.cash = startingCash;
  }

  /** Applies what the journal held at start, oldest first. */
  replay(entries: readonly JournalEntry[]): void {
    for (const entry of entries) this.apply(entry);
  }

  /**
   * Appends a record and applies it once durable: the returned promise
   * resolves with its sequence number after the ledger shows it.
   */
  async record(record: LedgerRecord): Promise<number> {
    const problem = this.recordProblem(record);
    if (problem !== undefined) throw new Error(`ledger: this ${record.type} record must not be journaled: ${problem}`);
    const seq = await this.journal.append(record);
    this.apply({ seq, record });
    return seq;
  }

  /** Hears every entry as it is applied (durable), in order. */
  onEntry(listener: (entry: JournalEntry) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  order(ref: string): LedgerOrder | undefined {
    return this.orders.get(ref);
  }

  /** Whether a report under this key (see `refusalKey`) was refused or set aside already. */
  isRefused(key: string): boolean {
    return this.evidenceKeys.has(key);
  }

  /** Evidence no operator's resume has acknowledged yet, oldest first. */
  unacknowledged(): Evidence[] {
    return this.evidence.filter((e) => !e.acknowledged);
  }

  position(symbol: string): Position {
    let p = this.positions.get(symbol);
    if (!p) this.positions.set(symbol, (p = new Position(symbol, this.multiplierOf(symbol))));
    return p;
  }

  /** Shares per unit of quantity: an option's multiplier, 1 for a stock. */
  multiplierOf(symbol: string): number {
    return this.options.get(symbol)?.multiplier ?? 1;
  }

  /** Orders that may still fill. */
  workingOrders(): LedgerOrder[] {
    return [...this.working.values()];
  }

  /** The unfilled signed quantity of this instrument's working orders, combos' legs included. */
  workingQuantity(symbol: string): number {
    let sum = 0;
    for (const o of this.working.values()) {
      if (o.symbol === symbol) sum += o.quantity - o.filled;
      else if (o.legs) for (const leg of openOf(o)) if (leg.symbol === symbol) sum += leg.open;
    }
    return sum;
  }

  grossExposure(): number {
    let sum = 0;
    for (const p of this.positions.values()) sum += p.exposure();
    return sum;
  }

  /** Realized + unrealized − fees, since the ledger began. */
  netPnl(): number {
    let sum = 0;
    for (const p of this.positions.values()) sum += p.realizedPnl + p.unrealizedPnl() - p.fees;
    return sum;
  }

  view(at: number): PortfolioView {
    let realizedPnl = 0;
    let unrealizedPnl = 0;
    let fees = 0;
    let grossExposure = 0;
    let netExposure = 0;
    const positions = [];
    for (const p of this.positions.values()) {
      const v = p.view();
      positions.push(v);
      realizedPnl += v.realizedPnl;
      unrealizedPnl += v.unrealizedPnl;
      fees += v.fees;
      grossExposure += p.exposure();
      netExposure += Math.sign(p.quantity) * p.exposure();
    }
    return { at, cash: this.cash, positions, realizedPnl, unrealizedPnl, fees, netPnl: realizedPnl + unrealizedPnl - fees, grossExposure, netExposure, seq: this.seq };
  }

  private apply(entry: JournalEntry): void {
    if (entry.seq !== this.seq + 1) throw new Error(`ledger: journal entry ${entry.seq} after ${this.seq}: entries must be applied in order, without gaps`);
    this.seq = entry.seq;
    const r = entry.record;
    switch (r.type) {
      case 'order':
        this.addOrder(r);
        break;
      case 'order.status': {
        const order = this.orders.get(r.ref);
        if (order && !FINAL.has(order.state)) {
          this.move(order, r.state);
          order.permId = r.permId ?? order.permId;
          order.note = r.reason ?? order.note;
          order.updatedAt = r.at;
        }
        break;
      }
      case 'fill':
        this.addFill(entry.seq, r);
        break;
      case 'commission': {
        // The fill's total commission: what the fill record already charged is not charged twice.
        const fill = this.fills.get(r.execId);
        if (!fill) break;
        const problem = commissionProblem(r.commission);
        if (problem !== undefined) {
          this.setAside(entry.seq, r.execId, fill.ref, problem, true);
          break;
        }
        const charged = r.commission - fill.commission;
        this.cash -= charged;
        this.fills.set(r.execId, { ...fill, commission: r.commission });
        this.position(fill.symbol).fees += charged;
        break;
      }
      case 'gate':
        if (acknowledges(r)) for (const e of this.evidence) e.acknowledged = true;
        break;
      case 'execution.refused':
        this.addEvidence(entry.seq, r);
        break;
      case 'day':
        this.day = r;
        break;
      case 'option.settlement':
        this.settle(r);
        break;
      case 'option.instruction':
        this.doNotExercise.add(r.symbol);
        break;
    }
    for (const listener of this.listeners) listener(entry);
  }

  /** The ledger's own guard, against what it has applied: why this record must not be journaled, or undefined. */
  private recordProblem(record: LedgerRecord): string | undefined {
    // A second report of a booked execution counts nothing: there is nothing to guard.
    if (record.type === 'fill' && !this.fills.has(record.execId)) {
      const order = this.orders.get(record.ref);
      const problem = order ? fillProblem(record, order, filledOf(order, record.symbol)) : fillNumbersProblem(record);
      return problem === undefined ? undefined : `execution ${record.execId}: ${problem}`;
    }
    if (record.type === 'commission' && this.fills.has(record.execId)) {
      const problem = commissionProblem(record.commission);
      return problem === undefined ? undefined : `execution ${record.execId}: ${problem}`;
    }
    return undefined;
  }

  private addEvidence(seq: number, r: ExecutionRefusedRecord): void {
    const commission = r.commission !== undefined;
    const key = refusalKey(r.execId, commission);
    this.evidenceKeys.add(key);
    this.evidence.push({ seq, kind: 'refused', key, execId: r.execId, ref: r.ref, reason: r.reason, text: refusalText(r.execId, r.ref, r.reason, commission), acknowledged: false });
  }

  /** A fill or commission record that cannot be booked: evidence, nothing moves. */
  private setAside(seq: number, execId: string, ref: string | undefined, reason: string, commission: boolean): void {
    const key = refusalKey(execId, commission);
    this.evidenceKeys.add(key);
    const what = commission ? `the commission of execution ${execId}` : `fill ${execId}`;
    const text = `journal entry ${seq}: ${what}${ref ? ` for ${ref}` : ''} set aside, not booked: ${reason}`;
    this.evidence.push({ seq, kind: 'set-aside', key, execId, ref, reason, text, acknowledged: false });
  }

  private addOrder(r: OrderRecord): void {
    const order: LedgerOrder = {
      ref: r.ref,
      symbol: r.symbol,
      quantity: r.quantity,
      orderType: r.orderType,
      limitPrice: r.limitPrice,
      brokerOrderId: r.brokerOrderId,
      reason: r.reason,
      at: r.at,
      state: 'pending',
      permId: undefined,
      filled: 0,
      averageFillPrice: 0,
      ...(r.legs ? { legs: r.legs.map((l) => ({ ...l, filled: 0, averageFillPrice: 0 })) } : {}),
      note: '',
      updatedAt: r.at,
    };
    this.orders.set(r.ref, order);
    this.working.set(r.ref, order);
    if (r.option) this.options.set(r.symbol, r.option);
    for (const leg of r.legs ?? []) this.options.set(leg.symbol, leg.option);
  }

  /** A fill counts whatever its order's state (the money moved), if it is a fill that can count at all. */
  private addFill(seq: number, r: FillRecord): void {
    if (this.fills.has(r.execId)) return;
    const known = this.orders.get(r.ref);
    const problem = known ? fillProblem(r, known, filledOf(known, r.symbol)) : fillNumbersProblem(r);
    if (problem !== undefined) {
      this.setAside(seq, r.execId, r.ref, problem, false);
      return;
    }
    this.fills.set(r.execId, r);
    const position = this.position(r.symbol);
    this.cash -= r.quantity * r.price * position.multiplier + r.commission;
    position.fill(r.quantity, r.price, r.commission);
    if (r.at > this.lastFillAt) this.lastFillAt = r.at;
    const order = this.orders.get(r.ref);
    if (!order) return;
    order.updatedAt = r.at;
    if (order.legs) {
      const leg = order.legs.find((l) => l.symbol === r.symbol)!;
      leg.averageFillPrice = average(leg.averageFillPrice, leg.filled, r.price, r.quantity);
      leg.filled += r.quantity;
      // Whole combos: each leg's fills come one record at a time, the combo is filled once all of them are.
      order.filled = Math.sign(order.quantity) * Math.min(...order.legs.map((l) => Math.floor(Math.abs(l.filled / l.ratio))));
      order.averageFillPrice = order.legs.reduce((net, l) => net + l.ratio * l.averageFillPrice, 0);
    } else {
      order.averageFillPrice = average(order.averageFillPrice, order.filled, r.price, r.quantity);
      order.filled += r.quantity;
    }
    if (Math.abs(order.filled) >= Math.abs(order.quantity)) this.move(order, 'filled');
  }

  /** The option closes at no price; shares delivered at the strike move cash as a fill there would, without a fee. */
  private settle(r: OptionSettlementRecord): void {
    const option = this.options.get(r.symbol);
    const position = this.positions.get(r.symbol);
    // An option this journal never held, or settled already (a record journaled twice): nothing to move.
    // An early assignment settles part of a position, never more than it holds.
    if (!option || !position || Math.sign(position.quantity) !== Math.sign(r.contracts) || Math.abs(position.quantity) < Math.abs(r.contracts)) return;
    position.fill(-r.contracts, 0, 0);
    if (r.shares === 0) return;
    this.cash -= r.shares * option.strike;
    this.position(option.underlying).fill(r.shares, option.strike, 0);
  }

  private move(order: LedgerOrder, state: LedgerOrderState): void {
    order.state = state;
    if (FINAL.has(state)) this.working.delete(order.ref);
  }
}

/** An operator's resume: out of HALTED by anyone but the gate's own healthy period. */
function acknowledges(r: GateRecord): boolean {
  return r.from === 'HALTED' && r.to === 'ACTIVE' && r.by !== 'gate';
}
