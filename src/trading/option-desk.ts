/**
 * The option desk: runs the option strategy (option-policy.ts) for one
 * underlying on every prediction frame, sends what it decides through the
 * trader (and so the journal and the risk gate), and, in book mode,
 * settles the options still held when their expiry's close passes
 * (options/settlement.ts: exercise by exception at the underlying's price
 * then). In ib mode the broker settles: reconciliation books it.
 */
import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import type { RegimeFrame } from '../models/regime-tracker.js';
import type { PredictionFrame } from '../models/predictor.js';
import type { OptionChainView } from '../options/chain-view.js';
import { expiryMs } from '../options/expiry.js';
import { optionRisk } from '../options/option-risk.js';
import { settleExpiry } from '../options/settlement.js';
import type { Ledger } from './ledger.js';
import { decideOptions, type HeldOption, type OptionAction, type OptionPolicySettings } from './option-policy.js';
import type { PaperTrader } from './trader.js';

export interface OptionDeskOptions {
  readonly settings: OptionPolicySettings;
  readonly ledger: Ledger;
  readonly trader: PaperTrader;
  readonly clock: Clock;
  readonly log: Logger;
  /** Whether keel settles expiries itself (book mode) or the broker does (ib mode). */
  readonly settlesExpiries: boolean;
}

export class OptionDesk {
  private lastEntryAt = -Infinity;
  private settling = false;
  /** Per option, the wall time of the latest fill that opened or added to its position (the time stop counts from it). */
  private readonly openedAt = new Map<string, number>();
  readonly stop: () => void;

  constructor(private readonly options: OptionDeskOptions) {
    const { ledger } = options;
    // Once over what the journal held, then fill by fill: never a scan of the day's fills per frame.
    const note = (r: { symbol: string; quantity: number; at: number }) => {
      const position = ledger.positions.get(r.symbol)?.quantity ?? 0;
      if (ledger.options.has(r.symbol) && Math.sign(r.quantity) === Math.sign(position) && r.at > (this.openedAt.get(r.symbol) ?? -Infinity)) this.openedAt.set(r.symbol, r.at);
    };
    for (const f of ledger.fills.values()) note(f);
    this.stop = ledger.onEntry(({ record }) => record.type === 'fill' && note(record));
  }

  /** The underlying's options now: positions held, with the time of the latest fill that opened them. */
  held(): HeldOption[] {
    const { ledger, settings } = this.options;
    const out: HeldOption[] = [];
    for (const [symbol, contract] of ledger.options) {
      const position = ledger.positions.get(symbol);
      if (contract.underlying !== settings.underlying || !position || position.quantity === 0) continue;
      out.push({ symbol, contract, quantity: position.quantity, averagePrice: position.averagePrice, openedAt: this.openedAt.get(symbol) ?? -Infinity });
    }
    return out;
  }

  onFrame(frame: PredictionFrame, regime: RegimeFrame | undefined, chain: OptionChainView | undefined): void {
    const { settings, trader, clock } = this.options;
    if (!chain || chain.underlying !== settings.underlying || chain.phase !== 'streaming') return;
    const i = frame.symbols.indexOf(settings.underlying);
    const r = regime?.symbols.indexOf(settings.underlying) ?? -1;
    const state = r >= 0 ? regime!.state[r]! : -1;
    const actions = decideOptions(settings, {
      now: clock.wallNow(),
      prediction: i >= 0 ? frame.value[i]! : NaN,
      regime: state >= 0 ? regime!.labels[state] : undefined,
      spot: chain.spot,
      rows: chain.rows,
      expiries: Object.keys(chain.centres)
        .sort()
        .map((expiry) => ({ expiry, at: expiryMs(expiry) })),
      held: this.held(),
      busy: trader.optionOrderActive(settings.underlying),
      lastEntryAt: this.lastEntryAt,
    });
    for (const action of actions) this.act(action, chain);
  }

  /** In book mode, options whose expiry's close has passed are settled at the underlying's price now. */
  onChain(chain: OptionChainView): void {
    const { settings, ledger, clock, log, settlesExpiries } = this.options;
    if (!settlesExpiries || this.settling || chain.underlying !== settings.underlying || !(chain.spot > 0)) return;
    const now = clock.wallNow();
    const due = this.held().filter((h) => expiryMs(h.contract.expiry) <= now);
    if (due.length === 0) return;
    const positions = new Map(due.map((h) => [h.symbol, h.quantity]));
    const records = [...new Set(due.map((h) => h.contract.expiry))].flatMap((expiry) => settleExpiry({ positions, contracts: ledger.options, expiry, closes: new Map([[settings.underlying, chain.spot]]), at: now }));
    this.settling = true;
    void (async () => {
      try {
        for (const record of records) {
          await ledger.record(record);
          log.info({ symbol: record.symbol, outcome: record.outcome, contracts: record.contracts, shares: record.shares }, `${record.symbol} ${record.outcome} at the expiry: ${record.reason}`);
        }
      } finally {
        this.settling = false;
      }
    })();
  }

  private act(action: OptionAction, chain: OptionChainView): void {
    const { ledger, trader, log, clock, settings } = this.options;
    const row = action.kind === 'enter' ? action.row : chain.rows.find((r) => r.conId === action.held.contract.conId)!;
    // SPY's multiplier: the chain's listing does not carry contract multipliers yet.
    const option = action.kind === 'enter' ? { conId: row.conId, underlying: settings.underlying, expiry: row.expiry, strike: row.strike, right: row.right, multiplier: 100 } : action.held.contract;
    const quantity = action.kind === 'enter' ? action.contracts : -action.held.quantity;
    const risk = optionRisk(option, chain, ledger);
    if (typeof risk === 'string') {
      log.warn({ symbol: row.localSymbol }, `option ${action.kind} skipped: ${risk}`);
      return;
    }
    const placed = trader.orderOption({ option, symbol: row.localSymbol, quantity, limitPrice: action.limitPrice, quote: row, risk, reason: action.reason });
    if (!placed.ok) return;
    if (action.kind === 'enter') this.lastEntryAt = clock.wallNow();
    log.info({ ref: placed.ref, symbol: row.localSymbol, quantity, limitPrice: action.limitPrice }, `option ${action.kind === 'enter' ? 'entry' : 'exit'}: ${quantity > 0 ? 'buy' : 'sell'} ${Math.abs(quantity)} ${row.localSymbol} at ${action.limitPrice}: ${action.reason}`);
  }
}
