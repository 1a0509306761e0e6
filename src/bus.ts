/**
 * The in-process message bus the root owns, typed by the topic catalogue
 * (src/topics.ts): a topic that is not declared there, or a payload of the
 * wrong shape, does not compile. Producers publish streams and retain
 * states; consumers subscribe. Subscriptions live here, not in the
 * producer, so a restarted producer's consumers keep listening. A state is
 * cleared when the component that publishes it stops (the supervisor does
 * it, from the kind's declared `publishes`).
 *
 * Delivery is a synchronous function call: the data plane publishes batches,
 * never one message per tick. A consumer that throws fails its own component
 * (the one that subscribed), not the producer that happened to call it.
 */
import { currentOwner, type FailureOwner } from './supervision/failure-scope.js';
import type { StateTopic, States, StreamTopic, Streams, TopicName, Topics } from './topics.js';

type Handler = (message: never) => void;

interface Subscriber {
  readonly handler: Handler;
  readonly owner: FailureOwner | undefined;
}

export class Bus {
  private readonly topics = new Map<TopicName, Set<Subscriber>>();
  private readonly retained = new Map<TopicName, unknown>();

  /** Listens to `topic` until the returned function is called. */
  subscribe<K extends TopicName>(topic: K, handler: (message: Topics[K]) => void): () => void {
    const subscriber: Subscriber = { handler, owner: currentOwner() };
    let set = this.topics.get(topic);
    if (!set) this.topics.set(topic, (set = new Set()));
    set.add(subscriber);
    return () => set.delete(subscriber);
  }

  publish<K extends StreamTopic>(topic: K, message: Streams[K]): void {
    this.deliver(topic, message);
  }

  /** Publishes a state and keeps it as the topic's latest value. */
  retain<K extends StateTopic>(topic: K, message: States[K]): void {
    this.retained.set(topic, message);
    this.deliver(topic, message);
  }

  /** The retained value of a state topic (a stream is never retained: undefined). */
  latest<K extends TopicName>(topic: K): Topics[K] | undefined {
    return this.retained.get(topic) as Topics[K] | undefined;
  }

  /** Forgets the latest values of `topics` (their publisher stopped). */
  clear(topics: readonly TopicName[]): void {
    for (const topic of topics) this.retained.delete(topic);
  }

  private deliver(topic: TopicName, message: unknown): void {
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
}
