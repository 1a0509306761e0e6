/** What a soak found, and the summary it prints. */
import type { FaultKind } from './plan.js';
import type { FillComparison, MemoryVerdict, OrderComparison } from './verdicts.js';

export interface Check {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

export interface FaultOutcome {
  /** Planned start, ms after the daemon was first ready. */
  readonly atMs: number;
  /** When it really started, ms after the daemon was first ready; undefined when it was never injected. */
  readonly startedMs: number | undefined;
  readonly kind: FaultKind;
  readonly symbol: string;
  readonly observed: string;
  /** From injection to the gate seen ACTIVE again. */
  readonly recoveredInMs: number | undefined;
  readonly ok: boolean;
  readonly problem?: string;
}

export interface DaemonLife {
  /** 1 for the first daemon, 2 after the first restart, ... */
  readonly incarnation: number;
  readonly memory: MemoryVerdict;
}

export interface SoakReport {
  readonly ok: boolean;
  readonly minutes: number;
  readonly seed: number;
  /** Where the run's configs, journal and logs are (removed after a clean pass unless kept). */
  readonly dir: string;
  readonly kept: boolean;
  readonly elapsedMs: number;
  readonly checks: readonly Check[];
  readonly faults: readonly FaultOutcome[];
  readonly fills: FillComparison | undefined;
  readonly orders: OrderComparison | undefined;
  readonly lives: readonly DaemonLife[];
}

const mb = (bytes: number) => (Number.isFinite(bytes) ? `${(bytes / 1048576).toFixed(0)} MB` : '-');
const seconds = (ms: number | undefined) => (ms === undefined ? '-' : `${(ms / 1000).toFixed(1)} s`);
const pct = (x: number) => (Number.isFinite(x) ? `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)} %` : '-');

function table(header: readonly string[], rawRows: readonly (readonly string[])[]): string[] {
  const rows = rawRows.map((r) => r.map((cell) => cell.replace(/\s*\n\s*/g, ' | ')));
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
}

export function formatReport(r: SoakReport): string {
  const out: string[] = [];
  out.push(`keel soak: ${r.minutes} min, seed ${r.seed}, ran ${seconds(r.elapsedMs)}`);
  out.push('');
  out.push(
    ...table(
      ['at', 'fault', 'symbol', 'gate', 'back after', 'result'],
      r.faults.map((f) => [
        seconds(f.startedMs ?? f.atMs),
        f.kind,
        f.kind === 'nan-burst' || f.kind === 'silent-feed' ? f.symbol : '',
        f.observed,
        seconds(f.recoveredInMs),
        f.ok ? 'ok' : `FAILED: ${f.problem ?? ''}`,
      ]),
    ),
  );
  out.push('');
  out.push(
    ...table(
      ['daemon', 'judged over', 'RSS peak, 1st half', '2nd half', 'growth', 'heap peak, 1st half', '2nd half'],
      r.lives.map((l) => [
        `#${l.incarnation}`,
        l.memory.judged ? seconds(l.memory.windowMs) : `${seconds(l.memory.windowMs)} (too short)`,
        mb(l.memory.earlyPeakRss),
        mb(l.memory.latePeakRss),
        pct(l.memory.rssGrowth),
        mb(l.memory.earlyPeakHeap),
        mb(l.memory.latePeakHeap),
      ]),
    ),
  );
  out.push('');
  out.push(...table(['check', 'result', 'detail'], r.checks.map((c) => [c.name, c.ok ? 'PASS' : 'FAIL', c.detail])));
  out.push('');
  const failed = r.checks.filter((c) => !c.ok).map((c) => c.name);
  out.push(failed.length === 0 ? `PASS: every check held. Files: ${r.dir}${r.kept ? '' : ' (removed)'}` : `FAIL: ${failed.join('; ')}. Files kept in ${r.dir}`);
  return `${out.join('\n')}\n`;
}
