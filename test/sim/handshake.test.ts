/** The unmodified @stoqey/ib client against the simulator: handshake and the first messages. */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import { EventName, IBApi } from '@stoqey/ib';
import { TwsSimulator } from '../../src/sim/server.js';
import { encodeMessage } from '../../src/sim/wire.js';
import { nextEvent } from '../support/ib-client.js';
import { runKeel } from '../support/process.js';

let sim: TwsSimulator;
let port: number;

before(async () => {
  sim = new TwsSimulator({ accounts: ['DU1234567', 'DU7654321'], firstOrderId: 1000 });
  port = await sim.listen(0);
});
after(() => sim.close());

/** Connects a real client and collects what the simulator says after startApi. */
async function connectClient(clientId: number) {
  const ib = new IBApi({ host: '127.0.0.1', port });
  const infos: number[] = [];
  const errors: number[] = [];
  ib.on(EventName.info, (_msg: string, code: number) => infos.push(code));
  ib.on(EventName.error, (_err: Error, code: number) => errors.push(code));
  const farmsReported = new Promise<void>((resolve) => ib.on(EventName.info, (_m: string, code: number) => code === 2158 && resolve()));
  const accounts = nextEvent(ib, EventName.managedAccounts);
  const nextId = nextEvent(ib, EventName.nextValidId);
  ib.connect(clientId);
  return { ib, infos, errors, accounts, nextId, farmsReported };
}

test('handshake at server version 193: managed accounts, next valid id, farm status', async () => {
  const c = await connectClient(7);
  assert.deepEqual(await c.accounts, ['DU1234567,DU7654321']);
  assert.deepEqual(await c.nextId, [1000]);
  assert.equal(c.ib.serverVersion, 193);
  await c.farmsReported;
  assert.deepEqual(c.infos, [2104, 2106, 2158]);
  assert.deepEqual(c.errors, []);
  assert.deepEqual(sim.clientIds, [7]);

  const time = nextEvent(c.ib, EventName.currentTime);
  c.ib.reqCurrentTime();
  const [seconds] = (await time) as [number];
  assert.ok(Math.abs(seconds - Date.now() / 1000) < 5);
  c.ib.disconnect();
});

test('a second connection with a client id in use gets 326 and is closed', async () => {
  const first = await connectClient(11);
  await first.nextId;
  const ib = new IBApi({ host: '127.0.0.1', port });
  const rejected = new Promise<number>((resolve) => ib.on(EventName.info, (_m: string, code: number) => code === 326 && resolve(code)));
  const closed = nextEvent(ib, EventName.disconnected);
  ib.connect(11);
  assert.equal(await rejected, 326);
  await closed;
  assert.deepEqual(sim.clientIds.filter((id) => id === 11), [11]);
  first.ib.disconnect();
});

test('bytes that are not TWS framing close that connection and nothing else', async () => {
  const healthy = await connectClient(21);
  await healthy.nextId;
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  socket.write('GET / HTTP/1.1\r\n\r\n');
  await once(socket, 'close');
  // A well-framed message after a bad greeting is refused the same way.
  const second = connect(port, '127.0.0.1');
  await once(second, 'connect');
  second.write(Buffer.concat([Buffer.from('API\0'), encodeMessage(['not a version'])]));
  await once(second, 'close');
  const time = nextEvent(healthy.ib, EventName.currentTime);
  healthy.ib.reqCurrentTime();
  await time;
  healthy.ib.disconnect();
});

test('keel sim runs on its own and a plain IBApi client connects to it', async () => {
  const keel = runKeel(['sim', '--port', '0']);
  const line = await keel.waitFor('TWS simulator listening');
  const simPort = (JSON.parse(line) as { port: number }).port;
  const ib = new IBApi({ host: '127.0.0.1', port: simPort });
  const nextId = nextEvent(ib, EventName.nextValidId);
  ib.connect(3);
  assert.deepEqual(await nextId, [1]);
  ib.disconnect();
  keel.child.kill('SIGTERM');
  assert.equal(await keel.exited, 0);
});
