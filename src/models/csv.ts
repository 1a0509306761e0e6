/**
 * Plain numeric CSV for the model tools: a header row of column names, then
 * comma-separated values. No quoting; cells are trimmed. Only the columns
 * asked for must be numbers, so a date column can ride along.
 */
import { readFileSync } from 'node:fs';

/** A file that cannot be read or used: the message names the file, and the row and column when there is one. */
export class CsvError extends Error {
  override name = 'CsvError';
}

export interface CsvTable {
  readonly header: readonly string[];
  /** Data rows, not counting the header. */
  readonly rows: number;
  /** The named columns as rows × names.length numbers, row-major; refuses a missing column or a cell that is not a finite number. */
  columns(names: readonly string[]): Float64Array;
}

export function readCsv(path: string): CsvTable {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new CsvError(`${path}: cannot read the file: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  return parseCsv(text, path);
}

export function parseCsv(text: string, source: string): CsvTable {
  const lines = text.split(/\r?\n/);
  while (lines.length > 0 && lines[lines.length - 1]!.trim() === '') lines.pop();
  if (lines.length === 0) throw new CsvError(`${source}: the file is empty; expected a header row of column names`);
  const header = lines[0]!.split(',').map((name) => name.trim());
  header.forEach((name, i) => {
    if (name === '') throw new CsvError(`${source}: line 1: column ${i + 1} has no name`);
    if (header.indexOf(name) !== i) throw new CsvError(`${source}: line 1: column '${name}' appears twice`);
  });
  const cells = lines.slice(1).map((line, i) => {
    const row = line.split(',');
    if (row.length !== header.length) throw new CsvError(`${source}: line ${i + 2} has ${row.length} cells, the header has ${header.length}`);
    return row;
  });

  return {
    header,
    rows: cells.length,
    columns(names) {
      const missing = names.filter((name) => !header.includes(name));
      if (missing.length > 0) {
        throw new CsvError(`${source}: no column ${missing.map((name) => `'${name}'`).join(', ')}; the file has ${header.join(', ')}`);
      }
      const index = names.map((name) => header.indexOf(name));
      const out = new Float64Array(cells.length * names.length);
      cells.forEach((row, r) => {
        index.forEach((column, j) => {
          const cell = row[column]!.trim();
          const value = cell === '' ? NaN : Number(cell);
          if (!Number.isFinite(value)) {
            throw new CsvError(`${source}: row ${r + 1} (line ${r + 2}), column '${names[j]}': ${cell === '' ? 'an empty cell' : `'${cell}'`} is not a finite number`);
          }
          out[r * names.length + j] = value;
        });
      });
      return out;
    },
  };
}

/** CSV text: the header row, then one line per row. */
export function formatCsv(header: readonly string[], rows: Iterable<readonly (string | number)[]>): string {
  const lines = [header.join(',')];
  for (const row of rows) lines.push(row.join(','));
  return `${lines.join('\n')}\n`;
}
