/**
 * stateText, the one rendering of XState state values that the inspector
 * page, `keel inspect` and the inspector's transition events all use.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { stateText as terminalStateText } from '../../src/cli/inspect/format.js';
import { stateText } from '../../src/inspector/web/state-text.js';

test('a string state value is its own text', () => {
  assert.equal(stateText('running'), 'running');
  assert.equal(stateText('HALTED'), 'HALTED');
});

test('nested states are joined by dots', () => {
  assert.equal(stateText({ connected: 'live' }), 'connected.live');
  assert.equal(stateText({ connected: { feed: { subscribed: 'live' } } }), 'connected.feed.subscribed.live');
  // A state with nothing active below it ({} or null) is its key alone.
  assert.equal(stateText({ connected: {} }), 'connected');
  assert.equal(stateText({ connected: null }), 'connected');
});

test('parallel regions are listed in braces, also below a nested state', () => {
  assert.equal(stateText({ feed: 'live', orders: 'idle' }), '{feed.live, orders.idle}');
  assert.equal(stateText({ feed: { connected: 'live' }, orders: {} }), '{feed.connected.live, orders}');
  assert.equal(stateText({ connected: { feed: 'live', orders: 'idle' } }), 'connected.{feed.live, orders.idle}');
  assert.equal(stateText({ a: { x: '1', y: { p: '2', q: '3' } }, b: 'z' }), '{a.{x.1, y.{p.2, q.3}}, b.z}');
});

test('no state is "-", or what the caller shows for a missing value', () => {
  assert.equal(stateText(null), '-');
  assert.equal(stateText(undefined), '-');
  assert.equal(stateText({}), '-');
  assert.equal(stateText(null, '—'), '—');
  // The placeholder is only for no state at all, never inside a value.
  assert.equal(stateText({ connected: null }, '—'), 'connected');
});

test('the terminal client renders with the same function', () => {
  assert.equal(terminalStateText, stateText);
});
