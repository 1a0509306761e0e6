/**
 * The drift monitor on a thread of its own, for a large universe. Watching
 * a model costs about 0.5 µs per instrument a frame, 2.5 ms at 5,000 (bench
 * drift): on the main thread that held the event loop 26 ms at p99 with the
 * predictor running flat out (bench models). Here the main thread only
 * copies the frame (its buffers are transferred, not cloned) and posts the
 * members' answers; the thread answers each frame with its verdicts, which
 * the predictor and the referee read from then on: a frame or so late,
 * which a bound judged over hundreds of frames does not notice. A small
 * universe keeps the monitor on the main thread (startMonitor): a thread's
 * 10 MB buys nothing there.
 *
 * A thread more than MAX_FRAMES_BEHIND frames behind skips frames rather
 * than queue them (counted in `skipped`). A thread that fails is reported
 * through `onFailure`: what it watched is gone, and the predictor's
 * component restarts.
 */
import type { Worker } from 'node:worker_threads';
import type { FeatureFrame } from '../market/features.js';
import { startThread } from '../threads.js';
import type { LiveErrorStats } from './drift.js';
import { copyFrame, ModelMonitor, type ChallengerScore, type FrameCopy, type FrameMonitor, type ModelDrift, type MonitorSettings, type WatchedMember } from './monitor.js';
import type { MonitorReply, MonitorRequest, MonitorThreadData } from './monitor-worker.js';

const NO_INSTRUMENTS = new Int32Array(0);

/** Frames posted and not yet answered before the next one is skipped. */
export const MAX_FRAMES_BEHIND = 4;

/** Instruments above which the daemon's monitor gets a thread of its own (predictor.settings.drift.threadAbove). */
export const DEFAULT_THREAD_ABOVE = 1_000;

/** The monitor as the predictor component uses it, on a thread of its own or on the caller's. */
export interface DaemonMonitor extends FrameMonitor {
  /** Frames not watched because the monitor was behind. */
  readonly skipped: number;
  /** Frames watched and answered: what the verdicts stand on. */
  readonly watched: number;
  /** Every watched model's drift, as of every frame observed before the call. */
  report(): Promise<ModelDrift[]>;
  /** Resolves once every frame observed and report asked before the call is answered. Never rejects. */
  caughtUp(): Promise<void>;
  close(): Promise<void>;
}

/** The monitor for `symbols`: on a thread of its own above `settings.threadAbove` instruments, else on the caller's. */
export async function startMonitor(symbols: readonly string[], width: number, frameMs: number, settings: MonitorSettings & { readonly threadAbove: number }, onFailure: (err: Error) => void): Promise<DaemonMonitor> {
  if (symbols.length > settings.threadAbove) return MonitorThread.start(symbols, width, frameMs, settings, onFailure);
  return new MonitorHere(new ModelMonitor(symbols, width, frameMs, settings));
}

/** A ModelMonitor on the caller's thread, answering as the thread does: at once, and never behind. */
class MonitorHere implements DaemonMonitor {
  readonly skipped = 0;
  watched = 0;

  constructor(private readonly monitor: ModelMonitor) {}

  copy(frame: FeatureFrame): FrameCopy {
    return this.monitor.copy(frame);
  }

  observe(copy: FrameCopy, members: readonly WatchedMember[]): void {
    this.monitor.observe(copy, members);
    this.watched++;
  }

  beyondBound(id: string): boolean {
    return this.monitor.beyondBound(id);
  }

  liveError(id: string): LiveErrorStats | undefined {
    return this.monitor.liveError(id);
  }

  challenger(slot: string): ChallengerScore | undefined {
    return this.monitor.challenger(slot);
  }

  challengers(): ChallengerScore[] {
    return this.monitor.challengers();
  }

  report(): Promise<ModelDrift[]> {
    return Promise.resolve(this.monitor.report());
  }

  caughtUp(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

export class MonitorThread implements DaemonMonitor {
  /** Frames not watched because the thread was behind. */
  skipped = 0;
  /** Frames the thread has watched and answered: what its verdicts stand on. */
  watched = 0;
  private live = new Map<string, LiveErrorStats>();
  private benched = new Set<string>();
  private scores = new Map<string, ChallengerScore>();
  private readonly free: FrameCopy[] = [];
  private behind = 0;
  /** Per model key sent to the thread: the frame it last appeared in. */
  private readonly sent = new Map<string, number>();
  private frames = 0;
  private nextRequest = 1;
  /** Reports and pings asked for, by request id. */
  private readonly waiting = new Map<number, { type: 'report' | 'ping'; resolve(models: ModelDrift[]): void; reject(err: Error): void }>();
  private closing = false;

  private constructor(
    private readonly worker: Worker,
    private readonly width: number,
    private readonly settings: MonitorSettings,
  ) {}

  /** Starts the thread; resolves once it is ready, or rejects with why not. `onFailure` is called once if it fails after. */
  static async start(symbols: readonly string[], width: number, frameMs: number, settings: MonitorSettings, onFailure: (err: Error) => void): Promise<MonitorThread> {
    const worker = startThread(import.meta.url, 'monitor-worker', { workerData: { symbols, width, frameMs, settings } satisfies MonitorThreadData });
    const thread = new MonitorThread(worker, width, settings);
    let ready = false;
    await new Promise<void>((resolve, reject) => {
      const failed = (err: Error) => {
        if (thread.closing) return;
        thread.fail(err);
        if (ready) onFailure(err);
        else reject(err);
      };
      worker.on('error', (err) => failed(new Error(`the drift monitor's thread failed: ${err.message}`)));
      worker.on('exit', (code) => failed(new Error(`the drift monitor's thread exited with code ${code}`)));
      worker.on('messageerror', (err) => failed(new Error(`the drift monitor's thread sent a message that could not be read: ${err.message}`)));
      worker.on('message', (reply: MonitorReply) => {
        if (reply.type !== 'ready') return thread.received(reply);
        ready = true;
        resolve();
      });
    });
    return thread;
  }

  copy(frame: FeatureFrame): FrameCopy {
    return copyFrame(frame, this.width, this.free.pop());
  }

  observe(copy: FrameCopy, members: readonly WatchedMember[]): void {
    if (this.closing) return;
    if (this.behind >= MAX_FRAMES_BEHIND) {
      this.skipped++;
      this.free.push(copy);
      return;
    }
    this.frames++;
    for (const { model } of members) {
      if (!this.sent.has(model.key)) {
        const { input, reference, horizonMs, metrics } = model.manifest;
        this.post({ type: 'model', model: { id: model.id, key: model.key, columns: model.columns, manifest: { input, reference, horizonMs, metrics } } });
      }
      this.sent.set(model.key, this.frames);
    }
    // A model no frame named for the monitor's window (swapped out, shadow ended) is forgotten there too.
    for (const [key, last] of this.sent) {
      if (this.frames - last <= this.settings.windowFrames) continue;
      this.sent.delete(key);
      this.post({ type: 'forget', key });
    }
    // A member without answers sends no instruments: a worker's failed run may have taken them over.
    const answers = members.map((m) => ({ slot: m.slot, key: m.model.key, shadow: m.shadow, instruments: m.values ? m.instruments : NO_INSTRUMENTS, values: m.values }));
    const { at, values, mid } = copy;
    this.post({ type: 'frame', at, values, mid, members: answers }, [values.buffer as ArrayBuffer, mid.buffer as ArrayBuffer]);
    this.behind++;
  }

  beyondBound(id: string): boolean {
    return this.benched.has(id);
  }

  liveError(id: string): LiveErrorStats | undefined {
    return this.live.get(id);
  }

  challenger(slot: string): ChallengerScore | undefined {
    return this.scores.get(slot);
  }

  challengers(): ChallengerScore[] {
    return [...this.scores.values()];
  }

  /** Every watched model's drift, as of every frame observed before the call. */
  report(): Promise<ModelDrift[]> {
    return this.ask('report');
  }

  /**
   * Resolves once every frame observed and report asked before the call is
   * answered (and the reports' callbacks have run); at once when none is
   * out, or the thread is gone. Never rejects.
   */
  async caughtUp(): Promise<void> {
    if (this.closing || (this.behind === 0 && this.waiting.size === 0)) return;
    await this.ask('ping');
  }

  private ask(type: 'report' | 'ping'): Promise<ModelDrift[]> {
    if (this.closing) return Promise.reject(new Error("the drift monitor's thread has stopped"));
    const id = this.nextRequest++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { type, resolve, reject });
      this.post({ type, id });
    });
  }

  /** Stops the thread; reports still out resolve empty. */
  async close(): Promise<void> {
    this.closing = true;
    for (const pending of this.waiting.values()) pending.resolve([]);
    this.waiting.clear();
    await this.worker.terminate();
  }

  private post(request: MonitorRequest, transfer: ArrayBuffer[] = []): void {
    this.worker.postMessage(request, transfer);
  }

  private received(reply: Exclude<MonitorReply, { type: 'ready' }>): void {
    if (reply.type === 'observed') {
      this.behind--;
      this.watched++;
      const { values, mid, verdicts } = reply;
      this.free.push({ at: 0, values, mid });
      this.live = new Map(verdicts.live);
      this.benched = new Set(verdicts.benched);
      this.scores = new Map(verdicts.challengers.map((c) => [c.slot, c]));
    } else {
      this.waiting.get(reply.id)?.resolve(reply.type === 'report' ? reply.models : []);
      this.waiting.delete(reply.id);
    }
  }

  private fail(err: Error): void {
    this.closing = true;
    for (const pending of this.waiting.values()) {
      if (pending.type === 'ping') pending.resolve([]);
      else pending.reject(err);
    }
    this.waiting.clear();
  }
}
