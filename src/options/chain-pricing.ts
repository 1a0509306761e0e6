/**
 * A whole option chain priced in one call: one row per contract in typed
 * arrays (strike, right, years to expiry, a volatility in, a quote in),
 * prices, greeks in IB's units and implied volatilities out. No object is
 * made per contract: a chain's arrays are made once, at its capacity, and
 * re-priced in place on every move of the underlying, allocating nothing:
 * the calls V8 may not inline (the wings' time value, the IV solver) take
 * their doubles through fields, not as arguments and results, which V8
 * would box into heap numbers (see normal.ts).
 */
import { DAYS_PER_YEAR, otm, otmAt, type Right } from './bsm.js';
import { impliedVolInto, ivIo } from './implied-vol.js';
import { cdf, pdf } from './normal.js';

export class ChainPricing {
  /** Contracts in use (rows 0..count-1). */
  count = 0;
  readonly strike: Float64Array;
  /** +1 call, -1 put. */
  readonly right: Int8Array;
  /** Years to expiry (365-day, calendar: see expiry.ts). */
  readonly years: Float64Array;
  /** Input: the volatility the greeks are computed at (a decimal). */
  readonly vol: Float64Array;
  /** Input: a price (mid, say) to imply a volatility from. */
  readonly quote: Float64Array;
  readonly price: Float64Array;
  readonly delta: Float64Array;
  readonly gamma: Float64Array;
  /** Per volatility point. */
  readonly vega: Float64Array;
  /** Per calendar day. */
  readonly theta: Float64Array;
  /** The implied volatility of `quote`, NaN when it has none (then `ivCode` says why: see ivReason). */
  readonly iv: Float64Array;
  readonly ivCode: Int8Array;

  constructor(readonly capacity: number) {
    this.strike = new Float64Array(capacity);
    this.right = new Int8Array(capacity);
    this.years = new Float64Array(capacity);
    this.vol = new Float64Array(capacity);
    this.quote = new Float64Array(capacity);
    this.price = new Float64Array(capacity);
    this.delta = new Float64Array(capacity);
    this.gamma = new Float64Array(capacity);
    this.vega = new Float64Array(capacity);
    this.theta = new Float64Array(capacity);
    this.iv = new Float64Array(capacity);
    this.ivCode = new Int8Array(capacity);
  }

  /** Appends a contract; returns its row. */
  add(right: Right, strike: number, years: number, vol = NaN): number {
    if (this.count >= this.capacity) throw new RangeError(`chain full: capacity ${this.capacity}`);
    const i = this.count++;
    this.right[i] = right;
    this.strike[i] = strike;
    this.years[i] = years;
    this.vol[i] = vol;
    this.quote[i] = NaN;
    return i;
  }

  /**
   * European (BSM) prices and greeks of rows [from, to) at spot S, rate r and
   * dividend yield q, from `vol`; NaN for a row that cannot be priced.
   */
  greeks(S: number, r: number, q: number, from = 0, to = this.count): void {
    const b = r - q;
    for (let i = from; i < to; i++) {
      const K = this.strike[i]!;
      const T = this.years[i]!;
      const sigma = this.vol[i]!;
      const theta = this.right[i]!;
      if (!(S > 0 && K > 0 && T > 0 && sigma > 0)) {
        this.atExpiry(i, S, r, q);
        continue;
      }
      const sqrtT = Math.sqrt(T);
      const s = sigma * sqrtT;
      const carry = Math.exp(-q * T);
      const discount = Math.exp(-r * T);
      const forward = (S * carry) / discount;
      const lnFK = Math.log(forward / K);
      const d1 = lnFK / s + 0.5 * s;
      const d2 = d1 - s;
      const density = pdf(d1);
      const n1 = cdf(theta * d1);
      const n2 = cdf(theta * d2);
      // The textbook form errs by ~1e-16 of S; when the time value is under 1e-4 of S (the wings, deep in the
      // money) that is over 1e-12 of it, so take the normalised form there: intrinsic + out-of-the-money time value.
      const intrinsic = discount * Math.max(theta * (forward - K), 0);
      const price = theta * (S * carry * n1 - K * discount * n2);
      if (price - intrinsic >= 1e-4 * S) this.price[i] = price;
      else {
        otm.x = -Math.abs(lnFK);
        otm.s = s;
        otmAt();
        this.price[i] = intrinsic + discount * Math.sqrt(forward * K) * otm.b;
      }
      this.delta[i] = theta * carry * n1;
      this.gamma[i] = (carry * density) / (S * s);
      this.vega[i] = (S * carry * density * sqrtT) / 100;
      this.theta[i] = (-(S * carry * density * sigma) / (2 * sqrtT) - theta * (b - r) * S * carry * n1 - theta * r * K * discount * n2) / DAYS_PER_YEAR;
    }
  }

  /** Implied volatilities of rows [from, to) from `quote` (Let's Be Rational, European). */
  impliedVols(S: number, r: number, q: number, from = 0, to = this.count): void {
    const io = ivIo;
    io.S = S;
    io.r = r;
    io.q = q;
    for (let i = from; i < to; i++) {
      io.price = this.quote[i]!;
      io.K = this.strike[i]!;
      io.T = this.years[i]!;
      impliedVolInto(this.right[i] as Right);
      const code = io.code;
      // Not `code >= 0 ? code : NaN`: V8 boxes a conditional that merges a double with the constant NaN.
      if (code >= 0) {
        this.iv[i] = code;
        this.ivCode[i] = 0;
      } else {
        this.iv[i] = NaN;
        this.ivCode[i] = code;
      }
    }
  }

  /** A row with no time or no volatility left: its forward intrinsic value; NaN if it cannot be priced at all. */
  private atExpiry(i: number, S: number, r: number, q: number): void {
    // Rates and the row's index as arguments, its doubles read here: a computed double passed to a call is a heap number.
    const K = this.strike[i]!;
    const T = this.years[i]!;
    const sigma = this.vol[i]!;
    const theta = this.right[i]!;
    const b = r - q;
    if (!(S > 0 && K > 0 && T >= 0 && sigma >= 0)) {
      this.price[i] = this.delta[i] = this.gamma[i] = this.vega[i] = this.theta[i] = NaN;
      return;
    }
    const carry = Math.exp((b - r) * T);
    const discount = Math.exp(-r * T);
    const itm = theta * (S * Math.exp(b * T) - K) > 0;
    this.price[i] = itm ? theta * (S * carry - K * discount) : 0;
    this.delta[i] = itm ? theta * carry : 0;
    this.gamma[i] = this.vega[i] = 0;
    this.theta[i] = itm ? (-theta * (b - r) * S * carry - theta * r * K * discount) / DAYS_PER_YEAR : 0;
  }
}
