/**
 * The inspector's WebSocket, kept open: on any close it retries with a
 * doubling backoff, and every (re)connect starts from the server's fresh
 * snapshot. Also sends the control commands over HTTP.
 */
import WebSocket from 'ws';
import type { ClientMessage, ControlCommand, ServerMessage } from '../../inspector/protocol.js';
import type { Endpoints } from './endpoints.js';
import { applyMessage, EMPTY_MODEL, type Model } from './model.js';

export type LinkState =
  | { readonly kind: 'connecting' }
  | { readonly kind: 'open' }
  | { readonly kind: 'retrying'; readonly at: number; readonly reason: string };

export interface ControlResult {
  readonly ok: boolean;
  /** 'ok', or the server's error message. */
  readonly text: string;
}

export interface LinkOptions {
  readonly minRetryMs?: number;
  readonly maxRetryMs?: number;
  /** A connection that answers no ping within this is dropped and retried. */
  readonly pingMs?: number;
}

export class InspectorLink {
  model: Model = EMPTY_MODEL;
  state: LinkState = { kind: 'connecting' };
  private socket: WebSocket | null = null;
  private retryMs: number;
  private retryTimer: NodeJS.Timeout | null = null;
  private pingTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly minRetryMs: number;
  private readonly maxRetryMs: number;
  private readonly pingMs: number;

  constructor(
    readonly endpoints: Endpoints,
    /** Called on every change of `model` or `state`; the caller decides when to draw. */
    private readonly onChange: () => void,
    options: LinkOptions = {},
  ) {
    this.minRetryMs = options.minRetryMs ?? 250;
    this.maxRetryMs = options.maxRetryMs ?? 5000;
    this.pingMs = options.pingMs ?? 5000;
    this.retryMs = this.minRetryMs;
  }

  start(): void {
    if (this.closed || this.socket) return;
    this.setState({ kind: 'connecting' });
    const socket = new WebSocket(this.endpoints.ws, { handshakeTimeout: 5000 });
    this.socket = socket;
    let lastError = 'closed';
    let alive = true;
    socket.on('open', () => {
      this.setState({ kind: 'open' });
      // A daemon that froze, or a network that dropped us silently, never sends a close.
      this.pingTimer = setInterval(() => {
        if (!alive) return socket.terminate();
        alive = false;
        socket.ping();
      }, this.pingMs);
    });
    socket.on('pong', () => (alive = true));
    socket.on('message', (data) => {
      alive = true;
      const message = parse(String(data));
      if (!message) return;
      // Only a snapshot proves the server is really up: back to the shortest retry.
      if (message.type === 'snapshot') this.retryMs = this.minRetryMs;
      this.model = applyMessage(this.model, message, Date.now());
      this.onChange();
    });
    socket.on('unexpected-response', (_req, res) => {
      lastError = `HTTP ${res.statusCode} on ${this.endpoints.ws}`;
      socket.terminate();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      // The first error says why; terminating a failed handshake adds a vaguer one.
      if (lastError === 'closed') lastError = err.code ?? err.message;
    });
    socket.on('close', () => {
      if (this.pingTimer) clearInterval(this.pingTimer);
      this.pingTimer = null;
      this.socket = null;
      if (this.closed) return;
      const delay = this.retryMs;
      this.retryMs = Math.min(this.maxRetryMs, this.retryMs * 2);
      this.setState({ kind: 'retrying', at: Date.now() + delay, reason: lastError });
      this.retryTimer = setTimeout(() => {
        this.retryTimer = null;
        this.start();
      }, delay);
    });
  }

  /** Asks for the whole snapshot again. */
  resync(): void {
    if (this.socket?.readyState !== WebSocket.OPEN) return;
    const message: ClientMessage = { type: 'resync' };
    this.socket.send(JSON.stringify(message));
  }

  async control(command: ControlCommand, token: string, body: Record<string, unknown> = {}): Promise<ControlResult> {
    try {
      const res = await fetch(`${this.endpoints.http}/api/control/${command}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(10_000),
      });
      const text = await res.text();
      if (res.ok) return { ok: true, text: 'ok' };
      return { ok: false, text: `${res.status}: ${errorText(text) || res.statusText}` };
    } catch (err) {
      const cause = (err as { cause?: NodeJS.ErrnoException }).cause;
      return { ok: false, text: cause?.code ?? (err as Error).message };
    }
  }

  close(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.socket?.terminate();
  }

  private setState(state: LinkState): void {
    this.state = state;
    this.onChange();
  }
}

/** A server message, or null for anything else (a newer server may send types we do not know). */
function parse(text: string): ServerMessage | null {
  try {
    const message = JSON.parse(text) as { type?: unknown };
    return ['snapshot', 'actors', 'events', 'panels', 'chain', 'error'].includes(message.type as string) ? (message as ServerMessage) : null;
  } catch {
    return null;
  }
}

/** The error in a JSON error body ({error} or {message}), else the body itself, shortened. */
function errorText(body: string): string {
  try {
    const json = JSON.parse(body) as { error?: unknown; message?: unknown; reason?: unknown };
    const text = json.error ?? json.message ?? json.reason;
    if (typeof text === 'string') return text;
  } catch {
    // not JSON: the raw body says it
  }
  return body.trim().slice(0, 200);
}
