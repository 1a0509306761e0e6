/**
 * `keel journal check|repair|show`: a journal file looked at from outside
 * the daemon (src/journal/examine.ts does the reading). None of them changes
 * the file; repair writes a new one beside it. A missing file or a bad flag
 * exits 2 with one line, never a stack trace.
 */
import { existsSync } from 'node:fs';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { describeHolder, liveHolder } from '../journal/file-lock.js';
import { examineJournal, jsonLine, writeRepaired, type JournalExamination } from '../journal/examine.js';
import { scanJournal, shellWord } from '../journal/file-journal.js';
import { numberFlag, reportMistakes, UserError, type Values } from './flags.js';
import type { Command } from './main.js';

const EXIT_DAMAGED = 1;
/** The journal component's default startingCash. */
const DEFAULT_STARTING_CASH = 1_000_000;

export const journalCommands: Record<string, Command> = {
  'journal check': {
    summary: 'verify a journal and replay it',
    usage: 'keel journal check FILE [--starting-cash N]',
    help: `Reads every frame of a journal file (length, crc, shape), checks that seq
runs 1, 2, 3, ... and that every record can replay, and replays it through
the ledger as the journal component does at start. Prints the records,
orders, fills, positions and cash; when something is wrong, the first bad
offset and why, then every problem and what \`keel journal repair\` would do
about it. Changes nothing.

Exit 0 when the journal is sound, 1 when it is damaged (a torn tail too:
keel run drops it at start, but it is not a clean file).

Options:
      --starting-cash N   cash before the first record (default ${DEFAULT_STARTING_CASH},
                          the journal component's startingCash)`,
    options: { 'starting-cash': { type: 'string' } },
    async run(values, positionals) {
      return reportMistakes(() => check(values, positionals));
    },
  },
  'journal repair': {
    summary: 'write a repaired copy beside a journal',
    usage: 'keel journal repair FILE [--force]',
    help: `Writes FILE.repaired: every readable record of FILE in order, except a
torn tail (never acknowledged), damaged bytes, and identical copies of
records already kept (a duplicated tail). Records that can never replay (a
fill with a non-finite price or size, ...) and different records under a seq
already taken (a second writer) are set aside in FILE.set-aside.jsonl, one
JSON line each with the reason. Records after a loss get new seq numbers.
FILE itself is never touched: the output ends with the mv commands that
switch to the repaired journal, to run with keel stopped.

Exit 0 when FILE.repaired was written or FILE is sound (nothing written),
1 when FILE cannot be read as a journal at all.

Options:
      --force   overwrite FILE.repaired and FILE.set-aside.jsonl if they exist`,
    options: { force: { type: 'boolean' } },
    async run(values, positionals) {
      return reportMistakes(() => repair(values, positionals));
    },
  },
  'journal show': {
    summary: "print a journal's records as JSON lines",
    usage: 'keel journal show FILE [--since SEQ]',
    help: `Prints every readable record of FILE in file order, one JSON line each:
{"seq":N,"record":{...}}. JSON has no NaN or infinities: they are printed
as the strings "NaN", "Infinity" and "-Infinity" (a market order's
limitPrice is "NaN"). Damage is reported on stderr after the records, and
the exit is 1; the records around it are printed all the same.

Options:
      --since SEQ   only records with a seq above SEQ (as the journal's
                    entriesSince: pass the last seq you have)`,
    options: { since: { type: 'string' } },
    async run(values, positionals) {
      return reportMistakes(() => show(values, positionals));
    },
  },
};

async function check(values: Values, positionals: string[]): Promise<number> {
  const file = onlyFile(positionals);
  const startingCash = numberFlag(values, 'starting-cash', 'a number above 0', (n) => Number.isFinite(n) && n > 0) ?? DEFAULT_STARTING_CASH;
  const exam = examineJournal(await readJournalFile(file), startingCash);
  noteWriter(file);
  const lines: string[] = [];
  if (exam.scan.header) {
    await print(`${file}: ${exam.scan.header}\n`);
    return EXIT_DAMAGED;
  }
  const first = exam.problems[0];
  lines.push(
    first
      ? `${file}: DAMAGED, ${count(exam.problems.length, 'problem')}; the first at byte ${first.offset}: ${first.why}`
      : `${file}: sound, ${count(exam.kept.length, 'record')}${exam.kept.length > 0 ? ` (seq 1..${exam.kept.length})` : ''}, ${exam.scan.size} bytes`,
  );
  if (first) {
    for (const p of exam.problems) lines.push(`  byte ${p.offset}: ${p.why}\n    repair: ${p.repair}`);
    lines.push(`  ${exam.scan.frames.length} readable frames; what follows is the ${count(exam.kept.length, 'record')} a repair keeps, replayed`);
  }
  lines.push(...summary(exam));
  if (first) lines.push(`Run \`keel journal repair ${shellWord(file)}\` to write a repaired copy beside it (${shellWord(file)} is left as it is).`);
  await print(`${lines.join('\n')}\n`);
  return first ? EXIT_DAMAGED : 0;
}

async function repair(values: Values, positionals: string[]): Promise<number> {
  const file = onlyFile(positionals);
  const exam = examineJournal(await readJournalFile(file), DEFAULT_STARTING_CASH);
  if (exam.scan.header) {
    process.stderr.write(`keel: ${file}: ${exam.scan.header}: nothing to repair from\n`);
    return EXIT_DAMAGED;
  }
  if (exam.sound) {
    await print(`${file} is sound (${count(exam.kept.length, 'record')}): nothing to repair\n`);
    return 0;
  }
  const target = `${file}.repaired`;
  const sidecar = `${file}.set-aside.jsonl`;
  if (values.force !== true) {
    for (const path of [target, sidecar]) if (existsSync(path)) throw new UserError(`${path} exists: move it away, or pass --force to overwrite it`);
  }
  try {
    await writeRepaired(exam.kept, target);
    await rm(sidecar, { force: true });
    if (exam.setAside.length > 0) {
      await writeFile(`${sidecar}.tmp`, exam.setAside.map((s) => jsonLine({ seq: s.seq, offset: s.offset, reason: s.reason, record: s.record })).join(''));
      await rename(`${sidecar}.tmp`, sidecar);
    }
  } catch (error) {
    throw new UserError(`cannot write the repaired journal beside ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  const lines = [`${file}: wrote ${target}, ${count(exam.kept.length, 'record')}${exam.kept.length > 0 ? ` (seq 1..${exam.kept.length})` : ''}; ${file} is unchanged`];
  for (const p of exam.problems) lines.push(`  byte ${p.offset}: ${p.repair}: ${p.why}`);
  const renumbered = exam.kept.find((k) => k.seq !== k.newSeq);
  if (renumbered) lines.push(`  seq numbers change from byte ${renumbered.offset} on: seq ${renumbered.seq} is now seq ${renumbered.newSeq}`);
  if (exam.setAside.length > 0) lines.push(`  ${count(exam.setAside.length, 'record')} set aside in ${sidecar}, one JSON line each with the reason`);
  const damaged = unusedName(`${file}.damaged`);
  lines.push(
    ...summary(exam),
    'To switch to the repaired journal, with keel stopped:',
    `  mv ${shellWord(file)} ${shellWord(damaged)}`,
    `  mv ${shellWord(target)} ${shellWord(file)}`,
  );
  noteWriter(file);
  await print(`${lines.join('\n')}\n`);
  return 0;
}

async function show(values: Values, positionals: string[]): Promise<number> {
  const file = onlyFile(positionals);
  const since = numberFlag(values, 'since', 'a whole number of at least 0', (n) => Number.isSafeInteger(n) && n >= 0) ?? 0;
  const scan = scanJournal(await readJournalFile(file));
  if (scan.header) {
    process.stderr.write(`keel: ${file}: ${scan.header}\n`);
    return EXIT_DAMAGED;
  }
  // Lines go out in chunks, each waiting for the reader: a large journal arrives whole through a pipe.
  let chunk = '';
  for (const frame of scan.frames) {
    if (frame.seq <= since) continue;
    chunk += jsonLine({ seq: frame.seq, record: frame.record });
    if (chunk.length >= 64 * 1024) {
      if (!(await print(chunk))) return 0;
      chunk = '';
    }
  }
  if (chunk !== '' && !(await print(chunk))) return 0;
  // The sequence and replay are check's to judge; show only says where the bytes are bad.
  if (scan.damage.length > 0) {
    const first = scan.damage[0]!;
    process.stderr.write(
      `keel: ${file}: ${count(scan.damage.length, 'damaged range')}, the first at byte ${first.offset} (${first.reason}); see \`keel journal check ${shellWord(file)}\`\n`,
    );
    return EXIT_DAMAGED;
  }
  return 0;
}

/** Orders, fills, positions and cash of the replayed records. */
function summary(exam: JournalExamination): string[] {
  const { ledger } = exam;
  const view = ledger.view(Date.now());
  const types = new Map<string, number>();
  for (const k of exam.kept) types.set(k.record.type, (types.get(k.record.type) ?? 0) + 1);
  const positions = view.positions
    .filter((p) => p.quantity !== 0)
    .map((p) => `${p.symbol} ${p.quantity}`)
    .sort();
  return [
    `  records    ${exam.kept.length}${types.size > 0 ? `: ${[...types].map(([type, n]) => `${n} ${type}`).join(', ')}` : ''}`,
    `  orders     ${ledger.orders.size} (${ledger.workingOrders().length} working)`,
    `  fills      ${ledger.fills.size}`,
    `  positions  ${positions.length > 0 ? positions.join(', ') : 'none'}`,
    `  cash       ${money(view.cash)} (starting ${money(ledger.startingCash)}); realized P&L ${money(view.realizedPnl)}, fees ${money(view.fees)}`,
  ];
}

function money(n: number): string {
  return n.toFixed(2);
}

function count(n: number, what: string): string {
  return `${n} ${what}${n === 1 ? '' : 's'}`;
}

/** `base`, or base.2, base.3, ...: the first that does not exist. */
function unusedName(base: string): string {
  if (!existsSync(base)) return base;
  for (let i = 2; ; i++) if (!existsSync(`${base}.${i}`)) return `${base}.${i}`;
}

/** Says on stderr that a daemon has the file open: what it is writing now may read as a torn tail. */
function noteWriter(file: string): void {
  const holder = liveHolder(file);
  if (holder) process.stderr.write(`keel: note: ${file} is open in a running keel (${describeHolder(holder)}): a record being written now may read as a torn tail; stop it before you switch files\n`);
}

function onlyFile(positionals: string[]): string {
  if (positionals.length === 0) throw new UserError('which journal? give its FILE');
  if (positionals.length > 1) throw new UserError(`expected one FILE, got ${positionals.length}`);
  return positionals[0]!;
}

async function readJournalFile(file: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new UserError(`cannot read ${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'a directory, not a journal file' : (code ?? (error as Error).message)}`);
  }
}

/**
 * Writes to stdout and waits while the pipe is full, so a large output is
 * complete through a pipe. False when the reader has gone (then stop).
 */
async function print(text: string): Promise<boolean> {
  const out = process.stdout;
  if (out.destroyed) return false;
  if (out.write(text)) return true;
  await new Promise<void>((resolve) => {
    const done = () => {
      out.off('drain', done);
      out.off('close', done);
      out.off('error', done);
      resolve();
    };
    out.on('drain', done);
    out.on('close', done);
    out.on('error', done);
  });
  return !out.destroyed;
}

