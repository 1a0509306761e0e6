/**
 * The `keel` command. Each command parses its own options and has its own
 * --help. Exit codes: 0 done, 1 a run failed, 2 a usage or config mistake.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError, loadConfig } from '../config/load.js';
import { runDaemon, treeFromConfig } from '../daemon.js';
import { createLogger } from '../log.js';
import { TwsSimulator } from '../sim/server.js';

const EXIT_USAGE = 2;
const DEFAULT_CONFIG = 'config/default.yaml';

interface Command {
  readonly summary: string;
  readonly usage: string;
  readonly help: string;
  readonly options: NonNullable<ParseArgsConfig['options']>;
  run(values: Record<string, string | boolean | (string | boolean)[] | undefined>, positionals: string[]): Promise<number>;
}

const commands: Record<string, Command> = {
  run: {
    summary: 'run the daemon',
    usage: 'keel run [--config FILE]',
    help: `Starts every component of the config's tree in dependency order and runs
until SIGINT or SIGTERM, then stops them in reverse order. A second signal
forces exit. Exits 1 if the tree gives up (restart intensity exceeded).

Options:
  -c, --config FILE   config file (default: ${DEFAULT_CONFIG})`,
    options: { config: { type: 'string', short: 'c' } },
    async run(values, positionals) {
      if (positionals.length > 0) return usageError(`unexpected argument '${positionals[0]}'`, 'run');
      const file = (values.config as string | undefined) ?? DEFAULT_CONFIG;
      const config = loadConfig(file);
      const log = createLogger({ level: config.log.level, pretty: config.log.pretty });
      return runDaemon({ instance: config.instance, tree: treeFromConfig(config), log });
    },
  },
  sim: {
    summary: 'run the TWS wire-protocol simulator on its own',
    usage: 'keel sim [--port N]',
    help: `Listens on 127.0.0.1 and speaks the TWS API at server version 193, so
@stoqey/ib (or any TWS API client) can connect to it as to TWS or IB Gateway.
Runs until SIGINT or SIGTERM.

Work in progress: the handshake, managed accounts, next valid id, farm
status, current time, client-id checks and contract details (SPY, QQQ, AAPL,
MSFT) are simulated; market data, depth and orders are not yet.

Options:
  -p, --port N   port to listen on (default 7497, the TWS paper port; 0 picks a free one)`,
    options: { port: { type: 'string', short: 'p' } },
    async run(values, positionals) {
      if (positionals.length > 0) return usageError(`unexpected argument '${positionals[0]}'`, 'sim');
      const port = Number(values.port ?? 7497);
      if (!Number.isInteger(port) || port < 0 || port > 65535) return usageError(`--port must be a whole number from 0 to 65535, got '${String(values.port)}'`, 'sim');
      const log = createLogger({ level: 'info' });
      const sim = new TwsSimulator({ log });
      await sim.listen(port);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await sim.close();
      log.info('TWS simulator stopped');
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
};

function generalHelp(): string {
  const width = Math.max(...Object.values(commands).map((c) => c.usage.length));
  const lines = Object.values(commands).map((c) => `  ${c.usage.padEnd(width)}  ${c.summary}`);
  return `keel: an actor-model realtime trading engine for paper trading against Interactive Brokers

Usage:
${lines.join('\n')}
  keel help [COMMAND]

Run 'keel COMMAND --help' for a command's options.
`;
}

function commandHelp(name: string): string {
  const c = commands[name]!;
  return `Usage: ${c.usage}\n\n${c.help}\n`;
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

export async function main(argv: string[]): Promise<number> {
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
