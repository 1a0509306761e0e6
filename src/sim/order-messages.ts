/**
 * Orders on the wire, server side: the client's PLACE_ORDER and CANCEL_ORDER
 * read back into what the trader asked for, and TWS's order, execution,
 * position and account messages laid out field by field as @stoqey/ib's
 * decoder.js reads them. Pure functions for server versions 176 to 193;
 * encoder.js and decoder.js are the reference for every layout here.
 */
import type { SimContract } from './instruments.js';
import type { Field } from './wire.js';

/** PLACE_ORDER and CANCEL_ORDER come from the client (encoder.js OUT_MSG_ID); the rest go to it (decoder.js IN_MSG_ID). */
export const ORDER_MESSAGE_ID = {
  PLACE_ORDER: 3,
  CANCEL_ORDER: 4,
  EXERCISE_OPTIONS: 21,
  ORDER_STATUS: 3,
  OPEN_ORDER: 5,
  ACCT_VALUE: 6,
  PORTFOLIO_VALUE: 7,
  ACCT_UPDATE_TIME: 8,
  EXECUTION_DATA: 11,
  OPEN_ORDER_END: 53,
  ACCT_DOWNLOAD_END: 54,
  EXECUTION_DATA_END: 55,
  COMMISSION_REPORT: 59,
  POSITION: 61,
  POSITION_END: 62,
} as const;

/**
 * The server versions inside 176..193 at which these layouts change
 * (min-server-version.js). Thresholds at or below 176, such as dropping the
 * version field from PLACE_ORDER and OPEN_ORDER at 145, always hold here.
 */
const VERSION = {
  FA_PROFILE_DESUPPORT: 177,
  PENDING_PRICE_REVISION: 178,
  MANUAL_ORDER_TIME_EXERCISE_OPTIONS: 180,
  CUSTOMER_ACCOUNT: 183,
  PROFESSIONAL_CUSTOMER: 184,
  BOND_ACCRUED_INTEREST: 185,
  RFQ_FIELDS: 187,
  INCLUDE_OVERNIGHT: 189,
  UNDO_RFQ_FIELDS: 190,
  CME_TAGGING_FIELDS: 192,
  CME_TAGGING_FIELDS_IN_OPEN_ORDER: 193,
} as const;
const MIN_VERSION = 176;
const MAX_VERSION = 193;

/** How TWS writes "no value" for a double and for an int; the decoder turns both into undefined where it expects them. */
const UNSET_DOUBLE = '1.7976931348623157E308';
const UNSET_INT = 2147483647;

/** One leg of a BAG (combo) contract, as encoder.js writes it and decoder.js reads it back in OPEN_ORDER. */
export interface ComboLegView {
  conId: number;
  ratio: number;
  action: 'BUY' | 'SELL';
  exchange: string;
  openClose: number;
  shortSaleSlot: number;
  designatedLocation: string;
  exemptCode: number;
}

/** A contract as a request names it: any field may be left empty (strike undefined). */
export interface ContractRef {
  conId: number;
  symbol: string;
  secType: string;
  /** An option's contract as the client named it; '' (strike undefined) when left unset, as for a stock. */
  lastTradeDateOrContractMonth: string;
  strike: number | undefined;
  right: string;
  multiplier: string;
  exchange: string;
  currency: string;
  localSymbol: string;
}

/** What the client asked for in PLACE_ORDER. Prices the client left empty are undefined. */
export interface PlacedOrder extends ContractRef {
  orderId: number;
  action: 'BUY' | 'SELL';
  totalQuantity: number;
  orderType: string;
  lmtPrice: number | undefined;
  auxPrice: number | undefined;
  tif: string;
  orderRef: string;
  account: string;
  /** False when the client left it out: TWS then holds the order instead of sending it to the market. */
  transmit: boolean;
  outsideRth: boolean;
  /** A BAG's legs; empty for any other contract. */
  comboLegs: readonly ComboLegView[];
  /** A BAG's per-leg prices (orderComboLegs), in leg order, undefined where left empty; usually none. */
  legPrices: readonly (number | undefined)[];
}

/** An order as the simulator reports it back: what was placed plus where it stands. */
export interface SimOrderView extends PlacedOrder {
  permId: number;
  clientId: number;
  status: string;
  filled: number;
  remaining: number;
  avgFillPrice: number;
  lastFillPrice: number;
  commission?: number;
}

/** One fill. `side` is BOT for a buy and SLD for a sell, as TWS writes it. */
export interface SimExecution {
  execId: string;
  orderId: number;
  clientId: number;
  permId: number;
  time: Date;
  account: string;
  exchange: string;
  side: 'BOT' | 'SLD';
  shares: number;
  price: number;
  cumQty: number;
  avgPrice: number;
  orderRef: string;
}

/** The reqId TWS puts on executions nobody asked for, i.e. fills as they happen. */
export const UNSOLICITED = -1;

// ---------------------------------------------------------------- client to server

/**
 * PLACE_ORDER, walked in exactly the order encoder.js placeOrder writes it,
 * including the groups that only appear for some contracts and order types,
 * so that the message must end where the walk ends. Throws an Error naming
 * the field when a field the simulator relies on is malformed, and when the
 * message is shorter or longer than the walk.
 */
export function parsePlaceOrder(fields: readonly string[], serverVersion: number): PlacedOrder {
  checkVersion(serverVersion);
  const c = new FieldReader(fields, 'PLACE_ORDER', ORDER_MESSAGE_ID.PLACE_ORDER);
  const orderId = c.int('orderId'); // no version field before it since 145
  const conId = c.int('conId', 0);
  const symbol = c.text('symbol');
  const secType = c.text('secType');
  const lastTradeDateOrContractMonth = c.text('lastTradeDateOrContractMonth');
  const strike = c.number('strike');
  const right = c.text('right');
  const multiplier = c.text('multiplier');
  const exchange = c.text('exchange');
  c.skip('primaryExch');
  const currency = c.text('currency');
  const localSymbol = c.text('localSymbol');
  c.skip('tradingClass', 'secIdType', 'secId');

  const action = c.oneOf('action', ['BUY', 'SELL'] as const);
  const totalQuantity = c.positiveNumber('totalQuantity');
  const orderType = c.requiredText('orderType');
  const lmtPrice = c.number('lmtPrice');
  const auxPrice = c.number('auxPrice');
  const tif = c.text('tif');
  c.skip('ocaGroup');
  const account = c.text('account');
  c.skip('openClose', 'origin');
  const orderRef = c.text('orderRef');
  const transmit = c.bool('transmit');
  c.skip('parentId', 'blockOrder', 'sweepToFill', 'displaySize', 'triggerMethod');
  const outsideRth = c.bool('outsideRth');
  c.skip('hidden');

  const comboLegs: ComboLegView[] = [];
  const legPrices: (number | undefined)[] = [];
  if (secType.toUpperCase() === 'BAG') {
    // The legs (encoder.js writes openClose, shortSaleSlot and exemptCode as given: empty when unset).
    for (let i = 0, n = c.int('comboLegs'); i < n; i++) {
      const leg = (f: string) => `comboLegs[${i}].${f}`;
      comboLegs.push({
        conId: c.int(leg('conId')),
        ratio: c.positiveInt(leg('ratio')),
        action: c.oneOf(leg('action'), ['BUY', 'SELL'] as const),
        exchange: c.text(leg('exchange')),
        openClose: c.int(leg('openClose'), 0),
        shortSaleSlot: c.int(leg('shortSaleSlot'), 0),
        designatedLocation: c.text(leg('designatedLocation')),
        exemptCode: c.int(leg('exemptCode'), -1),
      });
    }
    for (let i = 0, n = c.int('orderComboLegs'); i < n; i++) legPrices.push(c.number(`orderComboLegs[${i}].price`));
    c.skipEach('smartComboRoutingParams', 'tag', 'value');
  }
  c.skip('sharesAllocation', 'discretionaryAmt', 'goodAfterTime', 'goodTillDate', 'faGroup', 'faMethod', 'faPercentage');
  if (serverVersion < VERSION.FA_PROFILE_DESUPPORT) c.skip('faProfile');
  c.skip('modelCode', 'shortSaleSlot', 'designatedLocation', 'exemptCode', 'ocaType', 'rule80A', 'settlingFirm', 'allOrNone', 'minQty');
  c.skip('percentOffset', 'eTradeOnly', 'firmQuoteOnly', 'nbboPriceCap', 'auctionStrategy', 'startingPrice', 'stockRefPrice', 'delta');
  c.skip('stockRangeLower', 'stockRangeUpper', 'overridePercentageConstraints', 'volatility', 'volatilityType');
  const deltaNeutralOrderType = c.text('deltaNeutralOrderType');
  c.skip('deltaNeutralAuxPrice');
  if (deltaNeutralOrderType !== '') {
    c.skip('deltaNeutralConId', 'deltaNeutralSettlingFirm', 'deltaNeutralClearingAccount', 'deltaNeutralClearingIntent');
    c.skip('deltaNeutralOpenClose', 'deltaNeutralShortSale', 'deltaNeutralShortSaleSlot', 'deltaNeutralDesignatedLocation');
  }
  c.skip('continuousUpdate', 'referencePriceType', 'trailStopPrice', 'trailingPercent', 'scaleInitLevelSize', 'scaleSubsLevelSize');
  // encoder.js sends these when scalePriceIncrement is set, which is when its field is not empty.
  if (c.text('scalePriceIncrement') !== '') {
    c.skip('scalePriceAdjustValue', 'scalePriceAdjustInterval', 'scaleProfitOffset', 'scaleAutoReset', 'scaleInitPosition', 'scaleInitFillQty', 'scaleRandomPercent');
  }
  c.skip('scaleTable', 'activeStartTime', 'activeStopTime');
  if (c.text('hedgeType') !== '') c.skip('hedgeParam');
  c.skip('optOutSmartRouting', 'clearingAccount', 'clearingIntent', 'notHeld');
  if (c.bool('deltaNeutralContract')) c.skip('deltaNeutralContract.conId', 'deltaNeutralContract.delta', 'deltaNeutralContract.price');
  if (c.text('algoStrategy') !== '') c.skipEach('algoParams', 'tag', 'value');
  c.skip('algoId', 'whatIf', 'orderMiscOptions', 'solicited', 'randomizeSize', 'randomizePrice');
  if (PEG_BENCH.includes(orderType)) {
    c.skip('referenceContractId', 'isPeggedChangeAmountDecrease', 'peggedChangeAmount', 'referenceChangeAmount', 'referenceExchangeId');
  }
  skipConditions(c);
  c.skip('adjustedOrderType', 'triggerPrice', 'lmtPriceOffset', 'adjustedStopPrice', 'adjustedStopLimitPrice', 'adjustedTrailingAmount', 'adjustableTrailingUnit');
  c.skip('extOperator', 'softDollarTier.name', 'softDollarTier.value', 'cashQty');
  c.skip('mifid2DecisionMaker', 'mifid2DecisionAlgo', 'mifid2ExecutionTrader', 'mifid2ExecutionAlgo');
  c.skip('dontUseAutoPriceForHedge', 'isOmsContainer', 'discretionaryUpToLimitPrice', 'usePriceMgmtAlgo', 'duration', 'postToAts', 'autoCancelParent');
  c.skip('advancedErrorOverride', 'manualOrderTime');
  skipPegBestPegMid(c, exchange, orderType);
  if (serverVersion >= VERSION.CUSTOMER_ACCOUNT) c.skip('customerAccount');
  if (serverVersion >= VERSION.PROFESSIONAL_CUSTOMER) c.skip('professionalCustomer');
  if (serverVersion >= VERSION.RFQ_FIELDS && serverVersion < VERSION.UNDO_RFQ_FIELDS) c.skip('unused RFQ field', 'unused RFQ field');
  if (serverVersion >= VERSION.INCLUDE_OVERNIGHT) c.skip('includeOvernight');
  if (serverVersion >= VERSION.CME_TAGGING_FIELDS) c.skip('manualOrderIndicator');
  c.end();

  return {
    orderId, conId, symbol, secType, lastTradeDateOrContractMonth, strike, right, multiplier, exchange, currency, localSymbol, action, totalQuantity, orderType, lmtPrice, auxPrice, tif, orderRef, account, transmit, outsideRth,
    comboLegs, legPrices,
  };
}

/** What the client asked for in EXERCISE_OPTIONS: 1 exercise, 2 lapse (the contrary instruction). */
export interface ExerciseRequest {
  reqId: number;
  contract: ContractRef;
  action: number;
  quantity: number;
  account: string;
  override: number;
}

/**
 * EXERCISE_OPTIONS as encoder.js exerciseOptions writes it: version (2),
 * reqId, the contract (conId, symbol, secType, expiry, strike, right,
 * multiplier, exchange, currency, localSymbol, tradingClass),
 * exerciseAction, exerciseQuantity, account, override, manualOrderTime
 * (180+), customerAccount (183+), professionalCustomer (184+).
 */
export function parseExerciseOptions(fields: readonly string[], serverVersion: number): ExerciseRequest {
  checkVersion(serverVersion);
  const c = new FieldReader(fields, 'EXERCISE_OPTIONS', ORDER_MESSAGE_ID.EXERCISE_OPTIONS);
  c.skip('version');
  const reqId = c.int('reqId');
  const contract: ContractRef = {
    conId: c.int('conId', 0),
    symbol: c.text('symbol'),
    secType: c.text('secType'),
    lastTradeDateOrContractMonth: c.text('lastTradeDateOrContractMonth'),
    strike: c.number('strike'),
    right: c.text('right'),
    multiplier: c.text('multiplier'),
    exchange: c.text('exchange'),
    currency: c.text('currency'),
    localSymbol: c.text('localSymbol'),
  };
  c.skip('tradingClass');
  const action = c.int('exerciseAction');
  const quantity = c.int('exerciseQuantity');
  const account = c.text('account');
  const override = c.int('override', 0);
  if (serverVersion >= VERSION.MANUAL_ORDER_TIME_EXERCISE_OPTIONS) c.skip('manualOrderTime');
  if (serverVersion >= VERSION.CUSTOMER_ACCOUNT) c.skip('customerAccount');
  if (serverVersion >= VERSION.PROFESSIONAL_CUSTOMER) c.skip('professionalCustomer');
  c.end();
  return { reqId, contract, action, quantity, account, override };
}

/** CANCEL_ORDER as encoder.js cancelOrder writes it: a version field until 192, then the CME tagging fields. */
export function parseCancelOrder(fields: readonly string[], serverVersion: number): { orderId: number; manualOrderCancelTime: string } {
  checkVersion(serverVersion);
  const c = new FieldReader(fields, 'CANCEL_ORDER', ORDER_MESSAGE_ID.CANCEL_ORDER);
  if (serverVersion < VERSION.CME_TAGGING_FIELDS) c.skip('version');
  const orderId = c.int('orderId');
  const manualOrderCancelTime = c.text('manualOrderCancelTime');
  if (serverVersion >= VERSION.RFQ_FIELDS && serverVersion < VERSION.UNDO_RFQ_FIELDS) c.skip('unused RFQ field', 'unused RFQ field', 'unused RFQ field');
  if (serverVersion >= VERSION.CME_TAGGING_FIELDS) c.skip('extOperator', 'manualOrderIndicator');
  c.end();
  return { orderId, manualOrderCancelTime };
}

/** Order types whose extra fields encoder.js sends; it matches both spellings. */
const PEG_BENCH = ['PEG BENCH', 'PEGBENCH'];
const PEG_BEST = ['PEG BEST', 'PEGBEST'];
const PEG_MID = ['PEG MID', 'PEGMID'];

/** Fields after the type and conjunction of each order condition, by OrderConditionType. */
const CONDITION_FIELDS: Readonly<Record<string, readonly string[]>> = {
  1: ['isMore', 'price', 'conId', 'exchange', 'triggerMethod'], // price
  3: ['isMore', 'time'], // time
  4: ['isMore', 'percent'], // margin
  5: ['secType', 'exchange', 'symbol'], // execution
  6: ['isMore', 'volume', 'conId', 'exchange'], // volume
  7: ['isMore', 'percent', 'conId', 'exchange'], // percent change
};

function skipConditions(c: FieldReader): void {
  const count = c.int('conditions');
  for (let i = 0; i < count; i++) {
    const type = c.text(`conditions[${i}].type`);
    const fields = CONDITION_FIELDS[type];
    if (!fields) throw c.malformed(`conditions[${i}].type`, type, 'an order condition type');
    c.skip(`conditions[${i}].conjunctionConnection`, ...fields.map((f) => `conditions[${i}].${f}`));
  }
  if (count > 0) c.skip('conditionsIgnoreRth', 'conditionsCancelOrder');
}

/** PEG BEST and PEG MID offsets (from 170); minTradeQty only for orders routed to IBKRATS. */
function skipPegBestPegMid(c: FieldReader, exchange: string, orderType: string): void {
  if (exchange === 'IBKRATS') c.skip('minTradeQty');
  let midOffsets = PEG_MID.includes(orderType);
  if (PEG_BEST.includes(orderType)) {
    c.skip('minCompeteSize');
    // An offset "up to mid" is sent as Infinity, and then the mid offsets follow.
    midOffsets = c.text('competeAgainstBestOffset') === 'Infinity';
  }
  if (midOffsets) c.skip('midOffsetAtWhole', 'midOffsetAtHalf');
}

/** Reads a client message one field at a time; every complaint names the message, the field's position and its name. */
class FieldReader {
  private next = 1;

  constructor(
    private readonly fields: readonly string[],
    private readonly message: string,
    messageId: number,
  ) {
    if (fields[0] !== String(messageId)) throw new Error(`${message}: expected message id ${messageId}, got ${JSON.stringify(fields[0])}`);
  }

  text(field: string): string {
    const value = this.fields[this.next];
    if (value === undefined) throw new Error(`${this.message} ended at field ${this.next}, before ${field}`);
    this.next += 1;
    return value;
  }

  requiredText(field: string): string {
    const value = this.text(field);
    if (value === '') throw this.malformed(field, value, 'a value');
    return value;
  }

  skip(...fields: string[]): void {
    for (const field of fields) this.text(field);
  }

  /** A count, then that many groups of the named fields. */
  skipEach(list: string, ...fields: string[]): void {
    const count = this.int(list);
    for (let i = 0; i < count; i++) this.skip(...fields.map((f) => `${list}[${i}].${f}`));
  }

  /** An integer; an empty field is `unset` when one is given, malformed otherwise. */
  int(field: string, unset?: number): number {
    const raw = this.text(field);
    if (raw === '' && unset !== undefined) return unset;
    const value = Number(raw);
    if (raw === '' || !Number.isInteger(value)) throw this.malformed(field, raw, 'an integer');
    return value;
  }

  /** A number, or undefined for an empty (unset) field. */
  number(field: string): number | undefined {
    const raw = this.text(field);
    if (raw === '') return undefined;
    const value = Number(raw);
    if (!Number.isFinite(value)) throw this.malformed(field, raw, 'a number');
    return value;
  }

  positiveInt(field: string): number {
    const value = this.int(field);
    if (value <= 0) throw this.malformed(field, String(value), 'a positive integer');
    return value;
  }

  positiveNumber(field: string): number {
    const raw = this.text(field);
    const value = Number(raw);
    if (raw === '' || !Number.isFinite(value) || value <= 0) throw this.malformed(field, raw, 'a positive number');
    return value;
  }

  /** encoder.js writes true as 1 and false as 0, and an unset flag as the empty field. */
  bool(field: string): boolean {
    const raw = this.text(field);
    if (raw !== '' && raw !== '0' && raw !== '1') throw this.malformed(field, raw, '0 or 1');
    return raw === '1';
  }

  oneOf<T extends string>(field: string, allowed: readonly T[]): T {
    const raw = this.text(field);
    const value = allowed.find((a) => a === raw);
    if (value === undefined) throw this.malformed(field, raw, allowed.join(' or '));
    return value;
  }

  /** The message must end where the walk ends: a field left over means the walk and the client disagree. */
  end(): void {
    if (this.next < this.fields.length) {
      throw new Error(`${this.message} has ${this.fields.length - this.next} unexpected field(s) from field ${this.next}: ${JSON.stringify(this.fields.slice(this.next))}`);
    }
  }

  /** The error for the field just read. */
  malformed(field: string, raw: string, expected: string): Error {
    return new Error(`${this.message} field ${this.next - 1} (${field}): expected ${expected}, got ${JSON.stringify(raw)}`);
  }
}

// ---------------------------------------------------------------- server to client

/**
 * OPEN_ORDER for a stock, option or combo (BAG) order, in decoder.js decodeMsg_OPEN_ORDER
 * order. No version field since 145: the decoder uses the server version as
 * the message version. Everything the simulator does not model goes out the
 * way TWS writes an order that does not use it.
 */
export function openOrder(serverVersion: number, order: SimOrderView, contract: SimContract): Field[] {
  checkVersion(serverVersion);
  const v = serverVersion;
  return [
    ORDER_MESSAGE_ID.OPEN_ORDER, order.orderId,
    ...contractFields(contract),
    order.action, order.totalQuantity, order.orderType, order.lmtPrice ?? UNSET_DOUBLE, order.auxPrice ?? UNSET_DOUBLE,
    order.tif, '', order.account, '', 0, order.orderRef, // tif, ocaGroup, account, openClose, origin (customer), orderRef
    order.clientId, order.permId, order.outsideRth, 0, 0, '', '', // clientId, permId, outsideRth, hidden, discretionaryAmt, goodAfterTime, sharesAllocation
    '', '', '', ...(v < VERSION.FA_PROFILE_DESUPPORT ? [''] : []), // faGroup, faMethod, faPercentage, faProfile
    '', '', '', UNSET_DOUBLE, '', // modelCode, goodTillDate, rule80A, percentOffset, settlingFirm
    0, '', -1, 0, // shortSaleSlot, designatedLocation, exemptCode, auctionStrategy
    UNSET_DOUBLE, UNSET_DOUBLE, UNSET_DOUBLE, UNSET_DOUBLE, UNSET_DOUBLE, // startingPrice, stockRefPrice, delta, stockRangeLower, stockRangeUpper
    UNSET_INT, false, false, false, UNSET_INT, 0, false, false, UNSET_DOUBLE, // displaySize, blockOrder, sweepToFill, allOrNone, minQty, ocaType, eTradeOnly, firmQuoteOnly, nbboPriceCap
    0, 0, // parentId, triggerMethod
    UNSET_DOUBLE, 0, '', UNSET_DOUBLE, 0, 0, // volatility, volatilityType, deltaNeutralOrderType (none: no delta-neutral details), deltaNeutralAuxPrice, continuousUpdate, referencePriceType
    UNSET_DOUBLE, UNSET_DOUBLE, UNSET_DOUBLE, UNSET_INT, // trailStopPrice, trailingPercent, basisPoints, basisPointsType
    '', ...comboLegFields(order), 0, // comboLegsDescription, comboLegs, orderComboLegs, smartComboRoutingParams
    UNSET_INT, UNSET_INT, UNSET_DOUBLE, // scaleInitLevelSize, scaleSubsLevelSize, scalePriceIncrement (unset: no further scale fields)
    '', false, '', '', false, false, // hedgeType (none: no hedgeParam), optOutSmartRouting, clearingAccount, clearingIntent, notHeld, deltaNeutralContract
    '', false, // algoStrategy (none: no algo params), solicited
    ...orderState(order),
    false, false, // randomizeSize, randomizePrice
    ...(PEG_BENCH.includes(order.orderType) ? [0, false, 0, 0, ''] : []), // referenceContractId, isPeggedChangeAmountDecrease, peggedChangeAmount, referenceChangeAmount, referenceExchangeId
    0, // conditions
    'None', UNSET_DOUBLE, UNSET_DOUBLE, UNSET_DOUBLE, // adjustedOrderType, triggerPrice, trailStopPrice, lmtPriceOffset
    UNSET_DOUBLE, UNSET_DOUBLE, UNSET_DOUBLE, 0, // adjustedStopPrice, adjustedStopLimitPrice, adjustedTrailingAmount, adjustableTrailingUnit
    '', '', '', UNSET_DOUBLE, // softDollarTier name, value, displayName; cashQty
    false, false, false, false, // dontUseAutoPriceForHedge, isOmsContainer, discretionaryUpToLimitPrice, usePriceMgmtAlgo
    '', UNSET_INT, false, // duration, postToAts, autoCancelParent
    UNSET_INT, UNSET_INT, UNSET_DOUBLE, UNSET_DOUBLE, UNSET_DOUBLE, // minTradeQty, minCompeteSize, competeAgainstBestOffset, midOffsetAtWhole, midOffsetAtHalf
    ...(v >= VERSION.CUSTOMER_ACCOUNT ? [''] : []),
    ...(v >= VERSION.PROFESSIONAL_CUSTOMER ? [false] : []),
    ...(v >= VERSION.BOND_ACCRUED_INTEREST ? [''] : []),
    ...(v >= VERSION.INCLUDE_OVERNIGHT ? [false] : []),
    ...(v >= VERSION.CME_TAGGING_FIELDS_IN_OPEN_ORDER ? ['', UNSET_INT] : []), // extOperator, manualOrderIndicator
  ];
}

/** A BAG order's legs and per-leg prices as decoder.js readComboLegs reads them (a count, then each); two zero counts for any other order. */
function comboLegFields(order: SimOrderView): Field[] {
  return [
    order.comboLegs.length,
    ...order.comboLegs.flatMap((l) => [l.conId, l.ratio, l.action, l.exchange, l.openClose, l.shortSaleSlot, l.designatedLocation, l.exemptCode]),
    order.legPrices.length,
    ...order.legPrices.map((p) => p ?? UNSET_DOUBLE),
  ];
}

/** whatIf, then the order state: status, what-if margins (none for a real order), commission once known. */
function orderState(order: SimOrderView): Field[] {
  return [
    false, order.status,
    UNSET_DOUBLE, UNSET_DOUBLE, UNSET_DOUBLE, // initMarginBefore, maintMarginBefore, equityWithLoanBefore
    UNSET_DOUBLE, UNSET_DOUBLE, UNSET_DOUBLE, // initMarginChange, maintMarginChange, equityWithLoanChange
    UNSET_DOUBLE, UNSET_DOUBLE, UNSET_DOUBLE, // initMarginAfter, maintMarginAfter, equityWithLoanAfter
    order.commission ?? UNSET_DOUBLE, UNSET_DOUBLE, UNSET_DOUBLE, // commission, minCommission, maxCommission
    order.commission === undefined ? '' : 'USD', '', // commissionCurrency, warningText
  ];
}

export function openOrderEnd(): Field[] {
  return [ORDER_MESSAGE_ID.OPEN_ORDER_END, 1];
}

/** ORDER_STATUS has had no version field since 131. */
export function orderStatus(serverVersion: number, view: SimOrderView): Field[] {
  checkVersion(serverVersion);
  return [
    ORDER_MESSAGE_ID.ORDER_STATUS, view.orderId, view.status, view.filled, view.remaining, view.avgFillPrice,
    view.permId, 0, view.lastFillPrice, view.clientId, '', 0, // permId, parentId, lastFillPrice, clientId, whyHeld, mktCapPrice
  ];
}

/**
 * EXECUTION_DATA, no version field since 136; pendingPriceRevision only from
 * 178. reqId is the request's for executions asked for with reqExecutions,
 * UNSOLICITED for a fill as it happens.
 */
export function execDetails(serverVersion: number, reqId: number, e: SimExecution, contract: SimContract): Field[] {
  checkVersion(serverVersion);
  return [
    ORDER_MESSAGE_ID.EXECUTION_DATA, reqId, e.orderId,
    ...contractFields(contract),
    e.execId, executionTime(e.time), e.account, e.exchange, e.side, e.shares, e.price,
    e.permId, e.clientId, 0, e.cumQty, e.avgPrice, e.orderRef, // permId, clientId, liquidation, cumQty, avgPrice, orderRef
    '', '', '', 0, // evRule, evMultiplier, modelCode, lastLiquidity (none reported)
    ...(serverVersion >= VERSION.PENDING_PRICE_REVISION ? [false] : []),
  ];
}

export function execDetailsEnd(reqId: number): Field[] {
  return [ORDER_MESSAGE_ID.EXECUTION_DATA_END, 1, reqId];
}

/**
 * COMMISSION_REPORT. An unknown realized PnL and the yield of a stock go out
 * as TWS's unset double, which the client reads as undefined (an empty field
 * would read as 0).
 */
export function commissionReport(execId: string, commission: number, currency = 'USD', realizedPnl?: number): Field[] {
  return [ORDER_MESSAGE_ID.COMMISSION_REPORT, 1, execId, commission, currency, realizedPnl ?? UNSET_DOUBLE, UNSET_DOUBLE, 0]; // ..., yield, yieldRedemptionDate
}

/** POSITION at version 3, the first with avgCost. */
export function position(serverVersion: number, account: string, contract: SimContract, pos: number, avgCost: number): Field[] {
  checkVersion(serverVersion);
  return [ORDER_MESSAGE_ID.POSITION, 3, account, ...contractFields(contract), pos, avgCost];
}

export function positionEnd(): Field[] {
  return [ORDER_MESSAGE_ID.POSITION_END, 1];
}

export function accountValue(key: string, value: string, currency: string, account: string): Field[] {
  return [ORDER_MESSAGE_ID.ACCT_VALUE, 2, key, value, currency, account];
}

/** PORTFOLIO_VALUE at version 8, the first with tradingClass; it names the primary exchange, not SMART. */
export function portfolioValue(
  serverVersion: number,
  contract: SimContract,
  position: number,
  marketPrice: number,
  marketValue: number,
  averageCost: number,
  unrealizedPNL: number,
  realizedPNL: number,
  account: string,
): Field[] {
  checkVersion(serverVersion);
  return [
    ORDER_MESSAGE_ID.PORTFOLIO_VALUE, 8, ...contractFields(contract, contract.primaryExch),
    position, marketPrice, marketValue, averageCost, unrealizedPNL, realizedPNL, account,
  ];
}

/** ACCT_UPDATE_TIME: the time of day of the last account update, `HH:mm`. */
export function accountUpdateTime(hhmm: string): Field[] {
  return [ORDER_MESSAGE_ID.ACCT_UPDATE_TIME, 1, hhmm];
}

export function accountDownloadEnd(account: string): Field[] {
  return [ORDER_MESSAGE_ID.ACCT_DOWNLOAD_END, 1, account];
}

/**
 * A contract as OPEN_ORDER, EXECUTION_DATA, POSITION and PORTFOLIO_VALUE
 * carry it: conId, symbol, secType, lastTradeDateOrContractMonth, strike,
 * right, multiplier, exchange (PORTFOLIO_VALUE: primaryExch), currency,
 * localSymbol, tradingClass. An option names its expiry (plain YYYYMMDD),
 * strike, right and multiplier in every one; TWS leaves a stock's
 * multiplier empty. SPY options trade under the class SPY, a stock under
 * its symbol.
 */
function contractFields(c: SimContract, exchange = 'SMART'): Field[] {
  const multiplier = c.secType === 'OPT' ? c.multiplier : '';
  // A combo has no conId or class of its own; its legs go in the order's combo fields.
  if (c.secType === 'BAG') return [0, c.symbol, c.secType, '', 0, '', '', exchange, 'USD', '', ''];
  return [c.conId, c.symbol, c.secType, c.expiry, c.strike, c.right, multiplier, exchange, 'USD', c.localSymbol, c.symbol];
}

/** Execution time with its time zone, as TWS writes it: `20260105 14:30:00 UTC`. */
function executionTime(time: Date): string {
  const iso = time.toISOString();
  return `${iso.slice(0, 10).replaceAll('-', '')} ${iso.slice(11, 19)} UTC`;
}

/** Every layout here is right from 176 to 193 only; a session below 176 needs older layouts (version fields) this module does not write. */
function checkVersion(serverVersion: number): void {
  if (serverVersion < MIN_VERSION || serverVersion > MAX_VERSION) {
    throw new RangeError(`order messages are laid out for server versions ${MIN_VERSION} to ${MAX_VERSION}, got ${serverVersion}`);
  }
}
