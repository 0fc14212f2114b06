/**
 * Latency as a statistic: Prometheus histograms per route, per model and explainer, plus the cache,
 * the worker queue and the tfjs backend. One registry per app, so tests do not share counters.
 *
 * Label values stay bounded: `route` is the matched route's template, or `unmatched` for a request
 * that matched none (404s, and 401/413/415 answered before routing), never the raw path. Cancelled
 * work (clients that left) and recycled worker threads are counted; the event loop's delay is a
 * histogram (a 10 ms probe timer), next to prom-client's own lag gauges.
 */
import { performance } from 'node:perf_hooks';
import client from 'prom-client';

const DELAY_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const PROBE_MS = 10;
import type { RequestHandler } from 'express';
import type { DriftReport } from '../monitoring/drift/index.js';
import type { Registry } from '../models/served.js';
import type { ExplanationCache } from '../service/cache.js';
import type { SharedRedis } from '../service/redis.js';
import type { ServiceObserver } from '../service/context.js';
import type { Executor } from '../service/executor.js';

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export interface Metrics {
  registry: client.Registry;
  httpDuration: client.Histogram<'route' | 'method' | 'status'>;
  explainDuration: client.Histogram<'model' | 'method'>;
  modelEvaluations: client.Histogram<'model' | 'method'>;
  queueWait: client.Histogram<'kind'>;
  /** Requests whose client closed the connection before the answer was sent. */
  requestsAborted: client.Counter;
  /** Worker tasks stopped because their client left, by task kind and whether queued or running. */
  tasksCancelled: client.Counter<'kind' | 'stage'>;
  middleware: RequestHandler;
  /** The service's hooks into these metrics. */
  observer: ServiceObserver;
}

export function createMetrics(opts: {
  backend: string;
  cache: ExplanationCache;
  executor: Executor;
  /** The replicas' shared state (REDIS_URL). */
  shared?: SharedRedis;
  registry?: Registry;
}): Metrics {
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
  const unconverged = new client.Counter({
    name: 'explanation_unconverged_total',
    help: 'Instance explanations (cache misses) that stopped before converging, by model, method and stop reason (budget: the whole budget spent; deadline: cut short)',
    labelNames: ['model', 'method', 'stop_reason'] as const,
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

  if (opts.cache.shared) sharedGauges(registry, opts.cache, opts.shared);
  if (opts.registry) versionGauges(registry, opts.registry);

  opts.executor.observeWait = (kind, seconds) => queueWait.observe({ kind }, seconds);
  const requestsAborted = new client.Counter({
    name: 'http_requests_aborted_total',
    help: 'Requests whose client closed the connection before the answer was sent (their work is cancelled)',
    registers: [registry],
  });
  const tasksCancelled = new client.Counter({
    name: 'worker_tasks_cancelled_total',
    help: 'Worker tasks stopped because their client went away: removed from the queue, or stopped at the next model call',
    labelNames: ['kind', 'stage'] as const,
    registers: [registry],
  });
  opts.executor.observeCancel = (kind, stage) => tasksCancelled.inc({ kind, stage });
  const recycled = new client.Counter({
    name: 'worker_threads_recycled_total',
    help: 'Worker threads replaced after a task: memory above WORKER_RECYCLE_MB, or a broken tfjs backend',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  opts.executor.observeRecycle = (reason) => recycled.inc({ reason });
  registry.registerMetric(eventLoopDelayHistogram() as unknown as client.Metric);

  const middleware: RequestHandler = (req, res, next) => {
    const end = httpDuration.startTimer();
    res.on('finish', () => {
      // The route template, never the raw URL: label values stay bounded.
      const route = req.route?.path ? `${req.baseUrl}${req.route.path}` : 'unmatched';
      end({ route: String(route), method: req.method, status: String(res.statusCode) });
    });
    next();
  };
  const drift = driftGauges(registry);
  const observer: ServiceObserver = {
    explained(model, method, inst) {
      explainDuration.observe({ model, method }, inst.computeMs / 1000);
      modelEvaluations.observe({ model, method }, inst.modelEvaluations);
      if (!inst.converged) unconverged.inc({ model, method, stop_reason: inst.stopReason ?? 'budget' });
    },
    drift: (model, report, source) => drift(model, report, source),
  };
  return { registry, httpDuration, explainDuration, modelEvaluations, queueWait, requestsAborted, tasksCancelled, middleware, observer };
}

/**
 * The event loop's delay as a cumulative Prometheus histogram. A probe timer runs every 10 ms on the
 * main thread (unref'd) and counts how late each tick came, straight into the buckets: every
 * interval is counted once, a stall included. (perf_hooks.monitorEventLoopDelay was tried first: its
 * percentiles only approximate buckets, and resetting it at a scrape drops the interval that spans
 * the reset, so a stall right after a scrape went unseen.) The loop is the process's, so is the
 * histogram: one probe for every app in the process.
 */
const delay = {
  timer: undefined as NodeJS.Timeout | undefined,
  last: 0,
  buckets: new Float64Array(DELAY_BUCKETS.length),
  count: 0,
  sum: 0,
};

function startDelayProbe(): void {
  if (delay.timer) return;
  delay.last = performance.now();
  delay.timer = setInterval(() => {
    const now = performance.now();
    const late = Math.max(0, now - delay.last - PROBE_MS) / 1000;
    delay.last = now;
    for (let i = 0; i < DELAY_BUCKETS.length; i++) if (late <= DELAY_BUCKETS[i]) delay.buckets[i]++;
    delay.count++;
    delay.sum += late;
  }, PROBE_MS);
  delay.timer.unref();
}

function eventLoopDelayHistogram() {
  const name = 'eventloop_delay_seconds';
  const help =
    'Event-loop delay (a probe timer every 10 ms): how late the main thread ran what was due';
  startDelayProbe();
  return {
    name,
    help,
    type: 'histogram',
    aggregator: 'sum',
    get() {
      return {
        name,
        help,
        type: 'histogram',
        aggregator: 'sum',
        values: [
          ...DELAY_BUCKETS.map((le, i) => ({ labels: { le }, value: delay.buckets[i], metricName: `${name}_bucket` })),
          { labels: { le: '+Inf' }, value: delay.count, metricName: `${name}_bucket` },
          { labels: {}, value: delay.sum, metricName: `${name}_sum` },
          { labels: {}, value: delay.count, metricName: `${name}_count` },
        ],
      };
    },
    reset() {
      /* process-wide: nothing to reset per registry */
    },
  };
}
/**
 * Drift as gauges. Labels: model, feature (or output), source = 'request' (POST /drift) or 'live'
 * (GET /drift/live). Series per model are features x sources: for image models one per pixel.
 */
function driftGauges(registry: client.Registry): (model: string, report: DriftReport, source: 'request' | 'live') => void {
  const labels = ['model', 'feature', 'source'] as const;
  const psi = new client.Gauge({
    name: 'model_feature_psi',
    help: 'Population stability index of an input feature, current vs reference, from the last drift report',
    labelNames: labels,
    registers: [registry],
  });
  const ks = new client.Gauge({
    name: 'model_feature_ks_statistic',
    help: 'Two-sample Kolmogorov-Smirnov statistic of an input feature, current vs reference, from the last drift report',
    labelNames: labels,
    registers: [registry],
  });
  const drifted = new client.Gauge({
    name: 'model_feature_drifted',
    help: '1 when the last drift report flagged the feature (PSI >= alert threshold or Bonferroni-corrected KS p < alpha), else 0',
    labelNames: labels,
    registers: [registry],
  });
  const predictionPsi = new client.Gauge({
    name: 'model_prediction_psi',
    help: 'Population stability index of a model output, current vs reference, from the last drift report',
    labelNames: ['model', 'output', 'source'] as const,
    registers: [registry],
  });
  const ndcg = new client.Gauge({
    name: 'model_attribution_ndcg',
    help: 'NDCG of the current mean |attribution| ranking against the reference ranking (SageMaker Clarify; < 0.9 is drift)',
    labelNames: ['model', 'output', 'source'] as const,
    registers: [registry],
  });
  const driftedCount = new client.Gauge({
    name: 'model_drifted_features',
    help: 'Number of input features flagged as drifted by the last drift report',
    labelNames: ['model', 'source'] as const,
    registers: [registry],
  });
  return (model: string, report: DriftReport, source: 'request' | 'live') => {
    for (const f of report.features) {
      const l = { model, feature: f.feature, source };
      psi.set(l, f.psi);
      ks.set(l, f.ks.statistic);
      drifted.set(l, f.drifted ? 1 : 0);
    }
    for (const p of report.predictions) predictionPsi.set({ model, output: p.feature, source }, p.psi);
    for (const a of report.attributions ?? []) ndcg.set({ model, output: a.output, source }, a.ndcg);
    driftedCount.set({ model, source }, report.summary.drifted.length);
  };
}

/** Level two of the cache and the single flight across replicas (REDIS_URL). */
function sharedGauges(registry: client.Registry, cache: ExplanationCache, shared: SharedRedis | undefined): void {
  const stat = () => cache.shared!.stats();
  const gauge = (name: string, help: string, value: () => number) =>
    new client.Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(value());
      },
    });
  gauge('explanation_cache_shared_hits_total', 'Instance explanations read from the shared level two (Redis)', () => stat().hits);
  gauge(
    'explanation_cache_shared_waits_total',
    'Instance explanations another replica computed while this one waited (single flight across replicas)',
    () => stat().waited,
  );
  gauge(
    'explanation_cache_shared_fallbacks_total',
    'Waits on another replica that ended without a value (holder gone, or result not cacheable), so this replica computed',
    () => stat().fallbacks,
  );
  gauge('explanation_cache_shared_waiting', 'Instance explanations waiting now for another replica\'s computation', () => stat().waiting);
  gauge('explanation_cache_shared_written_bytes_total', 'Encoded bytes this replica wrote to level two', () => stat().writtenBytes);
  gauge('explanation_cache_shared_writes_total', 'Values this replica wrote to level two', () => stat().writes);
  if (!shared) return;
  gauge('shared_state_up', '1 while the shared state on Redis is reachable, else 0 (requests then use this replica alone)', () =>
    shared.up ? 1 : 0,
  );
  new client.Gauge({
    name: 'shared_state_errors_total',
    help: 'Failed operations on the shared state (each degraded to this replica alone), by operation',
    labelNames: ['op'] as const,
    registers: [registry],
    collect() {
      for (const [op, n] of shared.errors) this.set({ op }, n);
    },
  });
}

/** Versions served per model and state (models/watcher.ts). */
function versionGauges(registry: client.Registry, models: Registry): void {
  new client.Gauge({
    name: 'model_versions_served',
    help: 'Versions of each model that requests may pin, by state (serving, draining)',
    labelNames: ['model', 'state'] as const,
    registers: [registry],
    collect() {
      this.reset();
      const names = new Set([...models.models.keys(), ...(models.versions?.keys() ?? [])]);
      for (const name of names) {
        const list = models.versions?.get(name) ?? [];
        const serving = Math.max(list.filter((v) => v.state === 'serving').length, models.models.has(name) ? 1 : 0);
        this.set({ model: name, state: 'serving' }, serving);
        this.set({ model: name, state: 'draining' }, list.filter((v) => v.state === 'draining').length);
      }
    },
  });
}
