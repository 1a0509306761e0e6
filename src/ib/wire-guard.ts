/**
 * A guard between the socket and @stoqey/ib's decoder. Two things TWS can
 * send would otherwise take the whole process: a length prefix with its top
 * bit set, which the client reads as a negative length and then loops on
 * forever without consuming a byte; and a field the decoder throws on (a
 * reject whose advanced-order JSON is not JSON), which escapes from the
 * socket's data handler. Here every chunk's framing is checked before the
 * client sees it, the client's handling of it is caught, and either failure
 * is reported once per connection so that ib_connection rebuilds the link.
 *
 * This reaches into the client's internals (its socket's `onData` and
 * `connect`, its decoder's queues), so it checks their shape when it
 * attaches and refuses loudly if an upgrade moved them.
 */
import type { IBApi } from './api.js';
import { describeError } from '../supervision/failure-scope.js';

/** The client's own ceiling on one message (socket.js MAX_V100_MESSAGE_LENGTH). */
export const MAX_FRAME_BYTES = 0xff_ffff;

interface ClientSocket {
  onData(data: Buffer): void;
  connect(clientId?: number): void;
}

interface ClientDecoder {
  dataQueue: unknown[];
  emitQueue: unknown[];
}

interface ClientInternals {
  controller?: { socket?: ClientSocket; decoder?: ClientDecoder };
}

/**
 * Follows the 4-byte big-endian length prefixes across chunks. Unsigned
 * arithmetic on purpose: the point is to see the lengths a signed reader
 * gets wrong.
 */
export class FrameScanner {
  private header = 0;
  private headerBytes = 0;
  private remaining = 0;

  /** The first impossible length in `chunk`, or undefined when every frame is possible. */
  scan(chunk: Uint8Array): number | undefined {
    let at = 0;
    while (at < chunk.length) {
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, chunk.length - at);
        at += take;
        this.remaining -= take;
        continue;
      }
      this.header = this.header * 256 + chunk[at]!;
      this.headerBytes += 1;
      at += 1;
      if (this.headerBytes === 4) {
        const length = this.header;
        this.header = 0;
        this.headerBytes = 0;
        if (length > MAX_FRAME_BYTES) return length;
        this.remaining = length;
      }
    }
    return undefined;
  }

  reset(): void {
    this.header = 0;
    this.headerBytes = 0;
    this.remaining = 0;
  }
}

export class WireGuard {
  private readonly scanner = new FrameScanner();
  /** Set at the first failure of a connection; what arrives after it is dropped unread. */
  private broken = false;
  private listener: ((reason: string) => void) | undefined;

  constructor(api: IBApi) {
    const { controller } = api as unknown as ClientInternals;
    const socket = controller?.socket;
    const decoder = controller?.decoder;
    if (typeof socket?.onData !== 'function' || typeof socket.connect !== 'function' || !Array.isArray(decoder?.dataQueue) || !Array.isArray(decoder.emitQueue)) {
      throw new Error('@stoqey/ib no longer has the socket and decoder src/ib/wire-guard.ts guards: check it against the installed version');
    }
    const onData = socket.onData.bind(socket);
    const connect = socket.connect.bind(socket);
    socket.connect = (clientId) => {
      this.scanner.reset();
      this.broken = false;
      connect(clientId);
    };
    socket.onData = (data) => {
      if (this.broken) return;
      const length = this.scanner.scan(data);
      if (length !== undefined) {
        this.fail(decoder, `TWS sent a message length of ${length} bytes (at most ${MAX_FRAME_BYTES}): the stream is out of step`);
        return;
      }
      try {
        onData(data);
      } catch (error) {
        this.fail(decoder, `reading what TWS sent failed: ${clip(describeError(error))}`);
      }
    };
  }

  /** Who hears a failure: ib_connection, which drops and rebuilds the link. */
  onFailure(listener: ((reason: string) => void) | undefined): void {
    this.listener = listener;
  }

  private fail(decoder: ClientDecoder, reason: string): void {
    this.broken = true;
    // Half-read tokens would be decoded as the start of the next connection's first message.
    decoder.dataQueue.length = 0;
    decoder.emitQueue.length = 0;
    this.listener?.(reason);
  }
}

/** An error about bytes TWS sent can quote them; a log line needs only the start. */
function clip(text: string): string {
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}
