/**
 * `keel options price`: the option calculator (src/options/) from the shell.
 * Prints one JSON object; a mistake in the flags exits 2 with one line
 * naming the flag, a price with no implied volatility exits 1 with the
 * reason in the JSON.
 */
import { americanGreeks } from '../options/american.js';
import { bsmGreeks, CALL, newGreeks, PUT, type Right } from '../options/bsm.js';
import { ExpiryError, expiryMs, newYorkTimeMs, yearsToExpiry } from '../options/expiry.js';
import { americanImpliedVolCode, impliedVolCode, ivReason } from '../options/implied-vol.js';
import { numberFlag, reportMistakes, stringFlag, UserError, type Values } from './flags.js';
import type { Command } from './main.js';

const EUROPEAN = 'Black-Scholes-Merton (European, cost of carry r - q); IV by Jaeckel "Let\'s Be Rational"';
const AMERICAN = 'Bjerksund-Stensland 2002 (American); IV by regula falsi on it; greeks by finite differences';

export const optionsCommands: Record<string, Command> = {
  'options price': {
    summary: 'option price, IV and greeks',
    usage: 'keel options price --spot S --strike K --expiry D --right C|P [...]',
    help: `Prices a European option by Black-Scholes-Merton (or an American one by
Bjerksund-Stensland 2002) from a volatility, or implies the volatility from a
price, and prints JSON: price, iv, delta, gamma, vega, theta and the model.

Options:
      --spot S         underlying price (required)
      --strike K       strike (required)
      --expiry D       YYYYMMDD (expires at that day's close, 16:00 New York,
                       13:00 on NYSE's early-close days) or YYYYMMDDTHH:MM
                       (that New York time) (required)
      --at TIME        valuation time (default: now): ISO 8601 with Z or an
                       offset, or YYYY-MM-DDTHH:MM[:SS] as New York time
      --right C|P      call or put (required)
      --rate R         risk-free rate, continuous, a decimal: 0.053 = 5.3 %
                       (required; negative as --rate=-0.005)
      --dividend Q     dividend yield, continuous, a decimal (required)
      --vol V          volatility, a decimal: 0.15 = 15 % (this or --price)
      --price P        option price to imply the volatility from
      --american       American exercise (Bjerksund-Stensland 2002)

Units (IB's): price per share (x100 for a contract); iv a decimal, no cap;
delta and gamma per $1 of the underlying; vega per volatility point (the
change for sigma + 0.01); theta per calendar day. Time to expiry is calendar
time in years of 365 days ("years" in the output).

A price below intrinsic value or at or above the bound (a call's spot, a
put's strike) has no volatility: iv is null with a "reason", and the exit
status is 1. A mistake in the flags exits 2.`,
    options: {
      spot: { type: 'string' },
      strike: { type: 'string' },
      expiry: { type: 'string' },
      at: { type: 'string' },
      right: { type: 'string' },
      rate: { type: 'string' },
      dividend: { type: 'string' },
      vol: { type: 'string' },
      price: { type: 'string' },
      american: { type: 'boolean' },
    },
    async run(values, positionals) {
      return reportMistakes(() => price(values, positionals));
    },
  },
};

function required<T>(value: T | undefined, name: string): T {
  if (value === undefined) throw new UserError(`--${name} is required`);
  return value;
}

function parseRight(text: string): Right {
  const t = text.trim().toUpperCase();
  if (t === 'C' || t === 'CALL') return CALL;
  if (t === 'P' || t === 'PUT') return PUT;
  throw new UserError(`--right must be C or P, got '${text}'`);
}

/** --at: an instant with its zone, or a New York wall time; undefined means now. */
function parseAt(text: string | undefined): number {
  if (text === undefined) return Date.now();
  const wall = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2}))?$/.exec(text.trim());
  if (wall) {
    const [y, mo, d, h, mi, s] = wall.slice(1).map((p) => Number(p ?? 0)) as [number, number, number, number, number, number];
    const ms = newYorkTimeMs(y, mo, d, h, mi, s);
    if (!Number.isNaN(ms) && mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h < 24 && mi < 60 && s < 60) return ms;
  } else if (/(Z|[+-]\d{2}:?\d{2})$/i.test(text.trim())) {
    const ms = Date.parse(text);
    if (!Number.isNaN(ms)) return ms;
  }
  throw new UserError(`--at must be an ISO 8601 time with Z or an offset (2024-01-05T15:00:00Z) or a New York time (2024-01-05T10:00), got '${text}'`);
}

const finite = (n: number) => Number.isFinite(n);
const positive = (n: number) => Number.isFinite(n) && n > 0;

/** JSON has no NaN: a number that is not one becomes null. */
const num = (x: number) => (Number.isFinite(x) ? x : null);

function price(values: Values, positionals: string[]): number {
  if (positionals.length > 0) throw new UserError(`unexpected argument '${positionals[0]}'`);
  const spot = required(numberFlag(values, 'spot', 'a number above 0', positive), 'spot');
  const strike = required(numberFlag(values, 'strike', 'a number above 0', positive), 'strike');
  const expiryText = required(stringFlag(values, 'expiry'), 'expiry');
  const right = parseRight(required(stringFlag(values, 'right'), 'right'));
  const rate = required(numberFlag(values, 'rate', 'a number (a decimal: 0.05 = 5 %)', finite), 'rate');
  const dividend = required(numberFlag(values, 'dividend', 'a number (a decimal: 0.015 = 1.5 %)', finite), 'dividend');
  const vol = numberFlag(values, 'vol', 'a number above 0 (a decimal: 0.15 = 15 %)', positive);
  const quote = numberFlag(values, 'price', 'a number of at least 0', (n) => Number.isFinite(n) && n >= 0);
  if ((vol === undefined) === (quote === undefined)) throw new UserError('give exactly one of --vol (to price) and --price (to imply the volatility)');
  const american = values.american === true;

  let expiresAt: number;
  try {
    expiresAt = expiryMs(expiryText);
  } catch (err) {
    if (err instanceof ExpiryError) throw new UserError(`--expiry: ${err.message}`);
    throw err;
  }
  const at = parseAt(stringFlag(values, 'at'));
  const years = yearsToExpiry(expiresAt, at);
  if (!(years > 0)) {
    throw new UserError(`--expiry ${expiryText} (${new Date(expiresAt).toISOString()}) is not after the valuation time ${new Date(at).toISOString()} (--at)`);
  }

  let sigma = vol;
  let reason: string | undefined;
  if (quote !== undefined) {
    const code = american ? americanImpliedVolCode(right, quote, spot, strike, years, rate, dividend) : impliedVolCode(right, quote, spot, strike, years, rate, dividend);
    if (code >= 0) sigma = code;
    else reason = ivReason(code);
  }
  const g = newGreeks();
  if (sigma !== undefined) (american ? americanGreeks : bsmGreeks)(right, spot, strike, years, rate, dividend, sigma, g);
  const out = {
    model: american ? AMERICAN : EUROPEAN,
    right: right === CALL ? 'C' : 'P',
    spot,
    strike,
    expiry: new Date(expiresAt).toISOString(),
    at: new Date(at).toISOString(),
    years,
    rate,
    dividend,
    price: quote ?? num(g.price),
    iv: sigma === undefined ? null : sigma,
    delta: num(g.delta),
    gamma: num(g.gamma),
    vega: num(g.vega),
    theta: num(g.theta),
    ...(reason === undefined ? {} : { reason }),
  };
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  return reason === undefined ? 0 : 1;
}
