/** A risk gate on a manual clock whose halts and transitions are written down, for the gate's unit tests. */
import { ManualClock } from '../../src/clock.js';
import type { RiskLimits } from '../../src/trading/limits.js';
import { RiskGate, type GateTransition, type OrderIntent } from '../../src/trading/risk-gate.js';

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

/** One ATM 0DTE SPY call bought at its mid with a flat portfolio: an option order every default limit lets through. */
export function optionIntent(): OrderIntent {
  return {
    symbol: 'SPY   260105C00580000',
    secType: 'OPT',
    quantity: 1,
    position: 0,
    price: 1.25,
    mid: 1.25,
    working: 0,
    grossExposure: 0,
    option: {
      underlying: 'SPY',
      expiry: '20260105',
      right: 'C',
      multiplier: 100,
      greeks: { delta: 0.5, gamma: 0.08, vega: 0.05, theta: -0.6 },
      portfolio: { delta: 0, gamma: 0, vega: 0, theta: 0 },
      contractsInExpiry: 0,
      premiumAtRisk: 0,
      sharesHeld: 0,
    },
  };
}
