/**
 * Permanent failures: a fault no restart can heal is never restarted; the
 * supervisor stops every child in reverse order at once and gives up with
 * an escalation that carries the failure itself. On a manual clock.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { begin, childFailed, childReady, initialState, type ChildPlan } from '../../src/supervision/decisions.js';
import { permanentOf, PermanentFailure, listenFailure, pathFailure } from '../../src/supervision/permanent.js';
import { SupervisorEscalation, supervisorMachine } from '../../src/supervision/supervisor.js';
import { Probes, startTree } from '../support/probe.js';

const backoff = { minMs: 100, maxMs: 1_000, randomFactor: 0.5, resetAfterMs: 5_000 };
const defaults = { backoff, startTimeoutMs: 1_000, shutdownTimeoutMs: 500 };

describe('the decision', () => {
  const plan = (id: string, dependsOn: string[] = []): ChildPlan => ({ id, dependsOn, restart: 'permanent', startTimeoutMs: 1_000, shutdownTimeoutMs: 500, backoff });
  const running = () => {
    let s = begin(initialState([plan('journal'), plan('gate', ['journal']), plan('trader', ['gate'])], { strategy: 'one_for_one', intensity: { maxRestarts: 5, periodMs: 10_000 }, sequential: false }), 0).state;
    for (const id of ['journal', 'gate', 'trader']) s = childReady(s, id, 1, 1).state;
    return s;
  };

  test('a permanent failure escalates at once: the failed child and every other stop, dependents first; nothing restarts', () => {
    const failure = new PermanentFailure('the journal is damaged: repair it', 2);
    const { state, effects } = childFailed(running(), { id: 'gate', incarnation: 1, error: failure.message, alive: true, permanent: failure }, 10, 0);
    assert.equal(state.phase, 'escalating');
    assert.equal(state.escalation?.permanent, failure, 'the instance, not its text');
    assert.equal(state.escalation?.component, 'gate');
    assert.equal(state.restartTimes.length, 0, 'not counted as a restart');
    const gate = state.children.gate!;
    assert.equal(gate.permanent, failure);
    assert.equal(gate.lastError, 'the journal is damaged: repair it');
    assert.equal(gate.afterStop, 'failed');
    // Only the trader can stop now: the gate and the journal wait for what depends on them.
    assert.deepEqual(effects.filter((e) => e.type === 'shutdown').map((e) => (e as { id: string }).id), ['trader']);
    assert.ok(!effects.some((e) => e.type === 'spawn' || (e.type === 'timer' && e.event.type === 'child.backoffElapsed')));
  });

  test('the same failure without `permanent` is an ordinary one: backoff and a restart', () => {
    const { state, effects } = childFailed(running(), { id: 'gate', incarnation: 1, error: 'socket closed', alive: true }, 10, 0);
    assert.equal(state.phase, 'running');
    assert.equal(state.children.gate!.afterStop, 'backoff');
    assert.equal(state.restartTimes.length, 1);
    assert.deepEqual(effects.filter((e) => e.type === 'shutdown').map((e) => (e as { id: string }).id), ['gate']);
  });
});

describe('in a tree', () => {
  test('a start that throws a PermanentFailure is not retried; the tree stops in reverse order and errors with that instance', async () => {
    const p = new Probes();
    const failure = new PermanentFailure('port 7497 is in use on 127.0.0.1 by another process: set components.simulator.settings.port or stop it', 2);
    const t = startTree({
      defaults,
      strategy: 'rest_for_one',
      random: () => 0,
      children: [
        p.spec('journal', [], { stopMs: 5 }),
        p.spec('risk_gate', ['journal'], { stopMs: 5 }),
        p.spec('simulator', ['journal'], { startMs: 20, throwOnStart: failure }),
        p.spec('ib_connection', ['simulator']),
      ],
    });
    await t.clock.advance(5_000);
    assert.equal(p.starts('simulator'), 1, 'never restarted');
    assert.equal(p.starts('ib_connection'), 0);
    assert.equal(p.starts('journal'), 1);
    assert.deepEqual(p.sequence('stop'), ['risk_gate', 'journal']);
    assert.equal(t.actor.getSnapshot().status, 'error');
    assert.equal(t.errors.length, 1);
    const error = t.errors[0];
    assert.ok(error instanceof SupervisorEscalation);
    assert.equal(error.permanent, failure);
    assert.equal(error.component, 'simulator');
    assert.equal(error.message, `supervisor 'root': simulator failed permanently: ${failure.message}`);
    assert.equal(t.child('simulator').status, 'failed');
    assert.equal(t.child('simulator').lastError, failure.message);
    assert.equal(t.child('simulator').permanent, failure);
    // The inspector's view of it: failed (not in backoff), with the failure's line.
    const view = t.inspection.actors().find((a) => a.id === 'simulator');
    assert.deepEqual([view?.status, view?.lastError, view?.restarts], ['failed', failure.message, 0]);
    assert.ok(t.sink.messages().includes('simulator failed permanently: a restart cannot heal it; stopping every component in reverse order'));
    assert.ok(!t.sink.messages().some((m) => m.startsWith('restarting ') || m.includes('restarts in')));
  });

  test('a PermanentFailure passed to ctx.fail stops every child, dependents first, even under one_for_one', async () => {
    const p = new Probes();
    const t = startTree({
      defaults,
      strategy: 'one_for_one',
      random: () => 0,
      children: [p.spec('journal', [], { stopMs: 5 }), p.spec('features', ['journal'], { stopMs: 5 }), p.spec('predictor', ['features'], { stopMs: 5 }), p.spec('inspector')],
    });
    await t.clock.advance(10);
    assert.equal(t.phase(), 'running');
    p.context('features').fail(new PermanentFailure('no model can serve', 2));
    await t.clock.advance(1_000);
    const stops = p.sequence('stop');
    assert.equal(stops.length, 4);
    assert.ok(stops.indexOf('predictor') < stops.indexOf('features'));
    assert.ok(stops.indexOf('features') < stops.indexOf('journal'));
    assert.equal(p.sequence('stopped').length, 4, 'each stopped gracefully: the journal flushed, the gate halted');
    assert.equal(p.starts('features'), 1);
    assert.ok(t.errors[0] instanceof SupervisorEscalation && t.errors[0].permanent?.message === 'no model can serve');
  });

  test('a permanent failure wrapped as the cause of another error is still permanent', async () => {
    const p = new Probes();
    const inner = new PermanentFailure('cannot create the journal directory /proc/keel (ENOENT: no such file or directory): set components.journal.settings.path to a file in a directory keel can create and write');
    const t = startTree({ defaults, random: () => 0, children: [p.spec('journal', [], { throwOnStart: new Error('journal start failed', { cause: inner }) })] });
    await t.clock.advance(5_000);
    assert.equal(p.starts('journal'), 1);
    assert.equal((t.errors[0] as SupervisorEscalation).permanent, inner);
  });

  test('through a nested supervisor: neither restarts, and the root carries the failure with its path', async () => {
    const p = new Probes();
    const failure = new PermanentFailure('model x refused: checksum mismatch', 2);
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
          settings: { defaults, random: () => 0, children: [p.spec('books'), p.spec('features', ['books'])] },
        },
      ],
    });
    await t.clock.advance(10);
    p.context('books').fail(failure);
    await t.clock.advance(5_000);
    assert.equal(p.starts('books'), 1);
    assert.equal(t.child('market').incarnation, 1, 'the nested supervisor is not restarted either');
    assert.equal(t.child('market').status, 'failed');
    const error = t.errors[0];
    assert.ok(error instanceof SupervisorEscalation);
    assert.equal(error.permanent, failure);
    assert.equal(error.component, 'market/books');
    assert.deepEqual(p.sequence('stop'), ['features', 'books', 'journal']);
  });

  test('a temporary child that fails permanently is left failed; the rest keeps running', async () => {
    const p = new Probes();
    const t = startTree({ defaults, random: () => 0, children: [p.spec('recorder', [], {}, { restart: 'temporary' }), p.spec('journal')] });
    await t.clock.advance(10);
    p.context('recorder').fail(new PermanentFailure('cannot create the recordings directory'));
    await t.clock.advance(1_000);
    assert.equal(t.child('recorder').status, 'failed');
    assert.equal(t.child('journal').status, 'running');
    assert.equal(t.phase(), 'running');
    assert.equal(t.errors.length, 0);
  });

  test('transient faults keep their restarts; a permanent one after them gives up at once, naming itself', async () => {
    const p = new Probes();
    const t = startTree({ defaults, random: () => 0, intensity: { maxRestarts: 5, periodMs: 60_000 }, children: [p.spec('journal'), p.spec('ib', ['journal'])] });
    await t.clock.advance(10);
    p.context('ib').fail(new Error('socket closed'));
    await t.clock.advance(1_000);
    assert.equal(p.starts('ib'), 2);
    assert.equal(t.phase(), 'running');
    p.context('ib').fail(new PermanentFailure('not allowed'));
    await t.clock.advance(1_000);
    assert.equal(p.starts('ib'), 2);
    assert.equal((t.errors[0] as SupervisorEscalation).permanent?.message, 'not allowed');
  });
});

describe('classifying errors', () => {
  const systemError = (code: string, message: string) => Object.assign(new Error(message), { code });

  test('a port in use or not allowed is permanent and names the port and the setting; other listen errors pass through', () => {
    const site = { what: 'port', host: '127.0.0.1', port: 7497, setting: 'components.simulator.settings.port', holder: 'another keel, or TWS itself?' };
    const inUse = listenFailure(systemError('EADDRINUSE', 'listen EADDRINUSE: address already in use 127.0.0.1:7497'), site);
    assert.ok(inUse instanceof PermanentFailure);
    assert.equal(inUse.message, 'port 7497 is in use on 127.0.0.1 by another process (another keel, or TWS itself?): set components.simulator.settings.port or stop it');
    assert.equal(inUse.exitCode, 2);
    assert.ok(listenFailure(systemError('EACCES', 'listen EACCES'), site) instanceof PermanentFailure);
    const other = systemError('EMFILE', 'too many open files');
    assert.equal(listenFailure(other, site), other);
  });

  test('a path that cannot exist is permanent; a passing file-system error is not', () => {
    const site = { doing: 'cannot create the journal directory /proc/keel', setting: 'components.journal.settings.path', want: 'a writable place' };
    const noent = pathFailure(systemError('ENOENT', "ENOENT: no such file or directory, mkdir '/proc/keel'"), site);
    assert.ok(noent instanceof PermanentFailure);
    assert.equal(noent.message, 'cannot create the journal directory /proc/keel (ENOENT: no such file or directory): set components.journal.settings.path to a writable place');
    const eio = systemError('EIO', 'EIO: i/o error');
    assert.equal(pathFailure(eio, site), eio);
    assert.equal(permanentOf(eio), undefined);
    assert.equal(permanentOf('a string'), undefined);
  });
});
