/**
 * Latency as a statistic: Prometheus histograms per route, per model and explainer, plus the cache,
 * the worker queue and the tfjs backend. One registry per app, so tests do not share counters.
 */
import client from 'prom-client';
import type { RequestHandler } from 'express';
import type { ExplanationCache } from './cache.js';
import type { Executor } from './tasks.js';

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export interface Metrics {
  registry: client.Registry;
  httpDuration: client.Histogram<'route' | 'method' | 'status'>;
  explainDuration: client.Histogram<'model' | 'method'>;
  modelEvaluations: client.Histogram<'model' | 'method'>;
  queueWait: client.Histogram<'kind'>;
  middleware: RequestHandler;
}

export function createMetrics(opts: { backend: string; cache: ExplanationCache; executor: Executor }): Metrics {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry });
  const httpDuration = new client.Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request latency by route pattern, method and status',
    labelNames: ['route', 'method', 'status'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const explainDuration = new client.Histogram({
    name: 'explanation_duration_seconds',
    help: 'Compute time of one instance explanation (cache misses only), by model and method',
    labelNames: ['model', 'method'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const modelEvaluations = new client.Histogram({
    name: 'explanation_model_evaluations',
    help: 'Model rows evaluated per instance explanation, by model and method',
    labelNames: ['model', 'method'] as const,
    buckets: [1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7],
    registers: [registry],
  });
  const queueWait = new client.Histogram({
    name: 'worker_queue_wait_seconds',
    help: 'Time a task waited for a worker thread',
    labelNames: ['kind'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  new client.Gauge({
    name: 'tfjs_backend_info',
    help: 'The tfjs backend in use (value 1, backend as label)',
    labelNames: ['backend'] as const,
    registers: [registry],
    collect() {
      this.set({ backend: opts.backend }, 1);
    },
  });
  new client.Gauge({
    name: 'explanation_cache_hits_total',
    help: 'Instance explanations served from the cache or from a computation already in flight',
    registers: [registry],
    collect() {
      this.set(opts.cache.hits);
    },
  });
  new client.Gauge({
    name: 'explanation_cache_misses_total',
    help: 'Instance explanations that had to be computed',
    registers: [registry],
    collect() {
      this.set(opts.cache.misses);
    },
  });
  new client.Gauge({
    name: 'explanation_cache_hit_ratio',
    help: 'hits / (hits + misses) since start',
    registers: [registry],
    collect() {
      const { hits, misses } = opts.cache;
      this.set(hits + misses ? hits / (hits + misses) : 0);
    },
  });
  new client.Gauge({
    name: 'explanation_cache_bytes',
    help: 'Approximate bytes held by the explanation cache',
    registers: [registry],
    collect() {
      this.set(opts.cache.stats().bytes);
    },
  });
  new client.Gauge({
    name: 'explanation_cache_entries',
    help: 'Entries in the explanation cache',
    registers: [registry],
    collect() {
      this.set(opts.cache.stats().entries);
    },
  });
  new client.Gauge({
    name: 'worker_queue_depth',
    help: 'Tasks waiting for a worker thread',
    registers: [registry],
    collect() {
      this.set(opts.executor.stats().queued);
    },
  });
  new client.Gauge({
    name: 'worker_tasks_running',
    help: 'Tasks running on worker threads',
    registers: [registry],
    collect() {
      this.set(opts.executor.stats().running);
    },
  });

  opts.executor.observeWait = (kind, seconds) => queueWait.observe({ kind }, seconds);

  const middleware: RequestHandler = (req, res, next) => {
    const end = httpDuration.startTimer();
    res.on('finish', () => {
      // The route pattern, never the raw URL: label values stay bounded.
      const route = req.route?.path ? `${req.baseUrl}${req.route.path}` : res.statusCode === 404 ? 'unmatched' : req.path;
      end({ route: String(route), method: req.method, status: String(res.statusCode) });
    });
    next();
  };
  return { registry, httpDuration, explainDuration, modelEvaluations, queueWait, middleware };
}
