/**
 * journal: the durable ledger. It opens the journal file, replays it into a
 * Ledger (orders, fills, positions, cash, P&L exactly as they were
 * acknowledged), records every risk gate transition, and provides both as
 * services (`journal`, `ledger`) for the trader, the Redis mirror and the
 * inspector. Every durable entry is published on `journal.record`.
 *
 * A torn last record (a crash mid-write) is dropped with a warning; damage
 * anywhere else stops the start with an error naming the file and offset:
 * acknowledged records are never silently lost.
 */
import { z } from 'zod';
import { FileJournal } from '../journal/file-journal.js';
import { serviceLogic } from '../supervision/service.js';
import { Ledger } from '../trading/ledger.js';
import { GATE_TRANSITION_TOPIC, JOURNAL_RECORD_TOPIC } from '../topics.js';

export const journalSettings = z
  .object({
    /** The append-only journal file. */
    path: z.string().min(1).default('var/journal.keel'),
    /** Longest a record waits for its fsync batch, ms (0: at once; records arriving during a sync still batch). */
    batchMs: z.number().int().min(0).default(0),
    /** A batch is flushed at once when this many records wait. */
    maxBatch: z.number().int().positive().default(256),
    /** Cash the paper account starts with, before the first record. */
    startingCash: z.number().positive().default(1_000_000),
  })
  .strict();

export type JournalSettings = z.infer<typeof journalSettings>;

export const journalLogic = serviceLogic<JournalSettings>(async ({ settings, bus, log, fail, provide }) => {
  const opened = await FileJournal.open(settings.path, { batchMs: settings.batchMs, maxBatch: settings.maxBatch, log });
  const ledger = new Ledger(opened.journal, settings.startingCash);
  ledger.replay(opened.entries);
  const view = ledger.view(Date.now());
  log.info(
    {
      path: settings.path,
      records: opened.entries.length,
      torn: opened.torn,
      orders: ledger.orders.size,
      working: ledger.workingOrders().length,
      fills: ledger.fills.size,
      positions: Object.fromEntries(view.positions.map((p) => [p.symbol, p.quantity])),
      cash: view.cash,
      realizedPnl: view.realizedPnl,
      fees: view.fees,
    },
    `journal replayed: ${opened.entries.length} records, ${ledger.orders.size} orders, ${ledger.fills.size} fills`,
  );
  const stopPublishing = ledger.onEntry((entry) => bus.publish(JOURNAL_RECORD_TOPIC, entry));
  const stopRecordingGate = bus.subscribe(GATE_TRANSITION_TOPIC, (t) => {
    // A journal that cannot write fails this component; the gate has moved regardless.
    ledger.record({ type: 'gate', at: t.at, from: t.from, to: t.to, reason: t.reason, by: t.by }).catch(fail);
  });
  provide('journal', opened.journal);
  provide('ledger', ledger);
  return {
    async stop() {
      stopRecordingGate();
      stopPublishing();
      await opened.journal.close();
      log.info({ records: ledger.seq }, 'journal closed');
    },
  };
});
