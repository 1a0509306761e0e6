/**
 * l2_microstructure: keel's order books. It applies every `depth` batch to
 * the books of the instruments subscriptions publishes (`instruments`),
 * empties a book on `depth.reset`, and tells the features what changed
 * (`book`, the books themselves, synchronously after each batch). Locked
 * and crossed books are data-quality events (`book.quality`); rejected
 * updates are counted per book and reported once a second.
 */
import { z } from 'zod';
import type { DepthBatch, DepthReset } from '../ib/depth-feed.js';
import { OrderBooks, type BookQualityEvent, type BookResync } from '../market/books.js';
import { BOOK_CROSSED, BOOK_LOCKED, BOOK_OK, REJECTIONS } from '../market/order-book.js';
import { serviceLogic } from '../supervision/service.js';
import { BOOK_QUALITY_TOPIC, BOOK_RESYNC_TOPIC, BOOK_TOPIC, DEPTH_RESET_TOPIC, DEPTH_TOPIC } from '../topics.js';

export const l2MicrostructureSettings = z
  .object({
    /** Rows kept per side: at least the most any depth subscription asks for. */
    maxRows: z.number().int().min(1).max(50).default(10),
    /** How often rejected updates are reported. */
    reportMs: z.number().int().positive().default(1_000),
    /** A book that rejects an update asks for a fresh snapshot, at most this often per instrument. */
    resyncMs: z.number().int().positive().default(2_000),
  })
  .strict();

export type L2MicrostructureSettings = z.infer<typeof l2MicrostructureSettings>;

export const l2MicrostructureLogic = serviceLogic<L2MicrostructureSettings>(async (ctx) => {
  const { bus, clock, log, settings } = ctx;
  const { symbols } = ctx.need('instruments');
  const books = new OrderBooks(symbols.length, settings.maxRows);
  const quality = (instrument: number) => {
    const book = books.books[instrument]!;
    const event: BookQualityEvent = {
      symbol: symbols[instrument]!,
      quality: book.quality === BOOK_CROSSED ? 'crossed' : book.quality === BOOK_LOCKED ? 'locked' : 'ok',
      bid: book.bestBid(),
      ask: book.bestAsk(),
    };
    if (event.quality === 'ok') log.info(event, `${event.symbol} book is no longer locked or crossed`);
    else log.warn(event, `${event.symbol} book is ${event.quality}: bid ${event.bid} ask ${event.ask}`);
    bus.publish(BOOK_QUALITY_TOPIC, event);
  };

  const resyncAskedAt = new Float64Array(symbols.length).fill(-Infinity);
  const onDepth = (batch: DepthBatch) => {
    books.apply(batch);
    for (let i = 0; i < books.qualityChangedCount; i++) quality(books.qualityChanged[i]!);
    bus.publish(BOOK_TOPIC, books);
    for (let i = 0; i < books.outOfSyncCount; i++) {
      const instrument = books.outOfSync[i]!;
      const now = clock.now();
      if (now - resyncAskedAt[instrument]! < settings.resyncMs) continue;
      resyncAskedAt[instrument] = now;
      log.warn({ symbol: symbols[instrument] }, `${symbols[instrument]} book rejected an update and no longer matches TWS: asking for a fresh snapshot`);
      const resync: BookResync = { instrument, symbol: symbols[instrument]! };
      bus.publish(BOOK_RESYNC_TOPIC, resync);
    }
  };
  const onReset = ({ instrument }: DepthReset) => {
    const book = books.book(instrument);
    if (!book) return;
    const wasFlagged = book.quality !== BOOK_OK;
    books.reset(instrument);
    if (wasFlagged) quality(instrument);
  };
  const reported = new Float64Array(symbols.length);
  let unknownReported = 0;
  const report = () => {
    if (books.unknownInstrument !== unknownReported) {
      log.warn({ rows: books.unknownInstrument - unknownReported }, 'depth rows for an instrument keel has no book for: dropped');
      unknownReported = books.unknownInstrument;
    }
    books.books.forEach((book, i) => {
      const total = book.totalRejected();
      if (total === reported[i]) return;
      const byReason = Object.fromEntries(REJECTIONS.map((r, k) => [r, book.rejected[k]]));
      log.warn({ symbol: symbols[i], rejected: total - reported[i]!, byReason }, `${symbols[i]}: ${total - reported[i]!} depth updates rejected`);
      reported[i] = total;
    });
    timer = clock.setTimeout(report, settings.reportMs);
  };
  let timer = clock.setTimeout(report, settings.reportMs);
  const unsubscribe = [bus.subscribe(DEPTH_TOPIC, onDepth), bus.subscribe(DEPTH_RESET_TOPIC, onReset)];
  ctx.provide('books', books);
  log.info({ instruments: symbols.length, maxRows: settings.maxRows }, 'order books ready');
  return {
    stop() {
      clock.clearTimeout(timer);
      for (const u of unsubscribe) u();
    },
  };
});
