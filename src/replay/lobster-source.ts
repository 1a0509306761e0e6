/**
 * A LOBSTER sample (lobsterdata.com: a message file and an order-book file
 * per symbol and day) as a recording: each published book becomes the IB
 * depth-row operations that reach it, each execution a print, at the
 * message's time. Either file of the pair may be named; the other is found
 * beside it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { readLobsterBooks, replayOperations } from '../market/lobster.js';
import { DEFAULT_FEATURE_OPTIONS, featureSchema } from '../market/features.js';
import { DEPTH_ROW, RECORDING_FORMAT, RECORDING_VERSION, RecordedChunk, RecordingError, TRADE_ROW, type Recording } from './recording.js';

const NAME = /^([A-Za-z0-9.]+)_(\d{4})-(\d{2})-(\d{2})_\d+_\d+_(message|orderbook)_(\d+)\.csv$/;
const SHORT_NAME = /^([A-Za-z0-9.]+)_(\d{4})-(\d{2})-(\d{2})_(message|orderbook)_(\d+)\.csv$/;

/** True when `path` is named like a LOBSTER file. */
export function isLobsterFile(path: string): boolean {
  return NAME.test(basename(path)) || SHORT_NAME.test(basename(path));
}

/** LOBSTER message types that are executions: visible and hidden. */
const EXECUTIONS = new Set([4, 5]);
/** New York is UTC-4 in June; LOBSTER times are seconds after midnight local time. Good enough for a day boundary. */
const NEW_YORK_OFFSET_MS = 4 * 3_600_000;

export function openLobster(path: string, chunkRows = 8_192): Recording {
  const name = basename(path);
  const m = NAME.exec(name) ?? SHORT_NAME.exec(name);
  if (!m) throw new RecordingError(`${path} is not named like a LOBSTER file (SYMBOL_YYYY-MM-DD_..._message_N.csv or _orderbook_N.csv)`);
  const [, symbol, year, month, day, kind] = m;
  const messages = kind === 'message' ? path : path.replace(/_orderbook_(\d+)\.csv$/, '_message_$1.csv');
  const books = kind === 'orderbook' ? path : path.replace(/_message_(\d+)\.csv$/, '_orderbook_$1.csv');
  for (const f of [messages, books]) if (!existsSync(f)) throw new RecordingError(`a LOBSTER replay needs both files of the pair; missing ${f}`);

  const book = readLobsterBooks(books);
  const times: number[] = [];
  const trades: { type: number; size: number; price: number }[] = [];
  readFileSync(messages, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .forEach((line, row) => {
      const cells = line.split(',').map(Number);
      if (cells.length < 6 || cells.slice(0, 6).some((n) => !Number.isFinite(n))) throw new RecordingError(`${messages}:${row + 1}: expected 6 numbers (time, type, order id, size, price, direction), got ${JSON.stringify(line)}`);
      if (row > 0 && cells[0]! < times[row - 1]! / 1000) throw new RecordingError(`${messages}:${row + 1}: time goes backwards`);
      times.push(cells[0]! * 1000);
      trades.push({ type: cells[1]!, size: cells[3]!, price: cells[4]! / 10_000 });
    });
  if (times.length !== book.rows) throw new RecordingError(`${messages} has ${times.length} messages but ${books} has ${book.rows} books: they must pair row by row`);

  const { ops, starts } = replayOperations(book);
  // The book's row k is after message k: a print comes before the book change it caused.
  const all = new RecordedChunk(ops.length + trades.filter((t) => EXECUTIONS.has(t.type)).length);
  for (let k = 0; k < book.rows; k++) {
    const t = trades[k]!;
    if (EXECUTIONS.has(t.type)) all.add(TRADE_ROW, 0, 0, 0, 0, 0, t.price, t.size, times[k]!);
    for (let i = starts[k]!; i < starts[k + 1]!; i++) {
      const op = ops[i]!;
      all.add(DEPTH_ROW, 0, op.position, op.operation, op.side, 0, op.price, op.size, times[k]!);
    }
  }
  return {
    header: {
      format: RECORDING_FORMAT,
      version: RECORDING_VERSION,
      instruments: [symbol!],
      booked: [true],
      featureSchema: featureSchema(DEFAULT_FEATURE_OPTIONS),
      wallAt: Date.UTC(Number(year), Number(month) - 1, Number(day)) + NEW_YORK_OFFSET_MS,
      monotonicAt: 0,
      source: `LOBSTER ${basename(messages)}`,
    },
    total: all.count,
    truncated: 0,
    async *chunks() {
      for (let start = 0; start < all.count; start += chunkRows) {
        const end = Math.min(all.count, start + chunkRows);
        yield { chunk: all.slice(start, end), done: end };
      }
    },
  };
}
