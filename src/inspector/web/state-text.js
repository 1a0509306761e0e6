// @ts-check
// How an XState state value reads as text, shared by everything that shows one:
// the inspector page (which imports this file as it is: the daemon serves it
// beside app.js), `keel inspect` and the inspector's transition events.
// Plain JavaScript so the page needs no build step; typed by JSDoc (tsconfig allowJs).

/**
 * An XState state value as one short string:
 * - a string as it is: 'running' -> 'running';
 * - nested states by dots: {connected: 'live'} -> 'connected.live', {connected: {feed: 'live'}} -> 'connected.feed.live';
 * - parallel regions in braces, joined by ', ': {feed: 'live', orders: 'idle'} -> '{feed.live, orders.idle}',
 *   also when nested: {connected: {feed: 'live', orders: 'idle'}} -> 'connected.{feed.live, orders.idle}';
 * - a state with no active child ({} or null beneath it) by its key alone;
 * - no state at all (null, undefined, {}) as `none`.
 *
 * @param {unknown} value
 * @param {string} [none] what stands for no state ('-' unless given)
 * @returns {string}
 */
export function stateText(value, none = '-') {
  if (value === null || value === undefined) return none;
  if (typeof value !== 'object') return String(value);
  const parts = Object.entries(value).map(([key, inner]) => (isLeaf(inner) ? key : `${key}.${stateText(inner, none)}`));
  if (parts.length === 0) return none;
  return parts.length === 1 ? /** @type {string} */ (parts[0]) : `{${parts.join(', ')}}`;
}

/**
 * Nothing active below a state.
 *
 * @param {unknown} inner
 * @returns {boolean}
 */
function isLeaf(inner) {
  return inner === null || inner === undefined || (typeof inner === 'object' && Object.keys(inner).length === 0);
}
