import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Bus } from '../src/bus.js';
import { DepthBatch } from '../src/ib/depth-feed.js';
import type { IbStatus } from '../src/ib/link.js';
import { runOwnedBy } from '../src/supervision/failure-scope.js';
import { DEPTH_RESET_TOPIC, DEPTH_TOPIC, IB_STATUS_TOPIC, REDIS_STATUS_TOPIC } from '../src/topics.js';

const status = (state: IbStatus['state']): IbStatus => ({ state, clientId: 0, reason: 'test', farmsDown: [], dataEpoch: 1, since: 0 });

test('subscribers receive what is published on their topic until they unsubscribe', () => {
  const bus = new Bus();
  const got: number[] = [];
  const off = bus.subscribe(DEPTH_RESET_TOPIC, ({ instrument }) => got.push(instrument));
  bus.subscribe(DEPTH_TOPIC, () => assert.fail('wrong topic'));
  bus.publish(DEPTH_RESET_TOPIC, { instrument: 1 });
  off();
  bus.publish(DEPTH_RESET_TOPIC, { instrument: 2 });
  assert.deepEqual(got, [1]);
});

test('a consumer that throws fails its own component, and the other consumers still get the message', () => {
  const bus = new Bus();
  const failed: unknown[] = [];
  const got: DepthBatch[] = [];
  runOwnedBy({ id: 'features', fail: (e) => failed.push(e) }, () =>
    bus.subscribe(DEPTH_TOPIC, () => {
      throw new Error('consumer broke');
    }),
  );
  bus.subscribe(DEPTH_TOPIC, (m) => got.push(m));
  const batch = new DepthBatch(4);
  bus.publish(DEPTH_TOPIC, batch);
  assert.deepEqual(got, [batch]);
  assert.equal((failed[0] as Error).message, 'consumer broke');
});

test('a state is readable later, until its publisher stops and it is cleared', () => {
  const bus = new Bus();
  assert.equal(bus.latest(IB_STATUS_TOPIC), undefined);
  bus.retain(IB_STATUS_TOPIC, status('connected'));
  assert.equal(bus.latest(IB_STATUS_TOPIC)?.state, 'connected');
  bus.clear([IB_STATUS_TOPIC, REDIS_STATUS_TOPIC]);
  assert.equal(bus.latest(IB_STATUS_TOPIC), undefined);
});

test('a stream is delivered, never kept', () => {
  const bus = new Bus();
  bus.publish(DEPTH_RESET_TOPIC, { instrument: 3 });
  assert.equal(bus.latest(DEPTH_RESET_TOPIC), undefined);
});

// Checked by `npm run typecheck`: each line below must fail to compile, or the directive itself is an error.
export function contractsTheCompilerHolds(bus: Bus): void {
  // @ts-expect-error a topic the catalogue does not declare
  bus.publish('depht', new DepthBatch(1));
  // @ts-expect-error a payload of the wrong shape
  bus.publish(DEPTH_TOPIC, { instrument: 1 });
  // @ts-expect-error a state is retained, not published as a stream
  bus.publish(IB_STATUS_TOPIC, status('connected'));
  // @ts-expect-error a stream is never retained
  bus.retain(DEPTH_RESET_TOPIC, { instrument: 1 });
  // @ts-expect-error the subscriber does not pick the payload type
  bus.subscribe(DEPTH_RESET_TOPIC, (m: string) => m.length);
}
