/** IBKR Pro's tiered option commission, its minimum across fills, and the pass-through fees. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OptionOrderCost, optionCommissionSchedule, perContract } from '../../src/trading/option-commissions.js';

const NO_FEES = optionCommissionSchedule.parse({ orfPerContract: 0, occPerContract: 0, tafPerContractSold: 0, secFeeRate: 0 });

test("IBKR's own examples: 1 contract at $2 costs $1.00, 2 at $5 $1.30, 3 at $0.075 $1.50, 5 at $0.03 $1.25 (commission alone)", () => {
  const cost = (contracts: number, premium: number) => new OptionOrderCost(NO_FEES).fill(contracts, premium, 100);
  assert.equal(cost(1, 2), 1);
  assert.equal(cost(2, 5), 1.3);
  assert.equal(cost(3, 0.075), 1.5);
  assert.equal(cost(5, 0.03), 1.25);
  assert.equal(perContract(NO_FEES, 0.1), 0.65);
  assert.equal(perContract(NO_FEES, 0.0999), 0.5);
  assert.equal(perContract(NO_FEES, 0.049), 0.25);
});

test("the minimum is charged once across an order's fills; later fills pay what the total grows by", () => {
  const order = new OptionOrderCost(NO_FEES);
  assert.equal(order.fill(1, 1.2, 100), 1, 'the first fill pays the minimum');
  assert.equal(order.fill(1, 1.2, 100), 0.3, '2 × 0.65 = 1.30 in all');
  assert.equal(order.fill(3, 1.2, 100), 1.95);
});

test('pass-through fees: ORF and OCC on every contract, TAF and the SEC fee on contracts sold', () => {
  const schedule = optionCommissionSchedule.parse({});
  // Buy 10 at 1.25: 6.50 + 10 × (0.02685 + 0.02) = 6.9685 -> 6.97.
  assert.equal(new OptionOrderCost(schedule).fill(10, 1.25, 100), 6.97);
  // Sell 10 at 1.25: 6.9685 + 10 × 0.00279 + 1,250 × 0.000008 = 7.0064 -> 7.01.
  assert.equal(new OptionOrderCost(schedule).fill(-10, 1.25, 100), 7.01);
});
