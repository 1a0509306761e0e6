/**
 * OptionChain, the chain priced from its inputs whatever their source: the
 * band over every expiry of the listing, inputs for contracts outside the
 * band ignored, a band reaching contracts with no data priced with
 * what it has, and each row's multiplier and prints.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { OptionLineContract } from '../../src/ib/option-lines.js';
import { bsmGreeks, newGreeks } from '../../src/options/bsm.js';
import { OptionChain } from '../../src/options/chain.js';
import { CHAIN_INPUT, type ChainListing } from '../../src/options/chain-input.js';
import { expiryMs, MS_PER_YEAR } from '../../src/options/expiry.js';

const WALL = Date.UTC(2026, 0, 5, 16, 0);
const EXPIRIES = ['20260105', '20260106'];
const STRIKES = [96, 97, 98, 99, 100, 101, 102, 103, 104];
const contracts: OptionLineContract[] = EXPIRIES.flatMap((expiry, e) =>
  STRIKES.flatMap((strike, s) => (['C', 'P'] as const).map((right, r) => ({ conId: 1_000 + e * 100 + s * 2 + r, localSymbol: `SPY ${expiry}${right}${strike}`, expiry, strike, right }))),
);
// Two listed expiries before the band's (expiries 2..3 of the day), as discovery lists them.
const listing: ChainListing = { underlying: 'SPY', day: '2026-01-05', expiries: ['20260101', '20260102', ...EXPIRIES], strikes: EXPIRIES.map((expiry) => ({ expiry, strikes: STRIKES })), contracts, allowance: 20 };
const spec = { underlying: 'SPY', expiries: { from: 2, to: 3 }, strikes: 2, rights: ['C', 'P'] as const, hysteresis: 0.6, cooldownMs: 1_000, rate: 0.045, dividendYield: 0.012 };

/** A two-sided quote 1 % each side of BSM's price at 20 % volatility. */
function quote(chain: OptionChain, c: OptionLineContract, spot: number) {
  const g = bsmGreeks(c.right === 'C' ? 1 : -1, spot, c.strike, (expiryMs(c.expiry) - WALL) / MS_PER_YEAR, spec.rate, spec.dividendYield, 0.2, newGreeks());
  chain.input(c.conId, CHAIN_INPUT.BID, g.price * 0.99, WALL, 0);
  chain.input(c.conId, CHAIN_INPUT.ASK, g.price * 1.01, WALL, 0);
}

test('the band spans every expiry of the listing, and only its contracts take inputs', () => {
  const chain = new OptionChain(spec);
  chain.list(listing);
  assert.equal(chain.view.phase, 'discovering', 'no price yet');
  assert.equal(chain.price(0, WALL), undefined, 'no band without the underlying');
  assert.equal(chain.view.phase, 'waiting-for-underlying');
  chain.input(0, CHAIN_INPUT.UNDERLYING_BID, 100.01, WALL, 0);
  chain.input(0, CHAIN_INPUT.UNDERLYING_ASK, 100.03, WALL, 0);
  const band = chain.price(0, WALL)!;
  assert.deepEqual(chain.view.centres, { 20260105: 100, 20260106: 100 });
  // Two strikes each side, both rights, both expiries: 20 lines, the allowance.
  assert.equal(band.length, 20);
  assert.deepEqual([...new Set(band.map((c) => c.expiry))], EXPIRIES);
  for (const c of band) quote(chain, c, 100.02);
  const away = contracts.find((c) => c.strike === 96)!;
  assert.equal(chain.input(away.conId, CHAIN_INPUT.BID, 4, WALL, 0), false, 'a contract outside the band');
  assert.equal(chain.price(10, WALL), undefined, 'the band stays');
  assert.equal(chain.view.phase, 'streaming');
  // Every row quoted has its mid's IV (near the 20 % its quote was made at) and keel's own.
  for (const row of chain.view.rows) assert.ok(Math.abs(row.midIv - 0.2) < 0.05 && Number.isFinite(row.keel.iv) && Number.isFinite(row.keel.delta), `${row.localSymbol}: ${row.midIv} / ${row.keel.iv}`);
});

test('a band moved onto contracts with no data prices what it has', () => {
  const chain = new OptionChain(spec);
  chain.list(listing);
  chain.input(0, CHAIN_INPUT.UNDERLYING_BID, 100.01, WALL, 0);
  chain.input(0, CHAIN_INPUT.UNDERLYING_ASK, 100.03, WALL, 0);
  for (const c of chain.price(0, WALL)!) quote(chain, c, 100.02);
  const quoted = new Set(chain.view.rows.map((r) => r.conId));
  // The underlying moves a strike and a half, after the cooldown: the band follows; the new strikes have no quotes (a recording never streamed them).
  chain.input(0, CHAIN_INPUT.UNDERLYING_BID, 101.51, WALL, 0);
  chain.input(0, CHAIN_INPUT.UNDERLYING_ASK, 101.53, WALL, 0);
  const moved = chain.price(2_000, WALL)!;
  assert.equal(chain.view.recentres, 1);
  assert.deepEqual(chain.view.centres, { 20260105: 102, 20260106: 102 });
  assert.equal(moved.length, 20);
  const fresh = chain.view.rows.filter((r) => !quoted.has(r.conId));
  assert.ok(fresh.length > 0 && fresh.every((r) => Number.isNaN(r.bid) && r.ivReason === 'no two-sided quote yet'), JSON.stringify(fresh.map((r) => [r.localSymbol, r.bid, r.ivReason])));
  // The rows it kept keep their quotes; their lines stream on at the new price, and the smile fitted to them prices the rest.
  const kept = moved.filter((c) => quoted.has(c.conId));
  assert.ok(kept.length > 0 && chain.view.rows.filter((r) => quoted.has(r.conId)).every((r) => Number.isFinite(r.bid)));
  for (const c of kept) quote(chain, c, 101.52);
  assert.equal(chain.price(2_100, WALL), undefined);
  for (const row of chain.view.rows) {
    if (quoted.has(row.conId)) assert.ok(Math.abs(row.midIv - 0.2) < 0.05, `${row.localSymbol}: ${row.midIv}`);
    else assert.ok(Number.isNaN(row.bid) && Number.isNaN(row.midIv), `${row.localSymbol} has no quote`);
    assert.ok(Number.isFinite(row.keel.iv) && Number.isFinite(row.keel.delta), `${row.localSymbol} priced from the smile: ${row.keel.iv}`);
  }
});

test("a row carries its listed multiplier and its prints: a line's report of the last trade before it is no new print", () => {
  const chain = new OptionChain(spec);
  // The listing says every contract's multiplier but the 100 put's.
  const unsaid = contracts.find((c) => c.expiry === EXPIRIES[0] && c.strike === 100 && c.right === 'P')!;
  chain.list({ ...listing, contracts: contracts.map((c) => (c === unsaid ? c : { ...c, multiplier: 100 })) });
  chain.input(0, CHAIN_INPUT.UNDERLYING_BID, 100.01, WALL, 0);
  chain.input(0, CHAIN_INPUT.UNDERLYING_ASK, 100.03, WALL, 0);
  const [first] = chain.price(0, WALL)!;
  const row = chain.view.rows[0]!;
  assert.equal(row.conId, first!.conId);
  assert.equal(row.multiplier, 100);
  assert.deepEqual([row.last, row.lastSize, row.prints], [NaN, NaN, 0]);
  chain.input(row.conId, CHAIN_INPUT.LAST_BEFORE_LINE, 1.5, WALL, 0);
  chain.input(row.conId, CHAIN_INPUT.LAST_SIZE, 4, WALL, 0);
  assert.deepEqual([row.last, row.lastSize, row.prints], [1.5, 4, 0]);
  chain.input(row.conId, CHAIN_INPUT.LAST, 1.52, WALL, 0);
  chain.input(row.conId, CHAIN_INPUT.LAST_SIZE, 2, WALL, 0);
  chain.input(row.conId, CHAIN_INPUT.LAST, 1.52, WALL, 0);
  assert.deepEqual([row.last, row.lastSize, row.prints], [1.52, 2, 2]);
  assert.ok(Number.isNaN(chain.view.rows.find((r) => r.conId === unsaid.conId)!.multiplier), 'a listing that does not say gives NaN');
});
