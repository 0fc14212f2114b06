/**
 * Global effects for a served model, without HTTP: POST /v1/models/:name/effects, its GET chart URL
 * and the model report. The request is validated here (the body's shape, parameters as BAD_PARAMETER,
 * rows and outputs by the shared parsers), computed on the executor (computeEffects in a worker
 * thread, on the model's reference, else background, rows unless the request sends data), and cached
 * whole: the key hashes the model version, the canonical request and the data, so equal keys mean
 * equal answers. A request past its deadline fails with DEADLINE_EXCEEDED (nothing partial is cached);
 * one whose model rows (grid points x rows, Kernel SHAP for a dependence plot) exceed
 * MAX_REQUEST_EVALUATIONS is refused before any model call (TOO_EXPENSIVE).
 */
import { DEFAULT_MAX_BACKGROUND } from '../explainers/defaults.js';
import { EFFECT_KINDS, planEffects, type EffectKind, type EffectsRequest, type EffectsResult } from '../explainers/effects/index.js';
import type { ServedModel } from '../models/served.js';
import { ExplanationCache, hashRows } from './cache.js';
import { budgetOf, runOptions } from './bounds.js';
import type { Service } from './context.js';
import { admit, kernelShapEstimate, playerCount, sumEstimates, type Estimate } from './cost.js';
import { effectsContext } from './effectsTask.js';
import { ServiceError } from './errors.js';
import { layoutOf, resolveOutputs, toRows } from './instances.js';
import { queryReader, type Query } from './query.js';
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
  const budget = budgetOf(svc.config, { started, signal: options.signal }, deadlineMs);
  const limits = { maxRows: svc.config.maxImportanceRows };
  const compute = () => svc.effectsCache.get(key, () => {
    // Admission control (a cached answer costs nothing): checked and planned here, before the task.
    admit(svc.config, `this ${body.kind} effects request`, effectsEstimate(m, request, limits), 'Lower parameters.maxRows, resolution or nSamples, or ask for fewer features');
    return svc.executor.run(
      {
        kind: 'effects',
        model: m.name,
        version: m.version,
        request,
        limits,
        deadline: budget.deadline,
      },
      runOptions(budget),
    );
  });
  let got: Awaited<ReturnType<typeof compute>>;
  for (let attempt = 1; ; attempt++) {
    try {
      got = await compute();
      break;
    } catch (e) {
      // Another request's computation we joined was cancelled (its client left): compute our own.
      if (attempt < 3 && e instanceof ServiceError && e.code === 'CANCELLED' && !options.signal?.aborted) continue;
      throw e;
    }
  }
  const { value, hit } = got;
  return { effects: { model: { name: m.name, version: m.version }, ...value, cached: hit }, cacheState: hit ? 'HIT' : 'MISS' };
}

/**
 * The model rows an effects request needs: as computeEffects counts them before its first call
 * (grid points x rows for PD/ICE, 3-4 per row for ALE, exact interactions), plus the Kernel SHAP of
 * the rows of a dependence plot that brings no attributions.
 */
export function effectsEstimate(m: ServedModel, request: EffectsRequest, limits: { maxRows: number }): Estimate {
  const plan = planEffects(m.model, m.space, request, effectsContext(m, { limits }));
  const grid: Estimate = { evaluations: plan.modelRows, terms: `${plan.modelRows} model rows over ${plan.n} data rows` };
  if (!plan.kernelShapRows || !m.background) return grid;
  const shap = kernelShapEstimate({
    instances: plan.kernelShapRows,
    players: playerCount(m.model.nFeatures, m.space.groups),
    nSamples: plan.p.nSamples ?? 'auto',
    backgroundRows: m.background.n,
    maxBackground: DEFAULT_MAX_BACKGROUND,
  });
  return plan.modelRows ? sumEstimates(grid, shap) : shap;
}

/** Query keys of GET /v1/models/:name/effects.{ext} that are parameters (the rest of the query is refused). */
export const EFFECTS_QUERY_KEYS = [
  'feature',
  'feature2',
  'kind',
  'outputs',
  'grid',
  'resolution',
  'percentiles',
  'bins',
  'centered',
  'categoryOrder',
  'link',
  'seed',
  'maxRows',
  'nSamples',
  'interactions',
  'interactionFeature',
  'maxPlayers',
  'maxBackground',
  'deadlineMs',
] as const;

/** Keys a chart URL may carry besides those: the picture's options, the format, a signature, the pinned version (server/route.ts). */
const CHART_KEYS = new Set(['effect', 'maxCurves', 'format', 'expires', 'sig', 'version']);

/**
 * The GET chart URL's query as the POST body it stands for: one feature (`feature2` makes a 2-D pair),
 * `kind` (default pd), comma-separated `outputs`, `grid` and `percentiles`, and the parameters by name.
 */
export function effectsBodyFromQuery(query: Query): EffectsBody {
  const allowed = new Set<string>([...EFFECTS_QUERY_KEYS, ...CHART_KEYS]);
  const unknown = Object.keys(query).filter((k) => !allowed.has(k));
  if (unknown.length) {
    throw new ServiceError(
      'BAD_PARAMETER',
      `unknown query parameter${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `"${k}"`).join(', ')}; an effects URL takes ${EFFECTS_QUERY_KEYS.join(', ')}`,
    );
  }
  const q = queryReader(query);
  const feature = q.string('feature');
  if (!feature) throw new ServiceError('BAD_FEATURE', 'feature is required: /v1/models/<name>/effects.svg?feature=<feature name>&kind=pd');
  const feature2 = q.string('feature2');
  const list = (key: string) => q.string(key)?.split(',');
  const bool = (key: string) => {
    const v = q.string(key);
    if (v === undefined) return undefined;
    if (v !== 'true' && v !== 'false') throw new ServiceError('BAD_PARAMETER', `query parameter ${key} must be true or false`);
    return v === 'true';
  };
  const grid = list('grid')?.map((v) => (v.trim() !== '' && Number.isFinite(Number(v)) ? Number(v) : v));
  const percentiles = list('percentiles')?.map(Number);
  const parameters = Object.fromEntries(
    Object.entries({
      link: q.string('link'),
      resolution: q.number('resolution'),
      percentiles,
      bins: q.number('bins'),
      centered: bool('centered'),
      categoryOrder: q.string('categoryOrder'),
      seed: q.number('seed'),
      maxRows: q.number('maxRows'),
      nSamples: q.numberOrAuto('nSamples'),
      interactions: q.string('interactions'),
      interactionFeature: q.string('interactionFeature'),
      maxPlayers: q.number('maxPlayers'),
      maxBackground: q.number('maxBackground'),
      deadlineMs: q.number('deadlineMs'),
    }).filter(([, v]) => v !== undefined),
  );
  const kind = q.string('kind') ?? 'pd';
  if (!(EFFECT_KINDS as readonly string[]).includes(kind)) {
    throw new ServiceError('BAD_PARAMETER', `kind must be one of ${EFFECT_KINDS.join(', ')}, got "${kind}"`);
  }
  const outputs = list('outputs')?.map((o) => (/^\d+$/.test(o) ? Number(o) : o));
  return {
    kind: kind as EffectKind,
    features: [feature2 ? [feature, feature2] : feature],
    ...(outputs ? { outputs } : {}),
    ...(grid ? { grid: { [feature]: grid } } : {}),
    parameters,
  };
}
