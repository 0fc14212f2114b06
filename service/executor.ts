/**
 * Where tasks run: inline on this thread, or on a pool of worker threads (piscina) behind a bounded
 * queue, each thread with its own tfjs runtime and models (service/worker.ts). A full queue answers
 * 429 OVERLOADED with Retry-After; errors come back as the same ServiceError / ExplainerInputError.
 *
 * Stopping a task (the client went away, or its deadline passed): a task still in the queue is
 * removed from it; a running one is told through a flag in a SharedArrayBuffer that its guarded
 * model checks before every model call (service/guard.ts), so the thread is free again within one
 * model call and is never terminated for it.
 *
 * Replacing a thread, one way for every reason: the thread asks (service/worker.ts: after a task that
 * left its memory above a threshold, in a notice; when its tfjs backend failed for good, a wasm abort,
 * in its reply), the executor terminates it by id and piscina starts a fresh one. The failing request
 * answers 503 BACKEND_FAILURE; a task that reached the thread after it asked (handed back unrun) or as
 * it was ending runs again on another thread, at most twice more.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Piscina } from 'piscina';
import { isFatalBackendError } from '../models/backendHealth.js';
import { fromPlainError, ServiceError } from './errors.js';
import { registrySource, runTask, type Task, type TaskResult } from './tasks.js';
import type { ServedModel } from '../models/served.js';
import type { RecycleNotice, RecycleReason, WorkerData, WorkerReply, WorkerRequest } from './worker.js';

/** How long after the hard deadline a running task's caller is answered if the thread has not (ms). */
const LATE_MS = 20;

/** Default nice increment of worker threads (WORKER_NICE). */
export const DEFAULT_WORKER_NICE = 10;

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
  /** `recycled`: worker threads replaced (memory, or a failed tfjs backend; pool only). */
  stats(): { threads: number; queued: number; running: number; maxQueue: number; recycled?: number };
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
        // This thread's backend is gone for good: /readyz reports it (models/backendHealth.ts).
        if (isFatalBackendError(e)) throw backendFailureError(e instanceof Error ? e.message : String(e), false);
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

/** 503 BACKEND_FAILURE: the backend failed on this request (a wasm abort); never a stack trace or path. */
function backendFailureError(message: string, replaced: boolean): ServiceError {
  const cause = /\(([^()]*)\)/.exec(message)?.[1]?.slice(0, 200) ?? 'a fatal backend error';
  return new ServiceError(
    'BACKEND_FAILURE',
    `the model runtime failed while computing this request (${cause})` +
      (replaced
        ? '; its worker thread has been replaced, so a retry runs on a fresh one. If the same request fails again it is too large for the backend: send fewer or smaller instances'
        : '; this process can no longer run models and reports not ready on /readyz until it is restarted'),
    { retryAfterSeconds: 1 },
  );
}

/** Piscina's rejection of the tasks of a thread that exited (or was terminated). */
const WORKER_EXITED = /worker exited|terminat/i;

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
  /** A thread whose memory (its V8 heap plus its wasm heap) stays above this many MB after a task is replaced (default 1024; 0: never). */
  recycleMb?: number;
  /** Nice increment of the threads (Linux; default 10): the main thread answers first under load. 0: same priority. */
  nice?: number;
}

/**
 * The worker entry next to this file: worker.js in the compiled output (dist/, `npm start`), which
 * runs on plain node; worker.ts from the sources (tsx, mocha, `npm run dev`).
 */
const WORKER_URL = new URL(`./worker${path.extname(fileURLToPath(import.meta.url))}`, import.meta.url);

/**
 * Threads running the TypeScript sources need the loader: under `tsx` or mocha's `--import tsx` they
 * inherit it; from the `tfjs-explain` bin (which registers tsx on its main thread only) they get it
 * here. Compiled threads need none.
 */
function execArgv(): string[] | undefined {
  if (WORKER_URL.pathname.endsWith('.js')) return undefined;
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
    nice: opts.nice ?? DEFAULT_WORKER_NICE,
  };
  const pool = new Piscina({
    filename: WORKER_URL.href,
    minThreads: threads,
    maxThreads: threads,
    // One task per thread at a time: an explanation uses its core fully.
    concurrentTasksPerWorker: 1,
    // piscina's default ('sync') parks an idle thread in Atomics.wait, which stops its event loop:
    // no garbage collection, no work after a reply (service/worker.ts collects then), until the next task.
    atomics: 'disabled',
    idleTimeout: 2 ** 31 - 1,
    execArgv: execArgv(),
    workerData,
  });
  let recycled = 0;
  const ending = new WeakSet<object>();
  /** Ends thread `id`, which asked to be replaced (once per thread); piscina starts another (minThreads). */
  const replace = (id: number, why: RecycleReason) => {
    const worker = pool.threads.find((w) => w.threadId === id);
    if (!worker || ending.has(worker)) return;
    ending.add(worker);
    recycled++;
    executor.observeRecycle?.(why);
    void worker.terminate();
  };
  pool.on('message', (m: unknown) => {
    const notice = m as Partial<RecycleNotice> | null;
    if (typeof notice?.recycled === 'string' && typeof notice.threadId === 'number') replace(notice.threadId, notice.recycled);
  });
  const busy = opts.busyMessage ?? `all ${threads} worker threads are busy and ${maxQueue} tasks are queued; retry shortly`;

  // The queue is ours, not piscina's: a task goes to piscina only when a thread is free for it, so a
  // task that waits can always be dropped from the queue (piscina's abort of a task it has already
  // handed to a thread terminates that thread), and a task on a thread is stopped by its flag.
  const waiting: { go: () => void }[] = [];
  let active = 0;
  const pump = () => {
    while (active < threads && waiting.length) {
      active++;
      waiting.shift()!.go();
    }
  };

  /** One attempt: the task on a thread, stoppable while queued (removed) and while running (the flag). */
  const attempt = async (task: Task, options: RunOptions): Promise<WorkerReply> => {
    // [0]: 1 once the task must stop (cancelled, or answered late), set here; [1]: started, set by the thread.
    const flag = new Int32Array(new SharedArrayBuffer(8));
    let onThread = false;
    let leaveQueue: (e: Error) => void = () => undefined;
    const entry = { go: () => undefined as void };
    const queued = new Promise<void>((resolve, reject) => {
      entry.go = () => {
        onThread = true;
        resolve();
      };
      leaveQueue = (e) => {
        const i = waiting.indexOf(entry);
        if (i >= 0) waiting.splice(i, 1);
        reject(e);
      };
    });
    queued.catch(() => undefined);
    let answerLate: (e: Error) => void = () => undefined;
    const lateAnswer = new Promise<never>((_, reject) => (answerLate = reject));
    lateAnswer.catch(() => undefined);
    let late: NodeJS.Timeout | undefined;

    const onAbort = () => {
      if (Atomics.load(flag, 0) !== 0) return;
      Atomics.store(flag, 0, 1);
      executor.observeCancel?.(task.kind, onThread ? 'running' : 'queued');
      if (!onThread) leaveQueue(new ServiceError('CANCELLED', 'the task was cancelled before it started: the client went away'));
    };
    // At the hard deadline: a queued task leaves the queue. A running one stops at its next model
    // call (its guard checks the same deadline); if it has not answered LATE_MS later (a long stretch
    // without model calls), the caller is answered DEADLINE_EXCEEDED anyway and the thread is told
    // to stop at its next check.
    const onDeadline = () => {
      if (Atomics.load(flag, 0) !== 0) return;
      if (!onThread) {
        leaveQueue(
          new ServiceError(
            'DEADLINE_EXCEEDED',
            'the deadline passed while the task waited for a worker thread; retry later, or allow more time (deadlineMs)',
          ),
        );
        return;
      }
      late = setTimeout(() => {
        Atomics.store(flag, 0, 1);
        answerLate(
          new ServiceError(
            'DEADLINE_EXCEEDED',
            'the computation was stopped at its deadline before an answer was ready; allow more time (deadlineMs), ask for less work, or use POST /v1/jobs',
          ),
        );
      }, LATE_MS);
    };
    if (options.signal?.aborted) onAbort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const timer = options.deadline !== undefined ? setTimeout(onDeadline, Math.max(0, options.deadline - Date.now())) : undefined;
    try {
      if (Atomics.load(flag, 0) === 0) {
        waiting.push(entry);
        pump();
      }
      await queued;
      const request: WorkerRequest = { task, control: { flag, deadline: options.deadline } };
      const running = (pool.run(request) as Promise<WorkerReply>).finally(() => {
        active--;
        pump();
      });
      running.catch(() => undefined);
      return await Promise.race([running, lateAnswer]);
    } finally {
      clearTimeout(timer);
      clearTimeout(late);
      options.signal?.removeEventListener('abort', onAbort);
    }
  };

  const executor: Executor = {
    kind: 'pool',
    async run<T extends Task>(task: T, options: RunOptions = {}) {
      if (waiting.length >= maxQueue) throw new ServiceError('OVERLOADED', busy, { retryAfterSeconds: 1 });
      const submittedAt = Date.now();
      // A task handed to a thread as it exited (recycled), or whose backend had already failed, did
      // nothing wrong: it runs again, on another thread, twice more at most.
      for (let tries = 1; ; tries++) {
        let out: WorkerReply;
        try {
          out = await attempt(task, options);
        } catch (err) {
          if (err instanceof Error && WORKER_EXITED.test(err.message) && !options.signal?.aborted) {
            if (tries < 3) continue;
            throw backendFailureError(err.message, true);
          }
          throw err;
        }
        if (!out.ok && 'recycle' in out) {
          replace(out.threadId, out.reason);
          if (out.before && tries < 3) continue;
          if (out.reason === 'backend') throw backendFailureError(out.message, true);
          throw new ServiceError('OVERLOADED', 'worker threads were being replaced as this task reached them; retry shortly', { retryAfterSeconds: 1 });
        }
        executor.observeWait?.(task.kind, Math.max(0, out.startedAt - submittedAt) / 1000);
        if (!out.ok) throw fromPlainError(out.error);
        return out.value as TaskResult<T>;
      }
    },
    stats: () => ({ threads, queued: waiting.length, running: active, maxQueue, recycled }),
    close: () => pool.close(),
  };
  return executor;
}
