/**
 * Global effects for a served model, without HTTP: POST /v1/models/:name/effects, its GET chart URL
 * and the model report. The request is validated here (the body's shape, parameters as BAD_PARAMETER,
 * rows and outputs by the shared parsers), computed on the executor (computeEffects in a worker
 * thread, on the model's reference, else background, rows unless the request sends data), and cached
 * whole: the key hashes the model version, the canonical request and the data, so equal keys mean
 * equal answers. A request past its deadline fails with DEADLINE_EXCEEDED (nothing partial is cached).
 */
import type { EffectsRequest, EffectsResult } from '../explainers/effects/index.js';
import type { ServedModel } from '../models/served.js';
import { ExplanationCache, hashRows } from './cache.js';
import type { Service } from './context.js';
import { ServiceError } from './errors.js';
import { layoutOf, resolveOutputs, toRows } from './instances.js';
import { parseWith } from './schemas/common.js';
import type { EffectsBody } from './schemas/effects.js';

export type ServedEffects = { model: { name: string; version: string } } & EffectsResult & { cached: boolean };

export interface EffectsCallOptions {
  /** When the request arrived (its deadline counts from here). */
  started?: number;
  signal?: AbortSignal;
}

export async function computeServedEffects(
  svc: Service,
  m: ServedModel,
  body: EffectsBody,
  options: EffectsCallOptions = {},
): Promise<{ effects: ServedEffects; cacheState: 'HIT' | 'MISS' }> {
  const started = options.started ?? Date.now();
  const { deadlineMs, ...parameters } = parseWith(svc.schemas.effectsParameters, body.parameters ?? {}, 'parameters', 'BAD_PARAMETER');
  if (body.data && body.data.length === 0) {
    throw new ServiceError('EMPTY_DATA', "data is empty: send at least one row, or leave data out to use the model's reference data");
  }
  const data = body.data ? toRows(body.data, layoutOf(m), 'data') : undefined;
  const outputs = body.outputs === undefined || body.outputs === 'all' ? 'all' : resolveOutputs(body.outputs, m.space)!;
  const request: EffectsRequest = {
    kind: body.kind,
    features: body.features,
    outputs,
    ...(data ? { data } : {}),
    ...(body.grid ? { grid: body.grid } : {}),
    parameters,
  };
  const key = ExplanationCache.contextHash({
    what: 'effects',
    model: m.name,
    version: m.version,
    kind: body.kind,
    features: body.features,
    outputs,
    grid: body.grid ?? null,
    parameters,
    data: data ? hashRows(data) : 'default',
  });
  const deadline = started + (deadlineMs ?? svc.config.defaultDeadlineMs);
  const { value, hit } = await svc.effectsCache.get(key, () =>
    svc.executor.run(
      {
        kind: 'effects',
        model: m.name,
        version: m.version,
        request,
        limits: { maxRows: svc.config.maxImportanceRows },
        deadline,
      },
      { signal: options.signal },
    ),
  );
  return { effects: { model: { name: m.name, version: m.version }, ...value, cached: hit }, cacheState: hit ? 'HIT' : 'MISS' };
}
