/** A risk gate on a manual clock whose halts and transitions are written down, for the gate's unit tests. */
import { ManualClock } from '../../src/clock.js';
import type { RiskLimits } from '../../src/trading/limits.js';
import { RiskGate, type GateTransition } from '../../src/trading/risk-gate.js';

export function watchedGate(limits: RiskLimits, options = { autoResume: false, healthyPeriodMs: 1000 }) {
  const clock = new ManualClock();
  const gate = new RiskGate(clock, { ...options, limits });
  const happened: string[] = [];
  const transitions: GateTransition[] = [];
  gate.onHalt(() => happened.push(`cancel all while ${gate.state}`));
  gate.onTransition((t) => {
    transitions.push(t);
    happened.push(`${t.from} -> ${t.to}`);
  });
  return { clock, gate, happened, transitions };
}
