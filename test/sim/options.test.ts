/**
 * SPY's option chain in the simulator, through the unmodified @stoqey/ib
 * client at server version 193: discovery (75/76), contract details per
 * expiry, option lines with message 21, generic and delayed ticks,
 * calculations, IB's errors and the line budget, and the options faults.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EventName, OptionType, SecType, type Contract, type ContractDetails, type IBApi } from '@stoqey/ib';
import { ManualClock } from '../../src/clock.js';
import { bsmGreeks, bsmPrice, newGreeks } from '../../src/options/bsm.js';
import { MS_PER_YEAR } from '../../src/options/expiry.js';
import { impliedVol } from '../../src/options/implied-vol.js';
import { startControlServer } from '../../src/sim/control.js';
import { SPY_DIVIDEND_YIELD, SPY_RATE } from '../../src/sim/options/chain.js';
import { TwsSimulator, type SimulatorOptions } from '../../src/sim/server.js';
import { barrier, connectClient, hashMessages } from '../support/ib-client.js';

/** The manual clock starts Monday 2026-01-05 09:30 New York: 0DTE is that day. */
const TODAY = '20260105';
const SPY_CONID = 756733;
const SPY: Contract = { symbol: 'SPY', secType: SecType.STK, exchange: 'SMART', currency: 'USD' };

function option(expiry: string, strike: number, right: 'C' | 'P'): Contract {
  return { symbol: 'SPY', secType: SecType.OPT, lastTradeDateOrContractMonth: expiry, strike, right: right === 'C' ? OptionType.Call : OptionType.Put, exchange: 'SMART', currency: 'USD', multiplier: 100 };
}

async function start(options: SimulatorOptions = {}) {
  const clock = new ManualClock();
  const sim = new TwsSimulator({ clock, updatesPerSecond: 200, seed: 42, optionComputationMs: 100, ...options });
  const port = await sim.listen(0);
  const client = await connectClient(port);
  const advance = async (ms: number) => {
    await clock.advance(ms);
    await barrier(client.ib);
  };
  return { sim, clock, port, ...client, advance, stop: async () => (client.ib.disconnect(), await sim.close()) };
}

interface Computation {
  tickType: number;
  iv?: number;
  delta?: number;
  price?: number;
  pvDividend?: number;
  gamma?: number;
  vega?: number;
  theta?: number;
  und?: number;
}

/** Everything the client decodes per ticker id. */
function record(ib: IBApi) {
  const prices = new Map<number, Map<number, number>>();
  const sizes = new Map<number, Map<number, number | undefined>>();
  const generics = new Map<number, Map<number, number>>();
  const computations = new Map<number, Computation[]>();
  const dataTypes: [number, number][] = [];
  const counts = new Map<number, number>();
  const tick = (id: number) => counts.set(id, (counts.get(id) ?? 0) + 1);
  const at = <V>(map: Map<number, Map<number, V>>, id: number) => map.get(id) ?? map.set(id, new Map()).get(id)!;
  ib.on(EventName.tickPrice, (id: number, type: number, price: number) => (tick(id), at(prices, id).set(type, price)));
  ib.on(EventName.tickSize, (id: number, type: number | undefined, size: number | undefined) => (tick(id), at(sizes, id).set(type ?? -1, size)));
  ib.on(EventName.tickGeneric, (id: number, type: number, value: number) => at(generics, id).set(type, value));
  ib.on(EventName.marketDataType, (id: number, type: number) => dataTypes.push([id, type]));
  ib.on(EventName.tickOptionComputation, (id: number, tickType: number, _attrib: number | undefined, iv?: number, delta?: number, price?: number, pvDividend?: number, gamma?: number, vega?: number, theta?: number, und?: number) => {
    tick(id);
    const list = computations.get(id) ?? computations.set(id, []).get(id)!;
    list.push({ tickType, iv, delta, price, pvDividend, gamma, vega, theta, und });
  });
  const lastComputation = (id: number, tickType: number) => computations.get(id)?.filter((c) => c.tickType === tickType).at(-1);
  /** Ticks and computations received on a ticker id. */
  const ticks = (id: number) => counts.get(id) ?? 0;
  return { prices, sizes, generics, computations, dataTypes, lastComputation, ticks };
}

function requestDetails(ib: IBApi, reqId: number, contract: Contract): Promise<{ details: ContractDetails[]; errors: number[] }> {
  const answer = { details: [] as ContractDetails[], errors: [] as number[] };
  return new Promise((resolve) => {
    ib.on(EventName.contractDetails, (id: number, d: ContractDetails) => id === reqId && answer.details.push(d));
    ib.on(EventName.contractDetailsEnd, (id: number) => id === reqId && resolve(answer));
    ib.on(EventName.error, (_err: Error, code: number, id: number) => {
      if (id === reqId || code === 505) resolve((answer.errors.push(code), answer));
    });
    ib.reqContractDetails(reqId, contract);
  });
}

test('reqSecDefOptParams: one row per exchange with the union lists, then the end (75, 76)', async () => {
  const s = await start();
  try {
    const rows: { exchange: string; conId: number; tradingClass: string; multiplier: number; expirations: string[]; strikes: number[] }[] = [];
    const ended = new Promise<number>((resolve) => s.ib.on(EventName.securityDefinitionOptionParameterEnd, resolve));
    s.ib.on(EventName.securityDefinitionOptionParameter, (_id: number, exchange: string, conId: number, tradingClass: string, multiplier: string, expirations: string[], strikes: number[]) =>
      // Typed a string, decoded as a number (readDouble).
      rows.push({ exchange, conId, tradingClass, multiplier: Number(multiplier), expirations, strikes }),
    );
    s.ib.reqSecDefOptParams(5, 'SPY', '', SecType.STK, SPY_CONID);
    assert.equal(await ended, 5);
    assert.deepEqual(s.errors, []);
    assert.equal(rows[0]!.exchange, 'SMART');
    assert.ok(rows.length > 3 && rows.every((r) => r.conId === SPY_CONID && r.tradingClass === 'SPY' && r.multiplier === 100));
    const { expirations, strikes } = rows[0]!;
    assert.deepEqual(expirations.slice(0, 5), ['20260105', '20260106', '20260107', '20260108', '20260109']);
    assert.ok(expirations.includes('20260116') && expirations.includes('20260320'), 'weeklies and monthlies');
    assert.deepEqual([...strikes].sort((a, b) => a - b), strikes);
    for (const k of [570, 575, 579, 580, 581, 600, 200]) assert.ok(strikes.includes(k), `strike ${k}`);
    // The union names pairs that do not exist: the $10 wing is monthly only.
    const listing = s.sim.options.listing;
    assert.equal(listing.expiry(TODAY)!.strikes.includes(200), false);
    assert.equal(listing.expiry('20260116')!.strikes.includes(200), true);
  } finally {
    await s.stop();
  }
});

test('contract details: one request answers a whole expiry; by conId or local symbol one contract; a missing pair is 200', async () => {
  const s = await start();
  try {
    const expiry = s.sim.options.listing.expiry('20260106')!;
    const all = await requestDetails(s.ib, 1, { symbol: 'SPY', secType: SecType.OPT, lastTradeDateOrContractMonth: '20260106', exchange: 'SMART', currency: 'USD' });
    assert.deepEqual(all.errors, []);
    assert.equal(all.details.length, expiry.contracts.length);
    assert.ok(all.details.length > 200, `${all.details.length} contracts`);
    const call580 = all.details.find((d) => d.contract.strike === 580 && d.contract.right === OptionType.Call)!;
    assert.equal(call580.contract.localSymbol, 'SPY   260106C00580000');
    assert.equal(call580.contract.secType, SecType.OPT);
    assert.equal(call580.contract.lastTradeDateOrContractMonth, '20260106');
    assert.equal(call580.contract.lastTradeDate, '20260106');
    assert.equal(call580.contract.multiplier, 100);
    assert.equal(call580.contract.tradingClass, 'SPY');
    assert.equal(call580.contract.exchange, 'SMART');
    assert.equal(call580.minTick, 0.01);
    assert.equal(call580.underConId, SPY_CONID);
    assert.equal(call580.underSymbol, 'SPY');
    assert.equal(call580.underSecType, 'STK');
    assert.equal(call580.realExpirationDate, '20260106');
    assert.match(call580.tradingHours!, /^20260105:0930-20260105:1615;20260106:0930-20260106:1600$/);
    const conIds = new Set(all.details.map((d) => d.contract.conId));
    assert.equal(conIds.size, all.details.length, 'conIds are unique');

    const byConId = await requestDetails(s.ib, 2, { conId: call580.contract.conId, exchange: 'SMART' });
    assert.deepEqual(byConId.details.map((d) => d.contract.localSymbol), ['SPY   260106C00580000']);
    const bySymbol = await requestDetails(s.ib, 3, { secType: SecType.OPT, localSymbol: 'SPY   260106P00575000', exchange: 'SMART' });
    assert.deepEqual(bySymbol.details.map((d) => [d.contract.strike, d.contract.right]), [[575, 'P']]);
    const strikeOnly = await requestDetails(s.ib, 4, { ...option('20260106', 580, 'C'), right: undefined });
    assert.deepEqual(strikeOnly.details.map((d) => d.contract.right), ['C', 'P']);
    // IB's own clients send 0.0 for an unset strike: treated as unset.
    const zeroStrike = await requestDetails(s.ib, 5, { ...option('20260106', 0, 'P') });
    assert.equal(zeroStrike.details.length, expiry.strikes.length);

    assert.deepEqual((await requestDetails(s.ib, 6, option(TODAY, 200, 'P'))).errors, [200], 'strike listed for monthlies only');
    assert.deepEqual((await requestDetails(s.ib, 7, option('20260110', 580, 'C'))).errors, [200], 'a Saturday');
    // The conIds are the same on another day and in another simulator.
    const other = new TwsSimulator({ seed: 7, clock: new ManualClock(0, Date.UTC(2026, 0, 6, 14, 30)) });
    assert.equal(other.options.listing.allExpiries[0], '20260106');
    assert.equal(other.options.listing.bySymbol('SPY   260106C00580000')?.conId, call580.contract.conId);
  } finally {
    await s.stop();
  }
});

/** BSM at the decoded volatility and underlying, at the time to expiry now. */
function bsmAt(s: { clock: ManualClock; sim: TwsSimulator }, conId: number, c: Computation) {
  const contract = s.sim.options.listing.byId(conId)!;
  const T = (contract.expiryMs - s.clock.wallNow()) / MS_PER_YEAR;
  return bsmGreeks(contract.right === 'C' ? 1 : -1, c.und!, contract.strike, T, SPY_RATE, SPY_DIVIDEND_YIELD, c.iv!, newGreeks());
}

test('option lines: quotes and prints, and message 21 for ticks 10, 11, 12, 13 that match BSM at the surface volatility', async () => {
  const s = await start();
  try {
    const r = record(s.ib);
    const lines = [option(TODAY, 580, 'C'), option(TODAY, 580, 'P'), option('20260106', 575, 'P'), option('20260108', 590, 'C'), option('20260220', 560, 'P')];
    lines.forEach((contract, i) => s.ib.reqMktData(100 + i, contract, '', false, false));
    await s.advance(0);
    assert.deepEqual(s.errors, []);
    assert.ok(s.infos.includes(2104), 'the options farm is said to be OK on first use');
    for (let t = 0; t < 20; t++) await s.advance(500);
    assert.deepEqual(s.errors, []);
    for (const [i, contract] of lines.entries()) {
      const id = 100 + i;
      const conId = s.sim.options.listing.select(contract.lastTradeDateOrContractMonth, contract.strike, contract.right as 'C' | 'P')[0]!.conId;
      const bid = r.prices.get(id)!.get(1)!;
      const ask = r.prices.get(id)!.get(2)!;
      assert.ok(bid > 0 && ask > bid, `line ${id}: ${bid} x ${ask}`);
      assert.ok(ask - bid < 0.5, `line ${id}: spread ${ask - bid}`);
      const sizes = r.sizes.get(id)!;
      assert.ok(sizes.get(0)! > 0 && sizes.get(3)! > 0);
      const model = r.lastComputation(id, 13)!;
      const surface = s.sim.options.surfaceVol(conId);
      assert.ok(Math.abs(model.iv! - surface) < 0.005, `line ${id}: model vol ${model.iv} against the surface's ${surface}`);
      const spot = s.sim.options.state.spot;
      assert.ok(Math.abs(model.und! - spot) < 0.05, `underlying ${model.und} against ${spot}`);
      const expected = bsmAt(s, conId, model);
      for (const key of ['price', 'delta', 'gamma', 'vega', 'theta'] as const) {
        const got = model[key === 'price' ? 'price' : key]!;
        assert.ok(Math.abs(got - expected[key]) < 0.01, `line ${id} ${key}: ${got} against BSM's ${expected[key]}`);
      }
      assert.ok(model.pvDividend! >= 0 && model.pvDividend! < 5);
      const atBid = r.lastComputation(id, 10)!;
      assert.equal(atBid.price, bid);
      assert.ok(Math.abs(atBid.iv! - impliedVol(contract.right === OptionType.Call ? 1 : -1, bid, atBid.und!, contract.strike!, bsmYears(s, conId), SPY_RATE, SPY_DIVIDEND_YIELD)) < 1e-6);
      const atAsk = r.lastComputation(id, 11)!;
      assert.equal(atAsk.price, ask);
      assert.ok(atBid.iv! < model.iv! && model.iv! < atAsk.iv!, `bid vol ${atBid.iv} < model ${model.iv} < ask vol ${atAsk.iv}`);
    }
    // Prints: near the money, within ten seconds, with their implied volatility.
    const printed = lines.map((_, i) => r.prices.get(100 + i)!.get(4)).filter((p) => p !== undefined);
    assert.ok(printed.length >= 1, 'some line printed');
    const withLast = lines.findIndex((_, i) => r.prices.get(100 + i)!.get(4) !== undefined);
    assert.ok(r.lastComputation(100 + withLast, 12)!.price === r.prices.get(100 + withLast)!.get(4));
    assert.ok(r.sizes.get(100 + withLast)!.get(8)! > 0, 'volume');
  } finally {
    await s.stop();
  }
});

test('the quotes: mids monotone in strike, spreads widest away from the money, sizes peaking at it, bids at least intrinsic', async () => {
  const s = await start();
  try {
    const strikes = [560, 565, 570, 575, 578, 579, 580, 581, 582, 585, 590, 595, 600];
    const lines = strikes.flatMap((k) => [option(TODAY, k, 'C'), option(TODAY, k, 'P')]);
    lines.forEach((contract, i) => s.ib.reqMktData(i + 1, contract, '', false, false));
    await s.advance(1_000);
    assert.deepEqual(s.errors, []);
    const S = s.sim.options.state.spot;
    for (const right of ['C', 'P'] as const) {
      const quotes = strikes.map((k) => ({ k, ...s.sim.options.quoteOf(s.sim.options.listing.select(TODAY, k, right)[0]!.conId)! }));
      const mids = quotes.map((q) => (q.bid + q.ask) / 2);
      for (let i = 1; i < mids.length; i++) assert.ok(right === 'C' ? mids[i]! <= mids[i - 1]! : mids[i]! >= mids[i - 1]!, `${right} mids in strike`);
      for (const q of quotes) {
        assert.ok(q.bid >= 0 && q.ask >= 0.01 && q.ask > q.bid && Math.abs(q.bid * 100 - Math.round(q.bid * 100)) < 1e-9);
        const intrinsic = right === 'C' ? S - q.k : q.k - S;
        if (intrinsic > 0) assert.ok(q.bid >= Math.floor(intrinsic * 100) / 100, `${right} ${q.k}: bid ${q.bid} under intrinsic ${intrinsic}`);
      }
      const atm = quotes.find((q) => q.k === 580)!;
      const relative = (q: (typeof quotes)[number]) => (q.ask - q.bid) / ((q.ask + q.bid) / 2);
      const otm = right === 'C' ? quotes.at(-1)! : quotes[0]!;
      const itm = right === 'C' ? quotes[0]! : quotes.at(-1)!;
      assert.ok(relative(otm) > relative(atm), `${right}: out of the money is relatively wider`);
      assert.ok(itm.ask - itm.bid > atm.ask - atm.bid, `${right}: in the money is wider in cents`);
      assert.ok(atm.bidSize + atm.askSize > otm.bidSize + otm.askSize, `${right}: sizes peak at the money`);
    }
  } finally {
    await s.stop();
  }
});

function bsmYears(s: { clock: ManualClock; sim: TwsSimulator }, conId: number): number {
  return (s.sim.options.listing.byId(conId)!.expiryMs - s.clock.wallNow()) / MS_PER_YEAR;
}

test('−1 and −2 where nothing can be computed: a zero bid, and lines whose underlying is not subscribed (10090)', async () => {
  const s = await start();
  try {
    const r = record(s.ib);
    s.ib.reqMktData(1, option(TODAY, 470, 'P'), '', false, false);
    await s.advance(300);
    assert.equal(r.prices.get(1)!.get(1), 0, 'far out of the money: no bid');
    const atBid = r.lastComputation(1, 10)!;
    assert.deepEqual([atBid.iv, atBid.delta, atBid.gamma, atBid.vega, atBid.theta], [undefined, undefined, undefined, undefined, undefined]);
    assert.equal(atBid.price, 0);
    assert.ok(atBid.und! > 500);

    s.sim.faults.permission('SPY', 'none');
    s.ib.reqMktData(2, option(TODAY, 580, 'C'), '', false, false);
    await s.advance(300);
    assert.deepEqual(s.errors.map((e) => [e.reqId, e.code]), [[2, 10090]]);
    assert.ok(r.prices.get(2)!.get(1)! > 0, 'the option quotes still come');
    const model = r.lastComputation(2, 13)!;
    assert.deepEqual(Object.values(model).slice(1), [undefined, undefined, undefined, undefined, undefined, undefined, undefined, undefined]);
    const atAsk = r.lastComputation(2, 11)!;
    assert.equal(atAsk.und, undefined);
    assert.equal(atAsk.iv, undefined);
  } finally {
    await s.stop();
  }
});

test('generic ticks 100, 101, 104, 106 on an option line and on SPY', async () => {
  const s = await start();
  try {
    const r = record(s.ib);
    s.ib.reqMktData(1, option(TODAY, 580, 'P'), '100,101,104,106', false, false);
    s.ib.reqMktData(2, SPY, '100,101,104,106', false, false);
    await s.advance(2_000);
    assert.deepEqual(s.errors, []);
    const line = r.sizes.get(1)!;
    assert.ok(line.get(28)! > 0, 'put open interest');
    assert.ok(line.has(30), 'put volume');
    assert.equal(line.has(27), false);
    assert.ok(r.generics.get(1)!.get(23)! > 0 && r.generics.get(1)!.get(24)! > 0.05);
    const spy = r.sizes.get(2)!;
    for (const type of [27, 28, 29, 30]) assert.ok(spy.get(type)! > 0, `SPY tick ${type}`);
    assert.ok(spy.get(28)! > 100_000, 'the whole chain\'s put open interest');
    const iv30 = r.generics.get(2)!.get(24)!;
    assert.ok(iv30 > 0.08 && iv30 < 0.3, `30-day IV ${iv30}`);
  } finally {
    await s.stop();
  }
});

test('delayed data: 10167, then 58 and the delayed tick types (66/67, 80/81/83); without reqMarketDataType 354', async () => {
  const s = await start();
  try {
    const r = record(s.ib);
    s.sim.faults.optionPermission('delayed');
    s.ib.reqMktData(1, option(TODAY, 580, 'C'), '', false, false);
    await s.advance(0);
    assert.deepEqual(s.errors.map((e) => [e.reqId, e.code]), [[1, 354]]);
    s.ib.reqMarketDataType(3);
    s.ib.reqMktData(2, option(TODAY, 580, 'C'), '', false, false);
    await s.advance(500);
    assert.deepEqual(s.errors.map((e) => [e.reqId, e.code]), [[1, 354], [2, 10167]]);
    assert.deepEqual(r.dataTypes, [[2, 3]]);
    const prices = r.prices.get(2)!;
    assert.ok(prices.get(66)! > 0 && prices.get(67)! > prices.get(66)!);
    assert.equal(prices.has(1), false);
    const types = new Set(r.computations.get(2)!.map((c) => c.tickType));
    assert.ok(types.has(80) && types.has(81) && types.has(83) && !types.has(13));
    s.sim.faults.optionPermission('none');
    s.ib.reqMktData(3, option(TODAY, 581, 'C'), '', false, false);
    await s.advance(0);
    assert.deepEqual(s.errors.at(-1), { code: 354, reqId: 3, message: s.errors.at(-1)!.message });
    // A live line on a client that asked for a type is told it is live.
    s.sim.faults.optionPermission('live');
    s.ib.reqMktData(4, option(TODAY, 582, 'C'), '', false, false);
    await s.advance(0);
    assert.deepEqual(r.dataTypes.at(-1), [4, 1]);
  } finally {
    await s.stop();
  }
});

test('calculateOptionPrice and calculateImpliedVolatility answer with tick 53; no volatility below intrinsic value', async () => {
  const s = await start();
  try {
    const r = record(s.ib);
    const contract = option('20260108', 585, 'P');
    s.ib.calculateOptionPrice(1, contract, 0.2, 580);
    await s.advance(0);
    const priced = r.lastComputation(1, 53)!;
    const T = bsmYears(s, s.sim.options.listing.select('20260108', 585, 'P')[0]!.conId);
    assert.ok(Math.abs(priced.price! - bsmPrice(-1, 580, 585, T, SPY_RATE, SPY_DIVIDEND_YIELD, 0.2)) < 1e-9);
    assert.equal(priced.iv, 0.2);
    assert.equal(priced.und, 580);
    s.ib.calculateImpliedVolatility(2, contract, priced.price!, 580);
    await s.advance(0);
    const implied = r.lastComputation(2, 53)!;
    assert.ok(Math.abs(implied.iv! - 0.2) < 1e-9, `${implied.iv}`);
    assert.ok(Math.abs(implied.delta! - priced.delta!) < 1e-9);
    s.ib.calculateImpliedVolatility(3, contract, 1, 570);
    await s.advance(0);
    const below = r.lastComputation(3, 53)!;
    assert.deepEqual([below.iv, below.delta, below.price, below.und], [undefined, undefined, 1, 570]);
    s.ib.calculateImpliedVolatility(4, option(TODAY, 200, 'P'), 1, 570);
    await s.advance(0);
    assert.deepEqual(s.errors.map((e) => [e.reqId, e.code]), [[4, 200]]);
  } finally {
    await s.stop();
  }
});

test("IB's errors on option lines: 321, 200, 322, 10197, and 101 beyond the budget shared with stocks", async () => {
  const s = await start({ limits: { marketDataLines: 3 } });
  try {
    s.ib.reqMktData(1, { ...option(TODAY, 580, 'C'), strike: undefined }, '', false, false);
    s.ib.reqMktData(2, { symbol: 'SPY', secType: SecType.OPT, exchange: 'SMART', currency: 'USD' }, '', false, false);
    s.ib.reqMktData(3, option(TODAY, 580.5, 'C'), '', false, false);
    s.ib.reqMktData(4, SPY, '', false, false);
    s.ib.reqMktData(4, option(TODAY, 580, 'C'), '', false, false);
    s.ib.reqMktData(5, option(TODAY, 580, 'C'), '', false, false);
    s.ib.reqMktData(6, option(TODAY, 580, 'P'), '', false, false);
    s.ib.reqMktData(7, option(TODAY, 581, 'P'), '', false, false);
    s.ib.reqMktData(8, { ...SPY, symbol: 'QQQ' }, '', false, false);
    s.ib.reqMktData(9, option(TODAY, 580, 'C'), '100', true, false);
    await s.advance(0);
    assert.deepEqual(
      s.errors.map((e) => [e.reqId, e.code]),
      [[1, 321], [2, 321], [3, 200], [4, 322], [7, 101], [8, 101], [9, 321]],
    );
    s.ib.cancelMktData(6);
    s.ib.reqMktData(10, { ...SPY, symbol: 'QQQ' }, '', false, false);
    await s.advance(0);
    assert.equal(s.errors.length, 7, 'a cancelled option line frees its line for a stock');
    s.sim.marketData.competingLiveSession = true;
    s.ib.cancelMktData(5);
    s.ib.reqMktData(11, option(TODAY, 579, 'C'), '', false, false);
    s.ib.cancelMktData(10);
    s.ib.reqMktData(12, SPY, '', false, false);
    await s.advance(0);
    assert.deepEqual(s.errors.slice(7).map((e) => [e.reqId, e.code]), [[11, 10197], [12, 10197]]);
  } finally {
    await s.stop();
  }
});

test('a snapshot: the quotes and computations, then TICK_SNAPSHOT_END, and no line held', async () => {
  const s = await start({ limits: { marketDataLines: 1 } });
  try {
    const r = record(s.ib);
    const ended = new Promise((resolve) => s.ib.once(EventName.tickSnapshotEnd, resolve));
    s.ib.reqMktData(1, option(TODAY, 580, 'C'), '', true, false);
    assert.equal(await ended, 1);
    assert.ok(r.prices.get(1)!.get(1)! > 0 && r.lastComputation(1, 13)!.iv! > 0);
    s.ib.reqMktData(2, option(TODAY, 580, 'P'), '', false, false);
    await s.advance(0);
    assert.deepEqual(s.errors, []);
  } finally {
    await s.stop();
  }
});

/** The first `count` option messages a client receives (ticks and computations), hashed. */
async function firstOptionMessages(seed: number, count: number): Promise<string> {
  const s = await start({ seed });
  try {
    const messages = hashMessages(s.ib, count, (tokens) => ['1', '2', '21'].includes(tokens[0]!));
    for (const [i, k] of [578, 580, 582].entries()) s.ib.reqMktData(i + 1, option(TODAY, k, i % 2 ? 'P' : 'C'), '', false, false);
    while (messages.seen() < count) await s.advance(1_000);
    return messages.digest();
  } finally {
    await s.stop();
  }
}

test('the chain is deterministic under the seed', async () => {
  const first = await firstOptionMessages(42, 500);
  assert.equal(await firstOptionMessages(42, 500), first);
  assert.notEqual(await firstOptionMessages(43, 500), first);
});

test('faults: the options farm (2103/2104 usopt), a stale chain and crossed quotes, over the control API', async () => {
  const s = await start();
  const control = await startControlServer(s.sim);
  const post = async (path: string) => {
    const res = await fetch(`${control.url}faults/${path}`, { method: 'POST' });
    assert.equal(res.status, 200, await res.clone().text());
    return res.json();
  };
  try {
    const r = record(s.ib);
    s.ib.reqMktData(1, option(TODAY, 580, 'C'), '', false, false);
    s.ib.reqMktData(9, SPY, '', false, false);
    await s.advance(500);
    const farmInfos = s.infos.length;

    await post('options-farm?restoreAfterMs=1000');
    await s.advance(0);
    assert.deepEqual(s.infos.slice(farmInfos), [2103]);
    const before = r.ticks(1);
    await s.advance(900);
    assert.equal(r.ticks(1), before, 'nothing on option lines while usopt is down');
    await s.advance(200);
    assert.deepEqual(s.infos.slice(farmInfos), [2103, 2104]);
    assert.ok(r.ticks(1) > before, 'the lines are sent afresh');

    await post('options-stale?enabled=true');
    await s.advance(0);
    const stale = r.ticks(1);
    const stockBefore = r.ticks(9);
    await s.advance(3_000);
    assert.equal(r.ticks(1), stale, 'a stale chain sends nothing, without an error');
    assert.ok(r.ticks(9) > stockBefore, 'stocks go on');
    assert.equal(((await (await fetch(`${control.url}status`)).json()) as { faults: { optionsStale: boolean } }).faults.optionsStale, true);
    await post('options-stale?enabled=false');
    await s.advance(200);
    assert.ok(r.ticks(1) > stale);

    await post('options-crossed?enabled=true');
    await s.advance(500);
    const prices = r.prices.get(1)!;
    assert.ok(prices.get(1)! > prices.get(2)!, `crossed: ${prices.get(1)} x ${prices.get(2)}`);
    await post('options-crossed?enabled=false');
    await s.advance(500);
    assert.ok(prices.get(1)! < prices.get(2)!);

    await post('options-permission?level=none');
    s.ib.reqMktData(2, option(TODAY, 579, 'C'), '', false, false);
    await s.advance(0);
    await post('competing-session?enabled=true');
    s.ib.reqMktData(3, option(TODAY, 578, 'C'), '', false, false);
    await s.advance(0);
    assert.deepEqual(s.errors.map((e) => [e.reqId, e.code]), [[2, 354], [3, 10197]]);
  } finally {
    await control.close();
    await s.stop();
  }
});

test('a client that asks for no options hears nothing of usopt', async () => {
  const s = await start();
  try {
    s.ib.reqMktData(1, SPY, '', false, false);
    await s.advance(200);
    assert.deepEqual(s.infos, [2104, 2106, 2158]);
  } finally {
    await s.stop();
  }
});

test('at server version 176 option contract details and computations decode cleanly too', async () => {
  const s = await start({ serverVersion: 176 });
  try {
    assert.equal(s.ib.serverVersion, 176);
    const r = record(s.ib);
    const d = await requestDetails(s.ib, 1, option('20260107', 580, 'P'));
    assert.deepEqual(d.errors, []);
    assert.equal(d.details[0]!.contract.localSymbol, 'SPY   260107P00580000');
    assert.equal(d.details[0]!.contract.lastTradeDate, undefined);
    assert.equal(d.details[0]!.realExpirationDate, '20260107');
    s.ib.reqMktData(2, { conId: d.details[0]!.contract.conId, exchange: 'SMART' }, '', false, false);
    await s.advance(300);
    assert.deepEqual(s.errors, []);
    assert.ok(r.lastComputation(2, 13)!.delta! < -0.3);
  } finally {
    await s.stop();
  }
});
