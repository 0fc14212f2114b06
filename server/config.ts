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
  /** Largest body of POST /v1/jobs. */
  jobsBodyLimit: string;
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
    corsOrigins: (env.CORS_ORIGINS || '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  };
}
