/**
 * Where tasks run: inline on this thread, or on a pool of worker threads (piscina) behind a bounded
 * queue, each thread with its own tfjs runtime and models (service/worker.ts). A full queue answers
 * 429 OVERLOADED with Retry-After; errors come back as the same ServiceError / ExplainerInputError.
 *
 * Stopping a task (the client went away, or its deadline passed): a task still in the queue is
 * removed from it; a running one is told through a flag in a SharedArrayBuffer that its guarded
 * model checks before every model call (service/guard.ts), so the thread is free again within one
 * model call and is never terminated for it. Threads recycle themselves after a task that left their
 * memory above a threshold or their backend broken (service/worker.ts); a task that was handed to a
 * thread as it exited is run again once.
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Piscina } from 'piscina';
import { fromPlainError, ServiceError } from './errors.js';
import { registrySource, runTask, type Task, type TaskResult } from './tasks.js';
import type { ServedModel } from '../models/served.js';
import type { WorkerData, WorkerReply, WorkerRequest } from './worker.js';

/** Default memory threshold of a worker thread, MB (WORKER_RECYCLE_MB). */
export const DEFAULT_RECYCLE_MB = 1024;

export interface RunOptions {
  /** Aborts a queued task, or stops a running one at its next model call (CANCELLED). */
  signal?: AbortSignal;
  /** Epoch ms: the hard deadline. A task not started by then leaves the queue; a running one stops at its next model call (DEADLINE_EXCEEDED). */
  deadline?: number;
}

/** Where a stopped task was: still queued, or running on a thread. */
export type StopStage = 'queued' | 'running';

export interface Executor {
  readonly kind: 'inline' | 'pool';
  run<T extends Task>(task: T, options?: RunOptions): Promise<TaskResult<T>>;
  stats(): { threads: number; queued: number; running: number; maxQueue: number };
  /** Called with the seconds each task waited for a thread (set by the metrics). */
  observeWait?: (kind: Task['kind'], seconds: number) => void;
  /** Called for each task stopped because its client went away (set by the metrics). */
  observeCancel?: (kind: Task['kind'], stage: StopStage) => void;
  /** Called when a worker thread recycled itself, with why (set by the metrics). */
  observeRecycle?: (reason: string) => void;
  close(): Promise<void>;
}

const isCancelled = (e: unknown) => e instanceof ServiceError && e.code === 'CANCELLED';

export function inlineExecutor(registry: { models: Map<string, ServedModel> }): Executor {
  let running = 0;
  const models = registrySource(registry);
  const executor: Executor = {
    kind: 'inline',
    async run<T extends Task>(task: T, options: RunOptions = {}) {
      running++;
      try {
        return (await runTask(models, task, { signal: options.signal, deadline: options.deadline })) as TaskResult<T>;
      } catch (e) {
        if (isCancelled(e) || options.signal?.aborted) executor.observeCancel?.(task.kind, 'running');
        throw e;
      } finally {
        running--;
      }
    },
    stats: () => ({ threads: 0, queued: 0, running, maxQueue: 0 }),
    close: async () => undefined,
  };
  return executor;
}

export interface PoolOptions {
  modelDir: string;
  backend?: string;
  threads: number;
  /** Tasks waiting for a thread at most (default: unbounded; callers then bound their own in-flight work). */
  maxQueue?: number;
  /** Load every model of modelDir on a thread's first task (the server), or each on first use (jobs, CLI). */
  preload?: boolean;
  /** The 429 message when the queue is full. */
  busyMessage?: string;
  /** A thread whose memory (its V8 heap plus its wasm heap) stays above this many MB after a task replaces itself (default 1024; 0: never). */
  recycleMb?: number;
}

/**
 * Threads need the TypeScript loader: under `tsx` or mocha's `--import tsx` they inherit it; from the
 * `tfjs-explain` bin (which registers tsx on its main thread only) they get it here.
 */
function execArgv(): string[] | undefined {
  if (process.execArgv.some((a) => a.includes('tsx'))) return undefined;
  const loader = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
  return [...process.execArgv, '--import', loader];
}

export function poolExecutor(opts: PoolOptions): Executor {
  const threads = Math.max(1, opts.threads);
  const maxQueue = opts.maxQueue ?? Infinity;
  const workerData: WorkerData = {
    modelDir: opts.modelDir,
    backend: opts.backend,
    preload: opts.preload ?? false,
    recycleMb: opts.recycleMb ?? DEFAULT_RECYCLE_MB,
  };
  const pool = new Piscina({
    filename: new URL('./worker.ts', import.meta.url).href,
    minThreads: threads,
    maxThreads: threads,
    ...(Number.isFinite(maxQueue) ? { maxQueue } : {}),
    // One task per thread at a time: an explanation uses its core fully.
    concurrentTasksPerWorker: 1,
    idleTimeout: 2 ** 31 - 1,
    execArgv: execArgv(),
    workerData,
  });
  const busy = opts.busyMessage ?? `all ${threads} worker threads are busy and ${maxQueue} tasks are queued; retry shortly`;
  let inflight = 0;

  /** One attempt: the task on a thread, stoppable while queued (removed) and while running (the flag). */
  const attempt = async (task: Task, options: RunOptions): Promise<WorkerReply> => {
    // [0]: stop (1 cancelled, 2 deadline), set here; [1]: started, set by the thread.
    const flag = new Int32Array(new SharedArrayBuffer(8));
    const dequeue = new AbortController();
    const started = () => Atomics.load(flag, 1) !== 0;
    // A queued task is taken out of the queue; a running one is never aborted through piscina (which
    // would terminate its thread): it sees the flag (cancelled) or its own deadline instead.
    const onAbort = () => {
      if (Atomics.load(flag, 0) !== 0) return;
      Atomics.store(flag, 0, 1);
      const stage: StopStage = started() ? 'running' : 'queued';
      if (stage === 'queued') dequeue.abort('cancelled');
      executor.observeCancel?.(task.kind, stage);
    };
    const onDeadline = () => {
      if (Atomics.load(flag, 0) !== 0 || started()) return;
      Atomics.store(flag, 0, 2);
      dequeue.abort('deadline');
    };
    if (options.signal?.aborted) onAbort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const timer = options.deadline !== undefined ? setTimeout(onDeadline, Math.max(0, options.deadline - Date.now())) : undefined;
    const request: WorkerRequest = { task, control: { flag, deadline: options.deadline } };
    try {
      return (await pool.run(request, { signal: dequeue.signal })) as WorkerReply;
    } catch (err) {
      if (dequeue.signal.aborted) {
        throw Atomics.load(flag, 0) === 2
          ? new ServiceError(
              'DEADLINE_EXCEEDED',
              'the deadline passed while the task waited for a worker thread; retry later, or allow more time (deadlineMs)',
            )
          : new ServiceError('CANCELLED', 'the task was cancelled before it started: the client went away');
      }
      throw err;
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
    }
  };

  const executor: Executor = {
    kind: 'pool',
    async run<T extends Task>(task: T, options: RunOptions = {}) {
      let out: WorkerReply;
      const submittedAt = Date.now();
      // Checked here, not only by piscina: it does not count tasks that carry an AbortSignal (as
      // every task here does) against maxQueue.
      if (pool.queueSize >= maxQueue) throw new ServiceError('OVERLOADED', busy, { retryAfterSeconds: 1 });
      inflight++;
      try {
        for (let tries = 1; ; tries++) {
          try {
            out = await attempt(task, options);
            break;
          } catch (err) {
            // A thread that exited (recycled, or its backend broke) as the task reached it: once more.
            if (tries < 2 && err instanceof Error && /worker exited/i.test(err.message)) continue;
            throw err;
          }
        }
      } catch (err) {
        if (err instanceof Error && /queue is at limit/i.test(err.message)) {
          throw new ServiceError('OVERLOADED', busy, { retryAfterSeconds: 1 });
        }
        throw err;
      } finally {
        inflight--;
      }
      executor.observeWait?.(task.kind, Math.max(0, out.startedAt - submittedAt) / 1000);
      if (out.recycled) executor.observeRecycle?.(out.recycled);
      if (!out.ok) throw fromPlainError(out.error);
      return out.value as TaskResult<T>;
    },
    stats: () => ({ threads, queued: pool.queueSize, running: Math.max(0, inflight - pool.queueSize), maxQueue }),
    close: () => pool.close(),
  };
  return executor;
}
