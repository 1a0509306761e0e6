/** Text and colour choices of `keel inspect`, kept apart from Ink so they can be tested. */

// One rendering of XState state values for the page and the terminal: the page imports the same file.
export { stateText } from '../../inspector/web/state-text.js';

/** Ink colour names. */
export type Colour = 'green' | 'yellow' | 'red' | 'magenta' | 'cyan' | 'gray' | 'white' | 'blue';

export function statusColour(status: string): Colour {
  switch (status) {
    case 'running':
    case 'ok':
    case 'OK':
    case 'HEALTHY':
    case 'ACTIVE':
      return 'green';
    case 'starting':
    case 'stopping':
    case 'degraded':
    case 'DEGRADED':
    case 'WARNING':
    case 'REDUCING':
      return 'yellow';
    case 'backoff':
      return 'magenta';
    case 'failed':
    case 'failing':
    case 'CRITICAL':
    case 'HALTED':
      return 'red';
    default:
      // stopped, exited, DISABLED, unknown
      return 'gray';
  }
}

/** Whole seconds left until `until`, rounded up so '0s' shows only when it is due. */
export function secondsLeft(until: number, now: number): number {
  return Math.max(0, Math.ceil((until - now) / 1000));
}

/** A countdown shorter than 10 s keeps a decimal: a restart backoff is often a fraction of a second. */
export function countdown(until: number, now: number): string {
  const ms = Math.max(0, until - now);
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)}s` : `${Math.ceil(ms / 1000)}s`;
}

export function clock(at: number): string {
  const d = new Date(at);
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, '0')}`;
}

/** A price or quantity; '-' when not known. */
export function num(value: number | null | undefined, digits = 2): string {
  return value === null || value === undefined || !Number.isFinite(value) ? '-' : value.toFixed(digits);
}

/** Money with thousands separators and an explicit sign when asked. */
export function money(value: number, signed = false): string {
  const text = Math.abs(value).toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  return value < 0 ? `-${text}` : signed && value > 0 ? `+${text}` : text;
}

export function signColour(value: number | null): Colour {
  return value === null || value === 0 ? 'white' : value > 0 ? 'green' : 'red';
}

/** Cuts `text` to `width` characters, marking the cut. */
export function fit(text: string, width: number): string {
  if (width <= 0) return '';
  return text.length <= width ? text : `${text.slice(0, Math.max(0, width - 1))}…`;
}

/**
 * A feature name within `width` for a column header: as is when it fits,
 * else each word without its inner vowels and cut shorter until it fits
 * ('spread_bps' -> 'sprd_bps', 'trade_flow_imbalance' -> 'tr_fl_im').
 * Words with digits ('l1', '10s') are kept whole: they tell columns apart.
 */
export function abbreviate(name: string, width: number): string {
  if (name.length <= width) return name;
  const words = name.split('_').map((w) => (/\d/.test(w) ? w : w[0]! + w.slice(1).replace(/[aeiou]/g, '')));
  for (let keep = Math.max(...words.map((w) => w.length)); keep >= 1; keep--) {
    const short = words.map((w) => (/\d/.test(w) ? w : w.slice(0, keep))).join('_');
    if (short.length <= width) return short;
  }
  return name.slice(0, width);
}
