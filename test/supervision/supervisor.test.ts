/**
 * The supervisor with real XState actors and a manual clock: every timing
 * below is simulated time, exact and repeatable.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createMachine } from 'xstate';
import { SupervisorEscalation, supervisorMachine } from '../../src/supervision/supervisor.js';
import { Probes, startTree } from '../support/probe.js';

const backoff = { minMs: 100, maxMs: 1_000, randomFactor: 0.5, resetAfterMs: 5_000 };
const defaults = { backoff, startTimeoutMs: 1_000, shutdownTimeoutMs: 500 };

describe('start', () => {
  test('children start in dependency order, those of one level in parallel', async () => {
    const p = new Probes();
    const t = startTree({
      defaults,
      children: [
        p.spec('journal', [], { startMs: 10 }),
        p.spec('ib_connection', ['journal'], { startMs: 50 }),
        p.spec('risk_gate', ['journal'], { startMs: 30 }),
        p.spec('paper_trader', ['ib_connection', 'risk_gate'], { startMs: 5 }),
      ],
    });
    await t.clock.advance(100);
    assert.equal(t.phase(), 'running');
    assert.equal(t.actor.getSnapshot().value, 'running');
    assert.deepEqual(p.sequence('start'), ['journal', 'ib_connection', 'risk_gate', 'paper_trader']);
    // Level 1 started together and overlapped: both began before either was ready.
    const [ibStart, ibReady] = [p.at('ib_connection', 'start')[0]!, p.at('ib_connection', 'ready')[0]!];
    const [gateStart, gateReady] = [p.at('risk_gate', 'start')[0]!, p.at('risk_gate', 'ready')[0]!];
    assert.equal(ibStart, 10);
    assert.equal(gateStart, 10);
    assert.ok(gateStart < ibReady && ibStart < gateReady);
    // The trader waited for the slower of its two dependencies.
    assert.deepEqual(p.at('paper_trader', 'start'), [60]);
    assert.deepEqual(p.at('paper_trader', 'ready'), [65]);
  });

  test('sequential start order runs one child at a time', async () => {
    const p = new Probes();
    const t = startTree({
      startOrder: 'sequential',
      children: [p.spec('a', [], { startMs: 10 }), p.spec('b', [], { startMs: 10 }), p.spec('c', ['a'], { startMs: 10 })],
    });
    await t.clock.advance(100);
    assert.deepEqual(p.at('a', 'start').concat(p.at('b', 'start'), p.at('c', 'start')), [0, 10, 20]);
    assert.equal(t.phase(), 'running');
  });

  test('children are registered in one actor system under their own systemId', async () => {
    const p = new Probes();
    const t = startTree({ children: [p.spec('journal'), p.spec('features', ['journal'])] });
    await t.clock.advance(1);
    assert.equal(t.actor.system.get('root'), t.actor);
    assert.equal(t.actor.system.get('features')?.getSnapshot().status, 'active');
    assert.ok(t.actor.system.get('journal')?.getSnapshot().hasTag('ready'));
  });

  test('a failed start is retried with exponential backoff', async () => {
    const p = new Probes();
    const t = startTree({ defaults, random: () => 0, children: [p.spec('ib_connection', [], { startMs: 10, failStarts: 3 })] });
    await t.clock.advance(2_000);
    // Fails at 10, waits 100; fails at 120, waits 200; fails at 330, waits 400; succeeds.
    assert.deepEqual(p.at('ib_connection', 'start'), [0, 110, 320, 730]);
    assert.deepEqual(p.at('ib_connection', 'ready'), [740]);
    assert.equal(t.phase(), 'running');
    assert.equal(t.child('ib_connection').incarnation, 4);
  });

  test('jitter lengthens each delay within its bound', async () => {
    const p = new Probes();
    const t = startTree({ defaults, random: () => 0.999, children: [p.spec('a', [], { startMs: 0, failStarts: 3 })] });
    await t.clock.advance(5_000);
    const starts = p.at('a', 'start');
    const gaps = starts.slice(1).map((s, i) => s - starts[i]!);
    [100, 200, 400].forEach((base, i) => {
      assert.ok(gaps[i]! > base && gaps[i]! < base * 1.5, `gap ${i}: ${gaps[i]} not in (${base}, ${base * 1.5})`);
    });
  });

  test('a child that is not ready within its start timeout is stopped and retried', async () => {
    const p = new Probes();
    const t = startTree({
      defaults,
      random: () => 0,
      children: [p.spec('slow', [], { hangOnStart: true }, { startTimeoutMs: 300 })],
    });
    await t.clock.advance(350);
    assert.equal(t.child('slow').lastError, 'not ready within 300 ms');
    // Still hanging in start, so shutdown waits out its timeout (500) before the abandon.
    await t.clock.advance(600);
    assert.ok(t.sink.messages().includes('slow did not stop within 500 ms; abandoned'));
    assert.equal(p.starts('slow'), 2);
  });
});

describe('restart', () => {
  test('the failure count resets after a stable period', async () => {
    const p = new Probes();
    const t = startTree({ defaults, random: () => 0, intensity: { maxRestarts: 10, periodMs: 60_000 }, children: [p.spec('a')] });
    await t.clock.advance(10);
    for (let i = 0; i < 3; i++) {
      p.context('a').fail(new Error(`quick failure ${i}`));
      await t.clock.advance(1_000);
    }
    assert.equal(t.child('a').failures, 3);
    assert.deepEqual(p.at('a', 'start'), [0, 110, 1_210, 2_410]);
    // Run past resetAfterMs (5 s), then fail: back to the first delay.
    await t.clock.advance(6_000);
    p.context('a').fail(new Error('after a stable period'));
    await t.clock.advance(1_000);
    assert.equal(p.at('a', 'start').at(-1), 9_010 + 100);
    assert.equal(t.child('a').failures, 1);
  });

  test('one_for_one restarts only the failed child', async () => {
    const p = new Probes();
    const t = startTree({ defaults, strategy: 'one_for_one', random: () => 0, children: [p.spec('a'), p.spec('b', ['a']), p.spec('c', ['b'])] });
    await t.clock.advance(10);
    p.context('a').fail(new Error('boom'));
    await t.clock.advance(1_000);
    assert.equal(p.starts('a'), 2);
    assert.equal(p.starts('b'), 1);
    assert.equal(p.starts('c'), 1);
    assert.deepEqual(p.sequence('stop'), ['a']);
  });

  test("an operator's restart stops and starts the child at once: no backoff, no failure counted", async () => {
    for (const strategy of ['one_for_one', 'rest_for_one'] as const) {
      const p = new Probes();
      const t = startTree({ defaults, strategy, random: () => 0, children: [p.spec('a'), p.spec('b', ['a']), p.spec('c', ['b'])] });
      await t.clock.advance(10);
      t.actor.send({ type: 'restart', id: 'b' });
      await t.clock.advance(0);
      await t.clock.advance(0);
      assert.equal(t.child('b').status, 'running', strategy);
      assert.equal(t.child('b').failures, 0);
      assert.equal(p.starts('b'), 2);
      assert.equal(p.starts('a'), 1);
      // one_for_one leaves the dependent alone; rest_for_one takes it down first and brings it back after.
      assert.deepEqual(p.sequence('stop'), strategy === 'one_for_one' ? ['b'] : ['c', 'b'], strategy);
      assert.equal(p.starts('c'), strategy === 'one_for_one' ? 1 : 2);
      assert.ok(t.sink.messages().includes('restarting b: requested by an operator'));
    }
  });

  test('rest_for_one stops dependents first, in reverse order, and restarts them after the failed child is ready', async () => {
    const p = new Probes();
    const t = startTree({
      defaults,
      strategy: 'rest_for_one',
      random: () => 0,
      children: [
        p.spec('journal'),
        p.spec('ib_connection', ['journal'], { startMs: 20, stopMs: 5 }),
        p.spec('subscriptions', ['ib_connection'], { stopMs: 5 }),
        p.spec('l2_microstructure', ['subscriptions'], { stopMs: 5 }),
        p.spec('risk_gate', ['journal']),
      ],
    });
    await t.clock.advance(100);
    p.log.length = 0;
    p.context('ib_connection').fail(new Error('socket closed'));
    await t.clock.advance(1_000);
    const order = p.log.map((h) => `${h.id}:${h.what}`);
    assert.deepEqual(order, [
      'l2_microstructure:stop',
      'l2_microstructure:stopped',
      'subscriptions:stop',
      'subscriptions:stopped',
      'ib_connection:stop',
      'ib_connection:stopped',
      'ib_connection:start',
      'ib_connection:ready',
      'subscriptions:start',
      'subscriptions:ready',
      'l2_microstructure:start',
      'l2_microstructure:ready',
    ]);
    // Backoff counted from the failure at 100: restart at 200 even though stopping took 15 ms.
    assert.deepEqual(p.at('ib_connection', 'start'), [200]);
    assert.equal(p.starts('risk_gate'), 1);
    assert.equal(p.starts('journal'), 1);
  });

  test('a child whose actor errors is restarted', async () => {
    const p = new Probes();
    const t = startTree({ defaults, random: () => 0, children: [p.spec('a', [], { failStarts: 1 })] });
    await t.clock.advance(500);
    assert.equal(t.child('a').status, 'running');
    assert.equal(t.child('a').lastError, 'a start 1 failed');
  });

  test('an async throw inside a component scope becomes its failure', async () => {
    const p = new Probes();
    const t = startTree({ defaults, random: () => 0, children: [p.spec('a')] });
    await t.clock.advance(10);
    const ctx = p.context('a');
    // What routeProcessFailures does with an uncaught throw: hand it to the scope's owner.
    ctx.scope(() => t.clock.setTimeout(() => ctx.fail(new Error('callback threw')), 50));
    await t.clock.advance(1_000);
    assert.equal(p.starts('a'), 2);
    assert.equal(t.child('a').lastError, 'callback threw');
  });
});

describe('restart policies', () => {
  test('permanent: restarted after failing and after exiting normally', async () => {
    const p = new Probes();
    const t = startTree({ defaults, random: () => 0, children: [p.spec('a', [], {}, { restart: 'permanent' })] });
    await t.clock.advance(10);
    p.context('a').fail(new Error('boom'));
    await t.clock.advance(500);
    assert.equal(p.starts('a'), 2);
    t.actor.system.get('a')!.send({ type: 'shutdown' }); // stops itself: an exit the supervisor did not ask for
    await t.clock.advance(1_000);
    assert.equal(p.starts('a'), 3);
    assert.equal(t.child('a').status, 'running');
  });

  test('transient: restarted after failing, not after exiting normally', async () => {
    const p = new Probes();
    const t = startTree({ defaults, random: () => 0, children: [p.spec('a', [], {}, { restart: 'transient' })] });
    await t.clock.advance(10);
    p.context('a').fail(new Error('boom'));
    await t.clock.advance(500);
    assert.equal(p.starts('a'), 2);
    t.actor.system.get('a')!.send({ type: 'shutdown' });
    await t.clock.advance(1_000);
    assert.equal(p.starts('a'), 2);
    assert.equal(t.child('a').status, 'exited');
    assert.equal(t.phase(), 'running');
  });

  test('temporary: never restarted; the rest keeps running', async () => {
    const p = new Probes();
    const t = startTree({ defaults, random: () => 0, children: [p.spec('recorder', [], {}, { restart: 'temporary' }), p.spec('journal')] });
    await t.clock.advance(10);
    p.context('recorder').fail(new Error('disk full'));
    await t.clock.advance(1_000);
    assert.equal(p.starts('recorder'), 1);
    assert.equal(t.child('recorder').status, 'failed');
    assert.equal(t.child('journal').status, 'running');
    assert.equal(t.phase(), 'running');
  });
});

describe('intensity', () => {
  test('too many restarts: the root stops its children in reverse order and errors, naming the child', async () => {
    const p = new Probes();
    const t = startTree({
      defaults,
      random: () => 0,
      intensity: { maxRestarts: 2, periodMs: 10_000 },
      children: [p.spec('journal'), p.spec('features', ['journal']), p.spec('predictor', ['features'])],
    });
    await t.clock.advance(10);
    for (let i = 1; i <= 3; i++) {
      p.context('features').fail(new Error(`NaN storm ${i}`));
      await t.clock.advance(1_000);
    }
    assert.equal(t.actor.getSnapshot().status, 'error');
    assert.equal(t.errors.length, 1);
    const error = t.errors[0];
    assert.ok(error instanceof SupervisorEscalation);
    assert.equal(error.childId, 'features');
    assert.equal(error.childError, 'NaN storm 3');
    assert.match(error.message, /restart intensity exceeded \(3 restarts within 10000 ms\); last failure: features: NaN storm 3/);
    // After the last failure: predictor, then features, then journal.
    assert.deepEqual(p.sequence('stop').slice(-3), ['predictor', 'features', 'journal']);
    assert.equal(p.sequence('stopped').length, p.sequence('stop').length);
  });

  test('a nested supervisor that gives up is a failure of its parent, which restarts it', async () => {
    const p = new Probes();
    const t = startTree({
      defaults,
      random: () => 0,
      intensity: { maxRestarts: 5, periodMs: 60_000 },
      children: [
        p.spec('journal'),
        {
          id: 'market',
          logic: supervisorMachine,
          dependsOn: ['journal'],
          settings: { defaults, random: () => 0, intensity: { maxRestarts: 1, periodMs: 60_000 }, children: [p.spec('books'), p.spec('features', ['books'])] },
        },
      ],
    });
    await t.clock.advance(10);
    assert.equal(t.child('market').status, 'running');
    p.context('books').fail(new Error('crossed book'));
    await t.clock.advance(1_000);
    p.context('books').fail(new Error('crossed book again'));
    await t.clock.advance(1_000);
    assert.match(t.child('market').lastError ?? '', /supervisor 'market': restart intensity exceeded .* last failure: books: crossed book again/);
    assert.equal(t.child('market').status, 'running');
    assert.equal(t.child('market').incarnation, 2);
    assert.equal(p.starts('books'), 3);
    assert.equal(t.phase(), 'running');
  });
});

describe('shutdown', () => {
  test('children stop in reverse dependency order; a hanging one is abandoned after its timeout', async () => {
    const p = new Probes();
    const t = startTree({
      defaults,
      children: [
        p.spec('journal', [], { stopMs: 10 }),
        p.spec('ib_connection', ['journal'], { hangOnStop: true }, { shutdownTimeoutMs: 300 }),
        p.spec('paper_trader', ['ib_connection'], { stopMs: 20 }),
      ],
    });
    await t.clock.advance(10);
    t.actor.send({ type: 'shutdown' });
    assert.equal(t.actor.getSnapshot().value, 'stopping');
    await t.clock.advance(2_000);
    assert.deepEqual(p.sequence('stop'), ['paper_trader', 'ib_connection', 'journal']);
    assert.deepEqual(p.at('journal', 'stop'), [10 + 20 + 300]);
    assert.ok(t.sink.messages().includes('ib_connection did not stop within 300 ms; abandoned'));
    assert.equal(t.actor.getSnapshot().status, 'done');
    assert.equal(t.done, true);
    assert.equal(t.actor.system.get('ib_connection'), undefined);
  });

  test('shutdown during backoff cancels the pending restart', async () => {
    const p = new Probes();
    const t = startTree({ defaults, random: () => 0, children: [p.spec('a', [], { failStarts: 1 })] });
    await t.clock.advance(1);
    assert.equal(t.child('a').status, 'backoff');
    t.actor.send({ type: 'shutdown' });
    await t.clock.advance(1_000);
    assert.equal(p.starts('a'), 1);
    assert.equal(t.done, true);
  });
});

describe('readiness and health checks', () => {
  test('a custom readiness check decides when a child counts as ready; its health is recorded', async () => {
    // A machine that is 'active' at once but only ready after its own 'connected' state.
    const feed = createMachine({
      initial: 'connecting',
      states: {
        connecting: { after: { 200: 'connected' } },
        connected: { after: { 300: 'stale' } },
        stale: {},
      },
    });
    const p = new Probes();
    const t = startTree({
      defaults,
      children: [
        {
          id: 'feed',
          logic: feed,
          isReady: (s) => (s as unknown as { value: string }).value !== 'connecting',
          health: (s) => ((s as unknown as { value: string }).value === 'stale' ? { status: 'degraded', detail: 'no ticks' } : { status: 'ok' }),
        },
        p.spec('features', ['feed']),
      ],
    });
    await t.clock.advance(100);
    assert.equal(t.child('feed').status, 'starting');
    assert.equal(p.starts('features'), 0);
    await t.clock.advance(150);
    assert.equal(t.child('feed').status, 'running');
    assert.deepEqual(p.at('features', 'start'), [200]);
    assert.deepEqual(t.child('feed').health, { status: 'ok' });
    await t.clock.advance(400);
    assert.deepEqual(t.child('feed').health, { status: 'degraded', detail: 'no ticks' });
  });
});
