/**
 * The option desk: runs the option strategy (option-policy.ts, when
 * enabled) for one underlying on every prediction frame, sends what it
 * decides through the trader (and so the journal and the risk gate: a
 * vertical as one combo), and, in book mode, settles the options still
 * held (the strategy's or bought by hand) when their expiry's close passes
 * (options/settlement.ts: exercise by exception at the underlying's price
 * then). In ib mode the broker settles: reconciliation books it.
 */
import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import type { RegimeFrame } from '../models/regime-tracker.js';
import { predictionsAt, type PredictionFrame } from '../models/predictor.js';
import type { OptionChainView } from '../options/chain-view.js';
import type { OptionContract } from '../journal/records.js';
import { expiryMs } from '../options/expiry.js';
import type { ChainRow } from '../options/chain-view.js';
import { comboRisk, optionRisk } from '../options/option-risk.js';
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
    if (!settings.enabled || !chain || chain.underlying !== settings.underlying || chain.phase !== 'streaming') return;
    const i = frame.symbols.indexOf(settings.underlying);
    const predictions = predictionsAt(frame, settings.horizon);
    const r = regime?.symbols.indexOf(settings.underlying) ?? -1;
    const state = r >= 0 ? regime!.state[r]! : -1;
    const actions = decideOptions(settings, {
      now: clock.wallNow(),
      prediction: i >= 0 && predictions ? predictions.value[i]! : NaN,
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
    const records = [...new Set(due.map((h) => h.contract.expiry))].flatMap((expiry) => settleExpiry({ positions, contracts: ledger.options, expiry, closes: new Map([[settings.underlying, chain.spot]]), doNotExercise: ledger.doNotExercise, at: now }));
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
    const { ledger, trader, log, clock } = this.options;
    const entering = action.kind === 'enter';
    const leg = (row: ChainRow, option = this.contractOf(row)) => ({ row, option });
    const heldLeg = (held: HeldOption) => leg(chain.rows.find((r) => r.conId === held.contract.conId)!, held.contract);
    // The option bought (or sold back) and, for a vertical, the one sold (or bought back) with it.
    const main = entering ? leg(action.row) : heldLeg(action.held);
    const sold = action.sold && (entering ? leg(action.sold) : heldLeg(action.sold));
    const quantity = entering ? action.contracts : -action.held.quantity;
    const { reason, limitPrice } = action;
    let symbol: string;
    let placed: ReturnType<PaperTrader['orderOption']>;
    if (sold) {
      const legs = [main, sold].map(({ row, option }, i) => ({ symbol: row.localSymbol, option, ratio: i === 0 ? 1 : -1 }));
      const risk = comboRisk(legs, chain, ledger);
      if (typeof risk === 'string') return log.warn({ legs: legs.map((l) => l.symbol) }, `option ${action.kind} skipped: ${risk}`);
      placed = trader.orderCombo({ legs, quantity, limitPrice, risk, reason });
      symbol = `${main.row.localSymbol} / ${sold.row.localSymbol} vertical`;
    } else {
      const risk = optionRisk(main.option, chain, ledger);
      if (typeof risk === 'string') return log.warn({ symbol: main.row.localSymbol }, `option ${action.kind} skipped: ${risk}`);
      placed = trader.orderOption({ option: main.option, symbol: main.row.localSymbol, quantity, limitPrice, quote: main.row, risk, reason });
      symbol = main.row.localSymbol;
    }
    if (!placed.ok) return;
    if (entering) this.lastEntryAt = clock.wallNow();
    log.info({ ref: placed.ref, symbol, quantity, limitPrice }, `option ${entering ? 'entry' : 'exit'}: ${quantity > 0 ? 'buy' : 'sell'} ${Math.abs(quantity)} ${symbol} at ${limitPrice}: ${reason}`);
  }

  /** The contract of a chain row, in the journal's terms. */
  private contractOf(row: ChainRow): OptionContract {
    // A listing that does not say (one recorded before it kept multipliers) gets the standard US equity option's 100.
    const multiplier = row.multiplier > 0 ? row.multiplier : 100;
    return { conId: row.conId, underlying: this.options.settings.underlying, expiry: row.expiry, strike: row.strike, right: row.right, multiplier };
  }
}
