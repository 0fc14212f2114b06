/**
 * The Express app as a value: tests build it with their own registry and never listen.
 * server/main.ts reads the config, loads the models and listens. HTTP only: what a request does is
 * in service/; the routes (server/routes/*) declare their schemas and model access, and
 * server/route.ts mounts them with the access check.
 */
import cors from 'cors';
import express from 'express';
import { randomUUID } from 'node:crypto';
import { pino, type Logger } from 'pino';
import type { JobRunner } from '../jobs/types.js';
import type { Registry } from '../models/served.js';
import { createService, type Service } from '../service/context.js';
import type { Executor } from '../service/executor.js';
import { authMiddleware, parseApiKeys } from './auth.js';
import type { Config } from './config.js';
import type { AppContext } from './context.js';
import { errorMiddleware, notFound } from './errors.js';
import { createMetrics } from './metrics.js';
import { openApiDocument, type OpenApiDocument } from './openapi.js';
import { mountRoutes, requestControl, type RouteSpec } from './route.js';
import { counterfactualRoutes } from './routes/counterfactuals.js';
import { effectsRoutes } from './routes/effects.js';
import { explainRoutes } from './routes/explain.js';
import { importanceRoutes } from './routes/importance.js';
import { jobRoutes } from './routes/jobs.js';
import { modelRoutes } from './routes/models.js';
import { monitoringRoutes } from './routes/monitoring.js';
import { operationRoutes } from './routes/operations.js';
import { reportRoutes } from './routes/report.js';
import { signingRoutes } from './routes/signing.js';
import { versionRoutes } from './routes/versions.js';
import { signingKey } from './signing.js';

export interface AppDeps {
  registry: Registry;
  config: Config;
  backend: string;
  logger?: Logger;
  /** Where model work runs; default inline on this thread (server/main.ts passes a worker pool). */
  executor?: Executor;
  /** Batch jobs (/v1/jobs); absent: those routes answer 404. */
  jobRunner?: JobRunner;
}

export type App = express.Express & { context: AppContext; routeTable: RouteSpec[]; openapi: OpenApiDocument };

/** Every route of the app, in matching order (more specific paths first where they overlap). */
export function routeTable(app: AppContext, doc: () => OpenApiDocument): RouteSpec[] {
  return [
    ...operationRoutes(app, doc),
    ...modelRoutes(app),
    ...versionRoutes(app),
    ...explainRoutes(app),
    ...importanceRoutes(app),
    ...effectsRoutes(app),
    ...counterfactualRoutes(app),
    ...reportRoutes(app),
    ...monitoringRoutes(app),
    ...signingRoutes(app),
    ...jobRoutes(app),
  ];
}

export function createApp(deps: AppDeps): App {
  const logger = deps.logger ?? pino({ level: 'silent' });
  const config = deps.config;
  const executor = deps.executor;
  const svc: Service = createService({ registry: deps.registry, config, logger, executor });
  const metrics = createMetrics({ backend: deps.backend, cache: svc.cache, executor: svc.executor, shared: svc.shared, registry: svc.registry });
  svc.observer = metrics.observer;
  const ctx: AppContext = {
    svc,
    config,
    backend: deps.backend,
    logger,
    metrics,
    signingKey: signingKey(config.signingKey, config.apiKeys),
    jobs: deps.jobRunner,
  };
  let doc: OpenApiDocument | undefined;
  const routes = routeTable(ctx, () => doc!);
  doc = openApiDocument(routes, '1');

  const app = express();
  app.disable('x-powered-by');
  // Express's last-resort handler never prints a stack trace in production mode.
  app.set('env', 'production');
  app.set('etag', 'strong');
  app.use((req, res, next) => {
    const id = (req.headers['x-request-id'] as string | undefined)?.slice(0, 100) || randomUUID();
    (req as { id?: string }).id = id;
    res.setHeader('X-Request-Id', id);
    const t0 = process.hrtime.bigint();
    res.on('finish', () => {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      logger.info({ id, method: req.method, url: req.originalUrl, status: res.statusCode, ms: Math.round(ms * 10) / 10 }, 'request');
    });
    next();
  });
  app.use(metrics.middleware);
  // CORS first, so that early errors (401, 413, 415 ...) carry its headers for allowed origins too.
  if (config.corsOrigins.length) {
    const any = config.corsOrigins.includes('*');
    app.use(
      cors({
        origin: any ? '*' : config.corsOrigins,
        exposedHeaders: ['ETag', 'X-Cache', 'X-Request-Id', 'X-Defaulted-Features'],
        maxAge: 600,
      }),
    );
  }
  app.use(requestControl(() => metrics.requestsAborted.inc()));
  // Keys before bodies: bodies are read per route (server/route.ts), after the key and the model's scope.
  app.use(authMiddleware(parseApiKeys(config.apiKeys), ctx.signingKey, config.metricsKey));
  app.use(mountRoutes(ctx, routes));
  app.use(notFound);
  app.use(errorMiddleware(logger));
  return Object.assign(app, { context: ctx, routeTable: routes, openapi: doc });
}
