/**
 * The usual shape of a component: an async start that returns something to
 * stop. `serviceLogic(start)` turns it into a supervised XState machine:
 * starting -> running (tag 'ready') -> stopping -> stopped, with a failed
 * start failing the component and a shutdown during start honoured as soon
 * as the start completes.
 */
import { assign, fromPromise, setup } from 'xstate';
import type { ComponentContext } from './component.js';

export interface RunningService {
  stop(): Promise<void> | void;
}

export type ServiceStart<Settings> = (ctx: ComponentContext<Settings>) => Promise<RunningService>;

interface ServiceContext<Settings> {
  readonly ctx: ComponentContext<Settings>;
  readonly running?: RunningService;
  readonly shutdownRequested: boolean;
}

export function serviceLogic<Settings>(start: ServiceStart<Settings>) {
  return setup({
    types: {} as {
      context: ServiceContext<Settings>;
      input: ComponentContext<Settings>;
      events: { type: 'shutdown' };
    },
    actors: {
      start: fromPromise<RunningService, ComponentContext<Settings>>(({ input }) => input.scope(() => start(input))),
      stop: fromPromise<void, ServiceContext<Settings>>(({ input }) =>
        input.ctx.scope(async () => {
          await input.running?.stop();
        }),
      ),
    },
  }).createMachine({
    context: ({ input }) => ({ ctx: input, shutdownRequested: false }),
    initial: 'starting',
    states: {
      starting: {
        // No onError: a start that rejects fails the component.
        invoke: {
          src: 'start',
          input: ({ context }) => context.ctx,
          onDone: [
            {
              guard: ({ context }) => context.shutdownRequested,
              target: 'stopping',
              actions: assign({ running: ({ event }) => event.output }),
            },
            { target: 'running', actions: assign({ running: ({ event }) => event.output }) },
          ],
        },
        on: { shutdown: { actions: assign({ shutdownRequested: true }) } },
      },
      running: {
        tags: ['ready'],
        on: { shutdown: 'stopping' },
      },
      stopping: {
        invoke: { src: 'stop', input: ({ context }) => context, onDone: 'stopped' },
      },
      stopped: { type: 'final' },
    },
  });
}
