/**
 * Where tasks run: inline on this thread, or on a pool of worker threads (piscina) behind a bounded
 * queue, each thread with its own tfjs runtime and models (service/worker.ts). A full queue answers
 * 429 OVERLOADED with Retry-After; errors come back as the same ServiceError / ExplainerInputError.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Piscina } from 'piscina';
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
  stats(): { threads: number; queued: number; running: number; maxQueue: number };
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
      } finally {
        running--;
      }
    },
    stats: () => ({ threads: 0, queued: 0, running, maxQueue: 0 }),
    close: async () => undefined,
  };
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
  const executor: Executor = {
    kind: 'pool',
    async run<T extends Task>(task: T, options: RunOptions = {}) {
      let out: WorkerReply;
      const submittedAt = Date.now();
      inflight++;
      try {
        out = await pool.run(task, options.signal ? { signal: options.signal } : {});
      } catch (err) {
        if (err instanceof Error && /queue is at limit/i.test(err.message)) {
          throw new ServiceError('OVERLOADED', busy, { retryAfterSeconds: 1 });
        }
        throw err;
      } finally {
        inflight--;
      }
      executor.observeWait?.(task.kind, Math.max(0, out.startedAt - submittedAt) / 1000);
      if (!out.ok) throw fromPlainError(out.error);
      return out.value as TaskResult<T>;
    },
    stats: () => ({ threads, queued: pool.queueSize, running: Math.max(0, inflight - pool.queueSize), maxQueue }),
    close: () => pool.close(),
  };
  return executor;
}
