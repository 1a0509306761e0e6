/** The paper-account rule and the refusal it gives, as pure functions. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { accountRefusal, isPaperAccount, parseAccountList } from '../../src/ib/accounts.js';

const SETTING = 'components.paper_trader.settings.allowLiveAccount';

test('paper accounts are the ids that start with D; live ones do not', () => {
  for (const id of ['DU1234567', 'DF1234567', 'DUO071381']) assert.equal(isPaperAccount(id), true, id);
  for (const id of ['U1234567', 'F1234567', 'I1234567', 'du1234567', '']) assert.equal(isPaperAccount(id), false, id);
});

test('a managedAccounts list is split on commas, blanks and a trailing comma dropped', () => {
  assert.deepEqual(parseAccountList('DU1234567'), ['DU1234567']);
  assert.deepEqual(parseAccountList('DU1234567, DU7654321,'), ['DU1234567', 'DU7654321']);
  assert.deepEqual(parseAccountList(''), []);
});

test('a live account is refused, naming it and the setting, unless allowLiveAccount; no account at all is refused too', () => {
  assert.equal(accountRefusal(['DU1234567', 'DF7654321'], false, SETTING), undefined);
  const one = accountRefusal(['DU1234567', 'U1234567'], false, SETTING);
  assert.equal(one, `account U1234567 is not a paper account (IB paper account ids start with D): keel trades paper accounts only; set ${SETTING}: true to trade it anyway`);
  assert.match(accountRefusal(['U1', 'F2'], false, SETTING) ?? '', /^accounts U1, F2 are not paper accounts/);
  assert.equal(accountRefusal(['U1234567'], true, SETTING), undefined);
  assert.match(accountRefusal([], true, SETTING) ?? '', /no managed account/);
});
