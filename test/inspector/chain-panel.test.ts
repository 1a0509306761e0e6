/**
 * The chain panel from a hand-made chain view (pure logic): a copy of the
 * reused view, NaN as null, strikes grouped with their call and put, the ATM
 * strike the band's nearest to the underlying, the smile one point per listed
 * strike around the band.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chainPanel } from '../../src/inspector/chain-panel.js';
import { newChainFeatures } from '../../src/options/chain-features.js';
import { nanGreeks, type ChainRow, type OptionChainView } from '../../src/options/chain-view.js';

function row(conId: number, strike: number, right: 'C' | 'P', fields: Partial<ChainRow> = {}): ChainRow {
  return {
    conId,
    localSymbol: `SPY ${strike}${right}`,
    expiry: '20260105',
    strike,
    right,
    multiplier: 100,
    line: 'live',
    bid: 1,
    ask: 1.1,
    bidSize: 10,
    askSize: 10,
    years: 0.001,
    volume: NaN,
    openInterest: NaN,
    last: NaN,
    lastSize: NaN,
    prints: 0,
    midIv: 0.2,
    ivReason: undefined,
    keel: { ...nanGreeks(), iv: 0.21, delta: right === 'C' ? 0.5 : -0.5 },
    ib: { ...nanGreeks(), underlying: NaN },
    diff: nanGreeks(),
    ...fields,
  };
}

function view(): OptionChainView {
  const strikes = [95, 95, 99, 99, 100, 100, 101, 101, 110, 110];
  const n = strikes.length;
  return {
    underlying: 'SPY',
    phase: 'streaming',
    spot: 100.4,
    pricedAt: 1000,
    quotedAt: NaN,
    quotedMonotonic: NaN,
    listing: { day: '20260105', expiries: 1, contracts: n },
    centres: { '20260105': 100 },
    recentres: 0,
    lines: { allowance: 4, wanted: 4, waiting: 1, requested: 0, live: 3, refused: 0 },
    smiles: { '20260105': { theta: 0.0001, rho: -0.5, phi: 10, rmsPrice: 0.01, points: 4 } },
    rows: [row(1, 100, 'C'), row(2, 100, 'P'), row(3, 101, 'C', { line: 'waiting', bid: NaN, ask: NaN, midIv: NaN, ivReason: 'no quote yet' }), row(4, 99, 'P')],
    listed: {
      count: n,
      expiries: ['20260105'],
      fromQuotes: Uint8Array.of(1),
      expiry: new Int8Array(n),
      conId: Float64Array.from(strikes, (_, i) => 100 + i),
      strike: Float64Array.from(strikes),
      right: Int8Array.from(strikes, (_, i) => (i % 2 === 0 ? 1 : -1)),
      years: new Float64Array(n).fill(0.001),
      vol: Float64Array.from(strikes, (k) => (k === 101 ? NaN : k === 99 ? 0.25 : 0.2)),
      price: new Float64Array(n),
      delta: new Float64Array(n),
      gamma: new Float64Array(n),
      vega: new Float64Array(n),
      theta: new Float64Array(n),
    },
    features: newChainFeatures(),
    maxDiff: { iv: NaN, price: 0.02 },
  };
}

test('the panel: strikes with their call and put, the ATM strike, NaN as null, the smile around the band', () => {
  const v = view();
  const panel = chainPanel(v);
  assert.equal(panel.quotedAt, null);
  assert.deepEqual(panel.maxDiff, { iv: null, price: 0.02 });
  assert.equal(panel.expiries.length, 1);
  const e = panel.expiries[0]!;
  assert.deepEqual(e.strikes.map((s) => [s.strike, s.call?.conId ?? null, s.put?.conId ?? null]), [[99, null, 4], [100, 1, 2], [101, 3, null]]);
  assert.equal(e.atmStrike, 100);
  assert.equal(e.fitPoints, 4);
  assert.equal(e.atmIv, null, 'no features computed: null, not NaN');
  assert.deepEqual(e.strikes[2]!.call, { conId: 3, line: 'waiting', bid: null, ask: null, midIv: null, ivReason: 'no quote yet', iv: 0.21, delta: 0.5 });
  // The band spans 99..101: the smile 98..102 (half the span each side), one point a strike, the NaN left out.
  assert.deepEqual(e.smile, [[99, 0.25], [100, 0.2]]);
  assert.ok(!JSON.stringify(panel).includes('NaN'));
});

test('the panel is a copy: re-pricing the view in place leaves it as it was', () => {
  const v = view();
  const panel = chainPanel(v);
  const text = JSON.stringify(panel);
  v.rows[0]!.bid = 7;
  v.rows[0]!.keel.iv = 0.9;
  v.listed!.vol[2] = 0.9;
  v.spot = 120;
  (v.lines as { live: number }).live = 0;
  assert.equal(JSON.stringify(panel), text);
});

test('a view before its smiles are fitted: no smile, and no ATM strike without an underlying price', () => {
  const v = view();
  v.smiles['20260105']!.points = 0;
  v.spot = NaN;
  const e = chainPanel(v).expiries[0]!;
  assert.deepEqual(e.smile, []);
  assert.equal(e.atmStrike, null);
});
