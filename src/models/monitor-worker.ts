/**
 * The drift monitor's thread: a ModelMonitor fed each frame's copy and its
 * members' answers by MonitorThread (monitor-thread.ts), answering with its
 * verdicts and, when asked, its report. Speaks only the messages below.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ModelMonitor, type ModelDrift, type MonitorSettings, type MonitorVerdicts, type WatchedModel } from './monitor.js';

export interface MonitorThreadData {
  readonly symbols: readonly string[];
  readonly width: number;
  readonly frameMs: number;
  readonly settings: MonitorSettings;
}

/** A member's answers, its model named by key (sent once before, as a 'model'). */
export interface MemberAnswers {
  readonly slot: string;
  readonly key: string;
  readonly shadow: boolean;
  readonly instruments: Int32Array;
  readonly values: Float32Array | undefined;
}

export type MonitorRequest =
  | { readonly type: 'model'; readonly model: WatchedModel }
  /** No frame names this model any more. */
  | { readonly type: 'forget'; readonly key: string }
  /** `values` and `mid` are transferred, and come back with the verdicts. */
  | { readonly type: 'frame'; readonly at: number; readonly values: Float64Array; readonly mid: Float64Array; readonly members: readonly MemberAnswers[] }
  | { readonly type: 'report'; readonly id: number }
  /** Answered once everything sent before it is. */
  | { readonly type: 'ping'; readonly id: number };

export type MonitorReply =
  | { readonly type: 'ready' }
  | { readonly type: 'observed'; readonly values: Float64Array; readonly mid: Float64Array; readonly verdicts: MonitorVerdicts }
  | { readonly type: 'report'; readonly id: number; readonly models: ModelDrift[] }
  | { readonly type: 'pong'; readonly id: number };

const port = parentPort!;
const { symbols, width, frameMs, settings } = workerData as MonitorThreadData;
const monitor = new ModelMonitor(symbols, width, frameMs, settings);
const models = new Map<string, WatchedModel>();
const reply = (message: MonitorReply, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer);

port.on('message', (request: MonitorRequest) => {
  switch (request.type) {
    case 'model':
      models.set(request.model.key, request.model);
      return;
    case 'forget':
      models.delete(request.key);
      return;
    case 'frame': {
      const { at, values, mid } = request;
      monitor.watch(
        { at, values, mid },
        request.members.map((m) => {
          const model = models.get(m.key);
          if (!model) throw new Error(`drift monitor: a frame names model ${m.key}, which was never sent`);
          return { ...m, model };
        }),
      );
      reply({ type: 'observed', values, mid, verdicts: monitor.verdicts() }, [values.buffer as ArrayBuffer, mid.buffer as ArrayBuffer]);
      return;
    }
    case 'report':
      reply({ type: 'report', id: request.id, models: monitor.report() });
      return;
    case 'ping':
      reply({ type: 'pong', id: request.id });
      return;
  }
});
reply({ type: 'ready' });
