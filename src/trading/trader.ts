/**
 * The paper trader: on every prediction frame the policy names a target
 * position per instrument, and the trader works towards it with one order
 * per instrument at a time, each asked of the risk gate first.
 *
 * Nothing counts before the journal has it. An order is recorded (with its
 * IB order id in ib mode) and only sent once durable; what the venue
 * reports (working, fills, commissions, cancels) is recorded, and the ledger
 * moves when the record is durable. So a crash at any point leaves a journal
 * whose replay is exactly what had counted, and an order recorded but not yet
 * sent is never sent by a later session: reconciliation finds it missing at
 * the broker and records it lost.
 *
 * A working order whose direction no longer matches the target, or that has
 * rested longer than `replaceAfterMs`, is cancelled; once the cancel is
 * confirmed the next frame places a new one at the new price: cancel and
 * replace, never two orders at once on one instrument.
 *
 * What a venue reports is checked before anything is journaled
 * (executions.ts): a fill must be finite and positive in price and size,
 * for its order's symbol and side, and not take the order past its
 * quantity (counting fills still on their way to the journal); a
 * commission must be a finite amount >= 0. A report that fails is
 * refused: logged as an error, journaled as an `execution.refused` record
 * (evidence that moves nothing), and latched on the gate, which halts until
 * an operator's resume acknowledges it. Evidence a restart finds
 * unacknowledged in the journal (refused reports, or bad fills an older
 * keel journaled and replay set aside) halts the gate the same way when
 * the trader is built.
 */
import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import type { ComboLeg, LedgerRecord, OptionContract } from '../journal/records.js';
import type { OrderBooks } from '../market/books.js';
import { predictionsAt, type PredictionFrame } from '../models/predictor.js';
import type { ComboTicket, OrderTicket, Venue, VenueEvent } from './venue.js';
import { comboName, netMid, netTouch, touch } from './combo.js';
import { instructDoNotExercise } from './exercise.js';
import { commissionProblem, fillProblem } from './executions.js';
import { filledOf, isWorking, refusalKey, refusalText, type Ledger } from './ledger.js';
import type { TradingPolicy } from './policy.js';
import type { Decision, RiskGate } from './risk-gate.js';
import type { ComboRisk, OptionRisk } from './option-limits.js';
import type { RegimeFrame } from '../models/regime-tracker.js';

/** The gate's name for refused executions, as a condition source. */
export const EXECUTIONS = 'executions';

export interface TraderOptions {
  readonly ledger: Ledger;
  readonly gate: RiskGate;
  readonly policy: TradingPolicy;
  readonly clock: Clock;
  readonly log: Logger;
  /** The instrument universe, in the order of the books and the frames. */
  readonly symbols: readonly string[];
  /** Makes every client order id unique across sessions. */
  readonly refPrefix: string;
  /** IB order ids (ib mode): reserved durably before the order is journaled. */
  readonly orderIds?: { take(): number };
  /** A working order older than this is cancelled and placed again at the current price. */
  readonly replaceAfterMs: number;
  /** The live books, read at decision time. */
  readonly books: () => OrderBooks | undefined;
  /**
   * A prediction whose features are older than this when it arrives is not
   * traded: the event loop stalled between the two, so the market it
   * predicted is gone, and feature health may not have looked yet.
   */
  readonly maxPredictionAgeMs: number;
  /** Called when recording fails: the trader cannot go on without its journal. */
  readonly fail: (error: unknown) => void;
}

export class PaperTrader {
  venue: Venue | undefined;
  /** The one order per instrument that is in flight or working, by symbol (a combo's under its name and each leg's). */
  private readonly active = new Map<string, string>();
  /** Orders recorded but not yet durable, by ref: halting before they are sent keeps them at home. */
  private readonly unsent = new Map<string, { ticket: OrderTicket | ComboTicket; cancelled: boolean }>();
  /** Working since (monotonic), by ref. */
  private readonly placedAt = new Map<string, number>();
  private readonly targets: Float64Array;
  private readonly positions: Float64Array;
  private readonly spreadBps: Float64Array;
  private readonly predictions: Float64Array;
  private readonly mids: Float64Array;
  private readonly bids: Float64Array;
  private readonly asks: Float64Array;
  private next = 0;
  private readonly books: () => OrderBooks | undefined;
  private pending: Promise<unknown> = Promise.resolve();
  lastRefusal = '';
  /** Frames skipped as too old since the last fresh one. */
  private staleFrames = 0;
  /** Cancels asked for since start: the emergency stop's proof that they went out inside the halt. */
  readonly counts = { cancels: 0 };
  /** Fills handed to the journal this session (durable or on the way), by execId. */
  private readonly recordedExecs = new Map<string, { ref: string; symbol: string; quantity: number; price: number }>();
  /** Signed quantity of fills handed to the journal and not yet applied, by ref and symbol (a combo's legs fill apart): the ledger's `filled` does not count them yet. */
  private readonly fillsOnTheirWay = new Map<string, number>();
  /** Reports refused this session, by refusal key (the record may not be durable yet). */
  private readonly refusedKeys = new Set<string>();

  constructor(private readonly options: TraderOptions) {
    const n = options.symbols.length;
    this.books = options.books;
    this.targets = new Float64Array(n);
    this.positions = new Float64Array(n);
    this.spreadBps = new Float64Array(n);
    this.predictions = new Float64Array(n);
    this.mids = new Float64Array(n);
    this.bids = new Float64Array(n);
    this.asks = new Float64Array(n);
    // Orders of an earlier session still working: one per instrument is the rule across sessions too.
    for (const order of options.ledger.workingOrders()) for (const symbol of [order.symbol, ...(order.legs ?? []).map((l) => l.symbol)]) this.active.set(symbol, order.ref);
    // Evidence in the journal no operator has acknowledged: trading waits for one.
    for (const e of options.ledger.unacknowledged()) {
      options.log.warn({ seq: e.seq, execId: e.execId, ref: e.ref, kind: e.kind, reason: e.reason }, `${e.text}: trading waits for an operator's resume`);
      options.gate.latch(EXECUTIONS, e.key, e.text);
    }
  }

  /** One frame: mark the positions, let the policy decide, work the orders. */
  onFrame(frame: PredictionFrame, regime: RegimeFrame | undefined): void {
    const { symbols, ledger, policy, clock, log, maxPredictionAgeMs } = this.options;
    const age = clock.now() - frame.frameAt;
    if (age > maxPredictionAgeMs) {
      if (this.staleFrames++ === 0) log.warn({ ageMs: Math.round(age), maxPredictionAgeMs }, `a prediction arrived ${Math.round(age)} ms after its features (limit ${maxPredictionAgeMs} ms): not traded until they are fresh again`);
      return;
    }
    if (this.staleFrames > 0) {
      log.info({ skipped: this.staleFrames }, `predictions fresh again: ${this.staleFrames} stale frames were not traded`);
      this.staleFrames = 0;
    }
    const books = this.books();
    // A horizon the frame does not carry is no prediction (the paper trader fails on it, naming the setting).
    const predictions = predictionsAt(frame, policy.settings.horizon);
    for (let i = 0; i < symbols.length; i++) {
      this.readMarket(books, i);
      const symbol = symbols[i]!;
      const mid = this.mids[i]!;
      if (mid === mid) ledger.position(symbol).mark = mid;
      this.positions[i] = ledger.positions.get(symbol)?.quantity ?? 0;
      this.predictions[i] = predictions && frame.symbols[i] === symbol ? predictions.value[i]! : NaN;
    }
    const sameUniverse = regime !== undefined && regime.symbols.length === symbols.length;
    policy.decide(
      {
        now: clock.now(),
        predictions: this.predictions,
        regime: sameUniverse ? regime.state : undefined,
        regimeLabels: regime?.labels ?? [],
        spreadBps: this.spreadBps,
        positions: this.positions,
      },
      this.targets,
    );
    for (let i = 0; i < symbols.length; i++) this.work(i);
  }

  /** Records what the venue reports; the ledger moves once it is durable. */
  onEvent(event: VenueEvent): void {
    switch (event.kind) {
      case 'status':
        this.record({ type: 'order.status', at: event.at, ref: event.ref, state: event.state, permId: event.permId, reason: event.reason });
        break;
      case 'fill': {
        const { ledger } = this.options;
        if (this.recordedExecs.has(event.execId) || ledger.fills.has(event.execId)) return;
        // Every order of ours is journaled before it is sent: a fill for one the journal does not know is someone else's.
        const order = ledger.order(event.ref);
        if (!order) {
          this.options.log.error({ execId: event.execId, ref: event.ref, symbol: event.symbol, quantity: event.quantity }, `an execution of an order keel did not place (${event.ref || 'no orderRef'}): not booked; reconciliation reports the position it leaves`);
          return;
        }
        const { ref, quantity } = event;
        const way = `${ref} ${event.symbol}`;
        const problem = fillProblem(event, order, filledOf(order, event.symbol) + (this.fillsOnTheirWay.get(way) ?? 0));
        if (problem !== undefined) {
          this.refuse(event, problem);
          return;
        }
        this.recordedExecs.set(event.execId, { ref, symbol: event.symbol, quantity, price: event.price });
        this.fillsOnTheirWay.set(way, (this.fillsOnTheirWay.get(way) ?? 0) + quantity);
        const applied = () => {
          const left = (this.fillsOnTheirWay.get(way) ?? 0) - quantity;
          if (left === 0) this.fillsOnTheirWay.delete(way);
          else this.fillsOnTheirWay.set(way, left);
        };
        this.record({ type: 'fill', at: event.at, ref, execId: event.execId, symbol: event.symbol, quantity, price: event.price, commission: event.commission }, applied);
        break;
      }
      case 'commission': {
        const booked = this.options.ledger.fills.get(event.execId);
        const fill = booked ?? this.recordedExecs.get(event.execId);
        // No fill of ours to charge (unknown, or refused): nothing to record.
        if (!fill) return;
        // Reported again by a reconciliation: already in the journal.
        if (booked && booked.commission === event.commission) return;
        const problem = commissionProblem(event.commission);
        if (problem !== undefined) {
          this.refuse({ ...fill, execId: event.execId, at: event.at }, problem, event.commission);
          return;
        }
        this.record({ type: 'commission', at: event.at, execId: event.execId, commission: event.commission });
        break;
      }
    }
  }

  /**
   * A report that must not count: an error in the log, an `execution.refused`
   * record as evidence (it moves nothing), and the gate halted until an
   * operator's resume acknowledges it. The same report again changes nothing.
   */
  private refuse(report: { ref: string; execId: string; symbol: string; quantity: number; price: number; at: number }, reason: string, commission?: number): void {
    const { ledger, log, gate } = this.options;
    const isCommission = commission !== undefined;
    const key = refusalKey(report.execId, isCommission);
    if (this.refusedKeys.has(key) || ledger.isRefused(key)) {
      log.debug({ execId: report.execId, reason }, 'an execution report refused before, reported again: dropped');
      return;
    }
    this.refusedKeys.add(key);
    const text = refusalText(report.execId, report.ref || undefined, reason, isCommission);
    const { ref, execId, symbol, quantity, price } = report;
    log.error({ ref, execId, symbol, quantity, price, commission, reason }, `${text}: not booked, kept in the journal as evidence; trading halts until an operator resumes`);
    // Queued for the journal first: evidence is kept whatever the halt's cancels do.
    this.record({ type: 'execution.refused', at: report.at, ...(ref ? { ref } : {}), execId, symbol, quantity, price, ...(isCommission ? { commission } : {}), reason });
    gate.latch(EXECUTIONS, key, text);
  }

  /** Cancels every working order and keeps unsent ones at home; runs inside the gate's halt. */
  cancelAll(reason: string): number {
    let n = 0;
    for (const [ref, unsent] of this.unsent) {
      if (!unsent.cancelled) n++;
      unsent.cancelled = true;
      this.options.log.warn({ ref }, `order ${ref} will not be sent: ${reason}`);
    }
    for (const order of this.options.ledger.workingOrders()) {
      if (this.unsent.has(order.ref) || order.state === 'cancel-requested') continue;
      this.cancel(order.ref, reason);
      n++;
    }
    return n;
  }

  /** Resolves once everything recorded so far is durable and applied. */
  settled(): Promise<unknown> {
    return this.pending;
  }

  /** A contrary instruction (exercise.ts): `symbol`, a long option, is not to be exercised at its expiry. */
  doNotExercise(symbol: string, reason: string): Promise<Decision> {
    const { ledger, clock } = this.options;
    return instructDoNotExercise({ ledger, clock, venue: this.venue, symbol, reason });
  }

  /** Whether an order for an option of `underlying` is in flight or working. */
  optionOrderActive(underlying: string): boolean {
    const { ledger } = this.options;
    for (const [symbol, ref] of this.active) {
      // Not yet durable, the ledger may not know it is an option: its ticket's symbol is not in the stock universe.
      const option = ledger.options.get(symbol);
      if ((option ? option.underlying === underlying : !this.options.symbols.includes(symbol)) && this.activeOrder(symbol) === ref) return true;
    }
    return false;
  }

  activeOrder(symbol: string): string | undefined {
    const ref = this.active.get(symbol);
    if (ref === undefined || this.unsent.has(ref)) return ref;
    const order = this.options.ledger.order(ref);
    if (order && isWorking(order)) return ref;
    this.active.delete(symbol);
    this.placedAt.delete(ref);
    return undefined;
  }

  /** Reads the touch and mid of instrument i (NaN where the book cannot be trusted for a price). */
  private readMarket(books: OrderBooks | undefined, i: number): void {
    const book = books?.book(i);
    const twoSided = book !== undefined && book.twoSided();
    const bid = twoSided ? book.bestBid() : NaN;
    const ask = twoSided ? book.bestAsk() : NaN;
    const mid = (bid + ask) / 2;
    // A locked or crossed book is not a price to trade at.
    const good = bid > 0 && ask > bid;
    this.bids[i] = bid;
    this.asks[i] = ask;
    this.mids[i] = good ? mid : NaN;
    this.spreadBps[i] = good ? ((ask - bid) / mid) * 1e4 : NaN;
  }

  private work(i: number): void {
    const { symbols, ledger } = this.options;
    const symbol = symbols[i]!;
    const target = this.targets[i]!;
    const position = this.positions[i]!;
    const activeRef = this.activeOrder(symbol);
    if (activeRef !== undefined) {
      const order = ledger.order(activeRef);
      // Unsent, unacknowledged or already being cancelled: wait for news.
      if (!order || order.state === 'pending' || order.state === 'cancel-requested') return;
      const remaining = order.quantity - order.filled;
      const stale = this.options.clock.now() - (this.placedAt.get(activeRef) ?? -Infinity) > this.options.replaceAfterMs;
      const wrongWay = Math.sign(remaining) !== Math.sign(target - position);
      if (wrongWay || stale) this.cancel(activeRef, wrongWay ? 'the target moved' : `working longer than ${this.options.replaceAfterMs} ms: replacing it at the current price`);
      return;
    }
    const quantity = target - position;
    // No price, no trade: an instrument without a sound book sits out.
    if (quantity === 0 || target !== target || !(this.mids[i]! > 0)) return;
    this.order({ symbol, quantity, reason: this.options.policy.reason(i) });
  }

  /**
   * Asks the gate, and if it agrees, records the order and sends it once
   * durable. The price is the far touch (marketable) unless a limit is given.
   * Refused or without a price, nothing is recorded.
   */
  order(request: { symbol: string; quantity: number; limitPrice?: number; reason: string }): Decision & { ref?: string } {
    const { ledger, gate, symbols } = this.options;
    const { symbol, quantity } = request;
    const i = symbols.indexOf(symbol);
    if (i < 0) return { ok: false, reason: `${symbol} is not in the instrument universe` };
    const busy = this.activeOrder(symbol);
    if (busy !== undefined) return { ok: false, reason: `${symbol} already has order ${busy} in flight or working` };
    this.readMarket(this.books(), i);
    const mid = this.mids[i]!;
    const price = request.limitPrice ?? (quantity > 0 ? this.asks[i]! : this.bids[i]!);
    const position = ledger.positions.get(symbol)?.quantity ?? 0;
    const decision = gate.check({ symbol, quantity, position, working: ledger.workingQuantity(symbol), price, mid, grossExposure: ledger.grossExposure() });
    if (!decision.ok) return this.refused(decision, 'order', symbol, quantity);
    return { ok: true, ref: this.place({ symbol, quantity, price, reason: request.reason }) };
  }

  /**
   * An option order: `symbol` the option's OSI symbol, `quote` its bid and
   * ask now (the limit defaults to the side it crosses), `risk` its greeks
   * and the portfolio's (options/option-risk.ts) for the gate's limits.
   * The same journal, gate and one-order-per-instrument rule as stocks.
   */
  orderOption(request: { option: OptionContract; symbol: string; quantity: number; limitPrice?: number; quote: { bid: number; ask: number }; risk: OptionRisk; reason: string }): Decision & { ref?: string } {
    const { ledger, gate } = this.options;
    const { symbol, quantity, quote } = request;
    if (!this.venue?.tradesOptions) return { ok: false, reason: `${symbol}: this venue does not trade options` };
    const busy = this.activeOrder(symbol);
    if (busy !== undefined) return { ok: false, reason: `${symbol} already has order ${busy} in flight or working` };
    const mid = quote.bid >= 0 && quote.ask >= quote.bid ? (quote.bid + quote.ask) / 2 : NaN;
    const price = request.limitPrice ?? (quantity > 0 ? quote.ask : quote.bid);
    const position = ledger.positions.get(symbol)?.quantity ?? 0;
    const decision = gate.check({ symbol, secType: 'OPT', quantity, position, working: ledger.workingQuantity(symbol), price, mid, grossExposure: ledger.grossExposure(), option: request.risk });
    if (!decision.ok) return this.refused(decision, 'option order', symbol, quantity);
    return { ok: true, ref: this.place({ symbol, quantity, price, reason: request.reason, option: request.option }) };
  }

  /**
   * A combo (combo.ts): `quantity` combos of `legs`, all filled at once at
   * a net `limitPrice` a share (a debit positive, a credit negative; it
   * defaults to the net of the legs' touches), each leg's fill booked as
   * its own position. `risk` (options/option-risk.ts comboRisk, for these
   * legs in this order) holds the legs' quotes and greeks the gate judges
   * the combo by, as a whole. The same journal and gate as any order; no
   * leg may have another order in flight or working.
   */
  orderCombo(request: { legs: readonly Omit<ComboLeg, 'price'>[]; quantity: number; limitPrice?: number; risk: ComboRisk; reason: string }): Decision & { ref?: string } {
    const { ledger, gate } = this.options;
    const { legs, quantity, risk } = request;
    const symbol = comboName(legs);
    if (!this.venue?.submitCombo) return { ok: false, reason: `${symbol}: this venue does not trade combos` };
    if (risk.legs.length !== legs.length || risk.legs.some((l, i) => l.symbol !== legs[i]!.symbol || l.ratio !== legs[i]!.ratio)) {
      return { ok: false, reason: `${symbol}: the risk given was judged for other legs (${risk.legs.map((l) => `${l.ratio} ${l.symbol}`).join(', ')})` };
    }
    for (const leg of [symbol, ...legs.map((l) => l.symbol)]) {
      const busy = this.activeOrder(leg);
      if (busy !== undefined) return { ok: false, reason: `${leg} already has order ${busy} in flight or working` };
    }
    const quoted = risk.legs.map((l) => ({ ratio: l.ratio, quote: l }));
    const price = request.limitPrice ?? netTouch(quoted, Math.sign(quantity));
    const decision = gate.check({ symbol, secType: 'BAG', quantity, position: 0, working: 0, price, mid: netMid(quoted), grossExposure: ledger.grossExposure(), combo: risk });
    if (!decision.ok) return this.refused(decision, 'combo order', symbol, quantity);
    // Each leg's touch now: what its premium was judged at.
    const judged = legs.map((l, i) => ({ ...l, price: touch(risk.legs[i]!, quantity * l.ratio) }));
    return { ok: true, ref: this.place({ symbol, quantity, price, reason: request.reason, legs: judged }) };
  }

  /** A refusal, logged once until another one comes. */
  private refused(decision: Decision & { ok: false }, what: string, symbol: string, quantity: number): Decision {
    if (decision.reason !== this.lastRefusal) this.options.log.info({ symbol, quantity, reason: decision.reason }, `${what} refused: ${decision.reason}`);
    this.lastRefusal = decision.reason;
    return decision;
  }

  private place(o: { symbol: string; quantity: number; price: number; reason: string; option?: OptionContract; legs?: readonly ComboLeg[] }): string {
    const ref = `${this.options.refPrefix}.${++this.next}`;
    const brokerOrderId = this.options.orderIds?.take();
    const order: OrderTicket = { ref, symbol: o.symbol, quantity: o.quantity, orderType: 'LMT', limitPrice: o.price, brokerOrderId };
    const { legs } = o;
    const ticket: OrderTicket | ComboTicket = legs ? { ...order, legs } : order;
    const unsent = { ticket, cancelled: false };
    this.unsent.set(ref, unsent);
    for (const symbol of [o.symbol, ...(legs ?? []).map((l) => l.symbol)]) this.active.set(symbol, ref);
    const option = o.option ? { option: o.option } : {};
    this.record({ type: 'order', at: this.options.clock.wallNow(), ref, symbol: o.symbol, ...option, ...(legs ? { legs } : {}), quantity: o.quantity, orderType: 'LMT', limitPrice: o.price, brokerOrderId, reason: o.reason }, () => {
      this.unsent.delete(ref);
      // The gate may have halted while the record was on its way to disk.
      if (unsent.cancelled || this.options.gate.state === 'HALTED') {
        this.record({ type: 'order.status', at: this.options.clock.wallNow(), ref, state: 'cancelled', reason: 'trading halted before the order was sent' });
        return;
      }
      this.placedAt.set(ref, this.options.clock.now());
      if ('legs' in ticket) this.venue!.submitCombo!(ticket);
      else this.venue!.submit(ticket);
    });
    return ref;
  }

  /** Asks for a working order's cancel (recorded as requested; the broker's answer confirms it). */
  cancel(ref: string, reason: string): void {
    this.counts.cancels++;
    this.record({ type: 'order.status', at: this.options.clock.wallNow(), ref, state: 'cancel-requested', reason });
    this.venue!.cancel(ref);
  }

  /** Appends through the ledger; `then` runs once the record is durable and applied. */
  private record(record: LedgerRecord, then?: () => void): void {
    const done = this.options.ledger.record(record).then(then, (error: unknown) => {
      this.options.gate.halt(`the journal failed: ${(error as Error).message}`, 'journal');
      this.options.fail(error);
    });
    this.pending = done;
  }
}
