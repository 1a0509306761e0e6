// @jsxRuntime automatic
// @jsxImportSource react
/**
 * The `keel inspect` screen. The link updates its model on every message;
 * the screen is drawn at most 10 times a second when something changed, and
 * once a second anyway so countdowns move.
 */
import { Box, render, Text, useApp, useInput, useStdout } from 'ink';
import { useEffect, useState } from 'react';
import type { ControlCommand } from '../../inspector/protocol.js';
import type { Endpoints } from './endpoints.js';
import { InspectorLink } from './link.js';
import { treeRows } from './model.js';
import { Chain, chainHeight, Cluster, clusterHeight, Events, FeatureHealth, featureHeight, Gate, GATE_HEIGHT, Header, Market, marketHeight, marketWidth, Tree, treeHeight } from './panels.js';

const FRAME_MS = 100;
const IDLE_FRAME_MS = 1000;

/** Where the control token comes from; null: keys h and r only say why they do nothing. */
export type TokenSource = { readonly describe: string; read(): string | null } | null;

export interface InspectOptions {
  readonly endpoints: Endpoints;
  readonly token: TokenSource;
}

/** Shared by the link's callback and the screen: has anything changed since the last frame? */
interface Changes {
  dirty: boolean;
}

type Pending = { readonly command: ControlCommand; readonly question: string; readonly reason: string } | null;
type Status = { readonly text: string; readonly colour: 'green' | 'red' | 'yellow' | 'gray' } | null;

const KEYS: Record<string, { command: ControlCommand; question: string; reason: string }> = {
  h: { command: 'halt', question: 'Halt trading?', reason: 'operator halt from keel inspect' },
  r: { command: 'resume', question: 'Resume trading?', reason: 'operator resume from keel inspect' },
};

function App({ link, changes, token }: { link: InspectorLink; changes: Changes; token: TokenSource }) {
  const { exit } = useApp();
  const { stdout } = useStdout();
  const [, setFrame] = useState(0);
  const [pending, setPending] = useState<Pending>(null);
  const [status, setStatus] = useState<Status>(null);

  useEffect(() => {
    let drawnAt = 0;
    const timer = setInterval(() => {
      const now = Date.now();
      if (!changes.dirty && now - drawnAt < IDLE_FRAME_MS) return;
      changes.dirty = false;
      drawnAt = now;
      setFrame((f) => f + 1);
    }, FRAME_MS);
    const resized = () => (changes.dirty = true);
    stdout.on('resize', resized);
    return () => {
      clearInterval(timer);
      stdout.off('resize', resized);
    };
  }, [changes, stdout]);

  const send = (command: ControlCommand, reason: string) => {
    const secret = token?.read();
    if (!secret) return setStatus({ text: `${command}: no token in ${token?.describe ?? '-'}`, colour: 'red' });
    setStatus({ text: `${command}: sending…`, colour: 'yellow' });
    void link.control(command, secret, { reason }).then((result) =>
      setStatus({ text: result.ok ? `${command}: ok` : `${command} failed: ${result.text}`, colour: result.ok ? 'green' : 'red' }),
    );
  };

  useInput(
    (input) => {
      if (pending) {
        setPending(null);
        if (input === 'y') send(pending.command, pending.reason);
        else setStatus({ text: `${pending.command} cancelled`, colour: 'gray' });
        return;
      }
      if (input === 'q') return exit();
      const key = KEYS[input];
      if (!key) return;
      if (!token) return setStatus({ text: `${key.command}: no token, control is off (--token, --token-file or KEEL_TOKEN)`, colour: 'yellow' });
      setPending(key);
    },
    { isActive: process.stdin.isTTY === true },
  );

  const now = Date.now();
  const model = link.model;
  const columns = stdout.columns || 160;
  const rows = treeRows(model.actors);
  const panels = model.panels;
  // Side by side when the tree keeps at least 70 columns; else the market goes under the tree.
  const sideBySide = columns >= marketWidth(panels) + 72;
  const middle = sideBySide ? Math.max(treeHeight(rows), marketHeight(panels)) : treeHeight(rows) + 1 + marketHeight(panels);
  // Everything but the event log has a known height; the log gets the rest (one row spare: a full screen makes Ink clear it on every frame).
  const chain = model.chain;
  const cluster = panels?.cluster ?? null;
  const fixed = 1 + GATE_HEIGHT + middle + (chain ? 1 + chainHeight(chain) : 0) + (cluster ? 1 + clusterHeight(cluster) : 0) + 1 + featureHeight(panels?.featureHealth ?? null) + 1 + 1 + 1 + 1;
  const eventLines = Math.max(3, (stdout.rows || 50) - 1 - fixed);
  const stale = link.state.kind !== 'open' && model.instance !== null;

  return (
    <Box flexDirection="column" width={columns}>
      <Header model={model} link={link.state} url={link.endpoints.ws} now={now} />
      <Gate gate={panels?.gate ?? null} connected={model.instance !== null} />
      <Box flexDirection={sideBySide ? 'row' : 'column'} rowGap={1}>
        <Box flexDirection="column" flexGrow={1} flexShrink={1} marginRight={sideBySide ? 2 : 0}>
          <Tree rows={rows} now={now} skewMs={model.skewMs} />
        </Box>
        <Market panels={panels} />
      </Box>
      {cluster && (
        <Box marginTop={1}>
          <Cluster cluster={cluster} />
        </Box>
      )}
      {chain && (
        <Box marginTop={1}>
          <Chain chain={chain} />
        </Box>
      )}
      <Box marginTop={1}>
        <FeatureHealth health={panels?.featureHealth ?? null} width={columns} />
      </Box>
      <Box marginTop={1}>
        <Events events={model.events} lines={eventLines} />
      </Box>
      <Text wrap="truncate-end" color={status?.colour ?? 'gray'}>
        {stale ? '(showing the last state seen) ' : ''}
        {status ? status.text : model.serverError ? `the daemon said: ${model.serverError}` : ' '}
      </Text>
      <Footer pending={pending} token={token} control={model.control} />
    </Box>
  );
}

function Footer({ pending, token, control }: { pending: Pending; token: TokenSource; control: boolean }) {
  if (pending) {
    return (
      <Text bold color="yellow" wrap="truncate-end">
        {pending.question} press y to confirm, any other key cancels
      </Text>
    );
  }
  return (
    <Text dimColor wrap="truncate-end">
      q quit
      {token ? '  h halt  r resume' : '  h/r disabled: no token (--token, --token-file or KEEL_TOKEN)'}
      {token && !control ? '  (the daemon reports control commands off)' : ''}
    </Text>
  );
}

/** Draws until q or Ctrl+C; 0 then. */
export async function runInspect(options: InspectOptions): Promise<number> {
  const changes: Changes = { dirty: true };
  const link = new InspectorLink(options.endpoints, () => (changes.dirty = true));
  link.start();
  const app = render(<App link={link} changes={changes} token={options.token} />, { maxFps: 10, patchConsole: false });
  try {
    await app.waitUntilExit();
  } finally {
    link.close();
  }
  return 0;
}
