/** Health, readiness, metrics and the API document: open without keys (server/auth.ts) for orchestrators and scrapers. */
import { z } from 'zod';
import { backendFailure } from '../../models/backendHealth.js';
import { healthSchema, readySchema } from '../../service/schemas/responses.js';
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
      summary: 'Liveness: backend, models, load errors, cache and record store',
      access: open,
      responses: { 200: json('Alive', healthSchema) },
      handle(_req, res) {
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
      summary: "Readiness: at least one model is served, and this process's model runtime has not failed",
      access: open,
      responses: { 200: json('Ready', readySchema), 503: json('Not ready', readySchema) },
      handle(_req, res) {
        // Models run on this thread (WORKERS=0) and its wasm backend aborted: only a restart helps.
        const failed = backendFailure();
        const ready = svc.registry.models.size > 0 && !failed;
        const reason = failed ? 'the model runtime of this process failed (a wasm abort); restart it' : ready ? undefined : 'no model is served';
        res.status(ready ? 200 : 503).json({ ready, models: [...svc.registry.models.keys()], ...(reason ? { reason } : {}) });
      },
    },
    {
      method: 'get',
      path: '/metrics',
      summary: 'Prometheus metrics: latency histograms per route, model and method; cache, queue, drift gauges',
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
