/**
 * Test components whose every start, ready, stop and failure is recorded
 * against the shared clock, and which a test can make fail on demand.
 */
import { Writable } from 'node:stream';
import { createActor } from 'xstate';
import { Bus } from '../../src/bus.js';
import { ManualClock, type Clock } from '../../src/clock.js';
import { startInspection } from '../../src/inspector/notable.js';
import { createLogger } from '../../src/log.js';
import type { ComponentContext } from '../../src/supervision/component.js';
import { serviceLogic } from '../../src/supervision/service.js';
import type { ChildSpec } from '../../src/supervision/spec.js';
import { rootContext, supervisorMachine, type SupervisorSettings } from '../../src/supervision/supervisor.js';
import { ServiceTable } from '../../src/services.js';

export interface ProbeSettings {
  startMs?: number;
  stopMs?: number;
  /** Fail this many starts before succeeding. */
  failStarts?: number;
  /** Never finish stopping. */
  hangOnStop?: boolean;
  /** Never become ready. */
  hangOnStart?: boolean;
  /** Fail every start by throwing this (a PermanentFailure, say). */
  throwOnStart?: Error;
}

export interface Happening {
  readonly at: number;
  readonly id: string;
  readonly what: 'start' | 'ready' | 'stop' | 'stopped' | 'start-failed';
}

export class Probes {
  readonly log: Happening[] = [];
  private readonly contexts = new Map<string, ComponentContext<ProbeSettings>>();
  private readonly startCounts = new Map<string, number>();

  readonly logic = serviceLogic<ProbeSettings>(async (ctx) => {
    const { id, settings, clock } = ctx;
    this.contexts.set(id, ctx);
    this.record(clock.now(), id, 'start');
    const starts = (this.startCounts.get(id) ?? 0) + 1;
    this.startCounts.set(id, starts);
    if (settings.hangOnStart) await new Promise<never>(() => {});
    await sleep(ctx, settings.startMs ?? 0);
    if (settings.throwOnStart) {
      this.record(clock.now(), id, 'start-failed');
      throw settings.throwOnStart;
    }
    if (starts <= (settings.failStarts ?? 0)) {
      this.record(clock.now(), id, 'start-failed');
      throw new Error(`${id} start ${starts} failed`);
    }
    this.record(clock.now(), id, 'ready');
    return {
      stop: async () => {
        this.record(clock.now(), id, 'stop');
        if (settings.hangOnStop) await new Promise<never>(() => {});
        await sleep(ctx, settings.stopMs ?? 0);
        this.record(clock.now(), id, 'stopped');
      },
    };
  });

  spec(id: string, dependsOn: string[] = [], settings: ProbeSettings = {}, extra: Partial<ChildSpec> = {}): ChildSpec {
    return { id, logic: this.logic, dependsOn, settings, ...extra };
  }

  /** The context of the current run of `id`, to make it fail from the outside. */
  context(id: string): ComponentContext<ProbeSettings> {
    const ctx = this.contexts.get(id);
    if (!ctx) throw new Error(`probe ${id} never started`);
    return ctx;
  }

  starts(id: string): number {
    return this.startCounts.get(id) ?? 0;
  }

  at(id: string, what: Happening['what']): number[] {
    return this.log.filter((h) => h.id === id && h.what === what).map((h) => h.at);
  }

  sequence(what: Happening['what']): string[] {
    return this.log.filter((h) => h.what === what).map((h) => h.id);
  }

  private record(at: number, id: string, what: Happening['what']): void {
    this.log.push({ at, id, what });
  }
}

const sleep = (ctx: ComponentContext<ProbeSettings>, ms: number) =>
  new Promise<void>((resolve) => ctx.clock.setTimeout(resolve, ms));

/** Collects log lines as parsed JSON objects. */
export class LogSink extends Writable {
  readonly lines: Record<string, unknown>[] = [];
  override _write(chunk: Buffer, _enc: string, done: () => void): void {
    for (const line of chunk.toString().split('\n')) if (line) this.lines.push(JSON.parse(line) as Record<string, unknown>);
    done();
  }
  messages(): string[] {
    return this.lines.map((l) => String(l.msg));
  }
}

/** A root supervisor, on a manual clock unless told otherwise, started; inspected as the daemon does. */
export function startTree<C extends Clock = ManualClock>(settings: SupervisorSettings, clock: C = new ManualClock() as unknown as C, instance = 'keel') {
  const sink = new LogSink();
  const log = createLogger({ level: 'debug', pretty: false, destination: sink });
  const bus = new Bus();
  const services = new ServiceTable();
  const inspection = startInspection(bus, services, clock).tree;
  const errors: unknown[] = [];
  let done = false;
  const actor = createActor(supervisorMachine, {
    clock,
    systemId: 'root',
    inspect: inspection.observe,
    input: rootContext({ instance, settings: { ...settings, services }, log, clock, bus, fail: (e) => errors.push(e) }),
  });
  actor.subscribe({ error: (e) => errors.push(e), complete: () => (done = true) });
  actor.start();
  return {
    actor,
    clock,
    bus,
    services,
    inspection,
    sink,
    errors,
    get done() {
      return done;
    },
    child: (id: string) => actor.getSnapshot().context.core.children[id]!,
    phase: () => actor.getSnapshot().context.core.phase,
  };
}
