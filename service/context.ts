/**
 * The service as a value: everything a request needs, built once (per app, per test), with no
 * HTTP in it. server/ builds one per app and hands it to its routes; jobs/ and the CLI use the
 * pieces they need (schemas, planning, tasks).
 */
import path from 'node:path';
import { LRUCache } from 'lru-cache';
import { pino, type Logger } from 'pino';
import type { Explanation, InstanceExplanation } from '../explainers/types.js';
import type { Registry, ServedModel } from '../models/served.js';
import type { DriftReport } from '../monitoring/drift/index.js';
import type { Section } from '../render/html.js';
import { ExplanationCache } from './cache.js';
import type { ServiceConfig } from './config.js';
import { ServiceError } from './errors.js';
import { inlineExecutor, type Executor } from './executor.js';
import { ExplanationRecords } from './records.js';
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
  records: ExplanationRecords;
  observer: ServiceObserver;
  startedAt: number;
  /** The model report's sections fixed by a model version (service/report.ts). */
  reportSections: LRUCache<string, Promise<Section[]>>;
  /** The reference side of attribution drift, per model version and settings (service/drift.ts). */
  referenceAttributions: LRUCache<string, Promise<Explanation>>;
  /** Global effects by request (service/effects.ts): a quarter of CACHE_MAX_BYTES. */
  effectsCache: ResultCache<EffectsResult>;
}

export function createService(deps: ServiceDeps): Service {
  const config = deps.config;
  return {
    registry: deps.registry,
    config,
    logger: deps.logger ?? pino({ level: 'silent' }),
    schemas: requestSchemas(config),
    cache: new ExplanationCache(config.cacheMaxBytes),
    executor: deps.executor ?? inlineExecutor(deps.registry),
    records: new ExplanationRecords(path.join(config.dataDir, 'explanations'), {
      maxCount: config.recordsMaxCount,
      maxBytes: config.recordsMaxBytes,
      ttlSeconds: config.recordsTtlSeconds,
    }),
    observer: deps.observer ?? {},
    startedAt: Date.now(),
    reportSections: new LRUCache({ max: 64 }),
    referenceAttributions: new LRUCache({ max: 64 }),
    effectsCache: new ResultCache(Math.floor(config.cacheMaxBytes / 4)),
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
