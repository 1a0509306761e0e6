import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

/**
 * The root logger. JSON lines by default; human-readable when stdout is a
 * terminal. Both write synchronously so a line logged just before exit is
 * never lost.
 */
export function createLogger(options: { level: LogLevel; pretty?: boolean; destination?: NodeJS.WritableStream }): Logger {
  const usePretty = options.pretty ?? (process.stdout.isTTY === true && options.destination === undefined);
  if (usePretty) {
    return pino({ level: options.level }, pretty({ sync: true, colorize: true, ignore: 'pid,hostname', translateTime: 'HH:MM:ss.l' }));
  }
  return pino({ level: options.level, base: undefined }, options.destination ?? pino.destination({ fd: 1, sync: true }));
}
