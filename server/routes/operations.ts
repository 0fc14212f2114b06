/**
 * Health, readiness, metrics and the API document: open without keys (server/auth.ts) for
 * orchestrators, except /metrics when METRICS_KEY or API_KEYS is set. With API keys on, /healthz
 * answers its details (models, load errors, sizes) only to a valid key, and `status` to anyone.
 */
import { z } from 'zod';
import { backendFailure } from '../../models/backendHealth.js';
import { healthSchema, readySchema } from '../../service/schemas/responses.js';
import { trusted } from '../auth.js';
import type { AppContext } from '../context.js';
import { docsPage, type OpenApiDocument } from '../openapi.js';
import type { RouteSpec } from '../route.js';
import { htmlPage, json } from './common.js';

const open = { from: 'none', why: 'operations: open to orchestrators and scrapers, no model' } as const;

export function operationRoutes(app: AppContext, doc: () => OpenApiDocument): RouteSpec[] {
  const svc = app.svc;
  return [
    {
      method: 'get',
      path: '/healthz',
      summary: 'Liveness: status; with a key (or keys off) also backend, models, load errors, cache and record store',
      access: open,
      responses: { 200: json('Alive', healthSchema) },
      handle(req, res) {
        if (!trusted(req, !!app.config.apiKeys)) {
          res.json({ status: 'ok' });
          return;
        }
        res.json({
          status: 'ok',
          backend: app.backend,
          models: svc.registry.models.size,
          loadErrors: svc.registry.errors,
          uptimeSeconds: Math.round((Date.now() - svc.startedAt) / 1000),
          cache: svc.cache.stats(),
          records: svc.records.stats(),
        });
      },
    },
    {
      method: 'get',
      path: '/readyz',
      summary:
        "Readiness: at least one model is served, this process's model runtime has not failed, and the job queue (Redis) is reachable; with a key (or keys off) also the models and the reason",
      access: open,
      responses: { 200: json('Ready', readySchema), 503: json('Not ready', readySchema) },
      async handle(req, res) {
        const queue = app.jobs?.health ? await app.jobs.health() : undefined;
        // Models run on this thread (WORKERS=0) and its wasm backend aborted: only a restart helps.
        const failed = backendFailure();
        const ready = svc.registry.models.size > 0 && !failed && (queue?.ready ?? true);
        const reason = failed
          ? 'the model runtime of this process failed (a wasm abort); restart it'
          : svc.registry.models.size === 0
            ? 'no model is served'
            : queue && !queue.ready
              ? 'the job queue (Redis) cannot be reached'
              : undefined;
        const detailed = trusted(req, !!app.config.apiKeys);
        res.status(ready ? 200 : 503).json({
          ready,
          models: detailed ? [...svc.registry.models.keys()] : [],
          ...(detailed && reason ? { reason } : {}),
          ...(queue ? { queue: { kind: app.jobs!.kind, ready: queue.ready, ...(detailed && queue.error ? { error: queue.error } : {}) } } : {}),
          // The replicas' shared state degrades to this process alone while Redis is down: reported, never a reason to be unready.
          ...(svc.shared ? { shared: { ready: svc.shared.up } } : {}),
        });
      },
    },
    {
      method: 'get',
      path: '/metrics',
      summary:
        'Prometheus metrics: latency per route, model and method; cache, queue, cancellations, event-loop delay, drift (METRICS_KEY or an API key when set)',
      access: open,
      responses: { 200: { description: 'Prometheus text exposition', content: { 'text/plain': z.string() } } },
      async handle(_req, res) {
        res.setHeader('Content-Type', app.metrics.registry.contentType);
        res.send(await app.metrics.registry.metrics());
      },
    },
    {
      method: 'get',
      path: '/openapi.json',
      summary: 'This document',
      access: open,
      responses: { 200: json('OpenAPI 3.1', z.record(z.string(), z.unknown())) },
      handle(_req, res) {
        res.json(doc());
      },
    },
    {
      method: 'get',
      path: '/docs',
      summary: 'This document as a page',
      access: open,
      responses: { 200: htmlPage('The API, readable') },
      handle(_req, res) {
        res.type('html').send(docsPage(doc()));
      },
    },
  ];
}
