/** A combo's touch (options/combo.ts): the net at the legs' own touches, in IB's sign convention, and the size the legs allow. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { comboReaches, comboTouch, type ComboLegQuote } from '../../src/sim/options/combo.js';

const quote = (bid: number, ask: number, bidSize = 10, askSize = 10) => ({ bid, ask, bidSize, askSize });
/** A 580/585 call spread: buy the 580, sell the 585. */
const vertical: ComboLegQuote[] = [
  { action: 'BUY', ratio: 1, quote: quote(3.1, 3.2, 20, 7) },
  { action: 'SELL', ratio: 1, quote: quote(1.05, 1.12, 9, 30) },
];

test('buying a debit spread pays the buy leg\'s ask less the sell leg\'s bid; selling it takes the buy leg\'s bid less the sell leg\'s ask', () => {
  assert.deepEqual(comboTouch('BUY', vertical), { legs: [{ buy: true, price: 3.2 }, { buy: false, price: 1.05 }], net: 2.15, size: 7 });
  assert.deepEqual(comboTouch('SELL', vertical), { legs: [{ buy: false, price: 3.1 }, { buy: true, price: 1.12 }], net: 1.98, size: 20 });
});

test('a credit is a negative net; ratios multiply prices and divide sizes; a side with no price or size is no touch', () => {
  const credit = vertical.map((l) => ({ ...l, action: l.action === 'BUY' ? 'SELL' : 'BUY' }) as const);
  assert.equal(comboTouch('BUY', credit)!.net, -1.98);
  const fly: ComboLegQuote[] = [
    { action: 'BUY', ratio: 1, quote: quote(3.1, 3.2) },
    { action: 'SELL', ratio: 2, quote: quote(1.05, 1.12, 9) },
    { action: 'BUY', ratio: 1, quote: quote(0.3, 0.33) },
  ];
  assert.deepEqual([comboTouch('BUY', fly)!.net, comboTouch('BUY', fly)!.size], [1.43, 4]);
  assert.equal(comboTouch('BUY', [vertical[0]!, { ...vertical[1]!, quote: quote(0, 0.05, 0, 10) }]), undefined);
});

test('marketable when the net is at or better than the limit, and each leg with a price of its own is at or better than it', () => {
  const buy = comboTouch('BUY', vertical)!;
  assert.equal(comboReaches('BUY', 2.15, vertical, buy), true);
  assert.equal(comboReaches('BUY', 2.14, vertical, buy), false);
  assert.equal(comboReaches('BUY', undefined, vertical, buy), true, 'a market order');
  const sell = comboTouch('SELL', vertical)!;
  assert.equal(comboReaches('SELL', 1.98, vertical, sell), true);
  assert.equal(comboReaches('SELL', 1.99, vertical, sell), false);
  const legPriced = [{ ...vertical[0]!, limit: 3.15 }, { ...vertical[1]!, limit: 1.05 }];
  assert.equal(comboReaches('BUY', 2.2, legPriced, buy), false, 'the buy leg pays more than its own price');
  assert.equal(comboReaches('BUY', 2.2, [{ ...vertical[0]!, limit: 3.2 }, { ...vertical[1]!, limit: 1.05 }], buy), true);
});
