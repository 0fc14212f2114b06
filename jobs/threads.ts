/**
 * The worker-thread pool of the CLI and of worker processes: like server/pool.ts, but each thread
 * loads only the models its tasks name (a model directory may hold many), and it starts from a
 * plain process too (the `tfjs-explain` bin registers tsx on its main thread only, so threads get
 * tsx through their execArgv).
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Piscina } from 'piscina';
import { ExplainerInputError } from '../explainers/types.js';
import { ApiError, type ErrorCode } from '../server/errors.js';
import type { Executor, Task, TaskResult } from '../server/tasks.js';

export interface ThreadPoolOptions {
  modelDir: string;
  backend?: string;
  threads: number;
  /** Tasks waiting for a thread at most (default: unbounded; callers bound their own in-flight work). */
  maxQueue?: number;
}

function execArgv(): string[] | undefined {
  if (process.execArgv.some((a) => a.includes('tsx'))) return undefined; // inherited
  const loader = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
  return [...process.execArgv, '--import', loader];
}

export function threadExecutor(opts: ThreadPoolOptions): Executor {
  const threads = Math.max(1, opts.threads);
  const pool = new Piscina({
    filename: new URL('./thread.ts', import.meta.url).href,
    minThreads: threads,
    maxThreads: threads,
    ...(opts.maxQueue !== undefined ? { maxQueue: opts.maxQueue } : {}),
    concurrentTasksPerWorker: 1,
    idleTimeout: 2 ** 31 - 1,
    execArgv: execArgv(),
    workerData: { modelDir: opts.modelDir, backend: opts.backend },
  });
  let inflight = 0;
  const executor: Executor = {
    kind: 'pool',
    async run<T extends Task>(task: T) {
      type Out = { startedAt: number } & (
        { ok: true; value: unknown } | { ok: false; error: { code: string; message: string; details?: unknown } }
      );
      const submittedAt = Date.now();
      inflight++;
      let out: Out;
      try {
        out = await pool.run(task);
      } catch (err) {
        if (err instanceof Error && /queue is at limit/i.test(err.message)) {
          throw new ApiError('OVERLOADED', `all ${threads} job threads are busy`, { retryAfterSeconds: 1 });
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
      maxQueue: opts.maxQueue ?? Infinity,
    }),
    close: () => pool.close(),
  };
  return executor;
}
