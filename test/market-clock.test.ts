/** The market clock: arithmetic on an injected real time, and its settings in keel's config and the simulator's. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { marketClock, systemClock } from '../src/clock.js';
import { clockFrom } from '../src/config/clock.js';
import { parseConfig } from '../src/config/load.js';
import { ConfigError } from '../src/config/yaml.js';
import { defaultSimConfig, parseSimConfig, withFlags } from '../src/sim/config.js';

const MARKET = Date.UTC(2026, 0, 5, 14, 30); // Monday 09:30 New York
const REAL = Date.UTC(2026, 11, 3, 16, 0);

test('market time is marketStart plus the real time since realStart times the speed', () => {
  let real = REAL;
  const clock = marketClock({ speed: 600, marketStart: MARKET, realStart: REAL }, () => real);
  assert.equal(clock.wallNow(), MARKET);
  real += 39_000;
  assert.equal(clock.wallNow(), MARKET + 6.5 * 3_600_000, '39 s of real time is 09:30 to 16:00');
  real = REAL - 1_000;
  assert.equal(clock.wallNow(), MARKET - 600_000, 'before the anchor, before marketStart');
});

test('two clocks on the same anchor agree whenever each was made: a simulator and a keel restarted later', () => {
  let real = REAL + 5_000;
  const anchor = { speed: 30, marketStart: MARKET, realStart: REAL };
  const sim = marketClock(anchor, () => real);
  real += 60_000;
  const keel = marketClock(anchor, () => real);
  assert.equal(keel.wallNow(), sim.wallNow());
  assert.equal(keel.wallNow(), MARKET + 65_000 * 30);
});

test('monotonic time and timers stay real: only the calendar runs fast', async () => {
  const clock = marketClock({ speed: 1_000, marketStart: MARKET, realStart: REAL }, () => REAL);
  assert.equal(clock.now, systemClock.now, 'now() is the process monotonic clock');
  let fired = false;
  const handle = clock.setTimeout(() => (fired = true), 10_000);
  await new Promise((resolve) => setImmediate(resolve));
  clock.clearTimeout(handle);
  assert.equal(fired, false, 'a 10 s timer is 10 s of real time, not 10 ms');
});

test("keel's config: a clock section with both instants and a speed; no section is the system clock", () => {
  const base = 'components:\n  journal: { kind: placeholder }\n';
  const config = parseConfig(`clock:\n  speed: 600\n  marketStart: 2026-01-05T09:30:00-05:00\n  realStart: 2026-12-03T16:00:00Z\n${base}`, 'fast.yaml');
  assert.deepEqual(config.clock, { speed: 600, marketStart: MARKET, realStart: REAL });
  assert.equal(parseConfig(`clock: { marketStart: "2026-01-05T14:30:00Z", realStart: "2026-12-03T16:00:00Z" }\n${base}`, 'x.yaml').clock!.speed, 1, 'speed 1 by default');
  assert.equal(parseConfig(base, 'plain.yaml').clock, undefined);
  assert.equal(clockFrom(undefined), systemClock);
});

test("a bad clock section: each problem names the key and what was expected", () => {
  const base = 'components:\n  journal: { kind: placeholder }\n';
  const problems = (yaml: string): string[] => {
    try {
      parseConfig(`${yaml}\n${base}`, 'bad.yaml');
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      return err.problems;
    }
    assert.fail('accepted');
  };
  assert.deepEqual(problems('clock: { speed: 0, marketStart: "2026-01-05T09:30", realStart: yesterday }'), [
    'line 1: clock.speed: expected a number above 0 (market time per real time) (got 0)',
    'line 1: clock.marketStart: expected an ISO 8601 time with Z or an offset, like 2026-01-05T09:30:00-05:00 (got "2026-01-05T09:30")',
    'line 1: clock.realStart: expected an ISO 8601 time with Z or an offset, like 2026-01-05T09:30:00-05:00 (got "yesterday")',
  ]);
  assert.deepEqual(problems('clock: { speed: 10 }'), [
    'line 1: clock.marketStart: missing; expected an ISO 8601 time with Z or an offset, like 2026-01-05T09:30:00-05:00',
    'line 1: clock.realStart: missing; expected an ISO 8601 time with Z or an offset, like 2026-01-05T09:30:00-05:00',
  ]);
  assert.match(problems('clock: { speed: .inf, marketStart: "2026-01-05T14:30:00Z", realStart: "2026-12-03T16:00:00Z" }')[0]!, /^line 1: clock\.speed: /);
});

test('keel sim: the same section in its config, and flags over it', () => {
  const file = parseSimConfig('clock: { speed: 20, marketStart: "2026-01-05T14:30:00Z", realStart: "2026-12-03T16:00:00Z" }\n', 'sim.yaml');
  assert.deepEqual(file.clock, { speed: 20, marketStart: MARKET, realStart: REAL });
  assert.deepEqual((withFlags(file, { speed: '900' }) as typeof file).clock, { speed: 900, marketStart: MARKET, realStart: REAL }, 'a flag replaces its key only');
  const flags = withFlags(defaultSimConfig(), { speed: '1200', 'market-start': '2026-01-05T09:30:00-05:00', 'real-start': '2026-12-03T16:00:00Z' });
  assert.deepEqual((flags as typeof file).clock, { speed: 1_200, marketStart: MARKET, realStart: REAL });
  assert.equal((withFlags(defaultSimConfig(), {}) as typeof file).clock, undefined, 'no flags, no section: the system clock');
  assert.equal(withFlags(defaultSimConfig(), { speed: '600' }), '--speed needs --market-start too (or a clock section in the config with marketStart)');
  assert.equal(withFlags(file, { speed: 'fast' }), "--speed: expected a number above 0 (market time per real time), got 'fast'");
  assert.equal(
    withFlags(file, { 'real-start': '16:00' }),
    "--real-start: expected an ISO 8601 time with Z or an offset, like 2026-01-05T09:30:00-05:00, got '16:00'",
  );
});
