import pino, { type Logger } from 'pino';
import { createRequire } from 'node:module';
import type { Clock } from './clock.js';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

/**
 * The root logger. JSON lines by default; human-readable when stdout is a
 * terminal. Both write synchronously so a line logged just before exit is
 * never lost.
 */
export function createLogger(options: { level: LogLevel; pretty?: boolean; destination?: NodeJS.WritableStream; clock?: Clock }): Logger {
  const usePretty = options.pretty ?? (process.stdout.isTTY === true && options.destination === undefined);
  // Lines carry the clock's wall time, as the journal does: under a fast market clock both read market time.
  const { clock } = options;
  const timestamp = clock ? () => `,"time":${Math.round(clock.wallNow())}` : true;
  if (usePretty) {
    // Loaded only for a terminal: a daemon's JSON lines do not need it.
    const pretty = createRequire(import.meta.url)('pino-pretty') as typeof import('pino-pretty');
    return pino({ level: options.level, timestamp }, pretty({ sync: true, colorize: true, ignore: 'pid,hostname', translateTime: 'HH:MM:ss.l' }));
  }
  return pino({ level: options.level, base: undefined, timestamp }, options.destination ?? pino.destination({ fd: 1, sync: true }));
}

type MergedLevel = 'debug' | 'info' | 'warn' | 'error';

interface OpenLine {
  readonly level: MergedLevel;
  readonly fields: object;
  readonly message: string;
  readonly since: number;
  repeats: number;
}

/** Distinct lines kept open at once; past it, the open ones are reported early so memory stays bounded. */
const MAX_OPEN_LINES = 1_000;

/**
 * Merges repeats of a line whose words come from outside (TWS, Redis): the
 * first is logged at once, identical ones within `windowMs` are only
 * counted, and one line says how many when the window closes. 50,000
 * identical 2104s in 5 s are then two lines, not 50,000.
 */
export class RepeatMerger {
  private readonly open = new Map<string, OpenLine>();
  private timer: unknown;

  constructor(
    private readonly log: Logger,
    private readonly clock: Clock,
    private readonly windowMs = 5_000,
  ) {}

  line(level: MergedLevel, fields: object, message: string): void {
    if (!this.log.isLevelEnabled(level)) return;
    const key = `${level}\u0000${message}`;
    const seen = this.open.get(key);
    if (seen) {
      seen.repeats += 1;
      return;
    }
    if (this.open.size >= MAX_OPEN_LINES) this.flush();
    this.open.set(key, { level, fields, message, since: this.clock.now(), repeats: 0 });
    this.log[level](fields, message);
    this.timer ??= this.clock.setTimeout(() => this.closeWindows(), this.windowMs);
  }

  /** Reports every count now: on stop, so a count is never lost. */
  flush(): void {
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    for (const line of this.open.values()) this.report(line);
    this.open.clear();
  }

  private closeWindows(): void {
    this.timer = undefined;
    const now = this.clock.now();
    let next = Infinity;
    for (const [key, line] of this.open) {
      if (now - line.since >= this.windowMs) {
        this.report(line);
        this.open.delete(key);
      } else next = Math.min(next, line.since + this.windowMs);
    }
    if (next !== Infinity) this.timer = this.clock.setTimeout(() => this.closeWindows(), next - now);
  }

  private report(line: OpenLine): void {
    if (line.repeats === 0) return;
    const seconds = (this.clock.now() - line.since) / 1000;
    const span = seconds >= 10 || Number.isInteger(seconds) ? seconds.toFixed(0) : seconds.toFixed(1);
    this.log[line.level]({ ...line.fields, repeated: line.repeats }, `${line.message} (repeated ${line.repeats === 1 ? 'once' : `${line.repeats.toLocaleString('en-US')} times`} in ${span} s)`);
  }
}
