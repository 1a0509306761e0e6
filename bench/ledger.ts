/**
 * Ledger: what durability costs. The file journal with three settings, side
 * by side in one run, each on a fresh file in a temp folder:
 *
 *   fsync each   maxBatch 1, batchMs 0: one write and one fdatasync per record
 *   batched      the defaults (batchMs 2, maxBatch 256): group commit
 *   batchMs 0    maxBatch 256 but no wait: a record goes at once if no flush
 *                is in flight, and what arrives during a sync forms the next
 *                batch (the alternative to the default's 2 ms wait)
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
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { FileJournal, type FileJournalOptions } from '../src/journal/file-journal.js';
import type { FillRecord } from '../src/journal/records.js';
import { fmt, median, percentile, type BenchOptions } from './stats.js';

const BURST_RECORDS = 20_000;
const BURST_IN_FLIGHT = 1_000;
const BURST_CAP_MS = 3_000;
const PACED_RATE = 2_000;
const PACED_MS = 2_000;

const VARIANTS: { name: string; options: FileJournalOptions }[] = [
  { name: 'fsync each', options: { maxBatch: 1, batchMs: 0 } },
  { name: 'batched', options: {} },
  { name: 'batchMs 0', options: { batchMs: 0 } },
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
  ].join('\n');
  return { rows, table };
}
