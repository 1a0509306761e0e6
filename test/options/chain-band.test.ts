/** The streamed band: chosen around the money, within the allowance, moved with hysteresis and a cooldown. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ChainBand, nearestStrike, parseExpiryRange, parseStrikeBand, strikeGap, type BandSpec, type ListedStrikes } from '../../src/options/chain-band.js';

const range = (lo: number, hi: number, step: number) => Array.from({ length: Math.round((hi - lo) / step) + 1 }, (_, i) => lo + i * step);
/** $1 strikes 560–600 and $5 beyond, per expiry; the third expiry $5 only. */
const LISTED: ListedStrikes[] = [
  { expiry: '20260105', strikes: [...range(500, 555, 5), ...range(560, 600, 1), ...range(605, 650, 5)] },
  { expiry: '20260106', strikes: [...range(500, 555, 5), ...range(560, 600, 1), ...range(605, 650, 5)] },
  { expiry: '20260107', strikes: range(500, 650, 5) },
];
const SPEC: BandSpec = { expiries: { from: 0, to: 1 }, strikesEachSide: 10, rights: ['C', 'P'], hysteresis: 0.6, cooldownMs: 5_000 };

test('the config words: expiries 0..1, strikes atm ± 10', () => {
  assert.deepEqual(parseExpiryRange('0..1'), { from: 0, to: 1 });
  assert.deepEqual(parseExpiryRange('2'), { from: 2, to: 2 });
  assert.throws(() => parseExpiryRange('1..0'), /backwards/);
  assert.throws(() => parseExpiryRange('soon'), /range such as 0..1/);
  assert.equal(parseStrikeBand('atm ± 10'), 10);
  assert.equal(parseStrikeBand('ATM +- 4'), 4);
  assert.equal(parseStrikeBand('atm +/- 3'), 3);
  assert.equal(parseStrikeBand(7), 7);
  assert.throws(() => parseStrikeBand('10 wide'), /atm ± N/);
});

test('nearest strike and the local gap', () => {
  const s = LISTED[0]!.strikes;
  assert.equal(s[nearestStrike(s, 580.4)], 580);
  assert.equal(s[nearestStrike(s, 580.6)], 581);
  assert.equal(s[nearestStrike(s, 580.5)], 580, 'a tie goes to the lower strike');
  assert.equal(s[nearestStrike(s, 10)], 500);
  assert.equal(s[nearestStrike(s, 10_000)], 650);
  assert.equal(nearestStrike([], 580), -1);
  assert.equal(strikeGap(s, s.indexOf(600), 601), 5, 'above 600 the next strike is 605');
  assert.equal(strikeGap(s, s.indexOf(600), 599), 1);
});

test('the band: atm ± 10 strikes of each chosen expiry, both rights, nearest the money first', () => {
  const band = new ChainBand(SPEC);
  assert.equal(band.list(LISTED, 95, 580.2, 0), 'centred');
  assert.equal(band.contracts.length, 21 * 2 * 2);
  assert.deepEqual([...band.centres], [['20260105', 580], ['20260106', 580]]);
  assert.deepEqual(band.contracts.slice(0, 4), [
    { expiry: '20260105', strike: 580, right: 'C' },
    { expiry: '20260105', strike: 580, right: 'P' },
    { expiry: '20260106', strike: 580, right: 'C' },
    { expiry: '20260106', strike: 580, right: 'P' },
  ]);
  const strikes = [...new Set(band.contracts.filter((c) => c.expiry === '20260105').map((c) => c.strike))].sort((a, b) => a - b);
  assert.deepEqual(strikes, range(570, 590, 1));
  assert.ok(band.contracts.every((c) => c.expiry !== '20260107'), 'only expiries 0..1');
  // Where the $1 strikes end, the band runs on over the $5 ones: ten strikes each side all the same.
  band.list(LISTED, 95, 597, 0);
  assert.deepEqual([...new Set(band.contracts.map((c) => c.strike))].sort((a, b) => a - b), [...range(587, 600, 1), 605, 610, 615, 620, 625, 630, 635]);
});

test('never beyond the allowance: the strikes furthest from the money go first', () => {
  const band = new ChainBand(SPEC);
  band.list(LISTED, 30, 580, 0);
  assert.equal(band.contracts.length, 30);
  const front = band.contracts.filter((c) => c.expiry === '20260105').map((c) => c.strike);
  assert.ok(front.every((k) => Math.abs(k - 580) <= 4), String(front));
  assert.ok(band.contracts.filter((c) => c.expiry === '20260106').every((c) => Math.abs(c.strike - 580) <= 3), 'the front expiry goes further first');
  for (const allowance of [0, 1, 2, 3, 7, 84, 85, 200]) {
    band.list(LISTED, allowance, 580, 0);
    assert.ok(band.contracts.length <= allowance, `${band.contracts.length} contracts in ${allowance} lines`);
    assert.equal(band.contracts.length, Math.min(84, allowance - (allowance % 2)));
  }
  // Strikes at the end of the listing: fewer contracts, never an invented strike.
  band.list(LISTED, 95, 500, 0);
  assert.equal(band.contracts.length, 11 * 2 * 2);
});

test('re-centring: not inside the hysteresis zone, not during the cooldown, then once', () => {
  const band = new ChainBand(SPEC);
  band.list(LISTED, 95, 580, 0);
  // Past the midpoint to 581 but inside 0.6 of a gap: the band stays.
  assert.equal(band.update(580.55, 10_000), 'inside');
  assert.equal(band.update(579.45, 10_000), 'inside');
  assert.equal(band.centres.get('20260105'), 580);
  // Out of the zone, too soon after the last centring.
  band.list(LISTED, 95, 580, 20_000);
  assert.equal(band.update(580.7, 21_000), 'cooling');
  assert.equal(band.centres.get('20260105'), 580);
  assert.equal(band.update(580.7, 25_000), 'recentred');
  assert.equal(band.centres.get('20260105'), 581);
  assert.equal(band.recentres, 1);
  assert.deepEqual([...new Set(band.contracts.filter((c) => c.expiry === '20260106').map((c) => c.strike))].sort((a, b) => a - b), range(571, 591, 1));
  // Back and forth around the midpoint of 580.5: no flapping.
  for (let t = 0; t < 20; t++) assert.equal(band.update(t % 2 ? 580.45 : 580.55, 30_000 + t * 10_000), 'inside');
  // A jump through the band: one re-centre onto the new money.
  assert.equal(band.update(586.2, 300_000), 'recentred');
  assert.deepEqual([...band.centres.values()], [586, 586]);
  assert.equal(band.recentres, 2);
  assert.equal(band.update(Number.NaN, 400_000), 'no-price');
});

test('where strikes are $5 apart the zone is $5 wide', () => {
  const band = new ChainBand({ ...SPEC, expiries: { from: 2, to: 2 } });
  band.list(LISTED, 95, 580, 0);
  assert.equal(band.centres.get('20260107'), 580);
  assert.equal(band.update(582.9, 10_000), 'inside');
  assert.equal(band.update(583.1, 20_000), 'recentred');
  assert.equal(band.centres.get('20260107'), 585);
  assert.throws(() => new ChainBand({ ...SPEC, hysteresis: 0.3 }), /at least 0.5/);
});
