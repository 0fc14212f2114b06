/**
 * Every setting comes from an environment variable with a default; the README lists them all. The
 * service's own (limits, cache, records, workers) are read by service/config.ts; these are HTTP's.
 */
import { int, loadServiceConfig, type ServiceConfig } from '../service/config.js';

export interface Config extends ServiceConfig {
  port: number;
  bodyLimit: string;
  logLevel: string;
  /** Raw API_KEYS; parsed by server/auth.ts. Empty: no authentication. */
  apiKeys?: string;
  /** HMAC key for signed chart URLs; default derived from API_KEYS. */
  signingKey?: string;
  /** Cache-Control max-age of GET chart URLs. */
  chartMaxAgeSeconds: number;
  /** Origins allowed by CORS ("*" for any); empty: no CORS headers. */
  corsOrigins: string[];
  /** Largest JSON body of POST /v1/jobs. */
  jobsBodyLimit: string;
  /** Largest streamed (CSV / NDJSON) upload to POST /v1/jobs, decompressed. */
  jobsUploadLimit: string;
  /** Key for GET /metrics (besides the API keys); none: /metrics is open unless API_KEYS is set. */
  metricsKey?: string;
  /** Node's http server: the whole request (headers and body) must arrive within this (ms; 0: none). */
  requestTimeoutMs: number;
  /** Node's http server: the headers must arrive within this (ms). */
  headersTimeoutMs: number;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  return {
    ...loadServiceConfig(env),
    port: int(env, 'PORT', 8080),
    bodyLimit: env.BODY_LIMIT || '5mb',
    logLevel: env.LOG_LEVEL || 'info',
    apiKeys: env.API_KEYS || undefined,
    signingKey: env.SIGNING_KEY || undefined,
    chartMaxAgeSeconds: int(env, 'CHART_MAX_AGE', 300),
    jobsBodyLimit: env.JOBS_BODY_LIMIT || '100mb',
    jobsUploadLimit: env.JOBS_UPLOAD_LIMIT || '2gb',
    metricsKey: env.METRICS_KEY || undefined,
    requestTimeoutMs: int(env, 'REQUEST_TIMEOUT_MS', 300_000),
    headersTimeoutMs: int(env, 'HEADERS_TIMEOUT_MS', 20_000),
    corsOrigins: (env.CORS_ORIGINS || '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  };
}
