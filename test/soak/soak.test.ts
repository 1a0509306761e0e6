/**
 * The soak for CI: two minutes of trading on the simulator through every
 * fault (test/soak/soak.ts), all real processes. It fails with the soak's
 * own summary, which names each check that did not hold; `npm run soak --
 * --minutes N` is the same run at any length.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FAULTS, type FaultKind } from './plan.js';
import { formatReport } from './report.js';
import { runSoak } from './soak.js';

test('two minutes under every fault: no fill lost or doubled, each fault halts by its source and trading resumes, memory flat', { timeout: 240_000 }, async () => {
  const report = await runSoak({ minutes: 2, seed: 1, progress: (line) => process.stderr.write(`soak: ${line}\n`) });
  const summary = formatReport(report);
  process.stderr.write(summary);
  assert.deepEqual(
    report.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`),
    [],
    summary,
  );
  // Every kind of fault was injected and judged, and the ledger checks had fills to judge.
  assert.deepEqual(report.faults.map((f) => f.kind).sort(), (Object.keys(FAULTS) as FaultKind[]).sort());
  assert.ok(report.fills && report.fills.atBroker > 0 && report.fills.journaled === report.fills.atBroker);
});
