/**
 * What a worker thread (or the inline executor) runs for the `counterfactuals` and `recourse` tasks:
 * the explainer over the worker's own copy of the model, with the model's reference (else background)
 * rows for scales, ranges and plausibility, and the constraints its metadata.json declares. Also the
 * pieces the request side resolves before a task is sent (the desired outcome, the constraints), so
 * both sides read names the same way. Nothing here imports the Service: service/tasks.ts runs it.
 */
import { counterfactuals } from '../explainers/counterfactuals/counterfactuals.js';
import type {
  CounterfactualOptions,
  CounterfactualResult,
  DesiredOutcome,
  FeatureConstraint,
} from '../explainers/counterfactuals/types.js';
import { ExplainerInputError, type Rows } from '../explainers/types.js';
import type { ServedModel } from '../models/served.js';
import { groupBy, resolveSensitive } from '../monitoring/fairness/groups.js';
import { recourseBurden, type RecourseBurden } from '../monitoring/fairness/recourse.js';
import { pickRows, sampleRows } from '../monitoring/sample.js';
import { counterfactualOptionsFromMetadata } from './counterfactualConstraints.js';
import type { CounterfactualParameters, DesiredBody } from './schemas/counterfactuals.js';

/** The rows that give a model's counterfactuals their scales, ranges and plausibility: reference, else background. */
export function counterfactualData(m: Pick<ServedModel, 'name' | 'reference' | 'background'>): Rows {
  const rows = m.reference?.rows ?? m.background;
  if (!rows) {
    throw new ExplainerInputError(
      'NO_REFERENCE_DATA',
      `model "${m.name}" has no reference or background set in its metadata: counterfactuals need data rows for feature scales, ranges and plausibility; add one to the model folder`,
    );
  }
  return rows;
}

/** desired as the explainer takes it: class names and output names resolved, null ends as infinities. */
export function resolveDesired(m: Pick<ServedModel, 'metadata' | 'space'>, desired: DesiredBody | undefined): DesiredOutcome | undefined {
  if (!desired) return undefined;
  if ('class' in desired) {
    if (typeof desired.class === 'number' || desired.class === 'opposite') return { class: desired.class };
    const classes = m.metadata?.classes ?? [];
    const at = classes.indexOf(desired.class);
    if (at < 0) {
      throw new ExplainerInputError(
        'BAD_DESIRED',
        `desired.class "${desired.class}" is not a class of this model; classes: ${classes.join(', ') || '(none named: use an index)'}`,
      );
    }
    return { class: at };
  }
  let output = 0;
  if (typeof desired.output === 'string') {
    output = m.space.outputNames.indexOf(desired.output);
    if (output < 0)
      throw new ExplainerInputError(
        'BAD_DESIRED',
        `desired.output "${desired.output}" is not an output of this model; outputs: ${m.space.outputNames.join(', ')}`,
      );
  } else if (desired.output !== undefined) output = desired.output;
  const [lo, hi] = desired.range;
  return { range: [lo ?? -Infinity, hi ?? Infinity], output };
}

/** metadata.json's constraints, overridden field by field by the request's `constraints`, plus its `immutable` list. */
export function constraintsFor(m: Pick<ServedModel, 'metadata'>, p: Pick<CounterfactualParameters, 'constraints' | 'immutable'>) {
  const fromMeta = counterfactualOptionsFromMetadata(m.metadata);
  const constraints: Record<string, FeatureConstraint> = { ...fromMeta.constraints };
  for (const [name, c] of Object.entries(p.constraints ?? {})) constraints[name] = { ...(constraints[name] ?? {}), ...c };
  for (const name of p.immutable ?? []) constraints[name] = { ...(constraints[name] ?? {}), immutable: true };
  return { ...fromMeta, constraints };
}

/** The explainer's options a task carries: plain data, without the model's space, data and signal. */
export type CounterfactualTaskOptions = Omit<CounterfactualOptions, 'space' | 'reference' | 'signal' | 'referencePredictions'>;

/** Validated parameters and desired outcome to the task's options (names resolved against the model). */
export function counterfactualTaskOptions(
  m: Pick<ServedModel, 'metadata' | 'space'>,
  desired: DesiredBody | undefined,
  p: CounterfactualParameters,
): CounterfactualTaskOptions {
  const { constraints, groupNames, task } = constraintsFor(m, p);
  const resolved = resolveDesired(m, desired);
  return {
    ...(resolved ? { desired: resolved } : {}),
    ...(task ? { task } : {}),
    ...(p.threshold !== undefined ? { threshold: p.threshold } : {}),
    constraints,
    groupNames,
    k: p.k,
    seed: p.seed,
    maxEvaluations: p.maxEvaluations,
    ...(p.maxChangedFeatures !== undefined ? { maxChangedFeatures: p.maxChangedFeatures } : {}),
    minPlausibility: p.minPlausibility,
    neighbours: p.neighbours,
    useGradients: p.useGradients,
  };
}

/** The `counterfactuals` task: the explainer on the model's own data. */
export function runCounterfactuals(
  m: ServedModel,
  rows: Rows,
  options: CounterfactualTaskOptions,
  signal?: AbortSignal,
): Promise<CounterfactualResult> {
  return counterfactuals(m.model, rows, { ...options, space: m.space, reference: counterfactualData(m), signal });
}

export interface RecourseRequest {
  /** A sensitive feature or one-hot group; default: the model's first declared sensitive feature. */
  sensitiveFeature?: string;
  favourable?: DesiredBody;
  seed?: number;
  maxEvaluations?: number;
  /** Rows assessed at most: a seeded sample of the rows above it. */
  maxRows?: number;
  bootstrap?: { n?: number; seed?: number; confidence?: number };
  /** Epoch milliseconds: searches stop there and the burden says how many rows were cut short. */
  deadline?: number;
}

/** A group's label with the metadata's category names where it has them ("sex=female"). */
function groupLabels(m: ServedModel, name: string, kind: string, grouping: ReturnType<typeof groupBy>): string[] {
  const features = m.metadata?.features ?? [];
  return grouping.groups.map((g) => {
    const key = g.key[name];
    if (kind === 'one-hot') {
      const column = features.find((f) => f.name === key);
      const label = column?.categories?.find((c) => c.value === 1)?.label;
      return label ? `${name}=${label}` : g.label;
    }
    const label = features.find((f) => f.name === name)?.categories?.find((c) => c.value === key)?.label;
    return label ? `${name}=${label}` : g.label;
  });
}

/**
 * The `recourse` task: recourse burden over `rows` (default the model's reference, else background,
 * set), grouped by a sensitive feature, with the model's metadata constraints.
 */
export async function runRecourse(
  m: ServedModel,
  request: RecourseRequest = {},
  rows?: Rows,
  signal?: AbortSignal,
): Promise<RecourseBurden> {
  const reference = counterfactualData(m);
  let assessed = rows ?? reference;
  if (request.maxRows !== undefined && assessed.n > request.maxRows)
    assessed = pickRows(assessed, sampleRows(assessed.n, request.maxRows, request.seed ?? 0));
  const name = request.sensitiveFeature ?? m.metadata?.sensitiveFeatures[0];
  if (!name)
    throw new ExplainerInputError('NO_SENSITIVE_FEATURES', 'the model declares no sensitive feature: name one in sensitiveFeatures');
  const { constraints, groupNames, task } = constraintsFor(m, {});
  const features = m.metadata?.features ?? [];
  const info = {
    types: features.map((f) => f.type),
    groups: groupNames.map((g) => ({ name: g, columns: features.flatMap((f, j) => (f.group === g ? [j] : [])) })),
  };
  const [attr] = resolveSensitive([name], m.space, info);
  const grouping = groupBy(assessed, attr, m.space.featureNames);
  const favourable = resolveDesired(m, request.favourable);
  return recourseBurden(m.model, {
    space: m.space,
    rows: assessed,
    reference,
    groups: { feature: name, labels: groupLabels(m, name, attr.kind, grouping), index: grouping.index },
    constraints,
    groupNames,
    ...(task ? { task } : {}),
    ...(favourable ? { favourable } : {}),
    seed: request.seed ?? 0,
    ...(request.maxEvaluations !== undefined ? { maxEvaluations: request.maxEvaluations } : {}),
    ...(request.bootstrap ? { bootstrap: request.bootstrap } : {}),
    ...(request.deadline !== undefined ? { deadline: request.deadline } : {}),
    signal,
  });
}
