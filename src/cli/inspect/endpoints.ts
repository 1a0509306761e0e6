/** Where the inspector is: its WebSocket and its HTTP API share one host and port. */

export interface Endpoints {
  /** ws://host:port/ws */
  readonly ws: string;
  /** http://host:port, no trailing slash */
  readonly http: string;
}

/**
 * Both endpoints from what the operator typed: http(s):// or ws(s)://, with
 * or without a path (the daemon serves /ws and /api at its root), or just
 * host:port.
 */
export function endpoints(input: string): Endpoints {
  const url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(input) ? input : `http://${input}`);
  const secure = url.protocol === 'https:' || url.protocol === 'wss:';
  if (!['http:', 'https:', 'ws:', 'wss:'].includes(url.protocol)) throw new Error(`'${input}' is not an http:// or ws:// URL`);
  return { ws: `${secure ? 'wss' : 'ws'}://${url.host}/ws`, http: `${secure ? 'https' : 'http'}://${url.host}` };
}
