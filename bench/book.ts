/**
 * Book: depth updates per second on one core, on real data. The LOBSTER
 * AAPL sample, converted into IB row operations, is cut into DepthBatches
 * as the depth feed would publish them and replayed over and over (each
 * pass from an empty book) through:
 *
 *   keel      OrderBooks.apply: typed arrays, no allocation per update
 *   naive     the obvious JavaScript book: arrays of {price, size} objects
 *             and splice, one object per insert or update
 *   features  keel's books and then FeatureEngine.onBook on every batch:
 *             the difference to `keel` is the features' cost per update
 *
 * The variants alternate within each run; the median run is reported.
 */
import { fileURLToPath } from 'node:url';
import { DepthBatch } from '../src/ib/depth-feed.js';
import { OrderBooks } from '../src/market/books.js';
import { FeatureEngine } from '../src/market/features.js';
import { readLobsterBooks, replayOperations, writeBatch, type DepthOperation } from '../src/market/lobster.js';
import { DELETE, INSERT } from '../src/market/order-book.js';
import { fmt, median, type BenchOptions } from './stats.js';

const LOBSTER = fileURLToPath(new URL('../test/fixtures/lobster/AAPL_2012-06-21_orderbook_10.csv', import.meta.url));
const UPDATES = 10_000_000;
const BATCH = 64;

type Variant = 'keel' | 'naive' | 'features';

/** The replay as batches of up to BATCH rows, cut at LOBSTER row boundaries like socket reads. */
function batches(ops: readonly DepthOperation[], starts: readonly number[]): DepthBatch[] {
  const out: DepthBatch[] = [];
  let from = 0;
  for (let row = 1; row < starts.length; row++) {
    const to = starts[row]!;
    if (to - from >= BATCH || row === starts.length - 1) {
      for (let at = from; at < to; at += BATCH) {
        const batch = new DepthBatch(BATCH);
        writeBatch(batch, ops, at, Math.min(to, at + BATCH), 0, at);
        out.push(batch);
      }
      from = to;
    }
  }
  return out;
}

/** The book anyone would write first. */
class NaiveBook {
  sides: { price: number; size: number }[][] = [[], []];
  apply(position: number, operation: number, side: number, price: number, size: number): void {
    const rows = this.sides[side]!;
    if (operation === INSERT) {
      rows.splice(position, 0, { price, size });
      if (rows.length > 10) rows.pop();
    } else if (operation === DELETE) rows.splice(position, 1);
    else rows[position] = { price, size };
  }
}

function replay(variant: Variant, list: readonly DepthBatch[], perPass: number): number {
  const passes = Math.ceil(UPDATES / perPass);
  const started = performance.now();
  if (variant === 'naive') {
    for (let pass = 0; pass < passes; pass++) {
      const book = new NaiveBook();
      for (const b of list) for (let r = 0; r < b.count; r++) book.apply(b.position[r]!, b.operation[r]!, b.side[r]!, b.price[r]!, b.size[r]!);
    }
  } else {
    const books = new OrderBooks(1, 10);
    const engine = variant === 'features' ? new FeatureEngine(1) : undefined;
    for (let pass = 0; pass < passes; pass++) {
      books.reset(0);
      engine?.reset(0);
      for (const b of list) {
        books.apply(b);
        engine?.onBook(books);
      }
    }
    if (books.book(0)!.totalRejected() !== 0) throw new Error('the replay was rejected: the benchmark is not measuring the book');
  }
  const seconds = (performance.now() - started) / 1000;
  return (passes * perPass) / seconds;
}

export async function bookBench({ runs, progress }: BenchOptions) {
  const { ops, starts } = replayOperations(readLobsterBooks(LOBSTER));
  const list = batches(ops, starts);
  progress(`book: ${fmt(ops.length)} IB row operations from ${starts.length - 1} LOBSTER rows, ${list.length} batches; ${fmt(UPDATES)} updates per variant per run`);
  const variants: Variant[] = ['keel', 'naive', 'features'];
  const rates: Record<Variant, number[]> = { keel: [], naive: [], features: [] };
  for (const v of variants) replay(v, list, ops.length); // warm-up
  for (let run = 1; run <= runs; run++) {
    for (const v of variants) {
      const rate = replay(v, list, ops.length);
      rates[v].push(rate);
      progress(`book: run ${run}/${runs} ${v}: ${fmt(rate)} updates/s`);
    }
  }
  const keel = median(rates.keel);
  const naive = median(rates.naive);
  const features = median(rates.features);
  const featureNs = (1 / features - 1 / keel) * 1e9;
  const rows = [{ operations: ops.length, updates: UPDATES, keelPerSecond: keel, naivePerSecond: naive, withFeaturesPerSecond: features, featureNsPerUpdate: featureNs }];
  const table = [
    '| replayed | keel books (typed arrays) | naive books (objects + splice) | keel / naive | books + features | features cost per update |',
    '|---|---|---|---|---|---|',
    `| ${fmt(UPDATES)} updates (LOBSTER AAPL as IB rows) | ${fmt(keel / 1e6, 1)} M/s | ${fmt(naive / 1e6, 1)} M/s | ${(keel / naive).toFixed(2)}x | ${fmt(features / 1e6, 1)} M/s | ${fmt(featureNs, 1)} ns |`,
  ].join('\n');
  return { rows, table };
}
