import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Bus } from '../src/bus.js';
import { runOwnedBy } from '../src/supervision/failure-scope.js';

test('subscribers receive what is published on their topic until they unsubscribe', () => {
  const bus = new Bus();
  const got: number[] = [];
  const off = bus.subscribe<number>('depth', (n) => got.push(n));
  bus.subscribe<number>('other', () => assert.fail('wrong topic'));
  bus.publish('depth', 1);
  off();
  bus.publish('depth', 2);
  assert.deepEqual(got, [1]);
});

test('a consumer that throws fails its own component, and the other consumers still get the message', () => {
  const bus = new Bus();
  const failed: unknown[] = [];
  const got: string[] = [];
  runOwnedBy({ id: 'features', fail: (e) => failed.push(e) }, () =>
    bus.subscribe('depth', () => {
      throw new Error('consumer broke');
    }),
  );
  bus.subscribe<string>('depth', (m) => got.push(m));
  bus.publish('depth', 'batch');
  assert.deepEqual(got, ['batch']);
  assert.equal((failed[0] as Error).message, 'consumer broke');
});

test('retained values are readable later', () => {
  const bus = new Bus();
  assert.equal(bus.latest('ib.status'), undefined);
  bus.retain('ib.status', { state: 'connected' });
  assert.deepEqual(bus.latest('ib.status'), { state: 'connected' });
});
