/**
 * What `POST /v1/models/:name/counterfactuals` and the recourse part of the fairness report need,
 * without HTTP: the request schema, and compute functions from a served model plus a validated
 * request to the JSON answer. The route parses `instances` (arrays in feature order or objects by
 * feature name) into Rows with the shared instance parser, validates the rest with
 * `counterfactualsRequestSchema`, and passes the AbortSignal of the request.
 */
import { z } from 'zod';
import { counterfactuals, COUNTERFACTUAL_DEFAULTS, COUNTERFACTUAL_LIMITS } from '../explainers/counterfactuals/counterfactuals.js';
import { recourseBurden, type RecourseBurden } from '../monitoring/fairness/recourse.js';
import type { DesiredOutcome, FeatureConstraint } from '../explainers/counterfactuals/types.js';
import { groupBy, resolveSensitive } from '../monitoring/fairness/groups.js';
import { ExplainerInputError, type FeatureSpace, type Model, type Rows } from '../explainers/types.js';
import { counterfactualOptionsFromMetadata } from './counterfactualConstraints.js';
import type { Metadata } from '../models/metadata.js';

/** What the compute functions need of a served model (models/repository.ts's LoadedModel has it). */
export interface CounterfactualModel {
  name: string;
  version: string;
  model: Model;
  space: FeatureSpace;
  metadata?: Metadata;
  background?: Rows;
  reference?: { rows: Rows };
}

const constraintSchema = z.strictObject({
  type: z.enum(['numeric', 'integer', 'binary', 'categorical']).optional(),
  immutable: z.boolean().optional(),
  monotone: z.enum(['increasing', 'decreasing']).optional(),
  min: z.number().optional(),
  max: z.number().optional(),
});

const index = z.number().int().min(0);

/** The body minus `instances` (parsed separately into Rows). Limits from the server's config. */
export function counterfactualsRequestSchema(limits: { maxInstances: number; maxDeadlineMs: number }) {
  return z.strictObject({
    instances: z
      .array(z.unknown())
      .min(1, 'instances needs at least one row')
      .max(limits.maxInstances, `instances may hold at most ${limits.maxInstances} rows`),
    desired: z
      .union([
        z.strictObject({ class: z.union([index, z.literal('opposite'), z.string().min(1)]) }),
        // null stands for an open end: [25, null] is "at least 25".
        z.strictObject({
          range: z.tuple([z.number().nullable(), z.number().nullable()]),
          output: z.union([index, z.string().min(1)]).optional(),
        }),
      ])
      .optional(),
    parameters: z
      .strictObject({
        k: z.number().int().min(1).max(COUNTERFACTUAL_LIMITS.k).default(COUNTERFACTUAL_DEFAULTS.k),
        seed: z
          .number()
          .int()
          .min(0)
          .max(2 ** 32 - 1)
          .default(COUNTERFACTUAL_DEFAULTS.seed),
        deadlineMs: z.number().int().positive().max(limits.maxDeadlineMs, `deadlineMs may be at most ${limits.maxDeadlineMs}`).optional(),
        maxEvaluations: z.number().int().min(10).max(COUNTERFACTUAL_LIMITS.maxEvaluations).default(COUNTERFACTUAL_DEFAULTS.maxEvaluations),
        maxChangedFeatures: z.number().int().min(1).optional(),
        minPlausibility: z.number().min(0).max(1).default(COUNTERFACTUAL_DEFAULTS.minPlausibility),
        neighbours: z.number().int().min(1).max(COUNTERFACTUAL_LIMITS.neighbours).default(COUNTERFACTUAL_DEFAULTS.neighbours),
        useGradients: z.boolean().default(true),
        threshold: z.number().optional(),
        /** Features (or one-hot groups) to hold fixed on top of the metadata's immutables. */
        immutable: z.array(z.string().min(1)).max(10_000).optional(),
        /** Per feature or group, replacing the metadata's declarations field by field. */
        constraints: z.record(z.string(), constraintSchema).optional(),
      })
      .default({
        k: COUNTERFACTUAL_DEFAULTS.k,
        seed: COUNTERFACTUAL_DEFAULTS.seed,
        maxEvaluations: COUNTERFACTUAL_DEFAULTS.maxEvaluations,
        minPlausibility: COUNTERFACTUAL_DEFAULTS.minPlausibility,
        neighbours: COUNTERFACTUAL_DEFAULTS.neighbours,
        useGradients: true,
      }),
  });
}

export type CounterfactualsRequest = z.infer<ReturnType<typeof counterfactualsRequestSchema>>;

function dataRows(m: CounterfactualModel): Rows {
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
export function resolveDesired(m: CounterfactualModel, desired: CounterfactualsRequest['desired']): DesiredOutcome | undefined {
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

function constraintsFor(m: CounterfactualModel, p: CounterfactualsRequest['parameters']) {
  const fromMeta = counterfactualOptionsFromMetadata(m.metadata);
  const constraints: Record<string, FeatureConstraint> = { ...fromMeta.constraints };
  for (const [name, c] of Object.entries(p.constraints ?? {})) constraints[name] = { ...(constraints[name] ?? {}), ...c };
  for (const name of p.immutable ?? []) constraints[name] = { ...(constraints[name] ?? {}), immutable: true };
  return { ...fromMeta, constraints };
}

/** JSON-safe: an open range end (±Infinity) is written as null. */
function jsonDesired(d: { class: number } | { range: [number, number]; output: number }) {
  return 'range' in d ? { range: d.range.map((v) => (Number.isFinite(v) ? v : null)), output: d.output } : d;
}

export async function computeCounterfactuals(
  m: CounterfactualModel,
  instances: Rows,
  request: Omit<CounterfactualsRequest, 'instances'>,
  context: { signal?: AbortSignal } = {},
) {
  const p = request.parameters;
  const { constraints, groupNames, task } = constraintsFor(m, p);
  const result = await counterfactuals(m.model, instances, {
    space: m.space,
    reference: dataRows(m),
    desired: resolveDesired(m, request.desired),
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
    ...(p.deadlineMs !== undefined ? { deadline: Date.now() + p.deadlineMs } : {}),
    signal: context.signal,
  });
  return {
    model: { name: m.name, version: m.version },
    results: result.instances.map((r) => ({ ...r, desired: jsonDesired(r.desired) })),
    scales: result.scales,
    referenceEvaluations: result.referenceEvaluations,
    computeMs: result.computeMs,
    parameters: p,
  };
}

export interface RecourseRequest {
  /** A sensitive feature or one-hot group; default: the model's first declared sensitive feature. */
  sensitiveFeature?: string;
  favourable?: CounterfactualsRequest['desired'];
  seed?: number;
  maxEvaluations?: number;
  bootstrap?: { n?: number; seed?: number; confidence?: number };
  deadlineMs?: number;
}

/**
 * Recourse burden over the model's reference set (or the rows given), grouped by a sensitive
 * feature whose groups are labelled with the metadata's category names where it has them.
 */
export async function computeRecourseBurden(
  m: CounterfactualModel,
  request: RecourseRequest = {},
  context: { signal?: AbortSignal; rows?: Rows } = {},
): Promise<RecourseBurden> {
  const rows = context.rows ?? dataRows(m);
  const name = request.sensitiveFeature ?? m.metadata?.sensitiveFeatures[0];
  if (!name)
    throw new ExplainerInputError('NO_SENSITIVE_FEATURES', 'the model declares no sensitive feature: name one in sensitiveFeature');
  const { constraints, groupNames, task } = constraintsFor(m, {} as CounterfactualsRequest['parameters']);
  const features = m.metadata?.features ?? [];
  const info = {
    types: features.map((f) => f.type),
    groups: groupNames.map((g) => ({ name: g, columns: features.flatMap((f, j) => (f.group === g ? [j] : [])) })),
  };
  const [attr] = resolveSensitive([name], m.space, info);
  const grouping = groupBy(rows, attr, m.space.featureNames);
  const labels = grouping.groups.map((g) => {
    const key = g.key[name];
    if (attr.kind === 'one-hot') {
      const column = features.find((f) => f.name === key);
      const label = column?.categories?.find((c) => c.value === 1)?.label;
      return label ? `${name}=${label}` : g.label;
    }
    const label = features.find((f) => f.name === name)?.categories?.find((c) => c.value === key)?.label;
    return label ? `${name}=${label}` : g.label;
  });
  const favourable = resolveDesired(m, request.favourable);
  return recourseBurden(m.model, {
    space: m.space,
    rows,
    reference: dataRows(m),
    groups: { feature: name, labels, index: grouping.index },
    constraints,
    groupNames,
    ...(task ? { task } : {}),
    ...(favourable ? { favourable } : {}),
    seed: request.seed ?? 0,
    ...(request.maxEvaluations !== undefined ? { maxEvaluations: request.maxEvaluations } : {}),
    ...(request.bootstrap ? { bootstrap: request.bootstrap } : {}),
    ...(request.deadlineMs !== undefined ? { deadline: Date.now() + request.deadlineMs } : {}),
    signal: context.signal,
  });
}
