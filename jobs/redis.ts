/**
 * Distributed jobs on Redis (REDIS_URL): the API process splits a job into grid chunks on a BullMQ
 * queue; `npm run worker` processes (jobs/worker.ts, any number, on any machine with the models)
 * explain them. All state lives in Redis, so any API process serves any job:
 *
 *   <prefix>:job:<id>           hash: spec, status, rowsTotal, nChunks, rowsDone, rowsFailed, rowsUnconverged, times, error
 *   <prefix>:job:<id>:done      set of committed chunk indices
 *   <prefix>:job:<id>:results   hash: chunk index -> that chunk's NDJSON lines
 *   <prefix>:job:<id>:errors    list: the first few row errors
 *   <prefix>:jobs               sorted set of job ids by creation time
 *
 * Exactly once: a chunk's results are committed by one Lua script that adds the chunk to the done
 * set and, only if it was not there, stores its lines and adds its counts. A chunk that runs twice
 * (a worker killed mid-chunk and the chunk re-queued by BullMQ's stalled-job check, or a slow worker
 * whose lock expired) commits once; the second commit is a no-op, and both computed the same values.
 *
 * Redis down: the API's connections fail fast (no offline queue, a command timeout), so every job
 * endpoint answers 503 QUEUE_UNAVAILABLE at once instead of hanging, /readyz reports the queue not
 * ready, and ioredis keeps reconnecting: once Redis is back the same process serves jobs again.
 *
 * A submission is streamed: chunks go to the queue as the rows arrive, while the job's chunk count is
 * a placeholder no done-set reaches; FINALIZE_JOB then records the real count (and finishes the job
 * if its chunks were all committed in the meantime).
 */
import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { ServiceError } from '../service/errors.js';
import {
  MAX_STATUS_ERRORS,
  TERMINAL,
  TRAINING_METHOD,
  trainingView,
  viewOf,
  type Item,
  type JobMeta,
  type JobOwner,
  type JobRunner,
  type JobSpec,
  type JobStatus,
  type JobView,
  itemToJson,
  type ItemJson,
  type RowError,
} from './types.js';

export interface RedisSettings {
  url: string;
  /** Key prefix of job state (default "tfjs-explain"). */
  prefix: string;
  /** BullMQ queue name (default "tfjs-explain-chunks"). */
  queueName: string;
  /** Seconds a finished job's state and results are kept (default 7 days; 0 = forever). */
  ttlSeconds: number;
  /** Attempts per chunk before the job fails (infrastructure errors only; bad rows never fail a chunk). */
  attempts: number;
}

export function redisSettings(env: NodeJS.ProcessEnv = process.env): RedisSettings {
  const int = (name: string, dflt: number) => {
    const v = Number(env[name]);
    return env[name] !== undefined && env[name] !== '' && Number.isFinite(v) && v >= 0 ? Math.floor(v) : dflt;
  };
  if (!env.REDIS_URL) throw new Error('REDIS_URL is not set');
  return {
    url: env.REDIS_URL,
    prefix: env.JOBS_PREFIX || 'tfjs-explain',
    queueName: env.JOBS_QUEUE || 'tfjs-explain-chunks',
    ttlSeconds: int('JOBS_TTL_SECONDS', 7 * 24 * 3600),
    attempts: Math.max(1, int('JOBS_ATTEMPTS', 3)),
  };
}

/** Chunk data on the queue: the rows travel with the chunk, so workers need only the model. */
export interface ChunkData {
  job: string;
  chunk: number;
  items: ItemJson[];
}

export function chunkJobId(job: string, chunk: number): string {
  return `${job}-${chunk}`;
}

export const keys = (prefix: string, id: string) => ({
  job: `${prefix}:job:${id}`,
  done: `${prefix}:job:${id}:done`,
  results: `${prefix}:job:${id}:results`,
  errors: `${prefix}:job:${id}:errors`,
});
export const indexKey = (prefix: string) => `${prefix}:jobs`;
/** The latest training job of a model version, and the files of the explainer it stored. */
export const trainingKey = (prefix: string, model: string, version: string) => `${prefix}:amortised-job:${model}:${version}`;
export const artefactsKey = (prefix: string, model: string, version: string) => `${prefix}:amortised-files:${model}:${version}`;
/** The BullMQ job name of a training job's one task (explanation chunks are named 'chunk'). */
export const TRAINING_JOB_NAME = 'amortised-training';

const EXPIRE_ALL = `
local function expireAll(ttl)
  if ttl > 0 then
    for i = 1, 4 do redis.call('EXPIRE', KEYS[i], ttl) end
  end
end
`;

/** KEYS: job, done, results, errors. ARGV: chunk, payload, rows, failed, now, ttl, maxErrors, unconverged, error JSON... */
export const COMMIT_CHUNK = `${EXPIRE_ALL}
local st = redis.call('HGET', KEYS[1], 'status')
if not st then return -2 end
if st == 'cancelled' or st == 'failed' then return -1 end
if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
redis.call('HINCRBY', KEYS[1], 'rowsDone', ARGV[3])
redis.call('HINCRBY', KEYS[1], 'rowsFailed', ARGV[4])
redis.call('HINCRBY', KEYS[1], 'rowsUnconverged', ARGV[8])
local maxErrors = tonumber(ARGV[7])
for i = 9, #ARGV do
  if redis.call('LLEN', KEYS[4]) < maxErrors then redis.call('RPUSH', KEYS[4], ARGV[i]) end
end
if redis.call('SCARD', KEYS[2]) >= tonumber(redis.call('HGET', KEYS[1], 'nChunks')) then
  redis.call('HSET', KEYS[1], 'status', 'succeeded', 'finishedAt', ARGV[5])
  expireAll(tonumber(ARGV[6]))
end
return 1
`;

/** The chunk count of a job whose rows are still arriving: more than any done set holds. */
export const PENDING_CHUNKS = 2 ** 40;

/** KEYS: job, done, results, errors. ARGV: nChunks, rowsTotal, now, ttl. The submission is complete. */
export const FINALIZE_JOB = `${EXPIRE_ALL}
redis.call('HSET', KEYS[1], 'nChunks', ARGV[1], 'rowsTotal', ARGV[2])
local st = redis.call('HGET', KEYS[1], 'status')
if (st == 'queued' or st == 'running') and redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'status', 'succeeded', 'finishedAt', ARGV[3])
  expireAll(tonumber(ARGV[4]))
end
return st
`;

/** KEYS: job. ARGV: now. Returns the status before (nil: no such job). */
export const START_CHUNK = `
local st = redis.call('HGET', KEYS[1], 'status')
if not st then return nil end
if st == 'queued' then redis.call('HSET', KEYS[1], 'status', 'running') end
redis.call('HSETNX', KEYS[1], 'startedAt', ARGV[1])
return st
`;

/** KEYS: job, done, results, errors. ARGV: new status (failed|cancelled), now, ttl, error JSON or ''. */
export const FINISH_JOB = `${EXPIRE_ALL}
local st = redis.call('HGET', KEYS[1], 'status')
if not st then return nil end
if st == 'queued' or st == 'running' then
  redis.call('HSET', KEYS[1], 'status', ARGV[1], 'finishedAt', ARGV[2])
  if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'error', ARGV[4]) end
  expireAll(tonumber(ARGV[3]))
  return ARGV[1]
end
return st
`;

export function connect(url: string): Redis {
  // BullMQ needs maxRetriesPerRequest: null on the connections it blocks on.
  return new Redis(url, { maxRetriesPerRequest: null, enableReadyCheck: true });
}

/**
 * The API's connections: commands fail at once while Redis is unreachable (no offline queue, one
 * retry, a 3 s timeout) instead of waiting for it; ioredis keeps reconnecting in the background.
 */
export function connectFailFast(url: string): Redis {
  return new Redis(url, {
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    commandTimeout: 3000,
    connectTimeout: 3000,
    enableReadyCheck: true,
    retryStrategy: (times) => Math.min(times * 200, 2000),
  });
}

/** Resolves when `r` is ready, rejects after `ms`. */
function whenReady(r: Redis, ms: number): Promise<void> {
  if (r.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const done = (err?: Error) => {
      clearTimeout(t);
      r.off('ready', onReady);
      if (err) reject(err);
      else resolve();
    };
    const onReady = () => done();
    const t = setTimeout(() => done(new Error(`Redis not ready within ${ms} ms (status ${r.status})`)), ms);
    r.on('ready', onReady);
  });
}

export function queueUnavailable(cause: unknown): ServiceError {
  return new ServiceError(
    'QUEUE_UNAVAILABLE',
    `the job queue (Redis) cannot be reached (${cause instanceof Error ? cause.message.slice(0, 200) : String(cause)}); retry shortly`,
    { retryAfterSeconds: 5 },
  );
}

export interface JobStore {
  redis: Redis;
  settings: RedisSettings;
}

export async function readView(store: JobStore, id: string): Promise<JobView | undefined> {
  const k = keys(store.settings.prefix, id);
  const [h, errs] = await Promise.all([store.redis.hgetall(k.job), store.redis.lrange(k.errors, 0, MAX_STATUS_ERRORS - 1)]);
  if (!h || !h.spec) return undefined;
  const meta: JobMeta = {
    id,
    spec: JSON.parse(h.spec) as JobSpec,
    status: h.status as JobStatus,
    rowsTotal: Number(h.rowsTotal),
    createdAt: h.createdAt,
    startedAt: h.startedAt || null,
    finishedAt: h.finishedAt || null,
    ...(h.error ? { error: JSON.parse(h.error) as RowError } : {}),
    ...(h.progress ? { progress: JSON.parse(h.progress) as JobMeta['progress'] } : {}),
    ...(h.result ? { result: JSON.parse(h.result) as JobMeta['result'] } : {}),
  };
  if (meta.spec.method === TRAINING_METHOD) return trainingView(meta);
  const rowsDone = Number(h.rowsDone || 0);
  let rate: number | null = null;
  if (meta.startedAt) {
    const end = meta.finishedAt ? Date.parse(meta.finishedAt) : Date.now();
    const secs = (end - Date.parse(meta.startedAt)) / 1000;
    rate = secs > 0 && rowsDone > 0 ? rowsDone / secs : null;
  }
  return viewOf(
    meta,
    {
      rowsDone,
      rowsFailed: Number(h.rowsFailed || 0),
      rowsUnconverged: Number(h.rowsUnconverged || 0),
      errors: errs.map((e) => JSON.parse(e)),
    },
    rate,
  );
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

export interface RedisRunnerOptions extends RedisSettings {
  logger?: Pick<Logger, 'info' | 'warn' | 'error'>;
  /** Poll interval when following results (default 250 ms). */
  pollMs?: number;
}

export class RedisJobRunner implements JobRunner {
  readonly kind = 'redis' as const;
  private redis: Redis | undefined;
  private queue: Queue<ChunkData> | undefined;
  private queueConnection: Redis | undefined;
  private lastError: string | undefined;
  private lastLogged = 0;

  constructor(private readonly o: RedisRunnerOptions) {}

  /** The connection, when Redis is reachable now; QUEUE_UNAVAILABLE otherwise. */
  private get store(): JobStore {
    if (!this.redis) throw new Error('the Redis job runner is not started');
    if (this.redis.status !== 'ready') throw queueUnavailable(new Error(this.lastError ?? `connection ${this.redis.status}`));
    return { redis: this.redis, settings: this.o };
  }

  /** Runs a Redis operation; a connection failure is QUEUE_UNAVAILABLE (503), never a hang or a 500. */
  private async io<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof ServiceError) throw e;
      throw queueUnavailable(e);
    }
  }

  private onError = (e: Error) => {
    this.lastError = e.message;
    // ioredis retries for ever: say so now and then, not on every attempt.
    if (Date.now() - this.lastLogged > 30_000) {
      this.lastLogged = Date.now();
      this.o.logger?.warn({ err: e.message }, 'Redis unreachable: job endpoints answer 503 QUEUE_UNAVAILABLE until it is back');
    }
  };

  async start(): Promise<void> {
    if (this.redis) return;
    this.redis = connectFailFast(this.o.url);
    this.queueConnection = connectFailFast(this.o.url);
    this.redis.on('error', this.onError);
    this.queueConnection.on('error', this.onError);
    this.redis.on('ready', () => (this.lastError = undefined));
    try {
      await whenReady(this.redis, 5000);
      await this.redis.ping();
      this.o.logger?.info({ queue: this.o.queueName }, 'jobs run on Redis; start workers with `npm run worker`');
    } catch (e) {
      // Start anyway: /readyz says not ready, job endpoints answer 503 until Redis is reachable.
      this.onError(e instanceof Error ? e : new Error(String(e)));
    }
  }

  /** The BullMQ queue, created once its connection is ready (a queue whose first connection failed stays broken). */
  private async queueReady(): Promise<Queue<ChunkData>> {
    const connection = this.queueConnection!;
    if (connection.status !== 'ready') throw queueUnavailable(new Error(this.lastError ?? `connection ${connection.status}`));
    this.queue ??= new Queue<ChunkData>(this.o.queueName, { connection });
    return this.queue;
  }

  async health(): Promise<{ ready: boolean; error?: string }> {
    try {
      await this.io(() => this.store.redis.ping());
      if (this.queueConnection?.status !== 'ready') throw new Error(this.lastError ?? `queue connection ${this.queueConnection?.status}`);
      return { ready: true };
    } catch (e) {
      return { ready: false, error: e instanceof Error ? e.message : String(e) };
    }
  }

  async stop(): Promise<void> {
    await this.queue?.close();
    // BullMQ leaves connections it was given open.
    this.queueConnection?.disconnect();
    this.redis?.disconnect();
    this.queue = undefined;
    this.queueConnection = undefined;
    this.redis = undefined;
  }

  async owner(id: string): Promise<JobOwner | undefined> {
    const k = keys(this.o.prefix, id);
    const [spec, owner] = await this.io(() => this.store.redis.hmget(k.job, 'spec', 'owner'));
    if (!spec) return undefined;
    return owner ? (JSON.parse(owner) as JobOwner) : { models: null };
  }

  async spec(id: string): Promise<JobSpec | undefined> {
    const raw = await this.io(() => this.store.redis.hget(keys(this.o.prefix, id).job, 'spec'));
    return raw ? (JSON.parse(raw) as JobSpec) : undefined;
  }

  async submit(spec: JobSpec, items: Iterable<Item> | AsyncIterable<Item>, owner?: JobOwner): Promise<JobView> {
    const { redis } = this.store;
    const queue = await this.queueReady();
    const id = randomUUID();
    const k = keys(this.o.prefix, id);
    const size = spec.chunkSize;
    const now = new Date().toISOString();
    await this.io(() =>
      redis.hset(k.job, {
        spec: JSON.stringify(spec),
        ...(owner ? { owner: JSON.stringify(owner) } : {}),
        status: 'queued',
        rowsTotal: 0,
        nChunks: PENDING_CHUNKS,
        rowsDone: 0,
        rowsFailed: 0,
        rowsUnconverged: 0,
        createdAt: now,
      }),
    );
    const queued: number[] = [];
    let batch: ChunkData[] = [];
    let batchRows = 0;
    const flush = async () => {
      if (!batch.length) return;
      const list = batch;
      batch = [];
      batchRows = 0;
      await this.io(() =>
        queue.addBulk(
          list.map((data) => ({
            name: 'chunk',
            data,
            opts: {
              jobId: chunkJobId(id, data.chunk),
              attempts: this.o.attempts,
              backoff: { type: 'exponential', delay: 1000 },
              removeOnComplete: true,
              removeOnFail: 1000,
            },
          })),
        ),
      );
      queued.push(...list.map((c) => c.chunk));
    };
    try {
      // Rows come in index order: a chunk is complete when the next one starts. Chunks are queued
      // in batches of about 10k rows, so an upload is never held whole.
      let current: ChunkData | undefined;
      let rows = 0;
      let nChunks = 0;
      for await (const it of items) {
        const c = Math.floor(it.index / size);
        if (!current || current.chunk !== c) {
          if (current) {
            batch.push(current);
            batchRows += current.items.length;
            if (batchRows >= 10_000) await flush();
          }
          current = { job: id, chunk: c, items: [] };
          nChunks++;
        }
        current.items.push(itemToJson(it));
        rows++;
      }
      if (current) batch.push(current);
      await flush();
      await this.io(() =>
        redis.eval(FINALIZE_JOB, 4, k.job, k.done, k.results, k.errors, nChunks, rows, new Date().toISOString(), this.o.ttlSeconds),
      );
      await this.io(() => redis.zadd(indexKey(this.o.prefix), Date.now(), id));
    } catch (e) {
      // No job: drop what was queued and written (best effort; Redis may be the reason we are here).
      await Promise.all(queued.map((c) => queue.remove(chunkJobId(id, c)).catch(() => 0)));
      await redis.del(k.job, k.done, k.results, k.errors).catch(() => 0);
      throw e;
    }
    return (await this.get(id))!;
  }

  get(id: string): Promise<JobView | undefined> {
    return this.io(() => readView(this.store, id));
  }

  async submitTraining(spec: JobSpec, owner?: JobOwner): Promise<JobView> {
    const active = await this.training(spec.model, spec.version);
    if (active && !TERMINAL.has(active.status)) return active;
    const id = randomUUID();
    const k = keys(this.o.prefix, id);
    const now = new Date().toISOString();
    // Fail fast like every job operation: no Redis is 503 QUEUE_UNAVAILABLE (io), never a hang or a 500.
    await this.io(() =>
      this.store.redis
        .multi()
        .hset(k.job, {
          spec: JSON.stringify(spec),
          ...(owner ? { owner: JSON.stringify(owner) } : {}),
          status: 'queued',
          rowsTotal: 0,
          nChunks: 1,
          rowsDone: 0,
          rowsFailed: 0,
          createdAt: now,
          progress: JSON.stringify({ phase: 'queued', fraction: 0, updatedAt: now }),
        })
        .zadd(indexKey(this.o.prefix), Date.now(), id)
        .set(trainingKey(this.o.prefix, spec.model, spec.version), id)
        .exec(),
    );
    const queue = await this.queueReady();
    await this.io(() =>
      queue.add(
        TRAINING_JOB_NAME,
        { job: id, chunk: 0, items: [] },
        { jobId: chunkJobId(id, 0), attempts: this.o.attempts, backoff: { type: 'exponential', delay: 1000 }, removeOnComplete: true, removeOnFail: 1000 },
      ),
    );
    return (await this.get(id))!;
  }

  async training(model: string, version: string): Promise<JobView | undefined> {
    const id = await this.io(() => this.store.redis.get(trainingKey(this.o.prefix, model, version)));
    return id ? this.get(id) : undefined;
  }

  /** The files of the explainer a worker stored for this model version (service/amortised/store.ts), if any. */
  async artefacts(model: string, version: string): Promise<Record<string, Buffer> | undefined> {
    const files = await this.io(() => this.store.redis.hgetallBuffer(artefactsKey(this.o.prefix, model, version)));
    return Object.keys(files).length ? files : undefined;
  }

  async list(limit = 100): Promise<JobView[]> {
    return this.io(async () => {
      const ids = await this.store.redis.zrevrange(indexKey(this.o.prefix), 0, limit - 1);
      const views = await Promise.all(ids.map((id) => readView(this.store, id)));
      const gone = ids.filter((_, i) => !views[i]);
      if (gone.length) await this.store.redis.zrem(indexKey(this.o.prefix), ...gone);
      return views.filter((v): v is JobView => !!v);
    });
  }

  cancel(id: string): Promise<JobView | undefined> {
    return this.io(() => this.cancelNow(id));
  }

  private async cancelNow(id: string): Promise<JobView | undefined> {
    const { redis } = this.store;
    const k = keys(this.o.prefix, id);
    const before = await redis.eval(
      FINISH_JOB,
      4,
      k.job,
      k.done,
      k.results,
      k.errors,
      'cancelled',
      new Date().toISOString(),
      this.o.ttlSeconds,
      '',
    );
    if (before === null) return undefined;
    // Waiting chunks are dropped from the queue; a chunk already running finds the job cancelled when it commits.
    const n = Number(await redis.hget(k.job, 'nChunks'));
    const done = new Set(await redis.smembers(k.done));
    await Promise.all(
      Array.from({ length: n }, (_, c) => c)
        .filter((c) => !done.has(String(c)))
        .map(async (c) => (await this.queueReady()).remove(chunkJobId(id, c)).catch(() => 0)),
    );
    return readView(this.store, id);
  }

  async *results(id: string, opts: { follow?: boolean; signal?: AbortSignal } = {}): AsyncGenerator<string> {
    const { redis } = this.store;
    const k = keys(this.o.prefix, id);
    const nChunks = Number(await this.io(() => redis.hget(k.job, 'nChunks')));
    for (let c = 0; c < nChunks; c++) {
      for (;;) {
        const payload = await redis.hget(k.results, String(c));
        if (payload !== null) {
          yield payload;
          break;
        }
        if (!opts.follow || opts.signal?.aborted) return;
        const status = (await redis.hget(k.job, 'status')) as JobStatus | null;
        if (!status || (TERMINAL.has(status) && status !== 'succeeded')) return;
        await sleep(this.o.pollMs ?? 250, opts.signal);
        if (opts.signal?.aborted) return;
      }
    }
  }

  /** Waits until a job has finished (tests, tools). */
  async waitFor(id: string, timeoutMs = 60_000): Promise<JobView> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const v = await this.get(id);
      if (!v) throw new Error(`no job ${id}`);
      if (TERMINAL.has(v.status)) return v;
      if (Date.now() > until) throw new Error(`job ${id} still ${v.status} after ${timeoutMs} ms (are workers running?)`);
      await sleep(200);
    }
  }
}
