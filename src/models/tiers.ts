/**
 * Which tier serves each instrument at one horizon (the 3-tier design keel learns from):
 * a high-volatility specialist above a configured volatility, else the
 * model of the instrument's class or sector when one is configured and
 * loaded, else the base model every instrument has.
 *
 * Sector models load on first use and at most `sectorCacheSize` stay
 * loaded; the least recently used one is evicted to make room. While a
 * sector's model loads, the base tier serves its instruments.
 *
 * A model of the start tiers (base, specialist) that the registry refuses
 * (a checksum mismatch, a corrupt file, a manifest for other features) is
 * left out: its tier serves with the members it has and is listed in
 * `unavailable`, which the predictor reports as degraded. A specialist tier
 * left with no member hands its instruments to the base tier. Whether
 * anything serves at all is the caller's to judge (`serving`).
 */
import type { Logger } from 'pino';
import { horizonLabel, parseHorizon } from './horizon.js';
import { ModelRefused } from './manifest.js';
import type { ModelRegistry } from './registry.js';

export const BASE = 'base';
export const HIGH_VOL = 'high_vol';
export const sectorTier = (sector: string) => `sector:${sector}`;

export interface TierConfig {
  readonly base: readonly string[];
  readonly sectors: Readonly<Record<string, { readonly symbols: readonly string[]; readonly models: readonly string[] }>>;
  readonly sectorCacheSize: number;
  readonly highVol?: { readonly feature: string; readonly above: number; readonly models: readonly string[] };
}

/** The registry slot of a tier's member at a horizon: `10s/base/0`, `5m/sector:tech/1`, ... */
export const slotOf = (horizonMs: number, tier: string, member: number) => `${horizonLabel(horizonMs)}/${tier}/${member}`;

/** The horizon's tier of a slot (`10s/base/1` -> `10s/base`), or undefined for a slot outside the tiers. */
export const tierOf = (slot: string): string | undefined => {
  const at = slot.lastIndexOf('/');
  return at < 0 ? undefined : slot.slice(0, at);
};

/** The horizon a slot serves, ms (`5m/base/0` -> 300000), or undefined for a slot outside the tiers. */
export const horizonOfSlot = (slot: string): number | undefined => {
  const parts = slot.split('/');
  return parts.length === 3 ? parseHorizon(parts[0]!) : undefined;
};

/** A start-tier model that was refused: its tier serves without it. */
export interface UnavailableModel {
  readonly tier: string;
  readonly slot: string;
  readonly manifest: string;
  readonly reason: string;
  /** A later try may go differently (the latency budget on a busy machine, a worker lost meanwhile). */
  readonly retryable: boolean;
}

export class Tiers {
  /** Sector of each instrument, or undefined. */
  private readonly sectorOf: (string | undefined)[];
  /** Loaded sectors, least recently used first. */
  private readonly loaded: string[] = [];
  private readonly loading = new Set<string>();
  private readonly failed = new Set<string>();
  /** Sector loads run one after another, so two first uses cannot both slip under the cap. */
  private queue: Promise<void> = Promise.resolve();
  /** Start-tier models refused at start, in config order. */
  readonly unavailable: UnavailableModel[] = [];
  /** The specialist has a member serving (set by start). */
  private specialist = false;

  constructor(
    /** The horizon these tiers serve: it names their slots, and the registry refuses a model trained for another. */
    readonly horizonMs: number,
    private readonly config: TierConfig,
    private readonly symbols: readonly string[],
    private readonly registry: ModelRegistry,
    private readonly log: Logger,
  ) {
    this.sectorOf = symbols.map((s) => Object.keys(config.sectors).find((name) => config.sectors[name]!.symbols.includes(s)));
  }

  /**
   * Loads the tiers every instrument may need from the start: base and the
   * specialist. A refused model is left out and logged (see `unavailable`);
   * any other error (the pool closed, say) rejects.
   */
  async start(): Promise<void> {
    await this.installServing(BASE, this.config.base);
    if (this.config.highVol) await this.installServing(HIGH_VOL, this.config.highVol.models);
    this.specialist = this.config.highVol !== undefined && this.serving(HIGH_VOL) > 0;
  }

  /** Members of a tier that have a live model. */
  serving(tier: string): number {
    return this.members(tier).filter((slot) => this.registry.has(slot)).length;
  }

  /** Members (slots) of a tier. */
  members(tier: string): string[] {
    const models = tier === BASE ? this.config.base : tier === HIGH_VOL ? this.config.highVol!.models : this.config.sectors[tier.slice('sector:'.length)]!.models;
    return models.map((_, i) => slotOf(this.horizonMs, tier, i));
  }

  /**
   * The tier for an instrument given its current volatility (NaN when the
   * specialist is not configured). A sector not loaded yet starts loading.
   */
  route(instrument: number, volatility: number): string {
    if (this.specialist && volatility > this.config.highVol!.above) return HIGH_VOL;
    const sector = this.sectorOf[instrument];
    if (sector === undefined || this.failed.has(sector)) return BASE;
    const at = this.loaded.indexOf(sector);
    if (at >= 0) {
      this.loaded.splice(at, 1);
      this.loaded.push(sector);
      return sectorTier(sector);
    }
    if (!this.loading.has(sector)) {
      this.loading.add(sector);
      this.queue = this.queue.then(() => this.loadSector(sector));
    }
    return BASE;
  }

  loadedSectors(): readonly string[] {
    return this.loaded;
  }

  private async loadSector(sector: string): Promise<void> {
    try {
      while (this.loaded.length >= this.config.sectorCacheSize) {
        const evicted = this.loaded.shift()!;
        for (const slot of this.members(sectorTier(evicted))) this.registry.evict(slot);
        this.log.info({ sector: evicted }, 'sector model evicted (LRU cap)');
      }
      await this.installAll(sectorTier(sector), this.config.sectors[sector]!.models);
      this.loaded.push(sector);
      this.log.info({ sector, loaded: this.loaded }, 'sector model loaded on first use');
    } catch (err) {
      // Base keeps serving the sector; a model that failed once is not retried every frame.
      this.failed.add(sector);
      for (const slot of this.members(sectorTier(sector))) this.registry.evict(slot);
      this.log.error({ sector, err: (err as Error).message }, 'sector model refused; base serves its instruments');
    } finally {
      this.loading.delete(sector);
    }
  }

  /** Installs each member that passes; a refused one is left out, logged with its file and reason, and listed. */
  private async installServing(tier: string, manifests: readonly string[]): Promise<void> {
    for (const [i, path] of manifests.entries()) {
      const slot = slotOf(this.horizonMs, tier, i);
      try {
        await this.registry.install(slot, path);
      } catch (err) {
        if (!(err instanceof ModelRefused)) throw err;
        this.unavailable.push({ tier, slot, manifest: path, reason: err.reason, retryable: err.retryable });
      }
    }
    for (const down of this.unavailable.filter((u) => u.tier === tier)) {
      this.log.error({ tier, slot: down.slot, manifest: down.manifest, reason: down.reason }, `model ${down.manifest} refused: ${down.reason}; ${this.without(tier, manifests.length)}`);
    }
  }

  /** What a tier does without its refused members, in words for the log. */
  private without(tier: string, members: number): string {
    const serving = this.serving(tier);
    const name = `${horizonLabel(this.horizonMs)}/${tier}`;
    const who = tier === HIGH_VOL ? `instruments above ${this.config.highVol!.feature} ${this.config.highVol!.above}` : this.everyInstrument();
    if (serving > 0) return `tier ${name} DEGRADED: ${serving} of ${members} models serve ${who}`;
    if (tier === HIGH_VOL) return `tier ${name} has no model: the base tier serves ${who}`;
    return `tier ${name} has no model: ${who} get no prediction`;
  }

  /** The instruments the base tier serves, for the log: every one (those of a loaded sector aside). */
  private everyInstrument(): string {
    const few = this.symbols.slice(0, 5).join(', ');
    return `the ${this.symbols.length} instruments (${few}${this.symbols.length > 5 ? ', ...' : ''})`;
  }

  private async installAll(tier: string, manifests: readonly string[]): Promise<void> {
    for (const [i, path] of manifests.entries()) await this.registry.install(slotOf(this.horizonMs, tier, i), path);
  }
}
