/**
 * Limit orders to TWS through the link, every one asked of the risk gate
 * first, and every working one cancelled when the gate halts. This is the
 * gate's order path in its simplest form; the paper trader builds its
 * order state machines, journal and reconciliation on top of it.
 */
import { EventName, OrderAction, OrderType, SecType, type IBApi } from '@stoqey/ib';
import type { Logger } from 'pino';
import { listenTo, type IbLink } from '../ib/link.js';
import { PRIORITY } from '../ib/pacer.js';
import type { Decision, RiskGate } from './risk-gate.js';

export interface LimitOrder {
  readonly symbol: string;
  /** Signed: positive buys, negative sells. */
  readonly quantity: number;
  readonly limitPrice: number;
  /** The position before this order, for reduce-only. */
  readonly position?: number;
}

export interface WorkingOrder extends LimitOrder {
  readonly orderId: number;
  status: string;
}

/** IB statuses after which an order no longer works. */
const DONE = new Set(['Filled', 'Cancelled', 'ApiCancelled', 'Inactive']);

export type Placed = Decision & { readonly orderId?: number };

export class IbOrders {
  readonly working = new Map<number, WorkingOrder>();
  /** Cancels asked for since the start, for the record. */
  cancelsIssued = 0;
  private readonly stopListening: () => void;
  private readonly stopCancelling: () => void;

  constructor(
    private readonly link: IbLink,
    private readonly gate: RiskGate,
    private readonly log: Logger,
  ) {
    this.stopListening = listenTo(link.api, [[EventName.orderStatus, this.onStatus]]);
    this.stopCancelling = gate.onHalt(() => this.cancelAll());
  }

  /** Sends the order if the gate allows it; a refusal says why and sends nothing. */
  place(order: LimitOrder): Placed {
    if (!Number.isFinite(order.limitPrice) || order.limitPrice <= 0) return { ok: false, reason: `limit price ${order.limitPrice} is not a positive number` };
    if (!Number.isInteger(order.quantity) || order.quantity === 0) return { ok: false, reason: `quantity ${order.quantity} is not a non-zero whole number` };
    // The state rules only: this bare path has no mid for the pre-trade limits (and the
    // emergency-stop test rests its orders far from the market). The paper trader calls check().
    const decision = this.gate.checkStateOnly({ symbol: order.symbol, quantity: order.quantity, position: order.position ?? 0 });
    if (!decision.ok) {
      this.log.warn({ symbol: order.symbol, quantity: order.quantity, reason: decision.reason }, 'order refused by the risk gate');
      return decision;
    }
    if (!this.link.ready) return { ok: false, reason: 'the IB link is not ready' };
    const orderId = this.link.orderIds.take();
    this.working.set(orderId, { ...order, orderId, status: 'PendingSubmit' });
    this.link.send(PRIORITY.orders, `place ${orderId}`, (api: IBApi) =>
      api.placeOrder(
        orderId,
        { symbol: order.symbol, secType: SecType.STK, exchange: 'SMART', currency: 'USD' },
        {
          action: order.quantity > 0 ? OrderAction.BUY : OrderAction.SELL,
          orderType: OrderType.LMT,
          totalQuantity: Math.abs(order.quantity),
          lmtPrice: order.limitPrice,
          transmit: true,
        },
      ),
    );
    return { ok: true, orderId };
  }

  /** Asks TWS to cancel every working order; returns how many. */
  cancelAll(): number {
    let n = 0;
    for (const order of this.working.values()) {
      if (order.status === 'PendingCancel') continue;
      order.status = 'PendingCancel';
      this.link.send(PRIORITY.orders, `cancel ${order.orderId}`, (api: IBApi) => api.cancelOrder(order.orderId));
      n++;
    }
    this.cancelsIssued += n;
    if (n > 0) this.log.warn({ orders: n }, 'cancelling every working order');
    return n;
  }

  close(): void {
    this.stopListening();
    this.stopCancelling();
  }

  private readonly onStatus = (orderId: number, status: string): void => {
    const order = this.working.get(orderId);
    if (!order) return;
    if (DONE.has(status)) this.working.delete(orderId);
    else if (order.status !== 'PendingCancel') order.status = status;
  };
}
