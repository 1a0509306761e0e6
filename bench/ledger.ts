/**
 * Ledger: what durability costs. The file journal with three settings, side
 * by side in one run, each on a fresh file in a temp folder:
 *
 *   fsync each   maxBatch 1, batchMs 0: one write and one fdatasync per record
 *   batched      the default (maxBatch 256, no wait): a record goes at once
 *                if no flush is in flight, and what arrives during a sync
 *                forms the next batch (group commit)
 *   wait 2 ms    maxBatch 256, batchMs 2: a batch waits up to 2 ms for more
 *   no sync      the default batching without fdatasync; contrast only, a
 *                crash loses what the OS had not written yet
 *
 * and two loads of fill-sized records:
 *
 *   burst        20,000 records appended as fast as the promises allow, with
 *                up to 1,000 in flight (a burst of fills and order events);
 *                stopped after 3 s if not done (fsync each)
 *   paced        2,000 records/s for 2 s, appended on a 1 ms timer: the
 *                latency a record sees under a steady busy load
 *
 * Latency is from the append call to its promise resolving, i.e. durable.
 *
 * Then the path a trade takes: from the trader's decision (PaperTrader.order
 * through the risk gate with its limits) to the fill being durable in the
 * ledger. The order is journaled, sent once durable to the book venue
 * (latency 0: the next timer tick) which fills it against an in-memory book,
 * and the fill is journaled. One decision at a time, so the figure is the
 * latency of two journal round trips plus the venue's fill, not a throughput.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { FileJournal, type FileJournalOptions } from '../src/journal/file-journal.js';
import type { FillRecord } from '../src/journal/records.js';
import { systemClock } from '../src/clock.js';
import { createLogger } from '../src/log.js';
import { BookVenue } from '../src/trading/book-venue.js';
import { Ledger } from '../src/trading/ledger.js';
import { riskLimits } from '../src/trading/limits.js';
import { policySettings, TradingPolicy } from '../src/trading/policy.js';
import { RiskGate } from '../src/trading/risk-gate.js';
import { PaperTrader } from '../src/trading/trader.js';
import { oneBook } from '../test/support/books.js';
import { fmt, median, percentile, type BenchOptions } from './stats.js';

const BURST_RECORDS = 20_000;
const BURST_IN_FLIGHT = 1_000;
const BURST_CAP_MS = 3_000;
const PACED_RATE = 2_000;
const PACED_MS = 2_000;

const VARIANTS: { name: string; options: FileJournalOptions }[] = [
  { name: 'fsync each', options: { maxBatch: 1, batchMs: 0 } },
  { name: 'batched', options: {} },
  { name: 'wait 2 ms', options: { batchMs: 2 } },
  { name: 'no sync', options: { sync: false } },
];

interface Measure {
  records: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  perBatch: number;
}

function fill(n: number): FillRecord {
  return {
    type: 'fill',
    at: Date.now(),
    ref: `keel-20250114-${n}`,
    execId: `0000e0d5.67a5c2f1.01.${n}`,
    symbol: 'SPY',
    quantity: n % 2 === 0 ? 100 : -100,
    price: 590.12 + (n % 100) / 100,
    commission: 0.35,
  };
}

async function withJournal(options: FileJournalOptions, run: (journal: FileJournal) => Promise<number[]>): Promise<Measure> {
  const dir = mkdtempSync(join(tmpdir(), 'keel-bench-ledger-'));
  try {
    const { journal } = await FileJournal.open(join(dir, 'ledger.journal'), options);
    const started = performance.now();
    const latencies = await run(journal);
    const seconds = (performance.now() - started) / 1000;
    const { records, batches } = journal.stats;
    await journal.close();
    return { records, perSecond: records / seconds, p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99), perBatch: records / batches };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Up to BURST_IN_FLIGHT appends outstanding until all are done (or the cap). */
function burst(options: FileJournalOptions) {
  return withJournal(options, async (journal) => {
    const latencies: number[] = [];
    const started = performance.now();
    let sent = 0;
    const worker = async () => {
      while (sent < BURST_RECORDS && performance.now() - started < BURST_CAP_MS) {
        const record = fill(sent++);
        const at = performance.now();
        await journal.append(record);
        latencies.push(performance.now() - at);
      }
    };
    await Promise.all(Array.from({ length: BURST_IN_FLIGHT }, worker));
    return latencies;
  });
}

/** PACED_RATE records a second, appended on a 1 ms timer as they fall due. */
function paced(options: FileJournalOptions) {
  return withJournal(options, async (journal) => {
    const latencies: number[] = [];
    const pending: Promise<void>[] = [];
    const total = (PACED_RATE * PACED_MS) / 1000;
    const started = performance.now();
    let sent = 0;
    while (sent < total) {
      const due = Math.min(total, Math.floor(((performance.now() - started) * PACED_RATE) / 1000));
      for (; sent < due; sent++) {
        const at = performance.now();
        pending.push(journal.append(fill(sent)).then(() => void latencies.push(performance.now() - at)));
      }
      await sleep(1);
    }
    await Promise.all(pending);
    return latencies;
  });
}

const LOADS = { burst, paced } as const;

const DECISIONS = 300;

/** A book with ten levels a side around 100.00, deep enough for every order. */

/** DECISIONS trades, one at a time, each timed from the decision to its fill applied (durable) in the ledger. */
function decisionToFill(options: FileJournalOptions) {
  return withJournal(options, async (journal) => {
    const books = oneBook();
    const ledger = new Ledger(journal, 1_000_000);
    const limits = riskLimits.parse({ maxOrdersPerSecond: 1_000, maxPosition: 10_000 });
    const gate = new RiskGate(systemClock, { autoResume: false, healthyPeriodMs: 1_000, limits });
    const trader = new PaperTrader({
      ledger,
      gate,
      policy: new TradingPolicy(policySettings.parse({}), ['SPY']),
      clock: systemClock,
      log: createLogger({ level: 'silent' }),
      symbols: ['SPY'],
      refPrefix: 'bench',
      replaceAfterMs: 1e9,
      maxPredictionAgeMs: 1_000,
      books: () => books,
      fail: (error) => {
        throw error;
      },
    });
    const venue = new BookVenue({
      clock: systemClock,
      instrumentOf: (symbol) => (symbol === 'SPY' ? 0 : undefined),
      books: () => books,
      latencyMs: 0,
      feePerShare: 0.005,
      minFeePerOrder: 1,
      onEvent: (e) => trader.onEvent(e),
    });
    trader.venue = venue;
    const latencies: number[] = [];
    for (let k = 0; k < DECISIONS; k++) {
      const at = performance.now();
      const placed = trader.order({ symbol: 'SPY', quantity: k % 2 === 0 ? 100 : -100, reason: 'bench' });
      if (!placed.ok) throw new Error(`the bench's order was refused: ${placed.reason}`);
      await new Promise<void>((resolve) => {
        const stop = ledger.onEntry(({ record }) => {
          if (record.type !== 'fill' || record.ref !== placed.ref) return;
          stop();
          resolve();
        });
      });
      latencies.push(performance.now() - at);
      await trader.settled();
    }
    venue.close();
    return latencies;
  });
}

export async function ledgerBench({ runs, progress }: BenchOptions) {
  await burst({ sync: false }); // warm-up: JIT, msgpackr
  const samples = new Map<string, Measure[]>();
  for (let run = 1; run <= runs; run++) {
    for (const [load, drive] of Object.entries(LOADS)) {
      for (const variant of VARIANTS) {
        const m = await drive(variant.options);
        const key = `${load}|${variant.name}`;
        samples.set(key, [...(samples.get(key) ?? []), m]);
        progress(
          `ledger: run ${run}/${runs}: ${load} ${variant.name}: ${fmt(m.records)} records, ${fmt(m.perSecond)}/s, ` +
            `p50 ${fmt(m.p50Ms, 2)} ms, p99 ${fmt(m.p99Ms, 2)} ms, ${fmt(m.perBatch, 1)} per batch`,
        );
      }
    }
  }
  const decisions = new Map<string, Measure[]>();
  for (let run = 1; run <= runs; run++) {
    for (const variant of VARIANTS) {
      const m = await decisionToFill(variant.options);
      decisions.set(variant.name, [...(decisions.get(variant.name) ?? []), m]);
      progress(`ledger: run ${run}/${runs}: decision to durable fill, ${variant.name}: p50 ${fmt(m.p50Ms, 2)} ms, p99 ${fmt(m.p99Ms, 2)} ms`);
    }
  }
  const rows = [...samples].map(([key, ms]) => {
    const [load, variant] = key.split('|') as [string, string];
    const pick = (f: (m: Measure) => number) => median(ms.map(f));
    return { load, variant, records: pick((m) => m.records), perSecond: pick((m) => m.perSecond), p50Ms: pick((m) => m.p50Ms), p99Ms: pick((m) => m.p99Ms), perBatch: pick((m) => m.perBatch) };
  });
  const table = [
    '| load | variant | records | appends/s | vs fsync each | p50 to durable | p99 to durable | p99 vs fsync each | records per sync |',
    '|---|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => {
      const base = rows.find((b) => b.load === r.load && b.variant === VARIANTS[0]!.name)!;
      const p99Ratio = r === base ? '' : `${fmt(base.p99Ms / r.p99Ms, 1)}x lower`;
      return (
        `| ${r.load} | ${r.variant} | ${fmt(r.records)} | ${fmt(r.perSecond)} | ${fmt(r.perSecond / base.perSecond, 1)}x | ` +
        `${fmt(r.p50Ms, 2)} ms | ${fmt(r.p99Ms, 2)} ms | ${p99Ratio} | ${r.variant === 'no sync' ? '(no sync)' : fmt(r.perBatch, 1)} |`
      );
    }),
    '',
    `Decision to durable fill (${DECISIONS} trades one at a time: order journaled, sent, filled by the book venue, fill journaled):`,
    '',
    '| variant | p50 | p99 | p99 / fsync each |',
    '|---|---|---|---|',
    ...[...decisions].map(([variant, ms]) => {
      const p50 = median(ms.map((m) => m.p50Ms));
      const p99 = median(ms.map((m) => m.p99Ms));
      const base = median(decisions.get(VARIANTS[0]!.name)!.map((m) => m.p99Ms));
      return `| ${variant} | ${fmt(p50, 2)} ms | ${fmt(p99, 2)} ms | ${variant === VARIANTS[0]!.name ? '' : `${fmt(p99 / base, 2)}x`} |`;
    }),
  ].join('\n');
  const decisionRows = [...decisions].map(([variant, ms]) => ({ load: 'decision to fill', variant, p50Ms: median(ms.map((m) => m.p50Ms)), p99Ms: median(ms.map((m) => m.p99Ms)) }));
  return { rows: [...rows, ...decisionRows], table };
}
