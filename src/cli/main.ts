/**
 * The `keel` command. Each command parses its own options and has its own
 * --help. Exit codes: 0 done, 1 a run failed, 2 a usage or config mistake.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { clockFrom, describeClock } from '../config/clock.js';
import { loadConfig } from '../config/load.js';
import { ConfigError } from '../config/yaml.js';
import { runDaemon, treeFromConfig } from '../daemon.js';
import { createLogger } from '../log.js';
import { defaultSimConfig, loadSimConfig, withFlags } from '../sim/config.js';
import { endpointLines, startControlServer, type ControlServer } from '../sim/control.js';
import { TwsSimulator } from '../sim/server.js';
import { clusterCommands } from './cluster.js';
import { doctorCommand } from './doctor.js';
import { inspectCommand } from './inspect.js';
import { journalCommands } from './journal.js';
import { modelsCommands } from './models.js';
import { optionsCommands } from './options.js';
import { replayCommand } from './replay.js';
import { sjmCommands } from './sjm.js';

const EXIT_USAGE = 2;
const DEFAULT_CONFIG = 'config/default.yaml';

export interface Command {
  readonly summary: string;
  readonly usage: string;
  readonly help: string;
  readonly options: NonNullable<ParseArgsConfig['options']>;
  run(values: Record<string, string | boolean | (string | boolean)[] | undefined>, positionals: string[]): Promise<number>;
}

const commands: Record<string, Command> = {
  run: {
    summary: 'run the daemon',
    usage: 'keel run [--config FILE] [--no-inspector]',
    help: `Starts every component of the config's tree in dependency order and runs
until SIGINT, SIGTERM or SIGHUP, then stops them in reverse order. A second
signal forces exit. Exits 1 if the tree gives up (restart intensity exceeded),
2 on a mistake no restart can heal (a port in use, a locked or damaged journal).

The inspector (component kind inspector, http://127.0.0.1:7500 by default)
serves the live actor tree, /health, /metrics and the web page; attach a
terminal to it with \`keel inspect\`.

Options:
  -c, --config FILE   config file (default: ${DEFAULT_CONFIG})
      --no-inspector  leave the inspector component(s) out of the tree`,
    options: { config: { type: 'string', short: 'c' }, 'no-inspector': { type: 'boolean' } },
    async run(values, positionals) {
      if (positionals.length > 0) return usageError(`unexpected argument '${positionals[0]}'`, 'run');
      const file = (values.config as string | undefined) ?? DEFAULT_CONFIG;
      const config = loadConfig(file);
      const clock = clockFrom(config.clock);
      const log = createLogger({ level: config.log.level, pretty: config.log.pretty, clock });
      if (config.clock) log.info({ clock: config.clock }, describeClock(config.clock));
      const tree = treeFromConfig(config);
      if (values['no-inspector']) log.info('inspector left out (--no-inspector)');
      const children = values['no-inspector'] ? tree.children.filter((c) => c.kind !== 'inspector') : tree.children;
      return runDaemon({ instance: config.instance, tree: { ...tree, children }, log, clock });
    },
  },
  sim: {
    summary: 'run the TWS wire-protocol simulator on its own',
    usage: 'keel sim [--port N] [--seed N] [--config FILE] [--control-port N]',
    help: `Listens on 127.0.0.1 and speaks the TWS API (server version 193 unless the
config says otherwise), so @stoqey/ib or any TWS API client can connect to it as
to TWS or IB Gateway. Simulates the handshake, managed accounts, next valid id,
farm status, current time, client-id checks, contract details (SPY, QQQ, AAPL,
MSFT and synthetic SYNnnnn), and quotes, depth and tick-by-tick from a seeded
market under IB's limits. SPY has an option chain: 0-3 DTE dailies, weeklies
and monthlies (reqSecDefOptParams, contract details per expiry), quoted from
an SSVI surface, with greeks (message 21), generic and delayed ticks and
calculations, on the same line budget as the stocks. Runs until SIGINT or
SIGTERM.

Options (each overrides the config file):
  -c, --config FILE            simulator config, YAML (see config/sim.yaml);
                               without it every key has its default
  -p, --port N                 TWS API port (default 7497, the TWS paper port;
                               0 picks a free one)
      --seed N                 seed of the market (default 1): the same seed
                               gives the same market
      --updates-per-second N   market events a second for each watched
                               instrument (default 20)
      --control-port N         serve the HTTP control API on 127.0.0.1:N
                               (0 picks a free one; off unless given here or as
                               controlPort in the config)

Market clock (the config's clock section; keel run takes the same section, and
the two agree on market time when given the same three values):
      --speed N                market time runs N times as fast as real time
                               (default 1): 600 runs 09:30 to 16:00 in 39 s;
                               timeouts, heartbeats and quote ages stay real
      --market-start TIME      what the market's clock reads at --real-start
      --real-start TIME        the real instant of that reading
                               TIME: ISO 8601 with Z or an offset, such as
                               2026-01-05T09:30:00-05:00; without these the
                               market reads the system clock

Control API (JSON answers; parameters in the query string, all required):
  ${endpointLines().join('\n  ')}

Example: curl -X POST 'http://127.0.0.1:N/faults/farm?restoreAfterMs=3000'`,
    options: {
      config: { type: 'string', short: 'c' },
      port: { type: 'string', short: 'p' },
      seed: { type: 'string' },
      'updates-per-second': { type: 'string' },
      'control-port': { type: 'string' },
      speed: { type: 'string' },
      'market-start': { type: 'string' },
      'real-start': { type: 'string' },
    },
    async run(values, positionals) {
      if (positionals.length > 0) return usageError(`unexpected argument '${positionals[0]}'`, 'sim');
      const file = values.config as string | undefined;
      const config = withFlags(file === undefined ? defaultSimConfig() : loadSimConfig(file), values);
      if (typeof config === 'string') return usageError(config, 'sim');
      const { port, controlPort, clock, ...options } = config;
      const stopped = new Promise<string>((resolve) => {
        process.once('SIGINT', () => resolve('SIGINT'));
        process.once('SIGTERM', () => resolve('SIGTERM'));
      });
      const simClock = clockFrom(clock);
      const log = createLogger({ level: 'info', clock: simClock });
      if (clock) log.info({ clock }, describeClock(clock));
      const sim = new TwsSimulator({ ...options, clock: simClock, log });
      try {
        await sim.listen(port);
      } catch (err) {
        await sim.close();
        return cannotListen(port, 'TWS API', err);
      }
      let control: ControlServer | undefined;
      if (controlPort !== undefined) {
        try {
          control = await startControlServer(sim, { port: controlPort, log });
        } catch (err) {
          await sim.close();
          return cannotListen(controlPort, 'control API', err);
        }
        log.info({ port: control.port, url: control.url }, `sim control API listening on ${control.url} (GET ${control.url}help lists the endpoints)`);
      }
      const signal = await stopped;
      await control?.close();
      await sim.close();
      log.info({ signal }, 'TWS simulator stopped');
      return 0;
    },
  },
  'config check': {
    summary: 'check a config file',
    usage: 'keel config check [FILE]',
    help: `Reads FILE (default: ${DEFAULT_CONFIG}) and reports every problem: YAML syntax,
unknown keys, wrong types and values, component settings, unknown
dependencies and dependency cycles. Prints the start levels when it is good.`,
    options: {},
    async run(_values, positionals) {
      if (positionals.length > 1) return usageError(`expected one file, got ${positionals.length}`, 'config check');
      const file = positionals[0] ?? DEFAULT_CONFIG;
      const config = loadConfig(file);
      const { startLevels } = await import('../supervision/tree.js');
      const levels = startLevels(Object.entries(config.components).map(([id, c]) => ({ id, dependsOn: c.dependsOn })));
      process.stdout.write(`${file}: ok, ${Object.keys(config.components).length} components\n`);
      levels.forEach((level, i) => process.stdout.write(`  level ${i}: ${level.join(', ')}\n`));
      return 0;
    },
  },
  inspect: inspectCommand,
  doctor: doctorCommand,
  replay: replayCommand,
  ...sjmCommands,
  ...modelsCommands,
  ...journalCommands,
  ...optionsCommands,
  ...clusterCommands,
};

function generalHelp(): string {
  // A usage too long to share its line puts its summary on the next one.
  const width = Math.max(...Object.values(commands).map((c) => c.usage.length).filter((n) => n <= 40));
  const lines = Object.values(commands).map((c) =>
    c.usage.length <= width ? `  ${c.usage.padEnd(width)}  ${c.summary}` : `  ${c.usage}\n  ${''.padEnd(width)}  ${c.summary}`,
  );
  return `keel: an actor-model realtime trading engine for paper trading against Interactive Brokers

Usage:
${lines.join('\n')}
  keel help [COMMAND]
  ${'keel --version'.padEnd(width)}  the version, and whether keel runs compiled or from its sources

Run 'keel COMMAND --help' for a command's options.
`;
}

function commandHelp(name: string): string {
  const c = commands[name]!;
  return `Usage: ${c.usage}\n\n${c.help}\n`;
}

/** A port that cannot be listened on (in use, or not allowed): exit 1 with why, not a stack trace. */
function cannotListen(port: number, what: string, err: unknown): number {
  const { code, message } = err as NodeJS.ErrnoException;
  process.stderr.write(`keel: cannot listen on 127.0.0.1:${port} for the ${what}: ${code ?? message}\n`);
  return 1;
}

function usageError(message: string, command?: string): number {
  process.stderr.write(`keel: ${message}\n${command ? `Usage: ${commands[command]!.usage}\nRun 'keel ${command} --help' for more.\n` : "Run 'keel --help' for the commands.\n"}`);
  return EXIT_USAGE;
}

/** Finds the longest command name at the start of argv ('config check' before 'config'). */
function findCommand(argv: string[]): [string, string[]] | undefined {
  for (const words of [2, 1]) {
    const name = argv.slice(0, words).join(' ');
    if (commands[name]) return [name, argv.slice(words)];
  }
  return undefined;
}

/** The version, and what runs: the build in dist/ or the sources through tsx (bin/keel.js picks). */
function version(): string {
  const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  const self = fileURLToPath(import.meta.url);
  return `keel ${version} (${self.endsWith('.js') ? 'compiled' : 'sources through tsx'}: ${self})\n`;
}

export async function main(argv: string[]): Promise<number> {
  if (argv[0] === '--version' || argv[0] === '-V') {
    process.stdout.write(version());
    return 0;
  }
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h') {
    process.stdout.write(generalHelp());
    return argv.length === 0 ? EXIT_USAGE : 0;
  }
  if (argv[0] === 'help') {
    const found = findCommand(argv.slice(1));
    process.stdout.write(found ? commandHelp(found[0]) : generalHelp());
    return 0;
  }
  const found = findCommand(argv);
  if (!found) return usageError(`unknown command '${argv.slice(0, 2).join(' ')}'`);
  const [name, rest] = found;
  const command = commands[name]!;
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(commandHelp(name));
    return 0;
  }
  let parsed;
  try {
    parsed = parseArgs({ args: rest, options: command.options, allowPositionals: true, strict: true });
  } catch (err) {
    return usageError((err as Error).message, name);
  }
  try {
    return await command.run(parsed.values, parsed.positionals);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`keel: ${err.message}\n`);
      return EXIT_USAGE;
    }
    throw err;
  }
}
