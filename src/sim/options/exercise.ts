/**
 * EXERCISE_OPTIONS at the simulated broker: what an instruction about a long
 * option position does, or why it is refused.
 *
 * - Lapse (exerciseAction 2) is OCC's contrary instruction "do not
 *   exercise": taken on the expiry day for up to the long position, until
 *   30 minutes after the close (16:30 New York; 13:30 on an early-close
 *   day). At the close those contracts expire even in the money
 *   (close-of-day.ts). A later instruction for the same contract replaces
 *   the earlier one.
 * - Exercise (exerciseAction 1) is American exercise now: the contracts go
 *   and 100 shares each come (a call) or go (a put) at the strike, with no
 *   execution reported, as at an exercise by exception.
 *
 * Pure: the request, the position and the time in, the decision out.
 */
import type { OptionContract } from '../../journal/records.js';
import { expiryMs } from '../../options/expiry.js';
import { sessionDate } from '../../trading/trading-day.js';

export const EXERCISE = 1;
export const LAPSE = 2;

/** How long after the expiry day's close contrary instructions are still taken (OCC: 16:30 New York after a 16:00 close). */
export const INSTRUCTION_CUTOFF_AFTER_CLOSE_MS = 30 * 60_000;

export interface ExerciseInput {
  /** The option's OSI symbol, for the reasons given. */
  readonly symbol: string;
  readonly option: OptionContract;
  readonly action: number;
  readonly quantity: number;
  /** The account's position in the option, contracts (negative: short). */
  readonly held: number;
  /** Wall-clock ms of the request. */
  readonly at: number;
}

export type ExerciseDecision =
  | { readonly kind: 'lapse'; readonly contracts: number }
  | { readonly kind: 'exercise'; readonly contracts: number; readonly shares: number }
  | { readonly kind: 'refused'; readonly reason: string };

export function decideExercise(input: ExerciseInput): ExerciseDecision {
  const { symbol, option, action, quantity, held, at } = input;
  const refused = (reason: string): ExerciseDecision => ({ kind: 'refused', reason });
  if (action !== EXERCISE && action !== LAPSE) return refused(`exerciseAction must be ${EXERCISE} (exercise) or ${LAPSE} (lapse), got ${action}`);
  if (!Number.isInteger(quantity) || quantity <= 0) return refused(`exerciseQuantity must be a whole number of contracts above 0, got ${quantity}`);
  if (held <= 0) return refused(`no long position in ${symbol} to ${action === LAPSE ? 'lapse' : 'exercise'} (position ${held})`);
  if (quantity > held) return refused(`exerciseQuantity ${quantity} is above the long position of ${held} in ${symbol}`);
  const cutoff = expiryMs(option.expiry) + INSTRUCTION_CUTOFF_AFTER_CLOSE_MS;
  if (at >= cutoff) return refused(`${symbol} expired: instructions were taken until ${new Date(cutoff).toISOString()}, 30 minutes after the close of ${option.expiry}`);
  if (action === EXERCISE) return { kind: 'exercise', contracts: quantity, shares: quantity * option.multiplier * (option.right === 'C' ? 1 : -1) };
  const today = sessionDate(at).replaceAll('-', '');
  if (today !== option.expiry) return refused(`a lapse instruction for ${symbol} is taken on its expiry day, ${option.expiry}, not on ${today}`);
  return { kind: 'lapse', contracts: quantity };
}
