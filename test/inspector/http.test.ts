/**
 * The inspector's HTTP side on a real tree with the real journal and risk
 * gate: every endpoint, control with and without the token, and bad
 * requests, after all of which the daemon is still up and nothing failed.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { componentKinds, componentSpec } from '../../src/actors/registry.js';
import type { ActorDetail } from '../../src/inspector/protocol.js';
import type { ChildSpec } from '../../src/supervision/spec.js';
import { until } from '../support/ib-client.js';
import { control, startInspected } from '../support/inspector.js';
import { Probes } from '../support/probe.js';

const dir = mkdtempSync(join(tmpdir(), 'keel-inspector-http-'));
const probes = new Probes();
let daemon: Awaited<ReturnType<typeof startInspected>>;

function component(id: keyof typeof componentKinds, settings: unknown, dependsOn: string[] = []): ChildSpec {
  return componentSpec(id, id, { settings: componentKinds[id].settings.parse(settings), dependsOn });
}

before(async () => {
  daemon = await startInspected([
    component('journal', { path: join(dir, 'journal.keel') }),
    component('risk_gate', { initialState: 'ACTIVE' }, ['journal']),
    probes.spec('feed'),
    probes.spec('book', ['feed']),
  ], { strategy: 'rest_for_one' });
});
after(async () => {
  await daemon.stop();
  rmSync(dir, { recursive: true, force: true });
});

const gate = () => daemon.services.current('riskGate')!;
const get = async (path: string) => {
  const res = await fetch(`${daemon.url}${path}`);
  const text = await res.text();
  return { status: res.status, type: res.headers.get('content-type') ?? '', text, json: () => JSON.parse(text) as Record<string, unknown> };
};

test('read-only endpoints: health, metrics, actors, one actor, features, positions, orders', async () => {
  const health = await get('/health');
  assert.ok(health.status === 200 || health.status === 503);
  assert.equal((health.json().components as Record<string, { status: string }>).risk_gate!.status, 'OK');
  assert.equal(health.json().phase, 'running');

  const metrics = await get('/metrics');
  assert.equal(metrics.status, 200);
  assert.match(metrics.type, /^text\/plain/);
  assert.match(metrics.text, /^keel_actor_up\{actor="book",kind="component"\} 1$/m);
  assert.match(metrics.text, /^keel_risk_gate_state\{state="ACTIVE"\} 1$/m);

  const actors = (await get('/api/actors')).json();
  assert.deepEqual((actors.actors as { id: string }[]).map((a) => a.id).sort(), ['book', 'feed', 'inspector', 'journal', 'risk_gate', 'root']);

  const detail = (await get('/api/actors/risk_gate')).json() as unknown as ActorDetail;
  assert.equal(detail.actor.state, 'active');
  assert.deepEqual(detail.machine!.states.map((s) => s.key), ['starting', 'active', 'reducing', 'halted', 'stopped']);
  assert.deepEqual(detail.machine!.states.find((s) => s.key === 'active')!.tags, ['ready']);
  assert.equal(detail.context.gate, 'RiskGate');
  const missing = await get('/api/actors/nobody');
  assert.equal(missing.status, 404);
  assert.match(String(missing.json().error), /no actor 'nobody' \(actors: .*risk_gate/);

  assert.deepEqual((await get('/api/features')).json(), { symbols: [], features: [], values: [], health: null });
  const positions = await get('/api/positions');
  assert.equal(positions.status, 503);
  assert.match(String(positions.json().error), /paper_trader/);
  assert.deepEqual((await get('/api/orders')).json(), { working: [], recent: [], total: 0 });
});

test('the web page and the shared stateText module it imports are served as JavaScript', async () => {
  const page = await get('/');
  assert.equal(page.status, 200);
  assert.match(page.type, /^text\/html/);
  const app = await get('/app.js');
  assert.equal(app.status, 200);
  assert.match(app.type, /^text\/javascript/);
  assert.match(app.text, /from '\.\/state-text\.js'/);
  const shared = await get('/state-text.js');
  assert.equal(shared.status, 200);
  assert.match(shared.type, /^text\/javascript/);
  assert.equal(shared.text, readFileSync(new URL('../../src/inspector/web/state-text.js', import.meta.url), 'utf8'));
});

test('control without the token or with a wrong one is 401 and changes nothing; with it the gate halts and resumes', async () => {
  for (const token of [undefined, 'wrong-token', `${daemon.token}x`]) {
    const refused = await control(daemon.url, 'halt', { reason: 'intruder' }, token);
    assert.equal(refused.status, 401);
    assert.match(String(refused.body.error), /Authorization: Bearer <token>/);
    assert.equal(gate().state, 'ACTIVE');
  }
  assert.equal(statSync(daemon.tokenFile).mode & 0o777, 0o600, 'only the owner can read the token');

  const halted = await control(daemon.url, 'halt', { reason: 'operator says stop' }, daemon.token);
  assert.deepEqual(halted, { status: 200, body: { ok: true, command: 'halt', state: 'HALTED', reason: 'operator says stop' } });
  assert.equal(gate().state, 'HALTED');
  await until(() => daemon.inspection.actors().find((a) => a.id === 'risk_gate')?.state === 'halted', 'the gate actor halted');
  assert.ok(daemon.inspection.events().some((e) => e.kind === 'gate' && e.text === 'gate ACTIVE -> HALTED by inspector: operator says stop'));

  const reducing = await control(daemon.url, 'reduce-only', {}, daemon.token);
  assert.equal(reducing.status, 200);
  assert.equal(gate().state, 'REDUCING');
  const resumed = await control(daemon.url, 'resume', { reason: 'all clear' }, daemon.token);
  assert.equal(resumed.status, 200);
  assert.equal(gate().state, 'ACTIVE');
});

test('a resume refused by the gate is 409 with its reason; a model command without a predictor is 503', async () => {
  gate().report('feature_health', new Map([['SPY spread', 'SPY spread CRITICAL']]));
  const refused = await control(daemon.url, 'resume', {}, daemon.token);
  gate().report('feature_health', new Map());
  assert.equal((await control(daemon.url, 'resume', {}, daemon.token)).status, 200);
  assert.equal(refused.status, 409);
  assert.match(String(refused.body.error), /SPY spread CRITICAL/);
  const swap = await control(daemon.url, 'swap-model', { path: 'models/x/manifest.json' }, daemon.token);
  assert.equal(swap.status, 503);
  assert.match(String(swap.body.error), /no predictor/);
});

test('restart-actor restarts the actor and what depends on it, gracefully, without counting a failure', async () => {
  const before = { feed: probes.starts('feed'), book: probes.starts('book') };
  const answer = await control(daemon.url, 'restart-actor', { actor: 'feed' }, daemon.token);
  assert.deepEqual(answer, { status: 200, body: { ok: true, command: 'restart-actor', actor: 'feed', restarting: true } });
  await until(() => daemon.child('book').status === 'running' && probes.starts('book') === before.book + 1, 'book restarted after feed');
  assert.equal(probes.starts('feed'), before.feed + 1);
  assert.deepEqual(probes.sequence('stop').slice(-2), ['book', 'feed'], 'dependents stop first');
  assert.deepEqual(probes.sequence('start').slice(-2), ['feed', 'book'], 'and start after');
  assert.equal(daemon.child('feed').failures, 0);
  assert.ok(daemon.sink.messages().includes('restarting feed: requested by an operator'));
  const unknown = await control(daemon.url, 'restart-actor', { actor: 'nobody' }, daemon.token);
  assert.equal(unknown.status, 404);
  const root = await control(daemon.url, 'restart-actor', { actor: 'root' }, daemon.token);
  assert.equal(root.status, 409);
});

/** A raw request, so a body can be bigger than it says or the method odd. */
function raw(method: string, path: string, body: string | Buffer, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${daemon.url}${path}`, { method, headers: { authorization: `Bearer ${daemon.token}`, ...headers } }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    // A server that answers early and closes may cut the upload short: that is the point.
    req.on('error', (err: NodeJS.ErrnoException) => (err.code === 'EPIPE' || err.code === 'ECONNRESET' ? undefined : reject(err)));
    req.end(body);
  });
}

test('malformed, oversized and unknown requests get a 4xx naming the problem, and the daemon lives', async () => {
  const cases: [string, string, string | Buffer, number, RegExp][] = [
    ['POST', '/api/control/halt', '{"reason": ', 400, /malformed JSON body/],
    ['POST', '/api/control/halt', '[1, 2]', 400, /must be a JSON object/],
    ['POST', '/api/control/halt', '{"reason": 42}', 400, /'reason' must be a non-empty string/],
    ['POST', '/api/control/swap-model', '{}', 400, /swap-model needs 'path'/],
    ['POST', '/api/control/halt', Buffer.alloc(2 * 1024 * 1024, 0x20), 413, /over the limit of 65536/],
    ['POST', '/api/control/launch-rockets', '{}', 404, /no control command 'launch-rockets': one of halt, resume/],
    ['GET', '/api/control/halt', '', 405, /POST/],
    ['DELETE', '/api/actors', '', 405, /only GET/],
    ['GET', '/no/such/route', '', 404, /no route \/no\/such\/route: try/],
  ];
  for (const [method, path, body, status, message] of cases) {
    const res = await raw(method, path, body);
    assert.equal(res.status, status, `${method} ${path}: ${res.text}`);
    assert.match(String((JSON.parse(res.text) as { error: string }).error), message);
  }
  assert.equal(gate().state, 'ACTIVE', 'no refused request halted anything');
  assert.equal((await get('/health')).json().phase, 'running');
  assert.equal(daemon.child('inspector').status, 'running');
  assert.equal(daemon.child('inspector').incarnation, 1, 'the inspector never failed');
  assert.deepEqual(daemon.errors, []);
});
