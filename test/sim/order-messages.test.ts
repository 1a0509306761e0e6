/**
 * Order, execution, position and account messages against the unmodified
 * @stoqey/ib client: what the simulator encodes must come out of the client's
 * events unchanged, and what the client's placeOrder and cancelOrder write
 * must parse back to what was asked for. A tiny TWS stands in for the
 * simulator so that these layouts are proven on their own.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { test } from 'node:test';
import {
  ConjunctionConnection,
  EventName,
  ExecutionCondition,
  IBApi,
  MarginCondition,
  OptionExerciseAction,
  OptionType,
  OrderAction,
  OrderType,
  PercentChangeCondition,
  PriceCondition,
  SecType,
  TimeCondition,
  TriggerMethod,
  VolumeCondition,
  type CommissionReport,
  type Contract,
  type Execution,
  type Order,
  type OrderState,
} from '@stoqey/ib';
import { InstrumentUniverse, stockContract, type SimContract } from '../../src/sim/instruments.js';
import {
  accountDownloadEnd,
  accountUpdateTime,
  accountValue,
  commissionReport,
  execDetails,
  execDetailsEnd,
  openOrder,
  openOrderEnd,
  orderStatus,
  parseCancelOrder,
  parseExerciseOptions,
  parsePlaceOrder,
  portfolioValue,
  position,
  positionEnd,
  UNSOLICITED,
  type SimExecution,
  type SimOrderView,
} from '../../src/sim/order-messages.js';
import { encodeMessage, MessageReader, type Field } from '../../src/sim/wire.js';

const START_API = 71;
const NEXT_VALID_ID = 9;
const PLACE_ORDER = 3;
const CANCEL_ORDER = 4;
const EXERCISE_OPTIONS = 21;
const ACCOUNT = 'DU1234567';
/** 193 and 176 first, then every version between: the layouts change at 177, 178, 183, 184, 185, 187, 189, 190, 192 and 193. */
const VERSIONS = [193, 176, ...Array.from({ length: 16 }, (_, i) => 192 - i)];

const universe = new InstrumentUniverse();
const AAPL = stockContract(universe.find(0, 'AAPL', 'STK')!);
const MSFT = stockContract(universe.find(0, 'MSFT', 'STK')!);
/** A SPY call as the broker trades it. */
const SPY_CALL: SimContract = {
  conId: 500_123_456, symbol: 'SPY', secType: 'OPT', expiry: '20260105', strike: 580.5, right: 'C', multiplier: 100,
  localSymbol: 'SPY   260105C00580500', primaryExch: '',
};

/** A real IBApi connected to a TWS that only does the handshake, then sends what the test pushes and keeps what the client writes. */
interface Connection {
  readonly ib: IBApi;
  /** Errors the client reported, as `code message`. */
  readonly errors: string[];
  push(...messages: Field[][]): void;
  /** The next message from the client with this id, waiting for it if need be. */
  nextFromClient(messageId: number): Promise<string[]>;
  close(): Promise<void>;
}

async function connect(serverVersion: number): Promise<Connection> {
  const inbox: string[][] = [];
  let wake: (() => void) | undefined;
  let client: Socket | undefined;
  const server: Server = createServer((socket) => {
    client = socket;
    const reader = new MessageReader(
      () => socket.write(encodeMessage([serverVersion, '20260105 14:30:00 UTC'])),
      (fields) => {
        if (Number(fields[0]) === START_API) {
          socket.write(encodeMessage([NEXT_VALID_ID, 1, 1]));
          return;
        }
        inbox.push(fields);
        wake?.();
      },
    );
    socket.on('data', (chunk) => reader.push(chunk));
    socket.on('error', () => socket.destroy());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('no TCP address');

  const ib = new IBApi({ host: '127.0.0.1', port: address.port });
  const errors: string[] = [];
  ib.on(EventName.error, (err: Error, code: number) => errors.push(`${code} ${err.message}`));
  const ready = new Promise((resolve) => ib.once(EventName.nextValidId, resolve));
  ib.connect(1);
  await ready;
  assert.equal(ib.serverVersion, serverVersion);

  return {
    ib,
    errors,
    push: (...messages) => {
      for (const fields of messages) client?.write(encodeMessage(fields));
    },
    async nextFromClient(messageId) {
      for (;;) {
        const i = inbox.findIndex((fields) => fields[0] === String(messageId));
        if (i >= 0) return inbox.splice(i, 1)[0]!;
        await new Promise<void>((resolve) => (wake = resolve));
      }
    },
    async close() {
      ib.disconnect();
      client?.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Every event of these names, in the order the client emitted them, with its arguments (addListener: IBApi types `on` one event at a time). */
function record(ib: IBApi, names: readonly EventName[]): [EventName, unknown[]][] {
  const seen: [EventName, unknown[]][] = [];
  for (const name of names) ib.addListener(name, (...args: unknown[]) => seen.push([name, args]));
  return seen;
}

function argsOf<T extends unknown[]>(seen: [EventName, unknown[]][], name: EventName): T[] {
  return seen.filter(([n]) => n === name).map(([, args]) => args as T);
}

const working: SimOrderView = {
  orderId: 7, conId: AAPL.conId, symbol: 'AAPL', secType: 'STK', lastTradeDateOrContractMonth: '', strike: undefined, right: '', multiplier: '',
  exchange: 'SMART', currency: 'USD', localSymbol: '', action: 'BUY', totalQuantity: 100, orderType: 'LMT', lmtPrice: 224.5, auxPrice: undefined, tif: 'DAY',
  orderRef: 'keel-7', account: ACCOUNT, transmit: true, outsideRth: false, comboLegs: [], legPrices: [],
  permId: 2_000_000_123, clientId: 1, status: 'Submitted', filled: 40, remaining: 60,
  avgFillPrice: 224.48, lastFillPrice: 224.47, commission: 1.25,
};
const pending: SimOrderView = {
  ...working,
  orderId: 8, conId: MSFT.conId, symbol: 'MSFT', action: 'SELL', totalQuantity: 25, orderType: 'MKT', lmtPrice: undefined,
  tif: 'GTC', orderRef: 'keel-8', outsideRth: true, permId: 2_000_000_124, status: 'PreSubmitted',
  filled: 0, remaining: 25, avgFillPrice: 0, lastFillPrice: 0, commission: undefined,
};
/** PEG BENCH orders carry five more fields in OPEN_ORDER. */
const pegged: SimOrderView = { ...pending, orderId: 9, orderType: 'PEG BENCH', permId: 2_000_000_125 };
const fill: SimExecution = {
  execId: '0000e1a7.65a1b2c3.01.01', orderId: 7, clientId: 1, permId: 2_000_000_123, time: new Date(Date.UTC(2026, 0, 5, 14, 30, 1)),
  account: ACCOUNT, exchange: 'ISLAND', side: 'BOT', shares: 40, price: 224.48, cumQty: 40, avgPrice: 224.48, orderRef: 'keel-7',
};
const earlierFill: SimExecution = { ...fill, execId: '0000e1a7.65a1b2c3.01.02', orderId: 5, side: 'SLD', shares: 10, price: 226, cumQty: 10, avgPrice: 226, orderRef: 'keel-5' };

const EVENTS = [
  EventName.openOrder, EventName.orderStatus, EventName.openOrderEnd, EventName.execDetails, EventName.execDetailsEnd,
  EventName.commissionReport, EventName.position, EventName.positionEnd, EventName.updateAccountValue,
  EventName.updatePortfolio, EventName.updateAccountTime, EventName.accountDownloadEnd,
];

for (const version of VERSIONS) {
  test(`order, execution, position and account messages decode to what was encoded at server version ${version}`, { timeout: 10_000 }, async () => {
    const tws = await connect(version);
    try {
      const seen = record(tws.ib, EVENTS);
      const downloaded = new Promise((resolve) => tws.ib.once(EventName.accountDownloadEnd, resolve));
      tws.push(
        openOrder(version, working, AAPL), orderStatus(version, working),
        openOrder(version, pending, MSFT), orderStatus(version, pending),
        openOrder(version, pegged, MSFT), openOrderEnd(),
        execDetails(version, UNSOLICITED, fill, AAPL), commissionReport(fill.execId, 1.25),
        execDetails(version, 9, earlierFill, AAPL), execDetailsEnd(9), commissionReport(earlierFill.execId, 0.35, 'USD', 12.5),
        position(version, ACCOUNT, AAPL, 40, 224.48), position(version, ACCOUNT, MSFT, -25, 421.1), positionEnd(),
        accountValue('NetLiquidation', '100012.50', 'USD', ACCOUNT),
        portfolioValue(version, AAPL, 40, 225, 9000, 224.48, 20.8, 12.5, ACCOUNT),
        accountUpdateTime('14:30'), accountDownloadEnd(ACCOUNT),
      );
      await downloaded;

      // Each message became exactly one event, in order, and none upset the decoder (505 and the like).
      assert.deepEqual(tws.errors, []);
      assert.deepEqual(seen.map(([name]) => name), [
        EventName.openOrder, EventName.orderStatus, EventName.openOrder, EventName.orderStatus, EventName.openOrder, EventName.openOrderEnd,
        EventName.execDetails, EventName.commissionReport, EventName.execDetails, EventName.execDetailsEnd, EventName.commissionReport,
        EventName.position, EventName.position, EventName.positionEnd,
        EventName.updateAccountValue, EventName.updatePortfolio, EventName.updateAccountTime, EventName.accountDownloadEnd,
      ]);

      type OpenOrderArgs = [number, Contract, Order, OrderState];
      const [[workingId, workingContract, workingOrder, workingState], [pendingId, , pendingOrder, pendingState], [peggedId, , peggedOrder]] =
        argsOf<OpenOrderArgs>(seen, EventName.openOrder) as [OpenOrderArgs, OpenOrderArgs, OpenOrderArgs];
      assert.equal(workingId, 7);
      assert.deepEqual(
        { conId: workingContract.conId, symbol: workingContract.symbol, secType: workingContract.secType, exchange: workingContract.exchange, currency: workingContract.currency, localSymbol: workingContract.localSymbol, tradingClass: workingContract.tradingClass },
        { conId: 265598, symbol: 'AAPL', secType: 'STK', exchange: 'SMART', currency: 'USD', localSymbol: 'AAPL', tradingClass: 'AAPL' },
      );
      assert.deepEqual(
        { orderId: workingOrder.orderId, action: workingOrder.action, totalQuantity: workingOrder.totalQuantity, orderType: workingOrder.orderType, lmtPrice: workingOrder.lmtPrice, auxPrice: workingOrder.auxPrice, tif: workingOrder.tif, account: workingOrder.account, orderRef: workingOrder.orderRef, clientId: workingOrder.clientId, permId: workingOrder.permId, outsideRth: workingOrder.outsideRth, parentId: workingOrder.parentId },
        { orderId: 7, action: 'BUY', totalQuantity: 100, orderType: 'LMT', lmtPrice: 224.5, auxPrice: undefined, tif: 'DAY', account: ACCOUNT, orderRef: 'keel-7', clientId: 1, permId: 2_000_000_123, outsideRth: false, parentId: 0 },
      );
      assert.deepEqual(
        { status: workingState.status, commission: workingState.commission, commissionCurrency: workingState.commissionCurrency, initMarginAfter: workingState.initMarginAfter },
        { status: 'Submitted', commission: 1.25, commissionCurrency: 'USD', initMarginAfter: undefined },
      );
      assert.equal(pendingId, 8);
      assert.deepEqual(
        { action: pendingOrder.action, totalQuantity: pendingOrder.totalQuantity, orderType: pendingOrder.orderType, lmtPrice: pendingOrder.lmtPrice, tif: pendingOrder.tif, outsideRth: pendingOrder.outsideRth, orderRef: pendingOrder.orderRef },
        { action: 'SELL', totalQuantity: 25, orderType: 'MKT', lmtPrice: undefined, tif: 'GTC', outsideRth: true, orderRef: 'keel-8' },
      );
      assert.deepEqual({ status: pendingState.status, commission: pendingState.commission }, { status: 'PreSubmitted', commission: undefined });
      assert.deepEqual([peggedId, peggedOrder.orderType, peggedOrder.referenceContractId], [9, 'PEG BENCH', 0]);

      assert.deepEqual(argsOf(seen, EventName.orderStatus), [
        [7, 'Submitted', 40, 60, 224.48, 2_000_000_123, 0, 224.47, 1, '', 0],
        [8, 'PreSubmitted', 0, 25, 0, 2_000_000_124, 0, 0, 1, '', 0],
      ]);

      const executions = argsOf<[number, Contract, Execution]>(seen, EventName.execDetails);
      assert.deepEqual(executions.map(([reqId]) => reqId), [-1, 9]);
      const [, fillContract, fillExecution] = executions[0]!;
      assert.deepEqual({ conId: fillContract.conId, symbol: fillContract.symbol, secType: fillContract.secType }, { conId: 265598, symbol: 'AAPL', secType: 'STK' });
      assert.deepEqual(
        { ...fillExecution },
        {
          orderId: 7, execId: fill.execId, time: '20260105 14:30:01 UTC', acctNumber: ACCOUNT, exchange: 'ISLAND', side: 'BOT',
          shares: 40, price: 224.48, permId: 2_000_000_123, clientId: 1, liquidation: 0, cumQty: 40, avgPrice: 224.48, orderRef: 'keel-7',
          evRule: '', evMultiplier: 0, modelCode: '', lastLiquidity: 0,
          ...(version >= 178 ? { pendingPriceRevision: false } : {}),
        },
      );
      assert.deepEqual(
        { ...executions[1]![2] },
        { ...fillExecution, orderId: 5, execId: earlierFill.execId, side: 'SLD', shares: 10, price: 226, cumQty: 10, avgPrice: 226, orderRef: 'keel-5' },
      );
      assert.deepEqual(argsOf(seen, EventName.execDetailsEnd), [[9]]);

      assert.deepEqual(argsOf<[CommissionReport]>(seen, EventName.commissionReport).map(([report]) => ({ ...report })), [
        { execId: fill.execId, commission: 1.25, currency: 'USD', realizedPNL: undefined, yield: undefined, yieldRedemptionDate: 0 },
        { execId: earlierFill.execId, commission: 0.35, currency: 'USD', realizedPNL: 12.5, yield: undefined, yieldRedemptionDate: 0 },
      ]);

      const positions = argsOf<[string, Contract, number, number]>(seen, EventName.position);
      assert.deepEqual(positions.map(([account, contract, pos, avgCost]) => [account, contract.conId, contract.symbol, contract.currency, pos, avgCost]), [
        [ACCOUNT, 265598, 'AAPL', 'USD', 40, 224.48],
        [ACCOUNT, 272093, 'MSFT', 'USD', -25, 421.1],
      ]);

      assert.deepEqual(argsOf(seen, EventName.updateAccountValue), [['NetLiquidation', '100012.50', 'USD', ACCOUNT]]);
      const [[portfolioContract, ...portfolio]] = argsOf<[Contract, ...unknown[]]>(seen, EventName.updatePortfolio) as [[Contract, ...unknown[]]];
      assert.deepEqual(
        { conId: portfolioContract.conId, symbol: portfolioContract.symbol, primaryExch: portfolioContract.primaryExch, tradingClass: portfolioContract.tradingClass },
        { conId: 265598, symbol: 'AAPL', primaryExch: 'NASDAQ', tradingClass: 'AAPL' },
      );
      assert.deepEqual(portfolio, [40, 225, 9000, 224.48, 20.8, 12.5, ACCOUNT]);
      assert.deepEqual(argsOf(seen, EventName.updateAccountTime), [['14:30']]);
      assert.deepEqual(argsOf(seen, EventName.accountDownloadEnd), [[ACCOUNT]]);
    } finally {
      await tws.close();
    }
  });
}

for (const version of VERSIONS) {
  test(`an option's contract in open orders, executions, positions and the portfolio decodes whole at server version ${version}`, { timeout: 10_000 }, async () => {
    const tws = await connect(version);
    try {
      const seen = record(tws.ib, EVENTS);
      const downloaded = new Promise((resolve) => tws.ib.once(EventName.accountDownloadEnd, resolve));
      const order: SimOrderView = { ...working, conId: SPY_CALL.conId, symbol: 'SPY', secType: 'OPT', totalQuantity: 2, lmtPrice: 1.25, filled: 2, remaining: 0, status: 'Filled' };
      tws.push(
        openOrder(version, order, SPY_CALL),
        execDetails(version, UNSOLICITED, { ...fill, shares: 2, price: 1.25, cumQty: 2, avgPrice: 1.25 }, SPY_CALL),
        position(version, ACCOUNT, SPY_CALL, 2, 125.7),
        portfolioValue(version, SPY_CALL, 2, 1.3, 260, 125.7, 8.6, 0, ACCOUNT),
        accountDownloadEnd(ACCOUNT),
      );
      await downloaded;
      assert.deepEqual(tws.errors, []);
      const full = { conId: SPY_CALL.conId, symbol: 'SPY', secType: 'OPT', lastTradeDateOrContractMonth: '20260105', strike: 580.5, right: 'C', multiplier: 100, currency: 'USD', localSymbol: SPY_CALL.localSymbol, tradingClass: 'SPY' };
      const pick = (c: Contract) => ({ conId: c.conId, symbol: c.symbol, secType: c.secType, lastTradeDateOrContractMonth: c.lastTradeDateOrContractMonth, strike: c.strike, right: c.right, multiplier: c.multiplier, currency: c.currency, localSymbol: c.localSymbol, tradingClass: c.tradingClass });
      const [, openContract] = argsOf<[number, Contract]>(seen, EventName.openOrder)[0]!;
      const [, execContract] = argsOf<[number, Contract]>(seen, EventName.execDetails)[0]!;
      const [, positionContract, pos, avgCost] = argsOf<[string, Contract, number, number]>(seen, EventName.position)[0]!;
      const [portfolioContract, held, price, value] = argsOf<[Contract, number, number, number]>(seen, EventName.updatePortfolio)[0]!;
      for (const contract of [openContract, execContract, positionContract, portfolioContract]) assert.deepEqual(pick(contract), full);
      assert.deepEqual([openContract.exchange, execContract.exchange, positionContract.exchange], ['SMART', 'SMART', 'SMART']);
      assert.deepEqual([pos, avgCost, held, price, value], [2, 125.7, 2, 1.3, 260]);
    } finally {
      await tws.close();
    }
  });
}

const aaplSmart: Contract = { symbol: 'AAPL', secType: SecType.STK, exchange: 'SMART', currency: 'USD' };

/** A combo that makes encoder.js write every optional group it has: legs, leg prices, routing params, delta-neutral, scale, hedge, algo, peg-to-benchmark, conditions. */
const everyGroup: [Contract, Order] = [
  {
    symbol: 'AAPL,MSFT', secType: SecType.BAG, exchange: 'SMART', currency: 'USD',
    comboLegs: [{ conId: AAPL.conId, ratio: 1, action: OrderAction.BUY, exchange: 'SMART' }, { conId: MSFT.conId, ratio: 1, action: OrderAction.SELL, exchange: 'SMART' }],
    deltaNeutralContract: { conId: AAPL.conId, delta: 0.5, price: 225 },
  },
  {
    action: OrderAction.BUY, totalQuantity: 3, orderType: OrderType.PEG_BENCH, lmtPrice: 1.5, tif: 'GTC', orderRef: 'every-group', account: ACCOUNT, transmit: true,
    orderComboLegs: [{ price: 1 }, { price: 2 }],
    smartComboRoutingParams: [{ tag: 'NonGuaranteed', value: '1' }],
    deltaNeutralOrderType: 'LMT', deltaNeutralAuxPrice: 1, deltaNeutralConId: 1, deltaNeutralOpenClose: 'O',
    scaleInitLevelSize: 1, scaleSubsLevelSize: 1, scalePriceIncrement: 0.05, scaleAutoReset: true,
    hedgeType: 'D', hedgeParam: '0.5',
    algoStrategy: 'Adaptive', algoParams: [{ tag: 'adaptivePriority', value: 'Normal' }],
    referenceContractId: MSFT.conId, isPeggedChangeAmountDecrease: false, peggedChangeAmount: 0.1, referenceChangeAmount: 0.2, referenceExchangeId: 'NASDAQ',
    conditions: [
      new PriceCondition(230, TriggerMethod.Default, AAPL.conId, 'SMART', true, ConjunctionConnection.AND),
      new TimeCondition('20260105 15:00:00 US/Eastern', true, ConjunctionConnection.AND),
      new MarginCondition(30, false, ConjunctionConnection.OR),
      new ExecutionCondition('SMART', SecType.STK, 'MSFT', ConjunctionConnection.AND),
      new VolumeCondition(1_000_000, AAPL.conId, 'SMART', true, ConjunctionConnection.AND),
      new PercentChangeCondition(2, AAPL.conId, 'SMART', true, ConjunctionConnection.AND),
    ],
    conditionsIgnoreRth: true,
  },
];
/** PEG BEST "up to mid" on IBKRATS: minTradeQty, then the compete fields, then the mid offsets. */
const pegBest: [Contract, Order] = [
  { ...aaplSmart, exchange: 'IBKRATS' },
  { action: OrderAction.BUY, totalQuantity: 200, orderType: OrderType.PEG_BEST, tif: 'DAY', transmit: true, minTradeQty: 100, minCompeteSize: 100, competeAgainstBestOffset: Infinity, midOffsetAtWhole: 0.01, midOffsetAtHalf: 0.005 },
];
const pegMid: [Contract, Order] = [
  { ...aaplSmart, exchange: 'IBKRATS' },
  { action: OrderAction.SELL, totalQuantity: 200, orderType: OrderType.PEG_MID, tif: 'DAY', transmit: true, minTradeQty: 100, midOffsetAtWhole: 0.01, midOffsetAtHalf: 0.005 },
];

for (const version of VERSIONS) {
  test(`placeOrder and cancelOrder from the real client parse back at server version ${version}`, { timeout: 10_000 }, async () => {
    const tws = await connect(version);
    try {
      tws.ib.placeOrder(11, aaplSmart, {
        action: OrderAction.BUY, totalQuantity: 100, orderType: OrderType.LMT, lmtPrice: 224.5, tif: 'DAY',
        orderRef: 'keel-11', account: ACCOUNT, transmit: true, outsideRth: true,
      });
      assert.deepEqual(parsePlaceOrder(await tws.nextFromClient(PLACE_ORDER), version), {
        orderId: 11, conId: 0, symbol: 'AAPL', secType: 'STK', lastTradeDateOrContractMonth: '', strike: undefined, right: '', multiplier: '',
        exchange: 'SMART', currency: 'USD', localSymbol: '', action: 'BUY', totalQuantity: 100,
        orderType: 'LMT', lmtPrice: 224.5, auxPrice: undefined, tif: 'DAY', orderRef: 'keel-11', account: ACCOUNT, transmit: true, outsideRth: true,
        comboLegs: [], legPrices: [],
      });

      // By conId, and with transmit left out: TWS keeps such an order without sending it.
      tws.ib.placeOrder(12, { conId: MSFT.conId, exchange: 'SMART' }, { action: OrderAction.SELL, totalQuantity: 25.5, orderType: OrderType.STP, auxPrice: 410 });
      assert.deepEqual(parsePlaceOrder(await tws.nextFromClient(PLACE_ORDER), version), {
        orderId: 12, conId: 272093, symbol: '', secType: '', lastTradeDateOrContractMonth: '', strike: undefined, right: '', multiplier: '',
        exchange: 'SMART', currency: '', localSymbol: '', action: 'SELL', totalQuantity: 25.5,
        orderType: 'STP', lmtPrice: undefined, auxPrice: 410, tif: '', orderRef: '', account: '', transmit: false, outsideRth: false,
        comboLegs: [], legPrices: [],
      });

      // An option as keel's ib venue names it: the underlying, the expiry, strike, right and multiplier, and its conId.
      tws.ib.placeOrder(16, { conId: SPY_CALL.conId, symbol: 'SPY', secType: SecType.OPT, lastTradeDateOrContractMonth: '20260105', strike: 580.5, right: OptionType.Call, multiplier: 100, exchange: 'SMART', currency: 'USD' }, {
        action: OrderAction.BUY, totalQuantity: 2, orderType: OrderType.LMT, lmtPrice: 1.25, orderRef: 'keel-16', transmit: true,
      });
      const option = parsePlaceOrder(await tws.nextFromClient(PLACE_ORDER), version);
      assert.deepEqual(
        { conId: option.conId, symbol: option.symbol, secType: option.secType, expiry: option.lastTradeDateOrContractMonth, strike: option.strike, right: option.right, multiplier: option.multiplier, totalQuantity: option.totalQuantity },
        { conId: SPY_CALL.conId, symbol: 'SPY', secType: 'OPT', expiry: '20260105', strike: 580.5, right: 'C', multiplier: '100', totalQuantity: 2 },
      );

      // The optional groups: parsing only succeeds if the walk ends exactly where the message does.
      for (const [id, [contract, order]] of [[13, everyGroup], [14, pegBest], [15, pegMid]] as const) {
        tws.ib.placeOrder(id, contract, order);
        const placed = parsePlaceOrder(await tws.nextFromClient(PLACE_ORDER), version);
        assert.deepEqual(
          { orderId: placed.orderId, secType: placed.secType, exchange: placed.exchange, action: placed.action, totalQuantity: placed.totalQuantity, orderType: placed.orderType },
          { orderId: id, secType: contract.secType, exchange: contract.exchange, action: order.action, totalQuantity: order.totalQuantity, orderType: order.orderType },
        );
        // A combo's legs as written; what the client leaves unset reads as TWS's defaults.
        const unset = { openClose: 0, shortSaleSlot: 0, designatedLocation: '', exemptCode: -1 };
        if (contract.secType === SecType.BAG) {
          assert.deepEqual([placed.comboLegs, placed.legPrices], [
            [{ conId: AAPL.conId, ratio: 1, action: 'BUY', exchange: 'SMART', ...unset }, { conId: MSFT.conId, ratio: 1, action: 'SELL', exchange: 'SMART', ...unset }],
            [1, 2],
          ]);
        }
      }

      tws.ib.cancelOrder(11);
      assert.deepEqual(parseCancelOrder(await tws.nextFromClient(CANCEL_ORDER), version), { orderId: 11, manualOrderCancelTime: '' });
      tws.ib.cancelOrder(12, '20260105 14:31:00');
      assert.deepEqual(parseCancelOrder(await tws.nextFromClient(CANCEL_ORDER), version), { orderId: 12, manualOrderCancelTime: '20260105 14:31:00' });

      // An instruction not to exercise (lapse) one contract, named by its local symbol.
      tws.ib.exerciseOptions(17, { symbol: 'SPY', secType: SecType.OPT, localSymbol: 'SPY   260105C00580000', exchange: 'SMART', currency: 'USD' }, OptionExerciseAction.LAPSE, 1, ACCOUNT, 0);
      assert.deepEqual(parseExerciseOptions(await tws.nextFromClient(EXERCISE_OPTIONS), version), {
        reqId: 17, action: 2, quantity: 1, account: ACCOUNT, override: 0,
        contract: {
          conId: 0, symbol: 'SPY', secType: 'OPT', lastTradeDateOrContractMonth: '', strike: undefined, right: '', multiplier: '',
          exchange: 'SMART', currency: 'USD', localSymbol: 'SPY   260105C00580000',
        },
      });
      assert.deepEqual(tws.errors, []);
    } finally {
      await tws.close();
    }
  });
}

test('a malformed PLACE_ORDER or CANCEL_ORDER field gives an error naming the field', { timeout: 10_000 }, async () => {
  const version = 193;
  const tws = await connect(version);
  try {
    tws.ib.placeOrder(21, aaplSmart, { action: OrderAction.BUY, totalQuantity: 10, orderType: OrderType.LMT, lmtPrice: 224.5, transmit: true });
    const placed = await tws.nextFromClient(PLACE_ORDER);
    tws.ib.cancelOrder(21);
    const cancel = await tws.nextFromClient(CANCEL_ORDER);
    assert.equal(parsePlaceOrder(placed, version).orderId, 21);

    const action = placed.indexOf('BUY');
    const changed = (index: number, value: string): string[] => placed.map((f, i) => (i === index ? value : f));
    assert.throws(() => parsePlaceOrder(changed(action, 'HOLD'), version), /PLACE_ORDER field 16 \(action\): expected BUY or SELL, got "HOLD"/);
    for (const quantity of ['0', '-5', 'ten', '']) {
      assert.throws(() => parsePlaceOrder(changed(action + 1, quantity), version), /\(totalQuantity\): expected a positive number/);
    }
    assert.throws(() => parsePlaceOrder(changed(action + 2, ''), version), /\(orderType\): expected a value/);
    assert.throws(() => parsePlaceOrder(changed(action + 3, 'cheap'), version), /\(lmtPrice\): expected a number, got "cheap"/);
    assert.throws(() => parsePlaceOrder(changed(1, '21.5'), version), /\(orderId\): expected an integer/);
    assert.throws(() => parsePlaceOrder(placed.slice(0, -1), version), /PLACE_ORDER ended at field \d+, before manualOrderIndicator/);
    assert.throws(() => parsePlaceOrder([...placed, 'extra'], version), /PLACE_ORDER has 1 unexpected field/);
    assert.throws(() => parsePlaceOrder(cancel, version), /PLACE_ORDER: expected message id 3, got "4"/);
    assert.throws(() => parsePlaceOrder(placed, 175), RangeError);

    assert.deepEqual(parseCancelOrder(cancel, version), { orderId: 21, manualOrderCancelTime: '' });
    assert.throws(() => parseCancelOrder(cancel.map((f, i) => (i === 1 ? 'x' : f)), version), /CANCEL_ORDER field 1 \(orderId\): expected an integer, got "x"/);
    // A 193 cancel read as a 191 one: the first field is taken as the version and the rest no longer fits.
    assert.throws(() => parseCancelOrder(cancel, 191), /CANCEL_ORDER field 2 \(orderId\): expected an integer, got ""/);
  } finally {
    await tws.close();
  }
});
