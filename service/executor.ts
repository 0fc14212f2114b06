/**
 * Where tasks run: inline on this thread, or on a pool of worker threads (piscina) behind a bounded
 * queue, each thread with its own tfjs runtime and models (service/worker.ts). A full queue answers
 * 429 OVERLOADED with Retry-After; errors come back as the same ServiceError / ExplainerInputError.
 * A thread whose tfjs backend failed for good (a wasm abort) is terminated and replaced; its request
 * answers 503 BACKEND_FAILURE, and tasks that merely landed on it run again on another thread.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Piscina } from 'piscina';
import { isFatalBackendError } from '../models/backendHealth.js';
import { fromPlainError, ServiceError } from './errors.js';
import { registrySource, runTask, type Task, type TaskResult } from './tasks.js';
import type { ServedModel } from '../models/served.js';
import type { WorkerData, WorkerReply } from './worker.js';

export interface RunOptions {
  /** Aborts a queued task, or stops a running one (inline: the explainer's signal; pool: the thread). */
  signal?: AbortSignal;
}

export interface Executor {
  readonly kind: 'inline' | 'pool';
  run<T extends Task>(task: T, options?: RunOptions): Promise<TaskResult<T>>;
  /** `recycled`: worker threads replaced after their tfjs backend failed (pool only). */
  stats(): { threads: number; queued: number; running: number; maxQueue: number; recycled?: number };
  /** Called with the seconds each task waited for a thread (set by the metrics). */
  observeWait?: (kind: Task['kind'], seconds: number) => void;
  close(): Promise<void>;
}

export function inlineExecutor(registry: { models: Map<string, ServedModel> }): Executor {
  let running = 0;
  const models = registrySource(registry);
  return {
    kind: 'inline',
    async run<T extends Task>(task: T, options: RunOptions = {}) {
      running++;
      try {
        return (await runTask(models, task, options.signal)) as TaskResult<T>;
      } catch (e) {
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
  const workerData: WorkerData = { modelDir: opts.modelDir, backend: opts.backend, preload: opts.preload ?? false };
  const pool = new Piscina({
    filename: WORKER_URL.href,
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
  let recycled = 0;
  const ending = new WeakSet<object>();
  /** Ends a thread whose backend failed; piscina replaces a thread that exits (minThreads). */
  const recycle = (id: number) => {
    const worker = pool.threads.find((w) => w.threadId === id);
    if (!worker || ending.has(worker)) return;
    ending.add(worker);
    recycled++;
    void worker.terminate();
  };
  const executor: Executor = {
    kind: 'pool',
    async run<T extends Task>(task: T, options: RunOptions = {}) {
      const submittedAt = Date.now();
      // A task handed to a thread whose backend had already failed (or that was being replaced)
      // did nothing wrong: it runs again, on another thread, a few times at most.
      for (let attempt = 0; ; attempt++) {
        let out: WorkerReply;
        inflight++;
        try {
          out = await pool.run(task, options.signal ? { signal: options.signal } : {});
        } catch (err) {
          if (err instanceof Error && /queue is at limit/i.test(err.message)) {
            throw new ServiceError('OVERLOADED', busy, { retryAfterSeconds: 1 });
          }
          if (err instanceof Error && WORKER_EXITED.test(err.message) && recycled > 0 && !options.signal?.aborted) {
            if (attempt < 2) continue;
            throw backendFailureError(err.message, true);
          }
          throw err;
        } finally {
          inflight--;
        }
        if (!out.ok && 'recycle' in out) {
          recycle(out.threadId);
          if (out.before && attempt < 2) continue;
          throw backendFailureError(out.message, true);
        }
        executor.observeWait?.(task.kind, Math.max(0, out.startedAt - submittedAt) / 1000);
        if (!out.ok) throw fromPlainError(out.error);
        return out.value as TaskResult<T>;
      }
    },
    stats: () => ({ threads, queued: pool.queueSize, running: Math.max(0, inflight - pool.queueSize), maxQueue, recycled }),
    close: () => pool.close(),
  };
  return executor;
}
