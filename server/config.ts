/**
 * Every setting comes from an environment variable with a default; the README lists them all.
 */
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

export interface Config {
  port: number;
  modelDir: string;
  backend?: string;
  bodyLimit: string;
  logLevel: string;
  maxInstances: number;
  maxNSamples: number;
  maxSteps: number;
  maxBackgroundRows: number;
  maxRepeats: number;
  maxImportanceRows: number;
  defaultDeadlineMs: number;
  maxDeadlineMs: number;
  cacheMaxBytes: number;
  /** Worker threads for explanations; 0 runs them on the main thread. */
  workers: number;
  maxQueue: number;
  /** Raw API_KEYS; parsed by server/auth.ts. Empty: no authentication. */
  apiKeys?: string;
  /** HMAC key for signed chart URLs; default derived from API_KEYS. */
  signingKey?: string;
  /** Where explanation records (for permalinks) and other state live. */
  dataDir: string;
  /** Cache-Control max-age of GET chart URLs. */
  chartMaxAgeSeconds: number;
  /** Origins allowed by CORS ("*" for any); empty: no CORS headers. */
  corsOrigins: string[];
  /** Largest body of POST /v1/jobs. */
  jobsBodyLimit: string;
}

function int(env: NodeJS.ProcessEnv, name: string, dflt: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return dflt;
  const v = Number(raw);
  if (!Number.isFinite(v) || v < 0) throw new Error(`environment variable ${name}="${raw}" must be a non-negative number`);
  return Math.floor(v);
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  return {
    port: int(env, 'PORT', 8080),
    modelDir: path.resolve(env.MODEL_DIR || path.join(here, '..', 'samples', 'models')),
    backend: env.TFJS_BACKEND || undefined,
    bodyLimit: env.BODY_LIMIT || '5mb',
    logLevel: env.LOG_LEVEL || 'info',
    maxInstances: int(env, 'MAX_INSTANCES', 1000),
    maxNSamples: int(env, 'MAX_NSAMPLES', 100_000),
    maxSteps: int(env, 'MAX_STEPS', 4096),
    maxBackgroundRows: int(env, 'MAX_BACKGROUND_ROWS', 10_000),
    maxRepeats: int(env, 'MAX_REPEATS', 100),
    maxImportanceRows: int(env, 'MAX_IMPORTANCE_ROWS', 100_000),
    defaultDeadlineMs: int(env, 'DEADLINE_MS', 10_000),
    maxDeadlineMs: int(env, 'MAX_DEADLINE_MS', 120_000),
    cacheMaxBytes: int(env, 'CACHE_MAX_BYTES', 64 * 1024 * 1024),
    workers: int(env, 'WORKERS', os.availableParallelism()),
    maxQueue: int(env, 'MAX_QUEUE', 64),
    apiKeys: env.API_KEYS || undefined,
    signingKey: env.SIGNING_KEY || undefined,
    dataDir: path.resolve(env.DATA_DIR || path.join(here, '..', '.data')),
    chartMaxAgeSeconds: int(env, 'CHART_MAX_AGE', 300),
    jobsBodyLimit: env.JOBS_BODY_LIMIT || '100mb',
    corsOrigins: (env.CORS_ORIGINS || '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  };
}
