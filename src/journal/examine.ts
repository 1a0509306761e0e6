/**
 * What `keel journal check|repair|show` know about a journal file: every
 * frame read (past damage too), the sequence judged, every record that can
 * never replay found, and what is left replayed through the real Ledger, as
 * the journal component replays it at start.
 *
 * The repair keeps every readable record in file order except: a torn tail
 * (never acknowledged) and damaged bytes (nothing to read), an identical
 * copy of a record already kept (a duplicated tail), and, set aside with
 * their reason, a different record under a seq already taken (a second
 * writer) and records that can never replay: what the ledger's replay sets
 * aside (a fill with a non-finite price or size, ...; the daemon starts on
 * those and halts trading until an operator resumes) and records whose own
 * fields replay cannot count with. Records after a loss are renumbered,
 * since a journal's seq has no gaps.
 */
import { rename, rm } from 'node:fs/promises';
import { Ledger } from '../trading/ledger.js';
import { FileJournal, scanJournal, type JournalScan } from './file-journal.js';
import type { Journal, JournalEntry, LedgerRecord } from './records.js';

/** Something wrong in the file, where, and what a repair does about it. */
export interface JournalProblem {
  readonly offset: number;
  /** What is wrong, in words. */
  readonly why: string;
  /** What `keel journal repair` does about it. */
  readonly repair: string;
}

/** A record the repaired journal leaves out but keeps beside it, with why. */
export interface SetAside {
  readonly seq: number;
  readonly offset: number;
  readonly reason: string;
  readonly record: LedgerRecord;
}

export interface KeptRecord {
  /** Its seq in the file. */
  readonly seq: number;
  /** Its seq in a repaired journal. */
  readonly newSeq: number;
  readonly offset: number;
  readonly record: LedgerRecord;
}

export interface JournalExamination {
  readonly scan: JournalScan;
  /** Nothing wrong: every frame valid, seq 1, 2, 3, ..., every record replays. */
  readonly sound: boolean;
  /** In file order; the first is the first bad offset. */
  readonly problems: JournalProblem[];
  /** What a repaired journal holds, in order. */
  readonly kept: KeptRecord[];
  readonly setAside: SetAside[];
  /** The kept records replayed. */
  readonly ledger: Ledger;
}

/** Reading only: a Ledger needs a journal, and nothing here may append. */
class ReadOnlyJournal implements Journal {
  readonly durableSeq = 0;
  append(record: LedgerRecord): Promise<number> {
    return Promise.reject(new Error(`examining a journal: cannot append a ${record.type} record`));
  }
  async entriesSince(): Promise<JournalEntry[]> {
    return [];
  }
  async close(): Promise<void> {}
}

export function examineJournal(data: Buffer, startingCash: number): JournalExamination {
  const scan = scanJournal(data);
  const ledger = new Ledger(new ReadOnlyJournal(), startingCash);
  const problems: JournalProblem[] = [];
  const kept: KeptRecord[] = [];
  const setAside: SetAside[] = [];
  if (scan.header) {
    problems.push({ offset: 0, why: scan.header, repair: 'nothing: the file cannot be read as a journal' });
    return { scan, sound: false, problems, kept, setAside, ledger };
  }
  type Event = { offset: number } & ({ frame: JournalScan['frames'][number] } | { damage: JournalScan['damage'][number] });
  const events: Event[] = [...scan.frames.map((frame) => ({ offset: frame.offset, frame })), ...scan.damage.map((damage) => ({ offset: damage.offset, damage }))];
  events.sort((a, b) => a.offset - b.offset);
  const bySeq = new Map<number, JournalScan['frames'][number]>();
  let last = 0;
  for (const event of events) {
    if ('damage' in event) {
      const { offset, bytes, reason, torn } = event.damage;
      problems.push(
        torn
          ? { offset, why: `torn tail: ${reason}, ${bytes} bytes to the end of the file`, repair: 'dropped: a frame a crash left half written was never acknowledged (keel run drops it too)' }
          : { offset, why: `${bytes} damaged bytes (${reason}); a valid frame follows at byte ${offset + bytes}`, repair: 'dropped: the records they held are lost' },
      );
      continue;
    }
    const { frame } = event;
    const { offset, seq, record } = frame;
    if (seq <= last) {
      const earlier = bySeq.get(seq);
      if (earlier?.payload.equals(frame.payload)) {
        problems.push({ offset, why: `seq ${seq} again, after seq ${last}: an identical copy of the frame at byte ${earlier.offset} (a duplicated tail)`, repair: 'dropped: a copy' });
      } else {
        const reason = `seq ${seq} again, after seq ${last}, with a different ${record.type} record${earlier ? ` from the one at byte ${earlier.offset}` : ''} (a second writer?)`;
        problems.push({ offset, why: reason, repair: 'set aside' });
        setAside.push({ seq, offset, reason, record });
      }
      continue;
    }
    if (seq > last + 1) {
      problems.push({ offset, why: `seq ${seq} follows seq ${last}: ${seq - last === 2 ? `seq ${last + 1} is` : `seq ${last + 1}..${seq - 1} are`} missing`, repair: 'kept; it and the records after it renumbered' });
    }
    last = seq;
    bySeq.set(seq, frame);
    let why = replayProblem(record);
    if (why === undefined) {
      const evidence = ledger.evidence.length;
      try {
        ledger.replay([{ seq: ledger.seq + 1, record }]);
        // What replay sets aside (a fill at price NaN, beyond its order, ...) moves nothing: the ledger's own verdict.
        const aside = ledger.evidence.slice(evidence).find((e) => e.kind === 'set-aside');
        if (aside) why = aside.reason;
      } catch (error) {
        why = (error as Error).message;
      }
    }
    if (why !== undefined) {
      const reason = `seq ${seq}, a ${record.type} record: ${why}: it can never replay`;
      problems.push({ offset, why: reason, repair: 'set aside' });
      setAside.push({ seq, offset, reason, record });
      continue;
    }
    kept.push({ seq, newSeq: kept.length + 1, offset, record });
  }
  return { scan, sound: problems.length === 0, problems, kept, setAside, ledger };
}

/**
 * Why a record can never replay, as far as its own fields tell: an order or
 * status replay would build on values it cannot count with. Fills and
 * commissions are the ledger's to judge (src/trading/executions.ts: it sets
 * aside what cannot count, in the context of its order); here only the
 * names they are filed under are checked. Records of kinds replay ignores (gate transitions,
 * refused executions kept as evidence, kinds newer than this check) pass.
 */
export function replayProblem(record: LedgerRecord): string | undefined {
  const r = record as unknown as Record<string, unknown>;
  // The names records are filed under (positions by symbol, fills by execId, orders by ref) must be names.
  const text = (key: string) => (typeof r[key] === 'string' ? undefined : `${key} ${shown(r[key])}`);
  const positive = (key: string) => {
    const v = r[key];
    return typeof v === 'number' && Number.isFinite(v) && v > 0 ? undefined : `${key} ${shown(v)}`;
  };
  const finite = (key: string) => (typeof r[key] === 'number' && Number.isFinite(r[key]) ? undefined : `${key} ${shown(r[key])}`);
  const nonzero = (key: string) => {
    const v = r[key];
    return typeof v === 'number' && Number.isFinite(v) && v !== 0 ? undefined : `${key} ${shown(v)}`;
  };
  switch (record.type) {
    case 'order':
      return (
        text('ref') ??
        text('symbol') ??
        nonzero('quantity') ??
        // A combo's net limit may be a credit (negative): it need only be a number.
        (record.orderType === 'LMT' ? (record.legs ? finite('limitPrice') : positive('limitPrice')) : record.orderType === 'MKT' ? undefined : `orderType ${shown(r.orderType)}`)
      );
    case 'order.status':
      return text('ref') ?? (ORDER_STATES.has(r.state) ? undefined : `state ${shown(r.state)}`);
    case 'fill':
      return text('execId') ?? text('symbol');
    case 'commission':
      return text('execId');
    default:
      return undefined;
  }
}

const ORDER_STATES: ReadonlySet<unknown> = new Set(['working', 'cancel-requested', 'cancelled', 'rejected', 'lost']);

function shown(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

/**
 * One JSON line. JSON has no NaN or infinities: they are written as the
 * strings "NaN", "Infinity" and "-Infinity" (a market order's limitPrice is
 * "NaN"), so nothing is confused with a missing value.
 */
export function jsonLine(value: unknown): string {
  return `${JSON.stringify(value, (_key, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : typeof v === 'bigint' ? v.toString() : v))}\n`;
}

/**
 * Writes the kept records as a new journal at `target` through FileJournal
 * (the same frames, fsynced), via a temporary file renamed into place.
 */
export async function writeRepaired(kept: readonly KeptRecord[], target: string): Promise<void> {
  const temp = `${target}.tmp`;
  // A temporary file an earlier repair left: FileJournal would append to it.
  await rm(temp, { force: true });
  const { journal } = await FileJournal.open(temp, { maxBatch: 4096 });
  try {
    await Promise.all(kept.map((k) => journal.append(k.record)));
  } finally {
    await journal.close();
  }
  await rename(temp, target);
}
