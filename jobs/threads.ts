/**
 * The worker-thread pool of the CLI and of worker processes: like server/pool.ts, but each thread
 * loads only the models its tasks name (a model directory may hold many), and it starts from a
 * plain process too (the `tfjs-explain` bin registers tsx on its main thread only, so threads get
 * tsx through their execArgv).
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Piscina } from 'piscina';
import { piscinaExecutor } from '../server/pool.js';
import type { Executor } from '../server/tasks.js';

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
  return piscinaExecutor(pool, threads, opts.maxQueue ?? Infinity, `all ${threads} job threads are busy`);
}
