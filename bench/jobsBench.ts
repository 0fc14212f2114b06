/**
 * Batch job throughput: a 10,000-row Kernel SHAP job on the credit sample (its 1,000 reference rows
 * repeated with small seeded perturbations), run in process with 1 and 2 worker threads (the CLI's
 * path, fsync per chunk included), and, when Redis is available (REDIS_URL, or a redis-server binary
 * to start), through BullMQ with 1 and 2 worker processes of one thread each.
 *
 *   npx tsx bench/jobsBench.ts [--rows 10000] [--n-samples auto] [--no-redis]
 *
 * `jobsBench()` returns the figures for other code.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { normal, seededRng } from '../explainers/random.js';
import { selectBackend } from '../models/backend.js';
import { loadModelFolder } from '../models/repository.js';
import { loadConfig } from '../server/config.js';

import { redisServerBinary, startDevRedis, type DevRedis } from '../jobs/devRedis.js';
import { runFileJob } from '../jobs/fileJob.js';
import { openInput } from '../jobs/input.js';
import { RedisJobRunner } from '../jobs/redis.js';
import { buildSpec } from '../jobs/spec.js';
import type { Item } from '../jobs/types.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SAMPLES = path.join(ROOT, 'samples', 'models');

export interface JobsBenchOptions {
  rows?: number;
  nSamples?: number | 'auto';
  seed?: number;
  /** Try Redis (REDIS_URL, or start redis-server). Default true. */
  redis?: boolean;
  threads?: number[];
  processes?: number[];
  log?: (s: string) => void;
}

export interface JobsBenchRun {
  mode: 'threads' | 'processes';
  workers: number;
  rows: number;
  seconds: number;
  rowsPerSecond: number;
}

export interface JobsBenchResult {
  rows: number;
  nSamples: number | 'auto';
  cores: number;
  runs: JobsBenchRun[];
  redis: 'used' | 'unavailable' | 'skipped';
}

/** The credit reference rows, repeated to `n` rows; copies after the first get small seeded noise on non-binary columns. */
export async function makeCreditInput(file: string, n: number, seed = 1): Promise<void> {
  const lines = (await readFile(path.join(SAMPLES, 'credit', 'reference.csv'), 'utf8')).trim().split('\n');
  const header = lines[0];
  const rows = lines.slice(1).map((l) => l.split(',').map(Number));
  const cols = header.split(',').length;
  const binary = Array.from({ length: cols }, (_, j) => rows.every((r) => r[j] === 0 || r[j] === 1));
  const integer = Array.from({ length: cols }, (_, j) => rows.every((r) => Number.isInteger(r[j])));
  const rng = seededRng(seed);
  const out = [header];
  for (let i = 0; i < n; i++) {
    const base = rows[i % rows.length];
    if (i < rows.length) {
      out.push(base.join(','));
      continue;
    }
    const r = base.map((v, j) => {
      if (binary[j]) return v;
      const p = v * (1 + 0.03 * normal(rng)) + 0.01 * normal(rng);
      return integer[j] ? Math.max(0, Math.round(p)) : Math.max(0, Number(p.toPrecision(5)));
    });
    out.push(r.join(','));
  }
  await writeFile(file, out.join('\n') + '\n');
}

function startWorker(env: NodeJS.ProcessEnv): { child: ChildProcess; ready: Promise<void> } {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'jobs', 'worker.ts')], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: ROOT,
  });
  let log = '';
  const ready = new Promise<void>((resolve, reject) => {
    const on = (d: Buffer) => {
      log += d;
      if (log.includes('worker ready')) resolve();
    };
    child.stdout!.on('data', on);
    child.stderr!.on('data', on);
    child.on('exit', (c) => reject(new Error(`worker exited (${c}):\n${log}`)));
  });
  ready.catch(() => undefined);
  return { child, ready };
}

export async function jobsBench(o: JobsBenchOptions = {}): Promise<JobsBenchResult> {
  const rows = o.rows ?? 10_000;
  const nSamples = o.nSamples ?? 'auto';
  const seed = o.seed ?? 0;
  const log = o.log ?? (() => undefined);
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'jobs-bench-'));
  const input = path.join(tmp, 'credit.csv');
  await makeCreditInput(input, rows);
  const runs: JobsBenchRun[] = [];
  const result: JobsBenchResult = { rows, nSamples, cores: os.availableParallelism(), runs, redis: 'skipped' };
  try {
    for (const workers of o.threads ?? [1, 2]) {
      const t0 = Date.now();
      const r = await runFileJob({
        model: 'credit',
        modelDir: SAMPLES,
        input,
        output: path.join(tmp, `out-${workers}.ndjson`),
        method: 'kernel-shap',
        parameters: { nSamples, seed },
        workers,
        overwrite: true,
      });
      const seconds = (Date.now() - t0) / 1000;
      const run: JobsBenchRun = { mode: 'threads', workers, rows: r.rowsDone, seconds, rowsPerSecond: r.rowsDone / seconds };
      runs.push(run);
      log(
        `in process, ${workers} thread(s): ${r.rowsDone} rows in ${seconds.toFixed(1)} s = ${run.rowsPerSecond.toFixed(1)} rows/s (start-up included)`,
      );
    }

    if (o.redis ?? true) {
      let dev: DevRedis | undefined;
      let url = process.env.REDIS_URL;
      if (!url) {
        const bin = redisServerBinary();
        if (bin) {
          dev = await startDevRedis(bin);
          url = dev.url;
        }
      }
      if (!url) {
        result.redis = 'unavailable';
        log('Redis: unavailable (no REDIS_URL and no redis-server): skipping worker processes');
      } else {
        result.redis = 'used';
        try {
          await selectBackend(process.env.TFJS_BACKEND);
          const m = await loadModelFolder('credit', path.join(SAMPLES, 'credit'));
          const spec = buildSpec(loadConfig({}), m, { method: 'kernel-shap', parameters: { nSamples, seed } });
          const opened = await openInput(input, { nFeatures: m.model.nFeatures, inputShape: m.inputShape, space: m.space }, ['approved']);
          const items: Item[] = [];
          for await (const it of opened.items(0)) items.push(it);
          for (const procs of o.processes ?? [1, 2]) {
            const tag = `bench-${process.pid}-${procs}`;
            const env = {
              ...process.env,
              REDIS_URL: url,
              JOBS_PREFIX: tag,
              JOBS_QUEUE: tag,
              WORKER_THREADS: '1',
              MODEL_DIR: SAMPLES,
              LOG_LEVEL: 'info',
            };
            const workers = Array.from({ length: procs }, () => startWorker(env));
            const runner = new RedisJobRunner({ url, prefix: tag, queueName: tag, ttlSeconds: 600, attempts: 3, pollMs: 100 });
            try {
              await Promise.all(workers.map((w) => w.ready));
              await runner.start();
              const t0 = Date.now();
              const job = await runner.submit(spec, items);
              const done = await runner.waitFor(job.id, 3_600_000);
              const seconds = (Date.now() - t0) / 1000;
              const run: JobsBenchRun = {
                mode: 'processes',
                workers: procs,
                rows: done.rowsDone,
                seconds,
                rowsPerSecond: done.rowsDone / seconds,
              };
              runs.push(run);
              log(
                `Redis/BullMQ, ${procs} worker process(es): ${done.rowsDone} rows in ${seconds.toFixed(1)} s = ${run.rowsPerSecond.toFixed(1)} rows/s (model load on first chunk included)`,
              );
            } finally {
              await runner.stop();
              for (const w of workers) w.child.kill('SIGTERM');
              await Promise.all(workers.map((w) => new Promise((r) => (w.child.exitCode !== null ? r(null) : w.child.on('exit', r)))));
            }
          }
          (m.model as { dispose?: () => void }).dispose?.();
        } finally {
          await dev?.stop();
        }
      }
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return result;
}

if (/bench[\\/]jobsBench\.ts$/.test(process.argv[1] ?? '')) {
  const { values } = parseArgs({
    options: { rows: { type: 'string' }, 'n-samples': { type: 'string' }, 'no-redis': { type: 'boolean' } },
  });
  const ns = values['n-samples'];
  const r = await jobsBench({
    rows: values.rows ? Number(values.rows) : undefined,
    nSamples: ns === undefined || ns === 'auto' ? 'auto' : Number(ns),
    redis: !values['no-redis'],
    log: (s) => console.log(s),
  });
  console.log(JSON.stringify(r, null, 2));
  process.exit(0);
}
