/**
 * The Express app as a value: tests build it with their own registry and never listen.
 * server/main.ts reads the config, loads the models and listens.
 */
import express from 'express';
import { pino, type Logger } from 'pino';
import { randomUUID } from 'node:crypto';
import { ExplanationCache } from './cache.js';
import type { Config } from './config.js';
import type { AppContext } from './context.js';
import { errorMiddleware, notFound } from './middleware.js';
import type { Registry } from './registry.js';
import { schemas } from './schemas.js';
import { inlineExecutor, type Executor } from './tasks.js';
import { createMetrics } from './metrics.js';
import { docsPage, openApiDocument } from './openapi.js';
import { modelRoutes } from './routes/models.js';
import { explainRoutes } from './routes/explain.js';
import { importanceRoutes } from './routes/importance.js';
import { reportRoutes } from './routes/report.js';
import { authMiddleware, parseApiKeys } from './auth.js';
import cors from 'cors';
import path from 'node:path';
import { ExplanationRecords } from './records.js';
import { signingKey } from './signing.js';
import { embedRoutes } from './routes/embed.js';
import { fairnessRoutes, fairnessSchema } from './routes/fairness.js';
import { driftRoutes, driftSchema } from './routes/drift.js';
import { registerDriftMetrics } from './live.js';
import { jobRoutes } from '../jobs/routes.js';
import type { JobRunner } from '../jobs/runner.js';

export interface AppDeps {
  registry: Registry;
  config: Config;
  backend: string;
  logger?: Logger;
  /** Where explanations run; default inline on this thread (server/main.ts passes a worker pool). */
  executor?: Executor;
  /** Batch jobs (/v1/jobs); absent: the routes are not mounted. */
  jobRunner?: JobRunner;
}

export function createApp(deps: AppDeps): express.Express & { context: AppContext } {
  const logger = deps.logger ?? pino({ level: 'silent' });
  const ctx: AppContext = {
    registry: deps.registry,
    config: deps.config,
    backend: deps.backend,
    logger,
    schemas: schemas(deps.config),
    cache: new ExplanationCache(deps.config.cacheMaxBytes),
    executor: deps.executor ?? inlineExecutor(deps.registry),
    startedAt: Date.now(),
    records: new ExplanationRecords(path.join(deps.config.dataDir, 'explanations')),
    signingKey: signingKey(deps.config.signingKey, deps.config.apiKeys),
  };
  ctx.metrics = createMetrics({ backend: ctx.backend, cache: ctx.cache, executor: ctx.executor });
  registerDriftMetrics(ctx.metrics.registry);
  const app = express();
  app.disable('x-powered-by');
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
  app.use(ctx.metrics.middleware);
  app.get('/metrics', async (_req, res) => {
    res.setHeader('Content-Type', ctx.metrics!.registry.contentType);
    res.send(await ctx.metrics!.registry.metrics());
  });
  // Job bodies carry whole datasets: their own, larger limit.
  app.use('/v1/jobs', express.json({ limit: deps.config.jobsBodyLimit, type: () => true, strict: false }));
  // Any JSON content type (or none) is parsed as JSON, so clients that forget the header get a useful error.
  app.use(express.json({ limit: deps.config.bodyLimit, type: () => true, strict: false }));

  app.get('/healthz', (_req, res) => {
    res.json({
      status: 'ok',
      backend: ctx.backend,
      models: ctx.registry.models.size,
      loadErrors: ctx.registry.errors,
      uptimeSeconds: Math.round((Date.now() - ctx.startedAt) / 1000),
      cache: ctx.cache.stats(),
    });
  });
  const doc = openApiDocument(ctx.schemas, '1', { fairness: fairnessSchema(deps.config), drift: driftSchema(deps.config) });
  app.get('/openapi.json', (_req, res) => res.json(doc));
  const docs = docsPage(doc);
  app.get('/docs', (_req, res) => res.type('html').send(docs));
  app.get('/readyz', (_req, res) => {
    const ready = ctx.registry.models.size > 0;
    res.status(ready ? 200 : 503).json({ ready, models: [...ctx.registry.models.keys()] });
  });

  if (deps.config.corsOrigins.length) {
    const any = deps.config.corsOrigins.includes('*');
    app.use(
      cors({
        origin: any ? '*' : deps.config.corsOrigins,
        exposedHeaders: ['ETag', 'X-Cache', 'X-Request-Id', 'X-Defaulted-Features'],
        maxAge: 600,
      }),
    );
  }
  app.use(authMiddleware(parseApiKeys(deps.config.apiKeys), ctx.signingKey));
  app.use(embedRoutes(ctx));
  app.use(modelRoutes(ctx));
  app.use(explainRoutes(ctx));
  app.use(importanceRoutes(ctx));
  app.use(reportRoutes(ctx));
  if (deps.jobRunner) app.use(jobRoutes(ctx, deps.jobRunner));
  app.use(fairnessRoutes(ctx));
  app.use(driftRoutes(ctx));
  app.use(notFound);
  app.use(errorMiddleware(logger));
  return Object.assign(app, { context: ctx });
}
