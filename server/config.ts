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

/** "5mb", "2gb", "100kb", "1024" (bytes) as bytes; the units body-parser's limits take (powers of 1024). */
export function byteSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|tb)?\s*$/i.exec(text);
  if (!m) throw new Error(`"${text}" is not a size: write e.g. 5mb, 2gb or a number of bytes`);
  const unit = { b: 0, kb: 1, mb: 2, gb: 3, tb: 4 }[(m[2] ?? 'b').toLowerCase() as 'b'];
  return Math.floor(Number(m[1]) * 1024 ** unit);
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
    jobsUploadLimit: String(byteSize(env.JOBS_UPLOAD_LIMIT || '2gb')),
    metricsKey: env.METRICS_KEY || undefined,
    requestTimeoutMs: int(env, 'REQUEST_TIMEOUT_MS', 300_000),
    headersTimeoutMs: int(env, 'HEADERS_TIMEOUT_MS', 20_000),
    corsOrigins: (env.CORS_ORIGINS || '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  };
}
