/**
 * Live objects components share: services, not messages. A component kind
 * declares which it provides and which it needs (src/actors/registry.ts);
 * the supervisor hands a service to the components that need it and
 * withdraws it when its provider stops, so nobody reaches a dead object
 * through it. A config in which a component needs a service that nothing in
 * its dependsOn provides is refused at load.
 */
import type { IbLink } from './ib/link.js';
import type { ActorTree } from './inspector/actor-tree.js';
import type { OptionLines } from './ib/option-lines.js';
import type { Journal } from './journal/records.js';
import type { OrderBooks } from './market/books.js';
import type { FeatureEngine } from './market/features.js';
import type { Universe } from './market/universe.js';
import type { PredictorStatus } from './models/predictor.js';
import type { Ledger } from './trading/ledger.js';
import type { RiskGate } from './trading/risk-gate.js';
import type { PaperTrader } from './trading/trader.js';

export interface Services {
  /** The IB client session: the API, the pacer, order ids. */
  ibLink: IbLink;
  /** The instruments, index = instrument id everywhere downstream. */
  instruments: Universe;
  /** Option market-data lines within the budget subscriptions owns, through its pacer. */
  optionLines: OptionLines;
  /** Every instrument's order book. */
  books: OrderBooks;
  /** The features' latest values and data times. */
  featureEngine: FeatureEngine;
  /** The one gate every order path asks. */
  riskGate: RiskGate;
  /** The durable store of order events and fills. */
  journal: Journal;
  /** Orders, fills, positions, cash and P&L as the journal holds them. */
  ledger: Ledger;
  /** The model registry and the serving counters. */
  predictor: PredictorStatus;
  /** The running paper trader, once it has settled with the broker. */
  trader: PaperTrader;
  /** The live actor tree (provided by the root from the first event). */
  inspection: ActorTree;
}

export type ServiceName = keyof Services;

/** What the root provides to every component. */
export const ROOT_SERVICES: readonly ServiceName[] = ['inspection'];

/** What a kind's needs say about a service when none is provided, in a trader's words. */
export const SERVICE_DESCRIPTIONS: Readonly<Record<ServiceName, string>> = {
  ibLink: 'the IB link',
  instruments: 'the instrument universe',
  optionLines: 'the option lines of subscriptions',
  books: 'the order books',
  featureEngine: 'the feature engine',
  riskGate: 'the risk gate',
  journal: 'the journal',
  ledger: 'the ledger',
  predictor: 'the predictor',
  trader: 'the paper trader',
  inspection: 'the actor tree',
};

/** Read access to what is provided right now (for readers that work with whatever is there: the inspector). */
export interface ServiceLookup {
  current<K extends ServiceName>(name: K): Services[K] | undefined;
  /** Calls `listener` each time `name` is provided from now on; returns the unsubscribe. */
  onProvided<K extends ServiceName>(name: K, listener: (service: Services[K]) => void): () => void;
}

type Entry = { readonly provider: string; readonly service: Services[ServiceName] };

/** The services of one tree, each with the component that provides it. */
export class ServiceTable implements ServiceLookup {
  private readonly entries = new Map<ServiceName, Entry>();
  private readonly listeners = new Map<ServiceName, Set<(service: never) => void>>();

  provide<K extends ServiceName>(provider: string, name: K, service: Services[K]): void {
    const held = this.entries.get(name);
    if (held && held.provider !== provider) throw new Error(`${provider} provides ${name}, which ${held.provider} already provides`);
    this.entries.set(name, { provider, service });
    for (const listener of this.listeners.get(name) ?? []) (listener as (s: Services[K]) => void)(service);
  }

  /** Everything `provider` provides is gone (it stopped or failed). */
  withdraw(provider: string): void {
    for (const [name, entry] of this.entries) if (entry.provider === provider) this.entries.delete(name);
  }

  current<K extends ServiceName>(name: K): Services[K] | undefined {
    return this.entries.get(name)?.service as Services[K] | undefined;
  }

  onProvided<K extends ServiceName>(name: K, listener: (service: Services[K]) => void): () => void {
    let set = this.listeners.get(name);
    if (!set) this.listeners.set(name, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }
}
