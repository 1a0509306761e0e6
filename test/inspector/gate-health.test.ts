/**
 * /health and the inspector's panels name what holds the risk gate now:
 * a condition that cleared while something else kept the gate halted is
 * never shown as the reason, and a refused execution shows until the
 * operator's resume acknowledges it. A real tree: journal, risk gate and
 * inspector, over HTTP.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { componentKinds, componentSpec } from '../../src/actors/registry.js';
import { systemClock } from '../../src/clock.js';
import { buildPanels } from '../../src/inspector/panels.js';
import type { ChildSpec } from '../../src/supervision/spec.js';
import { control, startInspected } from '../support/inspector.js';

const dir = mkdtempSync(join(tmpdir(), 'keel-gate-health-'));
let daemon: Awaited<ReturnType<typeof startInspected>>;

function component(id: keyof typeof componentKinds, settings: unknown, dependsOn: string[] = []): ChildSpec {
  return componentSpec(id, id, { settings: componentKinds[id].settings.parse(settings), dependsOn });
}

before(async () => {
  daemon = await startInspected([component('journal', { path: join(dir, 'journal.keel') }), component('risk_gate', { initialState: 'ACTIVE' }, ['journal'])]);
});
after(async () => {
  await daemon.stop();
  rmSync(dir, { recursive: true, force: true });
});

const gate = () => daemon.services.current('riskGate')!;
const riskGateLine = async () => {
  const res = await fetch(`${daemon.url}/health`);
  const body = (await res.json()) as { components: { risk_gate: { status: string; detail: string; holds: string[] } } };
  return body.components.risk_gate;
};
const panelGate = () => buildPanels(daemon.bus, daemon.services, 'running', systemClock, []).gate!;

test('/health and the panels name the condition that holds the gate, not one that has cleared', async () => {
  const NAN = 'daily P&L is NaN: the daily loss limit cannot be judged';
  gate().report('ib', new Map([['ib link', 'IB link reconnecting: socket closed']]));
  // Already halted: the bad P&L arrives without a transition of its own.
  gate().reportDailyPnl(NaN);
  gate().report('ib', new Map());
  const line = await riskGateLine();
  assert.equal(line.status, 'CRITICAL');
  assert.equal(line.detail, `HALTED: daily loss: ${NAN}`);
  assert.deepEqual(line.holds, [`daily loss: ${NAN}`]);
  assert.doesNotMatch(line.detail, /IB link/);
  assert.deepEqual(panelGate(), { state: 'HALTED', reason: NAN, conditions: [`daily loss: ${NAN}`], options: [] });

  // A refused execution on top: shown with what it waits for; the resume is refused for the data condition only.
  const refusal = 'execution e9 for keel.x.1 refused: price NaN is not a finite number above 0';
  gate().latch('executions', 'e9', refusal);
  assert.deepEqual((await riskGateLine()).holds, [`daily loss: ${NAN}`, `executions: ${refusal} (until an operator resumes)`]);
  const refused = await control(daemon.url, 'resume', { reason: 'seen' }, daemon.token);
  assert.equal(refused.status, 409);
  assert.match(String(refused.body.error), /^1 condition still present: daily loss: daily P&L is NaN/);
  gate().reportDailyPnl(0);
  const afterData = await riskGateLine();
  assert.equal(afterData.detail, `HALTED: executions: ${refusal} (until an operator resumes)`);
  assert.equal(panelGate().reason, refusal);

  // The operator's resume acknowledges it: OK again, nothing left to show.
  const resumed = await control(daemon.url, 'resume', { reason: 'the operator read the evidence' }, daemon.token);
  assert.deepEqual(resumed, { status: 200, body: { ok: true, command: 'resume', state: 'ACTIVE', reason: `the operator read the evidence (acknowledged: executions: ${refusal})` } });
  const ok = await riskGateLine();
  assert.deepEqual([ok.status, ok.detail, ok.holds], ['OK', `ACTIVE: the operator read the evidence (acknowledged: executions: ${refusal})`, []]);
  assert.deepEqual(panelGate().conditions, []);
});

test('the panels show what stops option trading beside an ACTIVE gate', () => {
  gate().reportOptions('feature_health', new Map([['stale', 'the SPY option chain is stale']]));
  assert.deepEqual(panelGate(), { state: 'ACTIVE', reason: panelGate().reason, conditions: [], options: ['feature_health: the SPY option chain is stale'] });
  gate().reportOptions('feature_health', new Map());
  assert.deepEqual(panelGate().options, []);
});
