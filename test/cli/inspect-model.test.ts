import assert from 'node:assert/strict';
import { test } from 'node:test';
import { endpoints } from '../../src/cli/inspect/endpoints.js';
import { abbreviate, countdown, stateText } from '../../src/cli/inspect/format.js';
import { applyMessage, EMPTY_MODEL, treeRows, type Model } from '../../src/cli/inspect/model.js';
import type { ActorView, ChainPanel, InspectorEvent, Panels, ServerMessage } from '../../src/inspector/protocol.js';

function actor(id: string, parent: string | null, fields: Partial<ActorView> = {}): ActorView {
  return { id, parent, kind: id, state: 'running', status: 'running', restarts: 0, backoffUntil: null, lastError: null, health: null, since: 0, ...fields };
}

function event(seq: number, text = `event ${seq}`): InspectorEvent {
  return { seq, at: 1000 + seq, kind: 'transition', actor: 'journal', text };
}

function panels(phase: string): Panels {
  return { at: 0, phase, health: 'OK', gate: null, ib: null, redis: null, featureHealth: null, horizons: [], instruments: [], account: null, equity: [] };
}

function snapshot(fields: Partial<Extract<ServerMessage, { type: 'snapshot' }>> = {}): ServerMessage {
  return { type: 'snapshot', instance: 'test', at: 5000, actors: [actor('root', null), actor('journal', 'root')], events: [event(1), event(2)], panels: panels('running'), chain: null, control: true, ...fields };
}

const apply = (model: Model, ...messages: ServerMessage[]) => messages.reduce((m, message) => applyMessage(m, message, 4000, 5), model);

test('a snapshot replaces everything, including what came before it', () => {
  const before = apply(EMPTY_MODEL, snapshot(), { type: 'events', events: [event(3)] }, { type: 'error', message: 'bad' });
  const after = apply(before, snapshot({ instance: 'again', actors: [actor('root', null)], events: [event(1)], control: false }));
  assert.equal(after.instance, 'again');
  assert.deepEqual(after.actors.map((a) => a.id), ['root']);
  assert.deepEqual(after.events.map((e) => e.seq), [1], 'a restarted daemon numbers its events from the start again');
  assert.equal(after.control, false);
  assert.equal(after.serverError, null);
  assert.equal(after.skewMs, 1000, 'the daemon clock is 1 s ahead of ours');
});

test('actor deltas merge by id, keeping the order and appending new actors', () => {
  const first = apply(EMPTY_MODEL, snapshot());
  const model = apply(first, {
    type: 'actors',
    at: 5000,
    actors: [actor('risk_gate', 'root', { state: 'halted' }), actor('journal', 'root', { status: 'backoff', restarts: 2, backoffUntil: 7000 })],
  });
  assert.deepEqual(model.actors.map((a) => a.id), ['root', 'journal', 'risk_gate']);
  assert.equal(model.actors[1]!.status, 'backoff');
  assert.equal(model.actors[1]!.restarts, 2);
  assert.equal(model.actors[2]!.state, 'halted');
  assert.equal(model.actors[0], first.actors[0], 'an unchanged actor is the same object');
});

test('events append in order, skip what was already seen, and keep only the latest', () => {
  let model = apply(EMPTY_MODEL, snapshot());
  model = apply(model, { type: 'events', events: [event(2), event(3)] });
  assert.deepEqual(model.events.map((e) => e.seq), [1, 2, 3], 'seq 2 came in the snapshot already');
  model = apply(model, { type: 'events', events: [event(4), event(5), event(6), event(7)] });
  assert.deepEqual(model.events.map((e) => e.seq), [3, 4, 5, 6, 7], 'bounded to 5');
  const same = apply(model, { type: 'events', events: [event(7)] });
  assert.equal(same.events, model.events);
});

test('panels replace the panels; an error is kept to be shown', () => {
  const model = apply(EMPTY_MODEL, snapshot(), { type: 'panels', panels: panels('stopping') }, { type: 'error', message: 'unknown message type' });
  assert.equal(model.panels?.phase, 'stopping');
  assert.equal(model.serverError, 'unknown message type');
  assert.equal(model.actors.length, 2);
});

test('a chain message replaces the chain; a snapshot of a daemon without one clears it', () => {
  const chain: ChainPanel = {
    underlying: 'SPY',
    phase: 'streaming',
    spot: 580,
    pricedAt: 1,
    quotedAt: 1,
    lines: { allowance: 2, wanted: 2, waiting: 0, requested: 0, live: 2, refused: 0 },
    expiries: [],
    net: { delta1Pct: null, gamma1Pct: null, vega: null, theta: null },
    maxDiff: { iv: null, price: null },
  };
  const model = apply(EMPTY_MODEL, snapshot(), { type: 'chain', chain });
  assert.equal(model.chain?.spot, 580);
  assert.equal(apply(model, { type: 'chain', chain: { ...chain, spot: 581 } }).chain?.spot, 581);
  assert.equal(apply(model, snapshot()).chain, null);
});

test('the tree lists each supervisor before its children, depth first, whatever order the actors come in', () => {
  const rows = treeRows([
    actor('gate', 'trading'),
    actor('root', null),
    actor('journal', 'root'),
    actor('trading', 'root', { kind: 'supervisor' }),
    actor('orphan', 'nowhere'),
    actor('a', 'b'),
    actor('b', 'a'),
  ]);
  assert.deepEqual(
    rows.map((r) => `${r.depth}:${r.actor.id}`),
    ['0:root', '1:journal', '1:trading', '2:gate', '0:orphan', '0:a', '1:b'],
    'an actor whose parent is unknown is a root; a cycle is shown once, not followed forever',
  );
});

test('state values read as one short string', () => {
  assert.equal(stateText('running'), 'running');
  assert.equal(stateText(null), '-');
  assert.equal(stateText({ connected: 'live' }), 'connected.live');
  assert.equal(stateText({ connected: { feed: 'live' } }), 'connected.feed.live');
  assert.equal(stateText({ feed: 'live', orders: 'idle' }), '{feed.live, orders.idle}');
});

test('countdowns keep a decimal under 10 s and never go negative', () => {
  assert.equal(countdown(2_340, 1_000), '1.3s');
  assert.equal(countdown(30_001, 0), '31s');
  assert.equal(countdown(0, 5_000), '0.0s');
});

test('feature names are shortened to fit a column, words with digits kept whole', () => {
  assert.equal(abbreviate('mid', 8), 'mid');
  assert.equal(abbreviate('spread_bps', 8), 'sprd_bps');
  assert.equal(abbreviate('depth_imbalance_10', 8), 'dp_im_10');
  assert.equal(abbreviate('trade_flow_imbalance', 8), 'tr_fl_im');
  for (const name of ['rv_10s', 'ret_10s', 'imbalance_l1', 'trade_intensity']) assert.ok(abbreviate(name, 5).length <= 5, name);
});

test('the URL may be http:// or ws://, with or without a path, or just host:port', () => {
  const local = { ws: 'ws://127.0.0.1:7500/ws', http: 'http://127.0.0.1:7500' };
  assert.deepEqual(endpoints('http://127.0.0.1:7500'), local);
  assert.deepEqual(endpoints('http://127.0.0.1:7500/'), local);
  assert.deepEqual(endpoints('ws://127.0.0.1:7500/ws'), local);
  assert.deepEqual(endpoints('127.0.0.1:7500'), local);
  assert.deepEqual(endpoints('https://keel.example:8443/x'), { ws: 'wss://keel.example:8443/ws', http: 'https://keel.example:8443' });
  assert.throws(() => endpoints('ftp://127.0.0.1:7500'), /not an http:\/\/ or ws:\/\/ URL/);
});
