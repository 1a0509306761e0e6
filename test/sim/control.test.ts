/** The simulator's HTTP control API, with a real @stoqey/ib client watching the faults arrive. */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, test } from 'node:test';
import { EventName, OrderAction, OrderType, SecType } from '@stoqey/ib';
import { MAX_BODY_BYTES, startControlServer, type ControlServer } from '../../src/sim/control.js';
import { TwsSimulator } from '../../src/sim/server.js';
import { connectClient, nextEvent, until } from '../support/ib-client.js';

let sim: TwsSimulator;
let port: number;
let control: ControlServer;

before(async () => {
  sim = new TwsSimulator();
  port = await sim.listen(0);
  control = await startControlServer(sim, { port: 0 });
});
after(async () => {
  await control.close();
  await sim.close();
});

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Record<string, unknown>;
}

/** One HTTP request to the control server; the answer's body must be JSON. */
function call(method: string, path: string, body?: Buffer, chunks = 1): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: control.port, method, path }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        assert.match(String(res.headers['content-type']), /^application\/json/);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown> });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    // More than one chunk: the body goes chunked, with no Content-Length to refuse it by.
    const size = body ? Math.ceil(body.length / chunks) : 0;
    for (let i = 1; i < chunks; i++) req.write(body!.subarray((i - 1) * size, i * size));
    req.end(body?.subarray((chunks - 1) * size));
  });
}

test('POST /faults/farm: the client sees 2103, then 2104 once restoreAfterMs has passed', async () => {
  const c = await connectClient(port, 1);
  await until(() => c.infos.includes(2158), 'the farm status after connecting');
  const before = c.infos.length;
  const answer = await call('POST', '/faults/farm?restoreAfterMs=50');
  assert.equal(answer.status, 200);
  assert.deepEqual(answer.body, { ok: true, fault: 'farm' });
  await until(() => c.infos.length >= before + 2, '2103 and 2104');
  assert.deepEqual(c.infos.slice(before), [2103, 2104]);
  c.ib.disconnect();
  await until(() => sim.sessions.size === 0, 'the client to be gone');
});

test('GET /status shows each connected client with its feeds', async () => {
  const c = await connectClient(port, 3);
  c.ib.reqMktData(42, { symbol: 'SPY', secType: 'STK' as never, exchange: 'SMART', currency: 'USD' }, '', false, false);
  await until(() => [...sim.sessions].some((s) => sim.marketData.feedsOf(s).length > 0), 'the SPY feed');
  const { status, body } = await call('GET', '/status');
  assert.equal(status, 200);
  assert.equal(body.serverVersion, 193);
  assert.deepEqual(body.clientIds, [3]);
  const sessions = body.sessions as { clientId: number; feeds: unknown[] }[];
  assert.deepEqual(
    sessions.find((s) => s.clientId === 3)?.feeds,
    [{ reqId: 42, kind: 'quotes', symbol: 'SPY', silent: false }],
  );
  assert.equal(body.executions, sim.broker.executions.length);
  assert.deepEqual((body.faults as Record<string, unknown>).duplicateExecutions, false);
  c.ib.disconnect();
  await until(() => sim.sessions.size === 0, 'the client to be gone');
});

test('POST /faults/drop: the client is disconnected', async () => {
  const c = await connectClient(port, 5);
  const disconnected = nextEvent(c.ib, EventName.disconnected);
  const answer = await call('POST', '/faults/drop');
  assert.equal(answer.status, 200);
  assert.deepEqual(answer.body, { ok: true, fault: 'drop', dropped: 1 });
  await disconnected;
  await until(() => sim.sessions.size === 0, 'the session to close');
  assert.deepEqual((await call('GET', '/status')).body.clientIds, []);
});

test('POST /faults/slow and /faults/reject-client change the simulator; GET / lists the endpoints', async () => {
  assert.equal((await call('POST', '/faults/slow?delayMs=20')).status, 200);
  assert.equal(sim.delayMs, 20);
  assert.equal((await call('POST', '/faults/slow?delayMs=0')).status, 200);
  assert.equal(sim.delayMs, 0);
  assert.equal((await call('POST', '/faults/reject-client?clientId=9')).status, 200);
  assert.ok(sim.rejectedClientIds.has(9));
  // A planted drift changes how the symbol's market moves, until 'normal'.
  const spy = sim.marketData.market.book(sim.instruments.find(0, 'SPY', 'STK')!);
  assert.equal((await call('POST', '/faults/drift?symbol=SPY&kind=flip')).status, 200);
  assert.deepEqual(spy.dynamics, { volatilityScale: 1, resting: 'away' });
  assert.equal((await call('POST', '/faults/drift?symbol=SPY&kind=volatile')).status, 200);
  assert.deepEqual(spy.dynamics, { volatilityScale: 2, resting: 'toward' });
  assert.equal((await call('POST', '/faults/drift?symbol=SPY&kind=normal')).status, 200);
  assert.deepEqual(spy.dynamics, { volatilityScale: 1, resting: 'toward' });
  assert.equal((await call('POST', '/faults/drift?symbol=SPY&kind=sideways')).status, 400);
  const silenced = await call('POST', '/faults/silence?symbol=qqq');
  assert.deepEqual(silenced.body, { ok: true, fault: 'silence', feeds: 0 });

  for (const path of ['/', '/help']) {
    const help = await call('GET', path);
    assert.equal(help.status, 200);
    const endpoints = (help.body.endpoints as { method: string; path: string }[]).map((e) => `${e.method} ${e.path}`);
    assert.ok(endpoints.includes('POST /faults/connectivity'));
    assert.ok(endpoints.includes('GET /status'));
  }
});

test('broker faults: late order news lets a fill arrive before its order, duplicate executions send each one twice; GET /executions and /orders read the broker back', async () => {
  const c = await connectClient(port, 7);
  const seen: string[] = [];
  const execIds: string[] = [];
  c.ib.on(EventName.openOrder, () => seen.push('openOrder'));
  c.ib.on(EventName.execDetails, (_reqId: number, _contract: unknown, e: { execId?: string }) => {
    seen.push('execDetails');
    execIds.push(e.execId ?? '');
  });
  assert.deepEqual((await call('POST', '/faults/late-order-news?delayMs=200')).body, { ok: true, fault: 'late-order-news' });
  assert.deepEqual((await call('POST', '/faults/duplicate-executions?enabled=true')).body, { ok: true, fault: 'duplicate-executions' });
  const faults = (await call('GET', '/status')).body.faults as Record<string, unknown>;
  assert.equal(faults.orderNewsDelayMs, 200);
  assert.equal(faults.duplicateExecutions, true);

  const spy = { symbol: 'SPY', secType: SecType.STK, exchange: 'SMART', currency: 'USD' };
  c.ib.placeOrder(c.firstId, spy, { action: OrderAction.BUY, orderType: OrderType.MKT, totalQuantity: 10, orderRef: 'control-test.1', transmit: true });
  await until(() => seen.includes('openOrder') && execIds.length >= 2, 'the fill, twice, and the late order news');
  assert.equal(seen[0], 'execDetails', 'the fill came before its order');
  assert.equal(execIds[0], execIds[1], 'the same execution, reported twice');

  const { body } = await call('GET', '/executions');
  const ours = (body.executions as { execId: string; orderRef: string; symbol: string; side: string }[]).filter((e) => e.orderRef === 'control-test.1');
  assert.ok(ours.length >= 1);
  assert.equal(body.count, sim.broker.executions.length, 'the broker keeps each execution once, however often it reports it');
  assert.deepEqual(new Set(ours.map((e) => e.execId)), new Set(execIds));
  assert.deepEqual([ours[0]!.symbol, ours[0]!.side], ['SPY', 'BOT']);
  const order = ((await call('GET', '/orders')).body.orders as { orderRef: string; status: string; filled: number }[]).find((o) => o.orderRef === 'control-test.1');
  assert.deepEqual(order && [order.status, order.filled], ['Filled', 10]);

  assert.equal((await call('POST', '/faults/late-order-news?delayMs=0')).status, 200);
  assert.equal((await call('POST', '/faults/duplicate-executions?enabled=false')).status, 200);
  assert.equal(sim.broker.orderNewsDelayMs, 0);
  assert.equal(sim.broker.duplicateExecutions, false);
  const bad = await call('POST', '/faults/duplicate-executions?enabled=twice');
  assert.equal(bad.status, 400);
  assert.equal(bad.body.error, "bad enabled: expected true or false, got 'twice'");
  const tooLate = await call('POST', '/faults/late-order-news?delayMs=600001');
  assert.equal(tooLate.status, 400);
  assert.equal(tooLate.body.error, "bad delayMs: expected a whole number of ms from 0 to 600000, got '600001'");
  c.ib.disconnect();
  await until(() => sim.sessions.size === 0, 'the client to be gone');
});

test('malformed requests get a JSON error naming what is wrong, and the server keeps running', async () => {
  const missing = await call('POST', '/faults/farm');
  assert.equal(missing.status, 400);
  assert.equal(missing.body.parameter, 'restoreAfterMs');
  assert.equal(missing.body.error, 'missing restoreAfterMs: expected a whole number of ms from 0 to 86400000');

  const invalid = await call('POST', '/faults/connectivity?restoreAfterMs=-5&dataLost=true');
  assert.equal(invalid.status, 400);
  assert.equal(invalid.body.error, "bad restoreAfterMs: expected a whole number of ms from 0 to 86400000, got '-5'");

  const notBoolean = await call('POST', '/faults/connectivity?restoreAfterMs=5&dataLost=yes');
  assert.equal(notBoolean.status, 400);
  assert.equal(notBoolean.body.error, "bad dataLost: expected true or false, got 'yes'");

  const unknownSymbol = await call('POST', '/faults/silence?symbol=NOPE');
  assert.equal(unknownSymbol.status, 400);
  assert.equal(unknownSymbol.body.parameter, 'symbol');
  assert.match(String(unknownSymbol.body.error), /^bad symbol: expected a symbol of the simulator .* got 'NOPE'$/);

  const unknownParameter = await call('POST', '/faults/slow?delay=5');
  assert.equal(unknownParameter.status, 400);
  assert.equal(unknownParameter.body.error, "unknown parameter 'delay' for /faults/slow: it takes delayMs");

  const notFound = await call('POST', '/faults/earthquake');
  assert.equal(notFound.status, 404);
  assert.equal(notFound.body.error, 'no endpoint /faults/earthquake');

  const wrongMethod = await call('GET', '/faults/drop');
  assert.equal(wrongMethod.status, 405);
  assert.equal(wrongMethod.headers.allow, 'POST');
  assert.equal(wrongMethod.body.error, 'GET is not allowed on /faults/drop; use POST');

  const tooLarge = await call('POST', '/faults/drop', Buffer.alloc(MAX_BODY_BYTES + 1, 'x'));
  assert.equal(tooLarge.status, 413);
  assert.equal(tooLarge.body.error, `request body too large: at most ${MAX_BODY_BYTES} bytes (parameters go in the query string)`);
  const tooLargeChunked = await call('POST', '/faults/drop', Buffer.alloc(MAX_BODY_BYTES + 1, 'x'), 3);
  assert.equal(tooLargeChunked.status, 413);

  const paramsInTheBody = await call('POST', '/faults/farm', Buffer.from('restoreAfterMs=50'));
  assert.equal(paramsInTheBody.status, 400);
  assert.match(String(paramsInTheBody.body.error), /^missing restoreAfterMs: .* \(parameters go in the query string; the body is ignored\)$/);

  // None of those did anything, and the server still answers.
  assert.equal(sim.marketData.paused, false);
  const status = await call('GET', '/status');
  assert.equal(status.status, 200);
  assert.equal(status.body.serverVersion, 193);
});

test('POST /faults/bad-execution: after the next real execution, one report TWS should never send, for the same order; the broker keeps only the real one', async () => {
  const c = await connectClient(port, 11);
  const reports: { symbol: string; execId: string; shares: number | undefined; price: number | undefined; orderRef: string | undefined }[] = [];
  const commissions = new Map<string, number | undefined>();
  c.ib.on(EventName.execDetails, (_reqId: number, contract: { symbol?: string }, e: { execId?: string; shares?: number; price?: number; orderRef?: string }) => {
    reports.push({ symbol: contract.symbol ?? '', execId: e.execId ?? '', shares: e.shares, price: e.price, orderRef: e.orderRef });
  });
  c.ib.on(EventName.commissionReport, (r: { execId?: string; commission?: number }) => commissions.set(r.execId ?? '', r.commission));
  const spy = { symbol: 'SPY', secType: SecType.STK, exchange: 'SMART', currency: 'USD' };
  const expected: Record<string, (real: (typeof reports)[number], bad: (typeof reports)[number], remaining: number) => void> = {
    'price-not-a-number': (real, bad) => {
      assert.equal(bad.symbol, 'SPY');
      assert.ok(Number.isNaN(bad.price), `price ${bad.price}: the field read 'abc'`);
      assert.equal(bad.shares, real.shares);
    },
    'wrong-symbol': (_real, bad) => assert.deepEqual([bad.symbol, bad.shares, bad.price], ['TSLA', 1_000_000, 250]),
    overfill: (real, bad, remaining) => assert.deepEqual([bad.symbol, bad.shares, bad.price], ['SPY', remaining + 1, real.price]),
  };
  const heldBefore = sim.broker.positionOf('DU1234567', 'SPY')?.position ?? 0;
  let orderId = c.firstId;
  for (const kind of ['price-not-a-number', 'wrong-symbol', 'overfill']) {
    assert.deepEqual((await call('POST', `/faults/bad-execution?kind=${kind}`)).body, { ok: true, fault: 'bad-execution' });
    assert.equal(((await call('GET', '/status')).body.faults as Record<string, unknown>).badExecution, kind);
    const ref = `bad-test.${kind}`;
    const from = reports.length;
    const sent = sim.broker.badExecutionsSent;
    c.ib.placeOrder(orderId++, spy, { action: OrderAction.BUY, orderType: OrderType.MKT, totalQuantity: 10, orderRef: ref, transmit: true });
    await until(() => sim.broker.badExecutionsSent === sent + 1 && sim.broker.allOrders().some((o) => o.orderRef === ref && o.status === 'Filled'), `the ${kind} report`);
    await until(() => reports.filter((r) => r.orderRef === ref).length === sim.broker.executions.filter((e) => e.orderRef === ref).length + 1, 'every report of the order');
    const mine = reports.slice(from).filter((r) => r.orderRef === ref);
    // The real first execution, then the bad one, under an execId of its own.
    const [real, bad] = mine as [(typeof mine)[number], (typeof mine)[number]];
    const brokers = sim.broker.executions.filter((e) => e.orderRef === ref);
    assert.equal(real.execId, brokers[0]!.execId);
    assert.ok(!brokers.some((e) => e.execId === bad.execId), 'the broker does not count the bad report');
    expected[kind]!(real, bad, 10 - real.shares!);
    await until(() => commissions.has(bad.execId), 'a commission report for it too');
    assert.equal(((await call('GET', '/status')).body.faults as Record<string, unknown>).badExecution, null, 'once, then disarmed');
  }
  // The account holds the real fills only.
  assert.equal(sim.broker.positionOf('DU1234567', 'SPY')?.position, heldBefore + 30);
  assert.equal((await call('POST', '/faults/bad-execution?kind=off')).status, 200);
  const wrong = await call('POST', '/faults/bad-execution?kind=everything');
  assert.equal(wrong.status, 400);
  assert.equal(wrong.body.error, "bad kind: expected one of price-not-a-number, wrong-symbol, overfill, off, got 'everything'");
  c.ib.disconnect();
  await until(() => sim.sessions.size === 0, 'the client to be gone');
});

test("what keel doctor checks: POST /faults/accounts, /permission, /clock and /depth-limit change what the next requests get; GET /status shows them", async () => {
  const first = await connectClient(port, 11);
  const dropped = nextEvent(first.ib, EventName.disconnected);
  assert.deepEqual((await call('POST', '/faults/accounts?ids=U1234567,DU7654321')).body, { ok: true, fault: 'accounts', dropped: 1 });
  await dropped;
  await until(() => sim.sessions.size === 0, 'the client to be dropped');
  for (const fault of ['permission?symbol=AAPL&level=none', 'permission?symbol=QQQ&level=delayed', 'clock?offsetMs=-60000', 'depth-limit?slots=0']) {
    assert.equal((await call('POST', `/faults/${fault}`)).status, 200, fault);
  }
  const status = (await call('GET', '/status')).body;
  assert.deepEqual(status.accounts, ['U1234567', 'DU7654321']);
  const faults = status.faults as Record<string, unknown>;
  assert.deepEqual(faults.permissions, { AAPL: 'none', QQQ: 'delayed' });
  assert.equal(faults.clockOffsetMs, -60_000);
  assert.equal(faults.depthLimit, 0);

  const c = await connectClient(port, 12);
  const accounts = nextEvent(c.ib, EventName.managedAccounts);
  c.ib.reqManagedAccts();
  assert.deepEqual(await accounts, ['U1234567,DU7654321']);
  const time = nextEvent(c.ib, EventName.currentTime);
  c.ib.reqCurrentTime();
  const [seconds] = (await time) as [number];
  assert.ok(Math.abs(seconds * 1000 - (Date.now() - 60_000)) < 5_000, `TWS time ${seconds} is a minute behind`);
  const stock = (symbol: string) => ({ symbol, secType: SecType.STK, exchange: 'SMART', currency: 'USD' });
  c.ib.reqMktData(1, stock('AAPL'), '', false, false);
  c.ib.reqMktData(2, stock('QQQ'), '', false, false);
  c.ib.reqMarketDataType(3);
  c.ib.reqMktData(3, stock('QQQ'), '', false, false);
  c.ib.reqMktDepth(4, stock('SPY'), 5, false, []);
  await until(() => c.errors.length >= 4, 'an answer to each request');
  assert.deepEqual(
    c.errors.map((e) => [e.reqId, e.code]).sort(),
    [
      [1, 354],
      [2, 354],
      [3, 10167],
      [4, 309],
    ],
  );
  c.ib.disconnect();
  await until(() => sim.sessions.size === 0, 'the client to be gone');

  // As it was, for the tests after this one.
  sim.faults.login(['DU1234567']);
  for (const symbol of ['AAPL', 'QQQ']) sim.faults.permission(symbol, 'live');
  sim.faults.clockOffset(0);
  sim.faults.depthLimit(3);
  assert.equal((await call('POST', '/faults/accounts?ids=U1,bad-id')).status, 400);
  assert.equal((await call('POST', '/faults/permission?symbol=SPY&level=frozen')).status, 400);
});
