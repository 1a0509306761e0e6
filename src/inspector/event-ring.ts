/**
 * The inspector's event log: the last `capacity` events in a fixed array,
 * numbered so a reader can ask for what came after the last one it saw.
 */
import type { InspectorEvent } from './protocol.js';

export class EventRing {
  private readonly slots: (InspectorEvent | undefined)[];
  private next = 0;
  /** Seq of the newest event; 0 before any. */
  lastSeq = 0;

  constructor(readonly capacity: number) {
    if (!(capacity >= 1)) throw new Error(`event ring capacity must be at least 1, got ${capacity}`);
    this.slots = new Array<InspectorEvent | undefined>(capacity);
  }

  push(event: Omit<InspectorEvent, 'seq'>): InspectorEvent {
    const entry = { seq: ++this.lastSeq, ...event };
    this.slots[this.next] = entry;
    this.next = (this.next + 1) % this.capacity;
    return entry;
  }

  get size(): number {
    return Math.min(this.lastSeq, this.capacity);
  }

  /** Oldest first. */
  all(): InspectorEvent[] {
    return this.since(0);
  }

  /** Events with seq > `seq` still held, oldest first. */
  since(seq: number): InspectorEvent[] {
    const count = Math.min(this.size, this.lastSeq - seq);
    const out: InspectorEvent[] = [];
    for (let i = count; i > 0; i--) out.push(this.slots[(this.next - i + this.capacity) % this.capacity]!);
    return out;
  }
}
