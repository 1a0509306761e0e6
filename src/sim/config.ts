/**
 * The config file of `keel sim`: every key optional, defaults the same as
 * TwsSimulator's own, unknown keys refused. A bad file is reported like
 * keel's config (config/load.ts): one line per problem with the file, the
 * YAML line, the key path, the value and what was expected.
 */
import { z } from 'zod';
import { clockSettings, type ClockSettings } from '../config/clock.js';
import { parseWithSchema, readConfigFile } from '../config/yaml.js';
import { IB_LIMITS } from './market-data.js';
import { MIN_SERVER_VERSION, SERVER_VERSION, type SimulatorOptions } from './server.js';

/** The TWS paper-trading port, where clients look for TWS by default. */
export const DEFAULT_SIM_PORT = 7497;

const whole = (min: number, max: number) => z.number().int().min(min).max(max);
const port = whole(0, 65_535);
const limit = whole(0, 1_000_000);

export const simConfigSchema = z
  .object({
    /** The highest server version offered; a client that offers less gets its own. */
    serverVersion: whole(MIN_SERVER_VERSION, SERVER_VERSION).default(SERVER_VERSION),
    /** Accounts in managedAccounts, the first being the one orders go to. */
    accounts: z
      .array(z.string().regex(/^[A-Za-z0-9]+$/, 'expected an account id of letters and digits, like DU1234567'))
      .min(1)
      .default(['DU1234567']),
    /** The first nextValidId. */
    firstOrderId: whole(1, 2_147_483_647).default(1),
    /** Synthetic instruments SYN0001... beyond SPY, QQQ, AAPL and MSFT. */
    syntheticInstruments: whole(0, 100_000).default(0),
    /** Seed of the market: the same seed gives the same market. */
    seed: whole(0, 4_294_967_295).default(1),
    /** Market events per second for each watched instrument. */
    updatesPerSecond: z.number().min(0).max(1_000_000).default(20),
    /** Market events per second for each watched synthetic instrument; unset: updatesPerSecond. */
    syntheticUpdatesPerSecond: z.number().min(0).max(1_000_000).optional(),
    /** How often the market is advanced, in ms. */
    pumpMs: whole(1, 60_000).default(10),
    /** Delay before an order goes from PreSubmitted to Submitted and starts matching, in ms. */
    ackDelayMs: whole(0, 60_000).default(5),
    /** IB's per-connection limits. */
    limits: z
      .object({
        marketDataLines: limit.default(IB_LIMITS.marketDataLines),
        depthSubscriptions: limit.default(IB_LIMITS.depthSubscriptions),
        tickByTickSubscriptions: limit.default(IB_LIMITS.tickByTickSubscriptions),
      })
      .strict()
      .prefault({}),
    /** SPY's cash dividends: a short call in the money by more than one is assigned at the close before its ex-date. */
    dividends: z
      .array(z.object({ exDate: z.string().regex(/^\d{8}$/, 'expected an ex-dividend date YYYYMMDD'), amount: z.number().positive() }).strict())
      .default([]),
    /** The TWS API port on 127.0.0.1 (0 picks a free one). */
    port: port.default(DEFAULT_SIM_PORT),
    /** The HTTP control port on 127.0.0.1 (0 picks a free one); no control server when unset. */
    controlPort: port.optional(),
    /** Market time running fast from an anchor, as keel's `clock` section (config/clock.ts); none: the system clock. */
    clock: clockSettings.optional(),
  })
  .strict() satisfies z.ZodType<Omit<SimulatorOptions, 'clock'> & { port: number; controlPort?: number | undefined; clock?: ClockSettings | undefined }>;

export type SimConfig = z.output<typeof simConfigSchema>;

/** Reads and checks a simulator config file; a ConfigError names every problem. */
export function loadSimConfig(file: string): SimConfig {
  return parseSimConfig(readConfigFile(file), file);
}

export function parseSimConfig(text: string, file: string): SimConfig {
  return parseWithSchema(text, file, simConfigSchema);
}

/** The config of a simulator started without a file. */
export function defaultSimConfig(): SimConfig {
  return simConfigSchema.parse({});
}

/** The options of `keel sim` that override keys of the config file. */
export const SIM_FLAGS = [
  { flag: 'port', key: 'port', expected: 'a whole number from 0 to 65535' },
  { flag: 'control-port', key: 'controlPort', expected: 'a whole number from 0 to 65535' },
  { flag: 'seed', key: 'seed', expected: 'a whole number from 0 to 4294967295' },
  { flag: 'updates-per-second', key: 'updatesPerSecond', expected: 'a number from 0 to 1000000' },
] as const;

/** The options of `keel sim` that set keys of its `clock` section. */
export const CLOCK_FLAGS = [
  { flag: 'speed', key: 'speed' },
  { flag: 'market-start', key: 'marketStart' },
  { flag: 'real-start', key: 'realStart' },
] as const;

/**
 * Applies the flags given (as parseArgs strings) over `config`, checked by
 * the same rules as the file. Returns the config, or the message for the
 * first bad flag.
 */
export function withFlags(config: SimConfig, values: Readonly<Record<string, unknown>>): SimConfig | string {
  const result = { ...config };
  for (const { flag, key, expected } of SIM_FLAGS) {
    const text = values[flag];
    if (text === undefined) continue;
    const value = typeof text === 'string' && text.trim() !== '' ? Number(text) : Number.NaN;
    const parsed = simConfigSchema.shape[key].safeParse(value);
    if (!parsed.success || parsed.data === undefined) return `--${flag} must be ${expected}, got '${String(text)}'`;
    result[key] = parsed.data;
  }
  const clock = withClockFlags(config.clock, values);
  if (typeof clock === 'string') return clock;
  if (clock !== undefined) result.clock = clock;
  return result;
}

/** The clock flags over the file's `clock` section: the flags given replace its keys, and the whole is checked again. */
function withClockFlags(clock: ClockSettings | undefined, values: Readonly<Record<string, unknown>>): ClockSettings | undefined | string {
  const given = CLOCK_FLAGS.filter(({ flag }) => values[flag] !== undefined);
  if (given.length === 0) return clock;
  const raw: Record<string, unknown> = clock ? { speed: clock.speed, marketStart: new Date(clock.marketStart).toISOString(), realStart: new Date(clock.realStart).toISOString() } : {};
  for (const { flag, key } of given) {
    const text = String(values[flag]);
    raw[key] = key === 'speed' ? (text.trim() === '' ? Number.NaN : Number(text)) : text;
  }
  const parsed = clockSettings.safeParse(raw);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const named = CLOCK_FLAGS.find(({ key }) => key === issue.path[0]);
  if (!named) return `the market clock: ${issue.message}`;
  if (values[named.flag] === undefined) return `--${given[0]!.flag} needs --${named.flag} too (or a clock section in the config with ${named.key})`;
  return `--${named.flag}: ${issue.message}, got '${String(values[named.flag])}'`;
}
