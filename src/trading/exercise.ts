/**
 * The contrary instruction: an operator tells keel not to exercise a long
 * option at its expiry (it then expires, in the money or not). The
 * instruction is journaled first, so a restart keeps it: book mode's
 * settlement and ib mode's reconciliation both read it from the ledger.
 * In ib mode the broker is told too (a lapse), since it is the broker
 * that settles.
 */
import type { Clock } from '../clock.js';
import { contraryInstructionProblem } from '../options/settlement.js';
import type { Ledger } from './ledger.js';
import type { Decision } from './risk-gate.js';
import type { Venue } from './venue.js';

export async function instructDoNotExercise(o: { ledger: Ledger; clock: Clock; venue: Venue | undefined; symbol: string; reason: string }): Promise<Decision> {
  const { ledger, clock, symbol } = o;
  const option = ledger.options.get(symbol);
  const contracts = ledger.positions.get(symbol)?.quantity ?? 0;
  const problem = contraryInstructionProblem(symbol, option, contracts, clock.wallNow());
  if (problem !== undefined) return { ok: false, reason: problem };
  if (ledger.doNotExercise.has(symbol)) return { ok: true };
  await ledger.record({ type: 'option.instruction', at: clock.wallNow(), symbol, instruction: 'do-not-exercise', reason: o.reason });
  o.venue?.lapse?.(option!, symbol, contracts);
  return { ok: true };
}
