/**
 * The service as a value: everything a request needs, built once (per app, per test), with no
 * HTTP in it. server/ builds one per app and hands it to its routes; jobs/ and the CLI use the
 * pieces they need (schemas, planning, tasks).
 */
import path from 'node:path';
import { LRUCache } from 'lru-cache';
import { pino, type Logger } from 'pino';
import type { Explanation, InstanceExplanation } from '../explainers/types.js';
import { findVersion, servedVersions, type Registry, type ServedModel } from '../models/served.js';
import type { DriftReport } from '../monitoring/drift/index.js';
import type { Section } from '../render/html.js';
import { ExplanationCache } from './cache.js';
import { SharedCacheLevel } from './cache/shared.js';
import type { ServiceConfig } from './config.js';
import { ServiceError } from './errors.js';
import { inlineExecutor, type Executor } from './executor.js';
import { localLive, RedisLive, type LiveStore } from './live.js';
import { ExplanationRecords, SharedRecords, type RecordStore } from './records.js';
import { SharedRedis } from './redis.js';
import { ResultCache } from './resultCache.js';
import type { EffectsResult } from '../explainers/effects/types.js';
import { requestSchemas, type RequestSchemas } from './schemas/requests.js';

/** Hooks for the metrics (server/metrics.ts sets them); the service works without. */
export interface ServiceObserver {
  /** One instance explanation was computed (a cache miss). */
  explained?(model: string, method: string, instance: InstanceExplanation): void;
  /** A drift report was computed. */
  drift?(model: string, report: DriftReport, source: 'request' | 'live'): void;
}

export interface ServiceDeps {
  registry: Registry;
  config: ServiceConfig;
  logger?: Logger;
  /** Where model work runs; default inline on this thread. */
  executor?: Executor;
  observer?: ServiceObserver;
}

export interface Service {
  registry: Registry;
  config: ServiceConfig;
  logger: Logger;
  schemas: RequestSchemas;
  cache: ExplanationCache;
  executor: Executor;
  records: RecordStore;
  /** The live windows (drift of live traffic): this process's, or shared on Redis. */
  live: LiveStore;
  /** The replicas' shared state on Redis (REDIS_URL); absent: this process alone. */
  shared?: SharedRedis;
  observer: ServiceObserver;
  startedAt: number;
  /** The model report's sections fixed by a model version (service/report.ts). */
  reportSections: LRUCache<string, Promise<Section[]>>;
  /** The reference side of attribution drift, per model version and settings (service/drift.ts). */
  referenceAttributions: LRUCache<string, Promise<Explanation>>;
  /** Global effects by request (service/effects.ts): a quarter of CACHE_MAX_BYTES; with REDIS_URL a shared level two and single flight across replicas. */
  effectsCache: ResultCache<EffectsResult>;
  /** Versions comparisons computed or running, per (model, from, to) (service/compare.ts). */
  comparisons: LRUCache<string, ComparisonJob>;
  /** The same, shared by the replicas (REDIS_URL): finished comparisons and the lock of the one computing. */
  comparisonsShared?: SharedCacheLevel;
  /** Closes what the service opened (the Redis connections). */
  close(): Promise<void>;
}

/** A versions comparison being computed (value absent) or done. */
export interface ComparisonJob {
  promise: Promise<unknown>;
  value?: unknown;
  startedAt: number;
}

export function createService(deps: ServiceDeps): Service {
  const config = deps.config;
  const logger = deps.logger ?? pino({ level: 'silent' });
  const shared = config.redisUrl ? new SharedRedis({ url: config.redisUrl, prefix: config.redisPrefix, logger }) : undefined;
  const records = new ExplanationRecords(path.join(config.dataDir, 'explanations'), {
    maxCount: config.recordsMaxCount,
    maxBytes: config.recordsMaxBytes,
    ttlSeconds: config.recordsTtlSeconds,
  });
  const level2 = shared
    ? new SharedCacheLevel(shared, {
        ttlSeconds: config.cacheSharedTtlSeconds,
        maxBytes: config.cacheSharedMaxBytes,
        maxCount: config.cacheSharedMaxCount,
        lockMs: config.flightLockMs,
        pollMs: Math.min(250, Math.max(20, Math.floor(config.flightLockMs / 10))),
        // A waiter outlasts any computation it waits for (the largest deadline), then computes itself.
        maxWaitMs: config.maxDeadlineMs + config.flightLockMs,
      })
    : undefined;
  return {
    registry: deps.registry,
    config,
    logger,
    schemas: requestSchemas(config),
    cache: new ExplanationCache(config.cacheMaxBytes, level2),
    executor: deps.executor ?? inlineExecutor(deps.registry),
    records: shared ? new SharedRecords(records, shared) : records,
    live: shared ? new RedisLive(shared, config.liveWindowRows) : localLive(config.liveWindowRows),
    ...(shared ? { shared } : {}),
    observer: deps.observer ?? {},
    startedAt: Date.now(),
    reportSections: new LRUCache({ max: 64 }),
    referenceAttributions: new LRUCache({ max: 64 }),
    effectsCache: new ResultCache(
      Math.floor(config.cacheMaxBytes / 4),
      shared
        ? new SharedCacheLevel(
            shared,
            {
              ttlSeconds: config.cacheSharedTtlSeconds,
              // A quarter of level two's bytes, as level one gives effects a quarter of its own.
              maxBytes: Math.floor(config.cacheSharedMaxBytes / 4),
              maxCount: config.cacheSharedMaxCount,
              lockMs: config.flightLockMs,
              pollMs: Math.min(250, Math.max(20, Math.floor(config.flightLockMs / 10))),
              maxWaitMs: config.maxDeadlineMs + config.flightLockMs,
            },
            'effects',
          )
        : undefined,
    ),
    comparisons: new LRUCache({ max: 64 }),
    ...(shared
      ? {
          comparisonsShared: new SharedCacheLevel(
            shared,
            {
              ttlSeconds: config.cacheSharedTtlSeconds,
              maxBytes: 64 * 1024 * 1024,
              maxCount: 1000,
              lockMs: config.flightLockMs,
              pollMs: 250,
              maxWaitMs: 2 * config.maxDeadlineMs + config.flightLockMs,
            },
            'compare',
          ),
        }
      : {}),
    close: async () => {
      await shared?.close();
    },
  };
}

/** The served model of that name, or MODEL_NOT_FOUND naming what is served (and why a folder failed). */
export function modelByName(registry: Registry, name: string): ServedModel {
  const m = registry.models.get(name);
  if (!m) {
    const known = [...registry.models.keys()];
    const broken = registry.errors.find((e) => e.name === name);
    throw new ServiceError(
      'MODEL_NOT_FOUND',
      broken
        ? `model "${name}" failed to load: ${broken.message}`
        : `no model named "${name}"; served models: ${known.join(', ') || '(none)'}`,
      { known },
    );
  }
  return m;
}

/**
 * The version of `m`'s model a request pins (content hash or versions/ label), or `m` (the default)
 * when it pins none: VERSION_NOT_FOUND naming the served versions, MODEL_VERSION_GONE (410) for a
 * version that was served and is no longer.
 */
export function pinnedVersion(registry: Registry, m: ServedModel, version: string | undefined): ServedModel {
  if (version === undefined || version === m.version) return m;
  const found = findVersion(registry, m.name, version);
  if (found) return found.model;
  if (registry.retired?.get(m.name)?.has(version)) {
    throw new ServiceError('MODEL_VERSION_GONE', `version ${version} of model "${m.name}" is no longer served; it serves ${m.version}`, {
      version,
      served: m.version,
    });
  }
  const versions = servedVersions(registry, m.name).map((v) => v.label ?? v.version);
  throw new ServiceError(
    'VERSION_NOT_FOUND',
    `model "${m.name}" has no version "${version.slice(0, 100)}"; served versions: ${versions.join(', ')} (GET /v1/models/${m.name} lists them)`,
    { versions },
  );
}
