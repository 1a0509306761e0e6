/**
 * `keel doctor [HOST:PORT]`: can keel trade there? A checkup of a TWS, IB
 * Gateway or simulator (src/ib/checkup.ts) with what keel's config will ask
 * of it: its client id, instruments, depth budget and account rule.
 */
import { existsSync } from 'node:fs';
import { ibConnectionSettings, type IbConnectionSettings } from '../actors/ib-connection.js';
import { paperTraderSettings, type PaperTraderSettings } from '../actors/paper-trader.js';
import { contractOf, subscriptionsSettings, type SubscriptionsSettings } from '../actors/subscriptions.js';
import type { Clock } from '../clock.js';
import { clockFrom } from '../config/clock.js';
import { loadConfig } from '../config/load.js';
import type { KeelConfig } from '../config/schema.js';
import { checkup, MAX_CHECKED_INSTRUMENTS, SKEW_FAIL_MS, SKEW_WARN_MS, type CheckLine, type CheckupPlan } from '../ib/checkup.js';
import { numberFlag, reportMistakes, stringFlag, UserError, type Values } from './flags.js';
import type { Command } from './main.js';

const DEFAULT_CONFIG = 'config/default.yaml';
const DEFAULT_TIMEOUT_MS = 5_000;
/** The doctor's client id is keel's plus this, unless given. */
const CLIENT_ID_OFFSET = 100;
const MAX_CLIENT_ID = 2_147_483_647;

export const doctorCommand: Command = {
  summary: 'check that keel can trade at a TWS or Gateway',
  usage: 'keel doctor [HOST:PORT] [--config FILE] [--client-id N] [--timeout-ms N]',
  help: `Connects to TWS, IB Gateway or the simulator at HOST:PORT (default: the
config's ib_connection host and port, else 127.0.0.1:7497) as a client of
its own, and checks what keel will need there, one line each:
ok|warn|FAIL  CHECK: DETAIL.

  reachable       the API answers (nextValidId)
  server version  at least 193, the version keel's IB client is built for
  accounts        paper (ids start with D) or LIVE; LIVE fails when the
                  paper trader sends orders (ib mode) unless its
                  allowLiveAccount is set
  farms           status after connecting: 2104/2106/2158 ok; 2103 (market
                  data farm broken) fails; 2105 (historical) warns
  market data SYM each instrument's quotes (the first ${MAX_CHECKED_INSTRUMENTS}): live ok;
                  delayed only (10167) or none (354) fails: keel needs live
  depth slots     the books keel asks for at a time (budgets.depthSlots),
                  requested: a refusal (309: over TWS's limit) fails
  clock skew      TWS's current time against this machine's: over ${SKEW_WARN_MS / 1000} s
                  warns (records disagree), over ${SKEW_FAIL_MS / 1000} s fails (a clock is
                  wrong)
  client id       keel's own, tried last: in use (326) warns: a running keel
                  (or another client) holds it, and keel would take the next

Exit 0 when keel can trade there (no FAIL), 1 otherwise, 2 for a usage or
config mistake. Every wait ends after --timeout-ms.

Options:
  -c, --config FILE     keel's config: target, client id, instruments,
                        budgets, paper trader (default: ${DEFAULT_CONFIG} if
                        it exists, else keel's defaults)
      --client-id N     the doctor's own client id (default: keel's + ${CLIENT_ID_OFFSET})
      --timeout-ms N    the longest wait for each answer (default ${DEFAULT_TIMEOUT_MS})
      --json            one JSON object instead of the lines`,
  options: {
    config: { type: 'string', short: 'c' },
    'client-id': { type: 'string' },
    'timeout-ms': { type: 'string' },
    json: { type: 'boolean' },
  },
  async run(values, positionals) {
    return reportMistakes(() => doctor(values, positionals));
  },
};

async function doctor(values: Values, positionals: string[]): Promise<number> {
  if (positionals.length > 1) throw new UserError(`expected one HOST:PORT, got ${positionals.length} arguments`);
  const timeoutMs = numberFlag(values, 'timeout-ms', 'a whole number of ms from 1 to 600000', (n) => Number.isInteger(n) && n >= 1 && n <= 600_000) ?? DEFAULT_TIMEOUT_MS;
  const keel = keelSide(stringFlag(values, 'config'));
  const target = positionals[0] === undefined ? { host: keel.ib.host, port: keel.ib.port } : parseTarget(positionals[0]);
  const clientId =
    numberFlag(values, 'client-id', `a whole number from 0 to ${MAX_CLIENT_ID}`, (n) => Number.isInteger(n) && n >= 0 && n <= MAX_CLIENT_ID) ??
    keel.ib.clientId + CLIENT_ID_OFFSET;
  if (clientId === keel.ib.clientId) throw new UserError(`--client-id must differ from keel's own (${clientId}), which the doctor checks last`);
  const { trader, subscriptions } = keel;
  const plan: CheckupPlan = {
    ...target,
    clientId,
    keelClientId: keel.ib.clientId,
    timeoutMs,
    instruments: subscriptions.settings.instruments.map((i) => ({ symbol: i.symbol, contract: contractOf(i), depth: i.depth })),
    depthSlots: subscriptions.settings.budgets.depthSlots,
    depthSetting: `components.${subscriptions.id}.settings.budgets.depthSlots`,
    orders: trader.settings.mode === 'ib' ? { allowLiveAccount: trader.settings.allowLiveAccount, setting: `components.${trader.id}.settings.allowLiveAccount` } : undefined,
    // The config's market clock: a simulator running fast answers reqCurrentTime in market time.
    clock: keel.clock,
  };
  const lines: CheckLine[] = [];
  const json = values.json === true;
  if (!json) process.stdout.write(`keel doctor: ${target.host}:${target.port}, config ${keel.file ?? "keel's defaults"}\n`);
  await checkup(plan, (line) => {
    lines.push(line);
    if (!json) process.stdout.write(`${line.verdict.padEnd(4)}  ${line.check}: ${line.detail}\n`);
  });
  const failed = lines.filter((l) => l.verdict === 'FAIL').length;
  if (json) {
    process.stdout.write(`${JSON.stringify({ target: `${target.host}:${target.port}`, config: keel.file ?? null, canTrade: failed === 0, checks: lines }, null, 2)}\n`);
  } else {
    process.stdout.write(failed === 0 ? 'keel can trade there\n' : `keel cannot trade there: ${failed} ${failed === 1 ? 'check' : 'checks'} failed\n`);
  }
  return failed === 0 ? 0 : 1;
}

/** HOST:PORT, the host a name, an IPv4 address or a bracketed IPv6 one. */
function parseTarget(text: string): { host: string; port: number } {
  const match = /^(\[[^\]]+\]|[^:[\]]+):(\d{1,5})$/.exec(text);
  const port = Number(match?.[2]);
  if (!match || port < 1 || port > 65_535) throw new UserError(`expected HOST:PORT such as 127.0.0.1:7497, got '${text}'`);
  return { host: match[1]!.replace(/^\[(.*)\]$/, '$1'), port };
}

interface KeelSide {
  readonly file: string | undefined;
  readonly ib: IbConnectionSettings;
  readonly subscriptions: { readonly id: string; readonly settings: SubscriptionsSettings };
  readonly trader: { readonly id: string; readonly settings: PaperTraderSettings };
  readonly clock: Clock;
}

/** What keel's config asks of TWS: the first component of each kind, or that kind's defaults. */
function keelSide(file: string | undefined): KeelSide {
  const path = file ?? (existsSync(DEFAULT_CONFIG) ? DEFAULT_CONFIG : undefined);
  const config = path === undefined ? undefined : loadConfig(path);
  // loadConfig has parsed every component's settings with its kind's schema.
  const settingsOf = <T>(kind: string, defaults: T): { id: string; settings: T } => {
    const found = Object.entries(config?.components ?? ({} as KeelConfig['components'])).find(([, c]) => c.kind === kind);
    return found ? { id: found[0], settings: found[1].settings as T } : { id: kind, settings: defaults };
  };
  return {
    file: path,
    ib: settingsOf('ib_connection', ibConnectionSettings.parse({})).settings,
    subscriptions: settingsOf('subscriptions', subscriptionsSettings.parse({})),
    trader: settingsOf('paper_trader', paperTraderSettings.parse({})),
    clock: clockFrom(config?.clock),
  };
}
