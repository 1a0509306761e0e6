/**
 * The accounts a TWS / Gateway session trades (managedAccounts), and whether
 * keel may trade them: paper accounts only, unless the config says
 * otherwise in so many words.
 */
import { EventName, type IBApi } from './api.js';
import type { Clock } from '../clock.js';
import { firstAnswer } from './link.js';

/**
 * IB numbers its paper-trading accounts with a leading D (DU1234567 for an
 * individual's, DF… for an advisor's, DUO… in newer numbering), and live
 * ones without it (U… individual, F… advisor, I… broker). That is IB's
 * convention, seen in every paper login and its API samples; IB publishes
 * no flag that says "paper" through the API.
 */
export function isPaperAccount(id: string): boolean {
  return id.startsWith('D');
}

/** The ids of a managedAccounts message: comma-separated, sometimes with a trailing comma. */
export function parseAccountList(text: string): string[] {
  return text
    .split(',')
    .map((id) => id.trim())
    .filter((id) => id !== '');
}

/**
 * Why keel must not trade with these accounts, or undefined when it may:
 * every one is a paper account, or `allowLiveAccount` is set. `setting`
 * names the key to change, for the message.
 */
export function accountRefusal(accounts: readonly string[], allowLiveAccount: boolean, setting: string): string | undefined {
  if (accounts.length === 0) return 'TWS reported no managed account: keel cannot tell whether it would trade a paper account';
  const live = accounts.filter((id) => !isPaperAccount(id));
  if (live.length === 0 || allowLiveAccount) return undefined;
  const which = live.length === 1 ? `account ${live[0]} is not a paper account` : `accounts ${live.join(', ')} are not paper accounts`;
  return `${which} (IB paper account ids start with D): keel trades paper accounts only; set ${setting}: true to trade it anyway`;
}

/**
 * Asks TWS for its managed accounts (reqManagedAccts). `send` sends the
 * request, or returns false when it cannot; either failure, and no answer
 * within `timeoutMs`, rejects.
 */
export async function requestManagedAccounts(api: IBApi, clock: Clock, timeoutMs: number, send: (request: (api: IBApi) => void) => boolean): Promise<string[]> {
  if (!send((ib) => ib.reqManagedAccts())) throw new Error('the IB link is not ready: cannot ask TWS for its managed accounts');
  const list = await firstAnswer<string>(api, clock, timeoutMs, (settle) => [[EventName.managedAccounts, settle]]);
  if (list === undefined) throw new Error(`TWS did not report its managed accounts within ${timeoutMs} ms`);
  return parseAccountList(list);
}
