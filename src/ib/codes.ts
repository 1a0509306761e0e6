/**
 * What an IB message code means for keel. TWS reports connection events,
 * farm status and request failures through the same error channel; keel
 * needs to know which are about the link, which about data quality, and
 * which belong to the request that caused them.
 */

export type IbCodeClass =
  /** TWS lost its link to IB (1100); our socket is fine but nothing flows. */
  | 'connectivity-lost'
  /** The link is back and every market-data subscription is gone (1101). */
  | 'restored-data-lost'
  /** The link is back with subscriptions intact (1102). */
  | 'restored-data-kept'
  /** TWS reset the socket (1300) or lost its server connection (2110): reconnect. */
  | 'socket-reset'
  /** A data farm is down (2103, 2105): data degraded, orders unaffected. */
  | 'farm-down'
  /** A data farm is back or idle but available on demand (2104, 2106, 2107, 2108, 2158). */
  | 'farm-up'
  /** Another client holds our client id (326). */
  | 'client-id-in-use'
  /** We sent more than IB's message rate (100); TWS will disconnect us. */
  | 'pacing-violation'
  /** The client could not decode what TWS sent (505) or the socket failed (502, 504, 507): the stream cannot be trusted. */
  | 'protocol-failure'
  /** Everything else: an answer to one request (200, 309, 322, 10147, ...). */
  | 'request';

const CLASSES: ReadonlyMap<number, IbCodeClass> = new Map<number, IbCodeClass>([
  [1100, 'connectivity-lost'],
  [1101, 'restored-data-lost'],
  [1102, 'restored-data-kept'],
  [1300, 'socket-reset'],
  [2110, 'socket-reset'],
  [2103, 'farm-down'],
  [2105, 'farm-down'],
  [2104, 'farm-up'],
  [2106, 'farm-up'],
  [2107, 'farm-up'],
  [2108, 'farm-up'],
  [2158, 'farm-up'],
  [326, 'client-id-in-use'],
  [100, 'pacing-violation'],
  [502, 'protocol-failure'],
  [504, 'protocol-failure'],
  [505, 'protocol-failure'],
  [507, 'protocol-failure'],
]);

export function classifyIbCode(code: number): IbCodeClass {
  return CLASSES.get(code) ?? 'request';
}

/**
 * The farm a 210x message names: `usfarm` in "Market data farm connection is
 * broken:usfarm", `ushmds` in "... available upon demand.ushmds".
 */
export function farmName(message: string): string {
  const at = Math.max(message.lastIndexOf(':'), message.lastIndexOf('.'));
  return at >= 0 ? message.slice(at + 1).trim() : message;
}

/** An options data farm (`usopt`, `euopt`, ...): down, it stops option data only, so option trading, not the link. */
export function isOptionFarm(farm: string): boolean {
  return /opt/i.test(farm);
}

/** A market-data request refused for "not now" (lines full, an id clash): asked again after BUDGET_RETRY_MS. */
export const NOT_NOW_CODES: readonly number[] = [101, 322, 10190];
/** A market-data request refused for good (no such contract, no permission, a request IB rejects): not asked again until wanted again. */
export const REFUSAL_CODES: ReadonlySet<number> = new Set([200, 321, 354, 10089, 10090, 10091, 10168, 10189]);
/** How long a "not now" request waits before it is asked again, ms. */
export const BUDGET_RETRY_MS = 15_000;
