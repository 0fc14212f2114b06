/**
 * Job runners behind /v1/jobs. The embedded default (LocalJobRunner) keeps each job in a folder
 * under JOBS_DIR and runs its chunks through the app's Executor (the worker pool):
 *
 *   <JOBS_DIR>/<id>/job.json          recipe, status and times (written to a temp file and renamed)
 *   <JOBS_DIR>/<id>/input.ndjson      the parsed rows, one per line, written (streamed) before the 202
 *   <JOBS_DIR>/<id>/results.ndjson    results in index order, committed per chunk (jobs/resultFile.ts)
 *
 * A restart loses no committed row: start() picks up every queued or running job where its results
 * stop. A finished job's folder is removed `ttlSeconds` after it finished (JOBS_TTL_SECONDS, default
 * 7 days), checked at start and then hourly. With REDIS_URL set, createJobRunner returns the
 * distributed runner (jobs/redis.ts) instead.
 */
import { EventEmitter } from 'node:events';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import type { Logger } from 'pino';
import type { Executor } from '../service/executor.js';
import { chunked, executorExplain, explainChunk, runChunks, withRetries } from './engine.js';
import { readCheckpoint, ResultFile, type Checkpoint } from './resultFile.js';
import { specFingerprint } from './spec.js';
import { trainingDir, trainingTask } from './training.js';
import { readTrainingProgress } from '../service/amortised/task.js';
import {
  TERMINAL,
  TRAINING_METHOD,
  trainingView,
  viewOf,
  type Item,
  type JobMeta,
  type JobOwner,
  type JobRunner,
  type JobSpec,
  type JobView,
  itemFromJson,
  itemToJson,
  type ItemJson,
} from './types.js';

export type { JobMeta, JobOwner, JobRunner };

export interface LocalRunnerOptions {
  dir: string;
  executor: Executor;
  /** Jobs run at once (default 1: a job already uses every thread). */
  concurrency?: number;
  /**
   * Chunks in flight per job (default: the executor's threads + 1, so at most one job chunk waits in
   * the pool's queue ahead of an interactive request).
   */
  inFlight?: number;
  logger?: Pick<Logger, 'info' | 'warn' | 'error'>;
  /** fsync results and state (default true). */
  sync?: boolean;
  /** Seconds a finished job's folder is kept (0: forever). Default 7 days. */
  ttlSeconds?: number;
}

export const DEFAULT_JOB_TTL_SECONDS = 7 * 24 * 3600;

interface Live {
  controller: AbortController;
  done: Promise<void>;
  cancelled: boolean;
  runStartedAt: number;
  rowsAtRunStart: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class LocalJobRunner implements JobRunner {
  readonly kind = 'local' as const;
  private jobs = new Map<string, JobMeta>();
  private progress = new Map<string, Checkpoint>();
  private queue: string[] = [];
  private live = new Map<string, Live>();
  private events = new EventEmitter();
  private stopped = true;
  private readonly concurrency: number;
  private gcTimer: NodeJS.Timeout | undefined;

  constructor(private readonly o: LocalRunnerOptions) {
    this.concurrency = Math.max(1, o.concurrency ?? 1);
    this.events.setMaxListeners(0);
  }

  private folder(id: string) {
    return path.join(this.o.dir, id);
  }
  private resultsPath(id: string) {
    return path.join(this.folder(id), 'results.ndjson');
  }

  async start(): Promise<void> {
    await mkdir(this.o.dir, { recursive: true });
    this.stopped = false;
    for (const id of await readdir(this.o.dir)) {
      if (this.jobs.has(id)) continue;
      let meta: JobMeta;
      try {
        meta = JSON.parse(await readFile(path.join(this.o.dir, id, 'job.json'), 'utf8')) as JobMeta;
      } catch {
        continue; // not a job folder, or a job whose submission never completed
      }
      this.jobs.set(meta.id, meta);
      const cp = await readCheckpoint(this.resultsPath(meta.id));
      if (cp) this.progress.set(meta.id, cp);
    }
    const resume = [...this.jobs.values()].filter(
      (m) => (m.status === 'queued' || m.status === 'running') && !this.live.has(m.id) && !this.queue.includes(m.id),
    );
    resume.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    for (const m of resume) this.queue.push(m.id);
    if (resume.length) this.o.logger?.info({ jobs: resume.map((m) => m.id) }, `resuming ${resume.length} unfinished job(s)`);
    await this.collectGarbage();
    this.gcTimer ??= setInterval(() => void this.collectGarbage(), 3600_000).unref();
    this.pump();
  }

  /** Removes the folders of jobs that finished more than ttlSeconds ago; returns their ids. */
  async collectGarbage(now = Date.now()): Promise<string[]> {
    const ttl = this.o.ttlSeconds ?? DEFAULT_JOB_TTL_SECONDS;
    if (ttl <= 0) return [];
    const gone: string[] = [];
    for (const meta of [...this.jobs.values()]) {
      if (!TERMINAL.has(meta.status) || this.live.has(meta.id) || !meta.finishedAt) continue;
      if (now - Date.parse(meta.finishedAt) <= ttl * 1000) continue;
      this.jobs.delete(meta.id);
      this.progress.delete(meta.id);
      await rm(this.folder(meta.id), { recursive: true, force: true });
      gone.push(meta.id);
    }
    if (gone.length) this.o.logger?.info({ jobs: gone }, `removed ${gone.length} job(s) finished more than ${ttl} s ago`);
    return gone;
  }

  async stop(): Promise<void> {
    if (this.gcTimer) clearInterval(this.gcTimer);
    this.gcTimer = undefined;
    this.stopped = true;
    const live = [...this.live.values()];
    for (const l of live) l.controller.abort();
    await Promise.all(live.map((l) => l.done));
  }

  private async saveMeta(meta: JobMeta): Promise<void> {
    const file = path.join(this.folder(meta.id), 'job.json');
    const tmp = `${file}.tmp`;
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(JSON.stringify(meta));
      if (this.o.sync ?? true) await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  }

  async spec(id: string): Promise<JobSpec | undefined> {
    return this.jobs.get(id)?.spec;
  }

  async owner(id: string): Promise<JobOwner | undefined> {
    const meta = this.jobs.get(id);
    return meta ? (meta.owner ?? { models: null }) : undefined;
  }

  async submit(spec: JobSpec, items: Iterable<Item> | AsyncIterable<Item>, owner?: JobOwner): Promise<JobView> {
    const id = randomUUID();
    await mkdir(this.folder(id), { recursive: true });
    let rowsTotal = 0;
    let fh: FileHandle | undefined;
    try {
      fh = await open(path.join(this.folder(id), 'input.ndjson'), 'w');
      // Written as the items come (an upload is never held whole), in blocks of about 1 MB.
      let block: string[] = [];
      let bytes = 0;
      for await (const it of items) {
        const line = JSON.stringify(itemToJson(it));
        block.push(line);
        bytes += line.length + 1;
        rowsTotal++;
        if (bytes >= 1 << 20) {
          await fh.write(block.join('\n') + '\n');
          block = [];
          bytes = 0;
        }
      }
      if (block.length) await fh.write(block.join('\n') + '\n');
      if (this.o.sync ?? true) await fh.sync();
    } catch (e) {
      await fh?.close();
      fh = undefined;
      await rm(this.folder(id), { recursive: true, force: true });
      throw e;
    } finally {
      await fh?.close();
    }
    const meta: JobMeta = {
      id,
      spec,
      ...(owner ? { owner } : {}),
      status: 'queued',
      rowsTotal,
      createdAt: new Date().toISOString(),
      startedAt: null,
      finishedAt: null,
    };
    await this.saveMeta(meta); // job.json last: a folder without it is an unfinished submission
    this.jobs.set(id, meta);
    this.queue.push(id);
    this.pump();
    return (await this.get(id))!;
  }

  async submitTraining(spec: JobSpec, owner?: JobOwner): Promise<JobView> {
    const active = await this.training(spec.model, spec.version);
    if (active && !TERMINAL.has(active.status)) return active;
    const id = randomUUID();
    await mkdir(this.folder(id), { recursive: true });
    const meta: JobMeta = {
      id,
      spec,
      ...(owner ? { owner } : {}),
      status: 'queued',
      rowsTotal: 0,
      createdAt: new Date().toISOString(),
      startedAt: null,
      finishedAt: null,
      progress: { phase: 'queued', fraction: 0, updatedAt: new Date().toISOString() },
    };
    await this.saveMeta(meta);
    this.jobs.set(id, meta);
    this.queue.push(id);
    this.pump();
    return (await this.get(id))!;
  }

  async training(model: string, version: string): Promise<JobView | undefined> {
    let latest: JobMeta | undefined;
    for (const m of this.jobs.values()) {
      if (m.spec.method !== TRAINING_METHOD || m.spec.model !== model || m.spec.version !== version) continue;
      if (!latest || m.createdAt > latest.createdAt) latest = m;
    }
    return latest ? this.get(latest.id) : undefined;
  }

  /** A training job: one task on the executor; stopped (not cancelled) it stays running and resumes from its checkpoints. */
  private async runTraining(meta: JobMeta, live: Live): Promise<void> {
    const id = meta.id;
    meta.status = 'running';
    meta.startedAt ??= new Date().toISOString();
    await this.saveMeta(meta);
    this.events.emit(id);
    try {
      meta.result = await this.o.executor.run(trainingTask(meta.spec), { signal: live.controller.signal });
      meta.status = 'succeeded';
      meta.progress = { phase: 'done', fraction: 1, updatedAt: new Date().toISOString() };
      meta.finishedAt = new Date().toISOString();
    } catch (e) {
      if (live.cancelled) {
        meta.status = 'cancelled';
        meta.finishedAt ??= new Date().toISOString();
      } else if (live.controller.signal.aborted) {
        return; // stopped: stays "running" on disk and resumes from the checkpoints on the next start()
      } else {
        meta.status = 'failed';
        const code = (e as { code?: unknown })?.code;
        meta.error = {
          code: typeof code === 'string' && /^[A-Z_]+$/.test(code) ? code : 'INTERNAL',
          message: e instanceof Error ? e.message : String(e),
        };
        this.o.logger?.error({ err: e, job: id }, `training job ${id} failed`);
        meta.finishedAt = new Date().toISOString();
      }
    }
    const last = await readTrainingProgress(trainingDir(meta.spec));
    if (meta.status !== 'succeeded' && last) meta.progress = last;
    await this.saveMeta(meta);
    this.events.emit(id);
  }

  private pump(): void {
    while (!this.stopped && this.live.size < this.concurrency && this.queue.length) {
      const id = this.queue.shift()!;
      const meta = this.jobs.get(id);
      if (!meta || TERMINAL.has(meta.status)) continue;
      const live: Live = {
        controller: new AbortController(),
        done: Promise.resolve(),
        cancelled: false,
        runStartedAt: Date.now(),
        rowsAtRunStart: this.progress.get(id)?.rowsDone ?? 0,
      };
      this.live.set(id, live);
      live.done = this.run(meta, live)
        .catch((e) => this.o.logger?.error({ err: e, job: id }, 'job runner failure'))
        .finally(() => {
          this.live.delete(id);
          this.events.emit(id);
          this.pump();
        });
    }
  }

  private async *inputItems(id: string, from: number): AsyncGenerator<Item> {
    const rl = createInterface({ input: createReadStream(path.join(this.folder(id), 'input.ndjson'), 'utf8'), crlfDelay: Infinity });
    try {
      for await (const text of rl) {
        if (!text) continue;
        const r = JSON.parse(text) as ItemJson;
        if (r.index < from) continue;
        yield itemFromJson(r);
      }
    } finally {
      rl.close();
    }
  }

  private async run(meta: JobMeta, live: Live): Promise<void> {
    if (meta.spec.method === TRAINING_METHOD) return this.runTraining(meta, live);
    const id = meta.id;
    meta.status = 'running';
    meta.startedAt ??= new Date().toISOString();
    await this.saveMeta(meta);
    this.events.emit(id);
    let file: ResultFile | undefined;
    try {
      file = await ResultFile.open({
        path: this.resultsPath(id),
        format: 'ndjson',
        fingerprint: specFingerprint(meta.spec),
        resume: true,
        sync: this.o.sync,
      });
      this.progress.set(id, { ...file.checkpoint });
      live.rowsAtRunStart = file.checkpoint.rowsDone;
      live.runStartedAt = Date.now();
      const spec = meta.spec;
      const explain = executorExplain(this.o.executor, spec, live.controller.signal);
      const threads = Math.max(1, this.o.executor.stats().threads);
      const f = file;
      const outcome = file.checkpoint.done
        ? 'done'
        : await runChunks({
            chunks: chunked(this.inputItems(id, file.checkpoint.nextIndex), spec.chunkSize),
            process: (c) => withRetries(() => explainChunk(c.items, spec.nFeatures, explain), 3, live.controller.signal),
            commit: async (c, records) => {
              await f.append(records, (c.chunk + 1) * spec.chunkSize);
              this.progress.set(id, { ...f.checkpoint });
              this.events.emit(id);
            },
            inFlight: this.o.inFlight ?? threads + 1,
            signal: live.controller.signal,
          });
      if (outcome === 'done') {
        if (!file.checkpoint.done) await file.markDone();
        this.progress.set(id, { ...file.checkpoint });
        meta.status = 'succeeded';
        meta.finishedAt = new Date().toISOString();
      } else if (live.cancelled) {
        meta.status = 'cancelled';
        meta.finishedAt ??= new Date().toISOString();
      } else {
        return; // stopped: stays "running" on disk and resumes on the next start()
      }
    } catch (e) {
      if (live.cancelled) {
        meta.status = 'cancelled';
      } else {
        meta.status = 'failed';
        const code = (e as { code?: unknown })?.code;
        meta.error = {
          code: typeof code === 'string' && /^[A-Z_]+$/.test(code) ? code : 'INTERNAL',
          message: e instanceof Error ? e.message : String(e),
        };
        this.o.logger?.error({ err: e, job: id }, `job ${id} failed`);
      }
      meta.finishedAt = new Date().toISOString();
    } finally {
      await file?.close();
    }
    await this.saveMeta(meta);
    this.events.emit(id);
  }

  private rate(id: string, meta: JobMeta): number | null {
    const live = this.live.get(id);
    const cp = this.progress.get(id);
    if (live && cp) {
      const secs = (Date.now() - live.runStartedAt) / 1000;
      const rows = cp.rowsDone - live.rowsAtRunStart;
      return secs > 0 && rows > 0 ? rows / secs : null;
    }
    if (meta.startedAt && meta.finishedAt && cp) {
      const secs = (Date.parse(meta.finishedAt) - Date.parse(meta.startedAt)) / 1000;
      return secs > 0 ? cp.rowsDone / secs : null;
    }
    return null;
  }

  async get(id: string): Promise<JobView | undefined> {
    const meta = this.jobs.get(id);
    if (!meta) return undefined;
    if (meta.spec.method === TRAINING_METHOD) {
      const progress = meta.status === 'running' ? ((await readTrainingProgress(trainingDir(meta.spec))) ?? meta.progress) : meta.progress;
      return trainingView({ ...meta, ...(progress ? { progress } : {}) });
    }
    const cp = this.progress.get(id);
    return viewOf(
      meta,
      { rowsDone: cp?.rowsDone ?? 0, rowsFailed: cp?.rowsFailed ?? 0, rowsUnconverged: cp?.rowsUnconverged ?? 0, errors: cp?.errors ?? [] },
      this.rate(id, meta),
    );
  }

  async list(limit = 100): Promise<JobView[]> {
    const metas = [...this.jobs.values()].sort((a, b) => b.createdAt.localeCompare(a.createdAt)).slice(0, limit);
    return Promise.all(metas.map(async (m) => (await this.get(m.id))!));
  }

  async cancel(id: string): Promise<JobView | undefined> {
    const meta = this.jobs.get(id);
    if (!meta) return undefined;
    if (!TERMINAL.has(meta.status)) {
      const live = this.live.get(id);
      meta.status = 'cancelled';
      meta.finishedAt = new Date().toISOString();
      this.queue = this.queue.filter((q) => q !== id);
      await this.saveMeta(meta);
      if (live) {
        live.cancelled = true;
        live.controller.abort();
        await live.done;
      }
      this.events.emit(id);
    }
    return this.get(id);
  }

  /** Resolves on the job's next event, or after `ms` (a safety net for a missed event). */
  private next(id: string, ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.events.off(id, done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const t = setTimeout(done, ms);
      this.events.on(id, done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  async *results(id: string, opts: { follow?: boolean; signal?: AbortSignal } = {}): AsyncGenerator<Buffer> {
    const file = this.resultsPath(id);
    let offset = 0;
    for (;;) {
      const meta = this.jobs.get(id);
      if (!meta) return;
      const terminal = TERMINAL.has(meta.status) && !this.live.has(id);
      const committed = this.progress.get(id)?.bytes ?? 0;
      if (committed > offset) {
        const size = (await stat(file).catch(() => undefined))?.size ?? 0;
        const end = Math.min(committed, size);
        if (end > offset) {
          for await (const chunk of createReadStream(file, { start: offset, end: end - 1 })) yield chunk as Buffer;
          offset = end;
        }
      }
      if (!opts.follow || terminal || opts.signal?.aborted) return;
      await this.next(id, 1000, opts.signal);
      if (opts.signal?.aborted) return;
    }
  }

  /** Waits until a job has finished (tests, tools). */
  async waitFor(id: string, timeoutMs = 60_000): Promise<JobView> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const v = await this.get(id);
      if (!v) throw new Error(`no job ${id}`);
      if (TERMINAL.has(v.status) && !this.live.has(id)) return v;
      if (Date.now() > until) throw new Error(`job ${id} still ${v.status} after ${timeoutMs} ms`);
      await Promise.race([this.next(id, 200), sleep(200)]);
    }
  }
}

export interface RunnerEnvOptions {
  executor: Executor;
  logger?: Pick<Logger, 'info' | 'warn' | 'error'>;
  env?: NodeJS.ProcessEnv;
}

/** JOBS_DIR, default <tmpdir>/tfjs-explainer-jobs. */
export function jobsDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.JOBS_DIR || path.join(os.tmpdir(), 'tfjs-explainer-jobs'));
}

/**
 * The runner the environment asks for: Redis/BullMQ when REDIS_URL is set (chunks are processed by
 * `npm run worker` processes), else the embedded runner on `executor`.
 */
export async function createJobRunner(o: RunnerEnvOptions): Promise<JobRunner> {
  const env = o.env ?? process.env;
  if (env.REDIS_URL) {
    const { RedisJobRunner, redisSettings } = await import('./redis.js');
    return new RedisJobRunner({ ...redisSettings(env), logger: o.logger });
  }
  const positive = (name: string): number | undefined => {
    const n = Number(env[name]);
    return env[name] && Number.isFinite(n) && n >= 1 ? Math.floor(n) : undefined;
  };
  const ttl = Number(env.JOBS_TTL_SECONDS);
  return new LocalJobRunner({
    dir: jobsDir(env),
    ttlSeconds: env.JOBS_TTL_SECONDS && Number.isFinite(ttl) && ttl >= 0 ? Math.floor(ttl) : DEFAULT_JOB_TTL_SECONDS,
    executor: o.executor,
    concurrency: positive('JOBS_CONCURRENCY') ?? 1,
    inFlight: positive('JOBS_IN_FLIGHT'),
    logger: o.logger,
  });
}
