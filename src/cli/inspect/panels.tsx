// @jsxRuntime automatic
// @jsxImportSource react
/**
 * The panels of `keel inspect`. Every line is cut at the terminal's width
 * (never wrapped), so each panel's height is known in advance and the app
 * can give the event log exactly the rows that are left (see `heights`).
 */
import { Box, Text } from 'ink';
import type { ReactNode } from 'react';
import type { ActorView, Against, ChainExpiry, ClusterPanel, ClusterShardPanel, ChainPanel, ChainQuote, ChainStrike, FeatureHealthPanel, GatePanel, InspectorEvent, InstrumentPanel, OptionRiskPanel, Panels } from '../../inspector/protocol.js';
import { abbreviate, clock, countdown, fit, money, num, signColour, stateText, statusColour, type Colour } from './format.js';
import type { LinkState } from './link.js';
import type { Model, TreeRow } from './model.js';

/** One line, cut at the box's width. */
function Line({ children }: { children: ReactNode }) {
  return <Text wrap="truncate-end">{children}</Text>;
}

function Title({ children }: { children: ReactNode }) {
  return (
    <Text bold color="cyan" wrap="truncate-end">
      {children}
    </Text>
  );
}

export function Header({ model, link, url, now }: { model: Model; link: LinkState; url: string; now: number }) {
  const panels = model.panels;
  return (
    <Line>
      <Text bold>keel inspect</Text> <Text color="white">{model.instance ?? ''}</Text> <Text dimColor>{url}</Text>
      {'  '}
      <Connection link={link} now={now} />
      {panels && (
        <>
          {'  '}phase <Text color={statusColour(panels.phase)}>{panels.phase}</Text>
          {'  '}health <Text color={statusColour(panels.health)}>{panels.health}</Text>
          {panels.ib && <>{'  '}ib <Text color={panels.ib.state === 'connected' ? 'green' : 'yellow'}>{panels.ib.state}</Text></>}
          {panels.redis && <>{'  '}redis <Text color={panels.redis.state === 'connected' ? 'green' : 'yellow'}>{panels.redis.state}</Text></>}
        </>
      )}
    </Line>
  );
}

function Connection({ link, now }: { link: LinkState; now: number }) {
  switch (link.kind) {
    case 'open':
      return <Text color="green">● live</Text>;
    case 'connecting':
      return <Text color="yellow">○ connecting…</Text>;
    case 'retrying':
      return (
        <Text color="red">
          ○ disconnected ({link.reason}), retrying in {Math.max(1, Math.ceil((link.at - now) / 1000))}s
        </Text>
      );
  }
}

export const GATE_HEIGHT = 3;

/** The gate in a coloured frame: the one thing an operator must never miss. */
export function Gate({ gate, connected }: { gate: GatePanel | null; connected: boolean }) {
  const colour: Colour = gate ? statusColour(gate.state) : 'gray';
  const conditions = gate?.conditions ?? [];
  return (
    <Box borderStyle="round" borderColor={colour} paddingX={1}>
      <Line>
        <Text bold>GATE </Text>
        {gate ? (
          <>
            <Text bold inverse color={colour}>
              {` ${gate.state} `}
            </Text>{' '}
            <Text color={colour}>{gate.reason || '-'}</Text>
            {conditions.length > 0 && <Text dimColor>{'   held by ' + conditions.join('; ')}</Text>}
            {gate.options.length > 0 && <Text color="yellow">{'   options halted: ' + gate.options.join('; ')}</Text>}
          </>
        ) : (
          <Text dimColor>{connected ? 'no risk gate in this daemon' : 'not known yet'}</Text>
        )}
      </Line>
    </Box>
  );
}

/** A failing actor's error gets a line of its own: the inline column is too narrow for it. */
const errorBelow = (a: ActorView) => a.lastError !== null && (a.status === 'backoff' || a.status === 'failed');

export function treeHeight(rows: readonly TreeRow[]): number {
  return 1 + Math.max(1, rows.length + rows.filter((r) => errorBelow(r.actor)).length);
}

/** The supervisor tree: one line per actor, indented under its supervisor. */
export function Tree({ rows, now, skewMs }: { rows: readonly TreeRow[]; now: number; skewMs: number }) {
  const label = (r: TreeRow) => `${'  '.repeat(r.depth)}${r.actor.id}${r.actor.kind !== r.actor.id ? ` (${r.actor.kind})` : ''}`;
  const nameW = Math.min(36, Math.max('SUPERVISOR TREE'.length, ...rows.map((r) => label(r).length)));
  const stateW = Math.min(28, Math.max(5, ...rows.map((r) => stateText(r.actor.state).length)));
  return (
    <Box flexDirection="column">
      <Title>
        {'SUPERVISOR TREE'.padEnd(nameW + 2)}
        {'STATUS'.padEnd(10)}
        {'STATE'.padEnd(stateW + 2)}
        {'RST  HEALTH    '}
        {'BACKOFF / LAST ERROR'}
      </Title>
      {rows.length === 0 && <Text dimColor>no actors yet</Text>}
      {rows.map((r) => (
        <ActorLine key={r.actor.id} actor={r.actor} depth={r.depth} label={label(r)} nameW={nameW} stateW={stateW} now={now + skewMs} />
      ))}
    </Box>
  );
}

function ActorLine({ actor, depth, label, nameW, stateW, now }: { actor: ActorView; depth: number; label: string; nameW: number; stateW: number; now: number }) {
  const health = actor.health;
  const below = errorBelow(actor);
  return (
    <>
      <Line>
        <Text bold={actor.parent === null}>{fit(label, nameW).padEnd(nameW + 2)}</Text>
        <Text color={statusColour(actor.status)}>{fit(actor.status, 9).padEnd(10)}</Text>
        {fit(stateText(actor.state), stateW).padEnd(stateW + 2)}
        <Text color={actor.restarts > 0 ? 'yellow' : undefined} dimColor={actor.restarts === 0}>
          {String(actor.restarts).padStart(3)}
        </Text>
        {'  '}
        <Text color={health ? statusColour(health.status) : undefined} dimColor={!health}>
          {(health?.status ?? '-').padEnd(10)}
        </Text>
        {actor.backoffUntil !== null && <Text color="magenta">restart in {countdown(actor.backoffUntil, now)} </Text>}
        {actor.lastError && !below && <Text color="red" dimColor>{oneLine(actor.lastError)}</Text>}
        {!actor.lastError && health?.detail && <Text dimColor>{health.detail}</Text>}
      </Line>
      {below && (
        <Line>
          {'  '.repeat(depth + 2)}
          <Text color="red">{oneLine(actor.lastError!)}</Text>
        </Line>
      )}
    </>
  );
}

const oneLine = (text: string) => text.replace(/\s+/g, ' ');

export function marketHeight(panels: Panels | null): number {
  // title + header + instruments (or a 'none' line), a blank, title + account line (+ the option risk line)
  return 2 + Math.max(1, panels?.instruments.length ?? 0) + 1 + 2 + (panels?.optionRisk ? 1 : 0);
}

const QUOTE_COLUMNS: readonly [string, number][] = [
  ['SYM', 6],
  ['BID', 9],
  ['ASK', 9],
  ['REGIME', 11],
];
const HOLDING_COLUMNS: readonly [string, number][] = [
  ['POS', 6],
  ['AVG', 9],
  ['UNREAL', 11],
  ['REAL', 11],
];
/** The instrument table's columns: a prediction column per horizon served (`PRED` before any frame). */
function marketColumns(panels: Panels | null): readonly [string, number][] {
  const horizons = panels?.horizons.length ? panels.horizons.map((h) => `P${h.toUpperCase()}`) : ['PRED'];
  return [...QUOTE_COLUMNS, ...horizons.map((h): [string, number] => [h, 7]), ...HOLDING_COLUMNS];
}
export const marketWidth = (panels: Panels | null) => marketColumns(panels).reduce((sum, [, w]) => sum + w, 0);

/** Per instrument: quotes, what the models think, and what we hold; then the account. */
export function Market({ panels }: { panels: Panels | null }) {
  const instruments = panels?.instruments ?? [];
  const account = panels?.account ?? null;
  const columns = marketColumns(panels);
  return (
    <Box flexDirection="column" width={marketWidth(panels)} flexShrink={0}>
      <Title>INSTRUMENTS</Title>
      <Text dimColor wrap="truncate-end">
        {columns.map(([name, w], i) => (i === 0 ? name.padEnd(w) : name.padStart(w - 1) + ' ')).join('')}
      </Text>
      {instruments.length === 0 && <Text dimColor>none yet</Text>}
      {instruments.map((i) => (
        <InstrumentLine key={i.symbol} instrument={i} columns={columns} />
      ))}
      <Text> </Text>
      <Title>ACCOUNT</Title>
      {account ? (
        <Line>
          cash {money(account.cash)}
          {'  '}net <Text color={signColour(account.netPnl)}>{money(account.netPnl, true)}</Text>
          <Text dimColor> (fees {money(account.fees)})</Text>
          {'  '}gross {money(account.grossExposure)} net {money(account.netExposure, true)}
          {'  '}orders <Text color={account.workingOrders > 0 ? 'yellow' : undefined}>{account.workingOrders}</Text>
        </Line>
      ) : (
        <Text dimColor>no account yet</Text>
      )}
      {panels?.optionRisk && <OptionRiskLine risk={panels.optionRisk} />}
    </Box>
  );
}

/** The portfolio's option risk beside the gate's limits; yellow past 80 % of one. */
function OptionRiskLine({ risk }: { risk: OptionRiskPanel }) {
  const part = (label: string, a: Against) => (
    <Text color={a.value !== null && Math.abs(a.value) >= 0.8 * a.limit ? 'yellow' : undefined}>
      {`${label} ${a.value === null ? '-' : Math.round(a.value)}/${a.limit}  `}
    </Text>
  );
  return (
    <Line>
      <Text dimColor>{`${risk.underlying} options  `}</Text>
      {part('Δ', risk.delta)}
      {part('Γ', risk.gamma)}
      {part('vega', risk.vega)}
      {part('θ', risk.theta)}
      {part('premium', risk.premiumAtRisk)}
    </Line>
  );
}

function InstrumentLine({ instrument: i, columns }: { instrument: InstrumentPanel; columns: readonly [string, number][] }) {
  const cell = (text: string, index: number) => text.padStart(columns[index]![1] - 1) + ' ';
  // Before any prediction frame, one empty PRED column.
  const predictions = i.predictions.length > 0 ? i.predictions : [null];
  const held = QUOTE_COLUMNS.length + predictions.length;
  return (
    <Line>
      <Text bold>{i.symbol.padEnd(columns[0]![1])}</Text>
      {cell(num(i.bid), 1)}
      {cell(num(i.ask), 2)}
      <Text color={i.regime ? 'cyan' : undefined} dimColor={!i.regime}>
        {cell(fit(i.regime ?? '-', 10), 3)}
      </Text>
      {predictions.map((p, k) => (
        <Text key={k} color={signColour(p)}>
          {cell(p === null ? '-' : (p > 0 ? '+' : '') + num(p, 2), QUOTE_COLUMNS.length + k)}
        </Text>
      ))}
      <Text color={signColour(i.position)}>{cell(String(i.position), held)}</Text>
      {cell(num(i.averagePrice), held + 1)}
      <Text color={signColour(i.unrealizedPnl)}>{cell(money(i.unrealizedPnl, true), held + 2)}</Text>
      <Text color={signColour(i.realizedPnl)}>{cell(money(i.realizedPnl, true), held + 3)}</Text>
    </Line>
  );
}

/** Strikes of the chain table: the at-the-money one and three each side. */
const CHAIN_STRIKES = 7;

/** The nearest expiry's strikes around the money, ascending (its band may be cut short at an edge). */
export function chainWindow(expiry: ChainExpiry | undefined, count = CHAIN_STRIKES): readonly ChainStrike[] {
  if (!expiry || expiry.strikes.length === 0) return [];
  const at = Math.max(0, expiry.strikes.findIndex((s) => s.strike === expiry.atmStrike));
  const from = Math.max(0, Math.min(at - Math.floor(count / 2), expiry.strikes.length - count));
  return expiry.strikes.slice(from, from + count);
}

export function chainHeight(chain: ChainPanel | null): number {
  return chain ? 2 + Math.max(1, chainWindow(chain.expiries[0]).length) : 0;
}

const pct = (v: number | null, digits = 1) => (v === null ? '-' : (v * 100).toFixed(digits));
const signedNum = (v: number | null, digits = 2) => (v === null ? '-' : (v > 0 ? '+' : '') + v.toFixed(digits));

/** A line's mark: only a live line's quotes are current. */
const LINE_MARKS: Record<string, [string, Colour]> = { live: ['●', 'green'], requested: ['◌', 'yellow'], waiting: ['○', 'gray'], refused: ['×', 'red'] };

/** bid, ask, keel IV % and delta: 7 + 7 + 6 + 7 columns, a side of the table. */
const SIDE = ['BID', 'ASK', 'IV%', 'DELTA'].map((h, i) => h.padStart([7, 7, 6, 7][i]!)).join('');

function Side({ quote, mark }: { quote: ChainQuote | null; mark: 'left' | 'right' }) {
  if (!quote) return <Text dimColor>{(mark === 'left' ? '  ' : '') + '-'.padStart(27) + (mark === 'right' ? '  ' : '')}</Text>;
  const [glyph, colour] = LINE_MARKS[quote.line] ?? ['?', 'gray'];
  const cells = num(quote.bid).padStart(7) + num(quote.ask).padStart(7) + pct(quote.iv).padStart(6) + signedNum(quote.delta).padStart(7);
  return (
    <>
      {mark === 'left' && <Text color={colour}>{glyph} </Text>}
      <Text dimColor={quote.line !== 'live'}>{cells}</Text>
      {mark === 'right' && <Text color={colour}> {glyph}</Text>}
    </>
  );
}

/**
 * The nearest expiry's chain around the money: call bid/ask/IV/Δ | strike |
 * put bid/ask/IV/Δ, the at-the-money strike highlighted, each side marked
 * by its line (● live, ○ waiting, ◌ requested, × refused); above it the
 * underlying, each expiry's ATM IV and the front one's 25-delta RR and fly.
 */
export function Chain({ chain }: { chain: ChainPanel }) {
  const front = chain.expiries[0];
  const strikes = chainWindow(front);
  const live = chain.lines.live;
  return (
    <Box flexDirection="column">
      <Title>
        OPTION CHAIN {chain.underlying} <Text color="white">{num(chain.spot)}</Text>
        <Text color="white" bold={false}>
          {'  '}
          {chain.phase}
          {'  '}lines {live}/{chain.lines.wanted} live{chain.lines.refused > 0 ? `, ${chain.lines.refused} refused` : ''}
          {chain.expiries.map((e, i) => `  ${e.expiry} ATM ${pct(e.atmIv)}%` + (i === 0 ? ` RR25 ${signedNum(e.riskReversal25 === null ? null : e.riskReversal25 * 100)} fly ${signedNum(e.butterfly25 === null ? null : e.butterfly25 * 100)}` : '')).join('')}
        </Text>
      </Title>
      <Text dimColor wrap="truncate-end">
        {'  ' + SIDE + '  STRIKE   ' + SIDE}
      </Text>
      {strikes.length === 0 && <Text dimColor>{chain.phase === 'streaming' ? 'no strikes in the band' : `${chain.phase}…`}</Text>}
      {strikes.map((s) => {
        const atm = s.strike === front?.atmStrike;
        return (
          <Line key={s.strike}>
            <Side quote={s.call} mark="left" />
            <Text bold={atm} inverse={atm}>{` ${s.strike.toFixed(2).padStart(7)} `}</Text>
            {'  '}
            <Side quote={s.put} mark="right" />
          </Line>
        );
      })}
    </Box>
  );
}

/** Shard lines the cluster panel shows at most: the worst first (stale, then the furthest behind). */
const CLUSTER_ROWS = 8;

/** The shards to show, worst first, and how many are left out. */
export function clusterRows(cluster: ClusterPanel, count = CLUSTER_ROWS): { rows: readonly ClusterShardPanel[]; more: number } {
  const behind = (r: ClusterShardPanel) => (r.lag ?? 0) + (r.pending ?? 0);
  const worst = [...cluster.shards].sort((a, b) => Number(a.fresh !== false) - Number(b.fresh !== false) || behind(b) - behind(a) || a.shard - b.shard);
  const rows = worst.slice(0, count).sort((a, b) => a.shard - b.shard);
  return { rows, more: cluster.shards.length - rows.length };
}

export function clusterHeight(cluster: ClusterPanel | null): number {
  if (!cluster) return 0;
  const { rows, more } = clusterRows(cluster);
  return 3 + Math.max(1, rows.length) + (more > 0 ? 1 : 0);
}

/** An age: `120ms`, `3.2s`, `4.5m`; '-' when not known. */
const age = (ms: number | null) => (ms === null ? '-' : ms < 1_000 ? `${Math.round(ms)}ms` : ms < 60_000 ? `${(ms / 1_000).toFixed(1)}s` : `${(ms / 60_000).toFixed(1)}m`);

/**
 * The shard workers, on a trading node that scales out: each worker's shard
 * count and heartbeat age, then the worst shards (stale first, then the
 * furthest behind) with their owner, epoch, output age, lag and pending.
 */
export function Cluster({ cluster }: { cluster: ClusterPanel }) {
  const { rows, more } = clusterRows(cluster);
  const stale = cluster.shards.filter((r) => r.fresh === false).length;
  const problems = Object.keys(cluster.problems).length;
  return (
    <Box flexDirection="column">
      <Title>
        CLUSTER{' '}
        <Text color="white" bold={false}>
          {cluster.shards.length} shards  {cluster.workers.length} workers
        </Text>
        {stale > 0 && <Text color="red">{`  ${stale} stale`}</Text>}
        {problems > 0 && <Text color="red">{`  ${problems} halting`}</Text>}
        {cluster.statusAt === null && <Text dimColor bold={false}>{'  no status read yet'}</Text>}
      </Title>
      <Line>
        {cluster.workers.length === 0 ? <Text dimColor>no workers known</Text> : cluster.workers.map((w) => `${w.worker} ${w.shards} shards hb ${age(w.heartbeatAgeMs)}`).join('   ')}
      </Line>
      <Text dimColor wrap="truncate-end">
        {'SHARD  ' + 'OWNER'.padEnd(20) + 'EPOCH'.padStart(6) + 'AGE'.padStart(8) + 'LAG'.padStart(8) + 'PEND'.padStart(7) + '  SYMBOLS'}
      </Text>
      {rows.length === 0 && <Text dimColor>no shards</Text>}
      {rows.map((r) => (
        <Line key={r.shard}>
          <Text color={r.fresh === false ? 'red' : 'white'}>{String(r.shard).padStart(5)}</Text>
          {'  '}
          <Text color={r.owner === null ? 'red' : 'white'}>{fit(r.owner ?? 'unowned', 19).padEnd(20)}</Text>
          {(r.epoch === null ? '-' : String(r.epoch)).padStart(6)}
          <Text color={r.fresh === false ? 'red' : 'white'}>{age(r.ageMs).padStart(8)}</Text>
          {(r.lag === null ? '-' : String(r.lag)).padStart(8)}
          {(r.pending === null ? '-' : String(r.pending)).padStart(7)}
          <Text dimColor>{'  ' + r.symbols.join(' ')}</Text>
        </Line>
      ))}
      {more > 0 && <Text dimColor>{`… ${more} more shards (keel cluster status lists them all)`}</Text>}
    </Box>
  );
}

export function featureHeight(health: FeatureHealthPanel | null): number {
  if (!health) return 2;
  return 2 + Math.max(1, health.symbols.length) + (Object.keys(health.problems).length > 0 ? 1 : 0);
}

/** Symbols x features, each cell the score coloured by its status. */
export function FeatureHealth({ health, width }: { health: FeatureHealthPanel | null; width: number }) {
  if (!health) {
    return (
      <Box flexDirection="column">
        <Title>FEATURE HEALTH</Title>
        <Text dimColor>no feature health yet</Text>
      </Box>
    );
  }
  const symW = Math.max(4, ...health.symbols.map((s) => s.length)) + 2;
  const colW = Math.max(4, Math.min(12, Math.floor((width - symW) / Math.max(1, health.features.length))));
  const problems = Object.entries(health.problems);
  return (
    <Box flexDirection="column">
      <Title>
        FEATURE HEALTH
        <Text color="white" bold={false}>
          {health.qualityPct !== null ? `  quality ${health.qualityPct.toFixed(0)}%` : ''}
        </Text>
      </Title>
      <Text dimColor wrap="truncate-end">
        {''.padEnd(symW)}
        {health.features.map((f) => abbreviate(f, colW - 1).padStart(colW - 1) + ' ').join('')}
      </Text>
      {health.symbols.length === 0 && <Text dimColor>no instruments</Text>}
      {health.symbols.map((symbol, s) => (
        <Line key={symbol}>
          <Text bold>{symbol.padEnd(symW)}</Text>
          {health.features.map((f, k) => {
            const status = health.status[s]?.[k] ?? '';
            const score = health.scores[s]?.[k] ?? null;
            return (
              <Text key={f} color={status ? statusColour(status) : undefined} dimColor={!status}>
                {(status === 'DISABLED' ? 'off' : score === null ? '·' : score.toFixed(0)).padStart(colW - 1) + ' '}
              </Text>
            );
          })}
        </Line>
      ))}
      {problems.length > 0 && (
        <Line>
          <Text color="red">stops trading: </Text>
          {problems.map(([key, why]) => `${key}: ${why}`).join('; ')}
        </Line>
      )}
    </Box>
  );
}

const EVENT_COLOURS: Record<string, Colour> = {
  gate: 'yellow',
  restart: 'magenta',
  status: 'cyan',
  model: 'blue',
  reconnect: 'yellow',
  transition: 'white',
};

/** The latest `lines` events, oldest first, so the newest is just above the status line. */
export function Events({ events, lines }: { events: readonly InspectorEvent[]; lines: number }) {
  const shown = events.slice(Math.max(0, events.length - lines));
  const actorW = Math.min(20, Math.max(5, ...shown.map((e) => e.actor.length)));
  return (
    <Box flexDirection="column">
      <Title>EVENTS</Title>
      {shown.length === 0 && <Text dimColor>no events yet</Text>}
      {shown.map((e) => (
        <Line key={e.seq}>
          <Text dimColor>{clock(e.at)} </Text>
          <Text color={EVENT_COLOURS[e.kind] ?? 'white'}>{e.kind.padEnd(11)}</Text>
          <Text bold>{fit(e.actor, actorW).padEnd(actorW + 1)}</Text>
          {e.text}
        </Line>
      ))}
    </Box>
  );
}
