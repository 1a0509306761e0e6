/** The option strategy's decisions on their own: entries, the contract chosen, and every exit, each with its reason. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ChainRow } from '../../src/options/chain-view.js';
import { decideOptions, optionPolicySettings, type HeldOption, type OptionPolicyInput } from '../../src/trading/option-policy.js';

const NOW = Date.UTC(2026, 0, 5, 16, 0); // 11:00 New York
const EXPIRY_AT = Date.UTC(2026, 0, 5, 21, 0);
const MIN = 60_000;

function row(strike: number, right: 'C' | 'P', delta: number, bid: number, ask: number): ChainRow {
  return { conId: strike * 10 + (right === 'C' ? 1 : 2), localSymbol: `SPY ${strike}${right}`, expiry: '20260105', strike, right, line: 'live', bid, ask, keel: { delta } } as unknown as ChainRow;
}
const ROWS = [row(578, 'C', 0.62, 2.4, 2.45), row(580, 'C', 0.5, 1.5, 1.55), row(582, 'C', 0.39, 0.9, 0.95), row(584, 'C', 0.25, 0.45, 0.48), row(576, 'P', -0.3, 0.7, 0.74), row(578, 'P', -0.41, 1.1, 1.14), row(580, 'P', -0.5, 1.6, 1.65)];

const input = (o: Partial<OptionPolicyInput> = {}): OptionPolicyInput => ({
  now: NOW,
  prediction: 3,
  regime: undefined,
  spot: 580.2,
  rows: ROWS,
  expiries: [{ expiry: '20260105', at: EXPIRY_AT }],
  held: [],
  busy: false,
  lastEntryAt: -Infinity,
  ...o,
});
const S = optionPolicySettings.parse({ enabled: true });

test('a rise predicted buys the call whose delta is nearest 0.40 at its ask; a fall, the put', () => {
  const [call] = decideOptions(S, input());
  assert.equal(call!.kind, 'enter');
  assert.equal(call!.kind === 'enter' && call!.row.localSymbol, 'SPY 582C');
  assert.equal(call!.limitPrice, 0.95);
  assert.equal(call!.reason, 'SPY predicted +3.00 bps (entry 2 bps): buy the call with delta nearest 0.4, Δ 0.39, at the ask');
  const [put] = decideOptions(S, input({ prediction: -2.5 }));
  assert.equal(put!.kind === 'enter' && put!.row.localSymbol, 'SPY 578P');
  const offset = optionPolicySettings.parse({ enabled: true, strikeOffset: 2 });
  const [otm] = decideOptions(offset, input());
  assert.equal(otm!.kind === 'enter' && otm!.row.localSymbol, 'SPY 584C', 'two listed strikes above the 580 nearest SPY 580.20');
});

test('no entry: a weak prediction, a blocked regime, the cooldown, too little time left, an order working', () => {
  assert.deepEqual(decideOptions(S, input({ prediction: 1.9 })), []);
  assert.deepEqual(decideOptions(optionPolicySettings.parse({ enabled: true, blockedRegimes: ['volatile'] }), input({ regime: 'volatile' })), []);
  assert.deepEqual(decideOptions(S, input({ lastEntryAt: NOW - 30_000 })), []);
  assert.deepEqual(decideOptions(S, input({ now: EXPIRY_AT - 59 * MIN })), []);
  assert.deepEqual(decideOptions(S, input({ busy: true })), []);
});

const held = (averagePrice: number, openedAt = NOW - 5 * MIN): HeldOption => ({
  symbol: 'SPY 580C',
  contract: { conId: 5801, underlying: 'SPY', expiry: '20260105', strike: 580, right: 'C', multiplier: 100 },
  quantity: 2,
  averagePrice,
  openedAt,
});

test('exits at the bid: take profit, stop, time stop, before the close; holding, no new entry', () => {
  const exit = (h: HeldOption, o: Partial<OptionPolicyInput> = {}) => decideOptions(S, input({ held: [h], ...o }));
  assert.deepEqual(exit(held(1.5)), [], 'held, nothing due: no exit and no second entry');
  const [profit] = exit(held(1.0));
  assert.equal(profit!.kind, 'exit');
  assert.equal(profit!.limitPrice, 1.5);
  assert.equal(profit!.reason, 'take profit: bid 1.5 is +50 % on 1 paid (target +50 %)');
  assert.equal(exit(held(2.2))[0]!.reason, 'stop: bid 1.5 is -32 % on 2.2 paid (stop -30 %)');
  assert.equal(exit(held(1.5, NOW - 31 * MIN))[0]!.reason, 'time stop: held 31 min (at most 30)');
  assert.equal(exit(held(1.5), { now: EXPIRY_AT - 10 * MIN })[0]!.reason, "10 min to the expiry's close (exit 15 min before)");
  const through = optionPolicySettings.parse({ enabled: true, holdThroughExpiry: true, maxHoldMinutes: 1_000 });
  assert.deepEqual(decideOptions(through, input({ held: [held(1.5)], now: EXPIRY_AT - 10 * MIN })), [], 'held through the expiry');
});

test('structure vertical: buy the chosen call, sell the one verticalWidth strikes further out, as one combo at the net of the touches; sold back as one', () => {
  const V = optionPolicySettings.parse({ enabled: true, structure: 'vertical' });
  const [entry] = decideOptions(V, input());
  assert.ok(entry?.kind === 'enter');
  assert.deepEqual([entry.row.localSymbol, entry.sold?.localSymbol, entry.limitPrice], ['SPY 582C', 'SPY 584C', 0.5]);
  assert.equal(entry.reason, 'SPY predicted +3.00 bps (entry 2 bps): buy the 582/584 call vertical (bought: the call with delta nearest 0.4, Δ 0.39; sold: 1 strike further out) at the touches\' net debit 0.5');
  const [put] = decideOptions(V, input({ prediction: -3 }));
  assert.ok(put?.kind === 'enter');
  assert.deepEqual([put.row.localSymbol, put.sold?.localSymbol, put.limitPrice], ['SPY 578P', 'SPY 576P', 0.44]);
  assert.deepEqual(decideOptions(optionPolicySettings.parse({ enabled: true, structure: 'vertical', verticalWidth: 2 }), input()), [], 'no second call with a bid beyond 584: no vertical');

  // Held: 582C long at 0.95, 584C short at 0.45: 0.50 paid; the net bid now 0.90 - 0.48 = 0.42.
  const leg = (strike: number, quantity: number, averagePrice: number, openedAt = NOW - 5 * MIN): HeldOption => ({
    symbol: `SPY ${strike}C`,
    contract: { conId: strike * 10 + 1, underlying: 'SPY', expiry: '20260105', strike, right: 'C', multiplier: 100 },
    quantity,
    averagePrice,
    openedAt,
  });
  assert.deepEqual(decideOptions(V, input({ held: [leg(582, 2, 0.95), leg(584, -2, 0.45)] })), [], 'down 16 %: held');
  const [stop] = decideOptions(V, input({ held: [leg(582, 2, 0.95, NOW - 31 * MIN), leg(584, -2, 0.45)] }));
  assert.ok(stop?.kind === 'exit');
  assert.deepEqual([stop.held.symbol, stop.sold?.symbol, stop.limitPrice, stop.reason], ['SPY 582C', 'SPY 584C', 0.42, 'time stop: held 31 min (at most 30)']);
  const [profit] = decideOptions(S, input({ held: [leg(582, 1, 0.6), leg(584, -1, 0.4)] }));
  assert.equal(profit!.reason, 'take profit: net bid 0.42 is +110 % on 0.2 paid (target +50 %)', 'a vertical held is judged as one whatever the structure now');
});
