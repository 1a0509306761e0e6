/** Option lines within the allowance: asked for in order, cancelled before new ones, refused or retried as IB says. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FIRST_OPTION_REQUEST_ID, OptionLinePlan, type OptionLineContract } from '../../src/ib/option-lines.js';

const contract = (strike: number, right: 'C' | 'P' = 'C'): OptionLineContract => ({ conId: strike * 10 + (right === 'P' ? 1 : 0), localSymbol: `SPY ${strike}${right}`, expiry: '20260105', strike, right });
const band = (...strikes: number[]) => strikes.map((k) => contract(k));

test('wanted lines are asked for in order, never more held than the allowance', () => {
  const plan = new OptionLinePlan(3);
  assert.deepEqual(plan.want(band(580, 581, 579, 582)), []);
  const due = plan.due(0);
  assert.deepEqual(due.map((l) => [l.contract.strike, l.reqId]), [[580, FIRST_OPTION_REQUEST_ID], [581, FIRST_OPTION_REQUEST_ID + 1], [579, FIRST_OPTION_REQUEST_ID + 2]]);
  assert.deepEqual(plan.due(0), [], 'the allowance is spent');
  assert.equal(plan.held, 3);
  for (const l of due) l.asked = true;
  assert.equal(plan.data(FIRST_OPTION_REQUEST_ID), true);
  assert.equal(plan.data(42), false, 'not an option line');
  assert.deepEqual(plan.counts(), { allowance: 3, wanted: 4, waiting: 1, requested: 2, live: 1, refused: 0 });
  assert.equal(plan.lineOf(5820)?.status, 'waiting');
});

test('a moved band: the lines left behind are cancelled, the ones kept keep their requests, new ones fill the room', () => {
  const plan = new OptionLinePlan(3);
  plan.want(band(580, 581, 579));
  for (const l of plan.due(0)) l.asked = true;
  const kept = plan.lineOf(5810)!.reqId;
  const dropped = plan.want(band(581, 582, 583));
  assert.deepEqual(dropped.map((l) => l.contract.strike).sort(), [579, 580]);
  assert.equal(plan.held, 1);
  assert.equal(plan.lineOf(5810)!.reqId, kept);
  assert.deepEqual(plan.due(0).map((l) => l.contract.strike), [582, 583]);
  assert.equal(plan.held, 3);
  // A request still waiting in the pacer is dropped there, not cancelled.
  assert.deepEqual(plan.want(band(581)), [], 'never asked: nothing to cancel');
  assert.equal(plan.held, 1);
});

test('101 waits and is retried later; 200 is refused until wanted again; a new epoch asks for everything again', () => {
  const plan = new OptionLinePlan(5);
  plan.want(band(580, 581));
  const [a, b] = plan.due(0);
  a!.asked = b!.asked = true;
  assert.equal(plan.refused(a!.reqId!, 101, 'Max number of tickers has been reached', 1_000)?.status, 'waiting');
  assert.equal(plan.refused(b!.reqId!, 200, 'No security definition has been found', 1_000)?.status, 'refused');
  assert.equal(plan.refused(12345, 101, 'x', 1_000), undefined, 'not an option line');
  assert.deepEqual(plan.due(5_000), [], '101: not before 15 s');
  assert.deepEqual(plan.due(16_000).map((l) => l.contract.strike), [580]);
  assert.equal(plan.refused(plan.lineOf(5800)!.reqId!, 10167, 'Displaying delayed market data', 16_000), undefined, 'a warning leaves the line as it is');
  plan.voidAll();
  assert.equal(plan.held, 0);
  assert.deepEqual(plan.due(16_000).map((l) => l.contract.strike), [580, 581]);
  assert.equal(plan.heldLines().length, 0, 'nothing asked in this epoch yet');
});
