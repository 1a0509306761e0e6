/**
 * Option messages, field by field as @stoqey/ib's decoder.js reads them
 * (server versions 176 to 193), and the option requests as its encoder.js
 * writes them.
 *
 * Never an empty field where a number is meant: the decoder reads it as 0,
 * a false real zero. "Not computed" is −1 (implied vol, price, PV dividend,
 * underlying price) or −2 (delta, gamma, vega, theta), which the decoder
 * turns into undefined.
 */
import type { Field } from '../wire.js';
import { OPTION_MULTIPLIER, type ListedExpiry, type OptionContract, type OptionRight } from './listing.js';

export const TICK_OPTION_COMPUTATION = 21;
export const CONTRACT_DATA = 10;
export const CONTRACT_DATA_END = 52;
export const TICK_GENERIC = 45;
export const TICK_SNAPSHOT_END = 57;
export const MARKET_DATA_TYPE = 58;
export const SECURITY_DEFINITION_OPTION_PARAMETER = 75;
export const SECURITY_DEFINITION_OPTION_PARAMETER_END = 76;

/** Client-to-server ids (encoder.js OUT_MSG_ID). */
export const REQ_CALC_IMPLIED_VOLAT = 54;
export const REQ_CALC_OPTION_PRICE = 55;
export const CANCEL_CALC_IMPLIED_VOLAT = 56;
export const CANCEL_CALC_OPTION_PRICE = 57;
export const REQ_SEC_DEF_OPT_PARAMS = 78;

/** Tick types of message 21: bid, ask, last, model, and the delayed four; 53 answers calculate requests. */
export const BID_OPTION = 10;
export const ASK_OPTION = 11;
export const LAST_OPTION = 12;
export const MODEL_OPTION = 13;
export const DELAYED_OPTION_OFFSET = 70;
export const CUST_OPTION_COMPUTATION = 53;

/** Where reqSecDefOptParams rows come from: SMART and the exchanges that list SPY options. */
export const OPTION_EXCHANGES = ['SMART', 'AMEX', 'BATS', 'BOX', 'CBOE', 'EDGX', 'ISE', 'MIAX', 'PHLX'] as const;

/** What a message-21 computation carries; NaN for a value that cannot be computed. */
export interface Computation {
  impliedVol: number;
  delta: number;
  optPrice: number;
  pvDividend: number;
  gamma: number;
  vega: number;
  theta: number;
  undPrice: number;
}

export function newComputation(): Computation {
  return { impliedVol: NaN, delta: NaN, optPrice: NaN, pvDividend: NaN, gamma: NaN, vega: NaN, theta: NaN, undPrice: NaN };
}

/** −1 or −2 in place of a value that is not a finite number. */
const or = (value: number, sentinel: -1 | -2) => (Number.isFinite(value) ? value : sentinel);

/** TICK_OPTION_COMPUTATION without a version field (156+): tickAttrib 0, then always the eight doubles. */
export function optionComputation(reqId: number, tickType: number, c: Computation): Field[] {
  return [
    TICK_OPTION_COMPUTATION, reqId, tickType, 0,
    or(c.impliedVol, -1), or(c.delta, -2), or(c.optPrice, -1), or(c.pvDividend, -1),
    or(c.gamma, -2), or(c.vega, -2), or(c.theta, -2), or(c.undPrice, -1),
  ];
}

export function secDefOptParams(reqId: number, exchange: string, underConId: number, expiries: readonly string[], strikes: readonly number[]): Field[] {
  return [SECURITY_DEFINITION_OPTION_PARAMETER, reqId, exchange, underConId, 'SPY', 100, expiries.length, ...expiries, strikes.length, ...strikes];
}

/** Trading hours of the days from `today` to the expiry (at most a week), as IB writes them. */
function hours(today: string, expiry: ListedExpiry, businessDays: readonly string[], close: string): string {
  return businessDays
    .filter((d) => d >= today && d <= expiry.date)
    .slice(0, 5)
    .map((d) => `${d}:0930-${d}:${d === expiry.date ? '1600' : close}`)
    .join(';');
}

export interface OptionUnderlying {
  readonly conId: number;
  readonly longName: string;
}

/**
 * CONTRACT_DATA for an option (no version field from 164): secType OPT,
 * plain YYYYMMDD dates (the client splits a "date time zone" value on a
 * literal "\\s+", so it would stay whole), multiplier 100, OSI local symbol.
 */
export function optionContractData(
  version: number,
  reqId: number,
  c: OptionContract,
  expiry: ListedExpiry,
  underlying: OptionUnderlying,
  today: string,
  businessDays: readonly string[],
): Field[] {
  return [
    CONTRACT_DATA, reqId, 'SPY', 'OPT', c.expiry,
    ...(version >= 182 ? [c.expiry] : []), // lastTradeDate
    c.strike, c.right, 'SMART', 'USD', c.localSymbol, 'SPY', 'SPY', c.conId, 0.01, OPTION_MULTIPLIER,
    'ACTIVETIM,AD,ADJUST,ALERT,ALLOC,AVGCOST,BASKET,COND,CONDORDER,DAY,DEACT,DEACTDIS,DEACTEOD,GAT,GTC,GTD,GTT,HID,ICE,IOC,LIT,LMT,MIT,MKT,MTL,NGCOMB,NONALGO,OCA,PEGBENCH,SCALE,SCALERST,SNAPMID,SNAPMKT,SNAPREL,STP,STPLMT,TRAIL,TRAILLIT,TRAILLMT,TRAILMIT,WHATIF',
    OPTION_EXCHANGES.join(','), 1, underlying.conId, underlying.longName, '',
    c.expiry.slice(0, 6), 'Funds', '', '', 'US/Eastern',
    hours(today, expiry, businessDays, '1615'), hours(today, expiry, businessDays, '1600'),
    '', 0, 0, // evRule, evMultiplier, no secIds
    2, 'SPY', 'STK', '32,109,110', c.expiry, '', // aggGroup, underSymbol, underSecType, marketRuleIds, realExpirationDate, stockType
    1, 1, 1, // minSize, sizeIncrement, suggestedSizeIncrement
    ...(version >= 186 ? [0] : []), // no ineligibility reasons
  ];
}

/** A request's contract (C12 from `at`), as the encoder writes it: unset strike and right are "" (IB's own clients send 0.0). */
export interface ContractFields {
  readonly conId: number;
  readonly symbol: string;
  readonly secType: string;
  readonly expiry: string | undefined;
  readonly strike: number | undefined;
  readonly right: OptionRight | undefined;
  readonly localSymbol: string;
}

export function contractFields(fields: readonly string[], at: number): ContractFields {
  const strike = Number(fields[at + 4] ?? '');
  const right = (fields[at + 5] ?? '').toUpperCase();
  const expiry = fields[at + 3] ?? '';
  return {
    conId: Number(fields[at] || 0) || 0,
    symbol: (fields[at + 1] ?? '').toUpperCase(),
    secType: (fields[at + 2] ?? '').toUpperCase(),
    expiry: /^\d{6}(\d{2})?$/.test(expiry) ? expiry : undefined,
    strike: Number.isFinite(strike) && strike > 0 ? strike : undefined,
    right: right === 'C' || right === 'CALL' ? 'C' : right === 'P' || right === 'PUT' ? 'P' : undefined,
    localSymbol: fields[at + 10] ?? '',
  };
}
