/**
 * risk_gate: owns the one RiskGate (the `riskGate` service) and mirrors its
 * state as this actor's XState state (active, reducing, halted) so the
 * inspector sees it. The gate itself is synchronous: it hears feature
 * health (`feature.health`), the IB link (`ib.status`) and, when configured,
 * Redis (`redis.status`) on the bus and halts inside the call that delivered
 * the bad news; this machine only follows. Every transition is logged and
 * published on `risk.gate.transition`.
 *
 * Redis is a condition from the moment the bridge sees the connection go
 * (`down`) until its resync has ended (`connected`): while `resyncing`,
 * Redis answers again but its keys and the journal stream are still stale,
 * and outside readers would act on them. No `redis.status` at all means
 * Redis is not configured: no condition.
 *
 * Option trading has its own conditions: what feature health finds wrong
 * with the option chain (`options.health`) and an options farm down (from
 * `ib.status`). They refuse option orders only; stocks trade on.
 *
 * Every order also meets the pre-trade limits of `settings.limits`; the
 * day's loss beyond `limits.maxDailyLoss` halts until an operator resumes.
 *
 * A gate that starts again in the same process (a restart) starts HALTED:
 * whatever made the old one stop, trading waits for an explicit resume.
 */
import { fromCallback, setup } from 'xstate';
import { z } from 'zod';
import { isOptionFarm } from '../ib/codes.js';
import type { IbStatus } from '../ib/link.js';
import type { FeatureHealth } from '../market/feature-health.js';
import type { RedisStatus } from '../redis/bridge.js';
import type { ClusterView } from '../scaleout/shard-reader.js';
import type { ComponentContext } from '../supervision/component.js';
import { riskLimits } from '../trading/limits.js';
import { RiskGate, type GateState, type GateTransition } from '../trading/risk-gate.js';
import { CLUSTER_TOPIC, FEATURE_HEALTH_TOPIC, GATE_TRANSITION_TOPIC, IB_STATUS_TOPIC, OPTIONS_HEALTH_TOPIC, REDIS_STATUS_TOPIC } from '../topics.js';
import type { ChainHealth } from '../options/chain-health.js';

export const riskGateSettings = z
  .object({
    initialState: z.enum(['ACTIVE', 'REDUCING', 'HALTED']).default('ACTIVE'),
    /** Resume by itself once no condition has been present for healthyPeriodMs (never after an operator's halt). */
    autoResume: z.boolean().default(false),
    healthyPeriodMs: z.number().int().positive().default(30_000),
    /** How often the healthy period is checked. */
    tickMs: z.number().int().positive().default(100),
    /** Pre-trade limits every order meets (src/trading/limits.ts); each has a default, so they are on unless raised. */
    limits: riskLimits.prefault({}),
  })
  .strict();

export type RiskGateSettings = z.infer<typeof riskGateSettings>;

type Event = { type: 'gate.moved'; to: GateState } | { type: 'shutdown' };

interface Context {
  readonly ctx: ComponentContext<RiskGateSettings>;
  readonly gate: RiskGate;
}

function createGate(ctx: ComponentContext<RiskGateSettings>): RiskGate {
  const { settings, clock } = ctx;
  const initial = ctx.incarnation > 1
    ? { state: 'HALTED' as const, reason: 'the risk gate restarted: trading waits for an explicit resume' }
    : { state: settings.initialState, reason: 'started' };
  return new RiskGate(clock, settings, initial);
}

/** The link is a condition once it was up and is not now: reconnecting, degraded (1100, a farm down), stopped. */
function ibConditions(status: IbStatus | undefined, everConnected: boolean): ReadonlyMap<string, string> {
  if (!status || !everConnected || status.state === 'connected') return new Map();
  return new Map([['ib link', `IB link ${status.state}: ${status.reason}`]]);
}

/** An options farm down stops option data, so option trading; the link itself stays up (ib_connection). */
function optionFarmConditions(status: IbStatus): ReadonlyMap<string, string> {
  const down = status.farmsDown.filter(isOptionFarm);
  return new Map(down.map((farm) => [`farm ${farm}`, `the options data farm ${farm} is down (2103): no option data`]));
}

/** Down, or back but not yet resynced: see the module comment. */
function redisConditions(status: RedisStatus): ReadonlyMap<string, string> {
  if (status.state === 'connected') return new Map();
  const what = status.state === 'down' ? `Redis unreachable: ${status.reason}` : `Redis resyncing (stale mirror): ${status.reason}`;
  return new Map([['redis', what]]);
}

/** Feeds the gate from the bus, reports its transitions, ticks the healthy period. */
const watch = fromCallback<Event, Context>(({ input, sendBack }) =>
  input.ctx.scope(() => {
    const { ctx, gate } = input;
    const { bus, clock, log } = ctx;
    let everConnected = false;
    const onOptionConditions = (source: string, problems: ReadonlyMap<string, string>) => {
      if (!gate.reportOptions(source, problems)) return;
      const holds = gate.optionHolds();
      if (holds.length > 0) log.error({ holds }, `option trading HALTED: ${holds.join('; ')}`);
      else log.info('option trading may go on: no option condition left');
    };
    const onHealth = (health: FeatureHealth) => gate.report('feature_health', health.problems);
    const onIb = (status: IbStatus) => {
      if (status.state === 'connected') everConnected = true;
      gate.report('ib', ibConditions(status, everConnected));
      onOptionConditions('ib', optionFarmConditions(status));
    };
    const stopListening = gate.onTransition((t: GateTransition) => {
      const line = { from: t.from, to: t.to, by: t.by, reason: t.reason };
      // Halting on the way out is routine, not an alarm.
      if (t.to === 'HALTED' && t.by !== 'risk_gate') log.error(line, `trading HALTED: ${t.reason}`);
      else log.warn(line, `risk gate ${t.to}: ${t.reason}`);
      bus.publish(GATE_TRANSITION_TOPIC, t);
      sendBack({ type: 'gate.moved', to: t.to });
    });
    const onRedis = (status: RedisStatus) => gate.report('redis', redisConditions(status));
    const onCluster = (view: ClusterView) => gate.report('cluster', view.problems);
    const onOptions = (health: ChainHealth) => onOptionConditions('feature_health', health.problems);
    const unsubscribe = [
      bus.subscribe(FEATURE_HEALTH_TOPIC, onHealth),
      bus.subscribe(IB_STATUS_TOPIC, onIb),
      bus.subscribe(REDIS_STATUS_TOPIC, onRedis),
      bus.subscribe(OPTIONS_HEALTH_TOPIC, onOptions),
      bus.subscribe(CLUSTER_TOPIC, onCluster),
    ];
    const latestCluster = bus.latest(CLUSTER_TOPIC);
    if (latestCluster) onCluster(latestCluster);
    const latestOptions = bus.latest(OPTIONS_HEALTH_TOPIC);
    if (latestOptions) onOptions(latestOptions);
    const latestHealth = bus.latest(FEATURE_HEALTH_TOPIC);
    if (latestHealth) onHealth(latestHealth);
    const latestIb = bus.latest(IB_STATUS_TOPIC);
    if (latestIb) onIb(latestIb);
    const latestRedis = bus.latest(REDIS_STATUS_TOPIC);
    if (latestRedis) onRedis(latestRedis);
    const tick = () => {
      gate.tick(clock.now());
      timer = clock.setTimeout(tick, ctx.settings.tickMs);
    };
    let timer = clock.setTimeout(tick, ctx.settings.tickMs);
    return () => {
      clock.clearTimeout(timer);
      stopListening();
      for (const u of unsubscribe) u();
    };
  }),
);

const follow = (state: GateState) => ({ guard: ({ event }: { event: Event }) => event.type === 'gate.moved' && event.to === state, target: `.${state.toLowerCase()}` });

export const riskGateLogic = setup({
  types: {} as { context: Context; input: ComponentContext<RiskGateSettings>; events: Event },
  actors: { watch },
}).createMachine({
  id: 'risk_gate',
  context: ({ input }) => ({ ctx: input, gate: createGate(input) }),
  entry: ({ context }) => {
    context.ctx.provide('riskGate', context.gate);
    context.ctx.log.info({ state: context.gate.state, reason: context.gate.reason }, `risk gate ${context.gate.state}`);
  },
  invoke: { src: 'watch', input: ({ context }) => context },
  initial: 'starting',
  on: {
    'gate.moved': [follow('ACTIVE'), follow('REDUCING'), follow('HALTED')],
    shutdown: '.stopped',
  },
  states: {
    starting: {
      always: [
        { guard: ({ context }) => context.gate.state === 'HALTED', target: 'halted' },
        { guard: ({ context }) => context.gate.state === 'REDUCING', target: 'reducing' },
        { target: 'active' },
      ],
    },
    active: { tags: ['ready'] },
    reducing: { tags: ['ready'] },
    halted: { tags: ['ready'] },
    stopped: {
      type: 'final',
      // Anyone still holding this gate is refused from now on.
      entry: ({ context }) => context.gate.halt('the risk gate stopped', 'risk_gate'),
    },
  },
});
