/**
 * `npm run worker`: a process that explains job chunks from the BullMQ queue on REDIS_URL, with the
 * models of MODEL_DIR (each loaded on first use, on WORKER_THREADS worker threads; default 1). Run
 * as many as you like, anywhere the models are. The explanation runs on a thread, so this process's
 * event loop stays free to renew BullMQ's chunk locks: a chunk is re-queued only when its worker
 * is really gone (killed, or its machine lost), after JOBS_LOCK_MS.
 *
 * Environment: REDIS_URL (required), MODEL_DIR, TFJS_BACKEND, WORKER_THREADS, JOBS_PREFIX,
 * JOBS_QUEUE, JOBS_TTL_SECONDS, JOBS_ATTEMPTS, JOBS_LOCK_MS (default 30000), JOBS_STALLED_MS
 * (default 30000), LOG_LEVEL.
 */
import { Worker, type Job } from 'bullmq';
import { pino, type Logger } from 'pino';
import path from 'node:path';
import { SAMPLE_MODELS } from '../service/config.js';
import { poolExecutor, type Executor } from '../service/executor.js';
import { executorExplain, explainChunk } from './engine.js';
import { COMMIT_CHUNK, connect, FINISH_JOB, keys, redisSettings, START_CHUNK, type ChunkData, type RedisSettings } from './redis.js';
import { isErrorRecord, isExplainedRecord, MAX_STATUS_ERRORS, type Item, type JobSpec } from './types.js';

export interface WorkerOptions extends RedisSettings {
  modelDir: string;
  backend?: string;
  threads: number;
  lockMs: number;
  stalledMs: number;
  logger: Logger;
  /** Use this executor instead of a thread pool (tests). */
  executor?: Executor;
}

export function workerSettings(env: NodeJS.ProcessEnv = process.env): Omit<WorkerOptions, 'logger'> {
  const int = (name: string, dflt: number) => {
    const v = Number(env[name]);
    return env[name] && Number.isFinite(v) && v > 0 ? Math.floor(v) : dflt;
  };
  return {
    ...redisSettings(env),
    modelDir: path.resolve(env.MODEL_DIR || SAMPLE_MODELS),
    backend: env.TFJS_BACKEND || undefined,
    threads: int('WORKER_THREADS', 1),
    lockMs: int('JOBS_LOCK_MS', 30_000),
    stalledMs: int('JOBS_STALLED_MS', 30_000),
  };
}

export interface RunningWorker {
  worker: Worker<ChunkData>;
  close(): Promise<void>;
}

export async function startWorker(o: WorkerOptions): Promise<RunningWorker> {
  const redis = connect(o.url);
  const executor =
    o.executor ??
    poolExecutor({ modelDir: o.modelDir, backend: o.backend, threads: o.threads, busyMessage: `all ${o.threads} job threads are busy` });
  const specs = new Map<string, JobSpec>();
  const specOf = async (id: string): Promise<JobSpec | undefined> => {
    let s = specs.get(id);
    if (!s) {
      const raw = await redis.hget(keys(o.prefix, id).job, 'spec');
      if (!raw) return undefined;
      s = JSON.parse(raw) as JobSpec;
      if (specs.size > 100) specs.clear();
      specs.set(id, s);
    }
    return s;
  };

  const processChunk = async (job: Job<ChunkData>): Promise<string> => {
    const { job: id, chunk, items } = job.data;
    const k = keys(o.prefix, id);
    const before = (await redis.eval(START_CHUNK, 1, k.job, new Date().toISOString())) as string | null;
    if (before === null) return 'job gone';
    if (before === 'cancelled' || before === 'failed' || before === 'succeeded') return `job ${before}`;
    const spec = await specOf(id);
    if (!spec) return 'job gone';
    const parsed: Item[] = items.map((it) => ({
      index: it.index,
      ...(it.line !== undefined ? { line: it.line } : {}),
      ...(it.row ? { row: Float32Array.from(it.row) } : {}),
      ...(it.error ? { error: it.error } : {}),
      ...(it.label !== undefined ? { label: it.label } : {}),
      ...(it.tokens ? { tokens: it.tokens } : {}),
    }));
    const records = await explainChunk(parsed, spec.nFeatures, executorExplain(executor, spec));
    const payload = records.map((r) => JSON.stringify(r)).join('\n') + '\n';
    const errors = records
      .filter(isErrorRecord)
      .slice(0, MAX_STATUS_ERRORS)
      .map((r) =>
        JSON.stringify({ index: r.index, ...(r.line !== undefined ? { line: r.line } : {}), code: r.error.code, message: r.error.message }),
      );
    const failed = records.filter(isErrorRecord).length;
    const unconverged = records.filter((r) => isExplainedRecord(r) && !r.converged).length;
    const committed = await redis.eval(
      COMMIT_CHUNK,
      4,
      k.job,
      k.done,
      k.results,
      k.errors,
      String(chunk),
      payload,
      String(records.length),
      String(failed),
      new Date().toISOString(),
      String(o.ttlSeconds),
      String(MAX_STATUS_ERRORS),
      String(unconverged),
      ...errors,
    );
    return committed === 1 ? 'committed' : committed === 0 ? 'already committed' : 'job no longer running';
  };

  const workerConnection = connect(o.url);
  const worker = new Worker<ChunkData>(o.queueName, processChunk, {
    connection: workerConnection,
    concurrency: Math.max(1, o.threads),
    lockDuration: o.lockMs,
    stalledInterval: o.stalledMs,
    // A chunk whose worker died is re-queued however often that happens; only errors count as attempts.
    maxStalledCount: 1000,
  });
  worker.on('completed', (job, result) => o.logger.debug({ job: job.data.job, chunk: job.data.chunk, result }, 'chunk'));
  worker.on('failed', async (job, err) => {
    if (!job) return;
    const final = job.attemptsMade >= (job.opts.attempts ?? 1);
    o.logger.warn(
      { job: job.data.job, chunk: job.data.chunk, attempt: job.attemptsMade, err: err.message },
      final ? 'chunk failed for good' : 'chunk failed; retrying',
    );
    if (!final) return;
    const k = keys(o.prefix, job.data.job);
    const error = JSON.stringify({
      code: 'INTERNAL',
      message: `chunk ${job.data.chunk} failed ${job.attemptsMade} time(s): ${err.message}`,
    });
    await redis
      .eval(FINISH_JOB, 4, k.job, k.done, k.results, k.errors, 'failed', new Date().toISOString(), String(o.ttlSeconds), error)
      .catch(() => undefined);
  });
  worker.on('error', (err) => o.logger.error({ err: err.message }, 'worker error'));
  await worker.waitUntilReady();
  o.logger.info({ queue: o.queueName, modelDir: o.modelDir, threads: o.threads }, 'worker ready');
  return {
    worker,
    async close() {
      await worker.close();
      if (!o.executor) await executor.close();
      workerConnection.disconnect();
      redis.disconnect();
    },
  };
}

if (/jobs[\\/]worker\.[jt]s$/.test(process.argv[1] ?? '')) {
  const logger = pino({ level: process.env.LOG_LEVEL || 'info' });
  if (!process.env.REDIS_URL) {
    logger.error('REDIS_URL is not set: a worker takes its chunks from Redis (e.g. REDIS_URL=redis://localhost:6379)');
    process.exit(2);
  }
  const w = await startWorker({ ...workerSettings(), logger });
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) process.exit(1);
    stopping = true;
    logger.info({ signal }, 'stopping: finishing the chunks in progress');
    await w.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}
