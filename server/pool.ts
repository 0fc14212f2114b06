/**
 * Explanations never block the event loop: they run on a pool of worker threads (piscina), each with
 * its own tfjs runtime and models, behind a bounded queue. A full queue answers 429 with Retry-After.
 */
import { Piscina } from 'piscina';
import { ApiError, type ErrorCode } from './errors.js';
import type { Executor, Task, TaskResult } from './tasks.js';
import { ExplainerInputError } from '../explainers/types.js';

export interface PoolOptions {
  modelDir: string;
  backend?: string;
  threads: number;
  maxQueue: number;
}

export function poolExecutor(opts: PoolOptions): Executor {
  const pool = new Piscina({
    filename: new URL('./worker.ts', import.meta.url).href,
    minThreads: opts.threads,
    maxThreads: opts.threads,
    maxQueue: opts.maxQueue,
    // One task per thread at a time: an explanation uses its core fully.
    concurrentTasksPerWorker: 1,
    idleTimeout: 2 ** 31 - 1,
    workerData: { modelDir: opts.modelDir, backend: opts.backend },
  });
  return piscinaExecutor(
    pool,
    opts.threads,
    opts.maxQueue,
    `all ${opts.threads} explanation workers are busy and ${opts.maxQueue} requests are queued; retry shortly`,
  );
}

/**
 * An Executor over a piscina pool whose worker returns {ok, value} or {ok: false, error} (see
 * server/worker.ts): errors come back as the same ApiError / ExplainerInputError, a full queue as
 * 429 OVERLOADED, and each task's wait for a thread is reported to the metrics.
 */
export function piscinaExecutor(pool: Piscina, threads: number, maxQueue: number, busyMessage: string): Executor {
  let inflight = 0;
  const executor: Executor = {
    kind: 'pool',
    async run<T extends Task>(task: T) {
      type Out = { startedAt: number } & (
        { ok: true; value: unknown } | { ok: false; error: { code: string; message: string; details?: unknown } }
      );
      let out: Out;
      const submittedAt = Date.now();
      inflight++;
      try {
        out = await pool.run(task);
      } catch (err) {
        if (err instanceof Error && /queue is at limit/i.test(err.message)) {
          throw new ApiError('OVERLOADED', busyMessage, { retryAfterSeconds: 1 });
        }
        throw err;
      } finally {
        inflight--;
      }
      executor.observeWait?.(task.kind, Math.max(0, out.startedAt - submittedAt) / 1000);
      if (!out.ok) {
        const { code, message, details } = out.error;
        if (ApiError.isCode(code)) throw new ApiError(code as ErrorCode, message, details);
        throw new ExplainerInputError(code, message, details);
      }
      return out.value as TaskResult<T>;
    },
    stats: () => ({
      threads,
      queued: pool.queueSize,
      running: Math.max(0, inflight - pool.queueSize),
      maxQueue,
    }),
    close: () => pool.close(),
  };
  return executor;
}
