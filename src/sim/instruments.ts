/** The simulator's instrument universe: four real US names and any number of synthetic ones for scale. */

export interface Instrument {
  /** Place in the universe, and the instrument's index in the market. */
  readonly index: number;
  readonly symbol: string;
  readonly conId: number;
  readonly primaryExch: string;
  readonly longName: string;
  readonly industry: string;
  /** Price the simulated market opens at. */
  readonly openPrice: number;
  /** One of the SYN names made up for scale, which trade at their own (usually quieter) pace. */
  readonly synthetic: boolean;
}

const REAL: readonly Omit<Instrument, 'index'>[] = [
  { symbol: 'SPY', conId: 756733, primaryExch: 'ARCA', longName: 'SPDR S&P 500 ETF TRUST', industry: 'Funds', openPrice: 580, synthetic: false },
  { symbol: 'QQQ', conId: 320227571, primaryExch: 'NASDAQ', longName: 'INVESCO QQQ TRUST SERIES 1', industry: 'Funds', openPrice: 500, synthetic: false },
  { symbol: 'AAPL', conId: 265598, primaryExch: 'NASDAQ', longName: 'APPLE INC', industry: 'Technology', openPrice: 225, synthetic: false },
  { symbol: 'MSFT', conId: 272093, primaryExch: 'NASDAQ', longName: 'MICROSOFT CORP', industry: 'Technology', openPrice: 420, synthetic: false },
];

/** A contract the broker trades and reports: a stock of the universe, a listed option on one, or a combo (BAG) of options, held only leg by leg. */
export interface SimContract {
  readonly conId: number;
  /** The stock; for an option its underlying, as IB's `symbol` is. */
  readonly symbol: string;
  readonly secType: 'STK' | 'OPT' | 'BAG';
  /** An option's last trading day, YYYYMMDD; '' for a stock. */
  readonly expiry: string;
  /** 0 for a stock. */
  readonly strike: number;
  readonly right: 'C' | 'P' | '';
  /** Shares one unit stands for: 100 an option contract, 1 a share. */
  readonly multiplier: number;
  /** A stock's symbol; an option's OSI symbol. */
  readonly localSymbol: string;
  /** Where PORTFOLIO_VALUE says it is listed ('' for an option, listed on many). */
  readonly primaryExch: string;
}

export function stockContract(i: Instrument): SimContract {
  return { conId: i.conId, symbol: i.symbol, secType: 'STK', expiry: '', strike: 0, right: '', multiplier: 1, localSymbol: i.symbol, primaryExch: i.primaryExch };
}

/** Synthetic symbols SYN0001, SYN0002, ... with conIds from 900000001 and prices spread from 10 to 500. */
function instrumentUniverse(syntheticCount = 0): Instrument[] {
  const synthetic = Array.from({ length: syntheticCount }, (_, i) => ({
    symbol: `SYN${String(i + 1).padStart(4, '0')}`,
    conId: 900_000_001 + i,
    primaryExch: 'NASDAQ',
    longName: `SYNTHETIC INSTRUMENT ${i + 1}`,
    industry: 'Synthetic',
    openPrice: 10 + ((i * 37) % 491),
    synthetic: true,
  }));
  return [...REAL, ...synthetic].map((instrument, index) => ({ ...instrument, index }));
}

/** The universe, looked up the way requests name contracts. */
export class InstrumentUniverse {
  /** Every instrument; an instrument's place here is its index in the market. */
  readonly all: readonly Instrument[];
  private readonly bySymbol = new Map<string, Instrument>();
  private readonly byConId = new Map<number, Instrument>();

  constructor(syntheticCount = 0) {
    this.all = instrumentUniverse(syntheticCount);
    for (const instrument of this.all) {
      this.bySymbol.set(instrument.symbol, instrument);
      this.byConId.set(instrument.conId, instrument);
    }
  }

  /** What a request's contract names: by conId when set, else by symbol (stocks only). */
  find(conId: number, symbol: string, secType: string): Instrument | undefined {
    if (conId > 0) return this.byConId.get(conId);
    if (secType !== '' && secType !== 'STK') return undefined;
    return this.bySymbol.get(symbol.toUpperCase());
  }
}
