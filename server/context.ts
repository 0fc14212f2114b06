import type { Logger } from 'pino';
import type { Config } from './config.js';
import type { ExplanationCache } from './cache.js';
import type { Registry } from './registry.js';
import type { Schemas } from './schemas.js';
import type { Executor } from './tasks.js';
import type { Metrics } from './metrics.js';
import type { ExplanationRecords } from './records.js';

/** Everything a route needs, built once per app. */
export interface AppContext {
  registry: Registry;
  config: Config;
  backend: string;
  logger: Logger;
  schemas: Schemas;
  cache: ExplanationCache;
  executor: Executor;
  /** Set by createApp once the context exists. */
  metrics?: Metrics;
  startedAt: number;
  /** Persisted explain requests behind explanation ids. */
  records?: ExplanationRecords;
  signingKey?: Buffer;
}
