/**
 * journal: the durable ledger. It opens the journal file, replays it into a
 * Ledger (orders, fills, positions, cash, P&L exactly as they were
 * acknowledged), records every risk gate transition, and provides both as
 * services (`journal`, `ledger`) for the trader, the Redis mirror and the
 * inspector. Every durable entry is published on `journal.record`.
 *
 * A torn last record (a crash mid-write) is dropped with a warning; damage
 * anywhere else stops the start for good (a PermanentFailure) with one line
 * naming the file, the offset and `keel journal check` / `keel journal
 * repair`: acknowledged records are never silently lost.
 *
 * One writer per journal: the file is locked (FILE.lock) while this
 * component has it open, and a second keel pointed at it is refused (exit 2)
 * with the holder's pid, start time and inspector URL. The URL is heard on
 * the `inspector` state topic and written into the lock file once known.
 */
import type { Logger } from 'pino';
import { z } from 'zod';
import { FileJournal, repairAdvice, type OpenedJournal } from '../journal/file-journal.js';
import { acquireFileLock, FileLocked, noteInspector, type FileLock } from '../journal/file-lock.js';
import { journalOpenFailure, prepareJournalDirectory } from '../journal/open-failure.js';
import { pathFailure, PermanentFailure } from '../supervision/permanent.js';
import { serviceLogic } from '../supervision/service.js';
import { Ledger } from '../trading/ledger.js';
import { GATE_TRANSITION_TOPIC, INSPECTOR_TOPIC, JOURNAL_RECORD_TOPIC, MODEL_EVENT_TOPIC } from '../topics.js';

export const journalSettings = z
  .object({
    /** The append-only journal file. */
    path: z.string().min(1).default('var/journal.keel'),
    /** Longest a record waits for its fsync batch, ms (0: at once; records arriving during a sync still batch). */
    batchMs: z.number().int().min(0).default(0),
    /** A batch is flushed at once when this many records wait. */
    maxBatch: z.number().int().positive().default(256),
    /**
     * fdatasync every batch before it counts as written. false only for a
     * journal that can be made again from its inputs: `keel replay` sets it.
     */
    fsync: z.boolean().default(true),
    /** Cash the paper account starts with, before the first record. */
    startingCash: z.number().positive().default(1_000_000),
  })
  .strict();

export type JournalSettings = z.infer<typeof journalSettings>;

export const journalLogic = serviceLogic<JournalSettings>(async ({ id, instance, settings, bus, log, fail, provide }) => {
  // A journal that cannot be created or opened, or is damaged, is permanent: no restart heals it.
  await prepareJournalDirectory(settings.path, id);
  const lock = lockJournal(settings.path, `${instance}/${id}`, id, log);
  let opened: OpenedJournal;
  let ledger: Ledger;
  try {
    opened = await FileJournal.open(settings.path, { batchMs: settings.batchMs, maxBatch: settings.maxBatch, sync: settings.fsync, log }).catch((error: unknown) => {
      throw journalOpenFailure(error, settings.path, id);
    });
    try {
      ledger = replayJournal(settings, opened);
    } catch (error) {
      await opened.journal.close();
      throw error;
    }
  } catch (error) {
    lock.release();
    throw error;
  }
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
  // Those this one refuses learn where to look: the inspector's URL goes into the lock file once it listens.
  const noteUrl = (url: string | undefined) => {
    try {
      noteInspector(url);
    } catch (error) {
      log.warn({ err: error, lockFile: lock.lockFile }, `cannot note the inspector's URL in ${lock.lockFile}: ${(error as Error).message}`);
    }
  };
  noteUrl(bus.latest(INSPECTOR_TOPIC)?.url);
  const stopNotingUrl = bus.subscribe(INSPECTOR_TOPIC, ({ url }) => noteUrl(url));
  const stopRecordingGate = bus.subscribe(GATE_TRANSITION_TOPIC, (t) => {
    // A journal that cannot write fails this component; the gate has moved regardless.
    ledger.record({ type: 'gate', at: t.at, from: t.from, to: t.to, reason: t.reason, by: t.by }).catch(fail);
  });
  const stopRecordingModels = bus.subscribe(MODEL_EVENT_TOPIC, (e) => {
    ledger.record({ type: 'model', at: e.at, model: e.model, kind: e.kind, reason: e.reason }).catch(fail);
  });
  provide('journal', opened.journal);
  provide('ledger', ledger);
  return {
    async stop() {
      stopNotingUrl();
      stopRecordingGate();
      stopRecordingModels();
      stopPublishing();
      try {
        await opened.journal.close();
      } finally {
        lock.release();
      }
      log.info({ records: ledger.seq }, 'journal closed');
    },
  };
});

/** The journal's lock, or a permanent failure naming whoever holds it. */
function lockJournal(path: string, owner: string, componentId: string, log: Logger): FileLock {
  const setting = `components.${componentId}.settings.path`;
  try {
    const { lock, broke } = acquireFileLock(path, owner);
    if (broke) log.warn({ lockFile: lock.lockFile, holder: broke }, `${path}: took over the lock of pid ${broke.pid} (started ${broke.startedAt}), which is gone`);
    return lock;
  } catch (error) {
    if (error instanceof FileLocked) throw new PermanentFailure(`${error.message}: stop it, or set ${setting} to another file`, 2, { cause: error });
    throw pathFailure(error, { doing: `cannot lock the journal ${path}`, setting, want: 'a file in a directory keel can write' });
  }
}

/** The ledger the journal's entries make; a replay that throws does so at every try, so it is permanent. */
function replayJournal(settings: JournalSettings, opened: OpenedJournal): Ledger {
  const ledger = new Ledger(opened.journal, settings.startingCash);
  try {
    ledger.replay(opened.entries);
  } catch (error) {
    throw new PermanentFailure(`${settings.path}: the journal does not replay (${(error as Error).message}); ${repairAdvice(settings.path)}`, 2, { cause: error });
  }
  return ledger;
}
