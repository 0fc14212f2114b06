/**
 * Counterfactual explanations and recourse burden for a served model, without HTTP: POST
 * /v1/models/:name/counterfactuals, its GET chart URL, jobs, and the recourse part of POST /fairness
 * and of the model report. Requests are validated and names resolved here (instances by the shared
 * parser, the desired outcome, the metadata's constraints with the request's on top); the search runs
 * on the executor (a worker thread) with the request's deadline, past which each instance returns what
 * it has found with stopReason "deadline", and stops when the client goes away. A request whose
 * searches would cost more model evaluations than MAX_REQUEST_EVALUATIONS is refused (TOO_EXPENSIVE).
 */
import type { CounterfactualResult, FeatureScale, InstanceCounterfactuals } from '../explainers/counterfactuals/types.js';
import type { Rows } from '../explainers/types.js';
import type { ServedModel } from '../models/served.js';
import type { RecourseBurden } from '../monitoring/fairness/recourse.js';
import { budgetOf, runOptions, type Budget } from './bounds.js';
import type { Service } from './context.js';
import { admit, type Estimate } from './cost.js';
import { counterfactualData, counterfactualTaskOptions, type RecourseRequest } from './counterfactualsTask.js';
import { ServiceError } from './errors.js';
import { layoutOf, toRows } from './instances.js';
import { instanceFromQuery, queryReader, type Query } from './query.js';
import { parseWith } from './schemas/common.js';
import type { CounterfactualParameters, CounterfactualsBody, DesiredBody, RecourseSettings } from './schemas/counterfactuals.js';

/** An instance's counterfactuals as JSON carries them: an open range end (±Infinity) is null. */
export type InstanceCounterfactualsJson = Omit<InstanceCounterfactuals, 'desired'> & {
  desired: { class: number } | { range: [number | null, number | null]; output: number };
};

export interface ServedCounterfactuals {
  model: { name: string; version: string };
  /** One per instance, in request order (named like explain's `explanations`: each is a counterfactual explanation). */
  explanations: InstanceCounterfactualsJson[];
  scales: FeatureScale[];
  referenceEvaluations: number;
  computeMs: number;
  parameters: CounterfactualParameters;
}

export function jsonInstance(r: InstanceCounterfactuals): InstanceCounterfactualsJson {
  const d = r.desired;
  const desired =
    'range' in d ? { range: d.range.map((v) => (Number.isFinite(v) ? v : null)) as [number | null, number | null], output: d.output } : d;
  return { ...r, desired };
}

function checkTabular(m: ServedModel): void {
  if (m.inputShape.length > 1) {
    throw new ServiceError(
      'METHOD_NOT_SUPPORTED',
      `counterfactuals are for tabular models; model "${m.name}" takes an input of shape [${m.inputShape.join(', ')}]`,
    );
  }
}

export interface CounterfactualCallOptions {
  /** When the request arrived (its deadline counts from here). */
  started?: number;
  signal?: AbortSignal;
}

export async function computeCounterfactuals(
  svc: Service,
  m: ServedModel,
  body: CounterfactualsBody,
  options: CounterfactualCallOptions = {},
): Promise<ServedCounterfactuals> {
  const started = options.started ?? Date.now();
  checkTabular(m);
  counterfactualData(m); // NO_REFERENCE_DATA before any work
  const rows = toRows(body.instances, layoutOf(m));
  const p = body.parameters;
  const taskOptions = counterfactualTaskOptions(m, body.desired, p);
  const budget = budgetOf(svc.config, { started, signal: options.signal }, p.deadlineMs);
  admit(svc.config, 'this counterfactuals request', counterfactualsEstimate(m, rows.n, p.maxEvaluations), 'Send fewer instances, or lower parameters.maxEvaluations');
  const result: CounterfactualResult = await svc.executor.run(
    { kind: 'counterfactuals', model: m.name, version: m.version, rows, options: { ...taskOptions, deadline: budget.deadline } },
    runOptions(budget),
  );
  return {
    model: { name: m.name, version: m.version },
    explanations: result.instances.map(jsonInstance),
    scales: result.scales,
    referenceEvaluations: result.referenceEvaluations,
    computeMs: result.computeMs,
    parameters: p,
  };
}

/** The reference rows the searches predict once (scales, plausibility, prototypes). */
const referenceRows = (m: ServedModel): number => (m.reference?.rows ?? m.background)?.n ?? 0;

/** Counterfactual searches of `instances` rows: each stops at maxEvaluations predicted rows; the reference once. */
export function counterfactualsEstimate(m: ServedModel, instances: number, maxEvaluations: number): Estimate {
  return {
    evaluations: instances * (maxEvaluations + 1) + referenceRows(m),
    terms: `${instances} instance(s) x ${maxEvaluations} evaluations + ${referenceRows(m)} reference rows`,
  };
}

/**
 * Recourse burden by `features` sensitive features: per feature, a search of up to maxEvaluations on
 * each of the rows assessed (maxRows at most of `rows`, else of the model's reference set).
 */
export function recourseEstimate(m: ServedModel, features: number, settings: Pick<RecourseSettings, 'maxRows' | 'maxEvaluations'>, rows?: number): Estimate {
  const assessed = Math.min(settings.maxRows, rows ?? referenceRows(m));
  const per = assessed * (settings.maxEvaluations + 1) + referenceRows(m);
  return {
    evaluations: features * per,
    terms: `${features} sensitive feature(s) x (${assessed} rows x ${settings.maxEvaluations} evaluations + ${referenceRows(m)} reference rows)`,
  };
}

export type RecourseBurdenJson = Omit<RecourseBurden, 'favourable'> & { favourable: InstanceCounterfactualsJson['desired'] };

export function jsonBurden(b: RecourseBurden): RecourseBurdenJson {
  const d = b.favourable;
  const favourable =
    'range' in d
      ? { range: d.range.map((v) => (Number.isFinite(v) ? v : null)) as [number | null, number | null], output: d.output ?? 0 }
      : { class: d.class as number };
  return { ...b, favourable };
}

/** JSON's open range ends (null) back to the infinities the charts read. */
export function fromJsonBurden(b: RecourseBurdenJson): RecourseBurden {
  const d = b.favourable;
  return { ...b, favourable: 'range' in d ? { range: [d.range[0] ?? -Infinity, d.range[1] ?? Infinity], output: d.output } : d };
}

/**
 * Recourse burden by each sensitive feature over `rows` (absent: the model's reference, else
 * background, rows), one task per feature, bounded by settings.maxRows, settings.maxEvaluations and
 * the budget's deadline (rows cut short are counted in each burden's `incomplete`); refused with
 * TOO_EXPENSIVE above the per-request budget unless the caller `admitted` it with the rest of its request.
 */
export async function computeRecourse(
  svc: Service,
  m: ServedModel,
  features: string[],
  settings: RecourseSettings,
  budget: Budget,
  rows?: Rows,
  options: { admitted?: boolean } = {},
): Promise<RecourseBurdenJson[]> {
  checkTabular(m);
  counterfactualData(m);
  if (features.length === 0) {
    throw new ServiceError(
      'NO_SENSITIVE_FEATURES',
      `model "${m.name}" declares no sensitive features; name them in sensitiveFeatures (or recourse.sensitiveFeatures)`,
    );
  }
  if (settings.favourable && 'class' in settings.favourable && settings.favourable.class === 'opposite') {
    throw new ServiceError(
      'BAD_DESIRED',
      'recourse.favourable names the favourable outcome: a class (index or name) or a range, not "opposite"',
    );
  }
  if (!options.admitted) {
    admit(svc.config, 'this recourse burden', recourseEstimate(m, features.length, settings, rows?.n), 'Lower recourse.maxRows or recourse.maxEvaluations');
  }
  const out: RecourseBurdenJson[] = [];
  for (const feature of features) {
    const request: RecourseRequest = {
      sensitiveFeature: feature,
      ...(settings.favourable ? { favourable: settings.favourable } : {}),
      seed: settings.seed,
      maxEvaluations: settings.maxEvaluations,
      maxRows: settings.maxRows,
      ...(settings.bootstrap ? { bootstrap: settings.bootstrap } : {}),
      deadline: budget.deadline,
    };
    const burden = await svc.executor.run(
      { kind: 'recourse', model: m.name, version: m.version, ...(rows ? { rows } : {}), request },
      runOptions(budget),
    );
    out.push(jsonBurden(burden));
  }
  return out;
}

/** Query keys of GET /v1/models/:name/counterfactuals.{ext} that are not feature values. */
export const COUNTERFACTUAL_QUERY_KEYS = [
  'class',
  'range',
  'output',
  'k',
  'seed',
  'maxEvaluations',
  'maxChangedFeatures',
  'minPlausibility',
  'neighbours',
  'useGradients',
  'threshold',
  'immutable',
  'deadlineMs',
  'format',
  'expires',
  'sig',
  // The pinned model version (server/route.ts resolves it).
  'version',
] as const;

/**
 * The GET chart URL's query as the POST body it stands for: one instance by feature name (features
 * left out take the background median, reported back; a name that collides with a key is passed as
 * f.<name>), the desired outcome as `class` (index, name or "opposite") or `range` ("lo,hi", either
 * end empty for open) with `output`, and the parameters by name (`immutable` comma-separated).
 */
export function counterfactualsBodyFromQuery(
  svc: Service,
  query: Query,
  m: ServedModel,
): { body: CounterfactualsBody; defaulted: string[] } {
  const reserved = new Set<string>(COUNTERFACTUAL_QUERY_KEYS);
  const features: Query = {};
  const options: Query = {};
  for (const [key, v] of Object.entries(query)) (reserved.has(key) ? options : features)[key] = v;
  const { row, defaulted } = instanceFromQuery(features, m);
  const q = queryReader(options);
  const cls = q.string('class');
  const range = q.string('range');
  if (cls !== undefined && range !== undefined) throw new ServiceError('BAD_DESIRED', 'give class or range, not both');
  let desired: DesiredBody | undefined;
  if (cls !== undefined) desired = { class: /^\d+$/.test(cls) ? Number(cls) : cls };
  else if (range !== undefined) {
    const ends = range.split(',');
    const end = (s: string | undefined) => {
      if (s === undefined || s.trim() === '') return null;
      const v = Number(s);
      if (!Number.isFinite(v)) throw new ServiceError('BAD_DESIRED', `range="${range}": each end is a number or empty (open)`);
      return v;
    };
    if (ends.length !== 2) throw new ServiceError('BAD_DESIRED', `range="${range}" must be "lo,hi" (either end may be empty)`);
    const output = q.string('output');
    desired = {
      range: [end(ends[0]), end(ends[1])],
      ...(output !== undefined ? { output: /^\d+$/.test(output) ? Number(output) : output } : {}),
    };
  } else if (q.string('output') !== undefined) throw new ServiceError('BAD_DESIRED', 'output goes with range: range=lo,hi&output=<name>');
  const useGradients = q.string('useGradients');
  if (useGradients !== undefined && useGradients !== 'true' && useGradients !== 'false')
    throw new ServiceError('BAD_PARAMETER', 'query parameter useGradients must be true or false');
  const parameters = Object.fromEntries(
    Object.entries({
      k: q.number('k'),
      seed: q.number('seed'),
      maxEvaluations: q.number('maxEvaluations'),
      maxChangedFeatures: q.number('maxChangedFeatures'),
      minPlausibility: q.number('minPlausibility'),
      neighbours: q.number('neighbours'),
      useGradients: useGradients === undefined ? undefined : useGradients === 'true',
      threshold: q.number('threshold'),
      immutable: q.string('immutable')?.split(','),
      deadlineMs: q.number('deadlineMs'),
    }).filter(([, v]) => v !== undefined),
  );
  const body = parseWith(
    svc.schemas.counterfactuals,
    { instances: [row], ...(desired ? { desired } : {}), parameters },
    '',
    'BAD_PARAMETER',
  );
  return { body, defaulted };
}
