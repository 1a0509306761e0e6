/** `keel options price` as a real process: JSON out, IB units, its help within 80 columns, mistakes named by flag. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bsmGreeks, newGreeks } from '../../src/options/bsm.js';
import { runKeel } from '../support/process.js';

async function keel(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const run = runKeel(args);
  const code = await run.exited;
  await new Promise((resolve) => setImmediate(resolve));
  return { code, stdout: run.stdout.join('\n'), stderr: run.stderr.join('\n') };
}

const BASE = ['options', 'price', '--spot', '580', '--strike', '580', '--expiry', '20260105', '--at', '2026-01-05T14:00', '--right', 'P', '--rate', '0.045', '--dividend', '0.012'];

test('--vol prices a put 2 h before the 16:00 New York expiry, in IB units', { timeout: 30_000 }, async () => {
  const { code, stdout, stderr } = await keel([...BASE, '--vol', '0.15']);
  assert.equal(code, 0, stderr);
  const out = JSON.parse(stdout) as Record<string, number | string>;
  assert.equal(out.expiry, '2026-01-05T21:00:00.000Z');
  assert.equal(out.at, '2026-01-05T19:00:00.000Z');
  const T = 2 / 8_760;
  assert.ok(Math.abs((out.years as number) - T) < 1e-15);
  const g = bsmGreeks(-1, 580, 580, T, 0.045, 0.012, 0.15, newGreeks());
  for (const k of ['price', 'delta', 'gamma', 'vega', 'theta'] as const) assert.ok(Math.abs((out[k] as number) - g[k]) < 1e-12, `${k}: ${out[k]} vs ${g[k]}`);
  assert.equal(out.iv, 0.15);
  assert.match(out.model as string, /Black-Scholes-Merton/);
});

test('--price implies the volatility back; --american uses Bjerksund-Stensland 2002', { timeout: 30_000 }, async () => {
  const european = await keel([...BASE, '--price', '0.5222501741444604']);
  assert.equal(european.code, 0, european.stderr);
  assert.ok(Math.abs((JSON.parse(european.stdout) as { iv: number }).iv - 0.15) < 1e-12);
  const american = await keel([...BASE, '--price', '1.1', '--american']);
  assert.equal(american.code, 0, american.stderr);
  const out = JSON.parse(american.stdout) as { iv: number; model: string; theta: number };
  assert.match(out.model, /Bjerksund-Stensland 2002/);
  assert.ok(out.iv > 0.3 && out.iv < 0.33, `${out.iv}`);
  assert.ok(out.theta < 0 && out.theta > -10, `theta per day ${out.theta}`);
});

test('a price below intrinsic: iv null with the reason, exit 1', { timeout: 30_000 }, async () => {
  const args = [...BASE, '--price', '19'];
  args[5] = '600';
  const { code, stdout } = await keel(args);
  assert.equal(code, 1);
  const out = JSON.parse(stdout) as { iv: null; reason: string };
  assert.equal(out.iv, null);
  assert.match(out.reason, /below intrinsic/);
});

test('--help documents the units within 80 columns', { timeout: 30_000 }, async () => {
  const { code, stdout } = await keel(['options', 'price', '--help']);
  assert.equal(code, 0);
  for (const line of stdout.split('\n')) assert.ok(line.length <= 80, `${line.length} columns: ${line}`);
  assert.match(stdout, /vega per volatility point/);
  assert.match(stdout, /theta per calendar day/);
  assert.match(stdout, /16:00 New York/);
});

test('bad input: one line naming the flag, exit 2', { timeout: 60_000 }, async () => {
  const cases: [string[], RegExp][] = [
    [[...BASE.slice(0, 10), ...BASE.slice(12), '--vol', '0.2'], /--right is required/],
    [[...BASE, '--vol', '0.2', '--price', '1'], /exactly one of --vol .* and --price/],
    [[...BASE, '--vol', 'abc'], /--vol must be a number above 0/],
    [[...BASE.map((a) => (a === 'P' ? 'X' : a)), '--vol', '0.2'], /--right must be C or P, got 'X'/],
    [[...BASE.map((a) => (a === '20260105' ? '2026015' : a)), '--vol', '0.2'], /--expiry: expiry must be YYYYMMDD/],
    [[...BASE.map((a) => (a === '2026-01-05T14:00' ? '2026-01-06T14:00' : a)), '--vol', '0.2'], /--expiry 20260105 .* is not after the valuation time/],
    [[...BASE.map((a) => (a === '580' ? '-3' : a)), '--vol', '0.2'], /--spot|ambiguous/],
  ];
  await Promise.all(
    cases.map(async ([args, message]) => {
      const { code, stderr } = await keel(args);
      assert.equal(code, 2, `${args.join(' ')}: ${stderr}`);
      assert.match(stderr, message);
    }),
  );
});
