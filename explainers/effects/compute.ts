/**
 * computeEffects: one request for global effects (what POST /v1/models/:name/effects will carry),
 * checked, planned and run over the explainers of this folder. Pure: no HTTP, no tfjs; the caller
 * passes the model, its feature space, the parsed request and what it knows of the model (default
 * data, background, metadata types and group names, default link).
 *
 * - Everything the caller can get wrong (unknown feature, empty data, a grid or a cost over the limits,
 *   unknown parameters) is an ExplainerInputError raised before the first model call. The cost check
 *   counts the model rows the request needs (grid points x rows per feature for PD/ICE, 2-4 per row for
 *   ALE, coalitions x background x rows for exact interactions) against limits.maxModelRows.
 * - Data default to context.defaultData (the model's reference or background rows); above maxRows
 *   rows, a seeded sample without replacement is used (defaults per kind below).
 * - Deadline (context.deadline, epoch ms) and AbortSignal are checked before every model call. Past
 *   the deadline the call fails with DEADLINE_EXCEEDED (details.modelEvaluations says how far it got)
 *   rather than returning part of the features: effects are cached per request, and a result missing
 *   features would look complete. An aborted signal rejects with the signal's reason.
 */
import { ExplainerInputError, type Explanation, type FeatureSpace, type Model, type Rows } from '../types.js';
import { isLinkName, type LinkName } from '../link.js';
import { accumulatedLocalEffects, accumulatedLocalEffects2d } from './ale.js';
import { shapDependence } from './dependence.js';
import { checkData, featureCatalogue, featureValues, resolveFeature, subsampleRows, type EffectFeature, type FeatureInfo } from './features.js';
import { aleEdges } from './grid.js';
import { MAX_INTERACTION_PLAYERS } from './interactions.js';
import { gridFor, individualConditionalExpectation, partialDependence, partialDependence2d } from './partialDependence.js';
import { EFFECT_KINDS, type Effect, type EffectKind, type EffectsResult } from './types.js';

export interface EffectsParameters {
  /** identity | logit; default context.link, else identity. */
  link?: LinkName;
  /** PD/ICE: numeric grid points from the data (default 50; 20 per axis in 2-D). */
  resolution?: number;
  /** PD/ICE: quantile range of a data grid (default [0.05, 0.95]). */
  percentiles?: [number, number];
  /** ALE: quantile bins (default 20; 10 per axis in 2-D). Dependence: bins of the trend (default 20). */
  bins?: number;
  /** ICE: subtract each curve's value at the first grid point (default false). */
  centered?: boolean;
  /** ALE of categorical features: 'similarity' (default) or 'value'. */
  categoryOrder?: 'similarity' | 'value';
  /** Rows used at most (seeded sample above). Defaults: pd 10,000; ice 1,000; ale 50,000; dependence 200 (Kernel SHAP per row; exact: 200). */
  maxRows?: number;
  /** Seed of the row sample, Kernel SHAP and k-means. Default 0. */
  seed?: number;
  /** Dependence: Kernel SHAP budget per row (default 'auto'). */
  nSamples?: number | 'auto';
  /** Dependence: 'approximate' (default) or 'exact' interactions. */
  interactions?: 'approximate' | 'exact';
  /** Dependence: colour by this feature instead of choosing one. */
  interactionFeature?: string;
  /** Dependence, exact interactions: most players (default 10, at most 16) and background rows kept (default 50). */
  maxPlayers?: number;
  maxBackground?: number;
}

export interface EffectsRequest {
  kind: EffectKind;
  /** Feature (or one-hot group) names; a pair [a, b] asks for a 2-D effect (pd and ale only). */
  features: (string | [string, string])[];
  /** Output indices or names, or 'all' (default: all). */
  outputs?: (number | string)[] | 'all';
  /** Rows to average over; default context.defaultData. */
  data?: Rows;
  /** Grid per feature name: values (pd, ice; one-hot: member names) or bin edges (ale). */
  grid?: Record<string, unknown[]>;
  parameters?: EffectsParameters;
}

export interface EffectsLimits {
  /** Features (or pairs) per request. Default 50. */
  maxFeatures: number;
  /** Grid points per feature axis. Default 256. */
  maxGridPoints: number;
  /** Model rows one request may cost (checked before any call). Default 20,000,000. */
  maxModelRows: number;
  /** Largest maxRows a request may ask for. Default 100,000. */
  maxRows: number;
}

export const DEFAULT_EFFECTS_LIMITS: EffectsLimits = { maxFeatures: 50, maxGridPoints: 256, maxModelRows: 20_000_000, maxRows: 100_000 };

export interface EffectsContext extends FeatureInfo {
  /** The model's reference (or background) rows: the data when the request has none. */
  defaultData?: Rows;
  /** Background for Kernel SHAP / exact interactions (dependence). */
  background?: Rows;
  /** Attributions of the request's data rows, computed elsewhere (dependence; skips Kernel SHAP). */
  explanation?: Explanation;
  /** Default link (model metadata). */
  link?: LinkName;
  deadline?: number;
  signal?: AbortSignal;
  limits?: Partial<EffectsLimits>;
}

const DEFAULT_MAX_ROWS: Record<EffectKind, number> = { pd: 10_000, ice: 1_000, ale: 50_000, dependence: 200 };
const DEFAULT_MAX_ROWS_EXACT = 200;

const ALLOWED: Record<EffectKind, string[]> = {
  pd: ['link', 'resolution', 'percentiles', 'maxRows', 'seed'],
  ice: ['link', 'resolution', 'percentiles', 'centered', 'maxRows', 'seed'],
  ale: ['link', 'bins', 'categoryOrder', 'maxRows', 'seed'],
  dependence: ['link', 'bins', 'maxRows', 'seed', 'nSamples', 'interactions', 'interactionFeature', 'maxPlayers', 'maxBackground'],
};

function fail(code: string, message: string, details?: unknown): never {
  throw new ExplainerInputError(code, message, details);
}

function resolveOutputs(model: Model, space: FeatureSpace, outputs: EffectsRequest['outputs']): number[] {
  if (outputs === undefined || outputs === 'all') return Array.from({ length: model.nOutputs }, (_, i) => i);
  if (!Array.isArray(outputs) || outputs.length === 0) fail('BAD_OUTPUTS', 'outputs must be "all" or a non-empty list of output indices or names');
  const names = space.outputNames ?? [];
  const out = outputs.map((o) => {
    if (typeof o === 'number' && Number.isInteger(o) && o >= 0 && o < model.nOutputs) return o;
    if (typeof o === 'string' && names.includes(o)) return names.indexOf(o);
    return fail('UNKNOWN_OUTPUT', `no output ${JSON.stringify(o)}: the model's outputs are ${names.map((n, i) => `${i} (${n})`).join(', ') || `0..${model.nOutputs - 1}`}`, {
      output: o,
    });
  });
  if (new Set(out).size !== out.length) fail('BAD_OUTPUTS', 'outputs lists an output twice');
  return out;
}

function positiveInt(v: unknown, name: string, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max) fail('BAD_PARAMETER', `${name} must be an integer from 1 to ${max}, got ${JSON.stringify(v)}`);
  return v;
}

/**
 * An effects request checked and planned, before any model call: what computeEffects will run and
 * its cost. `modelRows` counts grid points x rows (PD/ICE), 3-4 per row (ALE) and the exact
 * interactions' coalitions; `kernelShapRows` the rows a dependence plot explains with Kernel SHAP (0
 * when none), whose cost depends on its sampling budget.
 */
export function planEffects(model: Model, space: FeatureSpace, request: EffectsRequest, context: EffectsContext = {}) {
  const limits = { ...DEFAULT_EFFECTS_LIMITS, ...context.limits };
  if (!request || typeof request !== 'object') fail('BAD_PARAMETER', 'an effects request is an object with kind and features');
  const { kind } = request;
  if (!EFFECT_KINDS.includes(kind)) fail('BAD_PARAMETER', `kind must be one of ${EFFECT_KINDS.join(', ')}, got ${JSON.stringify(kind)}`);
  const p: EffectsParameters = request.parameters ?? {};
  for (const key of Object.keys(p)) {
    if (!ALLOWED[kind].includes(key)) fail('BAD_PARAMETER', `unknown parameter "${key}" for kind ${kind}; allowed: ${ALLOWED[kind].join(', ')}`, { parameter: key });
  }
  const link = p.link ?? context.link ?? 'identity';
  if (!isLinkName(link)) fail('BAD_PARAMETER', `link must be 'identity' or 'logit', got ${JSON.stringify(link)}`);
  const seed = p.seed ?? 0;
  if (!Number.isInteger(seed)) fail('BAD_PARAMETER', `seed must be an integer, got ${JSON.stringify(seed)}`);
  const outputs = resolveOutputs(model, space, request.outputs);

  // Features: names, or pairs for 2-D.
  if (!Array.isArray(request.features) || request.features.length === 0) fail('BAD_FEATURE', 'features must list at least one feature name (or a [name, name] pair for a 2-D effect)');
  if (request.features.length > limits.maxFeatures) {
    fail('LIMIT_EXCEEDED', `${request.features.length} features asked for; at most ${limits.maxFeatures} per request`, { maximum: limits.maxFeatures });
  }
  const catalogue = featureCatalogue(space, model.nFeatures, context);
  const items = request.features.map((item) => {
    if (Array.isArray(item)) {
      if (kind !== 'pd' && kind !== 'ale') fail('BAD_FEATURE', `2-D effects (feature pairs) are available for pd and ale, not ${kind}`);
      if (item.length !== 2) fail('BAD_FEATURE', `a 2-D effect names exactly two features, got ${JSON.stringify(item)}`);
      const pair = [resolveFeature(catalogue, item[0]), resolveFeature(catalogue, item[1])] as [EffectFeature, EffectFeature];
      if (pair[0] === pair[1]) fail('BAD_FEATURE', `a 2-D effect needs two different features, got "${pair[0].name}" twice`);
      for (const f of pair) {
        if (kind === 'ale' && f.kind !== 'numeric') {
          fail('BAD_FEATURE', `2-D ALE needs two numeric features; "${f.name}" is ${f.kind}: use 2-D partial dependence for it`, { feature: f.name });
        }
      }
      return pair;
    }
    return resolveFeature(catalogue, item);
  });
  const keys = items.map((it) => (Array.isArray(it) ? `${it[0].name}\u0000${it[1].name}` : it.name));
  if (new Set(keys).size !== keys.length) fail('BAD_FEATURE', 'features lists the same feature (or pair) twice');
  const named = new Set(items.flatMap((it) => (Array.isArray(it) ? it.map((f) => f.name) : [it.name])));
  for (const name of Object.keys(request.grid ?? {})) {
    if (!named.has(name)) fail('BAD_GRID', `grid is given for "${name}", which is not among the features asked for`, { feature: name });
  }
  if (request.grid && kind === 'dependence') fail('BAD_GRID', 'dependence takes no grid: it plots the rows themselves');

  // Data.
  const exact = kind === 'dependence' && p.interactions === 'exact';
  const source = request.data ?? context.defaultData;
  if (!source) fail('EMPTY_DATA', 'no data: send "data" rows, or configure reference or background data for the model');
  const all = checkData(model, source, request.data ? 'data' : 'the default data');
  const maxRows = positiveInt(p.maxRows ?? (exact ? DEFAULT_MAX_ROWS_EXACT : DEFAULT_MAX_ROWS[kind]), 'maxRows', limits.maxRows);
  if (context.explanation && all.n > maxRows) {
    fail('LIMIT_EXCEEDED', `the attributions given cover ${all.n} rows, above maxRows ${maxRows}: raise maxRows or explain fewer rows`);
  }
  const { rows: data, indices } = subsampleRows(all, maxRows, seed);
  const n = data.n;

  // Cost, before any model call.
  let cost = 0;
  const gridChoice = (f: EffectFeature, resolution: number | undefined) =>
    gridFor(f, featureValues(f, data), { grid: request.grid?.[f.name], resolution, percentiles: p.percentiles, maxGridPoints: limits.maxGridPoints }).length;
  for (const it of items) {
    if (kind === 'pd' || kind === 'ice') {
      cost += Array.isArray(it) ? gridChoice(it[0], p.resolution ?? 20) * gridChoice(it[1], p.resolution ?? 20) * n : gridChoice(it, p.resolution) * n;
    } else if (kind === 'ale') {
      if (Array.isArray(it)) cost += 4 * n;
      else {
        if (it.kind === 'numeric' && request.grid?.[it.name] === undefined) {
          const bins = positiveInt(p.bins ?? 20, 'bins', 1000);
          if (aleEdges(featureValues(it, data), bins).length - 1 > limits.maxGridPoints) fail('GRID_TOO_LARGE', `bins ${bins} is above the limit of ${limits.maxGridPoints}`);
        }
        cost += 3 * n;
      }
    }
  }
  if (kind === 'dependence' && exact) {
    const M = catalogue.features.length;
    const players = positiveInt(p.maxPlayers ?? 10, 'maxPlayers', MAX_INTERACTION_PLAYERS);
    if (M <= players) cost += 2 ** M * Math.min(context.background?.n ?? 0, p.maxBackground ?? 50) * n;
  }
  const kernelShapRows = kind === 'dependence' && !exact && !context.explanation ? n : 0;
  return { kind, p, link, seed, outputs, items, data, indices, n, maxRows, limits, modelRows: cost, kernelShapRows };
}

/** Runs one effects request. See the file comment for validation, defaults, limits and deadlines. */
export async function computeEffects(model: Model, space: FeatureSpace, request: EffectsRequest, context: EffectsContext = {}): Promise<EffectsResult> {
  const started = performance.now();
  const { kind, p, link, seed, outputs, items, data, indices, n, maxRows, limits, modelRows: cost } = planEffects(model, space, request, context);
  if (cost > limits.maxModelRows) {
    fail(
      'GRID_TOO_LARGE',
      `this request needs ${cost.toLocaleString('en-US')} model rows, above the limit of ${limits.maxModelRows.toLocaleString('en-US')}: lower the grid resolution, maxRows or the number of features`,
      { modelRows: cost, maximum: limits.maxModelRows },
    );
  }

  const common = {
    space,
    outputs,
    link,
    featureTypes: context.featureTypes,
    groupNames: context.groupNames,
    deadline: context.deadline,
    signal: context.signal,
  };
  const effects: Effect[] = [];
  let evaluations = 0;
  const add = (list: Effect[]) => {
    effects.push(...list);
    if (list.length) evaluations += list[0].modelEvaluations;
  };
  if (kind === 'dependence') {
    const r = await shapDependence(model, data, items.map((it) => (it as EffectFeature).name), {
      ...common,
      explanation: context.explanation,
      background: context.background,
      nSamples: p.nSamples,
      seed,
      interactions: p.interactions,
      interactionFeature: p.interactionFeature,
      bins: p.bins,
      maxPlayers: p.maxPlayers,
      maxBackground: p.maxBackground,
    });
    effects.push(...r.effects);
    evaluations += r.modelEvaluations;
  } else {
    for (const it of items) {
      if (Array.isArray(it)) {
        const pair: [string, string] = [it[0].name, it[1].name];
        const grids = { grid: request.grid?.[pair[0]], grid2: request.grid?.[pair[1]] };
        if (kind === 'pd') add(await partialDependence2d(model, data, pair, { ...common, ...grids, resolution: p.resolution, percentiles: p.percentiles, maxGridPoints: limits.maxGridPoints }));
        else add(await accumulatedLocalEffects2d(model, data, pair, { ...common, ...grids, bins: p.bins }));
        continue;
      }
      const choice = { grid: request.grid?.[it.name], resolution: p.resolution, percentiles: p.percentiles, maxGridPoints: limits.maxGridPoints };
      if (kind === 'pd') add(await partialDependence(model, data, it.name, { ...common, ...choice }));
      else if (kind === 'ice') {
        const curves = await individualConditionalExpectation(model, data, it.name, { ...common, ...choice, centered: p.centered });
        // Curves name rows of the data as sent, not of the sample.
        for (const c of curves) c.rowIndices = c.rowIndices.map((i) => indices[i]);
        add(curves);
      } else {
        const order = it.kind === 'numeric' ? undefined : p.categoryOrder;
        add(await accumulatedLocalEffects(model, data, it.name, { ...common, grid: request.grid?.[it.name], bins: p.bins, categoryOrder: order }));
      }
    }
  }
  return {
    kind,
    effects,
    modelEvaluations: evaluations,
    computeMs: performance.now() - started,
    rows: n,
    link,
    parameters: { ...p, link, seed, maxRows },
  };
}
