/**
 * `keel inspect`'s chain table in a real terminal: a real run (the
 * simulator's SPY chain priced by option_chain, the inspector on a free
 * port) in this process, the client in tmux (a private tmux server), the
 * screen read with capture-pane. Every wait polls against a deadline.
 */
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { chainPanel } from '../../src/inspector/chain-panel.js';
import { complete, startChainDaemon } from '../inspector/chain-daemon.js';
import { until } from '../support/ib-client.js';
import { tmuxServer } from '../support/tmux.js';

const socket = `keel-inspect-chain-${process.pid}`;

/** One full line of the table: a line mark, call bid ask IV% delta, the strike, put bid ask IV% delta, a line mark. */
const ROW = /^[●○◌×] +(\d+\.\d\d) +(\d+\.\d\d) +(\d+\.\d) +([+-]\d\.\d\d) +(\d+\.\d\d) +(\d+\.\d\d) +(\d+\.\d\d) +(\d+\.\d) +([+-]\d\.\d\d) [●○◌×]$/;

test('keel inspect shows the nearest expiry around the money: call bid/ask/IV/Δ | strike | put bid/ask/IV/Δ, the underlying and ATM IV', { timeout: 60_000 }, async (t) => {
  const term = tmuxServer(socket);
  const daemon = await startChainDaemon('inspect-chain');
  t.after(() => daemon.stop());
  t.after(() => term.kill());
  await until(() => complete(daemon.chain() && chainPanel(daemon.chain()!)), 'every contract live and priced', 20_000);

  term.session('chain', `${process.execPath} ${resolve('bin/keel.js')} inspect ${daemon.url} --token ''; sleep 600`);
  const rows = (text: string) => text.split('\n').map((l) => ROW.exec(l.trim())).filter((m) => m !== null);
  const screen = await term.screenUntil('chain', (s) => /OPTION CHAIN SPY \d+\.\d\d/.test(s) && rows(s).length === 7, 'the chain table with seven full rows');

  const chain = chainPanel(daemon.chain()!);
  const front = chain.expiries[0]!;
  assert.match(screen, new RegExp(`OPTION CHAIN SPY \\d+\\.\\d\\d +streaming +lines 40/40 live +${front.expiry} ATM \\d+\\.\\d% RR25 [+-]\\d+\\.\\d\\d fly [+-]?\\d+\\.\\d\\d +${chain.expiries[1]!.expiry} ATM \\d+\\.\\d%`));
  assert.match(screen, /BID +ASK +IV% +DELTA +STRIKE +BID +ASK +IV% +DELTA/);
  const table = rows(screen);
  const strikes = table.map((m) => Number(m[5]));
  assert.deepEqual(strikes, [...strikes].sort((a, b) => a - b), 'strikes ascending');
  // Seven strikes of the front expiry's band, the ATM one in the middle (its band has ten: one side is cut short).
  const band = front.strikes.map((s) => s.strike);
  for (const k of strikes) assert.ok(band.includes(k), `${k} is a band strike of ${front.expiry}: ${band.join(' ')}`);
  assert.ok(strikes.includes(front.atmStrike!), `the ATM strike ${front.atmStrike} is shown: ${strikes.join(' ')}`);
  for (const m of table) {
    const [callBid, callAsk, callIv, callDelta, , putBid, putAsk, putIv, putDelta] = m.slice(1).map(Number) as number[];
    assert.ok(callAsk! >= callBid! && putAsk! >= putBid!, m[0]);
    assert.ok(callIv! > 1 && callIv! < 300 && putIv! > 1 && putIv! < 300, `IV in percent: ${m[0]}`);
    assert.ok(callDelta! > 0 && putDelta! < 0, m[0]);
  }
});
