/**
 * What keel uses of @stoqey/ib, from the modules that define it. The
 * package's index also loads IBApiNext and all of rxjs, which keel never
 * uses: importing it took 166-219 ms of every start on Node 20, these
 * modules 49-76 ms. Tests and benches may import the package whole. The
 * simulator names tick types by the same enum: one meaning for each number.
 */
export { IBApi } from '@stoqey/ib/dist/api/api.js';
export { EventName } from '@stoqey/ib/dist/api/data/enum/event-name.js';
export { MIN_SERVER_VER } from '@stoqey/ib/dist/api/data/enum/min-server-version.js';
export { SecType } from '@stoqey/ib/dist/api/data/enum/sec-type.js';
export { TickType } from '@stoqey/ib/dist/api/market/tickType.js';
export { OptionType } from '@stoqey/ib/dist/api/data/enum/option-type.js';
export { OptionExerciseAction } from '@stoqey/ib/dist/api/data/enum/option-exercise-action.js';
export { OrderAction } from '@stoqey/ib/dist/api/order/enum/order-action.js';
export { OrderType } from '@stoqey/ib/dist/api/order/enum/orderType.js';
export type { CommissionReport, Contract, ContractDetails, Execution, Order, OrderState } from '@stoqey/ib';
