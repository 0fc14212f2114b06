import type { Logger } from 'pino';
import type { JobRunner } from '../jobs/types.js';
import type { Service } from '../service/context.js';
import type { Config } from './config.js';
import type { Metrics } from './metrics.js';

/** What the HTTP routes share, built once per app: the service, and HTTP's own pieces. */
export interface AppContext {
  svc: Service;
  config: Config;
  backend: string;
  logger: Logger;
  metrics: Metrics;
  signingKey?: Buffer;
  /** Batch jobs; absent: the /v1/jobs routes answer 404. */
  jobs?: JobRunner;
}
