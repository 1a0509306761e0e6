/**
 * Bad execution reports, below the venues: the ledger never books one
 * (refused on record, set aside on replay, an old keel's journal included),
 * the trader refuses them before the journal sees them (fills still on
 * their way to the journal count against the order's quantity), evidence
 * halts the gate until an operator's resume, and reconciliation names a
 * broker position that is not a number instead of comparing with it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ManualClock } from '../../src/clock.js';
import { FileJournal } from '../../src/journal/file-journal.js';
import type { FillRecord, LedgerRecord } from '../../src/journal/records.js';
import { createLogger } from '../../src/log.js';
import { fillProblem } from '../../src/trading/executions.js';
import type { BrokerSnapshot } from '../../src/trading/ib-venue.js';
import { Ledger } from '../../src/trading/ledger.js';
import { policySettings, TradingPolicy } from '../../src/trading/policy.js';
import { reconcile } from '../../src/trading/reconcile.js';
import { RiskGate } from '../../src/trading/risk-gate.js';
import { PaperTrader } from '../../src/trading/trader.js';
import type { Venue } from '../../src/trading/venue.js';
import { LogSink } from '../support/probe.js';

const dir = mkdtempSync(join(tmpdir(), 'keel-bad-executions-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const at = 1_700_000_000_000;
const START = 1_000_000;

const GOOD_FILL: FillRecord = { type: 'fill', at, ref: 'k.1', execId: 'e.good', symbol: 'AAPL', quantity: 40, price: 225, commission: 0 };

/**
 * A journal as a keel before the checks wrote it, for its own 50-share AAPL
 * order: a fill at price NaN, one for 1,000,000 TSLA, a good one, a
 * commission below 0, and the commission that was right.
 */
const OLD_JOURNAL: LedgerRecord[] = [
  { type: 'order', at, ref: 'k.1', symbol: 'AAPL', quantity: 50, orderType: 'LMT', limitPrice: 225.1, brokerOrderId: 7, reason: 'test' },
  { type: 'order.status', at, ref: 'k.1', state: 'working', permId: 99 },
  { type: 'fill', at, ref: 'k.1', execId: 'e.nan', symbol: 'AAPL', quantity: 10, price: NaN, commission: 0 },
  { type: 'fill', at, ref: 'k.1', execId: 'e.tsla', symbol: 'TSLA', quantity: 1_000_000, price: 250, commission: 0 },
  GOOD_FILL,
  { type: 'commission', at, execId: 'e.good', commission: -3 },
  { type: 'commission', at, execId: 'e.good', commission: 1 },
];

/** Writes records straight to a journal file, as an older keel did: no ledger checks on the way. */
async function writeOldJournal(path: string, records: readonly LedgerRecord[]): Promise<void> {
  const { journal } = await FileJournal.open(path);
  for (const r of records) await journal.append(r);
  await journal.close();
}

async function replayed(path: string) {
  const opened = await FileJournal.open(path);
  const ledger = new Ledger(opened.journal, START);
  ledger.replay(opened.entries);
  return { ledger, journal: opened.journal };
}

/** A trader with a real gate and a logger to a sink; orders go nowhere (these tests feed it venue events). */
function trader(ledger: Ledger) {
  const clock = new ManualClock();
  const sink = new LogSink();
  const log = createLogger({ level: 'debug', pretty: false, destination: sink });
  const gate = new RiskGate(clock, { autoResume: true, healthyPeriodMs: 1000 });
  const failures: unknown[] = [];
  const cancels: string[] = [];
  const t = new PaperTrader({
    ledger,
    gate,
    policy: new TradingPolicy(policySettings.parse({}), ['AAPL']),
    clock,
    log,
    symbols: ['AAPL'],
    refPrefix: 'k',
    replaceAfterMs: 60_000,
    maxPredictionAgeMs: 1_000,
    books: () => undefined,
    fail: (e) => failures.push(e),
  });
  const venue: Venue = { tradesOptions: false, submit: () => {}, cancel: (ref) => cancels.push(ref), close: () => {} };
  t.venue = venue;
  gate.onHalt(() => t.cancelAll(`trading halted: ${gate.reason}`));
  return { trader: t, gate, clock, sink, failures, cancels };
}

test('replay sets an old bad fill aside as evidence, naming its entry: cash, position and P&L are those of the good fills', async () => {
  const path = join(dir, 'old.journal');
  await writeOldJournal(path, OLD_JOURNAL);
  const { ledger, journal } = await replayed(path);
  try {
    assert.equal(ledger.seq, OLD_JOURNAL.length, 'every entry was read');
    assert.deepEqual([...ledger.fills.keys()], ['e.good']);
    const aapl = ledger.positions.get('AAPL')!;
    assert.deepEqual([aapl.quantity, aapl.averagePrice, aapl.fees], [40, 225, 1]);
    assert.equal(ledger.positions.has('TSLA'), false, 'no position in a contract the order is not for');
    assert.equal(ledger.cash, START - 40 * 225 - 1);
    assert.equal(ledger.order('k.1')!.filled, 40);
    assert.equal(ledger.order('k.1')!.averageFillPrice, 225);
    aapl.mark = 226;
    const view = ledger.view(at);
    for (const [name, value] of Object.entries({ cash: view.cash, realized: view.realizedPnl, unrealized: view.unrealizedPnl, fees: view.fees, net: view.netPnl })) {
      assert.ok(Number.isFinite(value), `${name} is ${value}`);
    }
    assert.equal(view.netPnl, 40 - 1);
    assert.deepEqual(
      ledger.evidence.map((e) => [e.seq, e.kind, e.key, e.acknowledged]),
      [
        [3, 'set-aside', 'e.nan', false],
        [4, 'set-aside', 'e.tsla', false],
        [6, 'set-aside', 'e.good commission', false],
      ],
    );
    assert.equal(ledger.evidence[0]!.text, 'journal entry 3: fill e.nan for k.1 set aside, not booked: price NaN is not a finite number above 0');
    assert.equal(ledger.evidence[1]!.reason, "symbol TSLA is not the order's (AAPL)");
    assert.equal(ledger.evidence[2]!.reason, 'commission -3 is not a finite amount >= 0');

    // The trader built on it: the gate starts HALTED on the evidence, each named by its entry in the log.
    const { gate, sink } = trader(ledger);
    assert.equal(gate.state, 'HALTED');
    assert.equal(gate.reason, 'journal entry 3: fill e.nan for k.1 set aside, not booked: price NaN is not a finite number above 0 (and 2 more)');
    const warnings = sink.lines.filter((l) => l.level === 40).map((l) => [l.seq, String(l.msg)]);
    assert.deepEqual(warnings.map(([seq]) => seq), [3, 4, 6]);
    assert.match(String(warnings[0]![1]), /^journal entry 3: fill e\.nan for k\.1 set aside, not booked: price NaN .*: trading waits for an operator's resume$/);
    // Not forever: an operator's resume acknowledges it, journaled as the journal component does.
    assert.deepEqual(gate.resume('the operator read the evidence'), { ok: true });
    await ledger.record({ type: 'gate', at, from: 'HALTED', to: 'ACTIVE', reason: 'the operator read the evidence', by: 'inspector' });
    assert.deepEqual(ledger.unacknowledged(), []);
  } finally {
    await journal.close();
  }
  // The next start replays the same evidence, acknowledged: nothing halts, nothing moves.
  const again = await replayed(path);
  try {
    assert.equal(again.ledger.evidence.length, 3);
    assert.deepEqual(again.ledger.unacknowledged(), []);
    assert.equal(again.ledger.cash, START - 40 * 225 - 1);
    assert.equal(trader(again.ledger).gate.state, 'ACTIVE');
  } finally {
    await again.journal.close();
  }
});

test("the gate's own healthy period acknowledges nothing; an operator's resume only what came before it", async () => {
  const path = join(dir, 'ack.journal');
  await writeOldJournal(path, [
    ...OLD_JOURNAL.slice(0, 3),
    { type: 'gate', at, from: 'HALTED', to: 'ACTIVE', reason: 'no condition for 30 s', by: 'gate' },
    { type: 'gate', at, from: 'HALTED', to: 'REDUCING', reason: 'reduce', by: 'operator' },
    { type: 'gate', at, from: 'HALTED', to: 'ACTIVE', reason: 'go', by: 'operator' },
    OLD_JOURNAL[3]!,
  ]);
  const { ledger, journal } = await replayed(path);
  await journal.close();
  assert.deepEqual(
    ledger.evidence.map((e) => [e.execId, e.acknowledged]),
    [
      ['e.nan', true],
      ['e.tsla', false],
    ],
  );
});

test('the ledger refuses to journal a bad fill or commission, with the reason; nothing is appended', async () => {
  const { journal } = await FileJournal.open(join(dir, 'guard.journal'));
  const ledger = new Ledger(journal, START);
  try {
    await ledger.record(OLD_JOURNAL[0]!);
    await assert.rejects(ledger.record(OLD_JOURNAL[2]!), /^Error: ledger: this fill record must not be journaled: execution e\.nan: price NaN is not a finite number above 0$/);
    await assert.rejects(ledger.record({ ...GOOD_FILL, quantity: 51 }), /execution e\.good: 51 more would fill 51 of order k\.1's 50 \(0 filled already\)$/);
    await assert.rejects(ledger.record({ ...GOOD_FILL, quantity: -40 }), /execution e\.good: a sell of 40 for order k\.1, a buy$/);
    await ledger.record(GOOD_FILL);
    await assert.rejects(ledger.record({ type: 'commission', at, execId: 'e.good', commission: NaN }), /execution e\.good: commission NaN is not a finite amount >= 0$/);
    assert.equal(journal.durableSeq, 2, 'only the order and the good fill');
    assert.equal(ledger.cash, START - 40 * 225);
  } finally {
    await journal.close();
  }
});

test('the trader refuses a fill that would overfill its order counting fills still on their way to the journal, keeps it as evidence, and halts', async () => {
  const { journal } = await FileJournal.open(join(dir, 'in-flight.journal'));
  const ledger = new Ledger(journal, START);
  await ledger.record(OLD_JOURNAL[0]!);
  const { trader: t, gate, sink, failures, cancels } = trader(ledger);
  try {
    assert.equal(gate.state, 'ACTIVE');
    const fill = { kind: 'fill' as const, ref: 'k.1', symbol: 'AAPL', price: 225, commission: 0, at };
    // Both in the same tick: the first is not in the ledger yet when the second comes.
    t.onEvent({ ...fill, execId: 'x1', quantity: 30 });
    t.onEvent({ ...fill, execId: 'x2', quantity: 30 });
    // A repeat of the refused report is not news: no second record.
    t.onEvent({ ...fill, execId: 'x2', quantity: 30 });
    t.onEvent({ kind: 'commission', execId: 'x2', commission: 1, at });
    t.onEvent({ kind: 'commission', execId: 'x1', commission: -1, at });
    await t.settled();
    assert.deepEqual(failures, []);
    assert.equal(ledger.order('k.1')!.filled, 30);
    assert.equal(ledger.positions.get('AAPL')!.quantity, 30);
    assert.equal(ledger.cash, START - 30 * 225, 'neither the refused fill nor the refused commission moved cash');
    assert.deepEqual(
      ledger.evidence.map((e) => [e.kind, e.key, e.reason]),
      [
        ['refused', 'x2', "30 more would fill 60 of order k.1's 50 (30 filled already)"],
        ['refused', 'x1 commission', 'commission -1 is not a finite amount >= 0'],
      ],
    );
    assert.equal(gate.state, 'HALTED');
    assert.equal(gate.reason, "execution x2 for k.1 refused: 30 more would fill 60 of order k.1's 50 (30 filled already) (and 1 more)");
    assert.deepEqual(cancels, ['k.1'], 'the halt cancelled the working order');
    const errors = sink.lines.filter((l) => l.level === 50);
    assert.deepEqual(errors.map((l) => l.execId), ['x2', 'x1']);
    assert.match(String(errors[0]!.msg), /^execution x2 for k\.1 refused: .*: not booked, kept in the journal as evidence; trading halts until an operator resumes$/);
    assert.equal(String(errors[1]!.msg).startsWith('the commission of execution x1 for k.1 refused: commission -1'), true);
    assert.deepEqual(gate.resume('seen'), { ok: true });
    // The refusal record keeps what was reported, and a replay of the journal books the same.
    const records = (await journal.entriesSince(0)).map((e) => e.record);
    assert.deepEqual(
      records.filter((r) => r.type === 'execution.refused'),
      [
        { type: 'execution.refused', at, ref: 'k.1', execId: 'x2', symbol: 'AAPL', quantity: 30, price: 225, reason: "30 more would fill 60 of order k.1's 50 (30 filled already)" },
        { type: 'execution.refused', at, ref: 'k.1', execId: 'x1', symbol: 'AAPL', quantity: 30, price: 225, commission: -1, reason: 'commission -1 is not a finite amount >= 0' },
      ],
    );
    const again = new Ledger(journal, START);
    again.replay(await journal.entriesSince(0));
    assert.deepEqual(again.view(at), ledger.view(at));
  } finally {
    await journal.close();
  }
});

test('fill checks: every reason names the number or the contract that was wrong', () => {
  const order = { ref: 'k.1', symbol: 'AAPL', quantity: -50 };
  const fill = { symbol: 'AAPL', quantity: -10, price: 225, commission: 0 };
  assert.equal(fillProblem(fill, order, 0), undefined);
  assert.equal(fillProblem({ ...fill, quantity: -Infinity }, order, 0), 'size Infinity is not a finite number of shares above 0');
  assert.equal(fillProblem({ ...fill, quantity: 0 }, order, 0), 'size 0 is not a finite number of shares above 0');
  assert.equal(fillProblem({ ...fill, price: -1 }, order, 0), 'price -1 is not a finite number above 0');
  assert.equal(fillProblem({ ...fill, commission: Infinity }, order, 0), 'commission Infinity is not a finite amount >= 0');
  assert.equal(fillProblem({ ...fill, symbol: '' }, order, 0), "symbol (none) is not the order's (AAPL)");
  assert.equal(fillProblem(fill, order, -40), undefined, 'exactly the order');
  assert.equal(fillProblem(fill, order, -45), "10 more would fill 55 of order k.1's 50 (45 filled already)");
});

test('reconciliation: a broker position that is not a number, or beyond any account, is a mismatch that says so', async () => {
  const { journal } = await FileJournal.open(join(dir, 'reconcile.journal'));
  const ledger = new Ledger(journal, START);
  try {
    await ledger.record(OLD_JOURNAL[0]!);
    await ledger.record(GOOD_FILL);
    const broker: BrokerSnapshot = {
      openOrders: [],
      positions: new Map([
        ['AAPL', NaN],
        ['TSLA', 2e12],
        ['SPY', 0],
      ]),
      executions: 0,
    };
    const { mismatches } = reconcile(ledger, broker, at);
    assert.deepEqual(mismatches, [
      'AAPL: the broker reported a position of NaN shares, not a finite number of shares; the journal holds 40',
      'TSLA: the broker reported a position of 2000000000000 shares, beyond any account (more than 1,000,000,000 shares); the journal holds 0',
    ]);
  } finally {
    await journal.close();
  }
});
