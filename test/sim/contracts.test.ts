/** Contract details from the simulator, decoded by the unmodified @stoqey/ib client at server versions 193 and 176. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EventName, IBApi, SecType, type Contract, type ContractDetails } from '@stoqey/ib';
import { TwsSimulator } from '../../src/sim/server.js';

async function withClient(serverVersion: number, body: (ib: IBApi) => Promise<void>): Promise<void> {
  const sim = new TwsSimulator({ serverVersion, syntheticInstruments: 5 });
  const port = await sim.listen(0);
  const ib = new IBApi({ host: '127.0.0.1', port });
  const ready = new Promise((resolve) => ib.once(EventName.nextValidId, resolve));
  ib.connect(1);
  await ready;
  try {
    await body(ib);
  } finally {
    ib.disconnect();
    await sim.close();
  }
}

interface Answer {
  details: ContractDetails[];
  errors: { code: number; message: string }[];
}

/** Requests details and collects them until the end marker or an error for that request. */
function requestDetails(ib: IBApi, reqId: number, contract: Contract): Promise<Answer> {
  const answer: Answer = { details: [], errors: [] };
  return new Promise((resolve) => {
    ib.on(EventName.contractDetails, (id: number, d: ContractDetails) => id === reqId && answer.details.push(d));
    ib.on(EventName.contractDetailsEnd, (id: number) => id === reqId && resolve(answer));
    ib.on(EventName.error, (err: Error, code: number, id: number) => {
      answer.errors.push({ code, message: err.message });
      if (id === reqId || code === 505) resolve(answer);
    });
    ib.reqContractDetails(reqId, contract);
  });
}

for (const version of [193, 176]) {
  test(`contract details decode cleanly at server version ${version}`, async () => {
    await withClient(version, async (ib) => {
      assert.equal(ib.serverVersion, version);
      const aapl = await requestDetails(ib, 1, { symbol: 'AAPL', secType: SecType.STK, exchange: 'SMART', currency: 'USD' });
      assert.deepEqual(aapl.errors, []);
      assert.equal(aapl.details.length, 1);
      const d = aapl.details[0]!;
      assert.equal(d.contract.symbol, 'AAPL');
      assert.equal(d.contract.conId, 265598);
      assert.equal(d.contract.primaryExch, 'NASDAQ');
      assert.equal(d.longName, 'APPLE INC');
      assert.equal(d.minTick, 0.01);
      assert.equal(d.stockType, 'COMMON');
      assert.equal(d.suggestedSizeIncrement, 100);

      const spy = await requestDetails(ib, 2, { conId: 756733, exchange: 'SMART' });
      assert.equal(spy.details[0]?.contract.symbol, 'SPY');

      const synthetic = await requestDetails(ib, 3, { symbol: 'SYN0005', secType: SecType.STK, exchange: 'SMART', currency: 'USD' });
      assert.equal(synthetic.details[0]?.contract.conId, 900_000_005);
    });
  });
}

test('an unknown contract gets error 200 on its request id', async () => {
  await withClient(193, async (ib) => {
    const answer = await requestDetails(ib, 9, { symbol: 'NOPE', secType: SecType.STK, exchange: 'SMART', currency: 'USD' });
    assert.deepEqual(answer.details, []);
    assert.deepEqual(answer.errors.map((e) => e.code), [200]);
    assert.match(answer.errors[0]!.message, /No security definition/);
  });
});

test('a server version outside 176..193 is refused', () => {
  assert.throws(() => new TwsSimulator({ serverVersion: 175 }), /server version must be from 176 to 193, got 175/);
  assert.throws(() => new TwsSimulator({ serverVersion: 201 }), RangeError);
});
