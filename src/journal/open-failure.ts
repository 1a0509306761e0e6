/**
 * A journal that cannot open is a fault no restart heals: a directory that
 * cannot be created (under /proc, below a file, not allowed), a file that
 * cannot be opened, or a file that is not a journal keel can trust (damaged
 * records, a gap, another format). Each becomes a permanent failure naming
 * the file and the setting, so the daemon stops at once instead of trying
 * six times. Passing errors (too many open files, an I/O error) stay as
 * they are and are retried as before.
 */
import { dirname } from 'node:path';
import { makeDirectory } from '../files.js';
import { errnoOf, pathFailure, PermanentFailure, permanentOf } from '../supervision/permanent.js';

/** Creates the journal's directory (never with a recursive mkdir, which spins forever under /proc). */
export async function prepareJournalDirectory(path: string, componentId: string): Promise<void> {
  const dir = dirname(path);
  try {
    await makeDirectory(dir);
  } catch (error) {
    throw pathFailure(error, {
      doing: `cannot create the journal directory ${dir}`,
      setting: `components.${componentId}.settings.path`,
      want: 'a file in a directory keel can create and write',
    });
  }
}

/** What opening the journal at `path` failed with, as the component must fail: permanent unless a retry could go differently. */
export function journalOpenFailure(error: unknown, path: string, componentId: string): unknown {
  if (permanentOf(error)) return error;
  if (errnoOf(error) !== undefined) {
    return pathFailure(error, { doing: `cannot open the journal ${path}`, setting: `components.${componentId}.settings.path`, want: 'a file keel can write' });
  }
  // Not the system's error but the journal's own: the file is not one keel can trust as it is, and it will not change by itself.
  return new PermanentFailure(error instanceof Error ? error.message : String(error), 2, { cause: error });
}
