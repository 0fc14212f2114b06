/**
 * `npm run worker`: a process that explains job chunks from the BullMQ queue on REDIS_URL, with the
 * models of MODEL_DIR (each loaded on first use, on WORKER_THREADS worker threads; default 1). Run
 * as many as you like, anywhere the models are. The explanation runs on a thread, so this process's
 * event loop stays free to renew BullMQ's chunk locks: a chunk is re-queued only when its worker
 * is really gone (killed, or its machine lost), after JOBS_LOCK_MS.
 *
 * Training jobs (amortised SHAP) run here too, as one long task on a thread: the explainer is built
 * under this process's DATA_DIR (checkpoints included, so a worker restarted on the same machine
 * resumes) and its files are then published to Redis, from where API processes and other workers
 * copy them into their own DATA_DIR before serving it.
 *
 * Environment: REDIS_URL (required), MODEL_DIR, DATA_DIR, TFJS_BACKEND, WORKER_THREADS, JOBS_PREFIX,
 * JOBS_QUEUE, JOBS_TTL_SECONDS, JOBS_ATTEMPTS, JOBS_LOCK_MS (default 30000), JOBS_STALLED_MS
 * (default 30000), LOG_LEVEL.
 */
import { Worker, type Job } from 'bullmq';
import { pino, type Logger } from 'pino';
import path from 'node:path';
import { existsSync, readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import { defaultDataDir, SAMPLE_MODELS } from '../service/config.js';
import { poolExecutor, type Executor } from '../service/executor.js';
import { amortisedDir } from '../service/amortised/store.js';
import { readTrainingProgress } from '../service/amortised/task.js';
import { executorExplain, explainChunk } from './engine.js';
import {
  artefactsKey,
  COMMIT_CHUNK,
  connect,
  FINISH_JOB,
  keys,
  redisSettings,
  START_CHUNK,
  TRAINING_JOB_NAME,
  type ChunkData,
  type RedisSettings,
} from './redis.js';
import { readArtefacts, trainingDir, trainingTask, writeArtefacts } from './training.js';
import { isErrorRecord, isExplainedRecord, itemFromJson, MAX_STATUS_ERRORS, type Item, type JobSpec } from './types.js';

export interface WorkerOptions extends RedisSettings {
  modelDir: string;
  /** Where training jobs build their explainers and explanation jobs find them (DATA_DIR). */
  dataDir: string;
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
    dataDir: path.resolve(env.DATA_DIR || defaultDataDir(env)),
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
    let spec = await specOf(id);
    if (!spec) return 'job gone';
    if (job.name === TRAINING_JOB_NAME) return processTraining(id, spec);
    if (spec.method === 'amortised-shap') spec = await withLocalExplainer(redis, o, spec);
    const parsed: Item[] = items.map(itemFromJson);
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

  /** A training job: the build on a thread, its progress copied to Redis, a cancel in Redis aborting it. */
  const processTraining = async (id: string, spec: JobSpec): Promise<string> => {
    const k = keys(o.prefix, id);
    const controller = new AbortController();
    const dir = trainingDir(spec, o.dataDir);
    const poll = setInterval(() => {
      void (async () => {
        const progress = await readTrainingProgress(dir);
        if (progress) await redis.hset(k.job, 'progress', JSON.stringify(progress));
        const status = await redis.hget(k.job, 'status');
        if (status !== 'running' && status !== 'queued') controller.abort(new Error(`job ${status ?? 'gone'}`));
      })().catch(() => undefined);
    }, 1000);
    try {
      const result = await executor.run(trainingTask(spec, o.dataDir), { signal: controller.signal });
      const files = await readArtefacts(dir);
      await redis.hset(artefactsKey(o.prefix, spec.model, spec.version), files);
      if (o.ttlSeconds > 0) await redis.expire(artefactsKey(o.prefix, spec.model, spec.version), Math.max(o.ttlSeconds, 30 * 24 * 3600));
      await redis.hset(k.job, 'result', JSON.stringify(result), 'progress', JSON.stringify({ phase: 'done', fraction: 1, updatedAt: new Date().toISOString() }));
      const committed = await redis.eval(
        COMMIT_CHUNK,
        4,
        k.job,
        k.done,
        k.results,
        k.errors,
        '0',
        '',
        '0',
        '0',
        new Date().toISOString(),
        String(o.ttlSeconds),
        String(MAX_STATUS_ERRORS),
        '0',
      );
      return committed === 1 ? 'trained' : 'job no longer running';
    } catch (e) {
      if (controller.signal.aborted) return 'job no longer running';
      throw e;
    } finally {
      clearInterval(poll);
    }
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

/**
 * An amortised-shap explanation job's spec, pointed at this process's copy of the explainer it was
 * planned with (copied from Redis, where the training worker published it, when this machine lacks it).
 */
async function withLocalExplainer(redis: Redis, o: Pick<WorkerOptions, 'prefix' | 'dataDir'>, spec: JobSpec): Promise<JobSpec> {
  const options = spec.options as { explainer: string };
  const dir = amortisedDir(o.dataDir, spec.model, spec.version);
  const file = path.join(dir, 'explainer.json');
  const id = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { id?: string }).id : undefined;
  if (id !== options.explainer) {
    const files = await redis.hgetallBuffer(artefactsKey(o.prefix, spec.model, spec.version));
    if (Object.keys(files).length) await writeArtefacts(dir, files);
  }
  return { ...spec, options: { ...spec.options, dir } };
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
