/**
 * The in-process message bus the root owns. Producers publish on topics
 * (`depth`, `ib.status`, later `book.SPY`, `fill`, ...); consumers subscribe.
 * Subscriptions live here, not in the producer, so a restarted producer's
 * consumers keep listening.
 *
 * Delivery is a synchronous function call: the data plane publishes batches,
 * never one message per tick. A consumer that throws fails its own component
 * (the one that subscribed), not the producer that happened to call it.
 */
import { currentOwner, type FailureOwner } from './supervision/failure-scope.js';

/** The daemon's instance name (config `instance`), retained by the root: Redis keys are `keel:<instance>:...`. */
export const INSTANCE_TOPIC = 'keel.instance';

type Handler = (message: never) => void;

interface Subscriber {
  readonly handler: Handler;
  readonly owner: FailureOwner | undefined;
}

export class Bus {
  private readonly topics = new Map<string, Set<Subscriber>>();
  private readonly retained = new Map<string, unknown>();

  /** Listens to `topic` until the returned function is called. */
  subscribe<T>(topic: string, handler: (message: T) => void): () => void {
    const subscriber: Subscriber = { handler: handler as Handler, owner: currentOwner() };
    let set = this.topics.get(topic);
    if (!set) this.topics.set(topic, (set = new Set()));
    set.add(subscriber);
    return () => set.delete(subscriber);
  }

  publish(topic: string, message: unknown): void {
    const set = this.topics.get(topic);
    if (!set) return;
    for (const { handler, owner } of set) {
      try {
        (handler as (m: unknown) => void)(message);
      } catch (error) {
        if (!owner) throw error;
        owner.fail(error);
      }
    }
  }

  /** Publishes and keeps the message as the topic's latest value (for state, not for streams). */
  retain(topic: string, message: unknown): void {
    this.retained.set(topic, message);
    this.publish(topic, message);
  }

  latest<T>(topic: string): T | undefined {
    return this.retained.get(topic) as T | undefined;
  }
}
