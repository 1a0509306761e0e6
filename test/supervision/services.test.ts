/**
 * Services and retained states belong to the component that provides them:
 * handed to the components that need them, withdrawn and cleared when it
 * stops, and a need the kind did not declare is refused.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { IbStatus } from '../../src/ib/link.js';
import type { Universe } from '../../src/market/universe.js';
import type { ComponentContext } from '../../src/supervision/component.js';
import { serviceLogic } from '../../src/supervision/service.js';
import { NO_CONTRACT, type ChildSpec, type Contract } from '../../src/supervision/spec.js';
import { IB_STATUS_TOPIC } from '../../src/topics.js';
import { startTree } from '../support/probe.js';

const status = (dataEpoch: number): IbStatus => ({ state: 'connected', clientId: 0, reason: 'test', farmsDown: [], dataEpoch, since: 0 });

/** A universe provider that also retains an IB status, counting its starts. */
function provider() {
  let starts = 0;
  let ctx: ComponentContext | undefined;
  const logic = serviceLogic(async (c) => {
    ctx = c;
    starts++;
    const universe: Universe = { symbols: [`S${starts}`], booked: [true] };
    c.provide('instruments', universe);
    c.bus.retain(IB_STATUS_TOPIC, status(starts));
    return { stop() {} };
  });
  const contract: Contract = { ...NO_CONTRACT, provides: ['instruments'], publishes: [IB_STATUS_TOPIC] };
  return { spec: (restart: 'permanent' | 'temporary' = 'permanent'): ChildSpec => ({ id: 'feed', logic, contract, restart }), fail: (e: Error) => ctx!.fail(e), starts: () => starts };
}

/** A component that reads the universe at its start. */
function consumer(contract: Partial<Contract> = { needs: ['instruments'] }) {
  const seen: string[] = [];
  const logic = serviceLogic(async (c) => {
    seen.push(c.need('instruments').symbols[0]!);
    return { stop() {} };
  });
  return { spec: (dependsOn: string[]): ChildSpec => ({ id: 'books', logic, dependsOn, contract: { ...NO_CONTRACT, ...contract } }), seen };
}

test('a service reaches the components that need it; when its provider restarts, they get the new one', async () => {
  const p = provider();
  const c = consumer();
  const t = startTree({ strategy: 'rest_for_one', children: [p.spec(), c.spec(['feed'])] });
  await t.clock.advance(10);
  assert.equal(t.phase(), 'running');
  assert.deepEqual(c.seen, ['S1']);
  assert.equal(t.services.current('instruments')?.symbols[0], 'S1');

  p.fail(new Error('feed broke'));
  await t.clock.advance(5_000);
  assert.equal(t.phase(), 'running');
  assert.equal(p.starts(), 2);
  assert.deepEqual(c.seen, ['S1', 'S2'], 'the dependent restarted with the new service, never the old one');
  assert.equal(t.services.current('instruments')?.symbols[0], 'S2');
});

test('a provider that stops for good withdraws its services and clears its retained states', async () => {
  const p = provider();
  const t = startTree({ children: [p.spec('temporary')] });
  await t.clock.advance(10);
  assert.equal(t.bus.latest(IB_STATUS_TOPIC)?.dataEpoch, 1);
  assert.ok(t.services.current('instruments'));

  p.fail(new Error('feed broke'));
  await t.clock.advance(10);
  assert.equal(t.child('feed').status, 'failed');
  assert.equal(t.services.current('instruments'), undefined, 'nobody can reach a dead provider through the table');
  assert.equal(t.bus.latest(IB_STATUS_TOPIC), undefined, 'nobody reads a dead component\'s state as current');
});

test('asking for a service the kind does not declare fails the start with the reason', async () => {
  const p = provider();
  const c = consumer({ needs: [] });
  const t = startTree({ children: [p.spec(), c.spec(['feed'])] });
  await t.clock.advance(10);
  assert.equal(t.child('books').status, 'backoff');
  assert.deepEqual(c.seen, []);
  assert.match(t.child('books').lastError ?? '', /books asks for the instrument universe \(instruments\) without declaring it in its kind's needs/);
});

test('the root provides the actor tree to every component', async () => {
  const t = startTree({ children: [] });
  await t.clock.advance(1);
  assert.equal(t.services.current('inspection'), t.inspection);
});
