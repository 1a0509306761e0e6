/**
 * Reconciliation: the journal's view against the broker's, after the
 * broker's executions since the last recorded fill have been recorded.
 *
 * Orders the journal thinks may still work but the broker does not list are
 * closed in the journal: `cancelled` if the broker had them (they ended while
 * keel was away), `lost` if it never did (recorded, then keel died before or
 * while sending). Neither is ever sent again. Open orders the journal does not
 * know and positions that differ are mismatches: reported, for the gate to
 * stay REDUCING or HALTED. A position the broker reports that is not a
 * finite number, or beyond any account (executions.ts), is a mismatch with
 * that reason: never compared as a number, never booked. IB sends no event
 * when it exercises, assigns or expires an option: a difference those
 * explain exactly (options/settlement.ts) is booked as settlement records,
 * not reported.
 *
 * The broker's report and the journal are two pictures taken at different
 * moments: an order still working at the broker can fill after the broker's
 * positions ended and before its fill is durable in the journal (or the
 * other way round). So a mismatch while the account moves (fills recorded
 * during the attempt, or orders of ours working at the broker) is asked
 * again after a pause; only a mismatch that survives the last attempt, or
 * one seen while nothing moved, counts.
 */
import type { OptionSettlementRecord, OrderStatusRecord } from '../journal/records.js';
import { recogniseSettlements } from '../options/settlement.js';
import { brokerPositionProblem } from './executions.js';
import type { BrokerSnapshot } from './ib-venue.js';
import { isWorking, type Ledger } from './ledger.js';
import type { Clock } from '../clock.js';

export interface Reconciliation {
  /** Status records that bring the journal in line with the broker. */
  readonly records: OrderStatusRecord[];
  /** Expiries, exercises and assignments the broker booked without an event, recognised from its positions. */
  readonly settlements: OptionSettlementRecord[];
  /** What differs and cannot be settled by a record, in words. */
  readonly mismatches: string[];
}

export function reconcile(ledger: Ledger, broker: BrokerSnapshot, at: number, doNotExercise?: ReadonlySet<string>): Reconciliation {
  const records: OrderStatusRecord[] = [];
  const mismatches: string[] = [];
  const open = new Map(broker.openOrders.filter((o) => o.ref !== '').map((o) => [o.ref, o]));
  for (const order of ledger.orders.values()) {
    if (!isWorking(order)) continue;
    const there = open.get(order.ref);
    if (there) {
      if (order.state === 'pending') records.push({ type: 'order.status', at, ref: order.ref, state: 'working', permId: there.permId, reason: 'open at the broker when reconciled' });
      continue;
    }
    if (order.state === 'pending' && order.permId === undefined) {
      records.push({ type: 'order.status', at, ref: order.ref, state: 'lost', reason: 'recorded, but the broker never had it: not sent again' });
    } else {
      records.push({ type: 'order.status', at, ref: order.ref, state: 'cancelled', reason: 'not open at the broker when reconciled: it ended while keel was away' });
    }
  }
  for (const o of broker.openOrders) {
    if (o.ref === '' || !ledger.orders.has(o.ref)) {
      mismatches.push(`open order ${o.orderId} (${o.ref === '' ? 'no orderRef' : o.ref}) for ${o.symbol} is at the broker but not in the journal`);
    }
  }
  const ours = new Map([...ledger.positions].map(([symbol, p]) => [symbol, p.quantity]));
  const settlements = recogniseSettlements({ ours, theirs: broker.positions, contracts: ledger.options, doNotExercise, at });
  for (const s of settlements) {
    ours.set(s.symbol, ours.get(s.symbol)! - s.contracts);
    const underlying = ledger.options.get(s.symbol)!.underlying;
    ours.set(underlying, (ours.get(underlying) ?? 0) + s.shares);
  }
  const symbols = new Set([...ours.keys(), ...broker.positions.keys()]);
  for (const symbol of [...symbols].sort()) {
    const mine = ours.get(symbol) ?? 0;
    const theirs = broker.positions.get(symbol) ?? 0;
    const problem = brokerPositionProblem(theirs);
    if (problem !== undefined) mismatches.push(`${symbol}: the broker reported a position of ${theirs} shares, ${problem}; the journal holds ${mine}`);
    else if (mine !== theirs) mismatches.push(`${symbol}: the journal holds ${mine} ${ledger.options.has(symbol) ? 'contracts' : 'shares'}, the broker ${theirs}`);
  }
  return { records, settlements, mismatches };
}

export interface SettleOptions {
  readonly ledger: Ledger;
  readonly clock: Clock;
  /** The broker's report, with executions since the given wall time. */
  snapshot(sinceWallMs: number): Promise<BrokerSnapshot>;
  /** Resolves once every fill reported so far is durable in the journal. */
  settled(): Promise<void>;
  /** Executions are asked for from this long before the last recorded fill. */
  readonly overlapMs: number;
  readonly attempts: number;
  readonly retryMs: number;
  /** Long options told not to exercise, as they stand now. */
  doNotExercise?(): ReadonlySet<string>;
}

/** Reconciles until the two pictures agree, or nothing moved between them, or the attempts run out. */
export async function reconcileWhenQuiet(options: SettleOptions): Promise<Reconciliation & { attempts: number; executions: number; openAtBroker: number }> {
  const { ledger, clock } = options;
  for (let attempt = 1; ; attempt++) {
    const fillsBefore = ledger.fills.size;
    const snapshot = await options.snapshot(ledger.lastFillAt - options.overlapMs);
    // The executions the journal missed came through as fills on the way: let them be durable first.
    await options.settled();
    const result = reconcile(ledger, snapshot, clock.wallNow(), options.doNotExercise?.());
    const moving = ledger.fills.size !== fillsBefore || snapshot.openOrders.some((o) => o.ref !== '' && ledger.orders.has(o.ref));
    if (result.mismatches.length === 0 || !moving || attempt >= options.attempts) {
      return { ...result, attempts: attempt, executions: snapshot.executions, openAtBroker: snapshot.openOrders.length };
    }
    await new Promise<void>((resolve) => clock.setTimeout(resolve, options.retryMs));
  }
}
