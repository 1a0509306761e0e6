/**
 * TWS API framing, server side. After the client's `API\0` greeting, every
 * message in both directions is a 4-byte big-endian length and then fields,
 * each terminated by NUL. The client's @stoqey/ib decoder/encoder are the
 * reference for what goes inside.
 */

export type Field = string | number | boolean | null | undefined;

/** Encodes one message: booleans as 1/0, null and undefined as the empty (unset) field. */
export function encodeMessage(fields: readonly Field[]): Buffer {
  const text = fields.map((f) => `${f === null || f === undefined ? '' : f === true ? '1' : f === false ? '0' : f}\0`).join('');
  const body = Buffer.from(text, 'utf8');
  const frame = Buffer.allocUnsafe(4 + body.length);
  frame.writeUInt32BE(body.length, 0);
  body.copy(frame, 4);
  return frame;
}

/** The version range a client offers in its greeting, e.g. `v100..193`. */
export interface Greeting {
  readonly minVersion: number;
  readonly maxVersion: number;
}

/** Largest message the simulator accepts; anything bigger is garbage, not a slow sender. */
export const MAX_MESSAGE_BYTES = 1 << 24;

export class WireError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WireError';
  }
}

/**
 * Splits the client's byte stream into the greeting and then messages of
 * fields. Throws WireError on bytes that cannot be TWS API framing.
 */
export class MessageReader {
  private buffer: Buffer = Buffer.alloc(0);
  private greeted = false;

  constructor(
    private readonly onGreeting: (greeting: Greeting) => void,
    private readonly onMessage: (fields: string[]) => void,
  ) {}

  push(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    if (!this.greeted) {
      if (this.buffer.length < 4) return;
      if (this.buffer.toString('latin1', 0, 4) !== 'API\0') throw new WireError(`expected the 'API\\0' greeting, got ${JSON.stringify(this.buffer.toString('latin1', 0, 4))}`);
      const body = this.takeFrame(4);
      if (body === undefined) return;
      const match = /^v(\d+)\.\.(\d+)/.exec(body.toString('utf8'));
      if (!match) throw new WireError(`expected a version range like 'v100..193', got ${JSON.stringify(body.toString('utf8'))}`);
      this.greeted = true;
      this.onGreeting({ minVersion: Number(match[1]), maxVersion: Number(match[2]) });
    }
    for (;;) {
      const body = this.takeFrame(0);
      if (body === undefined) return;
      const fields = body.toString('utf8').split('\0');
      if (fields.at(-1) === '') fields.pop();
      this.onMessage(fields);
    }
  }

  /** Removes and returns the length-prefixed frame at `offset`, or nothing if it is not all here yet. */
  private takeFrame(offset: number): Buffer | undefined {
    if (this.buffer.length < offset + 4) return undefined;
    const size = this.buffer.readUInt32BE(offset);
    if (size > MAX_MESSAGE_BYTES) throw new WireError(`message length ${size} is over ${MAX_MESSAGE_BYTES} bytes`);
    if (this.buffer.length < offset + 4 + size) return undefined;
    const body = this.buffer.subarray(offset + 4, offset + 4 + size);
    this.buffer = this.buffer.subarray(offset + 4 + size);
    return body;
  }
}
