/**
 * The service's settings (limits, cache, persisted records, workers), each from an environment
 * variable with a default; server/config.ts adds the HTTP ones. The README lists them all.
 */
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_SERVABLE_RATIO, DEFAULT_SERVABLE_THRESHOLD } from '../explainers/amortised/validation.js';

/**
 * The project's root: the nearest folder above this file with a package.json. The same from the
 * TypeScript sources (service/) and from the compiled output (dist/service/).
 */
export const PROJECT_ROOT = (() => {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
    dir = up;
  }
  return dir;
})();

export interface ServiceConfig {
  modelDir: string;
  backend?: string;
  maxInstances: number;
  maxNSamples: number;
  /** Noisy copies (smoothgrad) and drawn baselines (expected-gradients) per instance. */
  maxSamples: number;
  maxSteps: number;
  maxBackgroundRows: number;
  maxRepeats: number;
  maxImportanceRows: number;
  defaultDeadlineMs: number;
  maxDeadlineMs: number;
  cacheMaxBytes: number;
  /** Worker threads for model work; 0 runs it on the main thread. */
  workers: number;
  maxQueue: number;
  /** Where explanation records (for permalinks) live: outside the repository by default. */
  dataDir: string;
  /** Explanation records kept at most (oldest removed first), their total bytes, and their age. */
  recordsMaxCount: number;
  recordsMaxBytes: number;
  recordsTtlSeconds: number;
  /** Rows one POST /v1/jobs may carry. */
  maxJobInstances: number;
  /** Largest validated mean relative error (max |error| per row / attribution range) at which amortised SHAP is served. */
  amortisedThreshold: number;
  amortisedMaxRatio: number;
  /** Model evaluations one request may be estimated to cost before it is refused (TOO_EXPENSIVE); 0: no limit. */
  maxRequestEvaluations: number;
  /** A worker thread whose memory stays above this many MB after a task is replaced; 0: never. */
  workerRecycleMb: number;
  /** Nice increment of worker threads (Linux): the HTTP thread answers first when they saturate the cores. */
  workerNice: number;
  /**
   * Shared state of the API replicas (REDIS_URL): level two of the explanation cache, the single
   * flight across replicas, explanation records and live windows. Absent: each process alone.
   */
  redisUrl?: string;
  /** Key prefix of that state (REDIS_PREFIX). */
  redisPrefix: string;
  /** Level two's TTL, total bytes of values and entries (CACHE_SHARED_TTL_SECONDS, _MAX_BYTES, _MAX_COUNT). */
  cacheSharedTtlSeconds: number;
  cacheSharedMaxBytes: number;
  cacheSharedMaxCount: number;
  /** Expiry of a computation's lock across replicas, renewed while it runs (FLIGHT_LOCK_MS). */
  flightLockMs: number;
  /** Rows in a model's live window (LIVE_WINDOW_ROWS). */
  liveWindowRows: number;
  /** Seconds between scans of MODEL_DIR for new models and versions (MODEL_POLL_SECONDS; 0: never). */
  modelPollSeconds: number;
  /** Seconds a replaced or removed version is still served to pinned requests and permalinks (MODEL_DRAIN_SECONDS). */
  modelDrainSeconds: number;
}

export function int(env: NodeJS.ProcessEnv, name: string, dflt: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return dflt;
  const v = Number(raw);
  if (!Number.isFinite(v) || v < 0) throw new Error(`environment variable ${name}="${raw}" must be a non-negative number`);
  return Math.floor(v);
}

/**
 * The default DATA_DIR: the XDG state directory ($XDG_STATE_HOME, else ~/.local/state) under
 * tfjs-explainer, so permalinks survive restarts and nothing is written into the repository; the
 * system's temporary directory when there is no home.
 */
export function defaultDataDir(env: NodeJS.ProcessEnv = process.env): string {
  const home = env.HOME || os.homedir();
  const state = env.XDG_STATE_HOME || (home ? path.join(home, '.local', 'state') : '');
  return state ? path.join(state, 'tfjs-explainer') : path.join(os.tmpdir(), 'tfjs-explainer-data');
}

export const SAMPLE_MODELS = path.join(PROJECT_ROOT, 'samples', 'models');

/** A number in [min, max] from the environment, or the default. */
export function fraction(env: NodeJS.ProcessEnv, name: string, dflt: number, min = 0, max = 1): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return dflt;
  const v = Number(raw);
  if (!Number.isFinite(v) || v < min || v > max) throw new Error(`environment variable ${name}="${raw}" must be a number from ${min} to ${max}`);
  return v;
}

export function loadServiceConfig(env: NodeJS.ProcessEnv = process.env): ServiceConfig {
  return {
    modelDir: path.resolve(env.MODEL_DIR || SAMPLE_MODELS),
    backend: env.TFJS_BACKEND || undefined,
    maxInstances: int(env, 'MAX_INSTANCES', 1000),
    maxNSamples: int(env, 'MAX_NSAMPLES', 100_000),
    maxSamples: int(env, 'MAX_SAMPLES', 1024),
    maxSteps: int(env, 'MAX_STEPS', 4096),
    maxBackgroundRows: int(env, 'MAX_BACKGROUND_ROWS', 10_000),
    maxRepeats: int(env, 'MAX_REPEATS', 100),
    maxImportanceRows: int(env, 'MAX_IMPORTANCE_ROWS', 100_000),
    defaultDeadlineMs: int(env, 'DEADLINE_MS', 10_000),
    maxDeadlineMs: int(env, 'MAX_DEADLINE_MS', 120_000),
    cacheMaxBytes: int(env, 'CACHE_MAX_BYTES', 64 * 1024 * 1024),
    workers: int(env, 'WORKERS', os.availableParallelism()),
    maxQueue: int(env, 'MAX_QUEUE', 64),
    dataDir: path.resolve(env.DATA_DIR || defaultDataDir(env)),
    recordsMaxCount: int(env, 'RECORDS_MAX_COUNT', 100_000),
    recordsMaxBytes: int(env, 'RECORDS_MAX_BYTES', 256 * 1024 * 1024),
    recordsTtlSeconds: int(env, 'RECORDS_TTL_SECONDS', 30 * 24 * 3600),
    maxJobInstances: int(env, 'JOBS_MAX_INSTANCES', 1_000_000),
    amortisedThreshold: fraction(env, 'AMORTISED_THRESHOLD', DEFAULT_SERVABLE_THRESHOLD),
    amortisedMaxRatio: fraction(env, 'AMORTISED_MAX_RATIO', DEFAULT_SERVABLE_RATIO, 0, 1000),
    maxRequestEvaluations: int(env, 'MAX_REQUEST_EVALUATIONS', 100_000_000),
    workerRecycleMb: int(env, 'WORKER_RECYCLE_MB', 1024),
    workerNice: int(env, 'WORKER_NICE', 10),
    redisUrl: env.REDIS_URL || undefined,
    redisPrefix: env.REDIS_PREFIX || 'tfjs-explainer',
    cacheSharedTtlSeconds: int(env, 'CACHE_SHARED_TTL_SECONDS', 24 * 3600),
    cacheSharedMaxBytes: int(env, 'CACHE_SHARED_MAX_BYTES', 256 * 1024 * 1024),
    cacheSharedMaxCount: int(env, 'CACHE_SHARED_MAX_COUNT', 1_000_000),
    flightLockMs: Math.max(100, int(env, 'FLIGHT_LOCK_MS', 10_000)),
    liveWindowRows: Math.max(1, int(env, 'LIVE_WINDOW_ROWS', 5000)),
    modelPollSeconds: int(env, 'MODEL_POLL_SECONDS', 10),
    modelDrainSeconds: int(env, 'MODEL_DRAIN_SECONDS', 300),
  };
}
