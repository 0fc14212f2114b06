/**
 * Counterfactual explanations and recourse burden for a served model, without HTTP: POST
 * /v1/models/:name/counterfactuals, its GET chart URL, jobs, and the recourse part of POST /fairness
 * and of the model report. Requests are validated and names resolved here (instances by the shared
 * parser, the desired outcome, the metadata's constraints with the request's on top); the search runs
 * on the executor (a worker thread) with the request's deadline, past which each instance returns what
 * it has found with stopReason "deadline".
 */
import type { CounterfactualResult, FeatureScale, InstanceCounterfactuals } from '../explainers/counterfactuals/types.js';
import type { Rows } from '../explainers/types.js';
import type { ServedModel } from '../models/served.js';
import type { RecourseBurden } from '../monitoring/fairness/recourse.js';
import type { Service } from './context.js';
import { counterfactualData, counterfactualTaskOptions, type RecourseRequest } from './counterfactualsTask.js';
import { ServiceError } from './errors.js';
import { layoutOf, toRows } from './instances.js';
import type { CounterfactualParameters, CounterfactualsBody, RecourseSettings } from './schemas/counterfactuals.js';

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
  const deadline = started + (p.deadlineMs ?? svc.config.defaultDeadlineMs);
  const result: CounterfactualResult = await svc.executor.run(
    { kind: 'counterfactuals', model: m.name, version: m.version, rows, options: { ...taskOptions, deadline } },
    { signal: options.signal },
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

export type RecourseBurdenJson = Omit<RecourseBurden, 'favourable'> & { favourable: InstanceCounterfactualsJson['desired'] };

export function jsonBurden(b: RecourseBurden): RecourseBurdenJson {
  const d = b.favourable;
  const favourable =
    'range' in d
      ? { range: d.range.map((v) => (Number.isFinite(v) ? v : null)) as [number | null, number | null], output: d.output ?? 0 }
      : { class: d.class === 'opposite' ? -1 : d.class };
  return { ...b, favourable };
}

/**
 * Recourse burden by each sensitive feature over `rows` (absent: the model's reference, else
 * background, rows), one task per feature, bounded by settings.maxRows, settings.maxEvaluations and
 * the deadline (rows cut short are counted in each burden's `incomplete`).
 */
export async function computeRecourse(
  svc: Service,
  m: ServedModel,
  features: string[],
  settings: RecourseSettings,
  deadline: number,
  rows?: Rows,
  signal?: AbortSignal,
): Promise<RecourseBurdenJson[]> {
  checkTabular(m);
  counterfactualData(m);
  if (features.length === 0) {
    throw new ServiceError(
      'NO_SENSITIVE_FEATURES',
      `model "${m.name}" declares no sensitive features; name them in sensitiveFeatures (or recourse.sensitiveFeatures)`,
    );
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
      deadline,
    };
    const burden = await svc.executor.run(
      { kind: 'recourse', model: m.name, version: m.version, ...(rows ? { rows } : {}), request },
      { signal },
    );
    out.push(jsonBurden(burden));
  }
  return out;
}
