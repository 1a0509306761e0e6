/** What the option chain's tests share: a clock that reads Monday morning, and subscriptions holding SPY's quote line. */
import { componentSpec } from '../../src/actors/registry.js';
import { subscriptionsSettings } from '../../src/actors/subscriptions.js';
import { systemClock, type Clock } from '../../src/clock.js';
import type { ChildSpec } from '../../src/supervision/spec.js';

/** Monday 2026-01-05 11:00 New York. */
export const WALL_START = Date.UTC(2026, 0, 5, 16, 0);

/** Real time, read as if it began at WALL_START: the day's expiry five hours away whenever the test runs, so the chain and its greeks are the same at any hour. */
export function mondayMorning(): Clock {
  const offset = WALL_START - Date.now();
  return { ...systemClock, wallNow: () => Date.now() + offset };
}

/** subscriptions with SPY's quote line (what prices the chain) under a budget of `lines` market-data lines: the rest are the chain's. */
export function spyQuoteLine(lines: number): ChildSpec {
  return componentSpec('subscriptions', 'subscriptions', {
    settings: subscriptionsSettings.parse({ instruments: [{ symbol: 'SPY' }], budgets: { marketDataLines: lines, depthSlots: 3, tickByTickSlots: 3 } }),
    dependsOn: ['ib_connection'],
  });
}
