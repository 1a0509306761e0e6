/**
 * Which tier serves each instrument (the 3-tier design keel learns from):
 * a high-volatility specialist above a configured volatility, else the
 * model of the instrument's class or sector when one is configured and
 * loaded, else the base model every instrument has.
 *
 * Sector models load on first use and at most `sectorCacheSize` stay
 * loaded; the least recently used one is evicted to make room. While a
 * sector's model loads, the base tier serves its instruments.
 */
import type { Logger } from 'pino';
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

/** The registry slot of a tier's member: `base/0`, `sector:tech/1`, ... */
export const slotOf = (tier: string, member: number) => `${tier}/${member}`;

export class Tiers {
  /** Sector of each instrument, or undefined. */
  private readonly sectorOf: (string | undefined)[];
  /** Loaded sectors, least recently used first. */
  private readonly loaded: string[] = [];
  private readonly loading = new Set<string>();
  private readonly failed = new Set<string>();
  /** Sector loads run one after another, so two first uses cannot both slip under the cap. */
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly config: TierConfig,
    symbols: readonly string[],
    private readonly registry: ModelRegistry,
    private readonly log: Logger,
  ) {
    this.sectorOf = symbols.map((s) => Object.keys(config.sectors).find((name) => config.sectors[name]!.symbols.includes(s)));
  }

  /** Loads the tiers every instrument may need from the start: base and the specialist. */
  async start(): Promise<void> {
    await this.installAll(BASE, this.config.base);
    if (this.config.highVol) await this.installAll(HIGH_VOL, this.config.highVol.models);
  }

  /** Members (slots) of a tier. */
  members(tier: string): string[] {
    const models = tier === BASE ? this.config.base : tier === HIGH_VOL ? this.config.highVol!.models : this.config.sectors[tier.slice('sector:'.length)]!.models;
    return models.map((_, i) => slotOf(tier, i));
  }

  /**
   * The tier for an instrument given its current volatility (NaN when the
   * specialist is not configured). A sector not loaded yet starts loading.
   */
  route(instrument: number, volatility: number): string {
    if (this.config.highVol && volatility > this.config.highVol.above) return HIGH_VOL;
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

  private async installAll(tier: string, manifests: readonly string[]): Promise<void> {
    for (const [i, path] of manifests.entries()) await this.registry.install(slotOf(tier, i), path);
  }
}
