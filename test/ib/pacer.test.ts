/** The outgoing pacer and the subscription plan: pure logic on a manual clock. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock } from '../../src/clock.js';
import { Pacer, PRIORITY } from '../../src/ib/pacer.js';
import { FIRST_REQUEST_ID, SubscriptionPlan } from '../../src/ib/subscription-plan.js';

test('the pacer never lets more than its rate through in any one-second window, and drains everything', async () => {
  const clock = new ManualClock();
  const pacer = new Pacer(clock, 45, 5);
  const sentAt: number[] = [];
  for (let i = 0; i < 300; i++) pacer.submit(PRIORITY.subscriptions, `r${i}`, () => sentAt.push(clock.now()));
  assert.equal(pacer.waiting, 295, 'only the burst goes at once; the rest wait, visibly');
  await clock.advance(10_000);
  assert.equal(sentAt.length, 300);
  for (let i = 0; i < sentAt.length; i++) {
    const inWindow = sentAt.filter((t) => t >= sentAt[i]! && t < sentAt[i]! + 1000).length;
    assert.ok(inWindow <= 45, `${inWindow} sends in the second from ${sentAt[i]} ms`);
  }
});

test('more urgent requests jump the queue; equal ones keep their order; clear forgets the queue', async () => {
  const clock = new ManualClock();
  const pacer = new Pacer(clock, 10, 1);
  const order: string[] = [];
  const send = (label: string, priority: number) => pacer.submit(priority, label, () => order.push(label));
  send('a', PRIORITY.subscriptions);
  send('b', PRIORITY.subscriptions);
  send('c', PRIORITY.subscriptions);
  send('probe', PRIORITY.control);
  send('order', PRIORITY.orders);
  assert.deepEqual(pacer.waitingLabels(), ['probe', 'order', 'b', 'c']);
  await clock.advance(2_000);
  assert.deepEqual(order, ['a', 'probe', 'order', 'b', 'c']);
  send('x', PRIORITY.subscriptions);
  send('y', PRIORITY.subscriptions);
  pacer.clear();
  await clock.advance(1_000);
  assert.deepEqual(order.slice(5), ['x'], 'x went on the refilled token; y was forgotten');
});

test('the plan keeps budgets, retries budget refusals, refuses for good on 200, and ignores warnings', () => {
  const feeds = ['SPY', 'QQQ', 'AAPL', 'MSFT'].map((symbol, instrument) => ({ symbol, instrument, kind: 'depth' as const, priority: instrument, rows: 5 }));
  const plan = new SubscriptionPlan(feeds, { marketDataLines: 10, depthSlots: 3, tickByTickSlots: 3 });
  const first = plan.due(0);
  assert.deepEqual(first.map((f) => f.symbol), ['SPY', 'QQQ', 'AAPL']);
  assert.ok(first.every((f) => f.reqId! >= FIRST_REQUEST_ID), 'request ids never collide with order ids');
  assert.match(plan.feeds[3]!.note, /waiting for a depth slot/);

  assert.equal(plan.refused(first[0]!.reqId!, 202, 'Order Canceled', 0), undefined, 'a warning or an order message leaves the feed alone');
  assert.equal(first[0]!.status, 'requested');
  plan.refused(first[1]!.reqId!, 309, 'Max number (3) of market depth requests has been reached', 0);
  assert.deepEqual(plan.due(1).map((f) => f.symbol), ['MSFT'], 'the freed slot goes to the next in line');
  assert.deepEqual(plan.due(15_001).map((f) => f.symbol), [], 'QQQ retries after 15 s, when a slot is free');
  plan.refused(first[2]!.reqId!, 200, 'No security definition has been found', 2);
  assert.equal(first[2]!.status, 'refused');
  assert.deepEqual(plan.due(15_002).map((f) => f.symbol), ['QQQ']);

  plan.voidAll();
  assert.deepEqual(plan.counts(), { waiting: 3, requested: 0, live: 0, refused: 1 });
});
